//! A full load: every table the copy holds, read into a new copy. Done once at start, and again
//! only for what reshapes everything (a unit catalogue import); routine changes are applied as
//! changes ([`super::changes`]).
use super::catalogues::{Definitions, IntakeData, Targets};
use super::hierarchy::Hierarchy;
use super::reported::{FigureRow, Figures};
use super::states::{Member, States, TeamShare};
use super::{FastMap, Live, Snapshot, rollups};
use crate::db::query;
use crate::error::Result;
use async_graphql::futures_util::StreamExt;
use chrono::NaiveDate;
use cnscd_entity::codes::Aggregation;
use cnscd_entity::{data_element, indicator_definition};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, StreamTrait};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Every active version of each indicator (of `code` only, when given), by code, ordered by
/// `valid_from` (then version).
pub async fn definitions(db: &impl ConnectionTrait, code: Option<&str>) -> Result<Definitions> {
    let mut select =
        indicator_definition::Entity::find().filter(indicator_definition::Column::Active.eq(true));
    if let Some(code) = code {
        select = select.filter(indicator_definition::Column::Code.eq(code));
    }
    let mut out: Definitions = HashMap::new();
    for d in select
        .order_by_asc(indicator_definition::Column::Code)
        .order_by_asc(indicator_definition::Column::ValidFrom)
        .order_by_asc(indicator_definition::Column::Version)
        .all(db)
        .await?
    {
        out.entry(d.code.clone()).or_default().push(d);
    }
    Ok(out)
}

/// Activity kinds: whether each is active.
pub(super) async fn kinds(db: &impl ConnectionTrait) -> Result<HashMap<String, bool>> {
    let mut out = HashMap::new();
    for r in query(db, "SELECT code, active FROM activity_kind", vec![]).await? {
        out.insert(r.try_get("", "code")?, r.try_get("", "active")?);
    }
    Ok(out)
}

/// Digital services: (active, counts as cashless payment).
pub(super) async fn services(db: &impl ConnectionTrait) -> Result<HashMap<String, (bool, bool)>> {
    let mut out = HashMap::new();
    for r in query(
        db,
        "SELECT code, active, cashless FROM digital_service",
        vec![],
    )
    .await?
    {
        out.insert(
            r.try_get("", "code")?,
            (r.try_get("", "active")?, r.try_get("", "cashless")?),
        );
    }
    Ok(out)
}

/// Which teams [`teams`] reads.
pub(super) enum Teams<'a> {
    All,
    /// Every team sitting in one of these units.
    In(&'a [&'a str]),
}

/// Teams with their memberships, as the states count them (and intake checks them). A team
/// whose unit the hierarchy does not know is left out (its unit came with a catalogue import,
/// which loads the copy again).
pub(super) async fn teams(
    db: &(impl ConnectionTrait + StreamTrait),
    hierarchy: &Hierarchy,
    which: Teams<'_>,
) -> Result<Vec<(i64, TeamShare)>> {
    let (filter, mfilter, values) = match which {
        Teams::In(units) => {
            let list = crate::db::placeholders(units.len());
            (
                format!(" WHERE unit_code IN ({list})"),
                format!(" WHERE team_id IN (SELECT id FROM team WHERE unit_code IN ({list}))"),
                units
                    .iter()
                    .map(|u| sea_orm::Value::from(*u))
                    .collect::<Vec<_>>(),
            )
        }
        Teams::All => (String::new(), String::new(), Vec::new()),
    };
    let teams = query(
        db,
        &format!("SELECT id, unit_code, founded_on, dissolved_on FROM team{filter}"),
        values.clone(),
    )
    .await?;
    // Streamed, as a nation has hundreds of thousands of memberships.
    let memberships = db
        .stream_raw(crate::db::stmt(
            ConnectionTrait::get_database_backend(db),
            &format!(
                "SELECT team_id, affiliation, started_on, ended_on FROM membership{mfilter} \
                 ORDER BY id"
            ),
            values,
        ))
        .await?;
    let mut memberships = std::pin::pin!(memberships);
    let mut members: FastMap<i64, Vec<Member>> = FastMap::default();
    // Each affiliation held once, shared by its memberships.
    let mut affiliations: HashMap<String, Arc<str>> = HashMap::new();
    while let Some(r) = memberships.next().await {
        let r = r?;
        let affiliation: String = r.try_get("", "affiliation")?;
        let affiliation = match affiliations.get(&affiliation) {
            Some(a) => a.clone(),
            None => {
                let a: Arc<str> = affiliation.as_str().into();
                affiliations.insert(affiliation, a.clone());
                a
            }
        };
        members
            .entry(r.try_get("", "team_id")?)
            .or_default()
            .push(Member {
                affiliation,
                started_on: r.try_get("", "started_on")?,
                ended_on: r.try_get("", "ended_on")?,
            });
    }
    let mut out = Vec::with_capacity(teams.len());
    for r in teams {
        let id: i64 = r.try_get("", "id")?;
        let unit_code: String = r.try_get("", "unit_code")?;
        let Some(unit) = hierarchy.unit(&unit_code) else {
            continue;
        };
        let share = TeamShare {
            unit,
            founded_on: r.try_get("", "founded_on")?,
            dissolved_on: r.try_get("", "dissolved_on")?,
            members: members
                .remove(&id)
                .map(|mut m| {
                    m.shrink_to_fit();
                    m
                })
                .unwrap_or_default(),
        };
        out.push((id, share));
    }
    Ok(out)
}

