//! Reported figures: a batch is checked whole (every problem named, with its path), then
//! stored whole in one transaction with its idempotency record and one audit entry per figure.
//! A figure for a unit, element, period and source that already has one replaces it; the
//! replaced row moves to `data_value_history`. The in-memory indicator data follows at once:
//! the triggers on `data_value` bump the data generation in the same transaction.
use crate::audit::service::{AuditAction, Change, RequestId, record_many};
use crate::auth::{Action, Columns, Coverage, Last, Principal, condition_throughout};
use crate::db::{IDEMPOTENCY_KEY, Unique, Where, placeholders, query};
use crate::error::{Error, ErrorCode, Problems, Result, UserError};
use crate::indicators::targets::whole_period;
use crate::paging::{PageArgs, Window};
use chrono::{DateTime, NaiveDate, Utc};
use cnscd_entity::codes::ElementSource;
use cnscd_entity::{activity, data_element, data_value, data_value_history, idempotency_record};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, Set, Value,
};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet};

/// At most this many figures per batch.
pub const MAX_VALUES: usize = 500;
/// Reported figures are counts of people, households, dossiers or documents: more than this
/// is a mistake (the country has about 100 million people).
pub const MAX_VALUE: f64 = 1_000_000_000.0;
const OPERATION: &str = AuditAction::SubmitDataValues.as_str();

/// Columns of `data_value v` for area conditions: a figure concerns every day of its period.
pub const VALUE_COLUMNS: Columns<'static> = Columns {
    unit: "v.unit_code",
    from: "v.period_start",
    last: Last::Through("v.period_end"),
    team: None,
    submitter: Some("v.submitter"),
};

/// One figure as submitted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewValue {
    pub element: String,
    pub unit_code: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub value: f64,
}

/// A batch as submitted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewValues {
    #[serde(skip)]
    pub idempotency_key: String,
    pub source_system: String,
    pub values: Vec<NewValue>,
}

/// A figure as stored, and as answered (again, to a retry).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredValue {
    pub element: String,
    pub unit_code: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub value: f64,
    pub source_system: String,
    pub submitted_at: DateTime<Utc>,
}

impl From<data_value::Model> for StoredValue {
    fn from(m: data_value::Model) -> Self {
        Self {
            element: m.element_code,
            unit_code: m.unit_code,
            period_start: m.period_start,
            period_end: m.period_end,
            value: m.value,
            source_system: m.source_system,
            submitted_at: m.submitted_at,
        }
    }
}

fn request_hash(input: &NewValues) -> String {
    let canonical = serde_json::to_string(input).unwrap_or_default();
    format!("{:x}", Sha256::digest(canonical.as_bytes()))
}

