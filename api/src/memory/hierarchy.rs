//! The dated hierarchy held in memory: every unit version, the closure (which unit lay under
//! which, on which days), the successions of 2025 and the shares of PARTIAL ones. It changes
//! only with a unit catalogue import, which loads the whole copy again.
use super::successions::{self, Part};
use crate::auth::{Coverage, Scope};
use crate::error::{Error, Result};
use async_graphql::futures_util::StreamExt;
use chrono::NaiveDate;
use cnscd_entity::codes::{SuccessionKind, UnitLevel};
use cnscd_entity::{admin_unit, admin_unit_closure, admin_unit_succession};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, StreamTrait};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

/// A closure row: `ancestor` is (or is above) `descendant` from `from` to `to`.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    pub ancestor: u32,
    pub descendant: u32,
    pub depth: u8,
    pub level: UnitLevel,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Link {
    pub fn on(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }
}

/// A closure row as held, in 16 bytes (a nation has 700,000): its days by their index in
/// [`Hierarchy::link_days`] (a catalogue has a few dozen distinct days).
#[derive(Clone, Copy, Debug)]
struct HeldLink {
    ancestor: u32,
    descendant: u32,
    from: u16,
    to: u16,
    depth: u8,
    level: UnitLevel,
}

/// A unit's place in the hierarchy on a day.
#[derive(Clone, Debug)]
pub struct Chain {
    /// Codes of the unit and every unit above it, nearest first.
    pub codes: Vec<String>,
    /// The first day from which the unit has had exactly these units above it.
    pub since: NaiveDate,
}

/// A unit version as held: what answers show of it (a nation has 180,000, each held in 32
/// bytes and its name; the row's other columns serve searches, which read the table).
#[derive(Clone, Debug)]
struct Version {
    id: i64,
    /// Its index in [`Hierarchy::names`].
    name: u32,
    parent: Option<u32>,
    level: UnitLevel,
    from: NaiveDate,
    to: NaiveDate,
}

/// Strings by index, one after the other in one string: a nation has 180,000 unit codes and
/// as many names, which as strings of their own would take twice the room.
#[derive(Default)]
struct Texts {
    text: String,
    /// Where each string ends in `text`.
    ends: Vec<u32>,
}

impl Texts {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// Adds a string, and returns its index.
    fn push(&mut self, s: &str) -> u32 {
        let i = self.ends.len() as u32;
        self.text.push_str(s);
        self.ends.push(self.text.len() as u32);
        i
    }

    fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// Unit codes by index, and the index of each: the codes, and a table of indexes hashed by
/// code.
#[derive(Default)]
struct Codes {
    texts: Texts,
    table: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl Codes {
    fn len(&self) -> usize {
        self.texts.len()
    }

    fn is_empty(&self) -> bool {
        self.texts.len() == 0
    }

    fn get(&self, i: u32) -> &str {
        self.texts.get(i)
    }

    fn find(&self, code: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(code);
        self.table
            .find(hash, |i| self.texts.get(*i) == code)
            .copied()
    }

    /// Adds a code not yet held, and returns its index.
    fn insert(&mut self, code: &str) -> u32 {
        let i = self.texts.push(code);
        let Self {
            texts,
            table,
            hasher,
        } = self;
        table.insert_unique(hasher.hash_one(code), i, |j| hasher.hash_one(texts.get(*j)));
        i
    }
}

/// Units by a small index, their versions, the closure between them and the successions.
#[derive(Default)]
pub struct Hierarchy {
    codes: Codes,
    /// Every version of every unit, by unit then oldest first: those of unit `u` are
    /// `versions[version_starts[u] .. version_starts[u + 1]]`.
    versions: Vec<Version>,
    version_starts: Vec<u32>,
    /// Versions as read, with their unit ([`Hierarchy::set_versions`] sorts them in).
    versions_read: Vec<(u32, Version)>,
    /// The versions' names.
    names: Texts,
    /// Sorted by ancestor: the links of unit `u` down are `links[down[u] .. down[u + 1]]`.
    links: Vec<HeldLink>,
    /// The days links start and end on, sorted: [`HeldLink`]'s days index them.
    link_days: Vec<NaiveDate>,
    down: Vec<u32>,
    /// Indexes of the links, sorted by descendant, nearest ancestor first: those of unit `u`
    /// up are `by_descendant[up[u] .. up[u + 1]]`.
    by_descendant: Vec<u32>,
    up: Vec<u32>,
    /// Whether each unit has units under it on some day.
    parents: Vec<bool>,
    /// By unit: whether the copy holds its monthly activity sums ([`Hierarchy::holds_flows`]).
    flows_held: Vec<bool>,
    /// The days some link starts or stops holding on, sorted.
    boundaries: Vec<NaiveDate>,
    successions: Vec<admin_unit_succession::Model>,
    shares: HashMap<(String, String), f64>,
}

impl Hierarchy {
    /// Reads the units, the closure and the successions.
    pub(super) async fn read(db: &(impl ConnectionTrait + StreamTrait)) -> Result<Self> {
        let successions = admin_unit_succession::Entity::find().all(db).await?;
        let mut h = Self::default();
        let units = admin_unit::Entity::find()
            .order_by_asc(admin_unit::Column::Code)
            .order_by_asc(admin_unit::Column::ValidFrom)
            .stream(db)
            .await?;
        let mut units = std::pin::pin!(units);
        while let Some(u) = units.next().await {
            h.add_version(u?);
        }
        // Streamed: a nation has hundreds of thousands of closure rows, each read straight
        // into a link (as driver rows, then models, they would take several times as much).
        let mut links = Vec::new();
        let rows = admin_unit_closure::Entity::find().stream(db).await?;
        let mut rows = std::pin::pin!(rows);
        while let Some(c) = rows.next().await {
            let c = c?;
            links.push(Link {
                ancestor: h.intern(&c.ancestor_code),
                descendant: h.intern(&c.descendant_code),
                depth: u8::try_from(c.depth).unwrap_or(u8::MAX),
                level: c.descendant_level,
                from: c.valid_from,
                to: c.valid_to,
            });
        }
        h.set_links(links)?;
        h.set_versions();
        h.successions = successions;
        h.shares = h.partial_shares();
        Ok(h)
    }

    /// A hierarchy of the given versions and closure rows (for tests that build a copy by
    /// hand; a closure of more distinct days than the copy holds has its links left out).
    #[cfg(test)]
    pub fn from_parts(
        units: Vec<admin_unit::Model>,
        closure: Vec<(&str, &str, i32, UnitLevel, NaiveDate, NaiveDate)>,
    ) -> Self {
        let mut h = Self::default();
        for u in units {
            h.add_version(u);
        }
        let links = closure
            .into_iter()
            .map(|(a, d, depth, level, from, to)| Link {
                ancestor: h.intern(a),
                descendant: h.intern(d),
                depth: u8::try_from(depth).unwrap_or(u8::MAX),
                level,
                from,
                to,
            })
            .collect();
        if h.set_links(links).is_err() {
            h.set_links(Vec::new()).ok();
        }
        h.set_versions();
        h
    }

    fn add_version(&mut self, u: admin_unit::Model) {
        let i = self.intern(&u.code);
        let parent = u.parent_code.as_deref().map(|p| self.intern(p));
        let name = self.names.push(&u.name);
        self.versions_read.push((
            i,
            Version {
                id: u.id,
                name,
                parent,
                level: u.level,
                from: u.valid_from,
                to: u.valid_to,
            },
        ));
    }

    /// Sorts the versions read in by unit, oldest first.
    fn set_versions(&mut self) {
        let mut read = std::mem::take(&mut self.versions_read);
        read.sort_by_key(|(unit, v)| (*unit, v.from));
        let mut starts = vec![0u32; self.codes.len() + 1];
        for (unit, _) in &read {
            starts[*unit as usize + 1] += 1;
        }
        for u in 0..self.codes.len() {
            starts[u + 1] += starts[u];
        }
        self.versions = read.into_iter().map(|(_, v)| v).collect();
        self.version_starts = starts;
        self.names.shrink_to_fit();
        self.codes.texts.shrink_to_fit();
    }

    /// The index of `code`, added when new.
    fn intern(&mut self, code: &str) -> u32 {
        if let Some(i) = self.codes.find(code) {
            return i;
        }
        self.codes.insert(code)
    }

