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
}

/// One computed value.
pub struct Computed {
    pub definition: indicator_definition::Model,
    pub unit: admin_unit::Model,
    pub period: Span,
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub status: Status,
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

/// The last day within `p` on which the unit existed, and whether it existed all period.
fn as_of(vs: &[admin_unit::Model], p: &Span) -> Option<(NaiveDate, bool)> {
    let first = vs.iter().map(|v| v.valid_from).min()?;
    let last = vs.iter().map(|v| v.valid_to).max()?;
    if last < p.start || first > p.end {
        return None;
    }
    Some((p.end.min(last), first <= p.start && last >= p.end))
}

/// Checks that every requested unit lies in the caller's area during the requested range.
async fn check_area(db: &impl ConnectionTrait, principal: &Principal, req: &Request) -> Result<()> {
    let scope = principal.scope(Action::ReadIndicators);
    if scope.all {
        return Ok(());
    }
    let coverage = Coverage::load(db, &scope, &req.unit_codes, req.from, req.to).await?;
    for code in &req.unit_codes {
        if !coverage.some_day(code, req.from, req.to) {
            return Err(Error::forbidden(format!(
                "unit {code} is outside the caller's area between {} and {}",
                req.from, req.to
            )));
        }
    }
    Ok(())
}

type Key = (String, usize, String);

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
    let defs_by_code = definitions(db).await?;
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
    check_area(db, principal, req).await?;
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

