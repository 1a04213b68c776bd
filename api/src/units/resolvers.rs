//! Queries over administrative units (public reference data: any authenticated caller).
use super::service::{self, UnitFilter};
use super::types::{AdminLevel, AdminUnit};
use crate::graphql::pagination::{Conn, PageArgs, connection};
use crate::graphql::{Date, state};
use async_graphql::{Context, Object, Result};

#[derive(Default)]
pub struct UnitQuery;

#[Object]
impl UnitQuery {
    /// The unit with this code on `on` (default: the version in force today, or the last one
    /// if the unit has ceased).
    async fn admin_unit(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Unit code.")] code: String,
        #[graphql(desc = "Day the version is taken on.")] on: Option<Date>,
    ) -> Result<Option<AdminUnit>> {
        let (db, _) = state(ctx)?;
        let unit = match on {
            Some(d) => service::version_on(db, &code, d.0).await?,
            None => service::latest_versions(db, std::slice::from_ref(&code))
                .await?
                .remove(&code),
        };
        Ok(unit.map(Into::into))
    }

    /// Units in force on `on` (default today), filtered.
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)"
    )]
    async fn admin_units(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Day the hierarchy is taken on; default today.")] on: Option<Date>,
        #[graphql(desc = "Only direct children of this unit.")] parent_code: Option<String>,
        #[graphql(desc = "Only this unit and units under it.")] under: Option<String>,
        #[graphql(desc = "Only units of this level.")] level: Option<AdminLevel>,
        #[graphql(desc = "Part of the name, diacritics ignored, or an exact code.")] search: Option<
            String,
        >,
        #[graphql(
            desc = "Number of items from the start of the list (after `after`), 0 to 100; 20 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(desc = "Cursor of an edge: only items after it.")] after: Option<String>,
        #[graphql(
            desc = "Number of items from the end of the list (before `before`), 0 to 100; not with `first`."
        )]
        last: Option<i32>,
        #[graphql(desc = "Cursor of an edge: only items before it.")] before: Option<String>,
    ) -> Result<Conn<AdminUnit>> {
        let (db, _) = state(ctx)?;
        let filter = UnitFilter {
            on: on.map(|d| d.0),
            parent_code,
            under,
            level: level.map(Into::into),
            search,
        };
        let args = PageArgs::new(first, after, last, before);
        Ok(connection(service::list(db, &filter, &args).await?))
    }
}
