//! Computing indicator values for units and periods, as recorded: units as they were in each
//! period. Flow elements come from the monthly rollups, state elements are counted at the
//! period's end, reported figures come from data values.
use super::periods::{self, Granularity, Span};
use crate::auth::{Action, Principal};
use crate::error::{Error, Result};
use crate::memory::{DayReferences, FastMap, FastSet, Store};
use chrono::NaiveDate;
use cnscd_entity::codes::{Aggregation, ElementSource, UnitLevel};
use cnscd_entity::{admin_unit, indicator_definition};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Largest number of values one query may ask for.
pub const MAX_VALUES: usize = 50_000;
/// Most periods one query may span (20 years of months).
pub const MAX_PERIODS: usize = 240;
/// Most units one query may name.
pub const MAX_UNITS: usize = 500;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Breakdown {
    /// The requested units themselves.
    Own,
    /// Their direct children in each period.
    Children,
    /// Every unit of a level under them in each period.
    Level(UnitLevel),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    NoData,
    Partial,
    Estimated,
}

/// What an `indicators` query asks for.
pub struct Request {
    pub codes: Vec<String>,
    pub unit_codes: Vec<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub granularity: Granularity,
    pub breakdown: Breakdown,
    pub mode: Mode,
}

/// How reorganised units are treated.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Units as they were in each period.
    #[default]
    AsRecorded,
    /// Every period in today's units, through the successions (see [`super::rebase`]).
    Rebased,
}

/// One computed value.
pub struct Computed {
    /// Shared by every value of the definition version (no copy per value).
    pub definition: Arc<indicator_definition::Model>,
    /// Shared by every value of the unit version.
    pub unit: Arc<admin_unit::Model>,
    /// Shared by every value of the period.
    pub period: Arc<Span>,
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub status: Status,
    /// The day states and reference figures are taken on (the last day the unit is looked at
    /// in the period); `None` when the unit is not there in the period.
    pub as_of: Option<NaiveDate>,
    /// Whether the caller's area covers the unit on every day of the period on which it
    /// existed; when not, the numbers are withheld (null, FORBIDDEN) and the status is NO_DATA.
    pub readable: bool,
    /// The target set for the indicator, unit and period (`setIndicatorTarget`); `None` when
    /// there is none or the value is not readable.
    pub target: Option<f64>,
}

impl Computed {
    /// value ÷ target × 100, when both exist and the target is above 0.
    pub fn attainment(&self) -> Option<f64> {
        match (self.value, self.target) {
            (Some(v), Some(t)) if t > 0.0 => Some(v / t * 100.0),
            _ => None,
        }
    }
}

/// A parsed formula: signed data element codes.
pub fn parse_expression(expr: &str) -> Result<Vec<(f64, String)>> {
    let mut terms = Vec::new();
    let mut sign = 1.0;
    let mut expect_term = true;
    for token in expr.split_whitespace() {
        match token {
            "+" | "-" if !expect_term => {
                sign = if token == "-" { -1.0 } else { 1.0 };
                expect_term = true;
            }
            t if expect_term
                && !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
            {
                terms.push((sign, t.to_owned()));
                sign = 1.0;
                expect_term = false;
            }
            t => {
                return Err(Error::invalid(
                    "expression",
                    format!("unexpected `{t}` in formula `{expr}`"),
                ));
            }
        }
    }
    if expect_term {
        return Err(Error::invalid(
            "expression",
            format!("formula `{expr}` is incomplete"),
        ));
    }
    Ok(terms)
}

/// The latest active version of each indicator, by code.
pub async fn definitions(
    db: &impl ConnectionTrait,
) -> Result<HashMap<String, indicator_definition::Model>> {
    let mut out = HashMap::new();
    for d in indicator_definition::Entity::find()
        .order_by_asc(indicator_definition::Column::Code)
        .order_by_asc(indicator_definition::Column::Version)
        .all(db)
        .await?
    {
        if d.active {
            out.insert(d.code.clone(), d);
        }
    }
    Ok(out)
}

