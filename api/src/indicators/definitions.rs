//! Indicator definitions over time: every code has versions, each valid from a day; a period
//! is computed with the version whose `valid_from` is the latest on or before the period's
//! first day (the highest version number among those with the same `valid_from`, so that a
//! revision valid from the same day replaces the one before). Adding or revising a definition
//! ([`save`]) checks the formula against the data element catalogue; a new version never
//! applies from before the latest one, so each version holds from its `valid_from` until the
//! next version's.
use super::model::parse_expression;
use crate::audit::service::{AuditAction, Change, RequestId, record};
use crate::auth::{Action, Principal};
use crate::db::{OnUnique, Unique};
use crate::error::{Error, Problems, Result};
use chrono::{NaiveDate, Utc};
use cnscd_entity::{data_element, indicator_definition};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use std::collections::{HashMap, HashSet};

/// One definition per indicator code and version.
const DEFINITION_VERSION: Unique = Unique {
    name: "ux_indicator_code_version",
    columns: "indicator_definition.code, indicator_definition.version",
};

/// Largest factor a definition may have: beyond it a value could overflow to infinity.
pub const MAX_FACTOR: f64 = 1e9;

/// Every active version of each indicator, by code, ordered by `valid_from` (then version).
pub async fn versions(
    db: &impl ConnectionTrait,
) -> Result<HashMap<String, Vec<indicator_definition::Model>>> {
    let mut out: HashMap<String, Vec<indicator_definition::Model>> = HashMap::new();
    for d in indicator_definition::Entity::find()
        .filter(indicator_definition::Column::Active.eq(true))
        .order_by_asc(indicator_definition::Column::Code)
        .order_by_asc(indicator_definition::Column::ValidFrom)
        .order_by_asc(indicator_definition::Column::Version)
        .all(db)
        .await?
    {
        out.entry(d.code.clone()).or_default().push(d);
    }
    Ok(out)
}

/// The version in force on `day`: the latest `valid_from` on or before it, the highest version
/// among equal `valid_from`s; `None` when every version starts later. `versions` need not be
/// sorted.
pub fn valid_for(
    versions: &[indicator_definition::Model],
    day: NaiveDate,
) -> Option<&indicator_definition::Model> {
    versions
        .iter()
        .filter(|v| v.valid_from <= day)
        .max_by_key(|v| (v.valid_from, v.version))
}

/// Every version of every indicator (active or not), by code then version.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<indicator_definition::Model>> {
    Ok(indicator_definition::Entity::find()
        .order_by_asc(indicator_definition::Column::Code)
        .order_by_asc(indicator_definition::Column::Version)
        .all(db)
        .await?)
}

/// A definition to add or revise.
pub struct NewDefinition {
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub description: Option<String>,
    pub numerator: String,
    pub denominator: Option<String>,
    pub factor: f64,
    pub valid_from: NaiveDate,
}

/// Whether `code` has the shape of an indicator code: `[A-Z][A-Z0-9_]{1,19}`.
pub fn valid_code(code: &str) -> bool {
    let mut chars = code.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && (2..=20).contains(&code.len())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Checks a formula: its syntax, then that every element it names is in the catalogue.
fn check_formula(problems: &mut Problems, field: &str, expr: &str, elements: &HashSet<String>) {
    let name = field.rsplit('.').next().unwrap_or(field);
    match parse_expression(expr) {
        Err(e) => problems.add(field, format!("`{name}`: {}", e.message())),
        Ok(terms) => {
            let mut unknown: Vec<&str> = terms
                .iter()
                .map(|(_, e)| e.as_str())
                .filter(|e| !elements.contains(*e))
                .collect();
            unknown.dedup();
            if !unknown.is_empty() {
                problems.add(
                    field,
                    format!(
                        "unknown data element(s) in `{name}`: {} (the data element catalogue \
                         has no such code)",
                        unknown.join(", ")
                    ),
                );
            }
        }
    }
}

/// Checks a definition (code, names, formulas over known elements, factor); answers its code
/// and its denominator, trimmed (none when empty).
async fn validate(
    db: &DatabaseConnection,
    new: &NewDefinition,
) -> Result<(String, Option<String>)> {
    let elements: HashSet<String> = data_element::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|e| e.code)
        .collect();
    let mut problems = Problems::default();
    let code = new.code.trim().to_owned();
    if !valid_code(&code) {
        problems.add(
            "input.code",
            format!(
                "`code` \"{code}\" must be 2 to 20 characters: an upper-case letter, then \
                 upper-case letters, digits or `_`"
            ),
        );
    }
    if new.name_vi.trim().is_empty() {
        problems.add("input.nameVi", "`nameVi` must not be empty");
    }
    if new.name_en.trim().is_empty() {
        problems.add("input.nameEn", "`nameEn` must not be empty");
    }
    check_formula(&mut problems, "input.numerator", &new.numerator, &elements);
    let denominator = new
        .denominator
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    if let Some(d) = &denominator {
        check_formula(&mut problems, "input.denominator", d, &elements);
    }
    if !(new.factor > 0.0 && new.factor <= MAX_FACTOR) {
        problems.add(
            "input.factor",
            format!(
                "`factor` must be above 0 and at most {MAX_FACTOR:e} (100 for a percentage, \
                 1000 per thousand, 1 for a count), not {}",
                new.factor
            ),
        );
    }
    problems.finish()?;
    Ok((code, denominator))
}

