//! The `indicators` and `indicatorDefinitions` queries.
use super::periods::Granularity;
use super::service::{self, Breakdown, Request};
use super::types::{
    IndicatorDefinition, IndicatorMode, IndicatorTable, IndicatorValue, PeriodGranularity,
    UnitBreakdown,
};
use crate::auth::Action;
use crate::error::Error;
use crate::graphql::guard::Allowed;
use crate::graphql::{Date, state};
use crate::units::types::AdminLevel;
use async_graphql::{Context, Object, Result};

/// Most indicator codes in one `indicators` field.
pub const MAX_CODES: usize = 50;
/// Cost of one `indicators` field before its values: the statements every call runs, and the
/// values a breakdown may add beyond its estimate (up to the service's `MAX_VALUES`). With
/// the limit of 20,000, at most 20 `indicators` fields fit in one request.
pub const BASE_COST: usize = 1_000;
/// Units a breakdown is priced at per unit asked for (the real number is known only once the
/// hierarchy is read; the service refuses more than `MAX_VALUES` values then).
pub const CHILDREN_PER_UNIT: usize = 10;
pub const LEVEL_PER_UNIT: usize = 25;

/// The cost of an `indicators` field: what it can return, units × periods × codes values,
/// each priced at its subfields, plus the statements every call runs. Computed from the
/// arguments alone, before anything runs.
pub fn cost(
    codes: &[String],
    unit_codes: &[String],
    from: Date,
    to: Date,
    granularity: PeriodGranularity,
    breakdown: UnitBreakdown,
    child_complexity: usize,
) -> usize {
    let periods = super::periods::count(from.0, to.0, granularity.into()).max(1);
    let per_unit = match breakdown {
        UnitBreakdown::Own => 1,
        UnitBreakdown::Children => CHILDREN_PER_UNIT,
        UnitBreakdown::Level => LEVEL_PER_UNIT,
    };
    codes
        .len()
        .max(1)
        .saturating_mul(unit_codes.len().max(1).saturating_mul(per_unit))
        .saturating_mul(periods)
        .saturating_mul(child_complexity.max(1))
        .saturating_add(BASE_COST)
}

impl From<PeriodGranularity> for Granularity {
    fn from(g: PeriodGranularity) -> Self {
        match g {
            PeriodGranularity::Month => Granularity::Month,
            PeriodGranularity::Quarter => Granularity::Quarter,
            PeriodGranularity::Year => Granularity::Year,
        }
    }
}

#[derive(Default)]
pub struct IndicatorQuery;

#[Object]
impl IndicatorQuery {
    /// The indicator catalogue: the latest active version of each, or with `allVersions`
    /// every version (by code, then version; each says from which day it applies).
    async fn indicator_definitions(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default = false,
            desc = "Every version of every indicator instead of the latest of each."
        )]
        all_versions: bool,
    ) -> Result<Vec<IndicatorDefinition>> {
        let (db, _) = state(ctx)?;
        if all_versions {
            return Ok(super::definitions::all(db)
                .await?
                .into_iter()
                .map(Into::into)
                .collect());
        }
        let mut defs: Vec<_> = service::definitions(db).await?.into_values().collect();
        defs.sort_by(|a, b| a.code.cmp(&b.code));
        Ok(defs.into_iter().map(Into::into).collect())
    }

    /// Indicator values for units and periods, rolled up along the hierarchy (numerators and
    /// denominators summed, divided last). Units must lie in the caller's area. Costs units ×
    /// periods × codes times its subfields (see docs/operations.md, "Limits").
    #[graphql(
        guard = "Allowed(Action::ReadIndicators)",
        complexity = "crate::indicators::resolvers::cost(&codes, &unit_codes, from, to, granularity, breakdown, child_complexity)"
    )]
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
            desc = "How reorganised units are treated: as they were (AS_RECORDED) or in today's units (REBASED)."
        )]
        mode: IndicatorMode,
    ) -> Result<Vec<IndicatorValue>> {
        let (db, principal) = state(ctx)?;
        let request = request(
            codes,
            unit_codes,
            from,
            to,
            granularity,
            breakdown,
            level,
            mode,
        )?;
        let (values, as_of) =
            service::compute_as_of(db, crate::graphql::store(ctx)?, principal, &request).await?;
        crate::graphql::note_data_as_of(ctx, as_of);
        Ok(values.into_iter().map(Into::into).collect())
    }

    /// The values of `indicators` in column form, for dashboards that draw thousands at once:
    /// entry i of each list belongs to codes[i / (units × periods)], units[(i / periods) mod
    /// units], periods[i mod periods]. A value the caller may not read is null with status
    /// NO_DATA (and counted in `withheld`). Costs the number of values it may hold.
    #[graphql(
        guard = "Allowed(Action::ReadIndicators)",
        complexity = "crate::indicators::resolvers::cost(&codes, &unit_codes, from, to, granularity, breakdown, 1)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn indicator_table(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Indicator codes, e.g. [\"CNS02\", \"EG01\"].")] codes: Vec<String>,
        #[graphql(desc = "Administrative unit codes, e.g. [\"19\"].")] unit_codes: Vec<String>,
        #[graphql(desc = "First day of the range, inclusive.")] from: Date,
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
            desc = "How reorganised units are treated: as they were (AS_RECORDED) or in today's units (REBASED)."
        )]
        mode: IndicatorMode,
    ) -> Result<IndicatorTable> {
        let (db, principal) = state(ctx)?;
        let request = request(
            codes,
            unit_codes,
            from,
            to,
            granularity,
            breakdown,
            level,
            mode,
        )?;
        let (values, as_of) =
            service::compute_as_of(db, crate::graphql::store(ctx)?, principal, &request).await?;
        crate::graphql::note_data_as_of(ctx, as_of);
        Ok(IndicatorTable::build(&request, values))
    }
}

/// The service request an `indicators` or `indicatorTable` field asks for, checked.
#[allow(clippy::too_many_arguments)]
fn request(
    codes: Vec<String>,
    unit_codes: Vec<String>,
    from: Date,
    to: Date,
    granularity: PeriodGranularity,
    breakdown: UnitBreakdown,
    level: Option<AdminLevel>,
    mode: IndicatorMode,
) -> Result<Request, Error> {
    if codes.len() > MAX_CODES {
        return Err(Error::invalid(
            "codes",
            format!("`codes` has {} entries; at most {MAX_CODES}", codes.len()),
        ));
    }
    if unit_codes.len() > service::MAX_UNITS {
        return Err(Error::invalid(
            "unitCodes",
            format!(
                "`unitCodes` has {} entries; at most {}",
                unit_codes.len(),
                service::MAX_UNITS
            ),
        ));
    }
    let breakdown = match (breakdown, level) {
        (UnitBreakdown::Own, _) => Breakdown::Own,
        (UnitBreakdown::Children, _) => Breakdown::Children,
        (UnitBreakdown::Level, Some(l)) => Breakdown::Level(l.into()),
        (UnitBreakdown::Level, None) => {
            return Err(Error::invalid("level", "breakdown LEVEL needs `level`"));
        }
    };
    Ok(Request {
        codes,
        unit_codes,
        from: from.0,
        to: to.0,
        granularity: granularity.into(),
        breakdown,
        mode: match mode {
            IndicatorMode::AsRecorded => service::Mode::AsRecorded,
            IndicatorMode::Rebased => service::Mode::Rebased,
        },
    })
}
