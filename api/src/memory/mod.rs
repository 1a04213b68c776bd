//! The in-memory indicator data: what indicators are computed from, held in memory and kept
//! as committed, on every replica.
//!
//! One file per idea:
//! - [`hierarchy`]: the dated units, the closure, the successions (and [`successions`], the
//!   re-based mode's algebra over them);
//! - [`states`]: teams and members counted on each day, as timelines per unit;
//! - [`reported`]: reported figures, flows summed up the hierarchy and reference figures;
//! - [`catalogues`]: indicator definitions and targets, and what intake checks (teams' days,
//!   kinds, services, period locks);
//! - [`rollups`]: the monthly activity rollups, summed up the hierarchy;
//! - [`marks`]: how far the copy has read a stamped log, and the per-request statement;
//! - [`changes`]: the data change log, read past the copy's mark and applied as changes;
//! - [`load`]: a full load.
//!
//! # Keeping current
//!
//! Triggers on every table the copy holds bump `data_generation` (row 1) in the same
//! transaction as the change, and write what changed to `data_change` (which team, which
//! figure's element and period, which target…), stamped like the rollups. A request reads the
//! generation (one statement, with the rollups' "anything new?"). When it has moved, the copy
//! reads the change log past its mark and applies each change by reading its rows again: a
//! team's days and memberships rebuild its unit's timelines, a figure's group is summed again,
//! a target, definition or lock is replaced. The cost follows the change, not the data.
//!
//! What reshapes everything (a unit catalogue import, a new data element, a change log pruned
//! past the copy's mark) loads a whole new copy in the background; the copy held answers
//! until the new one is ready, and every answer says which data it reflects
//! ([`Snapshot::as_of`], `extensions.dataAsOf`). `cnscd_indicator_data_loads_total` counts
//! full loads.
pub mod catalogues;
pub mod changes;
pub mod hierarchy;
mod load;
pub mod marks;
pub mod reported;
pub mod rollups;
pub mod states;
pub mod successions;

pub use catalogues::{IntakeData, TeamDays};
pub use hierarchy::{Chain, Hierarchy, Link};
pub use load::{Parts, definitions};
pub use marks::{Mark, generations};
pub use reported::{DayReferences, Reported};
pub use rollups::{LeafFlows, RollupsRead};
pub use successions::Part;

use crate::error::Result;
use chrono::{DateTime, NaiveDate, Utc};
use cnscd_entity::data_element;
use sea_orm::{ConnectionTrait, DatabaseConnection, StreamTrait};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

