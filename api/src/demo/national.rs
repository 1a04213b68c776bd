//! The national data set (`cnscd seed national`): every province of the real catalogues, for
//! work at scale. Deterministic from its seed: the same rows on every machine.
//!
//! Units are both catalogues and their successions, loaded by the importer. The catalogues stop
//! at communes, so each commune of 2025-03-01 gets six to fourteen generated hamlets (local
//! codes `<commune>-NN`, as the demo's): tổ dân phố (khu phố in the south) in wards and towns;
//! elsewhere thôn, xóm, bản, buôn or ấp as the region names them. A hamlet whose commune
//! ended on 2025-06-30 moves under the commune that succeeded it (a FULL succession first,
//! the importer's rule): two versions, as the demo's hamlets of Đồng Hỷ have.
//!
//! Most hamlets (93%) have a team, and one commune in twenty that survived the reorganisation
//! a commune-level team of its own; teams were founded from late 2021 to mid-2025 (most in
//! 2022, one decision per commune and year), a few dissolved since. Each has five or six
//! members, as the demo's teams have. `--activities N` activities are shared among the teams
//! by how long each was active and how keen it is, and spread over 2023-01-01..2025-12-31 as
//! the demo's are. Figures: population, households and adults per hamlet and year; dossiers
//! per commune and month, e-documents and household businesses per commune and year, on the
//! communes of the day (the old ones until 2025-06-30, the new ones after).
use super::activities::{self, Activity};
use super::figures::{DVCQG, Figure, IOFFICE, THONG_KE, allocate};
use super::load::{self, Source};
use super::plan::{self, Hamlet, Plan, Team, add_days, day_in, ymd};
use super::rng::Rng;
use super::{NEW_CATALOGUE, OLD_CATALOGUE, SUCCESSIONS, names, reorganisation_day};
use crate::error::{Error, Result};
use crate::seed::bulk::Loader;
use crate::seed::progress::Progress;
use crate::units::import::{self, SuccessionRow, UnitRow};
use chrono::NaiveDate;
use cnscd_entity::OPEN_END;
use cnscd_entity::codes::UnitLevel;
use sea_orm::DatabaseConnection;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// The seed used when none is given.
pub const SEED: u64 = 0x0C5C_D034_2025_0701;
/// Activities when `--activities` is not given.
pub const DEFAULT_ACTIVITIES: u64 = 10_000_000;
/// Code prefix of the national data set's teams.
pub const TEAM_PREFIX: &str = "QG-";
/// Generated hamlets per commune.
pub const HAMLETS_PER_COMMUNE: (i64, i64) = (6, 14);
/// Share of hamlets with a team.
pub const TEAM_SHARE: f64 = 0.93;

const SOURCE: Source = Source {
    submitted_by: "national-seed",
    client_id: "national",
};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub activities: u64,
    pub seed: u64,
    /// Provinces of 2025-07-01 whose communes get hamlets, teams and figures (all when empty;
    /// the catalogues are loaded whole either way).
    pub provinces: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            activities: DEFAULT_ACTIVITIES,
            seed: SEED,
            provinces: Vec::new(),
        }
    }
}

/// What [`seed`] loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NationalReport {
    /// Unit versions (catalogues and hamlets).
    pub units: usize,
    pub hamlets: usize,
    /// Hamlets under a new commune from 2025-07-01.
    pub hamlets_moved: usize,
    pub teams: usize,
    pub members: usize,
    pub memberships: usize,
    pub activities: u64,
    pub data_values: u64,
}

/// A commune of 2025-03-01 in the data set.
#[derive(Debug, Clone)]
pub struct OldCommune {
    pub code: String,
    pub name: String,
    pub unit_type: Option<String>,
    /// Its province before the reorganisation.
    pub old_province: String,
    /// Its province from 2025-07-01.
    pub province: String,
    /// Where its hamlets go on 2025-07-01 (itself when its code lives on).
    pub successor: Option<String>,
    /// Whether its code is a commune of 2025-07-01 too.
    pub survives: bool,
}

/// A generated hamlet and, when its commune ended, the commune it moves under.
#[derive(Debug, Clone)]
pub struct NationalHamlet {
    pub hamlet: Hamlet,
    pub moved_to: Option<String>,
}

