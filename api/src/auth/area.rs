//! The caller's area as SQL: the one place where scope becomes a WHERE condition.
//!
//! An area is the token's units and everything under them in the hierarchy valid on the date
//! the data concerns, plus the token's teams, plus (for reporters) what the caller submitted.
use super::Scope;
use crate::db::placeholders;
use sea_orm::Value;

/// Columns (or SQL expressions) of the row being scoped.
pub struct Columns<'a> {
    /// Unit code of the row.
    pub unit: &'a str,
    /// First and last day the row concerns (the same expression for a one-day row).
    pub from: &'a str,
    pub to: &'a str,
    /// Team id of the row, when it has one.
    pub team: Option<&'a str>,
    /// Subject that submitted the row, when it has one.
    pub submitter: Option<&'a str>,
}

/// Whether `scope` covers a row of team `team` in `unit` on `on`: [`Scope::covers`] when the
/// unit's chain is not at hand (one query, only when the token's units decide).
pub async fn allows(
    db: &impl sea_orm::ConnectionTrait,
    scope: &Scope,
    team: Option<i64>,
    unit: &str,
    on: chrono::NaiveDate,
) -> crate::error::Result<bool> {
    if scope.covers(team, &[]) {
        return Ok(true);
    }
    crate::units::service::is_under(db, &scope.units, unit, on).await
}

/// `EXISTS` condition: `unit` lies under one of `units` on some day in `[from, to]`.
pub fn under_units(units: &[String], unit: &str, from: &str, to: &str) -> (String, Vec<Value>) {
    (
        format!(
            "EXISTS (SELECT 1 FROM admin_unit_closure ac WHERE ac.ancestor_code IN ({}) \
             AND ac.descendant_code = {unit} AND ac.valid_from <= {to} AND ac.valid_to >= {from})",
            placeholders(units.len())
        ),
        units.iter().map(|u| Value::from(u.clone())).collect(),
    )
}

/// The scope as a condition on rows with the given columns; `None` when it covers everything.
pub fn condition(scope: &Scope, cols: &Columns<'_>) -> Option<(String, Vec<Value>)> {
    if scope.all {
        return None;
    }
    let mut parts = Vec::new();
    let mut values = Vec::new();
    if !scope.units.is_empty() {
        let (sql, v) = under_units(&scope.units, cols.unit, cols.from, cols.to);
        parts.push(sql);
        values.extend(v);
    }
    if let (Some(team), false) = (cols.team, scope.teams.is_empty()) {
        parts.push(format!("{team} IN ({})", placeholders(scope.teams.len())));
        values.extend(scope.teams.iter().map(|t| Value::from(*t)));
    }
    if let (Some(col), Some(sub)) = (cols.submitter, &scope.submitter) {
        parts.push(format!("{col} = ?"));
        values.push(Value::from(sub.clone()));
    }
    if parts.is_empty() {
        return Some(("1 = 0".to_owned(), Vec::new()));
    }
    Some((parts.join(" OR "), values))
}
