//! What indicators are computed from, held in memory: the dated hierarchy (unit versions, the
//! closure, the successions), the catalogue of data elements, the indicator definitions, the
//! teams and memberships behind the state elements, and the reported figures.
//!
//! The copy is labelled with the database's `data_generation` counter, which triggers bump in
//! the transaction of any change to those tables (see the migration
//! `m20261129_000004_data_generation`). A request reads the counter (one statement) and uses
//! the copy when it is current, or loads a new one first, so every replica answers from what
//! is committed: a change made through one replica (or by hand in the database) is seen by the
//! others on their next request. The monthly activity rollups (`unit_month_fact`, one row per
//! unit where activities were recorded, element and month, plus the deltas in
//! `unit_month_delta` not yet folded into them) are held too, summed up the hierarchy as of
//! their days, and kept current from their stamps (see [`crate::activities::rollup`]): a copy
//! remembers a [`Mark`] past which stamps may still change, and catches up by reading the rows
//! and deltas stamped past it (one more statement, only when activities came in). On SQLite
//! the mark is the rollup generation (`data_generation` row 2); on PostgreSQL it is the
//! snapshot the copy last read with: the transactions still running then and those started
//! since (`pg_current_snapshot()`). Any other stamp belongs to a transaction that had ended,
//! so its rows were read as they stay. The mark is taken by the statement that reads, so each
//! delta (an increment) is read exactly once.
//!
//! States are kept as timelines (the count on every day, as steps) per unit where teams and
//! memberships sit; reference figures per day looked at are computed once per copy and kept.
use crate::auth::{Coverage, Scope};
use crate::db::query;
use crate::error::Result;
use async_graphql::futures_util::StreamExt;
use chrono::{Datelike, NaiveDate};
use cnscd_entity::codes::{SuccessionKind, UnitLevel};
use cnscd_entity::{
    admin_unit, admin_unit_closure, admin_unit_succession, data_element, indicator_definition,
};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, StreamTrait};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

/// The in-memory copy for one database, shared by every request on it.
#[derive(Clone, Default)]
pub struct Store {
    current: Arc<RwLock<Option<Arc<Snapshot>>>>,
    /// One load at a time; requests that find a load under way wait for it.
    loading: Arc<tokio::sync::Mutex<()>>,
    /// Activity ids taken ahead from the database's sequence (PostgreSQL).
    activity_ids: Arc<crate::activities::intake::Ids>,
    /// Rollup deltas this process wrote since it last had them folded.
    deltas: Arc<std::sync::atomic::AtomicUsize>,
}

/// Deltas a process writes before it has the rollup deltas folded into the rollup rows
/// ([`crate::activities::rollup::compact`], which folds every replica's): so they stay few
/// whatever the intake, and a server that writes nothing runs no statement for it.
const FOLD_AFTER: usize = 10_000;

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// Activity ids taken ahead (see [`crate::activities::intake::Ids`]).
    pub fn activity_ids(&self) -> &crate::activities::intake::Ids {
        &self.activity_ids
    }

    /// Counts `n` rollup deltas written; every [`FOLD_AFTER`], folds the deltas in the
    /// background.
    pub fn wrote_deltas(&self, db: &sea_orm::DatabaseConnection, n: usize) {
        use std::sync::atomic::Ordering;
        let before = self.deltas.fetch_add(n, Ordering::Relaxed);
        if before / FOLD_AFTER == (before + n) / FOLD_AFTER {
            return;
        }
        let db = db.clone();
        tokio::spawn(async move {
            match crate::activities::rollup::compact(&db).await {
                Ok(n) => tracing::debug!(deltas = n, "rollup deltas folded"),
                Err(e) => tracing::warn!(error = %e.message(), "rollup deltas not folded"),
            }
        });
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    /// The copy held now, without asking the database whether it is current: for a caller
    /// that reads the data generation in its own statement and calls [`Store::snapshot`] when
    /// it has moved past the copy's.
    pub fn held(&self) -> Option<Arc<Snapshot>> {
        self.current()
    }

    /// The copy as of what is committed now: one statement when it is current, two when
    /// activities came in since it was last looked at.
    pub async fn snapshot(
        &self,
        db: &(impl ConnectionTrait + StreamTrait),
    ) -> Result<Arc<Snapshot>> {
        let held = self.current();
        let mark = held.as_ref().map(|s| s.rollup_mark());
        let (generation, pending) = generations(db, mark.as_ref()).await?;
        if let Some(s) = held.filter(|s| s.generation >= generation) {
            if pending {
                let _loading = self.loading.lock().await;
                s.catch_up(db).await?;
                store_read("catch_up");
            } else {
                store_read("hit");
            }
            return Ok(s);
        }
        let _loading = self.loading.lock().await;
        if let Some(s) = self.current().filter(|s| s.generation >= generation) {
            s.catch_up(db).await?;
            store_read("catch_up");
            return Ok(s);
        }
        let started = std::time::Instant::now();
        let fresh = Arc::new(Snapshot::load(db).await?);
        store_read("reload");
        metrics::histogram!("cnscd_indicator_store_load_seconds")
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(generation = fresh.generation, "indicator data loaded");
        if let Ok(mut c) = self.current.write() {
            *c = Some(fresh.clone());
        }
        Ok(fresh)
    }
}

/// Counts a read of the copy by how it was answered (`cnscd_indicator_store_requests_total`).
fn store_read(result: &'static str) {
    metrics::counter!("cnscd_indicator_store_requests_total", "result" => result).increment(1);
}