/// The answer already given to this key, if any, or a refusal when the key was used for
/// different input (or another operation).
async fn replay(
    db: &impl ConnectionTrait,
    scope: &str,
    key: &str,
    hash: &str,
) -> Result<Option<Vec<StoredValue>>> {
    let reused = || {
        Error::Invalid(vec![UserError::new(
            "idempotencyKey",
            format!(
                "idempotency key `{key}` was already used for a different submission; use a \
                 new key for new input"
            ),
            ErrorCode::IdempotencyKeyReused,
        )])
    };
    let Some(rec) = idempotency_record::Entity::find()
        .filter(idempotency_record::Column::Scope.eq(scope))
        .filter(idempotency_record::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?
    else {
        // Submitted activities hold their keys themselves.
        let held = activity::Entity::find()
            .filter(activity::Column::Submitter.eq(scope))
            .filter(activity::Column::IdempotencyKey.eq(key))
            .one(db)
            .await?;
        return if held.is_some() {
            Err(reused())
        } else {
            Ok(None)
        };
    };
    if rec.request_hash != hash || rec.operation != OPERATION {
        return Err(reused());
    }
    let values = rec
        .response
        .map(serde_json::from_value::<Vec<StoredValue>>)
        .transpose()
        .map_err(|e| Error::Internal(format!("stored answer to key is unreadable: {e}")))?
        .unwrap_or_default();
    Ok(Some(values))
}

/// One figure per unit, element, period and source.
const DATA_VALUE: Unique = Unique {
    name: "ux_data_value",
    columns: "data_value.unit_code, data_value.element_code, data_value.period_start, \
              data_value.period_end, data_value.source_system",
};

/// Stores a batch once per idempotency key; answers `(values, replayed)`.
pub async fn submit(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    input: NewValues,
) -> Result<(Vec<StoredValue>, bool)> {
    let scope = principal.identity();
    let key = input.idempotency_key.trim().to_owned();
    let hash = request_hash(&input);
    if let Some(v) = replay(db, &scope, &key, &hash).await? {
        return Ok((v, true));
    }
    validate(db, principal, &input).await?;
    match store(db, principal, request, &input, &scope, &key, &hash).await {
        Ok(v) => Ok((v, false)),
        Err(Error::Db(e)) if DATA_VALUE.violated_by(&e) || IDEMPOTENCY_KEY.violated_by(&e) => {
            // The same key won by a concurrent request answers as a retry; a concurrent batch
            // with another key that wrote the same figure first is a conflict to retry.
            match replay(db, &scope, &key, &hash).await? {
                Some(v) => Ok((v, true)),
                None => Err(Error::Conflict(
                    "another submission stored one of these figures at the same time; retry".into(),
                )),
            }
        }
        Err(e) => Err(e),
    }
}

fn printable(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// Checks the whole batch, naming every problem with its path (`values.3.unitCode`).
async fn validate(
    db: &impl ConnectionTrait,
    principal: &Principal,
    input: &NewValues,
) -> Result<()> {
    let mut p = Problems::default();
    check_batch_fields(&mut p, input);
    if input.values.len() > MAX_VALUES {
        return p.finish();
    }
    let elements: HashMap<String, data_element::Model> = data_element::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.code.clone(), e))
        .collect();
    let codes: Vec<String> = input
        .values
        .iter()
        .map(|v| v.unit_code.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let versions = crate::units::service::all_versions(db, &codes).await?;
    let today = crate::units::service::today();
    // Figures whose unit and period are sound, to check against the caller's area.
    let mut placed: Vec<usize> = Vec::new();
    let mut seen: HashMap<(&str, &str, NaiveDate, NaiveDate), usize> = HashMap::new();
    for (i, v) in input.values.iter().enumerate() {
        let at = |field: &str| format!("values.{i}.{field}");
        check_element(&mut p, &at, &elements, v);
        let period_ok = check_period(&mut p, &at, v, today);
        check_value(&mut p, &at, v);
        let unit_versions = versions.get(&v.unit_code).map(Vec::as_slice).unwrap_or(&[]);
        if check_unit(&mut p, &at, unit_versions, v, period_ok) {
            placed.push(i);
        }
        check_repeat(&mut p, &mut seen, i, v);
    }
    check_area(db, &mut p, principal, &input.values, &placed, &codes).await?;
    p.finish()
}

/// The batch's own fields: key, source, how many values.
fn check_batch_fields(p: &mut Problems, input: &NewValues) {
    let key = input.idempotency_key.trim();
    if key.is_empty() || key.chars().count() > 200 || !printable(key) {
        p.add(
            "idempotencyKey",
            "idempotencyKey must be 1 to 200 printable characters",
        );
    }
    let source = &input.source_system;
    if source.is_empty()
        || source.len() > 100
        || !source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        p.add(
            "sourceSystem",
            "sourceSystem must be 1 to 100 letters, digits, `_`, `-` or `.`",
        );
    }
    if input.values.is_empty() {
        p.add("values", "at least one value is required");
    } else if input.values.len() > MAX_VALUES {
        p.add(
            "values",
            format!(
                "at most {MAX_VALUES} values per batch, not {}; send the rest in another batch",
                input.values.len()
            ),
        );
    }
}

