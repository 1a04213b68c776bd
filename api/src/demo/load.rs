//! Writing a generated data set through the bulk loader ([`crate::seed::bulk`]): what the demo
//! and the national data set share. Units come from the importer (inside the same
//! transaction); the closure, teams, people, memberships, activities, their outcomes, their
//! rollups and the reported figures are streamed. Activities are generated three times from
//! the same seeds (rows, then outcomes, then rollups), so nothing but one unit's rollup cells
//! is ever held in memory.
use super::activities::Activity;
use super::plan::{Plan, Team, ymd};
use crate::activities::rollup::{Element, contributions_of, span_start};
use crate::error::Result;
use crate::seed::bulk::Loader;
use crate::seed::progress::Progress;
use crate::units::service::{Version, closure_rows};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use cnscd_entity::codes::{ActivityStatus, TeamStatus, UnitLevel};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use std::collections::{BTreeMap, HashMap};

/// Tables a seed writes: their secondary indexes and foreign keys are set aside while it does.
pub const TABLES: &[&str] = &[
    "admin_unit",
    "admin_unit_closure",
    "team",
    "person",
    "membership",
    "activity",
    "activity_outcome",
    "data_value",
    "unit_month_fact",
];

/// Tables whose primary key is set aside too (composite text keys; PostgreSQL).
const KEYED: &[&str] = &["admin_unit_closure", "unit_month_fact"];

/// Who the rows of a seed say submitted them (no audit trail: they did not come through the
/// service).
#[derive(Debug, Clone, Copy)]
pub struct Source {
    pub submitted_by: &'static str,
    pub client_id: &'static str,
}

impl Source {
    fn identity(&self) -> String {
        crate::auth::identity(self.submitted_by, Some(self.client_id))
    }
}

/// A timestamp on day `d`, `secs` seconds after midnight UTC.
pub fn stamp(d: NaiveDate, secs: u32) -> DateTime<Utc> {
    d.and_time(NaiveTime::from_num_seconds_from_midnight_opt(secs % 86_400, 0).unwrap_or_default())
        .and_utc()
}

/// The next free id of `table`.
async fn next_id(db: &impl ConnectionTrait, table: &str) -> Result<i64> {
    let rows = crate::db::query(
        db,
        &format!("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS m FROM {table}"),
        vec![],
    )
    .await?;
    let max = rows
        .first()
        .and_then(|r| r.try_get::<i64>("", "m").ok())
        .unwrap_or(0);
    Ok(max + 1)
}

/// Begins the load: the transaction, with the written tables' indexes set aside.
pub async fn begin(db: &DatabaseConnection) -> Result<Loader> {
    let loader = Loader::begin(db).await?;
    loader.set_aside(TABLES, KEYED).await?;
    Ok(loader)
}

/// Where each unit sat in the hierarchy: the periods of its closure rows (see
/// [`crate::activities::rollup::recount`]).
pub type Spans = HashMap<String, Vec<(NaiveDate, NaiveDate)>>;

/// Writes the closure of every unit version in the database; returns each unit's spans.
pub async fn closure(loader: &Loader, progress: &Progress) -> Result<Spans> {
    progress.phase("closure", None);
    let mut versions = Vec::new();
    for r in crate::db::query(
        loader,
        "SELECT code, parent_code, level, valid_from, valid_to FROM admin_unit \
         ORDER BY code, valid_from",
        vec![],
    )
    .await?
    {
        let level: String = r.try_get("", "level")?;
        versions.push(Version {
            code: r.try_get("", "code")?,
            parent_code: r.try_get("", "parent_code")?,
            level: UnitLevel::parse(&level).unwrap_or(UnitLevel::Hamlet),
            valid_from: r.try_get("", "valid_from")?,
            valid_to: r.try_get("", "valid_to")?,
        });
    }
    loader
        .execute_unprepared("DELETE FROM admin_unit_closure")
        .await?;
    let rows = closure_rows(&versions);
    let mut spans: Spans = HashMap::new();
    let mut w = loader
        .writer(
            "admin_unit_closure",
            &[
                "ancestor_code",
                "descendant_code",
                "valid_from",
                "valid_to",
                "depth",
                "descendant_level",
            ],
        )
        .await?;
    for r in &rows {
        w.row()
            .put(r.ancestor)
            .put(r.descendant)
            .put(r.valid_from)
            .put(r.valid_to)
            .put(r.depth)
            .put(r.level.as_str())
            .end();
        spans
            .entry(r.descendant.to_owned())
            .or_default()
            .push((r.valid_from, r.valid_to));
        w.flush_if_full().await?;
        progress.set(w.count());
    }
    w.finish().await?;
    Ok(spans)
}

