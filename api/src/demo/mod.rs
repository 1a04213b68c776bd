//! The demo data set: Đồng Hỷ's teams, members, activities and reported figures.
//!
//! [`seed`] loads, in one transaction and the same way on every run: both unit catalogues with
//! their successions; 143 hamlets of Đồng Hỷ district (169) with a team each (xóm Cà Phê in
//! Minh Lập among them), about 800 synthetic members; two to four activities per team and
//! month from 2023 to 2025 (times the scale); and the district's reported figures. Everything
//! is drawn from a fixed-seed generator ([`rng::Rng`]), never from the clock.
//!
//! Rows are written in bulk, not through the services: there is no audit trail for them and
//! the activity rollups are rebuilt once at the end.
use cnscd_entity::codes::{ActivityStatus, SuccessionKind, TeamStatus, UnitLevel};
mod activities;
mod figures;
mod names;
mod plan;
mod rng;
mod status;

pub use status::{first_team_id, holds_only_demo_data, is_loaded};

use crate::error::{Error, Result};
use crate::units::import::{self, Parsed, SuccessionRow, UnitRow};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use cnscd_entity::{activity, activity_outcome, admin_unit, data_value, membership, person, team};
use plan::{Commune, DISTRICT, PROVINCE, Plan, add_days, ymd};
use rng::Rng;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The generator's seed: change it and every name and number changes.
pub const SEED: u64 = 0x0C5C_D169_2022_0301;

/// The catalogue in force before the 2025 reorganisation.
pub const OLD_CATALOGUE: &str = "admin_units_2025-03-01.csv";
/// The catalogue in force from 2025-07-01.
pub const NEW_CATALOGUE: &str = "admin_units_2025-07-01.csv";
/// Which new units succeeded which old ones on 2025-07-01.
pub const SUCCESSIONS: &str = "admin_unit_successions_2025-07-01.csv";

/// Teams added elsewhere in the province per step of `--scale` above 1.
pub const EXTRA_TEAMS_PER_SCALE: usize = 10;
/// Rows per INSERT (well inside SQLite's limit on bound parameters).
const CHUNK: usize = 500;
const SUBMITTED_BY: &str = "demo-seed";
const CLIENT_ID: &str = "demo";

/// What [`seed`] loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemoReport {
    /// Unit versions in the database afterwards (catalogues and hamlets).
    pub units: usize,
    pub teams: usize,
    /// People (each holds one or more memberships).
    pub members: usize,
    pub activities: usize,
    pub data_values: usize,
}

/// The day the 2025 reorganisation took effect.
pub fn reorganisation_day() -> NaiveDate {
    ymd(2025, 7, 1)
}

/// Loads the demo data set into a database that has the schema and catalogues (deterministic for a given scale).
pub async fn seed(
    db: &DatabaseConnection,
    data_dir: &Path,
    scale: u32,
) -> crate::error::Result<DemoReport> {
    let scale = scale.max(1);
    let old = units_file(data_dir, OLD_CATALOGUE)?;
    let new = units_file(data_dir, NEW_CATALOGUE)?;
    let successions = successions_file(data_dir, SUCCESSIONS)?;
    let txn = crate::db::begin_write(db).await?;
    let report = load(&txn, &old, &new, &successions, scale).await?;
    txn.commit().await?;
    Ok(report)
}

fn read(data_dir: &Path, name: &str) -> Result<(String, String)> {
    let path = data_dir.join(name);
    let shown = path.display().to_string();
    let content = std::fs::read_to_string(&path)
        .map_err(|e| Error::Internal(format!("cannot read {shown}: {e}")))?;
    Ok((content, shown))
}

fn units_file(data_dir: &Path, name: &str) -> Result<Vec<UnitRow>> {
    let (content, shown) = read(data_dir, name)?;
    match import::parse(&content)
        .map_err(|e| Error::Internal(format!("{shown}: {}", e.message())))?
    {
        Parsed::Units(rows) => Ok(rows),
        Parsed::Successions(_) => Err(Error::Internal(format!(
            "{shown} holds successions, not a unit catalogue"
        ))),
    }
}

fn successions_file(data_dir: &Path, name: &str) -> Result<Vec<SuccessionRow>> {
    let (content, shown) = read(data_dir, name)?;
    match import::parse(&content)
        .map_err(|e| Error::Internal(format!("{shown}: {}", e.message())))?
    {
        Parsed::Successions(rows) => Ok(rows),
        Parsed::Units(_) => Err(Error::Internal(format!(
            "{shown} holds a unit catalogue, not successions"
        ))),
    }
}