    fn set_links(&mut self, mut links: Vec<Link>) -> Result<()> {
        let n = self.codes.len();
        links.sort_unstable_by_key(|l| (l.ancestor, l.depth, l.descendant, l.from));
        links.shrink_to_fit();
        let mut by_descendant: Vec<u32> = (0..links.len() as u32).collect();
        by_descendant.sort_unstable_by_key(|i| {
            let l = &links[*i as usize];
            (l.descendant, l.depth, l.ancestor, l.from)
        });
        let starts = |unit_of: &dyn Fn(usize) -> u32| {
            let mut starts = vec![0u32; n + 1];
            for i in 0..links.len() {
                starts[unit_of(i) as usize + 1] += 1;
            }
            for u in 0..n {
                starts[u + 1] += starts[u];
            }
            starts
        };
        let down = starts(&|i| links[i].ancestor);
        let up = starts(&|i| links[by_descendant[i] as usize].descendant);
        let mut parents = vec![false; n];
        let mut above_hamlets = vec![false; n];
        for l in &links {
            if l.depth == 0 && l.level != UnitLevel::Hamlet {
                above_hamlets[l.descendant as usize] = true;
            }
            if l.depth > 0 {
                parents[l.ancestor as usize] = true;
            }
        }
        let mut boundaries: Vec<NaiveDate> = links
            .iter()
            .flat_map(|l| [Some(l.from), l.to.succ_opt()])
            .flatten()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        boundaries.shrink_to_fit();
        self.boundaries = boundaries;
        let days: Vec<NaiveDate> = links
            .iter()
            .flat_map(|l| [l.from, l.to])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if days.len() > usize::from(u16::MAX) + 1 {
            return Err(Error::Internal(format!(
                "the unit closure has {} distinct days; the copy holds at most 65,536",
                days.len()
            )));
        }
        let day = |d: NaiveDate| days.partition_point(|x| *x < d) as u16;
        self.links = links
            .iter()
            .map(|l| HeldLink {
                ancestor: l.ancestor,
                descendant: l.descendant,
                from: day(l.from),
                to: day(l.to),
                depth: l.depth,
                level: l.level,
            })
            .collect();
        self.link_days = days;
        self.down = down;
        self.by_descendant = by_descendant;
        self.up = up;
        self.flows_held = parents
            .iter()
            .zip(&above_hamlets)
            .map(|(p, a)| *p || *a)
            .collect();
        self.parents = parents;
        Ok(())
    }

    fn link(&self, l: &HeldLink) -> Link {
        Link {
            ancestor: l.ancestor,
            descendant: l.descendant,
            depth: l.depth,
            level: l.level,
            from: self.link_days[usize::from(l.from)],
            to: self.link_days[usize::from(l.to)],
        }
    }

    /// The first day of the stretch of days around `day` in which no link starts or stops
    /// holding: every day of it sees the same hierarchy.
    pub fn unchanged_since(&self, day: NaiveDate) -> NaiveDate {
        match self.boundaries.partition_point(|b| *b <= day) {
            0 => NaiveDate::MIN,
            i => self.boundaries[i - 1],
        }
    }

    /// Whether the copy holds `unit`'s monthly activity sums: a unit with units under it, or
    /// one above hamlet level without any (a commune whose hamlets the catalogue does not
    /// list answers from memory, whatever its activities). The rest, hamlets, are read from
    /// their rollup rows when an answer shows them: a nation has 170,000.
    pub fn holds_flows(&self, unit: u32) -> bool {
        self.flows_held.get(unit as usize).copied().unwrap_or(false)
    }

    /// The units `unit` lies under on some day (itself included; none for an unknown unit).
    pub(super) fn above_some_day(&self, unit: u32) -> impl Iterator<Item = u32> + '_ {
        let known = (unit as usize) < self.codes.len();
        known
            .then(|| self.links_up(unit).map(|l| l.ancestor))
            .into_iter()
            .flatten()
    }

    /// Whether `unit` has units under it on some day.
    pub fn has_units_under(&self, unit: u32) -> bool {
        self.parents.get(unit as usize).copied().unwrap_or(false)
    }

