//! The mutations on indicators: `setIndicatorTarget` (ADMIN; UNIT_ADMIN in its area) and
//! `saveIndicatorDefinition` (ADMIN).
use super::definitions::{self, NewDefinition};
use super::targets::{self, SetTarget};
use super::types::IndicatorDefinition;
use crate::audit::service::RequestId;
use crate::auth::Action;
use crate::error::{UserError, into_payload};
use crate::graphql::guard::Allowed;
use crate::graphql::{Date, state};
use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use cnscd_entity::indicator_target;

/// A target for an indicator, a unit and a period.
#[derive(InputObject, Debug)]
pub struct SetIndicatorTargetInput {
    /// Indicator code, e.g. CNS02.
    pub indicator: String,
    /// Administrative unit code; ADMIN any, UNIT_ADMIN one under its area on every day of the
    /// period.
    pub unit_code: String,
    /// First day of the period: the first day of a month, quarter or year.
    pub period_start: Date,
    /// Last day of the same month, quarter or year.
    pub period_end: Date,
    /// The target, in the indicator's unit (0 or more); null clears it.
    pub target: Option<f64>,
}

/// A target as set.
#[derive(SimpleObject, Clone)]
pub struct IndicatorTarget {
    /// Indicator code.
    pub indicator: String,
    /// Administrative unit code.
    pub unit_code: String,
    /// First day of the period.
    pub period_start: Date,
    /// Last day of the period.
    pub period_end: Date,
    /// The target.
    pub target: f64,
    /// When it was last set.
    pub set_at: DateTime<Utc>,
}

impl From<indicator_target::Model> for IndicatorTarget {
    fn from(m: indicator_target::Model) -> Self {
        Self {
            indicator: m.indicator_code,
            unit_code: m.unit_code,
            period_start: m.period_start.into(),
            period_end: m.period_end.into(),
            target: m.target,
            set_at: m.set_at,
        }
    }
}

/// Result of `setIndicatorTarget`.
#[derive(SimpleObject)]
pub struct IndicatorTargetPayload {
    /// The indicator (the version valid for the period); null when there are user errors.
    pub indicator: Option<IndicatorDefinition>,
    /// The target as it is now; null when cleared or when there are user errors.
    pub target: Option<IndicatorTarget>,
    /// What was wrong with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// An indicator to add, or the next version of one.
#[derive(InputObject, Debug)]
pub struct SaveIndicatorDefinitionInput {
    /// Indicator code: an upper-case letter, then 1 to 19 upper-case letters, digits or `_`.
    /// A new code creates version 1; an existing one its next version.
    pub code: String,
    /// Vietnamese name.
    pub name_vi: String,
    /// English name.
    pub name_en: String,
    /// What the indicator measures.
    pub description: Option<String>,
    /// Data element codes joined by `+` and `-`, e.g. `DOSSIERS_ONLINE` or `A + B - C`; every
    /// element must be in the data element catalogue.
    pub numerator: String,
    /// As `numerator`; null for a count.
    pub denominator: Option<String>,
    /// 100 for a percentage, 1000 per thousand, 1 for a count or ratio; above 0.
    #[graphql(default = 1.0)]
    pub factor: f64,
    /// First day of the periods computed with this version (until a later version's).
    pub valid_from: Date,
}

/// Result of `saveIndicatorDefinition`.
#[derive(SimpleObject)]
pub struct IndicatorDefinitionPayload {
    /// The version saved; null when there are user errors.
    pub indicator: Option<IndicatorDefinition>,
    /// What was wrong with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Targets an `indicatorTargets` field is priced at per unit asked for.
pub const TARGETS_PER_UNIT: usize = 20;

#[derive(Default)]
pub struct IndicatorTargetQuery;

#[Object]
impl IndicatorTargetQuery {
    /// The targets set for units (and indicators) whose periods overlap `from` to `to`, for the
    /// units under the caller's area on every day of the period (as indicator values).
    #[graphql(
        guard = "Allowed(Action::ReadIndicators)",
        complexity = "crate::graphql::limits::list_complexity(unit_codes.len().max(1).saturating_mul(TARGETS_PER_UNIT), child_complexity)"
    )]
    async fn indicator_targets(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Indicator codes; every indicator when empty.", default)] codes: Vec<
            String,
        >,
        #[graphql(desc = "Administrative unit codes, e.g. [\"169\"].")] unit_codes: Vec<String>,
        #[graphql(desc = "First day of the range, inclusive.")] from: Date,
        #[graphql(desc = "Last day of the range, inclusive.")] to: Date,
    ) -> Result<Vec<IndicatorTarget>> {
        let (db, principal) = state(ctx)?;
        if codes.len() > super::resolvers::MAX_CODES {
            return Err(crate::error::Error::invalid(
                "codes",
                format!(
                    "`codes` has {} entries; at most {}",
                    codes.len(),
                    super::resolvers::MAX_CODES
                ),
            )
            .into());
        }
        if unit_codes.len() > super::service::MAX_UNITS {
            return Err(crate::error::Error::invalid(
                "unitCodes",
                format!(
                    "`unitCodes` has {} entries; at most {}",
                    unit_codes.len(),
                    super::service::MAX_UNITS
                ),
            )
            .into());
        }
        Ok(
            targets::list(db, principal, &codes, &unit_codes, from.0, to.0)
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
        )
    }
}

#[derive(Default)]
pub struct IndicatorMutation;

#[Object]
impl IndicatorMutation {
    /// Sets, changes or clears (`target: null`) the target of an indicator for a unit and a
    /// whole month, quarter or year (ADMIN; UNIT_ADMIN for units under its area on every day
    /// of the period). Audited.
    #[graphql(guard = "Allowed(Action::SetIndicatorTargets)")]
    async fn set_indicator_target(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The indicator, unit, period and target.")] input: SetIndicatorTargetInput,
    ) -> Result<IndicatorTargetPayload> {
        let (db, principal) = state(ctx)?;
        let result = targets::set(
            db,
            principal,
            ctx.data_opt::<RequestId>(),
            SetTarget {
                indicator: input.indicator,
                unit_code: input.unit_code,
                period_start: input.period_start.0,
                period_end: input.period_end.0,
                target: input.target,
            },
        )
        .await;
        let (saved, user_errors) = into_payload(result)?;
        let (indicator, target) = match saved {
            Some(s) => (Some(s.indicator.into()), s.target.map(Into::into)),
            None => (None, None),
        };
        Ok(IndicatorTargetPayload {
            indicator,
            target,
            user_errors,
        })
    }

    /// Adds an indicator definition (version 1) or revises one (its next version, used for the
    /// periods from `validFrom`): the formulas are checked against the data element catalogue
    /// (ADMIN). Audited.
    #[graphql(guard = "Allowed(Action::ManageIndicators)")]
    async fn save_indicator_definition(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The definition.")] input: SaveIndicatorDefinitionInput,
    ) -> Result<IndicatorDefinitionPayload> {
        let (db, principal) = state(ctx)?;
        let result = definitions::save(
            db,
            principal,
            ctx.data_opt::<RequestId>(),
            NewDefinition {
                code: input.code,
                name_vi: input.name_vi,
                name_en: input.name_en,
                description: input.description,
                numerator: input.numerator,
                denominator: input.denominator,
                factor: input.factor,
                valid_from: input.valid_from.0,
            },
        )
        .await;
        let (saved, user_errors) = into_payload(result)?;
        Ok(IndicatorDefinitionPayload {
            indicator: saved.map(Into::into),
            user_errors,
        })
    }
}