impl Store {
    /// The copy as of what is committed now, for what does not read the activity rollups
    /// (intake checks): one statement when it is current, and the rollups are not caught up
    /// (they are, by the next request that reads them).
    pub async fn catalogues(
        &self,
        db: &(impl ConnectionTrait + StreamTrait),
    ) -> Result<Arc<Snapshot>> {
        let (generation, _) = generations(db, None).await?;
        if let Some(s) = self.current().filter(|s| s.generation >= generation) {
            return Ok(s);
        }
        self.snapshot(db).await
    }
}

/// Where a copy's rollups stand: rows stamped from `from` on, or with one of the stamps of
/// `running` (PostgreSQL: transactions that were still running), may have changed since it
/// read; every other row was read as it stays.
#[derive(Clone, Debug, Default)]
pub struct Mark {
    from: i64,
    /// Comma-separated stamps.
    running: String,
}

impl Mark {
    /// The mark of a read done with the PostgreSQL snapshot `xmin:xmax:xip,...`.
    fn of_snapshot(snapshot: &str) -> Option<Self> {
        let mut parts = snapshot.split(':');
        let (_xmin, xmax, xip) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
        Some(Self {
            from: xmax.parse().ok()?,
            running: xip.to_owned(),
        })
    }

    /// The mark of a read that saw the rollup generation `n` (SQLite).
    fn of_generation(n: i64) -> Self {
        Self {
            from: n + 1,
            running: String::new(),
        }
    }
}

/// Rows stamped past a [`Mark`] (its two values bound in order).
const PAST_MARK: &str = "(seq >= ? OR seq = ANY(string_to_array(?, ',')::bigint[]))";

/// The database's data generation, and whether rollup rows may have changed past `mark`
/// (the copy's, if there is one), in one statement.
///
/// On PostgreSQL the check runs on every request, as a prepared statement that switches to a
/// generic plan after its fifth run on a connection, planned without the mark's values: it
/// must not depend on them to stay on the `seq` indexes. [`PAST_MARK`] as a filter does (in a
/// generic plan, `seq >= $1 OR seq = ANY(…)` is estimated to match a third of the rows or more,
/// and a table whose rows share a few stamps, as a rebuild leaves them, is read whole). So the
/// same question is asked as index look-ups that read one entry each whatever the values: a
/// row stamped at or past `from` exists when the highest stamp is (`max(seq)`, the last entry
/// of the index); a row stamped by a transaction that was running exists when the lowest stamp
/// at or past it is its own (`min(seq) … WHERE seq >= x`, the first entry from `x` on).
pub async fn generations(
    db: &(impl ConnectionTrait + StreamTrait),
    mark: Option<&Mark>,
) -> Result<(i64, bool)> {
    let postgres = ConnectionTrait::get_database_backend(db) == sea_orm::DbBackend::Postgres;
    let rows = match mark {
        Some(mark) if postgres => {
            query(
                db,
                "SELECT id, n FROM data_generation WHERE id = 1 UNION ALL \
                 SELECT 2, COUNT(*) FROM (SELECT 1 FROM (SELECT max(seq) AS m FROM \
                 unit_month_delta UNION ALL SELECT max(seq) FROM unit_month_fact) h \
                 WHERE m >= ? UNION ALL SELECT 1 FROM \
                 unnest(string_to_array(?, ',')::bigint[]) r(x) \
                 WHERE (SELECT min(seq) FROM unit_month_delta WHERE seq >= r.x) = r.x \
                 OR (SELECT min(seq) FROM unit_month_fact WHERE seq >= r.x) = r.x LIMIT 1) p",
                vec![mark.from.into(), mark.running.clone().into()],
            )
            .await?
        }
        _ => query(db, "SELECT id, n FROM data_generation", vec![]).await?,
    };
    let (mut data, mut pending) = (0, false);
    for r in rows {
        let n: i64 = r.try_get("", "n")?;
        match (r.try_get::<i32>("", "id")?, mark) {
            (1, _) => data = n,
            (_, None) => {}
            (_, Some(_)) if postgres => pending = n > 0,
            (_, Some(mark)) => pending = n >= mark.from,
        }
    }
    Ok((data, pending))
}

/// Monthly rollups of derived flow elements: by unit, element and month.
#[derive(Default)]
struct Rollups {
    /// Rows stamped past this may have changed since they were read.
    mark: Mark,
    /// The cells as read: by the unit they were recorded at, element, and first day.
    own: FastMap<(u32, u16, NaiveDate), Held>,
    /// By unit index, then element: a month series each, summed over the units under it.
    units: Vec<FastMap<u16, Series>>,
}

/// A rollup cell as read: its rollup row and the deltas read since (see
/// [`crate::activities::rollup`]).
#[derive(Default)]
struct Held {
    /// The rollup row's value.
    base: f64,
    /// Every delta stamped below this is in `base`.
    horizon: i64,
    /// Deltas not in `base`: stamp and amount.
    pending: Vec<(i64, f64)>,
}

impl Held {
    fn value(&self) -> f64 {
        self.base + self.pending.iter().map(|(_, v)| v).sum::<f64>()
    }
}

/// What a read found for a rollup cell: its rollup row (value, horizon) or a delta (amount,
/// stamp).
enum Read {
    Row(f64, i64),
    Delta(f64, i64),
}

