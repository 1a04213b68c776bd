//! Queries over administrative units (public reference data: any authenticated caller).
use super::service::{self, UnitFilter};
use super::types::{AdminLevel, AdminUnit};
use crate::graphql::pagination::{Conn, PageArgs, connection, list_field};
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
}

list_field! {
    /// The list of units (a unit by code is [`UnitQuery`]'s).
    UnitListQuery,
    /// Units in force on `on` (default today), filtered.
    admin_units(
        #[graphql(desc = "Day the hierarchy is taken on; default today.")] on: Option<Date>,
        #[graphql(desc = "Only direct children of this unit.")] parent_code: Option<String>,
        #[graphql(desc = "Only this unit and units under it.")] under: Option<String>,
        #[graphql(desc = "Only units of this level.")] level: Option<AdminLevel>,
        #[graphql(desc = "Part of the name, diacritics ignored, or an exact code.")]
        search: Option<String>,
    ) -> Conn<AdminUnit> = list_units
}

async fn list_units(
    ctx: &Context<'_>,
    on: Option<Date>,
    parent_code: Option<String>,
    under: Option<String>,
    level: Option<AdminLevel>,
    search: Option<String>,
    page: PageArgs,
) -> Result<Conn<AdminUnit>> {
    let (db, _) = state(ctx)?;
    let filter = UnitFilter {
        on: on.map(|d| d.0),
        parent_code,
        under,
        level: level.map(Into::into),
        search,
    };
    Ok(connection(service::list(db, &filter, &page).await?))
}
