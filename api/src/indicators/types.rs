//! GraphQL types of indicators.
use super::service::{Computed, Status};
use crate::graphql::{Date, ids};
use crate::units::types::AdminUnit;
use async_graphql::{Enum, ID, SimpleObject};
use cnscd_entity::indicator_definition;

/// Length of the calendar periods indicator values are given for.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PeriodGranularity {
    /// Calendar months, labelled like "2023-03".
    Month,
    /// Calendar quarters, labelled like "2023-Q1".
    Quarter,
    /// Calendar years, labelled like "2023".
    Year,
}

/// Which units indicator values are given for.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnitBreakdown {
    /// The requested units themselves.
    #[graphql(name = "SELF")]
    Own,
    /// Their direct children in each period.
    Children,
    /// Every unit of `level` under them in each period.
    Level,
}

/// How units that were reorganised are treated across periods.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum IndicatorMode {
    /// Units as they were in each period.
    AsRecorded,
    /// Every period in today's units: a unit of today with the units that went into it
    /// through the successions (PARTIAL ones split by the share of hamlets taken: ESTIMATED).
    /// Units that no longer exist have no re-based values.
    Rebased,
}

/// How complete an indicator value is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum IndicatorStatus {
    /// Every figure the formula needs was there for the whole period.
    Ok,
    /// Nothing to compute from: no figures reported, or the unit did not exist in the period.
    NoData,
    /// Computed from part of what the formula needs, or the unit existed for part of the period.
    Partial,
    /// Re-based through a PARTIAL succession: an estimate.
    Estimated,
}

impl From<Status> for IndicatorStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Ok => Self::Ok,
            Status::NoData => Self::NoData,
            Status::Partial => Self::Partial,
            Status::Estimated => Self::Estimated,
        }
    }
}

/// A named, versioned indicator formula: numerator ÷ denominator × factor.
#[derive(SimpleObject, Clone)]
pub struct IndicatorDefinition {
    /// Global id of this version.
    pub id: ID,
    /// Indicator code, e.g. CNS02; the same in every version.
    pub code: String,
    /// Version of the definition; values are computed with the latest active one.
    pub version: i32,
    /// Vietnamese name.
    pub name_vi: String,
    /// English name.
    pub name_en: String,
    /// What the indicator measures, when described.
    pub description: Option<String>,
    /// Data elements summed for the numerator, e.g. `DOSSIERS_ONLINE`.
    pub numerator: String,
    /// Data elements summed for the denominator; null for a count.
    pub denominator: Option<String>,
    /// 100 for a percentage, 1000 per thousand, 1 for a count or ratio.
    pub factor: f64,
    /// First day of the periods computed with this version (until a later version's);
    /// 2000-01-01 for the versions valid since records began.
    pub valid_from: Date,
}

impl From<indicator_definition::Model> for IndicatorDefinition {
    fn from(m: indicator_definition::Model) -> Self {
        Self {
            id: ids::encode(ids::INDICATOR, m.id),
            code: m.code,
            version: m.version,
            name_vi: m.name_vi,
            name_en: m.name_en,
            description: m.description,
            numerator: m.numerator,
            denominator: m.denominator,
            factor: m.factor,
            valid_from: m.valid_from.into(),
        }
    }
}

/// A calendar period.
#[derive(SimpleObject, Clone)]
pub struct Period {
    /// First day, inclusive.
    pub start: Date,
    /// Last day, inclusive.
    pub end: Date,
    /// "2023", "2023-Q1" or "2023-03".
    pub label: String,
}

/// An indicator's value for a unit and period, with what it was computed from. When the
/// caller's area does not cover the unit on every day of the period on which it existed, the
/// numbers are null with a FORBIDDEN error on their paths and the status is NO_DATA.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct IndicatorValue {
    /// The indicator, in the version computed.
    pub indicator: IndicatorDefinition,
    /// The unit, in its version in force at the end of the period (its first version if it
    /// began later).
    pub unit: AdminUnit,
    /// The period the value covers.
    pub period: Period,
    #[graphql(skip)]
    pub value: Option<f64>,
    #[graphql(skip)]
    pub numerator: Option<f64>,
    #[graphql(skip)]
    pub denominator: Option<f64>,
    /// How complete the value is.
    pub status: IndicatorStatus,
    /// The day team and member counts and reference figures are taken on: the period's last
    /// day, today for the current period, or the last day the unit was there (a breakdown
    /// child that left, a unit that ceased). Null when the unit is not there in the period.
    pub as_of: Option<Date>,
    #[graphql(skip)]
    pub readable: bool,
    #[graphql(skip)]
    pub target: Option<f64>,
}