/// The successor of each old unit (a FULL succession first).
fn successors(rows: &[SuccessionRow]) -> HashMap<&str, &str> {
    let mut out: HashMap<&str, (&str, bool)> = HashMap::new();
    for r in rows {
        let full = r.kind == SuccessionKind::Full;
        let entry = out
            .entry(r.old_code.as_str())
            .or_insert((r.new_code.as_str(), full));
        if full && !entry.1 {
            *entry = (r.new_code.as_str(), true);
        }
    }
    out.into_iter().map(|(k, (v, _))| (k, v)).collect()
}

/// Communes of province 19 outside Đồng Hỷ whose code survives the reorganisation: where the
/// extra teams of a scaled-up data set go.
fn other_communes(old: &[UnitRow], new: &[UnitRow]) -> Vec<Commune> {
    let districts: HashSet<&str> = old
        .iter()
        .filter(|r| r.level == UnitLevel::District && r.parent_code.as_deref() == Some(PROVINCE))
        .filter(|r| r.code != DISTRICT)
        .map(|r| r.code.as_str())
        .collect();
    let surviving: HashSet<&str> = new
        .iter()
        .filter(|r| r.level == UnitLevel::Commune)
        .map(|r| r.code.as_str())
        .collect();
    old.iter()
        .filter(|r| r.level == UnitLevel::Commune && surviving.contains(r.code.as_str()))
        .filter(|r| {
            r.parent_code
                .as_deref()
                .is_some_and(|p| districts.contains(p))
        })
        .map(Commune::from_row)
        .collect()
}

/// A timestamp on day `d`, `secs` seconds after midnight UTC.
fn stamp(d: NaiveDate, secs: u32) -> DateTime<Utc> {
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

async fn load(
    db: &sea_orm::DatabaseTransaction,
    old: &[UnitRow],
    new: &[UnitRow],
    successions: &[SuccessionRow],
    scale: u32,
) -> Result<DemoReport> {
    if is_loaded(db).await? {
        return Err(Error::Conflict(
            "the demo data set is already loaded in this database".into(),
        ));
    }
    let communes: Vec<Commune> = old
        .iter()
        .filter(|r| r.level == UnitLevel::Commune && r.parent_code.as_deref() == Some(DISTRICT))
        .map(Commune::from_row)
        .collect();
    if communes.is_empty() {
        return Err(Error::Internal(format!(
            "{OLD_CATALOGUE} lists no commune of district {DISTRICT} (Đồng Hỷ)"
        )));
    }
    let extra = if scale > 1 {
        other_communes(old, new)
    } else {
        Vec::new()
    };
    let extra_teams = EXTRA_TEAMS_PER_SCALE * (scale as usize - 1);
    let plan = plan::build(&communes, &extra, extra_teams, SEED);

    // 1. Units: the old catalogue, Đồng Hỷ's hamlets, the new catalogue, the successions.
    import::apply_units(db, old, import::RECORDS_BEGIN, false).await?;
    let hamlet_rows: Vec<UnitRow> = plan.hamlets.iter().map(plan::Hamlet::unit_row).collect();
    import::apply_units(db, &hamlet_rows, import::RECORDS_BEGIN, false).await?;
    import::apply_units(db, new, reorganisation_day(), true).await?;
    import::apply_successions(db, successions, reorganisation_day()).await?;
    crate::units::service::rebuild_closure(db).await?;

    // 2. Teams, people, memberships.
    let team_ids = insert_teams(db, &plan).await?;
    insert_people(db, &plan, &team_ids).await?;

    // 3. Activities, then their rollups.
    let activities = insert_activities(db, &plan, &team_ids, scale).await?;
    crate::activities::rollup::rebuild_in(db).await?;

    // 4. Reported figures.
    let succ = successors(successions);
    let old_codes: Vec<String> = communes.iter().map(|c| c.code.clone()).collect();
    let mut new_areas: Vec<(String, Vec<String>)> = Vec::new();
    for c in &old_codes {
        let Some(n) = succ.get(c.as_str()) else {
            continue;
        };
        match new_areas.iter_mut().find(|(code, _)| code == n) {
            Some((_, olds)) => olds.push(c.clone()),
            None => new_areas.push(((*n).to_owned(), vec![c.clone()])),
        }
    }
    let dong_hy_hamlets = &plan.hamlets;
    let figs = figures::figures(
        dong_hy_hamlets,
        &figures::Areas {
            old: &old_codes,
            new: &new_areas,
        },
        SEED,
    );
    let data_values = insert_figures(db, &figs).await?;

    if db.get_database_backend() == DbBackend::Postgres {
        for table in ["team", "person", "activity"] {
            db.execute_unprepared(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 (SELECT MAX(id) FROM {table}))"
            ))
            .await?;
        }
    }
    let units = admin_unit::Entity::find().count(db).await? as usize;
    Ok(DemoReport {
        units,
        teams: plan.teams.len(),
        members: plan.persons.len(),
        activities,
        data_values,
    })
}