/// A figure's element: a reported one of the catalogue.
fn check_element(
    p: &mut Problems,
    at: &impl Fn(&str) -> String,
    elements: &HashMap<String, data_element::Model>,
    v: &NewValue,
) {
    match elements.get(&v.element) {
        None => p.add(
            &at("element"),
            format!("`{}` is not a data element code", v.element),
        ),
        Some(e) if e.source != ElementSource::Reported => p.add(
            &at("element"),
            format!(
                "{} is computed by the service from activities and memberships; only \
                 reported elements can be submitted",
                v.element
            ),
        ),
        Some(_) => {}
    }
}

/// A figure's period: a whole month, quarter or year that has begun; whether it is.
fn check_period(
    p: &mut Problems,
    at: &impl Fn(&str) -> String,
    v: &NewValue,
    today: NaiveDate,
) -> bool {
    let (start, end) = (v.period_start, v.period_end);
    if !whole_period(start, end) {
        p.add(
            &at("periodEnd"),
            format!(
                "{start} to {end} is not a whole month, quarter or year: start on the first \
                 day and end on the last day of the same month, quarter or year"
            ),
        );
        false
    } else if start > today {
        p.add(
            &at("periodStart"),
            format!("the period starting {start} has not begun"),
        );
        false
    } else {
        true
    }
}

/// A figure's value: a whole, plausible count.
fn check_value(p: &mut Problems, at: &impl Fn(&str) -> String, v: &NewValue) {
    if !v.value.is_finite() || v.value < 0.0 {
        p.add(
            &at("value"),
            format!("value must be a finite number, 0 or more, not {}", v.value),
        );
    } else if v.value.fract() != 0.0 {
        p.add(
            &at("value"),
            format!(
                "{} counts whole items: {} is not a whole number",
                v.element, v.value
            ),
        );
    } else if v.value > MAX_VALUE {
        p.add(
            &at("value"),
            format!(
                "{} is more than {MAX_VALUE:.0}: not a plausible count",
                v.value
            ),
        );
    }
}

/// A figure's unit (`versions`: its versions): it exists on every day of the period (checked
/// when `period_ok`); whether the figure is then placed, to be checked against the area.
fn check_unit(
    p: &mut Problems,
    at: &impl Fn(&str) -> String,
    versions: &[cnscd_entity::admin_unit::Model],
    v: &NewValue,
    period_ok: bool,
) -> bool {
    let (start, end) = (v.period_start, v.period_end);
    let exists = |d: NaiveDate| {
        versions
            .iter()
            .any(|u| u.valid_from <= d && d <= u.valid_to)
    };
    if versions.is_empty() {
        p.add(
            &at("unitCode"),
            format!("`{}` is not an administrative unit code", v.unit_code),
        );
        false
    } else if period_ok && !(exists(start) && exists(end)) {
        p.add(
            &at("unitCode"),
            format!(
                "unit {} does not exist on every day from {start} to {end}",
                v.unit_code
            ),
        );
        false
    } else {
        period_ok
    }
}

/// The same element, unit and period at most once per batch (`seen`: the first of each so
/// far).
fn check_repeat<'a>(
    p: &mut Problems,
    seen: &mut HashMap<(&'a str, &'a str, NaiveDate, NaiveDate), usize>,
    i: usize,
    v: &'a NewValue,
) {
    let k = (
        v.element.as_str(),
        v.unit_code.as_str(),
        v.period_start,
        v.period_end,
    );
    if let Some(first) = seen.insert(k, i) {
        seen.insert(k, first);
        p.add(
            &format!("values.{i}"),
            format!(
                "repeats values[{first}]: the same element, unit and period at most once per \
                 batch"
            ),
        );
    }
}

/// The caller's area on every day of each placed figure's period (area.md, data value).
async fn check_area(
    db: &impl ConnectionTrait,
    p: &mut Problems,
    principal: &Principal,
    values: &[NewValue],
    placed: &[usize],
    codes: &[String],
) -> Result<()> {
    let scope = principal.scope(Action::SubmitDataValues);
    let (Some(from), Some(to)) = (
        placed.iter().map(|&i| values[i].period_start).min(),
        placed.iter().map(|&i| values[i].period_end).max(),
    ) else {
        return Ok(());
    };
    if scope.all {
        return Ok(());
    }
    let coverage = Coverage::load(db, &scope, codes, from, to).await?;
    for &i in placed {
        let v = &values[i];
        if !coverage.every_day(&v.unit_code, v.period_start, v.period_end) {
            p.0.push(UserError::new(
                &format!("values.{i}.unitCode"),
                format!(
                    "unit {} is not in the caller's area on every day from {} to {}",
                    v.unit_code, v.period_start, v.period_end
                ),
                ErrorCode::Forbidden,
            ));
        }
    }
    Ok(())
}

