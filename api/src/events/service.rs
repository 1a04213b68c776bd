//! Who receives which event: the area rule for one activity from the chain an event carries,
//! and the checks made when a subscription starts.
use super::Event;
use crate::auth::Scope;
use crate::error::{Error, Result};
use crate::memory::Snapshot;
use chrono::NaiveDate;
use cnscd_entity::activity;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

/// The activities with these ids (one statement).
pub async fn activities(db: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<activity::Model>> {
    Ok(activity::Entity::find()
        .filter(activity::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

/// Whether a caller with `scope` (for reading activities) may see the event's activity: its
/// unit under the area on its day (the event's chain), its team one of the token's teams, or
/// submitted by the caller (a REPORTER). As the `activities` list decides
/// ([`crate::activities::service::ACTIVITY_COLUMNS`]).
pub fn may_see(scope: &Scope, event: &Event, activity: &activity::Model) -> bool {
    scope.all
        || scope.teams.contains(&activity.team_id)
        || scope
            .submitter
            .as_deref()
            .is_some_and(|s| s == activity.submitter)
        || scope.units.iter().any(|u| event.chain.contains(u))
}

/// Whether the event's unit lies under `unit` on its day (or is it).
pub fn under(event: &Event, unit: &str) -> bool {
    event.chain.iter().any(|c| c == unit)
}

/// Checks the `under` argument of `activitySubmitted`: a unit that exists, inside the caller's
/// area on some day (a unit above the area, or beside it, is refused: there would be nothing
/// it may see there that it does not see without it).
pub fn check_under(
    snap: &Snapshot,
    scope: &Scope,
    team_units: &[String],
    unit: &str,
) -> Result<()> {
    if snap.unit(unit).is_none() {
        return Err(Error::invalid(
            "under",
            format!("unknown unit code `{unit}`"),
        ));
    }
    if scope.all {
        return Ok(());
    }
    let (first, last) = (NaiveDate::MIN, NaiveDate::MAX);
    let mut area: Vec<String> = scope.units.clone();
    area.extend(team_units.iter().cloned());
    if snap.under_some_day(&area, unit, first, last) {
        return Ok(());
    }
    Err(Error::forbidden(format!(
        "unit {unit} is not in the caller's area"
    )))
}

/// Checks the units of `indicatorChanged`: each exists and lies under the caller's area on
/// some day (values of a month the area does not wholly cover are not sent).
pub fn check_units(snap: &Snapshot, scope: &Scope, units: &[String]) -> Result<()> {
    let unknown: Vec<&str> = units
        .iter()
        .filter(|u| snap.unit(u).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(Error::invalid(
            "unitCodes",
            format!("unknown unit code(s): {}", unknown.join(", ")),
        ));
    }
    if scope.all {
        return Ok(());
    }
    let outside: Vec<&str> = units
        .iter()
        .filter(|u| !snap.under_some_day(&scope.units, u, NaiveDate::MIN, NaiveDate::MAX))
        .map(String::as_str)
        .collect();
    if outside.is_empty() {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "unit(s) {} not in the caller's area",
            outside.join(", ")
        )))
    }
}