/// Period locks (all, or those of `unit`), by unit index.
pub(super) async fn locks(
    db: &impl ConnectionTrait,
    hierarchy: &Hierarchy,
    unit: Option<&str>,
) -> Result<FastMap<u32, Vec<(NaiveDate, NaiveDate)>>> {
    let (filter, values) = match unit {
        Some(u) => (" WHERE unit_code = ?", vec![sea_orm::Value::from(u)]),
        None => ("", vec![]),
    };
    let mut out: FastMap<u32, Vec<(NaiveDate, NaiveDate)>> = FastMap::default();
    for r in query(
        db,
        &format!("SELECT unit_code, period_start, period_end FROM period_lock{filter}"),
        values,
    )
    .await?
    {
        let unit: String = r.try_get("", "unit_code")?;
        if let Some(u) = hierarchy.unit(&unit) {
            out.entry(u)
                .or_default()
                .push((r.try_get("", "period_start")?, r.try_get("", "period_end")?));
        }
    }
    Ok(out)
}

/// Reported figures matching `filter` (SQL on `v`, with its values), handed to `take` in
/// submission order (figures of units or elements the copy does not know are left out).
pub(super) async fn figures(
    db: &(impl ConnectionTrait + StreamTrait),
    hierarchy: &Hierarchy,
    element_index: &HashMap<String, u16>,
    filter: &str,
    values: Vec<sea_orm::Value>,
    mut take: impl FnMut(FigureRow),
) -> Result<()> {
    // Streamed: a nation reports millions of figures (as driver rows they would take several
    // times what they take held).
    let rows = db
        .stream_raw(crate::db::stmt(
            ConnectionTrait::get_database_backend(db),
            &format!(
                "SELECT v.unit_code, v.element_code, v.period_start, v.period_end, v.value \
                 FROM data_value v{filter} ORDER BY v.id"
            ),
            values,
        ))
        .await?;
    let mut rows = std::pin::pin!(rows);
    while let Some(r) = rows.next().await {
        let r = r?;
        let unit: String = r.try_get("", "unit_code")?;
        let element: String = r.try_get("", "element_code")?;
        let (Some(u), Some(e)) = (hierarchy.unit(&unit), element_index.get(&element)) else {
            continue;
        };
        take((
            u,
            *e,
            r.try_get("", "period_start")?,
            r.try_get("", "period_end")?,
            r.try_get("", "value")?,
        ));
    }
    Ok(())
}

/// Targets matching `filter` (SQL, with its values): `(indicator, unit index, start, end,
/// target)`.
pub(super) async fn targets(
    db: &impl ConnectionTrait,
    hierarchy: &Hierarchy,
    filter: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<(String, u32, NaiveDate, NaiveDate, f64)>> {
    let mut out = Vec::new();
    for r in query(
        db,
        &format!(
            "SELECT indicator_code, unit_code, period_start, period_end, target \
             FROM indicator_target{filter}"
        ),
        values,
    )
    .await?
    {
        let unit: String = r.try_get("", "unit_code")?;
        if let Some(u) = hierarchy.unit(&unit) {
            out.push((
                r.try_get("", "indicator_code")?,
                u,
                r.try_get("", "period_start")?,
                r.try_get("", "period_end")?,
                r.try_get("", "target")?,
            ));
        }
    }
    Ok(out)
}

impl Snapshot {
    /// Loads everything: the change log's mark and the generation first (one statement), then
    /// the tables, then the rollups with their own mark. A change committed while the tables
    /// are read is in the log past the mark, and applied by the next request that sees the
    /// generation move (applying a change reads its rows again, so applying it twice is
    /// harmless).
    ///
    /// With `pool` (the same database on PostgreSQL), the rollups are read through `COPY`.
    pub(super) async fn load(
        db: &(impl ConnectionTrait + StreamTrait),
        pool: Option<&sea_orm::sqlx::PgPool>,
    ) -> Result<Self> {
        // What the copy reflects: what was committed when its mark was read.
        let started = chrono::Utc::now();
        let (generation, changes) = super::marks::current_mark(db).await?;
        let hierarchy = Hierarchy::read(db).await?;
        let elements: HashMap<String, data_element::Model> = data_element::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|e| (e.code.clone(), e))
            .collect();
        let mut element_codes: Vec<&String> = elements.keys().collect();
        element_codes.sort();
        let element_index: HashMap<String, u16> = element_codes
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as u16))
            .collect();
        let intake = IntakeData {
            kinds: kinds(db).await?,
            services: services(db).await?,
            locks: locks(db, &hierarchy, None).await?,
        };
        let states = States::build(teams(db, &hierarchy, Teams::All).await?);
        let reference = reference_elements(&elements, &element_index);
        let mut held = Figures::default();
        figures(db, &hierarchy, &element_index, "", vec![], |row| {
            held.add(row, reference[row.1 as usize])
        })
        .await?;
        held.finish(&hierarchy);
        let figures = held;
        let mut targets_held = Targets::default();
        for (code, unit, start, end, t) in targets(db, &hierarchy, "", vec![]).await? {
            targets_held.set(&code, unit, start, end, Some(t));
        }
        let definitions = definitions(db, None).await?;
        let snapshot = Self {
            hierarchy,
            elements,
            element_index,
            live: RwLock::new(Live {
                generation,
                changes,
                definitions,
                intake,
                states,
                figures,
                targets: targets_held,
            }),
            rollups: RwLock::new(rollups::Rollups::default()),
            as_of: Mutex::new(started),
            needs_reload: std::sync::atomic::AtomicBool::new(false),
        };
        // The rows and deltas with the mark of the same statement: each delta is counted once.
        let mut held = rollups::Rollups::default();
        // Every delta a load reads is past the folds (it reads no other).
        let mut sink = |cell| held.add(&snapshot.hierarchy, cell, 0);
        let found = match pool {
            Some(pool) => {
                rollups::read_copied(
                    pool,
                    &snapshot.hierarchy,
                    &snapshot.element_index,
                    &mut sink,
                )
                .await?
            }
            None => {
                rollups::read(
                    db,
                    &snapshot.hierarchy,
                    &snapshot.element_index,
                    None,
                    &mut sink,
                )
                .await?
            }
        };
        held.read_to(found.mark, found.folded);
        held.shrink_to_fit();
        if let Ok(mut r) = snapshot.rollups.write() {
            *r = held;
        }
        Ok(snapshot)
    }
}