impl IndicatorValue {
    /// A number the caller may read and that is a number: a value out of the range of floats
    /// (a huge numerator over a tiny target) is null with an error, never `inf` or `NaN`.
    fn readable(&self, v: Option<f64>) -> async_graphql::Result<Option<f64>> {
        if !self.readable {
            return Err(crate::error::Error::forbidden(format!(
                "unit {} is not in the caller's area on every day of {}",
                self.unit.code, self.period.label
            ))
            .into());
        }
        match v {
            Some(x) if !x.is_finite() => Err(crate::error::Error::Internal(format!(
                "the figure of {} for unit {} in {} is out of range ({x}): check its figures \
                 and target",
                self.indicator.code, self.unit.code, self.period.label
            ))
            .into()),
            v => Ok(v),
        }
    }
}

#[async_graphql::ComplexObject]
impl IndicatorValue {
    /// numerator ÷ denominator × factor; null when there is no data or the denominator is 0.
    async fn value(&self) -> async_graphql::Result<Option<f64>> {
        self.readable(self.value)
    }

    /// The numerator, before dividing; null when there is no data.
    async fn numerator(&self) -> async_graphql::Result<Option<f64>> {
        self.readable(self.numerator)
    }

    /// Null for counts (indicators without a denominator) and when there is no data.
    async fn denominator(&self) -> async_graphql::Result<Option<f64>> {
        self.readable(self.denominator)
    }

    /// The target set for this indicator, unit and period, if any (`setIndicatorTarget`).
    async fn target(&self) -> async_graphql::Result<Option<f64>> {
        self.readable(self.target)
    }

    /// value ÷ target × 100, when both exist and the target is above 0.
    async fn attainment(&self) -> async_graphql::Result<Option<f64>> {
        self.readable(super::targets::attainment(self.value, self.target))
    }
}

impl From<Computed> for IndicatorValue {
    fn from(c: Computed) -> Self {
        Self {
            indicator: (*c.definition).clone().into(),
            unit: (*c.unit).clone().into(),
            period: Period {
                start: c.period.start.into(),
                end: c.period.end.into(),
                label: c.period.label.clone(),
            },
            value: c.value,
            numerator: c.numerator,
            denominator: c.denominator,
            status: c.status.into(),
            as_of: c.as_of.map(Into::into),
            readable: c.readable,
            target: c.target,
        }
    }
}

/// Indicator values in column form (see `Query.indicatorTable`): entry i of each list belongs
/// to codes[i / (units × periods)], units[(i / periods) mod units], periods[i mod periods].
#[derive(SimpleObject)]
pub struct IndicatorTable {
    /// Indicator codes, in the order asked.
    pub codes: Vec<String>,
    /// Unit codes: the units asked for, or with a breakdown the units it gives, by code.
    pub units: Vec<String>,
    /// Period labels ("2023", "2023-Q1", "2023-03"), in order.
    pub periods: Vec<String>,
    /// numerator ÷ denominator × factor; null without data, with a zero denominator, or where
    /// the caller may not read the value.
    pub values: Column<Option<f64>>,
    pub numerators: Column<Option<f64>>,
    pub denominators: Column<Option<f64>>,
    pub statuses: Column<IndicatorStatus>,
    /// The target set for the indicator, unit and period, if any.
    pub targets: Column<Option<f64>>,
    /// value ÷ target × 100 where both exist.
    pub attainments: Column<Option<f64>>,
    /// How many values were withheld because the caller's area does not cover their unit on
    /// every day of their period (they read null, NO_DATA).
    pub withheld: i32,
}