/// The data set as plain values, before anything is written.
#[derive(Debug, Default)]
pub struct NationalPlan {
    pub communes: Vec<OldCommune>,
    pub hamlets: Vec<NationalHamlet>,
    /// Teams (in unit code order), people and memberships.
    pub plan: Plan,
    /// Activities of each team.
    pub counts: Vec<u64>,
}

/// The communes of 2025-03-01 in `provinces` (all when empty), with their provinces and
/// successors.
pub fn communes(
    old: &[UnitRow],
    new: &[UnitRow],
    successions: &[SuccessionRow],
    provinces: &[String],
) -> Vec<OldCommune> {
    let parent: HashMap<&str, &str> = old
        .iter()
        .filter_map(|r| Some((r.code.as_str(), r.parent_code.as_deref()?)))
        .collect();
    let level: HashMap<&str, UnitLevel> = old.iter().map(|r| (r.code.as_str(), r.level)).collect();
    let province_of = |code: &str| -> Option<String> {
        let mut c = code;
        for _ in 0..4 {
            if level.get(c) == Some(&UnitLevel::Province) {
                return Some(c.to_owned());
            }
            c = parent.get(c)?;
        }
        None
    };
    let new_communes: HashSet<&str> = new
        .iter()
        .filter(|r| r.level == UnitLevel::Commune)
        .map(|r| r.code.as_str())
        .collect();
    let new_parent: HashMap<&str, &str> = new
        .iter()
        .filter_map(|r| Some((r.code.as_str(), r.parent_code.as_deref()?)))
        .collect();
    let successor = import::successors(successions);
    old.iter()
        .filter(|r| r.level == UnitLevel::Commune)
        .filter_map(|r| {
            let old_province = province_of(&r.code)?;
            let survives = new_communes.contains(r.code.as_str());
            let moves_to = if survives {
                Some(r.code.clone())
            } else {
                successor.get(&r.code).cloned()
            };
            let province = moves_to
                .as_deref()
                .and_then(|c| new_parent.get(c).copied())
                .map(str::to_owned)
                .or_else(|| successor.get(&old_province).cloned())
                .unwrap_or_else(|| old_province.clone());
            Some(OldCommune {
                code: r.code.clone(),
                name: r.name.clone(),
                unit_type: r.unit_type.clone(),
                old_province,
                province,
                successor: moves_to,
                survives,
            })
        })
        .filter(|c| provinces.is_empty() || provinces.contains(&c.province))
        .collect()
}

/// What hamlets are called where (by the province's code before the reorganisation).
fn hamlet_words(old_province: &str, town: bool) -> &'static [(&'static str, f64)] {
    let p: u32 = old_province.parse().unwrap_or(0);
    let north_mountains = [2, 4, 6, 8, 10, 11, 12, 14, 15, 17, 19, 20, 24, 25];
    match (town, p) {
        (true, 70..) => &[("Khu phố", 1.0)],
        (true, _) => &[("Tổ dân phố", 1.0)],
        (false, 70..) => &[("Ấp", 1.0)],
        (false, 62..=68) => &[("Thôn", 0.7), ("Buôn", 0.3)],
        (false, _) if north_mountains.contains(&p) => &[("Xóm", 0.4), ("Thôn", 0.4), ("Bản", 0.2)],
        _ => &[("Thôn", 1.0)],
    }
}

/// Six to fourteen hamlets for each commune.
pub fn hamlets(communes: &[OldCommune], rng: &mut Rng) -> Vec<NationalHamlet> {
    let mut out = Vec::new();
    for c in communes {
        let town = matches!(c.unit_type.as_deref(), Some("Phường" | "Thị trấn"));
        let words = hamlet_words(&c.old_province, town);
        let count = rng.range(HAMLETS_PER_COMMUNE.0, HAMLETS_PER_COMMUNE.1) as usize;
        let mut pool: Vec<&str> = names::HAMLET_NAMES.to_vec();
        rng.shuffle(&mut pool);
        let mut pool = pool.into_iter();
        for n in 1..=count {
            let word = rng.weighted(words).unwrap_or("Thôn");
            let name = match pool.next() {
                Some(name) if !town && rng.chance(0.6) => format!("{word} {name}"),
                _ => format!("{word} {n}"),
            };
            let moved_to = c.successor.clone().filter(|s| !c.survives && *s != c.code);
            out.push(NationalHamlet {
                hamlet: Hamlet {
                    code: format!("{}-{n:02}", c.code),
                    name,
                    unit_type: word,
                    commune: c.code.clone(),
                },
                moved_to,
            });
        }
    }
    out
}