/// Months counted from year 0.
fn month_number(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

/// Values of consecutive months, from `first` on.
#[derive(Default, Debug)]
struct Series {
    first: i32,
    values: Vec<f64>,
}

impl Series {
    fn add(&mut self, month: i32, value: f64) {
        if self.values.is_empty() {
            self.first = month;
        } else if month < self.first {
            let shift = (self.first - month) as usize;
            self.values.splice(0..0, std::iter::repeat_n(0.0, shift));
            self.first = month;
        }
        let i = (month - self.first) as usize;
        if i >= self.values.len() {
            self.values.resize(i + 1, 0.0);
        }
        self.values[i] += value;
    }

    /// The sum over months `first..=last`.
    fn sum(&self, first: i32, last: i32) -> f64 {
        let from = (first - self.first).max(0) as usize;
        let to = (last - self.first + 1).max(0) as usize;
        self.values
            .get(from..to.min(self.values.len()))
            .map_or(0.0, |v| v.iter().sum())
    }
}

/// A closure row: `ancestor` is (or is above) `descendant` from `from` to `to`.
#[derive(Clone, Debug)]
pub struct Link {
    pub ancestor: u32,
    pub descendant: u32,
    pub depth: i32,
    pub level: UnitLevel,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Link {
    fn on(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }
}

/// A count over time as steps: `(first day, count from that day on)`, by day.
#[derive(Default, Debug, Clone)]
pub struct Timeline(Vec<(NaiveDate, f64)>);

impl Timeline {
    fn from_events(mut events: Vec<(NaiveDate, f64)>) -> Self {
        events.sort_by_key(|e| e.0);
        let mut steps: Vec<(NaiveDate, f64)> = Vec::with_capacity(events.len());
        let mut total = 0.0;
        for (day, delta) in events {
            total += delta;
            match steps.last_mut() {
                Some(last) if last.0 == day => last.1 = total,
                _ => steps.push((day, total)),
            }
        }
        Self(steps)
    }

    /// The count on `day`.
    pub fn on(&self, day: NaiveDate) -> f64 {
        match self.0.partition_point(|(d, _)| *d <= day) {
            0 => 0.0,
            i => self.0[i - 1].1,
        }
    }
}

/// A reported value's period and amount.
pub type Reported = (NaiveDate, NaiveDate, f64);

/// Reference figures on one day: for each unit and element, the sum over the units under it
/// of the latest value each reported for the day's year, and whether it covers the whole
/// territory.
#[derive(Default)]
pub struct DayReferences {
    /// By element, then unit.
    sums: HashMap<String, FastMap<u32, f64>>,
    incomplete: HashMap<String, FastSet<u32>>,
}

impl DayReferences {
    pub fn value(&self, unit: u32, element: &str) -> Option<f64> {
        self.sums.get(element)?.get(&unit).copied()
    }

    pub fn incomplete(&self, unit: u32, element: &str) -> bool {
        self.incomplete
            .get(element)
            .is_some_and(|units| units.contains(&unit))
    }
}

/// Maps and sets keyed by the copy's own small integers (no DoS-resistant hashing needed).
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

pub use super::rebase::Part;

/// The in-memory copy at one generation.
pub struct Snapshot {
    pub generation: i64,
    codes: Vec<String>,
    index: HashMap<String, u32>,
    /// Every version of each unit, oldest first, by unit index.
    versions: Vec<Vec<Arc<admin_unit::Model>>>,
    links: Vec<Link>,
    /// Links by ancestor, and by descendant (nearest ancestor first).
    down: Vec<Vec<u32>>,
    up: Vec<Vec<u32>>,
    /// Active versions of each indicator, by `valid_from` then version.
    pub definitions: HashMap<String, Vec<indicator_definition::Model>>,
    pub elements: HashMap<String, data_element::Model>,
    successions: Vec<admin_unit_succession::Model>,
    shares: HashMap<(String, String), f64>,
    /// State elements by element code, then the unit where the teams or members sit (by unit
    /// index).
    states: HashMap<String, Vec<Option<Timeline>>>,
    /// Reported flows summed for each unit (see [`Snapshot::reported_for`]).
    reported: HashMap<(u32, String), Vec<Reported>>,
    /// The latest reference value per year, reporting unit and element.
    reference_latest: HashMap<i32, HashMap<(u32, String), f64>>,
    references: Mutex<HashMap<NaiveDate, Arc<DayReferences>>>,
    /// Indicator targets by unit index and period: (indicator code, target).
    targets: FastMap<(u32, NaiveDate, NaiveDate), Vec<(String, f64)>>,
    /// Data element codes by index, for the rollups.
    element_index: HashMap<String, u16>,
    rollups: RwLock<Rollups>,
    /// What a submitted activity is checked against.
    pub intake: IntakeData,
}

/// A team as intake checks it.
#[derive(Clone, Debug)]
pub struct TeamDays {
    pub unit_code: String,
    pub founded_on: NaiveDate,
    pub dissolved_on: Option<NaiveDate>,
}

/// The catalogues, teams and period locks a submitted activity is checked against (see
/// [`crate::activities::intake`]).
#[derive(Default)]
pub struct IntakeData {
    pub teams: FastMap<i64, TeamDays>,
    /// Activity kinds: whether each is active.
    pub kinds: HashMap<String, bool>,
    /// Digital services: (active, counts as cashless payment).
    pub services: HashMap<String, (bool, bool)>,
    /// Locked periods by unit index.
    locks: FastMap<u32, Vec<(NaiveDate, NaiveDate)>>,
}

impl Snapshot {
    /// Loads everything, consistently: the generation is read before and after, and the load
    /// is repeated (up to three times) when a change committed in between.
    async fn load(db: &(impl ConnectionTrait + StreamTrait)) -> Result<Self> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (before, _) = generations(db, None).await?;
            let mut snapshot = Self::read(db).await?;
            // The rows and deltas with the mark of the same statement: each delta is counted
            // once.
            snapshot.read_rollups(db, None).await?;
            let (after, _) = generations(db, None).await?;
            // Labelled with the earlier generation: if a change came in between, the next
            // request loads again.
            snapshot.generation = before;
            if before == after || attempt >= 3 {
                return Ok(snapshot);
            }
        }
    }

    fn rollup_mark(&self) -> Mark {
        self.rollups
            .read()
            .map(|r| r.mark.clone())
            .unwrap_or_default()
    }

    /// Reads the rollup rows stamped past the mark, and moves the mark (one statement).
    async fn catch_up(&self, db: &(impl ConnectionTrait + StreamTrait)) -> Result<()> {
        let mark = self.rollup_mark();
        self.read_rollups(db, Some(mark)).await
    }

    /// Reads rollup rows and deltas (all, or those stamped past `mark`) and the new mark, in
    /// one statement (one snapshot), into the copy: a rollup row replaces what was held for
    /// its unit, element and day with its value plus the deltas read that it does not hold
    /// yet, a delta adds to it, and the units above it on that day move by the difference.
    /// A delta is read once: the mark moves past exactly what the statement saw.
    async fn read_rollups(
        &self,
        db: &(impl ConnectionTrait + StreamTrait),
        mark: Option<Mark>,
    ) -> Result<()> {
        let postgres = ConnectionTrait::get_database_backend(db) == sea_orm::DbBackend::Postgres;
        let (mark_row, past) = if postgres {
            (
                "SELECT NULL AS unit_code, pg_current_snapshot()::text AS element_code, \
                 NULL::date AS month_start, NULL::float8 AS value, NULL::bigint AS stamp, \
                 NULL::text AS cells",
                PAST_MARK,
            )
        } else {
            (
                "SELECT NULL AS unit_code, CAST(n AS TEXT) AS element_code, NULL AS month_start, \
                 NULL AS value, NULL AS stamp, NULL AS cells FROM data_generation WHERE id = 2",
                "seq >= ?",
            )
        };
        let filter = |on: bool| {
            if on {
                format!(" WHERE {past}")
            } else {
                String::new()
            }
        };
        let sql = format!(
            "{mark_row} UNION ALL \
             SELECT unit_code, element_code, month_start, value, horizon, NULL \
             FROM unit_month_fact{f} UNION ALL \
             SELECT NULL, NULL, NULL, NULL, seq, cells FROM unit_month_delta{f}",
            f = filter(mark.is_some())
        );
        let mut values: Vec<sea_orm::Value> = Vec::new();
        if let Some(mark) = &mark {
            for _ in 0..2 {
                values.push(mark.from.into());
                if postgres {
                    values.push(mark.running.clone().into());
                }
            }
        }
        // Streamed: a full load reads every rollup row, and holding them all as driver rows
        // would cost several times what they take decoded.
        let rows = db
            .stream_raw(crate::db::stmt(
                ConnectionTrait::get_database_backend(db),
                &sql,
                values,
            ))
            .await?;
        let mut rows = std::pin::pin!(rows);
        let mut decoded: Vec<((u32, u16, NaiveDate), Read)> = Vec::new();
        let mut new_mark = None;
        while let Some(r) = rows.next().await {
            let r = r?;
            let unit: Option<String> = r.try_get_by_index(0)?;
            let element: Option<String> = r.try_get_by_index(1)?;
            let stamp: Option<i64> = r.try_get_by_index(4)?;
            let (Some(unit), Some(stamp)) = (unit, stamp) else {
                match stamp {
                    // A delta: every cell it adds to.
                    Some(stamp) => {
                        let text: String = r.try_get_by_index(5)?;
                        for (unit, day, amounts) in crate::activities::rollup::delta_cells(&text) {
                            // Every delta's unit and elements are known (the writer's checks);
                            // a unit added since this copy was loaded bumped the data
                            // generation, and is loaded next time.
                            let Some(u) = self.unit(&unit) else { continue };
                            for (element, v) in amounts {
                                if let Some(e) = self.element_index.get(&element) {
                                    decoded.push(((u, *e, day), Read::Delta(v, stamp)));
                                }
                            }
                        }
                    }
                    // The mark.
                    None => {
                        let element = element.unwrap_or_default();
                        new_mark = if postgres {
                            Mark::of_snapshot(&element)
                        } else {
                            element.parse().ok().map(Mark::of_generation)
                        };
                    }
                }
                continue;
            };
            // A rollup row (its unit and element are known: foreign keys).
            let day: NaiveDate = r.try_get_by_index(2)?;
            let value: f64 = r.try_get_by_index(3)?;
            if let (Some(u), Some(e)) = (
                self.unit(&unit),
                element.and_then(|e| self.element_index.get(&e).copied()),
            ) {
                decoded.push(((u, e, day), Read::Row(value, stamp)));
            }
        }
        if let Ok(mut r) = self.rollups.write() {
            let r = &mut *r;
            if r.units.len() < self.codes.len() {
                r.units.resize_with(self.codes.len(), FastMap::default);
            }
            for (key @ (unit, element, day), read) in decoded {
                let held = r.own.entry(key).or_default();
                let before = held.value();
                match read {
                    Read::Row(value, horizon) => {
                        held.base = value;
                        held.horizon = horizon;
                        held.pending.retain(|(stamp, _)| *stamp >= horizon);
                    }
                    Read::Delta(v, stamp) if stamp >= held.horizon => held.pending.push((stamp, v)),
                    Read::Delta(..) => {}
                }
                let delta = held.value() - before;
                if delta == 0.0 {
                    continue;
                }
                let month = month_number(day);
                for link in self.links_up(unit).filter(|l| l.on(day)) {
                    r.units[link.ancestor as usize]
                        .entry(element)
                        .or_default()
                        .add(month, delta);
                }
            }
            if let Some(mark) = new_mark {
                r.mark = mark;
            }
        }
        Ok(())
    }

    /// The rollups, for reading many at once ([`RollupsRead::flow`]).
    pub fn rollups(&self) -> RollupsRead<'_> {
        RollupsRead {
            guard: self.rollups.read().ok(),
        }
    }

    async fn read(db: &(impl ConnectionTrait + StreamTrait)) -> Result<Self> {
        let units = admin_unit::Entity::find()
            .order_by_asc(admin_unit::Column::Code)
            .order_by_asc(admin_unit::Column::ValidFrom)
            .all(db)
            .await?;
        let mut codes: Vec<String> = Vec::new();
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut versions: Vec<Vec<Arc<admin_unit::Model>>> = Vec::new();
        let mut intern = |code: &str,
                          codes: &mut Vec<String>,
                          versions: &mut Vec<Vec<Arc<admin_unit::Model>>>|
         -> u32 {
            if let Some(i) = index.get(code) {
                return *i;
            }
            let i = codes.len() as u32;
            codes.push(code.to_owned());
            versions.push(Vec::new());
            index.insert(code.to_owned(), i);
            i
        };
        for u in units {
            let i = intern(&u.code, &mut codes, &mut versions);
            versions[i as usize].push(Arc::new(u));
        }
        let closure = admin_unit_closure::Entity::find().all(db).await?;
        let mut links = Vec::with_capacity(closure.len());
        for c in closure {
            links.push(Link {
                ancestor: intern(&c.ancestor_code, &mut codes, &mut versions),
                descendant: intern(&c.descendant_code, &mut codes, &mut versions),
                depth: c.depth,
                level: c.descendant_level,
                from: c.valid_from,
                to: c.valid_to,
            });
        }
        let successions = admin_unit_succession::Entity::find().all(db).await?;
        // Teams and memberships: the days each counts.
        let teams = query(
            db,
            "SELECT id, unit_code, founded_on, dissolved_on FROM team",
            vec![],
        )
        .await?;
        let mut team_days: HashMap<i64, (u32, NaiveDate, Option<NaiveDate>)> = HashMap::new();
        let mut intake = IntakeData::default();
        for r in teams {
            let unit: String = r.try_get("", "unit_code")?;
            let id: i64 = r.try_get("", "id")?;
            let days = TeamDays {
                founded_on: r.try_get("", "founded_on")?,
                dissolved_on: r.try_get("", "dissolved_on")?,
                unit_code: unit,
            };
            team_days.insert(
                id,
                (
                    intern(&days.unit_code, &mut codes, &mut versions),
                    days.founded_on,
                    days.dissolved_on,
                ),
            );
            intake.teams.insert(id, days);
        }
        for r in query(db, "SELECT code, active FROM activity_kind", vec![]).await? {
            intake
                .kinds
                .insert(r.try_get("", "code")?, r.try_get("", "active")?);
        }
        for r in query(
            db,
            "SELECT code, active, cashless FROM digital_service",
            vec![],
        )
        .await?
        {
            intake.services.insert(
                r.try_get("", "code")?,
                (r.try_get("", "active")?, r.try_get("", "cashless")?),
            );
        }
        for r in query(
            db,
            "SELECT unit_code, period_start, period_end FROM period_lock",
            vec![],
        )
        .await?
        {
            let unit: String = r.try_get("", "unit_code")?;
            intake
                .locks
                .entry(intern(&unit, &mut codes, &mut versions))
                .or_default()
                .push((r.try_get("", "period_start")?, r.try_get("", "period_end")?));
        }
        let memberships = query(
            db,
            "SELECT team_id, affiliation, started_on, ended_on FROM membership",
            vec![],
        )
        .await?;
        let values = query(
            db,
            "SELECT v.unit_code, v.element_code, v.period_start, v.period_end, v.value, \
             e.aggregation FROM data_value v JOIN data_element e ON e.code = v.element_code \
             ORDER BY v.id",
            vec![],
        )
        .await?;
        let mut reported_rows: Vec<(u32, String, NaiveDate, NaiveDate, f64, String)> =
            Vec::with_capacity(values.len());
        for r in values {
            let unit: String = r.try_get("", "unit_code")?;
            reported_rows.push((
                intern(&unit, &mut codes, &mut versions),
                r.try_get("", "element_code")?,
                r.try_get("", "period_start")?,
                r.try_get("", "period_end")?,
                r.try_get("", "value")?,
                r.try_get("", "aggregation")?,
            ));
        }
        let rows = query(
            db,
            "SELECT indicator_code, unit_code, period_start, period_end, target \
             FROM indicator_target",
            vec![],
        )
        .await?;
        let mut targets: FastMap<(u32, NaiveDate, NaiveDate), Vec<(String, f64)>> =
            FastMap::default();
        for r in rows {
            let unit: String = r.try_get("", "unit_code")?;
            let key = (
                intern(&unit, &mut codes, &mut versions),
                r.try_get("", "period_start")?,
                r.try_get("", "period_end")?,
            );
            targets
                .entry(key)
                .or_default()
                .push((r.try_get("", "indicator_code")?, r.try_get("", "target")?));
        }
        let n = codes.len();
        let mut down: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut up: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, l) in links.iter().enumerate() {
            down[l.ancestor as usize].push(i as u32);
            up[l.descendant as usize].push(i as u32);
        }
        for u in &mut up {
            u.sort_by_key(|i| links[*i as usize].depth);
        }

        // State timelines, by the unit the team sits in. A team counts from its founding to
        // the day before its dissolution; a membership from its start to its end, while its
        // team counts.
        let mut events: HashMap<(String, u32), Vec<(NaiveDate, f64)>> = HashMap::new();
        for (unit, founded, dissolved) in team_days.values() {
            let e = events.entry(("ACTIVE_TEAMS".into(), *unit)).or_default();
            e.push((*founded, 1.0));
            if let Some(d) = dissolved {
                e.push((*d, -1.0));
            }
        }
        for r in memberships {
            let team: i64 = r.try_get("", "team_id")?;
            let affiliation: String = r.try_get("", "affiliation")?;
            let started: NaiveDate = r.try_get("", "started_on")?;
            let ended: Option<NaiveDate> = r.try_get("", "ended_on")?;
            let Some((unit, founded, dissolved)) = team_days.get(&team) else {
                continue;
            };
            let first = started.max(*founded);
            // The first day it no longer counts.
            let stop = match (ended.and_then(|e| e.succ_opt()), dissolved) {
                (Some(a), Some(b)) => Some(a.min(*b)),
                (a, b) => a.or(*b),
            };
            if stop.is_some_and(|s| s <= first) {
                continue;
            }
            for element in [
                "ACTIVE_MEMBERS".to_owned(),
                format!("ACTIVE_MEMBERS_{affiliation}"),
            ] {
                let e = events.entry((element, *unit)).or_default();
                e.push((first, 1.0));
                if let Some(s) = stop {
                    e.push((s, -1.0));
                }
            }
        }
        let mut states: HashMap<String, Vec<Option<Timeline>>> = HashMap::new();
        for ((element, unit), e) in events {
            states.entry(element).or_insert_with(|| vec![None; n])[unit as usize] =
                Some(Timeline::from_events(e));
        }

        let mut definitions: HashMap<String, Vec<indicator_definition::Model>> = HashMap::new();
        for d in super::definitions::versions(db).await? {
            definitions.insert(d.0, d.1);
        }
        let elements: HashMap<String, data_element::Model> = data_element::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|e| (e.code.clone(), e))
            .collect();
        let mut element_codes: Vec<&String> = elements.keys().collect();
        element_codes.sort();
        let element_index = element_codes
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as u16))
            .collect();

        let mut snapshot = Self {
            generation: 0,
            codes,
            index,
            versions,
            links,
            down,
            up,
            definitions,
            elements,
            successions,
            shares: HashMap::new(),
            states,
            reported: HashMap::new(),
            reference_latest: HashMap::new(),
            references: Mutex::new(HashMap::new()),
            targets,
            element_index,
            rollups: RwLock::new(Rollups::default()),
            intake,
        };
        snapshot.shares = snapshot.partial_shares();
        snapshot.index_reported(reported_rows);
        Ok(snapshot)
    }

    /// The index of a unit code.
    pub fn unit(&self, code: &str) -> Option<u32> {
        self.index.get(code).copied()
    }

    /// The target set for indicator `code`, `unit` and the period `start ..= end`.
    pub fn target(&self, code: &str, unit: u32, start: NaiveDate, end: NaiveDate) -> Option<f64> {
        if self.targets.is_empty() {
            return None;
        }
        self.targets
            .get(&(unit, start, end))?
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, t)| *t)
    }

    /// The index of a data element among the activity rollups.
    pub fn element_index(&self, code: &str) -> Option<u16> {
        self.element_index.get(code).copied()
    }

    pub fn code(&self, unit: u32) -> &str {
        &self.codes[unit as usize]
    }

    fn links_down(&self, unit: u32) -> impl Iterator<Item = &Link> {
        self.down[unit as usize]
            .iter()
            .map(|i| &self.links[*i as usize])
    }

    fn links_up(&self, unit: u32) -> impl Iterator<Item = &Link> {
        self.up[unit as usize]
            .iter()
            .map(|i| &self.links[*i as usize])
    }

    /// Every version of each of `codes` (those that exist), oldest first.
    pub fn all_versions(&self, codes: &[String]) -> HashMap<String, Vec<Arc<admin_unit::Model>>> {
        codes
            .iter()
            .filter_map(|c| {
                let i = self.unit(c)?;
                let v = &self.versions[i as usize];
                (!v.is_empty()).then(|| (c.clone(), v.clone()))
            })
            .collect()
    }

    /// Units under any of `codes` on some day of `[from, to]`: their direct children, or with
    /// `level` every unit of that level below them, with the days each was: `(ancestor, unit,
    /// first day, last day)`, one per closure row.
    pub fn below_between(
        &self,
        codes: &[String],
        level: Option<UnitLevel>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Vec<(String, String, NaiveDate, NaiveDate)> {
        let mut out = Vec::new();
        for code in codes {
            let Some(a) = self.unit(code) else { continue };
            for l in self.links_down(a) {
                let which = match level {
                    Some(lv) => l.level == lv && l.depth > 0,
                    None => l.depth == 1,
                };
                if which && l.from <= to && l.to >= from {
                    out.push((
                        code.clone(),
                        self.code(l.descendant).to_owned(),
                        l.from,
                        l.to,
                    ));
                }
            }
        }
        out
    }

    /// Codes of the units under any of `codes` on `on` (direct children, or every unit of
    /// `level` below them), sorted and distinct.
    pub fn below_on(
        &self,
        codes: &[String],
        level: Option<UnitLevel>,
        on: NaiveDate,
    ) -> Vec<String> {
        let mut out = BTreeSet::new();
        for code in codes {
            let Some(a) = self.unit(code) else { continue };
            for l in self.links_down(a) {
                let which = match level {
                    Some(lv) => l.level == lv,
                    None => l.depth == 1,
                };
                if which && l.on(on) {
                    out.insert(self.code(l.descendant).to_owned());
                }
            }
        }
        out.into_iter().collect()
    }

    /// Days in `(from, to]` on which the version or the territory of each of `codes` changed
    /// (a version began, or a unit came under it or left it): the first day of the new state.
    pub fn changes_between(
        &self,
        codes: &[String],
        from: NaiveDate,
        to: NaiveDate,
    ) -> HashMap<String, Vec<NaiveDate>> {
        let mut out: HashMap<String, Vec<NaiveDate>> = HashMap::new();
        for code in codes {
            let Some(a) = self.unit(code) else { continue };
            // On each day, the units that came under the code and those that left it; a day
            // where the same units leave and come back (a new version below) changes nothing.
            type Moves = (BTreeSet<u32>, BTreeSet<u32>);
            let mut moves: HashMap<NaiveDate, Moves> = HashMap::new();
            for l in self.links_down(a) {
                if l.from > from && l.from <= to {
                    moves.entry(l.from).or_default().0.insert(l.descendant);
                }
                if let Some(next) = l.to.succ_opt().filter(|n| *n > from && *n <= to) {
                    moves.entry(next).or_default().1.insert(l.descendant);
                }
            }
            for (day, (came, left)) in moves {
                if came != left {
                    out.entry(code.clone()).or_default().push(day);
                }
            }
        }
        out
    }

    /// The caller's area over `codes` between `from` and `to` (see [`Coverage`]).
    pub fn coverage(
        &self,
        scope: &Scope,
        codes: &[String],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Coverage {
        if scope.all {
            return Coverage::everything();
        }
        let area: HashSet<u32> = scope.units.iter().filter_map(|u| self.unit(u)).collect();
        let mut existed: HashMap<String, Vec<(NaiveDate, NaiveDate)>> = HashMap::new();
        let mut covered: HashMap<String, Vec<(NaiveDate, NaiveDate)>> = HashMap::new();
        for code in codes {
            let Some(u) = self.unit(code) else { continue };
            for l in self.links_up(u) {
                if l.from > to || l.to < from {
                    continue;
                }
                if area.contains(&l.ancestor) {
                    covered
                        .entry(code.clone())
                        .or_default()
                        .push((l.from, l.to));
                }
                if l.depth == 0 {
                    existed
                        .entry(code.clone())
                        .or_default()
                        .push((l.from, l.to));
                }
            }
        }
        Coverage::from_spans(existed, covered)
    }

    /// The area rule ([`crate::auth::area`]) for one row from the closure held here: whether
    /// `unit` lies under one of `area` (or is one) on some day of `from ..= to`.
    pub fn under_some_day(
        &self,
        area: &[String],
        unit: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> bool {
        let Some(u) = self.unit(unit) else {
            return false;
        };
        self.links_up(u).any(|l| {
            l.from <= to && l.to >= from && area.iter().any(|a| self.code(l.ancestor) == a)
        })
    }

    /// `unit`'s place in the hierarchy on `day` (as [`crate::activities::rollup::ancestors_on`]
    /// reads it), if the unit exists then.
    pub fn chain(&self, unit: &str, day: NaiveDate) -> Option<crate::activities::rollup::Chain> {
        let u = self.unit(unit)?;
        let mut chain = crate::activities::rollup::Chain {
            codes: Vec::new(),
            since: NaiveDate::MIN,
        };
        for l in self.links_up(u).filter(|l| l.on(day)) {
            chain.codes.push(self.code(l.ancestor).to_owned());
            chain.since = chain.since.max(l.from);
        }
        (!chain.codes.is_empty()).then_some(chain)
    }

    /// The first of `units` with a locked period containing `day`.
    pub fn locked<'a>(&self, units: &'a [String], day: NaiveDate) -> Option<&'a str> {
        units.iter().map(String::as_str).find(|code| {
            self.unit(code)
                .and_then(|u| self.intake.locks.get(&u))
                .is_some_and(|spans| spans.iter().any(|(f, t)| *f <= day && day <= *t))
        })
    }

    /// For each of `targets`, the units whose figures make it up: the unit itself and its
    /// predecessors, transitively (see [`super::rebase`]).
    pub fn contributors(&self, targets: &[String]) -> HashMap<String, Vec<Part>> {
        super::rebase::contributors(&self.successions, &self.shares, targets)
    }

    fn partial_shares(&self) -> HashMap<(String, String), f64> {
        let partial: Vec<&admin_unit_succession::Model> = self
            .successions
            .iter()
            .filter(|s| s.kind == SuccessionKind::Partial && s.old_code != s.new_code)
            .collect();
        let under = |unit: &str, on: NaiveDate| -> HashSet<u32> {
            self.unit(unit)
                .into_iter()
                .flat_map(|u| self.links_down(u))
                .filter(|l| l.level == UnitLevel::Hamlet && l.on(on))
                .map(|l| l.descendant)
                .collect()
        };
        super::rebase::partial_shares(&partial, under)
    }

    /// The count of a state element (ACTIVE_TEAMS, ACTIVE_MEMBERS, ACTIVE_MEMBERS_<affiliation>,
    /// HAMLETS, HAMLETS_WITH_TEAM) for `unit` on `day`: over the unit and every unit under it
    /// on that day.
    pub fn state(&self, unit: u32, element: &str, day: NaiveDate) -> f64 {
        match element {
            "HAMLETS" => self
                .links_down(unit)
                .filter(|l| l.level == UnitLevel::Hamlet && l.on(day))
                .count() as f64,
            "HAMLETS_WITH_TEAM" => {
                let Some(teams) = self.states.get("ACTIVE_TEAMS") else {
                    return 0.0;
                };
                self.links_down(unit)
                    .filter(|l| {
                        l.level == UnitLevel::Hamlet
                            && l.on(day)
                            && teams[l.descendant as usize]
                                .as_ref()
                                .is_some_and(|t| t.on(day) > 0.0)
                    })
                    .count() as f64
            }
            _ => {
                let Some(by_unit) = self.states.get(element) else {
                    return 0.0;
                };
                self.links_down(unit)
                    .filter(|l| l.on(day))
                    .filter_map(|l| by_unit[l.descendant as usize].as_ref())
                    .map(|t| t.on(day))
                    .sum()
            }
        }
    }

    /// Reported flow values summed for `unit`: `(period start, period end, sum)`.
    pub fn reported_for(&self, unit: u32, element: &str) -> &[Reported] {
        self.reported
            .get(&(unit, element.to_owned()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Reference figures on `day`, computed once per copy.
    pub fn references(&self, day: NaiveDate) -> Arc<DayReferences> {
        if let Some(r) = self
            .references
            .lock()
            .ok()
            .and_then(|m| m.get(&day).cloned())
        {
            return r;
        }
        let computed = Arc::new(self.compute_references(day));
        if let Ok(mut m) = self.references.lock() {
            m.insert(day, computed.clone());
        }
        computed
    }

    /// The units a figure reported by `source` counts for on `day`: the unit and the units
    /// above it, nearest first, up to (not including) the first that reported the same figure
    /// itself — its own figure stands for the units below it, so no figure is summed twice.
    fn counted_for(
        &self,
        source: u32,
        day: NaiveDate,
        reported_itself: impl Fn(u32) -> bool,
    ) -> impl Iterator<Item = u32> {
        self.links_up(source)
            .filter(move |l| l.on(day))
            .map(|l| l.ancestor)
            .take_while(move |a| *a == source || !reported_itself(*a))
    }

    /// Reported values: one per reporting unit, element and period (the latest submission
    /// wins, whichever source system sent it); flows summed up the hierarchy of the period's
    /// first day, reference values kept per year for [`Snapshot::references`].
    fn index_reported(&mut self, rows: Vec<(u32, String, NaiveDate, NaiveDate, f64, String)>) {
        // Rows come in submission order: later ones replace earlier ones.
        let mut flows: HashMap<(u32, String, NaiveDate, NaiveDate), f64> = HashMap::new();
        // By year, then reporting unit and element: the latest period's end and value.
        type Latest = HashMap<(u32, String), (NaiveDate, f64)>;
        let mut references: HashMap<i32, Latest> = HashMap::new();
        for (unit, element, start, end, value, aggregation) in rows {
            if aggregation == "REFERENCE" {
                // A value counts for the year its period lies in; the latest period wins.
                if start.year() != end.year() {
                    continue;
                }
                let latest = references.entry(start.year()).or_default();
                let e = latest.entry((unit, element)).or_insert((end, value));
                if end >= e.0 {
                    *e = (end, value);
                }
            } else {
                flows.insert((unit, element, start, end), value);
            }
        }
        let mut sums: HashMap<(u32, String, NaiveDate, NaiveDate), f64> = HashMap::new();
        for ((source, element, start, end), value) in &flows {
            let itself = |a: u32| flows.contains_key(&(a, element.clone(), *start, *end));
            for a in self.counted_for(*source, *start, itself) {
                *sums.entry((a, element.clone(), *start, *end)).or_default() += value;
            }
        }
        let mut reported: HashMap<(u32, String), Vec<Reported>> = HashMap::new();
        for ((unit, element, start, end), v) in sums {
            reported
                .entry((unit, element))
                .or_default()
                .push((start, end, v));
        }
        self.reported = reported;
        self.reference_latest = references
            .into_iter()
            .map(|(y, m)| (y, m.into_iter().map(|(k, (_, v))| (k, v)).collect()))
            .collect();
    }

    fn compute_references(&self, day: NaiveDate) -> DayReferences {
        let mut out = DayReferences::default();
        let Some(latest) = self.reference_latest.get(&day.year()) else {
            // Nothing reported for the year: every unit lacks every figure.
            return out;
        };
        for ((source, element), value) in latest {
            let itself = |a: u32| latest.contains_key(&(a, element.clone()));
            for a in self.counted_for(*source, day, itself) {
                *out.sums
                    .entry(element.clone())
                    .or_default()
                    .entry(a)
                    .or_default() += value;
            }
        }
        // Where a figure is known for only part of a unit's territory, its sum is not the
        // unit's figure: a unit is covered when it reported the figure itself, or has units
        // below it on the day and all of them are covered.
        let elements: BTreeSet<&String> = latest.keys().map(|(_, e)| e).collect();
        for element in elements {
            let mut memo: HashMap<u32, bool> = HashMap::new();
            let units: BTreeSet<u32> = out
                .sums
                .get(element)
                .map(|m| m.keys().copied().collect())
                .unwrap_or_default();
            for unit in units {
                if !self.covered(unit, element, day, latest, &mut memo, 0) {
                    out.incomplete
                        .entry(element.clone())
                        .or_default()
                        .insert(unit);
                }
            }
        }
        out
    }

    fn covered(
        &self,
        unit: u32,
        element: &String,
        day: NaiveDate,
        latest: &HashMap<(u32, String), f64>,
        memo: &mut HashMap<u32, bool>,
        depth: usize,
    ) -> bool {
        if let Some(c) = memo.get(&unit) {
            return *c;
        }
        let result = if latest.contains_key(&(unit, element.clone())) {
            true
        } else {
            let children: Vec<u32> = self
                .links_down(unit)
                .filter(|l| l.depth == 1 && l.on(day))
                .map(|l| l.descendant)
                .collect();
            !children.is_empty()
                && depth < 8
                && children
                    .iter()
                    .all(|c| self.covered(*c, element, day, latest, memo, depth + 1))
        };
        memo.insert(unit, result);
        result
    }
}

/// The rollups held by a copy, read-locked while an answer is evaluated.
pub struct RollupsRead<'a> {
    guard: Option<std::sync::RwLockReadGuard<'a, Rollups>>,
}

impl RollupsRead<'_> {
    /// The sum of `element` for `unit` over the months starting from `first` to `last`.
    pub fn flow(&self, unit: u32, element: u16, first: NaiveDate, last: NaiveDate) -> f64 {
        let Some(r) = &self.guard else { return 0.0 };
        r.units
            .get(unit as usize)
            .and_then(|by_element| by_element.get(&element))
            .map_or(0.0, |series| {
                series.sum(month_number(first), month_number(last))
            })
    }
}