/// Computes the values asked for.
pub async fn compute(
    db: &(impl ConnectionTrait + sea_orm::StreamTrait),
    store: &Store,
    principal: &Principal,
    req: &Request,
) -> Result<Vec<Computed>> {
    Ok(compute_as_of(db, store, principal, req).await?.0)
}

/// Computes the values asked for, and says which data they reflect: what was committed up to
/// that time ([`crate::memory::Snapshot::as_of`]).
pub async fn compute_as_of(
    db: &(impl ConnectionTrait + sea_orm::StreamTrait),
    store: &Store,
    principal: &Principal,
    req: &Request,
) -> Result<(Vec<Computed>, chrono::DateTime<chrono::Utc>)> {
    if req.from > req.to {
        return Err(Error::invalid(
            "from",
            format!("`from` ({}) is after `to` ({})", req.from, req.to),
        ));
    }
    if req.codes.is_empty() || req.unit_codes.is_empty() {
        return Ok((Vec::new(), chrono::Utc::now()));
    }
    // The hierarchy, catalogues, definitions, states, reported figures and activity rollups as
    // committed now (one statement when the in-memory copy is current).
    let held = store.snapshot(db).await?;
    let as_of = held.as_of();
    // Read-locked from here on (nothing below awaits): routine changes wait for the answer.
    let snap = held.view();
    // Every active version of each definition; the latest of each answers for a code.
    let versions = &snap.live.definitions;
    let defs_by_code: HashMap<&String, &indicator_definition::Model> = versions
        .iter()
        .filter_map(|(code, vs)| vs.iter().max_by_key(|v| v.version).map(|v| (code, v)))
        .collect();
    let unknown: Vec<&str> = req
        .codes
        .iter()
        .filter(|c| !defs_by_code.contains_key(*c))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(Error::invalid(
            "codes",
            format!(
                "unknown indicator code(s): {} (see indicatorDefinitions)",
                unknown.join(", ")
            ),
        ));
    }
    let requested = snap.all_versions(&req.unit_codes);
    let missing: Vec<&str> = req
        .unit_codes
        .iter()
        .filter(|c| !requested.contains_key(*c))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid(
            "unitCodes",
            format!("unknown unit code(s): {}", missing.join(", ")),
        ));
    }
    let spans = periods::between(req.from, req.to, req.granularity);
    if spans.len() > MAX_PERIODS {
        return Err(Error::invalid(
            "to",
            format!(
                "the query spans {} periods; at most {MAX_PERIODS}: ask for a shorter range or a \
                 coarser granularity",
                spans.len()
            ),
        ));
    }
    if req.unit_codes.len() > MAX_UNITS {
        return Err(Error::invalid(
            "unitCodes",
            format!("at most {MAX_UNITS} unit codes in one query"),
        ));
    }
    if spans.len() * req.codes.len() * req.unit_codes.len() > MAX_VALUES {
        return Err(Error::invalid(
            "to",
            format!(
                "the query asks for more than {MAX_VALUES} values: ask for fewer periods, units or codes"
            ),
        ));
    }

    let today = crate::units::service::today();
    let (range_start, range_end) = (spans[0].start, spans[spans.len() - 1].end);
    let periods: Vec<Arc<Span>> = spans.iter().cloned().map(Arc::new).collect();

    // Cells: a unit in a period, looked at over a window of the period's days. For SELF the
    // window is the part of the period the unit existed; for a breakdown, every unit that was
    // a direct child (or under the unit at the level) on any day of the period, over the days
    // it was — so the children of a period add up to the parent, whatever moved inside it.
    let mut cells: Vec<Cell> = Vec::new();
    let level = match req.breakdown {
        Breakdown::Level(l) => Some(l),
        _ => None,
    };
    match (req.mode, req.breakdown) {
        (Mode::AsRecorded, Breakdown::Own) => {
            for code in &req.unit_codes {
                let existed: Vec<(NaiveDate, NaiveDate)> = requested[code]
                    .iter()
                    .map(|v| (v.valid_from, v.valid_to))
                    .collect();
                for (pi, p) in spans.iter().enumerate() {
                    cells.push(Cell::over(code, pi, p, &existed));
                }
            }
        }
        (Mode::AsRecorded, Breakdown::Children | Breakdown::Level(_)) => {
            let below = snap.below_between(&req.unit_codes, level, range_start, range_end);
            for parent in &req.unit_codes {
                let mut by_child: BTreeMap<&str, Vec<(NaiveDate, NaiveDate)>> = BTreeMap::new();
                for (ancestor, child, from, to) in &below {
                    if ancestor == parent {
                        by_child.entry(child).or_default().push((*from, *to));
                    }
                }
                for (pi, p) in spans.iter().enumerate() {
                    for (child, under) in &by_child {
                        let cell = Cell::over(child, pi, p, under);
                        if cell.window.is_some() {
                            cells.push(cell);
                        }
                    }
                }
            }
        }
        (Mode::Rebased, _) => {
            // Today's units (the requested ones that still exist, or their children or units
            // of the level today), each made of itself and its predecessors.
            let targets: Vec<String> = match req.breakdown {
                Breakdown::Own => req
                    .unit_codes
                    .iter()
                    .filter(|c| requested[*c].iter().any(|v| v.valid_to >= today))
                    .cloned()
                    .collect(),
                _ => snap.below_on(&req.unit_codes, level, today),
            };
            let makeup = snap.contributors(&targets);
            let codes: Vec<String> = makeup
                .values()
                .flatten()
                .map(|part| part.code.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let versions = snap.all_versions(&codes);
            for target in &targets {
                for part in makeup.get(target).into_iter().flatten() {
                    let existed: Vec<(NaiveDate, NaiveDate)> = versions
                        .get(&part.code)
                        .into_iter()
                        .flatten()
                        .map(|v| (v.valid_from, v.valid_to))
                        .collect();
                    for (pi, p) in spans.iter().enumerate() {
                        let mut cell = Cell::over(&part.code, pi, p, &existed);
                        // States and reference figures of today's unit are taken on the
                        // period's last day: only the units there on that day count.
                        cell.states = cell.window.is_some_and(|w| w.1 >= p.end.min(today));
                        cell.target = target.clone();
                        cell.weight = part.weight;
                        cell.estimated = part.estimated;
                        cells.push(cell);
                    }
                }
            }
        }
    }
    let keep: Vec<bool> = {
        let mut seen: FastSet<(&str, &str, usize, Option<Window>)> = FastSet::default();
        cells
            .iter()
            .map(|c| seen.insert((c.target.as_str(), c.code.as_str(), c.pi, c.window)))
            .collect()
    };
    let mut kept = keep.into_iter();
    cells.retain(|_| kept.next().unwrap_or(false));
    if cells.len() * req.codes.len() > MAX_VALUES {
        return Err(Error::invalid(
            "breakdown",
            format!(
                "the query asks for more than {MAX_VALUES} values: ask for fewer periods, units or codes"
            ),
        ));
    }
    // Days not yet come are not data: the current period is read up to today, a future one
    // not at all.
    for c in &mut cells {
        if let Some((from, to)) = c.window {
            if from > today {
                c.window = None;
                c.whole = false;
            } else if to > today {
                c.window = Some((from, today));
                c.whole = false;
            }
        }
    }
    for c in &mut cells {
        c.unit = snap.unit(&c.code);
    }
    let cell_codes: Vec<String> = cells
        .iter()
        .map(|c| c.code.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // The caller's area over the requested units and every unit the answer looks at: a
    // requested unit in the area on no day of the range is refused outright.
    let scope = principal.scope(Action::ReadIndicators);
    let mut area_codes: BTreeSet<String> = cell_codes.iter().cloned().collect();
    area_codes.extend(req.unit_codes.iter().cloned());
    let area_coverage = snap.coverage(
        &scope,
        &area_codes.into_iter().collect::<Vec<_>>(),
        range_start.min(req.from),
        range_end.max(req.to),
    );
    for code in &req.unit_codes {
        if !area_coverage.some_day(code, req.from, req.to) {
            return Err(Error::forbidden(format!(
                "unit {code} is outside the caller's area between {} and {}",
                req.from, req.to
            )));
        }
    }
    let output_codes: Vec<String> = cells
        .iter()
        .map(|c| c.target.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let unit_versions = snap.all_versions(&output_codes);
    // A unit whose version or territory changes inside a period is PARTIAL there.
    let changes = snap.changes_between(&cell_codes, range_start, range_end);
    for c in &mut cells {
        let p = &spans[c.pi];
        if changes
            .get(&c.code)
            .is_some_and(|days| days.iter().any(|d| p.start < *d && *d <= p.end))
        {
            c.whole = false;
        }
    }

    // Each period is computed with the version of each definition valid on its first day
    // (the latest version when none was valid yet); which elements they need, and how each
    // is aggregated.
    let defs_of: Vec<Vec<&indicator_definition::Model>> = spans
        .iter()
        .map(|p| {
            req.codes
                .iter()
                .filter_map(|c| {
                    versions
                        .get(c)
                        .and_then(|vs| super::definitions::valid_for(vs, p.start))
                        .or_else(|| defs_by_code.get(c).copied())
                })
                .collect()
        })
        .collect();
    let mut formulas = HashMap::new();
    let mut needed = BTreeSet::new();
    for d in defs_of.iter().flatten() {
        if formulas.contains_key(&d.id) {
            continue;
        }
        let terms = |expr: &str| -> Result<Vec<Term>> {
            Ok(parse_expression(expr)?
                .into_iter()
                .map(|(sign, code)| Term {
                    sign,
                    kind: snap
                        .elements()
                        .get(&code)
                        .map(|m| (m.source, m.aggregation)),
                    rollup: snap.element_index(&code),
                    code,
                })
                .collect())
        };
        let num = terms(&d.numerator)?;
        let den = match &d.denominator {
            Some(e) => Some(terms(e)?),
            None => None,
        };
        for t in num.iter().chain(den.iter().flatten()) {
            needed.insert(t.code.clone());
        }
        formulas.insert(d.id, (num, den, Arc::new((*d).clone())));
    }
    let elements = snap.elements();
    let kind = |e: &str| elements.get(e).map(|m| (m.source, m.aggregation));
    let of_kind = |source, aggregation| -> Vec<String> {
        needed
            .iter()
            .filter(|e| kind(e) == Some((source, aggregation)))
            .cloned()
            .collect()
    };
    let references = of_kind(ElementSource::Reported, Aggregation::Reference);

    // Reference figures on the last day each cell looks at (computed once per copy and day).
    let mut references_on: HashMap<NaiveDate, Arc<DayReferences>> = HashMap::new();
    if !references.is_empty() {
        for c in &cells {
            if let Some((_, to)) = c.window {
                references_on
                    .entry(to)
                    .or_insert_with(|| snap.references(to));
            }
        }
    }
    // As recorded, a value is readable only when the caller's area covers its unit on every
    // day of its period on which the unit existed; re-based, when it covers today's unit today
    // (one statement for all cells).
    let rebased = req.mode == Mode::Rebased;
    let coverage = if rebased {
        snap.coverage(&scope, &output_codes, today, today)
    } else {
        area_coverage
    };

    // The cells that make one answer: each cell as recorded; re-based, a unit of today in a
    // period with all its predecessors.
    let mut groups: Vec<Vec<&Cell>> = Vec::new();
    let mut group_of: FastMap<(&str, usize, Option<Window>), usize> = FastMap::default();
    for c in &cells {
        let key = (
            c.target.as_str(),
            c.pi,
            if rebased { None } else { c.window },
        );
        let g = *group_of.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(c);
    }

    // Evaluate every formula for every answer (activity flows from the rollups held in
    // memory, read-locked meanwhile: nothing below waits).
    let rollups = snap.rollups();
    let mut out = Vec::with_capacity(groups.len() * req.codes.len());
    for group in &groups {
        let (target, pi) = (&group[0].target, group[0].pi);
        let period = &periods[pi];
        let present: Vec<&&Cell> = group.iter().filter(|c| c.window.is_some()).collect();
        let last_day = present.iter().filter_map(|c| c.window.map(|w| w.1)).max();
        // The unit's version at the last day looked at (re-based: today's).
        let shown = if rebased {
            today
        } else {
            last_day.unwrap_or(period.end)
        };
        let unit = unit_versions
            .get(target)
            .and_then(|vs| {
                vs.iter()
                    .rev()
                    .find(|v| v.valid_from <= shown)
                    .or(vs.first())
            })
            .cloned();
        let Some(unit) = unit else { continue };
        let readable = if rebased {
            coverage.every_day(target, today, today)
        } else {
            coverage.every_day(target, period.start, period.end)
        };
        let as_of = if rebased {
            last_day.map(|_| period.end.min(today))
        } else {
            last_day
        };
        let target_index = snap.unit(target).filter(|_| readable);
        for d in &defs_of[pi] {
            let (num, den, shared) = &formulas[&d.id];
            let mut computed = Computed {
                definition: shared.clone(),
                unit: unit.clone(),
                period: period.clone(),
                value: None,
                numerator: None,
                denominator: None,
                status: Status::NoData,
                as_of: as_of.filter(|_| readable),
                readable,
                target: target_index
                    .and_then(|u| snap.target(&d.code, u, period.start, period.end)),
            };
            if !readable || present.is_empty() {
                out.push(computed);
                continue;
            }
            let (mut n_total, mut d_total) = (None::<f64>, None::<f64>);
            let (mut complete, mut estimated) = (true, false);
            for c in &present {
                let Some((from, on)) = c.window else { continue };
                let unit_index = c.unit;
                let references = references_on.get(&on);
                // Months whose first day lies in the window (the window's own month counts
                // from its first day: reorganisations take effect on the first of a month).
                let first_month = crate::activities::rollup::month_start(from);
                let last_month = crate::activities::rollup::month_start(on);
                let partly_known = std::cell::Cell::new(false);
                let term = |t: &Term| -> Option<f64> {
                    let e = t.code.as_str();
                    match t.kind {
                        Some((ElementSource::Derived, Aggregation::Flow)) => {
                            Some(unit_index.zip(t.rollup).map_or(0.0, |(u, element)| {
                                rollups.flow(u, element, first_month, last_month)
                            }))
                        }
                        Some((ElementSource::Derived, Aggregation::State)) if !c.states => {
                            Some(0.0)
                        }
                        Some((ElementSource::Derived, Aggregation::State)) => {
                            Some(unit_index.map_or(0.0, |u| snap.state(u, e, on)))
                        }
                        Some((ElementSource::Reported, Aggregation::Flow)) => {
                            let mut found = None;
                            for (start, end, v) in
                                unit_index.map_or(&[][..], |u| snap.reported_for(u, e))
                            {
                                if first_month <= *start && *end <= period.end && *start <= on {
                                    *found.get_or_insert(0.0) += v;
                                }
                            }
                            found
                        }
                        Some((ElementSource::Reported, Aggregation::Reference)) if !c.states => {
                            Some(0.0)
                        }
                        Some((ElementSource::Reported, Aggregation::Reference)) => {
                            let refs = references?;
                            let u = unit_index?;
                            if refs.incomplete(u, e) {
                                partly_known.set(true);
                            }
                            refs.value(u, e)
                        }
                        _ => None,
                    }
                };
                let sum = |terms: &[Term]| -> (Option<f64>, bool) {
                    let mut total = None;
                    let mut complete = true;
                    for t in terms {
                        match term(t) {
                            Some(v) => *total.get_or_insert(0.0) += t.sign * v,
                            None => complete = false,
                        }
                    }
                    (total, complete)
                };
                let (n, n_complete) = sum(num);
                let (dn, d_complete) = match den {
                    Some(t) => sum(t),
                    None => (Some(1.0), true),
                };
                complete &= n_complete && d_complete && !partly_known.get();
                if let Some(n) = n {
                    *n_total.get_or_insert(0.0) += c.weight * n;
                    estimated |= c.estimated;
                }
                if let Some(dn) = dn {
                    // A count has no denominator: 1, whatever the number of parts.
                    let dn = if den.is_some() { c.weight * dn } else { 1.0 };
                    *d_total.get_or_insert(0.0) += dn;
                    if den.is_none() {
                        d_total = Some(1.0);
                    }
                }
            }
            computed.numerator = n_total;
            computed.denominator = if den.is_some() { d_total } else { None };
            if let (Some(n), Some(dv)) = (n_total, d_total) {
                computed.value = (dv != 0.0).then(|| n / dv * d.factor);
                let whole = if rebased {
                    period.end <= today
                } else {
                    group.iter().all(|c| c.whole)
                };
                computed.status = if estimated {
                    Status::Estimated
                } else if complete && whole {
                    Status::Ok
                } else {
                    Status::Partial
                };
            }
            out.push(computed);
        }
    }
    Ok((out, as_of))
}

/// A signed data element of a formula, with what evaluation needs of it.
struct Term {
    sign: f64,
    code: String,
    kind: Option<(ElementSource, Aggregation)>,
    /// Its index among the activity rollups.
    rollup: Option<u16>,
}

/// First and last day a cell looks at.
type Window = (NaiveDate, NaiveDate);

/// A unit looked at in one period, over a window of its days, and the unit of the answer it
/// goes into (itself, or in re-based mode the unit of today it is part of, with a weight).
struct Cell {
    code: String,
    /// The unit's index in the in-memory copy (set once the cells are made).
    unit: Option<u32>,
    target: String,
    weight: f64,
    /// Whether its states and reference figures count (not for a re-based predecessor that
    /// is gone by the period's end).
    states: bool,
    /// Whether its share rests on a PARTIAL succession.
    estimated: bool,
    pi: usize,
    /// First and last day looked at; `None` when the unit is not there in the period.
    window: Option<(NaiveDate, NaiveDate)>,
    /// Whether the window is the whole period, without a break.
    whole: bool,
}

impl Cell {
    /// The cell of `code` in period `p` over the days `spans` (unit versions, or times under a
    /// parent) cover of it.
    fn over(code: &str, pi: usize, p: &Span, spans: &[(NaiveDate, NaiveDate)]) -> Self {
        let mut clipped: Vec<(NaiveDate, NaiveDate)> = spans
            .iter()
            .filter(|(f, t)| *f <= p.end && *t >= p.start)
            .map(|(f, t)| ((*f).max(p.start), (*t).min(p.end)))
            .collect();
        clipped.sort();
        let window = match (clipped.first(), clipped.iter().map(|s| s.1).max()) {
            (Some(first), Some(last)) => Some((first.0, last)),
            _ => None,
        };
        let unbroken = clipped
            .windows(2)
            .all(|w| w[0].1.succ_opt().is_some_and(|n| n >= w[1].0));
        Self {
            code: code.to_owned(),
            unit: None,
            target: code.to_owned(),
            weight: 1.0,
            states: true,
            estimated: false,
            pi,
            window,
            whole: unbroken && window == Some((p.start, p.end)),
        }
    }
}
