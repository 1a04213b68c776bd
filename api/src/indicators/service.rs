//! Computing indicator values for units and periods, as recorded: units as they were in each
//! period. Flow elements come from the monthly rollups, state elements are counted at the
//! period's end, reported figures come from data values.
use super::periods::{self, Granularity, Span};
use crate::auth::{Action, Coverage, Principal};
use crate::db::{placeholders, query};
use crate::error::{Error, Result};
use chrono::{Datelike, NaiveDate};
use cnscd_entity::codes::{Aggregation, ElementSource, UnitLevel};
use cnscd_entity::{admin_unit, data_element, indicator_definition};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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
    pub period: Span,
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
    db: &impl ConnectionTrait,
    principal: &Principal,
    req: &Request,
) -> Result<Vec<Computed>> {
    if req.from > req.to {
        return Err(Error::invalid(
            "from",
            format!("`from` ({}) is after `to` ({})", req.from, req.to),
        ));
    }
    if req.codes.is_empty() || req.unit_codes.is_empty() {
        return Ok(Vec::new());
    }
    // Every active version of each definition; the latest of each answers for a code.
    let versions = super::definitions::versions(db).await?;
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
    let requested = crate::units::service::all_versions(db, &req.unit_codes).await?;
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
            let below = crate::units::service::below_between(
                db,
                &req.unit_codes,
                level,
                range_start,
                range_end,
            )
            .await?;
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
                _ => crate::units::service::below_on(db, &req.unit_codes, level, today).await?,
            };
            let makeup = super::rebase::contributors(db, &targets).await?;
            let codes: Vec<String> = makeup
                .values()
                .flatten()
                .map(|part| part.code.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let versions = crate::units::service::all_versions(db, &codes).await?;
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
    let mut seen = HashSet::new();
    cells.retain(|c| seen.insert((c.target.clone(), c.code.clone(), c.pi, c.window)));
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
    let cell_codes: Vec<String> = cells
        .iter()
        .map(|c| c.code.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // The caller's area over the requested units and every unit the answer looks at (one
    // statement): a requested unit in the area on no day of the range is refused outright.
    let scope = principal.scope(Action::ReadIndicators);
    let mut area_codes: BTreeSet<String> = cell_codes.iter().cloned().collect();
    area_codes.extend(req.unit_codes.iter().cloned());
    let area_coverage = Coverage::load(
        db,
        &scope,
        &area_codes.into_iter().collect::<Vec<_>>(),
        range_start.min(req.from),
        range_end.max(req.to),
    )
    .await?;
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
    let unit_versions: HashMap<String, Vec<Arc<admin_unit::Model>>> =
        crate::units::service::all_versions(db, &output_codes)
            .await?
            .into_iter()
            .map(|(code, vs)| (code, vs.into_iter().map(Arc::new).collect()))
            .collect();
    // A unit whose version or territory changes inside a period is PARTIAL there.
    let changes =
        crate::units::service::changes_between(db, &cell_codes, range_start, range_end).await?;
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
        let num = parse_expression(&d.numerator)?;
        let den = match &d.denominator {
            Some(e) => Some(parse_expression(e)?),
            None => None,
        };
        for (_, e) in num.iter().chain(den.iter().flatten()) {
            needed.insert(e.clone());
        }
        formulas.insert(d.id, (num, den, Arc::new((*d).clone())));
    }
    let elements: HashMap<String, data_element::Model> = data_element::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.code.clone(), e))
        .collect();
    let kind = |e: &str| elements.get(e).map(|m| (m.source, m.aggregation));
    let of_kind = |source, aggregation| -> Vec<String> {
        needed
            .iter()
            .filter(|e| kind(e) == Some((source, aggregation)))
            .cloned()
            .collect()
    };
    let flows = of_kind(ElementSource::Derived, Aggregation::Flow);
    let states = of_kind(ElementSource::Derived, Aggregation::State);
    let reported_flows = of_kind(ElementSource::Reported, Aggregation::Flow);
    let references = of_kind(ElementSource::Reported, Aggregation::Reference);

    // Derived flows: the monthly rollups of the cell units, by month.
    let mut monthly: Nested<Vec<(NaiveDate, f64)>> = HashMap::new();
    if !flows.is_empty() && !cell_codes.is_empty() {
        let mut v: Vec<Value> = cell_codes.iter().map(|c| Value::from(c.clone())).collect();
        v.extend(flows.iter().map(|e| Value::from(e.clone())));
        v.extend([Value::from(range_start), Value::from(range_end)]);
        let rows = query(
            db,
            &format!(
                "SELECT unit_code, element_code, month_start, value FROM unit_month_fact \
                 WHERE unit_code IN ({}) AND element_code IN ({}) AND month_start >= ? AND month_start <= ?",
                placeholders(cell_codes.len()),
                placeholders(flows.len())
            ),
            v,
        )
        .await?;
        for r in rows {
            let unit: String = r.try_get("", "unit_code")?;
            let element: String = r.try_get("", "element_code")?;
            let month: NaiveDate = r.try_get("", "month_start")?;
            let value: f64 = r.try_get("", "value")?;
            monthly
                .entry(unit)
                .or_default()
                .entry(element)
                .or_default()
                .push((month, value));
        }
    }

    // Reported flows: one value per unit, element and period (see `reported`), summed up the
    // hierarchy of the period's first day.
    let mut reported_sums: Nested<Vec<Reported>> = HashMap::new();
    if !reported_flows.is_empty() && !cell_codes.is_empty() {
        for (unit, element, start, end, value) in
            reported(db, &reported_flows, &cell_codes, range_start, range_end).await?
        {
            reported_sums
                .entry(unit)
                .or_default()
                .entry(element)
                .or_default()
                .push((start, end, value));
        }
    }

    // State elements and reference figures: on the last day each cell looks at.
    let mut by_day: HashMap<NaiveDate, Vec<String>> = HashMap::new();
    for c in &cells {
        if let Some((_, to)) = c.window {
            by_day.entry(to).or_default().push(c.code.clone());
        }
    }
    // By unit, then element, then day, so that evaluation looks up without allocating.
    let mut day_values: Nested<HashMap<NaiveDate, f64>> = HashMap::new();
    let mut day_present: Nested<HashSet<NaiveDate>> = HashMap::new();
    let mut day_incomplete: Nested<HashSet<NaiveDate>> = HashMap::new();
    let mut put = |(unit, day, element): DayKey, v: f64| {
        day_values
            .entry(unit)
            .or_default()
            .entry(element)
            .or_default()
            .insert(day, v);
    };
    if !references.is_empty() {
        let (sums, incomplete) = reference_sums(db, &by_day, &references).await?;
        for ((unit, day, element), v) in sums {
            day_present
                .entry(unit.clone())
                .or_default()
                .entry(element.clone())
                .or_default()
                .insert(day);
            put((unit, day, element), v);
        }
        for (unit, day, element) in incomplete {
            day_incomplete
                .entry(unit)
                .or_default()
                .entry(element)
                .or_default()
                .insert(day);
        }
    }
    if !states.is_empty() {
        for (k, v) in state_counts(db, &by_day, &states).await? {
            put(k, v);
        }
    }

    // As recorded, a value is readable only when the caller's area covers its unit on every
    // day of its period on which the unit existed; re-based, when it covers today's unit today
    // (one statement for all cells).
    let rebased = req.mode == Mode::Rebased;
    let coverage = if rebased {
        Coverage::load(db, &scope, &output_codes, today, today).await?
    } else {
        area_coverage
    };

    // The cells that make one answer: each cell as recorded; re-based, a unit of today in a
    // period with all its predecessors.
    let mut groups: Vec<Vec<&Cell>> = Vec::new();
    let mut group_of: HashMap<(&str, usize, Option<Window>), usize> = HashMap::new();
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

    // Evaluate every formula for every answer.
    let mut out = Vec::with_capacity(groups.len() * req.codes.len());
    for group in &groups {
        let (target, pi) = (&group[0].target, group[0].pi);
        let period = &spans[pi];
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
            };
            if !readable || present.is_empty() {
                out.push(computed);
                continue;
            }
            let (mut n_total, mut d_total) = (None::<f64>, None::<f64>);
            let (mut complete, mut estimated) = (true, false);
            for c in &present {
                let Some((from, on)) = c.window else { continue };
                let code = &c.code;
                // Months whose first day lies in the window (the window's own month counts
                // from its first day: reorganisations take effect on the first of a month).
                let first_month = crate::activities::rollup::month_start(from);
                let partly_known = std::cell::Cell::new(false);
                let term = |e: &str| -> Option<f64> {
                    match kind(e) {
                        Some((ElementSource::Derived, Aggregation::Flow)) => Some(
                            nested(&monthly, code, e)
                                .into_iter()
                                .flatten()
                                .filter(|(m, _)| first_month <= *m && *m <= on)
                                .map(|(_, v)| v)
                                .sum(),
                        ),
                        Some((ElementSource::Derived, Aggregation::State)) if !c.states => {
                            Some(0.0)
                        }
                        Some((ElementSource::Derived, Aggregation::State)) => Some(
                            nested(&day_values, code, e)
                                .and_then(|d| d.get(&on))
                                .copied()
                                .unwrap_or(0.0),
                        ),
                        Some((ElementSource::Reported, Aggregation::Flow)) => {
                            let mut found = None;
                            for (start, end, v) in
                                nested(&reported_sums, code, e).into_iter().flatten()
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
                            if nested(&day_incomplete, code, e).is_some_and(|d| d.contains(&on)) {
                                partly_known.set(true);
                            }
                            nested(&day_present, code, e)
                                .is_some_and(|d| d.contains(&on))
                                .then(|| {
                                    nested(&day_values, code, e)
                                        .and_then(|d| d.get(&on))
                                        .copied()
                                        .unwrap_or(0.0)
                                })
                        }
                        _ => None,
                    }
                };
                let sum = |terms: &[(f64, String)]| -> (Option<f64>, bool) {
                    let mut total = None;
                    let mut complete = true;
                    for (sign, e) in terms {
                        match term(e) {
                            Some(v) => *total.get_or_insert(0.0) += sign * v,
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
    Ok(out)
}

/// Values by unit, then element.
type Nested<V> = HashMap<String, HashMap<String, V>>;

fn nested<'a, V>(map: &'a Nested<V>, unit: &str, element: &str) -> Option<&'a V> {
    map.get(unit).and_then(|m| m.get(element))
}

/// A unit's element on a day.
type DayKey = (String, NaiveDate, String);
/// Values of elements of units on days.
type DayValues = HashMap<DayKey, f64>;

/// First and last day a cell looks at.
type Window = (NaiveDate, NaiveDate);

/// A reported value's period and amount.
type Reported = (NaiveDate, NaiveDate, f64);

/// A unit looked at in one period, over a window of its days, and the unit of the answer it
/// goes into (itself, or in re-based mode the unit of today it is part of, with a weight).
struct Cell {
    code: String,
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

/// Reported values of `elements` for periods inside `[from, to]`, summed for each of `units`
/// over the units under it on the period's first day: `(unit, element, start, end, sum)`.
///
/// One value per reporting unit, element and period: when several source systems (or several
/// submissions) report it, the latest submission wins. One figure per territory: a value is
/// left out where a unit above the reporting unit reported the same element and period itself
/// (a commune's own figure stands for its hamlets'), so no figure is summed twice.
async fn reported(
    db: &impl ConnectionTrait,
    elements: &[String],
    units: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, String, NaiveDate, NaiveDate, f64)>> {
    let mut v: Vec<Value> = elements.iter().map(|e| Value::from(e.clone())).collect();
    v.extend([Value::from(from), Value::from(to)]);
    let rows = query(
        db,
        &format!(
            "SELECT unit_code, element_code, period_start, period_end, id, value FROM data_value \
             WHERE element_code IN ({}) AND period_start >= ? AND period_end <= ?",
            placeholders(elements.len())
        ),
        v,
    )
    .await?;
    let mut latest: HashMap<(String, String, NaiveDate, NaiveDate), (i64, f64)> = HashMap::new();
    for r in rows {
        let key = (
            r.try_get::<String>("", "unit_code")?,
            r.try_get::<String>("", "element_code")?,
            r.try_get::<NaiveDate>("", "period_start")?,
            r.try_get::<NaiveDate>("", "period_end")?,
        );
        let id: i64 = r.try_get("", "id")?;
        let value: f64 = r.try_get("", "value")?;
        let e = latest.entry(key).or_insert((id, value));
        if id > e.0 {
            *e = (id, value);
        }
    }
    let sources: Vec<String> = latest
        .keys()
        .map(|k| k.0.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let above = ancestors_of(db, &sources).await?;
    let wanted: HashSet<&str> = units.iter().map(String::as_str).collect();
    let mut out: HashMap<(String, String, NaiveDate, NaiveDate), f64> = HashMap::new();
    for ((source, element, start, end), (_, value)) in &latest {
        let itself = |a: &str| latest.contains_key(&(a.to_owned(), element.clone(), *start, *end));
        for a in counted_for(&above, source, *start, itself) {
            if wanted.contains(a) {
                *out.entry((a.to_owned(), element.clone(), *start, *end))
                    .or_default() += value;
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|((u, e, s, t), v)| (u, e, s, t, v))
        .collect())
}

/// The units a reported figure of `source` counts for on `day`: the unit and the units above
/// it, nearest first, up to (not including) the first that reported the same figure itself —
/// its own figure stands for the units below it, so no figure is summed twice.
fn counted_for<'a>(
    above: &'a HashMap<String, Vec<(String, NaiveDate, NaiveDate)>>,
    source: &'a str,
    day: NaiveDate,
    reported_itself: impl Fn(&str) -> bool,
) -> impl Iterator<Item = &'a str> {
    above
        .get(source)
        .into_iter()
        .flatten()
        .filter(move |(_, from, to)| *from <= day && day <= *to)
        .map(|(a, ..)| a.as_str())
        .take_while(move |a| *a == source || !reported_itself(a))
}

/// Every unit above each of `codes` (and the unit itself) with the days it is, nearest first:
/// one statement per thousand codes.
async fn ancestors_of(
    db: &impl ConnectionTrait,
    codes: &[String],
) -> Result<HashMap<String, Vec<(String, NaiveDate, NaiveDate)>>> {
    let mut above: HashMap<String, Vec<(i32, String, NaiveDate, NaiveDate)>> = HashMap::new();
    for chunk in codes.chunks(1000) {
        let rows = query(
            db,
            &format!(
                "SELECT ancestor_code, descendant_code, depth, valid_from, valid_to \
                 FROM admin_unit_closure WHERE descendant_code IN ({})",
                placeholders(chunk.len())
            ),
            chunk.iter().map(|c| Value::from(c.clone())).collect(),
        )
        .await?;
        for r in rows {
            above
                .entry(r.try_get("", "descendant_code")?)
                .or_default()
                .push((
                    r.try_get("", "depth")?,
                    r.try_get("", "ancestor_code")?,
                    r.try_get("", "valid_from")?,
                    r.try_get("", "valid_to")?,
                ));
        }
    }
    Ok(above
        .into_iter()
        .map(|(code, mut chain)| {
            chain.sort_by_key(|c| c.0);
            (
                code,
                chain.into_iter().map(|(_, a, f, t)| (a, f, t)).collect(),
            )
        })
        .collect())
}

/// Counts of state elements (teams, hamlets, members) for each unit on each day it is looked
/// at: three statements at most, whatever the number of units and days.
async fn state_counts(
    db: &impl ConnectionTrait,
    by_day: &HashMap<NaiveDate, Vec<String>>,
    elements: &[String],
) -> Result<DayValues> {
    let mut out: DayValues = HashMap::new();
    let (Some(first), Some(last)) = (by_day.keys().min().copied(), by_day.keys().max().copied())
    else {
        return Ok(out);
    };
    let want = |e: &str| elements.iter().any(|x| x == e);
    let members = elements.iter().any(|e| e.starts_with("ACTIVE_MEMBERS"));
    let teams_wanted = want("ACTIVE_TEAMS") || want("HAMLETS_WITH_TEAM") || members;
    if !teams_wanted && !want("HAMLETS") {
        return Ok(out);
    }
    let units: Vec<String> = by_day
        .values()
        .flatten()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let looked: HashMap<NaiveDate, HashSet<&str>> = by_day
        .iter()
        .map(|(d, us)| (*d, us.iter().map(String::as_str).collect()))
        .collect();
    // Everything under the units over the days: who is above whom, and when.
    let mut values: Vec<Value> = units.iter().map(|u| Value::from(u.clone())).collect();
    values.extend([Value::from(last), first.into()]);
    let rows = query(
        db,
        &format!(
            "SELECT ancestor_code, descendant_code, descendant_level, valid_from, valid_to \
             FROM admin_unit_closure WHERE ancestor_code IN ({}) AND valid_from <= ? AND valid_to >= ?",
            placeholders(units.len())
        ),
        values.clone(),
    )
    .await?;
    type Above = Vec<(String, NaiveDate, NaiveDate)>;
    let mut above: HashMap<String, Above> = HashMap::new();
    let mut hamlets: Vec<(String, NaiveDate, NaiveDate)> = Vec::new();
    let mut is_hamlet: HashSet<String> = HashSet::new();
    for r in rows {
        let ancestor: String = r.try_get("", "ancestor_code")?;
        let unit: String = r.try_get("", "descendant_code")?;
        let level: UnitLevel = r.try_get("", "descendant_level")?;
        let (f, t): (NaiveDate, NaiveDate) =
            (r.try_get("", "valid_from")?, r.try_get("", "valid_to")?);
        if level == UnitLevel::Hamlet {
            hamlets.push((ancestor.clone(), f, t));
            is_hamlet.insert(unit.clone());
        }
        above.entry(unit).or_default().push((ancestor, f, t));
    }
    let add = |out: &mut DayValues, unit: &str, day: NaiveDate, element: &str, n: f64| {
        *out.entry((unit.to_owned(), day, element.to_owned()))
            .or_default() += n;
    };
    if want("HAMLETS") {
        for (day, us) in &looked {
            for (a, f, t) in &hamlets {
                if f <= day && day <= t && us.contains(a.as_str()) {
                    add(&mut out, a, *day, "HAMLETS", 1.0);
                }
            }
        }
    }
    if !teams_wanted {
        return Ok(out);
    }
    let under = "SELECT descendant_code FROM admin_unit_closure WHERE ancestor_code IN ({p}) \
                 AND valid_from <= ? AND valid_to >= ?";
    let p = placeholders(units.len());
    let mut team_values = vec![Value::from(last), first.into()];
    team_values.extend(values.iter().cloned());
    let rows = query(
        db,
        &format!(
            "SELECT id, unit_code, founded_on, dissolved_on FROM team \
             WHERE founded_on <= ? AND (dissolved_on IS NULL OR dissolved_on > ?) \
             AND unit_code IN ({})",
            under.replace("{p}", &p)
        ),
        team_values.clone(),
    )
    .await?;
    // A team counts on the days from its founding to the day before its dissolution.
    let mut teams: HashMap<i64, (String, NaiveDate, Option<NaiveDate>)> = HashMap::new();
    for r in rows {
        teams.insert(
            r.try_get("", "id")?,
            (
                r.try_get("", "unit_code")?,
                r.try_get("", "founded_on")?,
                r.try_get("", "dissolved_on")?,
            ),
        );
    }
    let active = |founded: NaiveDate, dissolved: Option<NaiveDate>, day: NaiveDate| {
        founded <= day && dissolved.is_none_or(|d| d > day)
    };
    // Each unit looked at on `day` above `unit` on that day (and `unit` itself).
    let chain = |unit: &str, day: NaiveDate| -> Vec<&str> {
        above
            .get(unit)
            .into_iter()
            .flatten()
            .filter(|(a, f, t)| *f <= day && day <= *t && looked[&day].contains(a.as_str()))
            .map(|(a, ..)| a.as_str())
            .collect()
    };
    for day in looked.keys() {
        let mut with_team: HashSet<(&str, &str)> = HashSet::new();
        for (unit, founded, dissolved) in teams.values() {
            if !active(*founded, *dissolved, *day) {
                continue;
            }
            for a in chain(unit, *day) {
                add(&mut out, a, *day, "ACTIVE_TEAMS", 1.0);
                if is_hamlet.contains(unit) && with_team.insert((a, unit.as_str())) {
                    add(&mut out, a, *day, "HAMLETS_WITH_TEAM", 1.0);
                }
            }
        }
    }
    if members {
        let rows = query(
            db,
            &format!(
                "SELECT m.team_id, m.affiliation, m.started_on, m.ended_on FROM membership m \
                 JOIN team t ON t.id = m.team_id \
                 WHERE t.founded_on <= ? AND (t.dissolved_on IS NULL OR t.dissolved_on > ?) \
                 AND t.unit_code IN ({}) AND m.started_on <= ? AND (m.ended_on IS NULL OR m.ended_on >= ?)",
                under.replace("{p}", &p)
            ),
            [team_values, vec![Value::from(last), first.into()]].concat(),
        )
        .await?;
        for r in rows {
            let team: i64 = r.try_get("", "team_id")?;
            let affiliation: String = r.try_get("", "affiliation")?;
            let started: NaiveDate = r.try_get("", "started_on")?;
            let ended: Option<NaiveDate> = r.try_get("", "ended_on")?;
            let Some((unit, founded, dissolved)) = teams.get(&team) else {
                continue;
            };
            let by_affiliation = format!("ACTIVE_MEMBERS_{affiliation}");
            for day in looked.keys() {
                if started <= *day
                    && ended.is_none_or(|e| e >= *day)
                    && active(*founded, *dissolved, *day)
                {
                    for a in chain(unit, *day) {
                        add(&mut out, a, *day, "ACTIVE_MEMBERS", 1.0);
                        add(&mut out, a, *day, &by_affiliation, 1.0);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Reference figures: for each day and unit looked at on it, the sum over the units under it
/// (on that day) of the latest value each reported for the day's year. Two small statements per
/// year (the values, then the hierarchy of the reporting units), whatever the number of days.
async fn reference_sums(
    db: &impl ConnectionTrait,
    by_day: &HashMap<NaiveDate, Vec<String>>,
    elements: &[String],
) -> Result<(DayValues, HashSet<DayKey>)> {
    let mut out: DayValues = HashMap::new();
    let mut incomplete: HashSet<DayKey> = HashSet::new();
    let years: BTreeSet<i32> = by_day.keys().map(|d| d.year()).collect();
    let (Some(first_year), Some(last_year)) = (years.first(), years.last()) else {
        return Ok((out, incomplete));
    };
    let (Some(start), Some(end)) = (
        NaiveDate::from_ymd_opt(*first_year, 1, 1),
        NaiveDate::from_ymd_opt(*last_year, 12, 31),
    ) else {
        return Ok((out, incomplete));
    };
    // The values of every year looked at, and the hierarchy above their units: two statements.
    let mut v: Vec<Value> = elements.iter().map(|e| Value::from(e.clone())).collect();
    v.extend([Value::from(start), Value::from(end)]);
    let rows = query(
        db,
        &format!(
            "SELECT unit_code, element_code, period_start, period_end, id, value FROM data_value \
             WHERE element_code IN ({}) AND period_start >= ? AND period_end <= ?",
            placeholders(elements.len())
        ),
        v,
    )
    .await?;
    // The latest value (period end, then submission) per year, reporting unit and element;
    // a value counts for the year its period lies in.
    type Latest = HashMap<(String, String), ((NaiveDate, i64), f64)>;
    let mut by_year: HashMap<i32, Latest> = HashMap::new();
    for r in rows {
        let unit: String = r.try_get("", "unit_code")?;
        let element: String = r.try_get("", "element_code")?;
        let period_start: NaiveDate = r.try_get("", "period_start")?;
        let key = (
            r.try_get::<NaiveDate>("", "period_end")?,
            r.try_get::<i64>("", "id")?,
        );
        if key.0.year() != period_start.year() {
            continue;
        }
        let value: f64 = r.try_get("", "value")?;
        let entry = by_year
            .entry(period_start.year())
            .or_default()
            .entry((unit, element))
            .or_insert((key, value));
        if key > entry.0 {
            *entry = (key, value);
        }
    }
    let sources: Vec<String> = by_year
        .values()
        .flat_map(|l| l.keys().map(|(u, _)| u.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let above = ancestors_of(db, &sources).await?;
    let all_units: Vec<String> = by_day
        .values()
        .flatten()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (first_day, last_day) = (
        by_day.keys().min().copied().unwrap_or(start),
        by_day.keys().max().copied().unwrap_or(end),
    );
    let edges = crate::units::service::edges_below(db, &all_units, first_day, last_day).await?;
    let empty = Latest::new();
    for year in years {
        let latest = by_year.get(&year).unwrap_or(&empty);
        for (day, units) in by_day.iter().filter(|(d, _)| d.year() == year) {
            let wanted: HashSet<&str> = units.iter().map(String::as_str).collect();
            for ((source, element), (_, value)) in latest {
                let itself = |a: &str| latest.contains_key(&(a.to_owned(), element.clone()));
                for ancestor in counted_for(&above, source, *day, itself) {
                    if wanted.contains(ancestor) {
                        *out.entry((ancestor.to_owned(), *day, element.clone()))
                            .or_default() += value;
                    }
                }
            }
            // Where the figure is known for only part of a unit's territory, its sum is not
            // the unit's figure: a unit is covered when it reported the figure itself, or has
            // units below it and all of them are covered.
            let mut units = units.clone();
            units.sort();
            units.dedup();
            let mut children: HashMap<String, Vec<String>> = HashMap::new();
            for (parent, child, from, to) in &edges {
                if from <= day && day <= to {
                    children
                        .entry(parent.clone())
                        .or_default()
                        .push(child.clone());
                }
            }
            let reported: HashSet<(&str, &str)> = latest
                .keys()
                .map(|(u, e)| (u.as_str(), e.as_str()))
                .collect();
            for unit in &units {
                for element in elements {
                    if !covered(unit, element, &children, &reported, 0) {
                        incomplete.insert((unit.clone(), *day, element.clone()));
                    }
                }
            }
        }
    }
    Ok((out, incomplete))
}

/// Whether `unit`'s figure for `element` is known for its whole territory (see
/// [`reference_sums`]); `children` lists the units directly below each unit on the day.
fn covered(
    unit: &str,
    element: &str,
    children: &HashMap<String, Vec<String>>,
    reported: &HashSet<(&str, &str)>,
    depth: usize,
) -> bool {
    if reported.contains(&(unit, element)) {
        return true;
    }
    match children.get(unit) {
        Some(below) if !below.is_empty() && depth < 8 => below
            .iter()
            .all(|c| covered(c, element, children, reported, depth + 1)),
        _ => false,
    }
}