/// The year a team was founded, with its share of teams.
const FOUNDED: &[(i32, f64)] = &[
    (2021, 0.04),
    (2022, 0.62),
    (2023, 0.20),
    (2024, 0.10),
    (2025, 0.04),
];

/// The first and last day a team founded in `year` may have been founded.
fn founding_window(year: i32) -> (NaiveDate, NaiveDate) {
    match year {
        2021 => (ymd(2021, 10, 1), ymd(2021, 12, 31)),
        2022 => (ymd(2022, 3, 1), ymd(2022, 12, 31)),
        2025 => (ymd(2025, 1, 2), ymd(2025, 6, 30)),
        y => (ymd(y, 1, 2), ymd(y, 12, 31)),
    }
}

/// Days a team is active within the activities' window (none when it is not).
fn active_window(team: &Team) -> Option<(NaiveDate, NaiveDate)> {
    let from = activities::first_day().max(add_days(team.founded_on, 1));
    let to = team
        .dissolved_on
        .and_then(|d| d.pred_opt())
        .map_or(activities::last_day(), |d| d.min(activities::last_day()));
    (from <= to).then_some((from, to))
}

/// Everything but the activities themselves: hamlets, teams, people, memberships, and how
/// many activities each team has.
pub fn build(communes: Vec<OldCommune>, options: &Options) -> NationalPlan {
    let base = Rng::new(options.seed);
    let hamlets = hamlets(&communes, &mut base.fork(1));
    let mut plan = Plan::default();
    let mut rng = base.fork(2);
    // One founding decision per commune and year.
    let mut decisions: HashMap<(String, i32), (NaiveDate, String)> = HashMap::new();
    let mut decision = |commune: &str, rng: &mut Rng| {
        let year = rng.weighted(FOUNDED).unwrap_or(2022);
        decisions
            .entry((commune.to_owned(), year))
            .or_insert_with(|| {
                let (from, to) = founding_window(year);
                (
                    day_in(rng, from, to),
                    format!("{}/QĐ-UBND", rng.range(12, 980)),
                )
            })
            .clone()
    };
    let mut units: Vec<(String, String, String)> = Vec::new(); // (unit, name, commune)
    for h in &hamlets {
        if rng.chance(TEAM_SHARE) {
            units.push((
                h.hamlet.code.clone(),
                h.hamlet.name.clone(),
                h.hamlet.commune.clone(),
            ));
        }
    }
    for c in &communes {
        if c.survives && rng.chance(0.05) {
            units.push((c.code.clone(), c.name.clone(), c.code.clone()));
        }
    }
    units.sort();
    for (unit, name, commune) in units {
        let (founded_on, decision_number) = decision(&commune, &mut rng);
        let mut team = Team {
            code: format!("{TEAM_PREFIX}{unit}"),
            name: format!("Tổ CNSCĐ {name}"),
            unit_code: unit,
            founded_on,
            decision_number,
            dissolved_on: None,
            dissolution_reason: None,
        };
        if rng.chance(0.015) {
            let from = add_days(founded_on, 180).max(ymd(2024, 1, 1));
            if from < ymd(2025, 11, 30) {
                team.dissolved_on = Some(day_in(&mut rng, from, ymd(2025, 11, 30)));
                team.dissolution_reason = rng.pick(names::DISSOLUTION_REASONS);
            }
        }
        plan.teams.push(team);
    }
    let mut rng = base.fork(3);
    for team in 0..plan.teams.len() {
        plan::members(&mut plan, team, &mut rng);
    }
    // Activities: by days active, times how keen each team is.
    let weights: Vec<f64> = plan
        .teams
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let zeal = base.fork(0x2_0000 + i as u64).between(0.5, 1.5);
            active_window(t).map_or(0.0, |(from, to)| zeal * ((to - from).num_days() + 1) as f64)
        })
        .collect();
    let counts = allocate(options.activities, &weights);
    NationalPlan {
        communes,
        hamlets,
        plan,
        counts,
    }
}