/// Maps and sets keyed by the copy's own small integers (no DoS-resistant hashing needed).
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// The in-memory copy for one database, shared by every request on it.
#[derive(Clone, Default)]
pub struct Store {
    current: Arc<RwLock<Option<Arc<Snapshot>>>>,
    /// One reader of the database's changes at a time; requests that find one under way wait
    /// for it (they answer from what is committed).
    applying: Arc<tokio::sync::Mutex<()>>,
    /// A full load under way in the background.
    reloading: Arc<AtomicBool>,
    /// The database, for loading in the background (a store without one loads in place).
    db: Option<DatabaseConnection>,
    /// Full loads done (as `cnscd_indicator_data_loads_total` counts them, for this store).
    loads: Arc<std::sync::atomic::AtomicUsize>,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that loads new copies of `db` in the background.
    pub fn for_database(db: &DatabaseConnection) -> Self {
        Self {
            db: Some(db.clone()),
            ..Self::default()
        }
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    /// How many full loads this store has done.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    /// A full load, timed and counted.
    async fn timed_load(&self, db: &(impl ConnectionTrait + StreamTrait)) -> Result<Snapshot> {
        let started = std::time::Instant::now();
        // The store's own database on PostgreSQL reads its rollups through `COPY`.
        let pool = self
            .db
            .as_ref()
            .filter(|d| d.get_database_backend() == sea_orm::DbBackend::Postgres)
            .map(|d| d.get_postgres_connection_pool());
        let fresh = Snapshot::load(db, pool).await?;
        self.loads.fetch_add(1, Ordering::SeqCst);
        store_read("reload");
        metrics::counter!("cnscd_indicator_data_loads_total").increment(1);
        metrics::histogram!("cnscd_indicator_store_load_seconds")
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(generation = fresh.generation(), "indicator data loaded");
        Ok(fresh)
    }

    /// The copy held now, without asking the database whether it is current: for a caller
    /// that reads the data generation in its own statement and calls [`Store::snapshot`] when
    /// it has moved past the copy's.
    pub fn held(&self) -> Option<Arc<Snapshot>> {
        self.current()
    }

    /// The copy as of what is committed now: one statement when it is current, two when
    /// activities came in since it was last looked at, and the change log and the rows of
    /// what changed when something else did.
    pub async fn snapshot(
        &self,
        db: &(impl ConnectionTrait + StreamTrait),
    ) -> Result<Arc<Snapshot>> {
        let checked_at = Utc::now();
        let held = self.current();
        let mark = held.as_ref().map(|s| s.rollup_mark());
        let (generation, pending) = generations(db, mark.as_ref()).await?;
        let Some(held) = held else {
            return self.first_load(db).await;
        };
        if held.generation() < generation {
            let _applying = self.applying.lock().await;
            if held.generation() < generation {
                let applied = held.apply_changes(db).await?;
                if applied.reload && self.db.is_none() {
                    // No database to load from in the background: load in place.
                    let fresh = Arc::new(self.timed_load(db).await?);
                    if let Ok(mut c) = self.current.write() {
                        *c = Some(fresh.clone());
                    }
                    return Ok(fresh);
                }
            }
        }
        if pending {
            let _applying = self.applying.lock().await;
            // A copy waiting for its successor reads no more rollups: what reshaped them (a
            // rebuild) would be read as a change, and the copy answers as it was meanwhile.
            if !held.needs_reload.load(Ordering::SeqCst) {
                held.catch_up(db).await?;
            }
            store_read("catch_up");
        } else {
            store_read("hit");
        }
        if held.needs_reload.load(Ordering::SeqCst) {
            self.reload_in_background();
        }
        held.confirm(checked_at);
        // A copy loaded in the background answers from the next request on.
        Ok(held)
    }

    /// The first copy: loaded in place (there is nothing else to answer from).
    async fn first_load(&self, db: &(impl ConnectionTrait + StreamTrait)) -> Result<Arc<Snapshot>> {
        let _applying = self.applying.lock().await;
        if let Some(s) = self.current() {
            return Ok(s);
        }
        let fresh = Arc::new(self.timed_load(db).await?);
        if let Ok(mut c) = self.current.write() {
            *c = Some(fresh.clone());
        }
        Ok(fresh)
    }

    /// Loads a new copy in the background (once at a time); the copy held answers meanwhile.
    fn reload_in_background(&self) {
        let Some(owned) = self.db.clone() else {
            return;
        };
        if self.reloading.swap(true, Ordering::SeqCst) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            match store.timed_load(&owned).await {
                Ok(fresh) => {
                    if let Ok(mut c) = store.current.write() {
                        *c = Some(Arc::new(fresh));
                    }
                }
                Err(e) => tracing::warn!(
                    error = %e.message(),
                    "indicator data not loaded again; the next request tries again"
                ),
            }
            store.reloading.store(false, Ordering::SeqCst);
        });
    }

    /// The copy as of what is committed now, for what does not read the activity rollups
    /// (intake checks): the rollups are not caught up (they are, by the next request that
    /// reads them).
    pub async fn catalogues(
        &self,
        db: &(impl ConnectionTrait + StreamTrait),
    ) -> Result<Arc<Snapshot>> {
        let (generation, _) = generations(db, None).await?;
        if let Some(s) = self.current().filter(|s| s.generation() >= generation) {
            return Ok(s);
        }
        self.snapshot(db).await
    }
}