/// Adds an indicator (version 1) or its next version, valid from `valid_from` (ADMIN).
pub async fn save(
    db: &DatabaseConnection,
    principal: &Principal,
    request_id: Option<&RequestId>,
    new: NewDefinition,
) -> Result<indicator_definition::Model> {
    if !principal.scope(Action::ManageIndicators).all {
        return Err(Error::forbidden(
            "only ADMIN may add or revise indicator definitions",
        ));
    }
    let (code, denominator) = validate(db, &new).await?;

    let txn = crate::db::begin_write(db).await?;
    let latest = indicator_definition::Entity::find()
        .filter(indicator_definition::Column::Code.eq(code.clone()))
        .order_by_desc(indicator_definition::Column::Version)
        .one(&txn)
        .await?;
    if let Some(l) = latest.as_ref().filter(|l| new.valid_from < l.valid_from) {
        return Err(Error::invalid(
            "input.validFrom",
            format!(
                "`validFrom` ({}) is before {}, from which version {} of {code} applies: a new \
                 version applies from that day or later",
                new.valid_from, l.valid_from, l.version
            ),
        ));
    }
    let version = latest.as_ref().map_or(1, |l| l.version + 1);
    let saved = indicator_definition::ActiveModel {
        code: Set(code.clone()),
        version: Set(version),
        name_vi: Set(new.name_vi.trim().to_owned()),
        name_en: Set(new.name_en.trim().to_owned()),
        description: Set(new
            .description
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())),
        numerator: Set(new
            .numerator
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")),
        denominator: Set(denominator.map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))),
        factor: Set(new.factor),
        active: Set(true),
        created_at: Set(Utc::now()),
        valid_from: Set(new.valid_from),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        e.on_unique(DEFINITION_VERSION, || {
            Error::Conflict(format!(
                "indicator {code} was revised by another request at the same time; retry"
            ))
        })
    })?;
    record(
        &txn,
        principal,
        request_id,
        Change {
            action: AuditAction::SaveIndicatorDefinition,
            entity_id: code.clone(),
            unit_code: None,
            concerns: None,
            before: latest.and_then(|l| serde_json::to_value(l).ok()),
            after: serde_json::to_value(&saved).ok(),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    fn version(version: i32, valid_from: &str) -> indicator_definition::Model {
        indicator_definition::Model {
            id: i64::from(version),
            code: "CNS05".into(),
            version,
            name_vi: "Số buổi".into(),
            name_en: "Meetings".into(),
            description: None,
            numerator: "MEETINGS".into(),
            denominator: None,
            factor: 1.0,
            active: true,
            created_at: Utc::now(),
            valid_from: d(valid_from),
        }
    }

    #[test]
    fn the_latest_version_started_by_the_day_applies() {
        let vs = [
            version(1, "2000-01-01"),
            version(2, "2024-01-01"),
            version(3, "2025-07-01"),
        ];
        let v = |day: &str| valid_for(&vs, d(day)).map(|m| m.version);
        assert_eq!(v("1999-12-31"), None);
        assert_eq!(v("2000-01-01"), Some(1));
        assert_eq!(v("2023-12-31"), Some(1));
        assert_eq!(v("2024-01-01"), Some(2));
        assert_eq!(v("2025-06-30"), Some(2));
        assert_eq!(v("2025-07-01"), Some(3));
        assert_eq!(v("2030-01-01"), Some(3));
    }

    #[test]
    fn a_revision_from_the_same_day_replaces_and_order_does_not_matter() {
        let vs = [
            version(3, "2024-01-01"),
            version(1, "2000-01-01"),
            version(2, "2024-01-01"),
        ];
        assert_eq!(valid_for(&vs, d("2024-06-01")).map(|m| m.version), Some(3));
        assert_eq!(valid_for(&vs, d("2023-06-01")).map(|m| m.version), Some(1));
        assert_eq!(valid_for(&[], d("2023-06-01")), None);
    }

    #[test]
    fn codes_have_the_documented_shape() {
        for ok in ["CNS01", "EG", "A_1", "ABCDEFGHIJKLMNOPQRST"] {
            assert!(valid_code(ok), "{ok}");
        }
        for bad in [
            "",
            "C",
            "cns01",
            "1CNS",
            "CNS-01",
            "ABCDEFGHIJKLMNOPQRSTU",
            "_A",
            "Đ1",
        ] {
            assert!(!valid_code(bad), "{bad}");
        }
    }
}