/// The activities of `team`: `count` of them on days of its active window, in date order.
pub fn team_activities(team: &Team, count: u64, rng: &mut Rng) -> Vec<Activity> {
    let Some((from, to)) = active_window(team) else {
        return Vec::new();
    };
    let days = (to - from).num_days() as u64 + 1;
    let mut dates: Vec<NaiveDate> = (0..count)
        .map(|_| add_days(from, rng.below(days)))
        .collect();
    dates.sort();
    dates
        .into_iter()
        .map(|d| activities::activity(d, rng))
        .collect()
}

/// How busy each month is at the one-stop office (Tết in January or February).
const MONTH_FACTOR: [f64; 12] = [
    0.95, 0.7, 1.05, 1.0, 1.0, 0.95, 1.0, 1.05, 1.1, 1.05, 1.0, 1.15,
];

fn month_end(y: i32, m: u32) -> NaiveDate {
    let next = if m == 12 {
        ymd(y + 1, 1, 1)
    } else {
        ymd(y, m + 1, 1)
    };
    next.pred_opt().unwrap_or(next)
}

fn figure(
    unit: &str,
    element: &'static str,
    start: NaiveDate,
    end: NaiveDate,
    value: f64,
    source: &'static str,
) -> Figure {
    Figure {
        unit_code: unit.to_owned(),
        element,
        period_start: start,
        period_end: end,
        value,
        source,
    }
}

/// A commune's monthly dossiers, yearly e-documents and household businesses over `periods`
/// ((year, first month, last month)), for a commune of `population`.
fn commune_figures(
    code: &str,
    population: f64,
    periods: &[(i32, u32, u32)],
    rng: &mut Rng,
    out: &mut Vec<Figure>,
) {
    // Dossiers a resident files in a year.
    let per_person = rng.between(0.3, 0.5);
    let online = rng.between(0.55, 0.8);
    let edocs = rng.between(0.6, 1.0);
    let businesses = rng.between(0.03, 0.06);
    let epay = rng.between(0.5, 0.8);
    for &(year, first, last) in periods {
        let growth = 1.0 + 0.06 * f64::from(year - 2023);
        for m in first..=last {
            let total = (population * per_person / 12.0
                * MONTH_FACTOR[(m - 1) as usize]
                * growth
                * rng.between(0.85, 1.15))
            .round()
            .max(1.0);
            let share = (online * growth * rng.between(0.95, 1.05)).min(0.97);
            let start = ymd(year, m, 1);
            let end = month_end(year, m);
            out.push(figure(code, "DOSSIERS_TOTAL", start, end, total, DVCQG));
            out.push(figure(
                code,
                "DOSSIERS_ONLINE",
                start,
                end,
                (total * share).round(),
                DVCQG,
            ));
        }
        let start = ymd(year, first, 1);
        let end = month_end(year, last);
        let months = f64::from(last - first + 1) / 12.0;
        out.push(figure(
            code,
            "EDOCS_EXCHANGED",
            start,
            end,
            (population * edocs * growth * months).round(),
            IOFFICE,
        ));
        if months >= 0.5 && !(year == 2025 && first == 1) {
            let total = (population * businesses * growth).round().max(1.0);
            let share = (epay * growth).min(0.95);
            out.push(figure(code, "HH_BUSINESSES", start, end, total, THONG_KE));
            out.push(figure(
                code,
                "HH_BUSINESSES_EPAY",
                start,
                end,
                (total * share).round(),
                THONG_KE,
            ));
        }
    }
}