/// Writes the teams with ids of our choosing; returns them, in plan order.
pub async fn teams(loader: &Loader, teams: &[Team], progress: &Progress) -> Result<Vec<i64>> {
    progress.phase("teams", Some(teams.len() as u64));
    let base = next_id(loader, "team").await?;
    let ids: Vec<i64> = (0..teams.len() as i64).map(|i| base + i).collect();
    let mut w = loader
        .writer(
            "team",
            &[
                "id",
                "code",
                "name",
                "name_search",
                "unit_code",
                "founded_on",
                "decision_number",
                "decision_date",
                "status",
                "dissolved_on",
                "dissolution_reason",
                "created_at",
                "updated_at",
            ],
        )
        .await?;
    for (t, id) in teams.iter().zip(&ids) {
        let created = stamp(t.founded_on, 2 * 3600);
        let status = if t.dissolved_on.is_some() {
            TeamStatus::Dissolved
        } else {
            TeamStatus::Active
        };
        w.row()
            .put(*id)
            .put(&t.code)
            .put(&t.name)
            .put(crate::text::fold(&t.name).as_str())
            .put(&t.unit_code)
            .put(t.founded_on)
            .put(&t.decision_number)
            .put(t.founded_on)
            .put(status.as_str())
            .put(t.dissolved_on)
            .put(t.dissolution_reason)
            .put(created)
            .put(t.dissolved_on.map_or(created, |d| stamp(d, 3 * 3600)))
            .end();
        w.flush_if_full().await?;
        progress.set(w.count());
    }
    w.finish().await?;
    Ok(ids)
}

/// Writes the people and their memberships.
pub async fn people(
    loader: &Loader,
    plan: &Plan,
    team_ids: &[i64],
    progress: &Progress,
) -> Result<()> {
    progress.phase("people", Some(plan.persons.len() as u64));
    let base = next_id(loader, "person").await?;
    let mut joined: Vec<NaiveDate> = vec![ymd(2022, 3, 1); plan.persons.len()];
    for m in &plan.memberships {
        if let Some(j) = joined.get_mut(m.person) {
            *j = m.started_on;
        }
    }
    let mut w = loader
        .writer(
            "person",
            &[
                "id",
                "full_name",
                "name_search",
                "gender",
                "birth_year",
                "phone",
                "email",
                "created_at",
            ],
        )
        .await?;
    for (i, (p, j)) in plan.persons.iter().zip(&joined).enumerate() {
        w.row()
            .put(base + i as i64)
            .put(&p.full_name)
            .put(crate::text::fold(&p.full_name).as_str())
            .put(p.gender.as_str())
            .put(p.birth_year)
            .put(&p.phone)
            .put(p.email.as_ref())
            .put(stamp(*j, 2 * 3600 + 60))
            .end();
        w.flush_if_full().await?;
        progress.set(w.count());
    }
    w.finish().await?;
    progress.phase("memberships", Some(plan.memberships.len() as u64));
    let first = next_id(loader, "membership").await?;
    let mut w = loader
        .writer(
            "membership",
            &[
                "id",
                "team_id",
                "person_id",
                "role",
                "affiliation",
                "started_on",
                "ended_on",
                "end_reason",
                "created_at",
                "updated_at",
            ],
        )
        .await?;
    let mut id = first;
    for m in &plan.memberships {
        let Some(team_id) = team_ids.get(m.team) else {
            continue;
        };
        let created = stamp(m.started_on, 2 * 3600 + 120);
        w.row()
            .put(id)
            .put(*team_id)
            .put(base + m.person as i64)
            .put(m.role.as_str())
            .put(m.affiliation)
            .put(m.started_on)
            .put(m.ended_on)
            .put(m.end_reason)
            .put(created)
            .put(m.ended_on.map_or(created, |d| stamp(d, 9 * 3600)))
            .end();
        id += 1;
        w.flush_if_full().await?;
        progress.set(w.count());
    }
    w.finish().await?;
    Ok(())
}