/// Counts a read of the copy by how it was answered (`cnscd_indicator_store_requests_total`).
fn store_read(result: &'static str) {
    metrics::counter!("cnscd_indicator_store_requests_total", "result" => result).increment(1);
}

/// What routine changes move, behind one lock: a request reads it whole, a change is applied
/// to it whole.
pub struct Live {
    /// The data generation the copy is at: every change committed up to it is applied.
    pub generation: i64,
    /// How far the change log has been read.
    changes: Mark,
    /// Active versions of each indicator, by `valid_from` then version.
    pub definitions: catalogues::Definitions,
    /// What a submitted activity is checked against.
    pub intake: IntakeData,
    states: states::States,
    figures: reported::Figures,
    targets: catalogues::Targets,
}

/// The in-memory copy: the hierarchy and the data elements (fixed until the next full load),
/// what routine changes move ([`Live`]), and the rollups.
pub struct Snapshot {
    pub hierarchy: Hierarchy,
    elements: HashMap<String, data_element::Model>,
    /// Data element codes by index, for the rollups.
    element_index: HashMap<String, u16>,
    live: RwLock<Live>,
    rollups: RwLock<rollups::Rollups>,
    /// When the copy was last known to hold what is committed.
    as_of: Mutex<DateTime<Utc>>,
    /// A change came that this copy cannot take (a new copy is being loaded).
    needs_reload: AtomicBool,
}

impl std::ops::Deref for Snapshot {
    type Target = Hierarchy;

    fn deref(&self) -> &Hierarchy {
        &self.hierarchy
    }
}

impl Snapshot {
    /// The copy's data as it is now, read-locked until the view is dropped (hold it for a
    /// computation, not across an `await`).
    pub fn view(&self) -> View<'_> {
        let live = match self.live.read() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        View { snap: self, live }
    }

    /// The data generation the copy is at.
    pub fn generation(&self) -> i64 {
        self.view().live.generation
    }

    /// When the copy was last known to hold what is committed (the data an answer reflects).
    pub fn as_of(&self) -> DateTime<Utc> {
        self.as_of.lock().map(|t| *t).unwrap_or_else(|_| Utc::now())
    }

    /// Notes that the copy holds what was committed at `at` (unless a change is waiting for a
    /// new copy).
    fn confirm(&self, at: DateTime<Utc>) {
        if self.needs_reload.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(mut t) = self.as_of.lock() {
            *t = (*t).max(at);
        }
    }

    /// The data elements, by code.
    pub fn elements(&self) -> &HashMap<String, data_element::Model> {
        &self.elements
    }

    /// The index of a data element among the activity rollups.
    pub fn element_index(&self, code: &str) -> Option<u16> {
        self.element_index.get(code).copied()
    }

    fn rollup_mark(&self) -> Mark {
        self.rollups
            .read()
            .map(|r| r.mark.clone())
            .unwrap_or_default()
    }

    /// Reads the rollup deltas stamped past the mark, and moves the mark (one statement). A
    /// copy that has not read as far as the deltas pruned since needs a new copy.
    async fn catch_up(&self, db: &(impl ConnectionTrait + StreamTrait)) -> Result<()> {
        let mark = self.rollup_mark();
        let mut cells = Vec::new();
        let found = rollups::read(
            db,
            &self.hierarchy,
            &self.element_index,
            Some(&mark),
            &mut |cell| cells.push(cell),
        )
        .await?;
        if found.pruned >= mark.lowest_unread() {
            self.needs_reload.store(true, Ordering::SeqCst);
            return Ok(());
        }
        if let Ok(mut r) = self.rollups.write() {
            r.apply(&self.hierarchy, cells, found.mark, found.folded);
        }
        Ok(())
    }

    /// The flows of the units without units under them that `units` names, over the months
    /// starting `first ..= last`, for one answer (one statement; none when there are none).
    pub async fn leaf_flows(
        &self,
        db: &impl ConnectionTrait,
        units: &[u32],
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<LeafFlows> {
        let leaves: Vec<u32> = units
            .iter()
            .copied()
            .filter(|u| !self.hierarchy.holds_flows(*u))
            .collect();
        // A copy waiting for its successor holds deltas that a reshaping (a rebuild) may have
        // put into the rows or dropped: the rows alone answer until the successor does.
        let deltas = !self.needs_reload.load(Ordering::SeqCst);
        rollups::leaf_flows(
            db,
            &self.hierarchy,
            &self.element_index,
            &self.rollups,
            &leaves,
            (first, last),
            deltas,
        )
        .await
    }

    /// The rollups, for reading many at once ([`RollupsRead::flow`]), with the flows read for
    /// the answer of units without units under them.
    pub fn rollups<'a>(&'a self, leaves: &'a LeafFlows) -> RollupsRead<'a> {
        RollupsRead {
            guard: self.rollups.read().ok(),
            hierarchy: &self.hierarchy,
            leaves,
        }
    }
}

