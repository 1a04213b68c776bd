//! The caller's area on the date: the one place where scope becomes a condition.
//!
//! # The rule
//!
//! A caller may see (or change) data of unit `U` on day `D` when, on `D`, `U` is one of the
//! token's units or has one of them among its ancestors, following the unit versions valid on
//! `D`. The dated closure `admin_unit_closure(ancestor, descendant, valid_from, valid_to)` holds
//! exactly these facts, so the rule is one `EXISTS` over it ([`under`]). A unit that has ceased
//! covers nothing after its end; a unit created on 2025-07-01 covers nothing before it.
//!
//! Every row concerns a span of days and a unit, and is in the area by the rule applied to
//! that span (`../shared/design/area.md`):
//!
//! | row | unit | days | in the area when |
//! |---|---|---|---|
//! | activity | its unit | its `occurred_on` | the rule holds on that day |
//! | membership, its person | its team's unit | `started_on` ..= `ended_on` (open: today) | on some day of the span |
//! | team | its unit | `founded_on` .. `dissolved_on` (exclusive; open: today) | on some day of the span |
//! | audit entry | the changed row's unit when the change was made (`unit_code`), and its unit now (`concerns_unit`) | the day the change was made, and the days the row concerns now (`concerns_from` ..= `concerns_to`) | the first on that day, and the second on those by the changed row's own rule |
//! | activity version, and an activity entry's `before` or `after` | the version's unit | the version's day | the rule holds on that day ([`covered_places`]), or the activity is the caller's team's or its own submission |
//! | reported figure | its unit | its period | on every day of it ([`condition_throughout`]) |
//! | period lock | its unit | its month | on some day of it |
//! | indicator value, target | its unit | the period's days on which the unit existed | on every one of them ([`Coverage`], [`condition_every_existing_day`]) |
//! | re-based indicator value | today's unit | today | today |
//! | changes | the unit named or concerned | every date set, and every date moved | on each ([`allows`]) |
//!
//! A change that sets or moves no date (a rename, a new role) needs the row in the caller's
//! area on some day of it, as for reading it.
//!
//! Besides units, a token's teams grant their rows on every date (TEAM_LEADER), and a
//! reporter reads what it submitted. Which roles grant which action over which of these is
//! [`Principal::scope`](super::Principal::scope); this module turns a [`Scope`] into SQL and
//! is the only place that does.
use super::Scope;
use crate::db::{placeholders, query};
use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, Value};
use std::collections::{BTreeSet, HashMap};

/// The last day a row concerns.
#[derive(Copy, Clone, Debug)]
pub enum Last<'a> {
    /// The same day as `from` (a one-day row).
    SameDay,
    /// This column or expression, inclusive; `NULL` means the row is still going (today).
    Through(&'a str),
    /// The day before this column or expression; `NULL` means still going (today).
    Before(&'a str),
}

/// Columns (or SQL expressions) of the row being scoped.
#[derive(Copy, Clone, Debug)]
pub struct Columns<'a> {
    /// Unit code of the row.
    pub unit: &'a str,
    /// First day the row concerns.
    pub from: &'a str,
    /// Last day the row concerns.
    pub last: Last<'a>,
    /// Team id of the row, when it has one.
    pub team: Option<&'a str>,
    /// Caller identity that submitted the row, when it has one.
    pub submitter: Option<&'a str>,
}

/// `EXISTS` condition: the rule holds for `cols.unit` and one of `units` on some day the row
/// concerns. Values are in placeholder order.
pub fn under(units: &[String], cols: &Columns<'_>) -> (String, Vec<Value>) {
    let mut values: Vec<Value> = units.iter().map(|u| Value::from(u.clone())).collect();
    let today = crate::units::service::today();
    let upper = match cols.last {
        Last::SameDay => format!("ac.valid_from <= {}", cols.from),
        Last::Through(to) => {
            values.push(today.into());
            format!("ac.valid_from <= COALESCE({to}, ?)")
        }
        Last::Before(to) => {
            values.push(today.succ_opt().unwrap_or(today).into());
            format!("ac.valid_from < COALESCE({to}, ?)")
        }
    };
    (
        format!(
            "EXISTS (SELECT 1 FROM admin_unit_closure ac WHERE ac.ancestor_code IN ({}) \
             AND ac.descendant_code = {} AND ac.valid_to >= {} AND {upper})",
            placeholders(units.len()),
            cols.unit,
            cols.from,
        ),
        values,
    )
}

