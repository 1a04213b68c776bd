//! Computing indicator values on the in-memory copy, in named phases: [`validate`] the
//! request against the catalogues, make the [`cells`] (a unit in a period, over a window of its
//! days), [`authorise`] them against the caller's area, parse the [`formulas`] in force in each
//! period, and [`evaluate`] every formula for every answer. Nothing here reads the database:
//! each phase works on a [`View`] of the copy, and is tested on a small copy built by hand.
use super::model::{
    Breakdown, Computed, MAX_PERIODS, MAX_UNITS, MAX_VALUES, Mode, Request, Status,
    parse_expression,
};
use super::periods::{self, Span};
use crate::auth::{Coverage, Scope};
use crate::error::{Error, Result};
use crate::memory::{DayReferences, FastMap, FastSet, LeafFlows, RollupsRead, View};
use chrono::NaiveDate;
use cnscd_entity::codes::{Aggregation, ElementSource, UnitLevel};
use cnscd_entity::{admin_unit, indicator_definition};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// The whole computation on a copy: the phases in order, with the activity flows of units
/// without units under them that were read for the answer ([`Needs`]).
pub fn compute_on(
    snap: &View<'_>,
    scope: &Scope,
    req: &Request,
    today: NaiveDate,
    leaves: &LeafFlows,
) -> Result<Vec<Computed>> {
    let prepared = prepare(snap, scope, req, today)?;
    Ok(evaluate(snap, req, &prepared, today, leaves))
}

/// What an answer needs read from the database before it is evaluated: the activity flows of
/// the units without units under them it looks at (the copy holds flows summed for units with
/// units under them only), over the months starting `first ..= last`.
pub struct Needs {
    pub units: Vec<u32>,
    pub first: NaiveDate,
    pub last: NaiveDate,
}

/// The computation when it needs nothing read ([`Needs`]); otherwise what to read, for
/// [`compute_on`] to be called with.
pub fn compute_or_needs(
    snap: &View<'_>,
    scope: &Scope,
    req: &Request,
    today: NaiveDate,
) -> Result<std::result::Result<Vec<Computed>, Needs>> {
    let prepared = prepare(snap, scope, req, today)?;
    if let Some(needs) = prepared
        .formulas
        .flows
        .then(|| needs(snap, &prepared.cells))
        .flatten()
    {
        return Ok(Err(needs));
    }
    Ok(Ok(evaluate(
        snap,
        req,
        &prepared,
        today,
        &LeafFlows::default(),
    )))
}

/// What phases 1 to 4 make of a request, for [`evaluate`].
pub struct Prepared<'a> {
    plan: Plan<'a>,
    cells: Vec<Cell>,
    area: Area,
    formulas: Formulas<'a>,
}

/// Phases 1 to 4 in order.
pub fn prepare<'a>(
    snap: &'a View<'_>,
    scope: &Scope,
    req: &Request,
    today: NaiveDate,
) -> Result<Prepared<'a>> {
    let plan = validate(snap, req)?;
    let mut cells = cells(snap, req, &plan, today)?;
    let area = authorise(snap, scope, req, &plan, &cells, today)?;
    mark_changes(snap, &plan, &mut cells);
    let formulas = formulas(snap, req, &plan)?;
    Ok(Prepared {
        plan,
        cells,
        area,
        formulas,
    })
}

/// The units without units under them that `cells` look at, and the months; `None` when
/// there are none.
fn needs(snap: &View<'_>, cells: &[Cell]) -> Option<Needs> {
    let mut units: BTreeSet<u32> = BTreeSet::new();
    let mut range: Option<(NaiveDate, NaiveDate)> = None;
    for c in cells {
        let (Some(u), Some((from, on))) = (c.unit, c.window) else {
            continue;
        };
        if snap.holds_flows(u) {
            continue;
        }
        units.insert(u);
        let (first, last) = (
            crate::activities::rollup::month_start(from),
            crate::activities::rollup::month_start(on),
        );
        range = Some(match range {
            Some((f, l)) => (f.min(first), l.max(last)),
            None => (first, last),
        });
    }
    range.map(|(first, last)| Needs {
        units: units.into_iter().collect(),
        first,
        last,
    })
}