impl IndicatorTable {
    pub fn build(request: &crate::indicators::service::Request, values: Vec<Computed>) -> Self {
        use crate::memory::FastMap;
        let mut codes: Vec<String> = Vec::new();
        for c in &request.codes {
            if !codes.contains(c) {
                codes.push(c.clone());
            }
        }
        let periods: Vec<String> =
            crate::indicators::periods::between(request.from, request.to, request.granularity)
                .into_iter()
                .map(|p| p.label)
                .collect();
        let units: Vec<String> = match request.breakdown {
            crate::indicators::service::Breakdown::Own => {
                let mut u: Vec<String> = Vec::new();
                for c in &request.unit_codes {
                    if !u.contains(c) && values.iter().any(|v| &v.unit.code == c) {
                        u.push(c.clone());
                    }
                }
                u
            }
            _ => values
                .iter()
                .map(|v| v.unit.code.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        };
        let position = |list: &[String]| -> FastMap<String, usize> {
            list.iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), i))
                .collect()
        };
        let (code_at, unit_at, period_at) =
            (position(&codes), position(&units), position(&periods));
        let n = codes.len() * units.len() * periods.len();
        let mut table = Self {
            values: Column(vec![None; n]),
            numerators: Column(vec![None; n]),
            denominators: Column(vec![None; n]),
            statuses: Column(vec![IndicatorStatus::NoData; n]),
            targets: Column(vec![None; n]),
            attainments: Column(vec![None; n]),
            withheld: 0,
            codes: Vec::new(),
            units: Vec::new(),
            periods: Vec::new(),
        };
        let mut filled = vec![false; n];
        for v in values {
            let (Some(ci), Some(ui), Some(pi)) = (
                code_at.get(&v.definition.code),
                unit_at.get(&v.unit.code),
                period_at.get(&v.period.label),
            ) else {
                continue;
            };
            let i = (ci * units.len() + ui) * periods.len() + pi;
            // A unit given twice in a period (a breakdown child under two of the units asked
            // for) keeps its first value.
            if std::mem::replace(&mut filled[i], true) {
                continue;
            }
            if !v.readable {
                table.withheld += 1;
                continue;
            }
            let (target, attainment) = (v.target, v.attainment());
            table.values.0[i] = v.value;
            table.numerators.0[i] = v.numerator;
            table.denominators.0[i] = v.denominator;
            table.statuses.0[i] = v.status.into();
            table.targets.0[i] = target;
            table.attainments.0[i] = attainment;
        }
        table.codes = codes;
        table.units = units;
        table.periods = periods;
        table
    }
}

/// A column of an [`IndicatorTable`]: `[Float]!` in the schema, resolved in one step rather
/// than one future per entry (async-graphql's way for lists), which at province size costs
/// more than computing the values.
pub struct Column<T>(pub Vec<T>);

macro_rules! column {
    ($t:ty, $item:ty, $convert:expr) => {
        impl async_graphql::OutputType for Column<$t> {
            fn type_name() -> std::borrow::Cow<'static, str> {
                <Vec<$t> as async_graphql::OutputType>::type_name()
            }

            fn qualified_type_name() -> String {
                <Vec<$t> as async_graphql::OutputType>::qualified_type_name()
            }

            fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
                <Vec<$t> as async_graphql::OutputType>::create_type_info(registry)
            }

            async fn resolve(
                &self,
                _ctx: &async_graphql::ContextSelectionSet<'_>,
                _field: &async_graphql::Positioned<async_graphql::parser::types::Field>,
            ) -> async_graphql::ServerResult<async_graphql::Value> {
                let convert: fn(&$item) -> async_graphql::Value = $convert;
                Ok(async_graphql::Value::List(
                    self.0.iter().map(convert).collect(),
                ))
            }
        }
    };
}

/// `[Float]!`: a number out of the range of floats is null with an error on its entry, as
/// `IndicatorValue` answers it, never `inf` or `NaN`.
impl async_graphql::OutputType for Column<Option<f64>> {
    fn type_name() -> std::borrow::Cow<'static, str> {
        <Vec<Option<f64>> as async_graphql::OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<Option<f64>> as async_graphql::OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
        <Vec<Option<f64>> as async_graphql::OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &async_graphql::ContextSelectionSet<'_>,
        field: &async_graphql::Positioned<async_graphql::parser::types::Field>,
    ) -> async_graphql::ServerResult<async_graphql::Value> {
        let mut out = Vec::with_capacity(self.0.len());
        for (i, v) in self.0.iter().enumerate() {
            out.push(match v {
                Some(x) if !x.is_finite() => {
                    let e = async_graphql::ServerError::new(
                        format!("entry {i} is out of range ({x}): check its figures and target"),
                        Some(field.pos),
                    );
                    let mut e = ctx.with_index(i).set_error_path(e);
                    e.extensions
                        .get_or_insert_with(Default::default)
                        .set("code", crate::error::ErrorCode::Internal.as_str());
                    ctx.add_error(e);
                    async_graphql::Value::Null
                }
                v => match v.and_then(async_graphql::Number::from_f64) {
                    Some(n) => async_graphql::Value::Number(n),
                    None => async_graphql::Value::Null,
                },
            });
        }
        Ok(async_graphql::Value::List(out))
    }
}
column!(IndicatorStatus, IndicatorStatus, |s| {
    async_graphql::Value::Enum(async_graphql::Name::new(match s {
        IndicatorStatus::Ok => "OK",
        IndicatorStatus::NoData => "NO_DATA",
        IndicatorStatus::Partial => "PARTIAL",
        IndicatorStatus::Estimated => "ESTIMATED",
    }))
});
