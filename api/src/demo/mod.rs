//! The demo data set: Đồng Hỷ's teams, members, activities and reported figures.
//!
//! [`seed`] loads, in one transaction and the same way on every run: both unit catalogues with
//! their successions; 143 hamlets of Đồng Hỷ district (169) with a team each (xóm Cà Phê in
//! Minh Lập among them), about 800 synthetic members; two to four activities per team and
//! month from 2023 to 2025 (times the scale); and the district's reported figures. Everything
//! is drawn from a fixed-seed generator ([`rng::Rng`]), never from the clock.
//!
//! Rows are written in bulk ([`load`], through [`crate::seed::bulk`]: COPY on PostgreSQL),
//! not through the services: there is no audit trail for them, and the activity rollups are
//! written with them. The national data set ([`national`]) is made of the same parts.
use cnscd_entity::codes::UnitLevel;
mod activities;
mod figures;
pub mod load;
mod names;
pub mod national;
mod plan;
mod rng;
mod status;

pub use status::{first_team_id, holds_only_demo_data, is_loaded};

use crate::error::{Error, Result};
use crate::seed::bulk::Loader;
use crate::seed::progress::Progress;
use crate::units::import::{self, Parsed, SuccessionRow, UnitRow};
use chrono::NaiveDate;
use cnscd_entity::admin_unit;
use plan::{Commune, DISTRICT, PROVINCE, ymd};
use rng::Rng;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use std::collections::HashSet;
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
/// Who the demo's rows say submitted them.
const SOURCE: load::Source = load::Source {
    submitted_by: "demo-seed",
    client_id: "demo",
};

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
    seed_with(db, data_dir, scale, &Progress::hidden()).await
}

/// [`seed`], showing its progress.
pub async fn seed_with(
    db: &DatabaseConnection,
    data_dir: &Path,
    scale: u32,
    progress: &Progress,
) -> crate::error::Result<DemoReport> {
    let scale = scale.max(1);
    let old = units_file(data_dir, OLD_CATALOGUE)?;
    let new = units_file(data_dir, NEW_CATALOGUE)?;
    let successions = successions_file(data_dir, SUCCESSIONS)?;
    if is_loaded(db).await? {
        return Err(Error::Conflict(
            "the demo data set is already loaded in this database".into(),
        ));
    }
    let loader = load::begin(db).await?;
    let report = fill(&loader, &old, &new, &successions, scale, progress).await?;
    load::finish(loader, db, progress).await?;
    progress.done();
    Ok(report)
}

fn read(data_dir: &Path, name: &str) -> Result<(String, String)> {
    let path = data_dir.join(name);
    let shown = path.display().to_string();
    let content = std::fs::read_to_string(&path)
        .map_err(|e| Error::Internal(format!("cannot read {shown}: {e}")))?;
    Ok((content, shown))
}

pub(crate) fn units_file(data_dir: &Path, name: &str) -> Result<Vec<UnitRow>> {
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

pub(crate) fn successions_file(data_dir: &Path, name: &str) -> Result<Vec<SuccessionRow>> {
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

async fn fill(
    loader: &Loader,
    old: &[UnitRow],
    new: &[UnitRow],
    successions: &[SuccessionRow],
    scale: u32,
    progress: &Progress,
) -> Result<DemoReport> {
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

    // 1. Units: the old catalogue, Đồng Hỷ's hamlets, the new catalogue, the successions
    //    (which move the hamlets of merged communes), then the closure.
    progress.phase("units", None);
    import::apply_units(loader, old, import::RECORDS_BEGIN, false).await?;
    let hamlet_rows: Vec<UnitRow> = plan.hamlets.iter().map(plan::Hamlet::unit_row).collect();
    import::apply_units(loader, &hamlet_rows, import::RECORDS_BEGIN, false).await?;
    import::apply_units(loader, new, reorganisation_day(), true).await?;
    import::apply_successions(loader, successions, reorganisation_day()).await?;
    let spans = load::closure(loader, progress).await?;

    // 2. Teams, people, memberships.
    let team_ids = load::teams(loader, &plan.teams, progress).await?;
    load::people(loader, &plan, &team_ids, progress).await?;

    // 3. Activities, their outcomes and rollups.
    let root = Rng::new(SEED);
    let generate = |i: usize| match plan.teams.get(i) {
        Some(team) => activities::for_team(team, scale, &mut root.fork(0x1_0000 + i as u64)),
        None => Vec::new(),
    };
    let acts = load::Activities {
        teams: &plan.teams,
        team_ids: &team_ids,
        generate: &generate,
        expected: None,
        source: SOURCE,
    };
    let activities = load::activities(loader, &acts, &spans, progress).await?;

    // 4. Reported figures.
    let succ = import::successors(successions);
    let old_codes: Vec<String> = communes.iter().map(|c| c.code.clone()).collect();
    let mut new_areas: Vec<(String, Vec<String>)> = Vec::new();
    for c in &old_codes {
        let Some(n) = succ.get(c.as_str()) else {
            continue;
        };
        match new_areas.iter_mut().find(|(code, _)| code == n) {
            Some((_, olds)) => olds.push(c.clone()),
            None => new_areas.push((n.clone(), vec![c.clone()])),
        }
    }
    let figs = figures::figures(
        &plan.hamlets,
        &figures::Areas {
            old: &old_codes,
            new: &new_areas,
        },
        SEED,
    );
    let data_values = load::figures(loader, &figs, SOURCE, progress).await?;

    let units = admin_unit::Entity::find().count(loader).await? as usize;
    Ok(DemoReport {
        units,
        teams: plan.teams.len(),
        members: plan.persons.len(),
        activities: activities as usize,
        data_values: data_values as usize,
    })
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