/// What a valid request asks for: the definitions in force, the requested units' versions and
/// the periods.
pub struct Plan<'a> {
    /// Every active version of each definition.
    versions: &'a HashMap<String, Vec<indicator_definition::Model>>,
    /// The latest version of each code, which answers for it.
    defs_by_code: HashMap<&'a String, &'a indicator_definition::Model>,
    /// Every version of each requested unit.
    requested: HashMap<String, Vec<Arc<admin_unit::Model>>>,
    spans: Vec<Span>,
    periods: Vec<Arc<Span>>,
    range: (NaiveDate, NaiveDate),
}

/// Phase 1: the codes and units exist, and the request is within its bounds.
pub fn validate<'a>(snap: &'a View<'_>, req: &Request) -> Result<Plan<'a>> {
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

    let (range_start, range_end) = (spans[0].start, spans[spans.len() - 1].end);
    let periods: Vec<Arc<Span>> = spans.iter().cloned().map(Arc::new).collect();
    Ok(Plan {
        versions,
        defs_by_code,
        requested,
        spans,
        periods,
        range: (range_start, range_end),
    })
}

/// Phase 2: the cells. For SELF a cell is the unit over the part of the period it existed;
/// for a breakdown, every unit that was a direct child (or under the unit at the level) on any
/// day of the period, over the days it was, so the children of a period add up to the parent
/// whatever moved inside it; re-based, today's units made of themselves and their
/// predecessors. Days not yet come are not data.
pub fn cells(
    snap: &View<'_>,
    req: &Request,
    plan: &Plan<'_>,
    today: NaiveDate,
) -> Result<Vec<Cell>> {
    let level = match req.breakdown {
        Breakdown::Level(l) => Some(l),
        _ => None,
    };
    let mut cells = match (req.mode, req.breakdown) {
        (Mode::AsRecorded, Breakdown::Own) => own_cells(req, plan),
        (Mode::AsRecorded, Breakdown::Children | Breakdown::Level(_)) => {
            breakdown_cells(snap, req, plan, level)
        }
        (Mode::Rebased, _) => rebased_cells(snap, req, plan, level, today),
    };
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
        c.unit = snap.unit(&c.code);
    }
    Ok(cells)
}

/// SELF, as recorded: each requested unit over the part of each period it existed.
fn own_cells(req: &Request, plan: &Plan<'_>) -> Vec<Cell> {
    let mut cells = Vec::new();
    for code in &req.unit_codes {
        let existed: Vec<(NaiveDate, NaiveDate)> = plan.requested[code]
            .iter()
            .map(|v| (v.valid_from, v.valid_to))
            .collect();
        for (pi, p) in plan.spans.iter().enumerate() {
            cells.push(Cell::over(code, pi, p, &existed));
        }
    }
    cells
}

/// A breakdown, as recorded: every unit that was a direct child (or under the unit at the
/// level) on any day of the period, over the days it was, so the children of a period add up
/// to the parent whatever moved inside it.
fn breakdown_cells(
    snap: &View<'_>,
    req: &Request,
    plan: &Plan<'_>,
    level: Option<UnitLevel>,
) -> Vec<Cell> {
    let (range_start, range_end) = plan.range;
    let below = snap.below_between(&req.unit_codes, level, range_start, range_end);
    let mut cells = Vec::new();
    for parent in &req.unit_codes {
        let mut by_child: BTreeMap<&str, Vec<(NaiveDate, NaiveDate)>> = BTreeMap::new();
        for (ancestor, child, from, to) in &below {
            if ancestor == parent {
                by_child.entry(child).or_default().push((*from, *to));
            }
        }
        for (pi, p) in plan.spans.iter().enumerate() {
            for (child, under) in &by_child {
                let cell = Cell::over(child, pi, p, under);
                if cell.window.is_some() {
                    cells.push(cell);
                }
            }
        }
    }
    cells
}

