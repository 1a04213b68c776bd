//! The `indicators` and `indicatorDefinitions` queries.
use super::periods::Granularity;
use super::service::{self, Breakdown, Request};
use super::types::{
    IndicatorDefinition, IndicatorMode, IndicatorValue, PeriodGranularity, UnitBreakdown,
};
use crate::auth::Action;
use crate::error::Error;
use crate::graphql::guard::Allowed;
use crate::graphql::{Date, state};
use crate::units::types::AdminLevel;
use async_graphql::{Context, Object, Result};

#[derive(Default)]
pub struct IndicatorQuery;

#[Object]
impl IndicatorQuery {
    /// The indicator catalogue (latest active version of each).
    async fn indicator_definitions(&self, ctx: &Context<'_>) -> Result<Vec<IndicatorDefinition>> {
        let (db, _) = state(ctx)?;
        let mut defs: Vec<_> = service::definitions(db).await?.into_values().collect();
        defs.sort_by(|a, b| a.code.cmp(&b.code));
        Ok(defs.into_iter().map(Into::into).collect())
    }

    /// Indicator values for units and periods, rolled up along the hierarchy (numerators and
    /// denominators summed, divided last). Units must lie in the caller's area.
    #[graphql(guard = "Allowed(Action::ReadIndicators)")]
    #[allow(clippy::too_many_arguments)]
    async fn indicators(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Indicator codes, e.g. [\"CNS02\", \"EG01\"].")] codes: Vec<String>,
        #[graphql(desc = "Administrative unit codes, e.g. [\"169\"].")] unit_codes: Vec<String>,
        #[graphql(
            desc = "First day of the range, inclusive; every period overlapping the range is given."
        )]
        from: Date,
        #[graphql(desc = "Last day of the range, inclusive.")] to: Date,
        #[graphql(
            default_with = "PeriodGranularity::Month",
            desc = "Length of the periods."
        )]
        granularity: PeriodGranularity,
        #[graphql(
            default_with = "UnitBreakdown::Own",
            desc = "Which units values are given for."
        )]
        breakdown: UnitBreakdown,
        #[graphql(desc = "With LEVEL: the level to break down to.")] level: Option<AdminLevel>,
        #[graphql(
            default_with = "IndicatorMode::AsRecorded",
            desc = "How reorganised units are treated; only AS_RECORDED is available."
        )]
        mode: IndicatorMode,
    ) -> Result<Vec<IndicatorValue>> {
        let (db, principal) = state(ctx)?;
        if mode == IndicatorMode::Rebased {
            return Err(Error::invalid(
                "mode",
                "REBASED mode is not available in this version; use AS_RECORDED",
            )
            .into());
        }
        let breakdown = match (breakdown, level) {
            (UnitBreakdown::Own, _) => Breakdown::Own,
            (UnitBreakdown::Children, _) => Breakdown::Children,
            (UnitBreakdown::Level, Some(l)) => Breakdown::Level(l.into()),
            (UnitBreakdown::Level, None) => {
                return Err(Error::invalid("level", "breakdown LEVEL needs `level`").into());
            }
        };
        let request = Request {
            codes,
            unit_codes,
            from: from.0,
            to: to.0,
            granularity: match granularity {
                PeriodGranularity::Month => Granularity::Month,
                PeriodGranularity::Quarter => Granularity::Quarter,
                PeriodGranularity::Year => Granularity::Year,
            },
            breakdown,
        };
        Ok(service::compute(db, principal, &request)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}