/// Inserts the teams with ids of our choosing; returns them, in plan order.
async fn insert_teams(db: &impl ConnectionTrait, plan: &Plan) -> Result<Vec<i64>> {
    let base = next_id(db, "team").await?;
    let ids: Vec<i64> = (0..plan.teams.len() as i64).map(|i| base + i).collect();
    let rows: Vec<team::ActiveModel> = plan
        .teams
        .iter()
        .zip(&ids)
        .map(|(t, id)| {
            let created = stamp(t.founded_on, 2 * 3600);
            team::ActiveModel {
                id: Set(*id),
                code: Set(t.code.clone()),
                name: Set(t.name.clone()),
                name_search: Set(crate::text::fold(&t.name)),
                unit_code: Set(t.unit_code.clone()),
                founded_on: Set(t.founded_on),
                decision_number: Set(Some(t.decision_number.clone())),
                decision_date: Set(Some(t.founded_on)),
                status: Set(if t.dissolved_on.is_some() {
                    TeamStatus::Dissolved
                } else {
                    TeamStatus::Active
                }),
                dissolved_on: Set(t.dissolved_on),
                dissolution_reason: Set(t.dissolution_reason.map(str::to_owned)),
                created_at: Set(created),
                updated_at: Set(t.dissolved_on.map_or(created, |d| stamp(d, 3 * 3600))),
            }
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        team::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(ids)
}

/// Inserts the people and their memberships.
async fn insert_people(db: &impl ConnectionTrait, plan: &Plan, team_ids: &[i64]) -> Result<()> {
    let base = next_id(db, "person").await?;
    let mut joined: Vec<NaiveDate> = vec![ymd(2022, 3, 1); plan.persons.len()];
    for m in &plan.memberships {
        if let Some(j) = joined.get_mut(m.person) {
            *j = m.started_on;
        }
    }
    let people: Vec<person::ActiveModel> = plan
        .persons
        .iter()
        .zip(&joined)
        .enumerate()
        .map(|(i, (p, j))| person::ActiveModel {
            id: Set(base + i as i64),
            full_name: Set(p.full_name.clone()),
            name_search: Set(crate::text::fold(&p.full_name)),
            gender: Set(Some(p.gender)),
            birth_year: Set(Some(p.birth_year)),
            phone: Set(Some(p.phone.clone())),
            email: Set(p.email.clone()),
            created_at: Set(stamp(*j, 2 * 3600 + 60)),
        })
        .collect();
    for chunk in people.chunks(CHUNK) {
        person::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    let mut memberships = Vec::with_capacity(plan.memberships.len());
    for m in &plan.memberships {
        let Some(team_id) = team_ids.get(m.team) else {
            continue;
        };
        let created = stamp(m.started_on, 2 * 3600 + 120);
        memberships.push(membership::ActiveModel {
            team_id: Set(*team_id),
            person_id: Set(base + m.person as i64),
            role: Set(m.role),
            affiliation: Set(m.affiliation.to_owned()),
            started_on: Set(m.started_on),
            ended_on: Set(m.ended_on),
            end_reason: Set(m.end_reason.map(str::to_owned)),
            created_at: Set(created),
            updated_at: Set(m.ended_on.map_or(created, |d| stamp(d, 9 * 3600))),
            ..Default::default()
        });
    }
    for chunk in memberships.chunks(CHUNK) {
        membership::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Inserts every team's activities and their outcomes; returns how many activities.
async fn insert_activities(
    db: &impl ConnectionTrait,
    plan: &Plan,
    team_ids: &[i64],
    scale: u32,
) -> Result<usize> {
    let mut next = next_id(db, "activity").await?;
    let root = Rng::new(SEED);
    let mut acts: Vec<activity::ActiveModel> = Vec::with_capacity(CHUNK + 64);
    let mut outs: Vec<activity_outcome::ActiveModel> = Vec::with_capacity(CHUNK * 3);
    let mut count = 0;
    for (i, (team, team_id)) in plan.teams.iter().zip(team_ids).enumerate() {
        let mut rng = root.fork(0x1_0000 + i as u64);
        for a in activities::for_team(team, scale, &mut rng) {
            let id = next;
            next += 1;
            count += 1;
            // Recorded the evening of the day, at a time that varies from row to row.
            let at = stamp(a.occurred_on, 10 * 3600 + (id % 28_800) as u32);
            acts.push(activity::ActiveModel {
                id: Set(id),
                team_id: Set(*team_id),
                unit_code: Set(team.unit_code.clone()),
                kind_code: Set(a.kind.to_owned()),
                occurred_on: Set(a.occurred_on),
                title: Set(a.title.to_owned()),
                description: Set(a.description.map(str::to_owned)),
                participants: Set(Some(a.participants)),
                households_reached: Set(Some(a.households_reached)),
                status: Set(ActivityStatus::Recorded),
                submitted_by: Set(SUBMITTED_BY.to_owned()),
                client_id: Set(Some(CLIENT_ID.to_owned())),
                submitter: Set(crate::auth::identity(SUBMITTED_BY, Some(CLIENT_ID))),
                created_at: Set(at),
                updated_at: Set(at),
                // The demo's activities were not submitted through intake: no key.
                idempotency_key: Set(None),
                request_hash: Set(None),
            });
            for (service, people, households) in a.outcomes {
                outs.push(activity_outcome::ActiveModel {
                    activity_id: Set(id),
                    service_code: Set(service.to_owned()),
                    people: Set(people),
                    households: Set(households),
                    ..Default::default()
                });
            }
            if acts.len() >= CHUNK {
                flush_activities(db, &mut acts, &mut outs).await?;
            }
        }
    }
    flush_activities(db, &mut acts, &mut outs).await?;
    Ok(count)
}

async fn flush_activities(
    db: &impl ConnectionTrait,
    acts: &mut Vec<activity::ActiveModel>,
    outs: &mut Vec<activity_outcome::ActiveModel>,
) -> Result<()> {
    for chunk in acts.chunks(CHUNK) {
        activity::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    for chunk in outs.chunks(CHUNK) {
        activity_outcome::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    acts.clear();
    outs.clear();
    Ok(())
}

/// Inserts the reported figures; returns how many.
async fn insert_figures(db: &impl ConnectionTrait, figs: &[figures::Figure]) -> Result<usize> {
    let rows: Vec<data_value::ActiveModel> = figs
        .iter()
        .map(|f| data_value::ActiveModel {
            unit_code: Set(f.unit_code.clone()),
            element_code: Set(f.element.to_owned()),
            period_start: Set(f.period_start),
            period_end: Set(f.period_end),
            value: Set(f.value),
            source_system: Set(f.source.to_owned()),
            submitted_by: Set(SUBMITTED_BY.to_owned()),
            client_id: Set(Some(CLIENT_ID.to_owned())),
            submitted_at: Set(stamp(add_days(f.period_end, 5), 3 * 3600)),
            submitter: Set(crate::auth::identity(SUBMITTED_BY, Some(CLIENT_ID))),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        data_value::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(code: &str, level: UnitLevel, parent: Option<&str>) -> UnitRow {
        UnitRow {
            code: code.into(),
            name: format!("Unit {code}"),
            unit_type: None,
            level,
            parent_code: parent.map(str::to_owned),
        }
    }

    #[test]
    fn full_successions_win() {
        let rows = vec![
            SuccessionRow {
                new_code: "A".into(),
                old_code: "x".into(),
                kind: SuccessionKind::Partial,
            },
            SuccessionRow {
                new_code: "B".into(),
                old_code: "x".into(),
                kind: SuccessionKind::Full,
            },
            SuccessionRow {
                new_code: "C".into(),
                old_code: "x".into(),
                kind: SuccessionKind::Partial,
            },
        ];
        assert_eq!(successors(&rows).get("x"), Some(&"B"));
    }

    #[test]
    fn extra_communes_are_elsewhere_in_the_province_and_survive() {
        let old = vec![
            row("19", UnitLevel::Province, None),
            row("169", UnitLevel::District, Some("19")),
            row("164", UnitLevel::District, Some("19")),
            row("070", UnitLevel::District, Some("06")),
            row("05677", UnitLevel::Commune, Some("169")),
            row("05485", UnitLevel::Commune, Some("164")),
            row("05488", UnitLevel::Commune, Some("164")),
            row("01000", UnitLevel::Commune, Some("070")),
        ];
        let new = vec![
            row("05677", UnitLevel::Commune, Some("19")),
            row("05485", UnitLevel::Commune, Some("19")),
            row("01000", UnitLevel::Commune, Some("19")),
        ];
        let codes: Vec<String> = other_communes(&old, &new)
            .into_iter()
            .map(|c| c.code)
            .collect();
        assert_eq!(codes, vec!["05485".to_owned()]);
    }

    #[test]
    fn stamps_are_fixed_times_of_the_day() {
        let t = stamp(ymd(2023, 5, 2), 3600 + 61);
        assert_eq!(t.to_rfc3339(), "2023-05-02T01:01:01+00:00");
        assert_eq!(stamp(ymd(2023, 5, 2), 86_400), stamp(ymd(2023, 5, 2), 0));
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let err = units_file(Path::new("/nonexistent-dir"), OLD_CATALOGUE)
            .err()
            .map(|e| e.message())
            .unwrap_or_default();
        assert!(
            err.contains("/nonexistent-dir/admin_units_2025-03-01.csv"),
            "{err}"
        );
    }
}