/// The activities of a data set: each team's, generated on demand (the same every time).
pub struct Activities<'a> {
    pub teams: &'a [Team],
    pub team_ids: &'a [i64],
    /// The activities of the team at this index, in date order.
    pub generate: &'a (dyn Fn(usize) -> Vec<Activity> + Sync),
    /// How many there are in all, when known (for the progress line).
    pub expected: Option<u64>,
    pub source: Source,
}

/// Writes the activities, their outcomes and their rollups; returns how many activities.
pub async fn activities(
    loader: &Loader,
    acts: &Activities<'_>,
    spans: &Spans,
    progress: &Progress,
) -> Result<u64> {
    let first = next_id(loader, "activity").await?;
    let count = activity_rows(loader, acts, first, progress).await?;
    outcome_rows(loader, acts, first, count, progress).await?;
    rollup_rows(loader, acts, spans, count, progress).await?;
    Ok(count)
}

async fn activity_rows(
    loader: &Loader,
    acts: &Activities<'_>,
    first: i64,
    progress: &Progress,
) -> Result<u64> {
    progress.phase("activities", acts.expected);
    let submitter = acts.source.identity();
    let mut w = loader
        .writer(
            "activity",
            &[
                "id",
                "team_id",
                "unit_code",
                "kind_code",
                "occurred_on",
                "title",
                "description",
                "participants",
                "households_reached",
                "status",
                "submitted_by",
                "client_id",
                "submitter",
                "created_at",
                "updated_at",
            ],
        )
        .await?;
    let mut id = first;
    for (i, (team, team_id)) in acts.teams.iter().zip(acts.team_ids).enumerate() {
        for a in (acts.generate)(i) {
            // Recorded the evening of the day, at a time that varies from row to row. The
            // activities were not submitted through intake: no idempotency key.
            let at = stamp(a.occurred_on, 10 * 3600 + (id % 28_800) as u32);
            w.row()
                .put(id)
                .put(*team_id)
                .put(&team.unit_code)
                .put(a.kind)
                .put(a.occurred_on)
                .put(a.title)
                .put(a.description)
                .put(a.participants)
                .put(a.households_reached)
                .put(ActivityStatus::Recorded.as_str())
                .put(acts.source.submitted_by)
                .put(acts.source.client_id)
                .put(&submitter)
                .put(at)
                .put(at)
                .end();
            id += 1;
        }
        w.flush_if_full().await?;
        progress.set(w.count());
    }
    w.finish().await
}

async fn outcome_rows(
    loader: &Loader,
    acts: &Activities<'_>,
    first: i64,
    count: u64,
    progress: &Progress,
) -> Result<()> {
    progress.phase("outcomes (activities)", Some(count));
    let mut next = next_id(loader, "activity_outcome").await?;
    let mut w = loader
        .writer(
            "activity_outcome",
            &["id", "activity_id", "service_code", "people", "households"],
        )
        .await?;
    let mut id = first;
    let mut done = 0u64;
    for i in 0..acts.teams.len() {
        for a in (acts.generate)(i) {
            for (service, people, households) in &a.outcomes {
                w.row()
                    .put(next)
                    .put(id)
                    .put(*service)
                    .put(*people)
                    .put(*households)
                    .end();
                next += 1;
            }
            id += 1;
            done += 1;
        }
        w.flush_if_full().await?;
        progress.set(done);
    }
    w.finish().await?;
    Ok(())
}