/// The copy's data, read-locked: the hierarchy (through `Deref`), what routine changes move
/// (`live`), and the state, figure and target look-ups over both.
pub struct View<'a> {
    pub snap: &'a Snapshot,
    pub live: RwLockReadGuard<'a, Live>,
}

impl std::ops::Deref for View<'_> {
    type Target = Hierarchy;

    fn deref(&self) -> &Hierarchy {
        &self.snap.hierarchy
    }
}

impl View<'_> {
    /// The count of a state element for `unit` on `day` (see [`states::States::state`]).
    pub fn state(&self, unit: u32, element: &str, day: NaiveDate) -> f64 {
        self.live
            .states
            .state(&self.snap.hierarchy, unit, element, day)
    }

    /// The reported flow values `unit` counts for the periods that start in `starts` and end
    /// by `end_by` (see [`reported::Figures::reported`]).
    pub fn reported(
        &self,
        unit: u32,
        element: &str,
        starts: std::ops::RangeInclusive<NaiveDate>,
        end_by: NaiveDate,
    ) -> Option<f64> {
        let e = self.snap.element_index(element)?;
        self.live.figures.reported(unit, e, starts, end_by)
    }

    /// Reference figures on `day`, computed once per copy and kept.
    pub fn references(&self, day: NaiveDate) -> Arc<DayReferences> {
        self.live.figures.references(&self.snap.hierarchy, day)
    }

    /// The team with this id, as intake checks it.
    pub fn team(&self, id: i64) -> Option<TeamDays> {
        let t = self.live.states.team(id)?;
        Some(TeamDays {
            unit_code: self.snap.hierarchy.code(t.unit).to_owned(),
            founded_on: t.founded_on,
            dissolved_on: t.dissolved_on,
        })
    }

    /// The target set for indicator `code`, `unit` and the period `start ..= end`.
    pub fn target(&self, code: &str, unit: u32, start: NaiveDate, end: NaiveDate) -> Option<f64> {
        self.live.targets.get(code, unit, start, end)
    }

    /// The first of `units` with a locked period containing `day`.
    pub fn locked<'u>(&self, units: &'u [String], day: NaiveDate) -> Option<&'u str> {
        units.iter().map(String::as_str).find(|code| {
            self.snap
                .hierarchy
                .unit(code)
                .and_then(|u| self.live.intake.locks.get(&u))
                .is_some_and(|spans| spans.iter().any(|(f, t)| *f <= day && day <= *t))
        })
    }

    /// The data elements, by code.
    pub fn elements(&self) -> &HashMap<String, data_element::Model> {
        &self.snap.elements
    }

    /// The index of a data element among the activity rollups.
    pub fn element_index(&self, code: &str) -> Option<u16> {
        self.snap.element_index(code)
    }

    /// The rollups, for reading many at once ([`RollupsRead::flow`]), with the flows read for
    /// the answer of units without units under them.
    pub fn rollups<'a>(&'a self, leaves: &'a LeafFlows) -> RollupsRead<'a> {
        self.snap.rollups(leaves)
    }
}