/// Which of the locked units (`spans`) lies above (or is) which of `units`, on which days
/// from `from` to `to`: by unit, (locked unit, first day, last day).
async fn locked_above(
    db: &impl ConnectionTrait,
    units: &[String],
    spans: &[(String, NaiveDate, NaiveDate)],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<HashMap<String, Vec<(String, NaiveDate, NaiveDate)>>> {
    let locked_units: Vec<String> = spans
        .iter()
        .map(|s| s.0.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut params: Vec<Value> = units.iter().map(|u| Value::from(u.clone())).collect();
    params.extend(locked_units.iter().map(|u| Value::from(u.clone())));
    params.extend([Value::from(to), from.into()]);
    // Which locked unit lies above (or is) which figure's unit, on which days.
    let rows = query(
        db,
        &format!(
            "SELECT ancestor_code, descendant_code, valid_from, valid_to FROM admin_unit_closure \
             WHERE descendant_code IN ({}) AND ancestor_code IN ({}) AND valid_from <= ? \
             AND valid_to >= ?",
            placeholders(units.len()),
            placeholders(locked_units.len())
        ),
        params,
    )
    .await?;
    let mut above: HashMap<String, Vec<(String, NaiveDate, NaiveDate)>> = HashMap::new();
    for r in rows {
        let descendant: String = r.try_get("", "descendant_code")?;
        above.entry(descendant).or_default().push((
            r.try_get("", "ancestor_code")?,
            r.try_get("", "valid_from")?,
            r.try_get("", "valid_to")?,
        ));
    }
    Ok(above)
}

/// Names every figure of the batch whose period overlaps a lock of its unit or of a unit
/// above it (on the days they overlap): PERIOD_LOCKED on its `periodStart`.
async fn check_locks(db: &impl ConnectionTrait, values: &[NewValue]) -> Result<()> {
    let (Some(from), Some(to)) = (
        values.iter().map(|v| v.period_start).min(),
        values.iter().map(|v| v.period_end).max(),
    ) else {
        return Ok(());
    };
    // Only the locks of the figures' units and of the units above them over the batch's
    // days: read through the index on the lock's unit, not every lock of those days.
    let units: Vec<String> = values
        .iter()
        .map(|v| v.unit_code.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut params: Vec<Value> = units.iter().map(|u| Value::from(u.clone())).collect();
    params.extend([Value::from(to), from.into(), to.into(), from.into()]);
    let locks = query(
        db,
        &format!(
            "SELECT unit_code, period_start, period_end FROM period_lock \
             WHERE unit_code IN (SELECT ancestor_code FROM admin_unit_closure \
             WHERE descendant_code IN ({}) AND valid_from <= ? AND valid_to >= ?) \
             AND period_start <= ? AND period_end >= ?",
            placeholders(units.len())
        ),
        params,
    )
    .await?;
    if locks.is_empty() {
        return Ok(());
    }
    let mut spans: Vec<(String, NaiveDate, NaiveDate)> = Vec::with_capacity(locks.len());
    for r in locks {
        spans.push((
            r.try_get("", "unit_code")?,
            r.try_get("", "period_start")?,
            r.try_get("", "period_end")?,
        ));
    }
    let above = locked_above(db, &units, &spans, from, to).await?;
    let mut problems = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let hit = spans.iter().find(|(lock_unit, ls, le)| {
            let (f, t) = (v.period_start.max(*ls), v.period_end.min(*le));
            f <= t
                && above
                    .get(&v.unit_code)
                    .into_iter()
                    .flatten()
                    .any(|(a, af, at)| a == lock_unit && *af <= t && *at >= f)
        });
        if let Some((lock_unit, ls, le)) = hit {
            problems.push(UserError::new(
                &format!("values.{i}.periodStart"),
                format!(
                    "{} is locked for unit {lock_unit} (and everything under it); the figure \
                     for {} from {} to {} cannot be stored until it is unlocked",
                    crate::locks::service::label(*ls, *le),
                    v.unit_code,
                    v.period_start,
                    v.period_end
                ),
                ErrorCode::PeriodLocked,
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(problems))
    }
}

/// Writes the batch: replaced rows to history, new rows, audit entries, the idempotency record.
#[allow(clippy::too_many_arguments)]
async fn store(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    input: &NewValues,
    scope: &str,
    key: &str,
    hash: &str,
) -> Result<Vec<StoredValue>> {
    let txn = crate::db::begin_write(db).await?;
    // Writers of figures take their turn first (every write to `data_value` holds the data
    // generation until commit anyway, through its trigger): the rows read below are then the
    // committed ones, and two batches for the same figures never wait on each other's rows.
    crate::locks::service::take_turn(&txn).await?;
    check_locks(&txn, &input.values).await?;
    let now = Utc::now();
    let replaced = current_rows(&txn, input).await?;
    to_history(&txn, &replaced, principal, now).await?;
    // New rows get new ids: the indicator data reads figures in id order, the latest last.
    let rows: Vec<data_value::ActiveModel> = input
        .values
        .iter()
        .map(|v| data_value::ActiveModel {
            unit_code: Set(v.unit_code.clone()),
            element_code: Set(v.element.clone()),
            period_start: Set(v.period_start),
            period_end: Set(v.period_end),
            value: Set(v.value),
            source_system: Set(input.source_system.clone()),
            submitted_by: Set(principal.subject.clone()),
            client_id: Set(principal.client_id.clone()),
            submitted_at: Set(now),
            submitter: Set(principal.identity()),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(100) {
        data_value::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await?;
    }
    let stored: Vec<StoredValue> = input
        .values
        .iter()
        .map(|v| StoredValue {
            element: v.element.clone(),
            unit_code: v.unit_code.clone(),
            period_start: v.period_start,
            period_end: v.period_end,
            value: v.value,
            source_system: input.source_system.clone(),
            submitted_at: now,
        })
        .collect();
    record_many(
        &txn,
        principal,
        request,
        now,
        audit_changes(&stored, &replaced),
    )
    .await?;
    idempotency_record::ActiveModel {
        scope: Set(scope.to_owned()),
        idempotency_key: Set(key.to_owned()),
        operation: Set(OPERATION.into()),
        request_hash: Set(hash.to_owned()),
        resource_id: Set(None),
        created_at: Set(now),
        response: Set(serde_json::to_value(&stored).ok()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(stored)
}

/// Moves the rows a batch replaces to history (stamped `now`, by the caller) and out of the
/// current figures.
async fn to_history(
    txn: &DatabaseTransaction,
    replaced: &HashMap<Key, data_value::Model>,
    principal: &Principal,
    now: DateTime<Utc>,
) -> Result<()> {
    if !replaced.is_empty() {
        data_value_history::Entity::insert_many(replaced.values().map(|m| {
            data_value_history::ActiveModel {
                data_value_id: Set(m.id),
                unit_code: Set(m.unit_code.clone()),
                element_code: Set(m.element_code.clone()),
                period_start: Set(m.period_start),
                period_end: Set(m.period_end),
                value: Set(m.value),
                source_system: Set(m.source_system.clone()),
                submitted_by: Set(m.submitted_by.clone()),
                client_id: Set(m.client_id.clone()),
                submitted_at: Set(m.submitted_at),
                replaced_at: Set(now),
                replaced_by: Set(principal.subject.clone()),
                ..Default::default()
            }
        }))
        .exec_without_returning(txn)
        .await?;
        let ids: Vec<i64> = replaced.values().map(|m| m.id).collect();
        data_value::Entity::delete_many()
            .filter(data_value::Column::Id.is_in(ids))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// One audit entry per stored figure, with the figure it replaced.
fn audit_changes(
    stored: &[StoredValue],
    replaced: &HashMap<Key, data_value::Model>,
) -> Vec<Change> {
    stored
        .iter()
        .map(|v| Change {
            action: AuditAction::SubmitDataValues,
            entity_id: format!(
                "{}:{}:{}:{}:{}",
                v.element, v.unit_code, v.period_start, v.period_end, v.source_system
            ),
            unit_code: Some(v.unit_code.clone()),
            concerns: Some((v.period_start, Some(v.period_end))),
            before: replaced
                .get(&(
                    v.element.clone(),
                    v.unit_code.clone(),
                    v.period_start,
                    v.period_end,
                ))
                .and_then(|m| serde_json::to_value(StoredValue::from(m.clone())).ok()),
            after: serde_json::to_value(v).ok(),
        })
        .collect()
}

type Key = (String, String, NaiveDate, NaiveDate);

/// The stored rows the batch replaces (same unit, element, period and source), by key.
async fn current_rows(
    txn: &DatabaseTransaction,
    input: &NewValues,
) -> Result<HashMap<Key, data_value::Model>> {
    let wanted: HashSet<Key> = input
        .values
        .iter()
        .map(|v| {
            (
                v.element.clone(),
                v.unit_code.clone(),
                v.period_start,
                v.period_end,
            )
        })
        .collect();
    let units: BTreeSet<&str> = input.values.iter().map(|v| v.unit_code.as_str()).collect();
    let elements: BTreeSet<&str> = input.values.iter().map(|v| v.element.as_str()).collect();
    let mut out = HashMap::new();
    for m in data_value::Entity::find()
        .filter(data_value::Column::SourceSystem.eq(input.source_system.clone()))
        .filter(data_value::Column::UnitCode.is_in(units))
        .filter(data_value::Column::ElementCode.is_in(elements))
        .all(txn)
        .await?
    {
        let k = (
            m.element_code.clone(),
            m.unit_code.clone(),
            m.period_start,
            m.period_end,
        );
        if wanted.contains(&k) {
            out.insert(k, m);
        }
    }
    Ok(out)
}

/// Filters of the `dataValues` list.
#[derive(Debug, Default)]
pub struct ValueFilter {
    pub element: Option<String>,
    /// Figures of this unit or of units under it (on every day of their period).
    pub under: Option<String>,
    /// Figures whose period ends on or after this day.
    pub from: Option<NaiveDate>,
    /// Figures whose period starts on or before this day.
    pub to: Option<NaiveDate>,
    pub source_system: Option<String>,
}

/// The figures the caller may read: its area on every day of their period, or (REPORTER) what
/// it sent; latest period first.
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &ValueFilter,
    args: &PageArgs,
) -> Result<(Vec<data_value::Model>, Window, u64)> {
    let mut w = Where::new();
    if let Some((sql, values)) = condition_throughout(
        &principal.scope(Action::ReadDataValues),
        &VALUE_COLUMNS,
        db.get_database_backend(),
    ) {
        w.and(sql, values);
    }
    if let Some(u) = &filter.under {
        let only = crate::auth::Scope {
            units: vec![u.clone()],
            ..Default::default()
        };
        if let Some((sql, values)) =
            condition_throughout(&only, &VALUE_COLUMNS, db.get_database_backend())
        {
            w.and(sql, values);
        }
    }
    if let Some(e) = &filter.element {
        w.and("v.element_code = ?", [e.clone().into()]);
    }
    if let Some(d) = filter.from {
        w.and("v.period_end >= ?", [d.into()]);
    }
    if let Some(d) = filter.to {
        w.and("v.period_start <= ?", [d.into()]);
    }
    if let Some(s) = &filter.source_system {
        w.and("v.source_system = ?", [s.clone().into()]);
    }
    crate::db::page::<data_value::Entity>(
        db,
        "v",
        "data_value v",
        "v.period_start DESC, v.element_code, v.unit_code, v.source_system, v.id",
        &w,
        args,
    )
    .await
}