    // Cells: (unit code, period index). Breakdowns take each period's hierarchy: one
    // statement per period for all the requested units.
    let mut cells: Vec<(String, usize)> = Vec::new();
    for (pi, p) in spans.iter().enumerate() {
        if req.breakdown == Breakdown::Own {
            cells.extend(req.unit_codes.iter().map(|c| (c.clone(), pi)));
            continue;
        }
        let mut by_day: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
        for code in &req.unit_codes {
            if let Some((on, _)) = as_of(&requested[code], p) {
                by_day.entry(on).or_default().push(code.clone());
            }
        }
        for (on, codes) in by_day {
            let level = match req.breakdown {
                Breakdown::Level(level) => Some(level),
                _ => None,
            };
            let below = crate::units::service::below_on(db, &codes, level, on).await?;
            cells.extend(below.into_iter().map(|c| (c, pi)));
        }
        if cells.len() * req.codes.len() > MAX_VALUES {
            return Err(Error::invalid(
                "breakdown",
                format!(
                    "the query asks for more than {MAX_VALUES} values: ask for fewer periods, units or codes"
                ),
            ));
        }
    }
    let mut seen = HashSet::new();
    cells.retain(|c| seen.insert(c.clone()));
    let cell_codes: Vec<String> = cells
        .iter()
        .map(|(c, _)| c.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let unit_versions = crate::units::service::all_versions(db, &cell_codes).await?;

    // Which elements the formulas need, and how each is aggregated.
    let defs: Vec<&indicator_definition::Model> = req
        .codes
        .iter()
        .filter_map(|c| defs_by_code.get(c))
        .collect();
    let mut formulas = HashMap::new();
    let mut needed = BTreeSet::new();
    for d in &defs {
        let num = parse_expression(&d.numerator)?;
        let den = match &d.denominator {
            Some(e) => Some(parse_expression(e)?),
            None => None,
        };
        for (_, e) in num.iter().chain(den.iter().flatten()) {
            needed.insert(e.clone());
        }
        formulas.insert(d.code.clone(), (num, den));
    }
    let elements: HashMap<String, data_element::Model> = data_element::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.code.clone(), e))
        .collect();
    let kind = |e: &str| elements.get(e).map(|m| (m.source, m.aggregation));
    let flows: Vec<String> = needed
        .iter()
        .filter(|e| kind(e) == Some((ElementSource::Derived, Aggregation::Flow)))
        .cloned()
        .collect();
    let states: Vec<String> = needed
        .iter()
        .filter(|e| kind(e) == Some((ElementSource::Derived, Aggregation::State)))
        .cloned()
        .collect();
    let reported_flows: Vec<String> = needed
        .iter()
        .filter(|e| kind(e) == Some((ElementSource::Reported, Aggregation::Flow)))
        .cloned()
        .collect();
    let references: Vec<String> = needed
        .iter()
        .filter(|e| kind(e) == Some((ElementSource::Reported, Aggregation::Reference)))
        .cloned()
        .collect();

    let mut values: HashMap<Key, f64> = HashMap::new();
    let mut present: HashSet<Key> = HashSet::new();
    let span_of = |d: NaiveDate| spans.iter().position(|p| p.start <= d && d <= p.end);

    // Derived flows: the monthly rollups of the cell units.
    if !flows.is_empty() && !cell_codes.is_empty() {
        let mut v: Vec<Value> = cell_codes.iter().map(|c| Value::from(c.clone())).collect();
        v.extend(flows.iter().map(|e| Value::from(e.clone())));
        v.extend([
            Value::from(spans[0].start),
            Value::from(spans[spans.len() - 1].end),
        ]);
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
            if let Some(pi) = span_of(month) {
                *values.entry((unit, pi, element)).or_default() += value;
            }
        }
    }

    // State elements and reference figures: per day the units are looked at.
    let mut by_day: HashMap<NaiveDate, Vec<String>> = HashMap::new();
    let mut cell_day: HashMap<(String, usize), (NaiveDate, bool)> = HashMap::new();
    for (code, pi) in &cells {
        if let Some((on, whole)) = unit_versions
            .get(code)
            .and_then(|vs| as_of(vs, &spans[*pi]))
        {
            by_day.entry(on).or_default().push(code.clone());
            cell_day.insert((code.clone(), *pi), (on, whole));
        }
    }
    let mut day_values: HashMap<(String, NaiveDate, String), f64> = HashMap::new();
    let mut day_present: HashSet<(String, NaiveDate, String)> = HashSet::new();
    if !references.is_empty() {
        for ((unit, day, element), v) in reference_sums(db, &by_day, &references).await? {
            day_present.insert((unit.clone(), day, element.clone()));
            day_values.insert((unit, day, element), v);
        }
    }
    for (day, mut codes) in by_day {
        codes.sort();
        codes.dedup();
        if !states.is_empty() {
            for (unit, element, v) in state_counts(db, &codes, day, &states).await? {
                day_values.insert((unit, day, element), v);
            }
        }
    }

    // Reported flows: values whose period lies inside a requested period.
    if !reported_flows.is_empty() && !cell_codes.is_empty() {
        let mut v: Vec<Value> = cell_codes.iter().map(|c| Value::from(c.clone())).collect();
        v.extend(reported_flows.iter().map(|e| Value::from(e.clone())));
        v.extend([
            Value::from(spans[0].start),
            Value::from(spans[spans.len() - 1].end),
        ]);
        let rows = query(
            db,
            &format!(
                "SELECT ac.ancestor_code AS unit_code, dv.element_code, dv.period_start, dv.period_end, dv.value \
                 FROM data_value dv JOIN admin_unit_closure ac ON ac.descendant_code = dv.unit_code \
                 AND ac.valid_from <= dv.period_start AND ac.valid_to >= dv.period_start \
                 WHERE ac.ancestor_code IN ({}) AND dv.element_code IN ({}) AND dv.period_start >= ? AND dv.period_end <= ?",
                placeholders(cell_codes.len()),
                placeholders(reported_flows.len())
            ),
            v,
        )
        .await?;
        for r in rows {
            let unit: String = r.try_get("", "unit_code")?;
            let element: String = r.try_get("", "element_code")?;
            let start: NaiveDate = r.try_get("", "period_start")?;
            let end: NaiveDate = r.try_get("", "period_end")?;
            let value: f64 = r.try_get("", "value")?;
            if let Some(pi) = span_of(start).filter(|pi| end <= spans[*pi].end) {
                let key = (unit, pi, element);
                present.insert(key.clone());
                *values.entry(key).or_default() += value;
            }
        }
    }

    // Each value is readable only when the caller's area covers its unit on every day of its
    // period on which the unit existed (one statement for all cells).
    let coverage = Coverage::load(
        db,
        &principal.scope(Action::ReadIndicators),
        &cell_codes,
        spans[0].start,
        spans[spans.len() - 1].end,
    )
    .await?;

    // Evaluate every formula for every cell.
    let mut out = Vec::with_capacity(cells.len() * defs.len());
    for (code, pi) in &cells {
        let unit = unit_versions
            .get(code)
            .and_then(|vs| {
                vs.iter()
                    .rev()
                    .find(|v| v.valid_from <= spans[*pi].end)
                    .or(vs.first())
            })
            .cloned();
        let Some(unit) = unit else { continue };
        let day = cell_day.get(&(code.clone(), *pi)).copied();
        let readable = coverage.every_day(code, spans[*pi].start, spans[*pi].end);
        for d in &defs {
            let (num, den) = &formulas[&d.code];
            let mut computed = Computed {
                definition: (*d).clone(),
                unit: unit.clone(),
                period: spans[*pi].clone(),
                value: None,
                numerator: None,
                denominator: None,
                status: Status::NoData,
                readable,
            };
            let Some((on, whole)) = day.filter(|_| readable) else {
                out.push(computed);
                continue;
            };
            let term = |e: &str| -> Option<f64> {
                match kind(e) {
                    Some((ElementSource::Derived, Aggregation::Flow)) => Some(
                        values
                            .get(&(code.clone(), *pi, e.to_owned()))
                            .copied()
                            .unwrap_or(0.0),
                    ),
                    Some((ElementSource::Derived, Aggregation::State)) => Some(
                        day_values
                            .get(&(code.clone(), on, e.to_owned()))
                            .copied()
                            .unwrap_or(0.0),
                    ),
                    Some((ElementSource::Reported, Aggregation::Flow)) => {
                        let k = (code.clone(), *pi, e.to_owned());
                        present
                            .contains(&k)
                            .then(|| values.get(&k).copied().unwrap_or(0.0))
                    }
                    Some((ElementSource::Reported, Aggregation::Reference)) => {
                        let k = (code.clone(), on, e.to_owned());
                        day_present
                            .contains(&k)
                            .then(|| day_values.get(&k).copied().unwrap_or(0.0))
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
                Some(t) => {
                    let (v, c) = sum(t);
                    (v, c)
                }
                None => (Some(1.0), true),
            };
            computed.numerator = n;
            computed.denominator = if den.is_some() { dn } else { None };
            if let (Some(n), Some(dv)) = (n, dn) {
                computed.value = (dv != 0.0).then(|| n / dv * d.factor);
                computed.status = if n_complete && d_complete && whole {
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

/// Counts of state elements for units as of `day`: (unit, element, value).
async fn state_counts(
    db: &impl ConnectionTrait,
    units: &[String],
    day: NaiveDate,
    elements: &[String],
) -> Result<Vec<(String, String, f64)>> {
    let mut out = Vec::new();
    let unit_values = || {
        units
            .iter()
            .map(|u| Value::from(u.clone()))
            .collect::<Vec<_>>()
    };
    let p = placeholders(units.len());
    let want = |e: &str| elements.iter().any(|x| x == e);
    let team_active = "t.founded_on <= ? AND (t.dissolved_on IS NULL OR t.dissolved_on > ?)";
    if want("ACTIVE_TEAMS") || want("HAMLETS_WITH_TEAM") {
        let mut v = vec![Value::from(day), day.into()];
        v.extend(unit_values());
        v.extend([Value::from(day), day.into()]);
        let rows = query(
            db,
            &format!(
                "SELECT ac.ancestor_code AS unit_code, COUNT(*) AS teams, \
                 COUNT(DISTINCT CASE WHEN ac.descendant_level = 'HAMLET' THEN t.unit_code END) AS hamlets \
                 FROM team t JOIN admin_unit_closure ac ON ac.descendant_code = t.unit_code \
                 AND ac.valid_from <= ? AND ac.valid_to >= ? \
                 WHERE ac.ancestor_code IN ({p}) AND {team_active} GROUP BY ac.ancestor_code"
            ),
            v,
        )
        .await?;
        for r in rows {
            let unit: String = r.try_get("", "unit_code")?;
            let teams: i64 = r.try_get("", "teams")?;
            let hamlets: i64 = r.try_get("", "hamlets")?;
            out.push((unit.clone(), "ACTIVE_TEAMS".to_owned(), teams as f64));
            out.push((unit, "HAMLETS_WITH_TEAM".to_owned(), hamlets as f64));
        }
    }
    if want("HAMLETS") {
        let mut v = unit_values();
        v.extend([Value::from(day), day.into()]);
        let rows = query(
            db,
            &format!(
                "SELECT ancestor_code AS unit_code, COUNT(*) AS n FROM admin_unit_closure \
                 WHERE ancestor_code IN ({p}) AND descendant_level = 'HAMLET' \
                 AND valid_from <= ? AND valid_to >= ? GROUP BY ancestor_code"
            ),
            v,
        )
        .await?;
        for r in rows {
            let unit: String = r.try_get("", "unit_code")?;
            let n: i64 = r.try_get("", "n")?;
            out.push((unit, "HAMLETS".to_owned(), n as f64));
        }
    }
    if elements.iter().any(|e| e.starts_with("ACTIVE_MEMBERS")) {
        let mut v = vec![Value::from(day), day.into()];
        v.extend(unit_values());
        v.extend([Value::from(day), day.into(), day.into(), day.into()]);
        let rows = query(
            db,
            &format!(
                "SELECT ac.ancestor_code AS unit_code, m.affiliation, COUNT(*) AS n \
                 FROM membership m JOIN team t ON t.id = m.team_id \
                 JOIN admin_unit_closure ac ON ac.descendant_code = t.unit_code \
                 AND ac.valid_from <= ? AND ac.valid_to >= ? \
                 WHERE ac.ancestor_code IN ({p}) AND {team_active} \
                 AND m.started_on <= ? AND (m.ended_on IS NULL OR m.ended_on >= ?) \
                 GROUP BY ac.ancestor_code, m.affiliation"
            ),
            v,
        )
        .await?;
        let mut totals: HashMap<String, f64> = HashMap::new();
        for r in rows {
            let unit: String = r.try_get("", "unit_code")?;
            let affiliation: String = r.try_get("", "affiliation")?;
            let n: i64 = r.try_get("", "n")?;
            *totals.entry(unit.clone()).or_default() += n as f64;
            out.push((unit, format!("ACTIVE_MEMBERS_{affiliation}"), n as f64));
        }
        out.extend(
            totals
                .into_iter()
                .map(|(u, n)| (u, "ACTIVE_MEMBERS".to_owned(), n)),
        );
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
) -> Result<HashMap<(String, NaiveDate, String), f64>> {
    let mut out: HashMap<(String, NaiveDate, String), f64> = HashMap::new();
    let years: BTreeSet<i32> = by_day.keys().map(|d| d.year()).collect();
    for year in years {
        let (Some(start), Some(end)) = (
            NaiveDate::from_ymd_opt(year, 1, 1),
            NaiveDate::from_ymd_opt(year, 12, 31),
        ) else {
            continue;
        };
        let mut v: Vec<Value> = elements.iter().map(|e| Value::from(e.clone())).collect();
        v.extend([Value::from(start), Value::from(end)]);
        let rows = query(
            db,
            &format!(
                "SELECT unit_code, element_code, period_end, id, value FROM data_value \
                 WHERE element_code IN ({}) AND period_start >= ? AND period_end <= ?",
                placeholders(elements.len())
            ),
            v,
        )
        .await?;
        // The latest value (period end, then submission) per reporting unit and element.
        let mut latest: HashMap<(String, String), ((NaiveDate, i64), f64)> = HashMap::new();
        for r in rows {
            let unit: String = r.try_get("", "unit_code")?;
            let element: String = r.try_get("", "element_code")?;
            let key = (
                r.try_get::<NaiveDate>("", "period_end")?,
                r.try_get::<i64>("", "id")?,
            );
            let value: f64 = r.try_get("", "value")?;
            let entry = latest.entry((unit, element)).or_insert((key, value));
            if key > entry.0 {
                *entry = (key, value);
            }
        }
        let sources: Vec<String> = latest
            .keys()
            .map(|(u, _)| u.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut above: HashMap<String, Vec<(String, NaiveDate, NaiveDate)>> = HashMap::new();
        for chunk in sources.chunks(1000) {
            let rows = query(
                db,
                &format!(
                    "SELECT ancestor_code, descendant_code, valid_from, valid_to \
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
                        r.try_get("", "ancestor_code")?,
                        r.try_get("", "valid_from")?,
                        r.try_get("", "valid_to")?,
                    ));
            }
        }
        for (day, units) in by_day.iter().filter(|(d, _)| d.year() == year) {
            let wanted: HashSet<&String> = units.iter().collect();
            for ((source, element), (_, value)) in &latest {
                for (ancestor, from, to) in above.get(source).into_iter().flatten() {
                    if from <= day && day <= to && wanted.contains(ancestor) {
                        *out.entry((ancestor.clone(), *day, element.clone()))
                            .or_default() += value;
                    }
                }
            }
        }
    }
    Ok(out)
}