/// What a copy built by hand holds (see [`Snapshot::from_parts`]).
#[derive(Default)]
pub struct Parts {
    pub elements: Vec<data_element::Model>,
    pub definitions: Definitions,
    /// Teams as the states count them.
    pub teams: Vec<(i64, TeamShare)>,
    /// Reported figures, in submission order: unit index, element code, period, value.
    pub figures: Vec<(u32, String, NaiveDate, NaiveDate, f64)>,
    /// Targets: indicator, unit index, period start and end, target.
    pub targets: Vec<(String, u32, NaiveDate, NaiveDate, f64)>,
    /// Rollup cells: unit index, element code, first day, value.
    pub rollups: Vec<(u32, String, NaiveDate, f64)>,
}

impl Snapshot {
    /// A copy built by hand from a hierarchy and its data, without a database: for tests of
    /// what is computed from a copy, and tools.
    pub fn from_parts(hierarchy: Hierarchy, parts: Parts) -> Self {
        let elements: HashMap<String, data_element::Model> = parts
            .elements
            .into_iter()
            .map(|e| (e.code.clone(), e))
            .collect();
        let mut codes: Vec<&String> = elements.keys().collect();
        codes.sort();
        let element_index: HashMap<String, u16> = codes
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as u16))
            .collect();
        let intake = IntakeData::default();
        let states = States::build(parts.teams);
        let reference = reference_elements(&elements, &element_index);
        let rows = parts
            .figures
            .into_iter()
            .filter_map(|(u, e, start, end, v)| Some((u, *element_index.get(&e)?, start, end, v)));
        let figures = Figures::build(&hierarchy, rows, |e| reference[e as usize]);
        let mut targets = Targets::default();
        for (code, unit, start, end, t) in parts.targets {
            targets.set(&code, unit, start, end, Some(t));
        }
        let mut rollups = rollups::Rollups::by_hand();
        let cells = parts
            .rollups
            .into_iter()
            .filter_map(|(unit, element, day, value)| {
                let e = element_index.get(&element)?;
                Some(((unit, *e, day), rollups::Read::Row(value)))
            })
            .collect();
        rollups.apply(&hierarchy, cells, None, 0);
        Self {
            hierarchy,
            elements,
            element_index,
            live: RwLock::new(Live {
                generation: 0,
                changes: super::Mark::default(),
                definitions: parts.definitions,
                intake,
                states,
                figures,
                targets,
            }),
            rollups: RwLock::new(rollups),
            as_of: Mutex::new(chrono::Utc::now()),
            needs_reload: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// Whether each data element, by index, is a reference figure.
fn reference_elements(
    elements: &HashMap<String, data_element::Model>,
    element_index: &HashMap<String, u16>,
) -> Vec<bool> {
    let mut reference = vec![false; element_index.len()];
    for (code, i) in element_index {
        reference[*i as usize] = elements
            .get(code)
            .is_some_and(|e| e.aggregation == Aggregation::Reference);
    }
    reference
}