    /// How many units there are (indexes are below it).
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The index of a unit code.
    pub fn unit(&self, code: &str) -> Option<u32> {
        self.codes.find(code)
    }

    pub fn code(&self, unit: u32) -> &str {
        self.codes.get(unit)
    }

    pub(super) fn links_down(&self, unit: u32) -> impl Iterator<Item = Link> + '_ {
        let u = unit as usize;
        self.links[self.down[u] as usize..self.down[u + 1] as usize]
            .iter()
            .map(|l| self.link(l))
    }

    /// The links up from `unit`, nearest ancestor first.
    pub(super) fn links_up(&self, unit: u32) -> impl Iterator<Item = Link> + '_ {
        let u = unit as usize;
        self.by_descendant[self.up[u] as usize..self.up[u + 1] as usize]
            .iter()
            .map(|i| self.link(&self.links[*i as usize]))
    }

    /// Every version of each of `codes` (those that exist), oldest first.
    pub fn all_versions(&self, codes: &[String]) -> HashMap<String, Vec<Arc<admin_unit::Model>>> {
        codes
            .iter()
            .filter_map(|c| {
                let i = self.unit(c)?;
                let v = &self.versions[self.version_starts[i as usize] as usize
                    ..self.version_starts[i as usize + 1] as usize];
                (!v.is_empty()).then(|| {
                    let models = v
                        .iter()
                        .map(|v| {
                            Arc::new(admin_unit::Model {
                                id: v.id,
                                code: c.clone(),
                                name: self.names.get(v.name).to_owned(),
                                name_search: String::new(),
                                unit_type: None,
                                level: v.level,
                                parent_code: v.parent.map(|p| self.code(p).to_owned()),
                                valid_from: v.from,
                                valid_to: v.to,
                            })
                        })
                        .collect();
                    (c.clone(), models)
                })
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

    /// `unit`'s place in the hierarchy on `day` (as `activities::rollup::ancestors_on` reads it
    /// from the database), if the unit exists then.
    pub fn chain(&self, unit: &str, day: NaiveDate) -> Option<Chain> {
        let u = self.unit(unit)?;
        let mut chain = Chain {
            codes: Vec::new(),
            since: NaiveDate::MIN,
        };
        for l in self.links_up(u).filter(|l| l.on(day)) {
            chain.codes.push(self.code(l.ancestor).to_owned());
            chain.since = chain.since.max(l.from);
        }
        (!chain.codes.is_empty()).then_some(chain)
    }

    /// For each of `targets`, the units whose figures make it up: the unit itself and its
    /// predecessors, transitively (see [`successions`]).
    pub fn contributors(&self, targets: &[String]) -> HashMap<String, Vec<Part>> {
        successions::contributors(&self.successions, &self.shares, targets)
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
        successions::partial_shares(&partial, under)
    }

    /// The units a figure reported by `source` counts for on `day`: the unit and the units
    /// above it, nearest first, up to (not including) the first that reported the same figure
    /// itself — its own figure stands for the units below it, so no figure is summed twice.
    pub(super) fn counted_for(
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

    /// The direct children of `unit` on `day`.
    pub(super) fn children_on(&self, unit: u32, day: NaiveDate) -> Vec<u32> {
        self.links_down(unit)
            .filter(|l| l.depth == 1 && l.on(day))
            .map(|l| l.descendant)
            .collect()
    }
}

#[cfg(test)]
impl Hierarchy {
    /// For tests: a province P with communes C1 and C2 under it and a hamlet H under C1, for
    /// every day.
    pub(crate) fn two_communes() -> Self {
        use UnitLevel::{Commune, Hamlet, Province};
        let (min, max) = (NaiveDate::MIN, NaiveDate::MAX);
        Self::from_parts(
            Vec::new(),
            vec![
                ("P", "P", 0, Province, min, max),
                ("C1", "C1", 0, Commune, min, max),
                ("C2", "C2", 0, Commune, min, max),
                ("H", "H", 0, Hamlet, min, max),
                ("P", "C1", 1, Commune, min, max),
                ("P", "C2", 1, Commune, min, max),
                ("C1", "H", 1, Hamlet, min, max),
                ("P", "H", 2, Hamlet, min, max),
            ],
        )
    }
}