/// `unit IN (every unit ever under one of units)`: implied by [`under`] and the every-day
/// conditions (their closure rows name the row's unit as a descendant of one of `units`), and
/// said again without the days so that PostgreSQL can start from the area's units and reach the
/// rows through the index on their unit. [`under`] alone correlates the days of the row with
/// those of the closure row: a semi-join that cannot be turned into a look-up per unit, planned
/// (in a generic plan, which knows neither the units nor the days) as a read of every row.
fn descendants(units: &[String], unit: &str) -> (String, Vec<Value>) {
    (
        format!(
            "{unit} IN (SELECT ad.descendant_code FROM admin_unit_closure ad \
             WHERE ad.ancestor_code IN ({}))",
            placeholders(units.len())
        ),
        units.iter().map(|u| Value::from(u.clone())).collect(),
    )
}

/// [`under`] led by [`descendants`], for a condition on the rows of a table (filters such as
/// `under:`): the same rows, reached through the index on their unit.
pub fn under_indexed(units: &[String], cols: &Columns<'_>) -> (String, Vec<Value>) {
    let (lead, mut values) = descendants(units, cols.unit);
    let (sql, v) = under(units, cols);
    values.extend(v);
    (format!("({lead} AND {sql})"), values)
}

/// The scope as a condition on rows with the given columns; `None` when it covers everything.
pub fn condition(scope: &Scope, cols: &Columns<'_>) -> Option<(String, Vec<Value>)> {
    if scope.all {
        return None;
    }
    let mut parts = Vec::new();
    let mut values = Vec::new();
    if !scope.units.is_empty() {
        let (sql, v) = under_indexed(&scope.units, cols);
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
    Some((format!("({})", parts.join(" OR ")), values))
}

/// [`condition`] for rows that must lie in the area on *every* day they concern (reported
/// figures, area.md): the closure rows from the area's units to the row's unit cover the row's
/// first day, and every such closure row that ends inside the row's span is followed, the next
/// day, by another. Exact however many closure rows the span needs: a figure of a year across a
/// reorganisation (2025-07-01) is covered by one row up to the change and another after it.
/// `cols.last` must be [`Last::Through`] a non-null column; `backend` says how to name the day
/// after a date.
pub fn condition_throughout(
    scope: &Scope,
    cols: &Columns<'_>,
    backend: sea_orm::DbBackend,
) -> Option<(String, Vec<Value>)> {
    let to = match cols.last {
        Last::Through(to) => to,
        Last::SameDay | Last::Before(_) => cols.from,
    };
    every_day_condition(scope, cols, true, |units| {
        covered_throughout(units, cols.unit, cols.from, to, backend)
    })
}

/// [`condition_throughout`] counting only the days of the row's span on which its unit existed
/// (indicator values and targets, area.md; the rule [`Coverage::every_day`] decides in Rust):
/// for each version of the unit (its depth-0 closure rows) that overlaps the span, the part of
/// the span it covers is covered throughout. A span on no day of which the unit existed holds
/// nothing to show and passes. The same contract on `cols` as [`condition_throughout`].
pub fn condition_every_existing_day(
    scope: &Scope,
    cols: &Columns<'_>,
    backend: sea_orm::DbBackend,
) -> Option<(String, Vec<Value>)> {
    let (from, to) = match cols.last {
        Last::Through(to) => (cols.from, to),
        Last::SameDay | Last::Before(_) => (cols.from, cols.from),
    };
    let unit = cols.unit;
    // The part of the span that version `x` of the unit covers.
    let first = format!("(CASE WHEN x.valid_from > {from} THEN x.valid_from ELSE {from} END)");
    let last = format!("(CASE WHEN x.valid_to < {to} THEN x.valid_to ELSE {to} END)");
    // Not led by `descendants`: a row whose unit did not exist on any day of its span passes
    // whatever the area.
    every_day_condition(scope, cols, false, |units| {
        format!(
            "NOT EXISTS (SELECT 1 FROM admin_unit_closure x WHERE x.descendant_code = {unit} \
             AND x.depth = 0 AND x.valid_from <= {to} AND x.valid_to >= {from} AND NOT {})",
            covered_throughout(units, unit, &first, &last, backend)
        )
    })
}

/// The area's units (in `scope`) as an every-day condition built by `covered` from their
/// placeholders (which must use them three times), led by [`descendants`] when `lead` (the
/// condition implies it), or the caller's own submissions.
fn every_day_condition(
    scope: &Scope,
    cols: &Columns<'_>,
    lead: bool,
    covered: impl FnOnce(&str) -> String,
) -> Option<(String, Vec<Value>)> {
    if scope.all {
        return None;
    }
    let mut parts = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if !scope.units.is_empty() {
        let covered = covered(&placeholders(scope.units.len()));
        if lead {
            let (sql, v) = descendants(&scope.units, cols.unit);
            parts.push(format!("({sql} AND {covered})"));
            values.extend(v);
        } else {
            parts.push(covered);
        }
        for _ in 0..3 {
            values.extend(scope.units.iter().map(|u| Value::from(u.clone())));
        }
    }
    if let (Some(col), Some(sub)) = (cols.submitter, &scope.submitter) {
        parts.push(format!("{col} = ?"));
        values.push(Value::from(sub.clone()));
    }
    if parts.is_empty() {
        return Some(("1 = 0".to_owned(), Vec::new()));
    }
    Some((format!("({})", parts.join(" OR ")), values))
}

/// SQL: the closure rows from `units` (placeholders, used three times) to `unit` cover every
/// day of `from ..= to`: one covers `from`, and every one that ends inside the span is
/// followed, the next day, by another.
fn covered_throughout(
    units: &str,
    unit: &str,
    from: &str,
    to: &str,
    backend: sea_orm::DbBackend,
) -> String {
    let next_day = match backend {
        sea_orm::DbBackend::Postgres => "(ae.valid_to + 1)",
        _ => "date(ae.valid_to, '+1 day')",
    };
    format!(
        "(EXISTS (SELECT 1 FROM admin_unit_closure ac WHERE ac.ancestor_code IN ({units}) \
         AND ac.descendant_code = {unit} AND ac.valid_from <= {from} \
         AND ac.valid_to >= {from}) \
         AND NOT EXISTS (SELECT 1 FROM admin_unit_closure ae WHERE ae.ancestor_code IN \
         ({units}) AND ae.descendant_code = {unit} AND ae.valid_to >= {from} \
         AND ae.valid_to < {to} AND NOT EXISTS (SELECT 1 FROM admin_unit_closure an \
         WHERE an.ancestor_code IN ({units}) AND an.descendant_code = {unit} \
         AND an.valid_from <= {next_day} AND an.valid_to > ae.valid_to)))"
    )
}

/// Whether `scope` covers data of `unit` (of team `team`, if any) on `on`: the rule for one
/// row and one day, for changes. A token's teams grant their own unit only.
pub async fn allows(
    db: &impl ConnectionTrait,
    scope: &Scope,
    team: Option<(i64, &str)>,
    unit: &str,
    on: NaiveDate,
) -> crate::error::Result<bool> {
    if allows_in_chain(scope, team, unit, &[]) {
        return Ok(true);
    }
    if scope.units.is_empty() {
        return Ok(false);
    }
    let day = Value::from(on);
    let (cond, mut values) = under(
        &scope.units,
        &Columns {
            unit: "?",
            from: "?",
            last: Last::SameDay,
            team: None,
            submitter: None,
        },
    );
    // `under` lists the area's units first; the row's unit and day follow in text order.
    let n = values.len();
    values.splice(n..n, [Value::from(unit), day.clone(), day]);
    let rows = query(db, &format!("SELECT 1 AS one WHERE {cond}"), values).await?;
    Ok(!rows.is_empty())
}

/// Which of `places` (a unit and a day each) the area's units cover by the rule for one row and
/// one day (as [`allows`] without a team), in one statement however many places: the closure
/// rows from the area's units to the places' units over their days, compared with each day
/// here. For states of a row read by their own unit and day (the versions of an activity, the
/// sides of its audit entries); teams and submissions are the caller's to compare.
pub async fn covered_places(
    db: &impl ConnectionTrait,
    scope: &Scope,
    places: &BTreeSet<(String, NaiveDate)>,
) -> crate::error::Result<BTreeSet<(String, NaiveDate)>> {
    if scope.all {
        return Ok(places.clone());
    }
    let (Some(first), Some(last)) = (
        places.iter().map(|p| p.1).min(),
        places.iter().map(|p| p.1).max(),
    ) else {
        return Ok(BTreeSet::new());
    };
    if scope.units.is_empty() {
        return Ok(BTreeSet::new());
    }
    let codes: BTreeSet<&String> = places.iter().map(|p| &p.0).collect();
    let mut values: Vec<Value> = scope.units.iter().map(|u| Value::from(u.clone())).collect();
    values.extend(codes.iter().map(|c| Value::from((*c).clone())));
    values.extend([Value::from(last), Value::from(first)]);
    let rows = query(
        db,
        &format!(
            "SELECT descendant_code, valid_from, valid_to FROM admin_unit_closure \
             WHERE ancestor_code IN ({}) AND descendant_code IN ({}) AND valid_from <= ? \
             AND valid_to >= ?",
            placeholders(scope.units.len()),
            placeholders(codes.len())
        ),
        values,
    )
    .await?;
    let mut spans: HashMap<String, Vec<(NaiveDate, NaiveDate)>> = HashMap::new();
    for r in rows {
        spans
            .entry(r.try_get("", "descendant_code")?)
            .or_default()
            .push((
                r.try_get::<NaiveDate>("", "valid_from")?,
                r.try_get::<NaiveDate>("", "valid_to")?,
            ));
    }
    Ok(places
        .iter()
        .filter(|(unit, day)| {
            spans
                .get(unit)
                .is_some_and(|s| s.iter().any(|(f, t)| f <= day && day <= t))
        })
        .cloned()
        .collect())
}

/// [`allows`] when the unit's chain on the day is at hand: `chain` is the unit and every unit
/// above it on that day, as the closure lists them.
pub fn allows_in_chain(
    scope: &Scope,
    team: Option<(i64, &str)>,
    unit: &str,
    chain: &[String],
) -> bool {
    scope.all
        || team.is_some_and(|(t, team_unit)| scope.teams.contains(&t) && team_unit == unit)
        || scope.units.iter().any(|u| chain.contains(u))
}

/// For indicator values: on which days each unit existed and on which it lay under the area,
/// to tell whether the area covers a unit on every day of a period on which the unit existed.
/// Read in one statement ([`Coverage::load`]), or built from the same closure rows held in
/// memory ([`crate::memory::Snapshot::coverage`]).
pub struct Coverage {
    all: bool,
    existed: HashMap<String, Vec<(NaiveDate, NaiveDate)>>,
    covered: HashMap<String, Vec<(NaiveDate, NaiveDate)>>,
}

impl Coverage {
    /// An area that covers everything.
    pub fn everything() -> Self {
        Self {
            all: true,
            existed: HashMap::new(),
            covered: HashMap::new(),
        }
    }

    /// From closure spans: the days each unit existed (its depth-0 rows) and the days it lay
    /// under one of the area's units (the rows from those units).
    pub fn from_spans(
        existed: HashMap<String, Vec<(NaiveDate, NaiveDate)>>,
        covered: HashMap<String, Vec<(NaiveDate, NaiveDate)>>,
    ) -> Self {
        Self {
            all: false,
            existed,
            covered,
        }
    }

    pub async fn load(
        db: &impl ConnectionTrait,
        scope: &Scope,
        codes: &[String],
        from: NaiveDate,
        to: NaiveDate,
    ) -> crate::error::Result<Self> {
        let mut out = Self {
            all: scope.all,
            existed: HashMap::new(),
            covered: HashMap::new(),
        };
        if scope.all || codes.is_empty() {
            return Ok(out);
        }
        let mut values: Vec<Value> = codes.iter().map(|c| Value::from(c.clone())).collect();
        values.extend(scope.units.iter().map(|u| Value::from(u.clone())));
        values.extend([Value::from(to), from.into()]);
        let rows = query(
            db,
            &format!(
                "SELECT ancestor_code, descendant_code, depth, valid_from, valid_to \
                 FROM admin_unit_closure WHERE descendant_code IN ({}) \
                 AND (depth = 0 OR ancestor_code IN ({})) AND valid_from <= ? AND valid_to >= ?",
                placeholders(codes.len()),
                placeholders(scope.units.len())
            ),
            values,
        )
        .await?;
        for r in rows {
            let ancestor: String = r.try_get("", "ancestor_code")?;
            let code: String = r.try_get("", "descendant_code")?;
            let span = (
                r.try_get::<NaiveDate>("", "valid_from")?,
                r.try_get::<NaiveDate>("", "valid_to")?,
            );
            if scope.units.contains(&ancestor) {
                out.covered.entry(code.clone()).or_default().push(span);
            }
            if ancestor == code {
                out.existed.entry(code).or_default().push(span);
            }
        }
        Ok(out)
    }

    /// Whether the area covers `code` on at least one day of `start ..= end`.
    pub fn some_day(&self, code: &str, start: NaiveDate, end: NaiveDate) -> bool {
        self.all
            || self
                .covered
                .get(code)
                .into_iter()
                .flatten()
                .any(|(f, t)| *f <= end && *t >= start)
    }

    /// Whether the area covers `code` on every day of `start ..= end` on which it existed (so
    /// trivially when it did not exist then: there is nothing to show).
    pub fn every_day(&self, code: &str, start: NaiveDate, end: NaiveDate) -> bool {
        if self.all {
            return true;
        }
        let clip = |spans: Option<&Vec<(NaiveDate, NaiveDate)>>| -> Vec<(NaiveDate, NaiveDate)> {
            let mut v: Vec<_> = spans
                .into_iter()
                .flatten()
                .filter(|(f, t)| *f <= end && *t >= start)
                .map(|(f, t)| ((*f).max(start), (*t).min(end)))
                .collect();
            v.sort();
            v
        };
        let existed = clip(self.existed.get(code));
        let covered = merge(clip(self.covered.get(code)));
        existed
            .iter()
            .all(|&(f, t)| covered.iter().any(|&(cf, ct)| cf <= f && ct >= t))
    }
}

/// Joins sorted day spans that touch or overlap.
fn merge(spans: Vec<(NaiveDate, NaiveDate)>) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for (f, t) in spans {
        match out.last_mut() {
            Some(last) if last.1.succ_opt().is_some_and(|n| n >= f) => last.1 = last.1.max(t),
            _ => out.push((f, t)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    fn coverage(existed: &[(&str, &str)], covered: &[(&str, &str)]) -> Coverage {
        let spans = |v: &[(&str, &str)]| v.iter().map(|(f, t)| (d(f), d(t))).collect::<Vec<_>>();
        Coverage {
            all: false,
            existed: HashMap::from([("U".to_owned(), spans(existed))]),
            covered: HashMap::from([("U".to_owned(), spans(covered))]),
        }
    }

    #[test]
    fn a_value_needs_every_day_the_unit_existed() {
        // A hamlet under the caller's commune from 2025-07-01 only.
        let c = coverage(
            &[("2000-01-01", "2025-06-30"), ("2025-07-01", "9999-12-31")],
            &[("2025-07-01", "9999-12-31")],
        );
        assert!(!c.every_day("U", d("2025-01-01"), d("2025-12-31")));
        assert!(!c.every_day("U", d("2024-01-01"), d("2024-12-31")));
        assert!(c.every_day("U", d("2025-07-01"), d("2025-09-30")));
    }

    #[test]
    fn days_the_unit_did_not_exist_do_not_count() {
        // A commune that ceased on 2025-06-30, covered all its life by its district.
        let c = coverage(
            &[("2000-01-01", "2025-06-30")],
            &[("2000-01-01", "2020-12-31"), ("2021-01-01", "2025-06-30")],
        );
        assert!(c.every_day("U", d("2025-01-01"), d("2025-12-31")));
        assert!(c.every_day("U", d("2026-01-01"), d("2026-12-31")));
        let c = coverage(
            &[("2000-01-01", "2025-06-30")],
            &[("2000-01-01", "2024-12-31")],
        );
        assert!(!c.every_day("U", d("2025-01-01"), d("2025-12-31")));
    }
}