/// Re-based: today's units (the requested ones that still exist, or their children or units
/// of the level today), each made of itself and its predecessors, weighted.
fn rebased_cells(
    snap: &View<'_>,
    req: &Request,
    plan: &Plan<'_>,
    level: Option<UnitLevel>,
    today: NaiveDate,
) -> Vec<Cell> {
    let targets: Vec<String> = match req.breakdown {
        Breakdown::Own => req
            .unit_codes
            .iter()
            .filter(|c| plan.requested[*c].iter().any(|v| v.valid_to >= today))
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
    let mut cells = Vec::new();
    for target in &targets {
        for part in makeup.get(target).into_iter().flatten() {
            let existed: Vec<(NaiveDate, NaiveDate)> = versions
                .get(&part.code)
                .into_iter()
                .flatten()
                .map(|v| (v.valid_from, v.valid_to))
                .collect();
            for (pi, p) in plan.spans.iter().enumerate() {
                let mut cell = Cell::over(&part.code, pi, p, &existed);
                // States and reference figures of today's unit are taken on the period's last
                // day: only the units there on that day count.
                cell.states = cell.window.is_some_and(|w| w.1 >= p.end.min(today));
                cell.target = target.clone();
                cell.weight = part.weight;
                cell.estimated = part.estimated;
                cells.push(cell);
            }
        }
    }
    cells
}

/// The codes the cells look at, sorted and distinct.
fn cell_codes(cells: &[Cell]) -> Vec<String> {
    cells
        .iter()
        .map(|c| c.code.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A unit whose version or territory changes inside a period is PARTIAL there.
pub fn mark_changes(snap: &View<'_>, plan: &Plan<'_>, cells: &mut [Cell]) {
    let (spans, (range_start, range_end)) = (&plan.spans, plan.range);
    let cell_codes = cell_codes(cells);
    let changes = snap.changes_between(&cell_codes, range_start, range_end);
    for c in cells.iter_mut() {
        let p = &spans[c.pi];
        if changes
            .get(&c.code)
            .is_some_and(|days| days.iter().any(|d| p.start < *d && *d <= p.end))
        {
            c.whole = false;
        }
    }
}

/// Who may read what: the caller's area over the units the answer shows, and their versions.
pub struct Area {
    coverage: Coverage,
    unit_versions: HashMap<String, Vec<Arc<admin_unit::Model>>>,
}

/// Phase 3: the caller's area over the requested units and every unit the answer looks at. A
/// requested unit in the area on no day of the range is refused outright; a value is readable
/// when the area covers its unit on every day of its period on which the unit existed (as
/// recorded), or today's unit today (re-based).
pub fn authorise(
    snap: &View<'_>,
    scope: &Scope,
    req: &Request,
    plan: &Plan<'_>,
    cells: &[Cell],
    today: NaiveDate,
) -> Result<Area> {
    let (range_start, range_end) = plan.range;
    let cell_codes = cell_codes(cells);
    // The caller's area over the requested units and every unit the answer looks at: a
    // requested unit in the area on no day of the range is refused outright.
    let mut area_codes: BTreeSet<String> = cell_codes.iter().cloned().collect();
    area_codes.extend(req.unit_codes.iter().cloned());
    let area_coverage = snap.coverage(
        scope,
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
    let rebased = req.mode == Mode::Rebased;
    let coverage = if rebased {
        snap.coverage(scope, &output_codes, today, today)
    } else {
        area_coverage
    };
    Ok(Area {
        coverage,
        unit_versions,
    })
}

/// The formulas of every period: the version of each definition valid on its first day (the
/// latest when none was valid yet), parsed into terms.
pub struct Formulas<'a> {
    defs_of: Vec<Vec<&'a indicator_definition::Model>>,
    parsed: HashMap<i64, Parsed>,
    /// Whether a reference figure is needed.
    references: bool,
    /// Whether an activity flow is needed.
    flows: bool,
}

/// A definition's numerator, denominator and the definition shared by its values.
type Parsed = (
    Vec<Term>,
    Option<Vec<Term>>,
    Arc<indicator_definition::Model>,
);

/// Phase 4: the formulas in force in each period, and the elements they need.
pub fn formulas<'a>(snap: &View<'_>, req: &Request, plan: &Plan<'a>) -> Result<Formulas<'a>> {
    let (spans, versions, defs_by_code) = (&plan.spans, plan.versions, &plan.defs_by_code);
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
    Ok(Formulas {
        defs_of,
        parsed: formulas,
        references: !references.is_empty(),
        flows: !of_kind(ElementSource::Derived, Aggregation::Flow).is_empty(),
    })
}

/// Phase 5: every formula for every answer. Flows come from the rollups (read-locked
/// meanwhile), states from the timelines on the last day looked at, reported flows summed over
/// the period's months, reference figures on the last day looked at.
pub fn evaluate(
    snap: &View<'_>,
    req: &Request,
    prepared: &Prepared<'_>,
    today: NaiveDate,
    leaves: &LeafFlows,
) -> Vec<Computed> {
    let rebased = req.mode == Mode::Rebased;
    let cells = &prepared.cells;
    let groups = answers_of(cells, rebased);
    // Activity flows from the rollups held in memory, read-locked meanwhile: nothing below
    // waits.
    let evaluation = Evaluation {
        snap,
        rollups: snap.rollups(leaves),
        references_on: references_on(snap, cells, prepared.formulas.references),
        rebased,
        today,
    };
    let mut out = Vec::with_capacity(groups.len() * req.codes.len());
    for group in &groups {
        evaluation.answer(prepared, group, &mut out);
    }
    out
}

/// Reference figures on the last day each cell looks at (computed once per copy and day), if
/// any formula needs them.
fn references_on(
    snap: &View<'_>,
    cells: &[Cell],
    needed: bool,
) -> HashMap<NaiveDate, Arc<DayReferences>> {
    let mut on: HashMap<NaiveDate, Arc<DayReferences>> = HashMap::new();
    if needed {
        for (_, to) in cells.iter().filter_map(|c| c.window) {
            on.entry(to).or_insert_with(|| snap.references(to));
        }
    }
    on
}

/// The cells that make one answer: each cell as recorded; re-based, a unit of today in a
/// period with all its predecessors.
fn answers_of(cells: &[Cell], rebased: bool) -> Vec<Vec<&Cell>> {
    let mut groups: Vec<Vec<&Cell>> = Vec::new();
    let mut group_of: FastMap<(&str, usize, Option<Window>), usize> = FastMap::default();
    for c in cells {
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
    groups
}

/// What evaluating every answer shares.
struct Evaluation<'v, 'a> {
    snap: &'v View<'a>,
    rollups: RollupsRead<'v>,
    references_on: HashMap<NaiveDate, Arc<DayReferences>>,
    rebased: bool,
    today: NaiveDate,
}

/// A formula's sums over the cells of an answer.
#[derive(Default)]
struct Sums {
    numerator: Option<f64>,
    denominator: Option<f64>,
    /// Every term of every cell known.
    complete: bool,
    /// A cell's share rests on a PARTIAL succession.
    estimated: bool,
}

impl Evaluation<'_, '_> {
    /// The values of every definition of the group's period for the group's unit.
    fn answer(&self, prepared: &Prepared<'_>, group: &[&Cell], out: &mut Vec<Computed>) {
        let (snap, rebased, today) = (self.snap, self.rebased, self.today);
        let Prepared {
            plan,
            area,
            formulas,
            ..
        } = prepared;
        let (target, pi) = (&group[0].target, group[0].pi);
        let period = &plan.periods[pi];
        let present: Vec<&Cell> = group
            .iter()
            .filter(|c| c.window.is_some())
            .copied()
            .collect();
        let last_day = present.iter().filter_map(|c| c.window.map(|w| w.1)).max();
        // The unit's version at the last day looked at (re-based: today's).
        let shown = if rebased {
            today
        } else {
            last_day.unwrap_or(period.end)
        };
        let unit = area
            .unit_versions
            .get(target)
            .and_then(|vs| {
                vs.iter()
                    .rev()
                    .find(|v| v.valid_from <= shown)
                    .or(vs.first())
            })
            .cloned();
        let Some(unit) = unit else { return };
        let readable = if rebased {
            area.coverage.every_day(target, today, today)
        } else {
            area.coverage.every_day(target, period.start, period.end)
        };
        let as_of = if rebased {
            last_day.map(|_| period.end.min(today))
        } else {
            last_day
        };
        let target_index = snap.unit(target).filter(|_| readable);
        for d in &formulas.defs_of[pi] {
            let (num, den, shared) = &formulas.parsed[&d.id];
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
            let sums = self.sums(&present, num, den.as_deref(), period);
            computed.numerator = sums.numerator;
            computed.denominator = if den.is_some() {
                sums.denominator
            } else {
                None
            };
            if let (Some(n), Some(dv)) = (sums.numerator, sums.denominator) {
                computed.value = (dv != 0.0).then(|| n / dv * d.factor);
                let whole = if rebased {
                    period.end <= today
                } else {
                    group.iter().all(|c| c.whole)
                };
                computed.status = if sums.estimated {
                    Status::Estimated
                } else if sums.complete && whole {
                    Status::Ok
                } else {
                    Status::Partial
                };
            }
            out.push(computed);
        }
    }

    /// The numerator and denominator summed over the cells present in the period (weighted;
    /// a count's denominator is 1, whatever the number of parts).
    fn sums(&self, present: &[&Cell], num: &[Term], den: Option<&[Term]>, period: &Span) -> Sums {
        let mut sums = Sums {
            complete: true,
            ..Sums::default()
        };
        for c in present {
            let Some((from, on)) = c.window else { continue };
            let partly_known = std::cell::Cell::new(false);
            let sum = |terms: &[Term]| -> (Option<f64>, bool) {
                let mut total = None;
                let mut complete = true;
                for t in terms {
                    match self.term(c, t, (from, on), period, &partly_known) {
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
            sums.complete &= n_complete && d_complete && !partly_known.get();
            if let Some(n) = n {
                *sums.numerator.get_or_insert(0.0) += c.weight * n;
                sums.estimated |= c.estimated;
            }
            if let Some(dn) = dn {
                // A count has no denominator: 1, whatever the number of parts.
                let dn = if den.is_some() { c.weight * dn } else { 1.0 };
                *sums.denominator.get_or_insert(0.0) += dn;
                if den.is_none() {
                    sums.denominator = Some(1.0);
                }
            }
        }
        sums
    }

    /// One term's value for a cell over the days `from` to `on` of `period`; `None` when it
    /// is not known. Months whose first day lies in the window count (the window's own month
    /// from its first day: reorganisations take effect on the first of a month).
    fn term(
        &self,
        c: &Cell,
        t: &Term,
        (from, on): Window,
        period: &Span,
        partly_known: &std::cell::Cell<bool>,
    ) -> Option<f64> {
        let snap = self.snap;
        let unit_index = c.unit;
        let e = t.code.as_str();
        let first_month = crate::activities::rollup::month_start(from);
        let last_month = crate::activities::rollup::month_start(on);
        match t.kind {
            Some((ElementSource::Derived, Aggregation::Flow)) => {
                Some(unit_index.zip(t.rollup).map_or(0.0, |(u, element)| {
                    self.rollups.flow(u, element, first_month, last_month)
                }))
            }
            Some((ElementSource::Derived, Aggregation::State)) if !c.states => Some(0.0),
            Some((ElementSource::Derived, Aggregation::State)) => {
                Some(unit_index.map_or(0.0, |u| snap.state(u, e, on)))
            }
            Some((ElementSource::Reported, Aggregation::Flow)) => {
                unit_index.and_then(|u| snap.reported(u, e, first_month..=on, period.end))
            }
            Some((ElementSource::Reported, Aggregation::Reference)) if !c.states => Some(0.0),
            Some((ElementSource::Reported, Aggregation::Reference)) => {
                let refs = self.references_on.get(&on)?;
                let (u, e) = (unit_index?, snap.element_index(e)?);
                if refs.incomplete(u, e) {
                    partly_known.set(true);
                }
                refs.value(u, e)
            }
            _ => None,
        }
    }
}

/// A signed data element of a formula, with what evaluation needs of it.
pub struct Term {
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
pub struct Cell {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::periods::Granularity;
    use crate::memory::states::TeamShare;
    use crate::memory::{Hierarchy, Parts, Snapshot};
    use cnscd_entity::codes::UnitLevel;
    use cnscd_entity::data_element;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn a_cell_covers_the_days_its_spans_give_of_the_period() {
        let may = Span {
            start: d("2025-05-01"),
            end: d("2025-05-31"),
            label: "2025-05".into(),
        };
        let over = |spans: &[(&str, &str)]| {
            let spans: Vec<(NaiveDate, NaiveDate)> =
                spans.iter().map(|(f, t)| (d(f), d(t))).collect();
            let c = Cell::over("X", 3, &may, &spans);
            (c.window, c.whole, c.pi, c.target, c.weight)
        };
        // The whole month, from one span or from two that touch.
        let whole = Some((d("2025-05-01"), d("2025-05-31")));
        assert_eq!(
            over(&[("2020-01-01", "2030-12-31")]),
            (whole, true, 3, "X".into(), 1.0)
        );
        let touching = over(&[("2025-05-11", "2025-06-30"), ("2025-01-01", "2025-05-10")]);
        assert_eq!((touching.0, touching.1), (whole, true));
        // Part of it: from the first day covered to the last, not whole.
        assert_eq!(
            over(&[("2025-05-10", "2025-09-30")]).0,
            Some((d("2025-05-10"), d("2025-05-31")))
        );
        assert!(!over(&[("2025-05-10", "2025-09-30")]).1);
        // A break inside the month: the window spans it, but the cell is not whole.
        let broken = over(&[("2025-01-01", "2025-05-09"), ("2025-05-12", "2025-12-31")]);
        assert_eq!(broken.0, whole);
        assert!(!broken.1);
        // No day of the month: no window.
        assert_eq!(over(&[("2025-06-01", "2025-12-31")]).0, None);
        assert_eq!(over(&[]).0, None);
    }

    const END: &str = "9999-12-31";
    const CUT: &str = "2025-06-30";
    const NEW: &str = "2025-07-01";

    fn unit(
        code: &str,
        level: UnitLevel,
        parent: Option<&str>,
        from: &str,
        to: &str,
    ) -> admin_unit::Model {
        admin_unit::Model {
            id: 0,
            code: code.into(),
            name: format!("Unit {code}"),
            name_search: String::new(),
            unit_type: None,
            level,
            parent_code: parent.map(str::to_owned),
            valid_from: d(from),
            valid_to: d(to),
        }
    }

    fn element(code: &str, source: ElementSource, aggregation: Aggregation) -> data_element::Model {
        data_element::Model {
            code: code.into(),
            name_vi: code.into(),
            name_en: code.into(),
            source,
            aggregation,
        }
    }

    fn definition(
        id: i64,
        code: &str,
        version: i32,
        num: &str,
        den: Option<&str>,
        factor: f64,
        from: &str,
    ) -> indicator_definition::Model {
        indicator_definition::Model {
            id,
            code: code.into(),
            version,
            name_vi: code.into(),
            name_en: code.into(),
            description: None,
            numerator: num.into(),
            denominator: den.map(str::to_owned),
            factor,
            active: true,
            valid_from: d(from),
            created_at: chrono::Utc::now(),
        }
    }

    /// A province 19; district 169 under it until the reorganisation; commune C1 under 169
    /// until then and under 19 after; hamlets H1 and H2 under C1 throughout. A team in H1,
    /// activities in both hamlets, dossiers reported by C1.
    fn copy() -> Snapshot {
        let hierarchy = hierarchy();
        let h1 = hierarchy.unit("H1").unwrap_or_default();
        let h2 = hierarchy.unit("H2").unwrap_or_default();
        let c1 = hierarchy.unit("C1").unwrap_or_default();
        use Aggregation::*;
        use ElementSource::*;
        Snapshot::from_parts(
            hierarchy,
            Parts {
                elements: vec![
                    element("ACTIVITIES", Derived, Flow),
                    element("ACTIVE_TEAMS", Derived, State),
                    element("HAMLETS", Derived, State),
                    element("HAMLETS_WITH_TEAM", Derived, State),
                    element("DOSSIERS_ONLINE", Reported, Flow),
                    element("DOSSIERS_TOTAL", Reported, Flow),
                ],
                definitions: definitions(),
                teams: vec![(
                    1,
                    TeamShare {
                        unit: h1,
                        founded_on: d("2023-01-01"),
                        dissolved_on: None,
                        members: vec![],
                    },
                )],
                figures: vec![
                    (
                        c1,
                        "DOSSIERS_ONLINE".into(),
                        d("2024-03-01"),
                        d("2024-03-31"),
                        30.0,
                    ),
                    (
                        c1,
                        "DOSSIERS_TOTAL".into(),
                        d("2024-03-01"),
                        d("2024-03-31"),
                        40.0,
                    ),
                ],
                targets: vec![("ACT".into(), c1, d("2024-01-01"), d("2024-12-31"), 10.0)],
                rollups: vec![
                    (h1, "ACTIVITIES".into(), d("2024-03-01"), 2.0),
                    (h2, "ACTIVITIES".into(), d("2024-05-01"), 3.0),
                    (h1, "ACTIVITIES".into(), d("2025-08-01"), 4.0),
                ],
            },
        )
    }

    /// The copy's units and their dated closure.
    fn hierarchy() -> Hierarchy {
        use UnitLevel::*;
        let start = "2000-01-01";
        let units = vec![
            unit("19", Province, None, start, END),
            unit("169", District, Some("19"), start, CUT),
            unit("C1", Commune, Some("169"), start, CUT),
            unit("C1", Commune, Some("19"), NEW, END),
            unit("H1", Hamlet, Some("C1"), start, END),
            unit("H2", Hamlet, Some("C1"), start, END),
        ];
        let closure = vec![
            ("19", "19", 0, Province, d(start), d(END)),
            ("169", "169", 0, District, d(start), d(CUT)),
            ("19", "169", 1, District, d(start), d(CUT)),
            ("C1", "C1", 0, Commune, d(start), d(END)),
            ("169", "C1", 1, Commune, d(start), d(CUT)),
            ("19", "C1", 2, Commune, d(start), d(CUT)),
            ("19", "C1", 1, Commune, d(NEW), d(END)),
            ("H1", "H1", 0, Hamlet, d(start), d(END)),
            ("C1", "H1", 1, Hamlet, d(start), d(END)),
            ("169", "H1", 2, Hamlet, d(start), d(CUT)),
            ("19", "H1", 3, Hamlet, d(start), d(CUT)),
            ("19", "H1", 2, Hamlet, d(NEW), d(END)),
            ("H2", "H2", 0, Hamlet, d(start), d(END)),
            ("C1", "H2", 1, Hamlet, d(start), d(END)),
            ("169", "H2", 2, Hamlet, d(start), d(CUT)),
            ("19", "H2", 3, Hamlet, d(start), d(CUT)),
            ("19", "H2", 2, Hamlet, d(NEW), d(END)),
        ];
        Hierarchy::from_parts(units, closure)
    }

    /// Versions of three indicators: ACT (a count, doubled from 2025), COVER and EG (ratios).
    fn definitions() -> HashMap<String, Vec<indicator_definition::Model>> {
        let mut definitions: HashMap<String, Vec<indicator_definition::Model>> = HashMap::new();
        for def in [
            definition(1, "ACT", 1, "ACTIVITIES", None, 1.0, "2020-01-01"),
            definition(
                2,
                "ACT",
                2,
                "ACTIVITIES + ACTIVITIES",
                None,
                1.0,
                "2025-01-01",
            ),
            definition(
                3,
                "COVER",
                1,
                "HAMLETS_WITH_TEAM",
                Some("HAMLETS"),
                100.0,
                "2020-01-01",
            ),
            definition(
                4,
                "EG",
                1,
                "DOSSIERS_ONLINE",
                Some("DOSSIERS_TOTAL"),
                100.0,
                "2020-01-01",
            ),
        ] {
            definitions.entry(def.code.clone()).or_default().push(def);
        }
        definitions
    }

    fn request(
        codes: &[&str],
        units: &[&str],
        from: &str,
        to: &str,
        g: Granularity,
        b: Breakdown,
    ) -> Request {
        Request {
            codes: codes.iter().map(|c| c.to_string()).collect(),
            unit_codes: units.iter().map(|c| c.to_string()).collect(),
            from: d(from),
            to: d(to),
            granularity: g,
            breakdown: b,
            mode: Mode::AsRecorded,
        }
    }

    fn everything() -> Scope {
        Scope {
            all: true,
            ..Scope::default()
        }
    }

    fn today() -> NaiveDate {
        d("2026-01-15")
    }

    /// The value of `code` for `unit` in the period labelled `label`.
    fn value(values: &[Computed], code: &str, unit: &str, label: &str) -> Option<f64> {
        values
            .iter()
            .find(|c| c.definition.code == code && c.unit.code == unit && c.period.label == label)
            .and_then(|c| c.value)
    }

    #[test]
    fn validate_names_unknown_codes_and_units_and_bounds() {
        let copy = copy();
        let snap = copy.view();
        // The field a request is refused for, or `None` when it is valid.
        let refused = |codes: &[&str], units: &[&str], from, to, granularity| match validate(
            &snap,
            &request(codes, units, from, to, granularity, Breakdown::Own),
        ) {
            Ok(_) => None,
            Err(Error::Validation { field, .. }) => Some(field.join(".")),
            Err(e) => Some(format!("{e:?}")),
        };
        let (year, month) = (Granularity::Year, Granularity::Month);
        assert_eq!(
            refused(&["NOPE"], &["C1"], "2024-01-01", "2024-12-31", year),
            Some("codes".into())
        );
        assert_eq!(
            refused(&["ACT"], &["X9"], "2024-01-01", "2024-12-31", year),
            Some("unitCodes".into())
        );
        assert_eq!(
            refused(&["ACT"], &["C1"], "2000-01-01", "2030-12-31", month),
            Some("to".into())
        );
        assert_eq!(
            refused(&["ACT"], &["C1"], "2024-01-01", "2024-12-31", year),
            None
        );
    }

    #[test]
    fn cells_follow_the_units_under_a_parent_through_the_reorganisation() {
        let copy = copy();
        let snap = copy.view();
        let req = request(
            &["ACT"],
            &["19"],
            "2025-01-01",
            "2025-12-31",
            Granularity::Year,
            Breakdown::Children,
        );
        let plan = validate(&snap, &req).unwrap_or_else(|e| panic!("{e:?}"));
        let made = cells(&snap, &req, &plan, today()).unwrap_or_default();
        let mut seen: Vec<(String, Option<(NaiveDate, NaiveDate)>)> =
            made.iter().map(|c| (c.code.clone(), c.window)).collect();
        seen.sort();
        // 169 until the end of June, C1 from July: the children of 2025 add up to 19.
        assert_eq!(
            seen,
            vec![
                ("169".to_owned(), Some((d("2025-01-01"), d(CUT)))),
                ("C1".to_owned(), Some((d(NEW), d("2025-12-31")))),
            ]
        );
        // Days not yet come are not data.
        let cut = cells(&snap, &req, &plan, d("2025-09-30")).unwrap_or_default();
        let c1 = cut.iter().find(|c| c.code == "C1").map(|c| c.window);
        assert_eq!(c1, Some(Some((d(NEW), d("2025-09-30")))));
    }

    #[test]
    fn authorise_refuses_units_never_in_the_area_and_withholds_values_not_wholly_in_it() {
        let copy = copy();
        let snap = copy.view();
        let district = Scope {
            units: vec!["169".into()],
            ..Scope::default()
        };
        // 19 was never under 169.
        let req = request(
            &["ACT"],
            &["19"],
            "2024-01-01",
            "2024-12-31",
            Granularity::Year,
            Breakdown::Own,
        );
        let plan = validate(&snap, &req).unwrap_or_else(|e| panic!("{e:?}"));
        let made = cells(&snap, &req, &plan, today()).unwrap_or_default();
        assert!(matches!(
            authorise(&snap, &district, &req, &plan, &made, today()),
            Err(Error::Forbidden(_))
        ));
        // C1 left 169 in July 2025: 2024 is readable, 2025 is not.
        let req = request(
            &["ACT"],
            &["C1"],
            "2024-01-01",
            "2025-12-31",
            Granularity::Year,
            Breakdown::Own,
        );
        let values =
            compute_on(&snap, &district, &req, today(), &LeafFlows::default()).unwrap_or_default();
        let readable: Vec<(String, bool)> = values
            .iter()
            .map(|c| (c.period.label.clone(), c.readable))
            .collect();
        assert_eq!(
            readable,
            vec![("2024".into(), true), ("2025".into(), false)]
        );
        assert_eq!(values[1].value, None);
    }

    #[test]
    fn formulas_take_the_version_valid_on_each_periods_first_day() {
        let copy = copy();
        let snap = copy.view();
        let req = request(
            &["ACT"],
            &["C1"],
            "2024-01-01",
            "2025-12-31",
            Granularity::Year,
            Breakdown::Own,
        );
        let plan = validate(&snap, &req).unwrap_or_else(|e| panic!("{e:?}"));
        let f = formulas(&snap, &req, &plan).unwrap_or_else(|e| panic!("{e:?}"));
        let versions: Vec<i32> = f.defs_of.iter().map(|ds| ds[0].version).collect();
        assert_eq!(versions, vec![1, 2]);
        assert!(!f.references);
        assert_eq!(f.parsed[&2].0.len(), 2);
    }

    #[test]
    fn evaluate_sums_flows_counts_states_and_divides_reported_figures_last() {
        let copy = copy();
        let snap = copy.view();
        let req = request(
            &["ACT", "COVER", "EG"],
            &["C1", "19"],
            "2024-01-01",
            "2025-12-31",
            Granularity::Year,
            Breakdown::Own,
        );
        let values = compute_on(&snap, &everything(), &req, today(), &LeafFlows::default())
            .unwrap_or_default();
        // Flows: both hamlets' activities, in the commune and the province.
        assert_eq!(value(&values, "ACT", "C1", "2024"), Some(5.0));
        assert_eq!(value(&values, "ACT", "19", "2024"), Some(5.0));
        // The 2025 version counts every activity twice.
        assert_eq!(value(&values, "ACT", "C1", "2025"), Some(8.0));
        // States on the period's last day: one hamlet of two has a team.
        assert_eq!(value(&values, "COVER", "C1", "2024"), Some(50.0));
        // Reported figures: numerator and denominator summed, then divided.
        assert_eq!(value(&values, "EG", "C1", "2024"), Some(75.0));
        assert_eq!(value(&values, "EG", "19", "2024"), Some(75.0));
        let act = values.iter().find(|c| {
            c.definition.code == "ACT" && c.unit.code == "C1" && c.period.label == "2024"
        });
        assert_eq!(act.and_then(|c| c.target), Some(10.0));
        assert_eq!(act.map(|c| c.status), Some(Status::Ok));
    }
}