/// Every reported figure of the data set.
pub fn figures(plan: &NationalPlan, seed: u64) -> Vec<Figure> {
    let base = Rng::new(seed);
    let mut rng = base.fork(4);
    let mut out = Vec::new();
    let mut commune_pop: HashMap<&str, f64> = HashMap::new();
    for h in &plan.hamlets {
        let town = matches!(h.hamlet.unit_type, "Tổ dân phố" | "Khu phố");
        let mut pop = rng.range(400, 2_200) as f64 * if town { 1.3 } else { 1.0 };
        let mut households = (pop / rng.between(3.3, 4.0)).round();
        let adult_share = rng.between(0.70, 0.76);
        *commune_pop.entry(h.hamlet.commune.as_str()).or_default() += pop;
        for year in 2023..=2025 {
            if year > 2023 {
                pop = (pop * rng.between(1.003, 1.012)).round();
                households = (households * rng.between(1.008, 1.02)).round();
            }
            let (start, end) = (ymd(year, 1, 1), ymd(year, 12, 31));
            let code = h.hamlet.code.as_str();
            out.push(figure(code, "POPULATION", start, end, pop, THONG_KE));
            out.push(figure(code, "HOUSEHOLDS", start, end, households, THONG_KE));
            out.push(figure(
                code,
                "ADULTS",
                start,
                end,
                (pop * adult_share).round(),
                THONG_KE,
            ));
        }
    }
    let mut rng = base.fork(5);
    let mut new_pop: BTreeMap<&str, f64> = BTreeMap::new();
    for c in &plan.communes {
        let pop = commune_pop.get(c.code.as_str()).copied().unwrap_or(0.0);
        commune_figures(
            &c.code,
            pop,
            &[(2023, 1, 12), (2024, 1, 12), (2025, 1, 6)],
            &mut rng,
            &mut out,
        );
        if let Some(s) = &c.successor {
            *new_pop.entry(s.as_str()).or_default() += pop;
        }
    }
    for (code, pop) in new_pop {
        commune_figures(code, pop, &[(2025, 7, 12)], &mut rng, &mut out);
    }
    out
}

/// Loads the national data set into a database that has the schema and catalogues but no
/// units yet.
pub async fn seed(
    db: &DatabaseConnection,
    data_dir: &Path,
    options: &Options,
    progress: &Progress,
) -> Result<NationalReport> {
    let old = super::units_file(data_dir, OLD_CATALOGUE)?;
    let new = super::units_file(data_dir, NEW_CATALOGUE)?;
    let successions = super::successions_file(data_dir, SUCCESSIONS)?;
    if !import::is_empty(db).await? {
        return Err(Error::Conflict(
            "the database already holds units: the national data set loads into an empty \
             database (`cnscd migrate fresh` first)"
                .into(),
        ));
    }
    let known: HashSet<&str> = new
        .iter()
        .filter(|r| r.level == UnitLevel::Province)
        .map(|r| r.code.as_str())
        .collect();
    if let Some(p) = options
        .provinces
        .iter()
        .find(|p| !known.contains(p.as_str()))
    {
        return Err(Error::invalid(
            "provinces",
            format!("{p} is not a province of {NEW_CATALOGUE}"),
        ));
    }
    progress.phase("plan", None);
    let communes = communes(&old, &new, &successions, &options.provinces);
    let plan = build(communes, options);
    let figs = figures(&plan, options.seed);

    let loader = load::begin(db).await?;
    progress.phase("units", None);
    import::apply_units(&loader, &old, import::RECORDS_BEGIN, false).await?;
    import::apply_units(&loader, &new, reorganisation_day(), true).await?;
    import::apply_successions(&loader, &successions, reorganisation_day()).await?;
    write_hamlets(&loader, &plan.hamlets, progress).await?;
    let spans = load::closure(&loader, progress).await?;
    let team_ids = load::teams(&loader, &plan.plan.teams, progress).await?;
    load::people(&loader, &plan.plan, &team_ids, progress).await?;
    let root = Rng::new(options.seed);
    let generate = |i: usize| match (plan.plan.teams.get(i), plan.counts.get(i)) {
        (Some(team), Some(n)) => team_activities(team, *n, &mut root.fork(0x1_0000 + i as u64)),
        _ => Vec::new(),
    };
    let acts = load::Activities {
        teams: &plan.plan.teams,
        team_ids: &team_ids,
        generate: &generate,
        expected: Some(options.activities),
        source: SOURCE,
    };
    let activities = load::activities(&loader, &acts, &spans, progress).await?;
    let data_values = load::figures(&loader, &figs, SOURCE, progress).await?;
    let units = crate::db::count(&loader, "SELECT COUNT(*) AS n FROM admin_unit", vec![]).await?;
    load::finish(loader, db, progress).await?;
    progress.done();
    Ok(NationalReport {
        units: units as usize,
        hamlets: plan.hamlets.len(),
        hamlets_moved: plan.hamlets.iter().filter(|h| h.moved_to.is_some()).count(),
        teams: plan.plan.teams.len(),
        members: plan.plan.persons.len(),
        memberships: plan.plan.memberships.len(),
        activities,
        data_values,
    })
}