/// The rollup rows (`unit_month_fact`) of the activities, one unit at a time in code order,
/// as [`crate::activities::rollup::recount`] makes them from the raw rows.
async fn rollup_rows(
    loader: &Loader,
    acts: &Activities<'_>,
    spans: &Spans,
    count: u64,
    progress: &Progress,
) -> Result<()> {
    progress.phase("rollups (activities)", Some(count));
    let cashless = crate::activities::rollup::cashless_services(loader).await?;
    // Stamped like a rebuild's rows: on PostgreSQL with the transaction's id (the column's
    // default), on SQLite with a new rollup generation; every copy loads afresh.
    loader
        .execute_unprepared("UPDATE data_generation SET n = n + 1 WHERE id = 1")
        .await?;
    let sqlite_seq = if loader.get_database_backend() == DbBackend::Sqlite {
        Some(crate::activities::rollup::bump(loader).await?)
    } else {
        None
    };
    let mut columns = vec![
        "unit_code",
        "element_code",
        "month_start",
        "value",
        "horizon",
    ];
    if sqlite_seq.is_some() {
        columns.push("seq");
    }
    let mut w = loader.writer("unit_month_fact", &columns).await?;
    let mut by_unit: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in acts.teams.iter().enumerate() {
        by_unit.entry(t.unit_code.as_str()).or_default().push(i);
    }
    let mut codes: Vec<String> = Vec::new();
    let mut index: HashMap<Element<'static>, usize> = HashMap::new();
    let mut done = 0u64;
    for (unit, teams) in by_unit {
        let unit_spans = spans.get(unit).map(Vec::as_slice).unwrap_or(&[]);
        let mut cells: HashMap<(usize, NaiveDate), f64> = HashMap::new();
        for i in teams {
            for a in (acts.generate)(i) {
                let since = unit_spans
                    .iter()
                    .filter(|(f, t)| *f <= a.occurred_on && a.occurred_on <= *t)
                    .map(|(f, _)| *f)
                    .max()
                    .unwrap_or(a.occurred_on);
                let start = span_start(a.occurred_on, since);
                contributions_of(
                    a.kind,
                    Some(a.participants),
                    Some(a.households_reached),
                    a.outcomes.iter().copied(),
                    |s| cashless.contains(s),
                    |e, v| {
                        let k = *index.entry(e).or_insert_with(|| {
                            codes.push(e.code());
                            codes.len() - 1
                        });
                        *cells.entry((k, start)).or_default() += v;
                    },
                );
                done += 1;
            }
        }
        let mut sorted: Vec<((usize, NaiveDate), f64)> = cells.into_iter().collect();
        sorted.sort_by(|a, b| codes[a.0.0].cmp(&codes[b.0.0]).then(a.0.1.cmp(&b.0.1)));
        for ((k, start), v) in sorted {
            let row = w.row().put(unit).put(&codes[k]).put(start).put(v).put(0i64);
            match sqlite_seq {
                Some(seq) => row.put(seq).end(),
                None => row.end(),
            }
        }
        w.flush_if_full().await?;
        progress.set(done);
    }
    w.finish().await?;
    Ok(())
}

/// Writes the reported figures; returns how many.
pub async fn figures(
    loader: &Loader,
    figs: &[super::figures::Figure],
    source: Source,
    progress: &Progress,
) -> Result<u64> {
    progress.phase("figures", Some(figs.len() as u64));
    let submitter = source.identity();
    let mut id = next_id(loader, "data_value").await?;
    let mut w = loader
        .writer(
            "data_value",
            &[
                "id",
                "unit_code",
                "element_code",
                "period_start",
                "period_end",
                "value",
                "source_system",
                "submitted_by",
                "client_id",
                "submitted_at",
                "submitter",
            ],
        )
        .await?;
    for f in figs {
        w.row()
            .put(id)
            .put(&f.unit_code)
            .put(f.element)
            .put(f.period_start)
            .put(f.period_end)
            .put(f.value)
            .put(f.source)
            .put(source.submitted_by)
            .put(source.client_id)
            .put(stamp(super::plan::add_days(f.period_end, 5), 3 * 3600))
            .put(&submitter)
            .end();
        id += 1;
        w.flush_if_full().await?;
        progress.set(w.count());
    }
    w.finish().await
}

/// Ends the load: indexes and foreign keys back (checking every row), sequences past the ids
/// written, commit; then fresh planner statistics on PostgreSQL.
pub async fn finish(loader: Loader, db: &DatabaseConnection, progress: &Progress) -> Result<()> {
    loader.restore(progress).await?;
    let postgres = loader.is_postgres();
    if postgres {
        for table in [
            "team",
            "person",
            "membership",
            "activity",
            "activity_outcome",
            "data_value",
        ] {
            loader
                .execute_unprepared(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     (SELECT MAX(id) FROM {table})) WHERE EXISTS (SELECT 1 FROM {table})"
                ))
                .await?;
        }
    }
    progress.phase("commit", None);
    loader.commit().await?;
    progress.phase("analyze", None);
    if postgres {
        db.execute_unprepared(&format!("ANALYZE {}", TABLES.join(", ")))
            .await?;
    } else {
        db.execute_unprepared("ANALYZE").await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_fixed_times_of_the_day() {
        let t = stamp(ymd(2023, 5, 2), 3600 + 61);
        assert_eq!(t.to_rfc3339(), "2023-05-02T01:01:01+00:00");
        assert_eq!(stamp(ymd(2023, 5, 2), 86_400), stamp(ymd(2023, 5, 2), 0));
    }
}