/// Writes the hamlets' codes and versions: from records' beginning under their commune, and
/// for a hamlet whose commune ended, from 2025-07-01 under its successor.
async fn write_hamlets(
    loader: &Loader,
    hamlets: &[NationalHamlet],
    progress: &Progress,
) -> Result<()> {
    progress.phase("hamlets", Some(hamlets.len() as u64));
    let mut w = loader.writer("admin_unit_code", &["code"]).await?;
    for h in hamlets {
        w.row().put(&h.hamlet.code).end();
        w.flush_if_full().await?;
    }
    w.finish().await?;
    let mut w = loader
        .writer(
            "admin_unit",
            &[
                "code",
                "name",
                "name_search",
                "unit_type",
                "level",
                "parent_code",
                "valid_from",
                "valid_to",
            ],
        )
        .await?;
    let last_old_day = reorganisation_day().pred_opt().unwrap_or(OPEN_END);
    for h in hamlets {
        let folded = crate::text::fold(&h.hamlet.name);
        let versions = match &h.moved_to {
            Some(to) => vec![
                (&h.hamlet.commune, import::RECORDS_BEGIN, last_old_day),
                (to, reorganisation_day(), OPEN_END),
            ],
            None => vec![(&h.hamlet.commune, import::RECORDS_BEGIN, OPEN_END)],
        };
        for (parent, from, to) in versions {
            w.row()
                .put(&h.hamlet.code)
                .put(&h.hamlet.name)
                .put(folded.as_str())
                .put(h.hamlet.unit_type)
                .put(UnitLevel::Hamlet.as_str())
                .put(parent)
                .put(from)
                .put(to)
                .end();
        }
        w.flush_if_full().await?;
        progress.set(w.count());
    }
    w.finish().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    fn activities_in_year(acts: &[Activity], year: i32) -> usize {
        acts.iter().filter(|a| a.occurred_on.year() == year).count()
    }

    fn row(code: &str, level: UnitLevel, parent: Option<&str>, kind: Option<&str>) -> UnitRow {
        UnitRow {
            code: code.into(),
            name: format!("Unit {code}"),
            unit_type: kind.map(str::to_owned),
            level,
            parent_code: parent.map(str::to_owned),
        }
    }

    fn succession(new: &str, old: &str) -> SuccessionRow {
        SuccessionRow {
            new_code: new.into(),
            old_code: old.into(),
            kind: cnscd_entity::codes::SuccessionKind::Full,
        }
    }

    /// Two old provinces merged into one; three communes, two of them merged.
    fn catalogues() -> (Vec<UnitRow>, Vec<UnitRow>, Vec<SuccessionRow>) {
        let old = vec![
            row("19", UnitLevel::Province, None, None),
            row("06", UnitLevel::Province, None, None),
            row("169", UnitLevel::District, Some("19"), None),
            row("060", UnitLevel::District, Some("06"), None),
            row("05677", UnitLevel::Commune, Some("169"), Some("Xã")),
            row("05692", UnitLevel::Commune, Some("169"), Some("Thị trấn")),
            row("01000", UnitLevel::Commune, Some("060"), Some("Xã")),
        ];
        let new = vec![
            row("19", UnitLevel::Province, None, None),
            row("05692", UnitLevel::Commune, Some("19"), None),
            row("01000", UnitLevel::Commune, Some("19"), None),
        ];
        let succ = vec![
            succession("19", "19"),
            succession("19", "06"),
            succession("05692", "05677"),
            succession("05692", "05692"),
            succession("01000", "01000"),
        ];
        (old, new, succ)
    }

    fn small_plan(seed: u64, activities: u64) -> NationalPlan {
        let (old, new, succ) = catalogues();
        let options = Options {
            activities,
            seed,
            provinces: Vec::new(),
        };
        build(communes(&old, &new, &succ, &[]), &options)
    }

    #[test]
    fn communes_know_their_provinces_and_successors() {
        let (old, new, succ) = catalogues();
        let all = communes(&old, &new, &succ, &[]);
        assert_eq!(all.len(), 3);
        let minh_lap = all.iter().find(|c| c.code == "05677");
        assert_eq!(minh_lap.and_then(|c| c.successor.as_deref()), Some("05692"));
        assert!(all.iter().all(|c| c.province == "19"));
        let bac_kan = all.iter().find(|c| c.code == "01000");
        assert_eq!(bac_kan.map(|c| c.old_province.as_str()), Some("06"));
        assert!(communes(&old, &new, &succ, &["01".into()]).is_empty());
    }

    #[test]
    fn hamlets_of_merged_communes_move_and_others_stay() {
        let plan = small_plan(7, 1_000);
        assert!(plan.hamlets.len() >= 18 && plan.hamlets.len() <= 42);
        for h in &plan.hamlets {
            assert!(h.hamlet.code.starts_with(&format!("{}-", h.hamlet.commune)));
            match h.hamlet.commune.as_str() {
                "05677" => assert_eq!(h.moved_to.as_deref(), Some("05692")),
                _ => assert_eq!(h.moved_to, None),
            }
        }
        let towns: Vec<&NationalHamlet> = plan
            .hamlets
            .iter()
            .filter(|h| h.hamlet.commune == "05692")
            .collect();
        assert!(towns.iter().all(|h| h.hamlet.unit_type == "Tổ dân phố"));
        let codes: HashSet<&str> = plan
            .hamlets
            .iter()
            .map(|h| h.hamlet.code.as_str())
            .collect();
        assert_eq!(codes.len(), plan.hamlets.len());
    }

    #[test]
    fn activities_add_up_to_the_number_asked_for() {
        let plan = small_plan(7, 1_000);
        assert_eq!(plan.counts.iter().sum::<u64>(), 1_000);
        let root = Rng::new(7);
        let mut total = 0;
        for (i, (team, n)) in plan.plan.teams.iter().zip(&plan.counts).enumerate() {
            let acts = team_activities(team, *n, &mut root.fork(0x1_0000 + i as u64));
            assert_eq!(acts.len() as u64, *n);
            let (from, to) = active_window(team).unwrap_or((team.founded_on, team.founded_on));
            assert!(
                acts.iter()
                    .all(|a| a.occurred_on >= from && a.occurred_on <= to)
            );
            total += activities_in_year(&acts, 2023)
                + activities_in_year(&acts, 2024)
                + activities_in_year(&acts, 2025);
        }
        assert_eq!(total, 1_000);
    }

    #[test]
    fn the_plan_is_deterministic_and_seeded() {
        let names = |p: &NationalPlan| {
            p.plan
                .persons
                .iter()
                .map(|x| x.full_name.clone())
                .collect::<Vec<_>>()
        };
        let (a, b, c) = (small_plan(5, 100), small_plan(5, 100), small_plan(6, 100));
        assert_eq!(names(&a), names(&b));
        assert_eq!(a.counts, b.counts);
        assert_ne!(names(&a), names(&c));
        let leaders = a
            .plan
            .memberships
            .iter()
            .filter(|m| m.role == cnscd_entity::codes::MemberRole::Leader)
            .map(|m| m.team)
            .collect::<HashSet<_>>();
        assert_eq!(leaders.len(), a.plan.teams.len());
        for t in &a.plan.teams {
            assert!(t.founded_on >= ymd(2021, 10, 1) && t.founded_on <= ymd(2025, 6, 30));
            assert!(t.code.starts_with(TEAM_PREFIX));
        }
    }

    #[test]
    fn figures_cover_old_communes_before_and_new_ones_after() {
        let plan = small_plan(3, 100);
        let figs = figures(&plan, 3);
        let after: HashSet<&str> = figs
            .iter()
            .filter(|f| f.element == "DOSSIERS_TOTAL" && f.period_start >= reorganisation_day())
            .map(|f| f.unit_code.as_str())
            .collect();
        assert_eq!(after, HashSet::from(["05692", "01000"]));
        assert!(figs.iter().any(|f| f.element == "POPULATION"
            && f.unit_code.starts_with("05677-")
            && f.period_start == ymd(2025, 1, 1)));
        for f in figs.iter().filter(|f| f.element == "DOSSIERS_ONLINE") {
            assert!(f.value >= 0.0 && f.period_end >= f.period_start);
        }
        assert_eq!(figs, figures(&plan, 3));
    }
}
