//! Writing submitted activities: checked in memory, written in as few statements as the
//! database allows.
//!
//! A submission is checked against the copy of the catalogues, teams, dated hierarchy and
//! period locks the indicator store holds ([`crate::memory::IntakeData`]), which is
//! current as of the one statement that asks for its generation. An activity holds its own
//! idempotency key, unique per submitter: a submission is written straight away, and only when
//! the unique index refuses a key (a retry) or an item fails the checks are the keys looked up,
//! in one statement for the whole batch. The activities, their outcomes, audit entries and
//! rollups are written:
//!
//! - on PostgreSQL in one statement per chunk of up to [`CHUNK`] activities (data-modifying
//!   `WITH` clauses, one implicit transaction; several chunks share an explicit one), with ids
//!   taken from the sequence a thousand at a time beforehand ([`Ids`]), so a submission costs
//!   two round trips (generation, write) instead of a dozen;
//! - on SQLite, where statements cost no round trip, in one write transaction.
//!
//! A key stored before, or concurrently by another request, fails the write on the unique
//! index; the write is then retried without the items whose keys are now held, which answer as
//! replays.
use super::input::{NewActivity, request_hash};
use super::rollup;
use crate::audit::service::{AuditAction, Change, RequestId};
use crate::auth::{Action, Principal, allows_in_chain};
use crate::db::{IDEMPOTENCY_KEY, Unique, placeholders, query, stmt};
use crate::error::{Error, ErrorCode, Problems, Result, UserError};
use crate::ids;
use crate::memory::{IntakeData, Store, TeamDays, View};
use crate::text;
use chrono::{NaiveDate, Utc};
use cnscd_entity::codes::ActivityStatus;
use cnscd_entity::{activity, activity_outcome, audit_entry};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, Value,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

pub const MAX_COUNT: i32 = 100_000;
pub const MAX_OUTCOMES: usize = 20;
/// Activities per write statement on PostgreSQL (well under its 65,535 parameters).
const CHUNK: usize = 100;

/// What an item of a submission came to.
pub type Outcome = Result<(activity::Model, bool)>;

/// What intake keeps between submissions, one per application (in the schema's data): the
/// activity ids taken ahead, and the rollup deltas written since they were last folded.
#[derive(Clone, Default)]
pub struct Pool {
    ids: std::sync::Arc<Ids>,
    /// Rollup deltas this process wrote since it last had them folded.
    deltas: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Deltas a process writes before it has the rollup deltas folded into the rollup rows
/// ([`rollup::compact`], which folds every replica's): so they stay few whatever the intake,
/// and a server that writes nothing runs no statement for it.
const FOLD_AFTER: usize = 10_000;

impl Pool {
    /// Counts `n` rollup deltas written; every [`FOLD_AFTER`], folds the deltas in the
    /// background.
    pub fn wrote_deltas(&self, db: &DatabaseConnection, n: usize) {
        use std::sync::atomic::Ordering;
        let before = self.deltas.fetch_add(n, Ordering::Relaxed);
        if before / FOLD_AFTER == (before + n) / FOLD_AFTER {
            return;
        }
        let db = db.clone();
        tokio::spawn(async move {
            match rollup::compact(&db).await {
                Ok(n) => tracing::debug!(deltas = n, "rollup deltas folded"),
                Err(e) => tracing::warn!(error = %e.message(), "rollup deltas not folded"),
            }
            // The data change log is pruned on the same occasion.
            if let Err(e) = crate::memory::changes::prune(&db).await {
                tracing::warn!(error = %e.message(), "data change log not pruned");
            }
        });
    }
}

/// Ids taken from PostgreSQL's `activity` sequence ahead of use, a block at a time. The
/// sequence counts in steps of a block (`INCREMENT BY 1000`, as set by the migrations): each
/// value it hands out is the first of a block of ids no other caller is given, so a process
/// asks the database once per thousand submissions (a "pooled" id generator). Values taken and
/// not used leave gaps, as rolled-back inserts do.
#[derive(Default)]
pub struct Ids(Mutex<Held>);

#[derive(Default)]
struct Held {
    /// Free ids, the next one last.
    ids: Vec<i64>,
    /// The sequence's step, once read.
    step: Option<i64>,
}

impl Ids {
    async fn take(&self, db: &DatabaseConnection, n: usize) -> Result<Vec<i64>> {
        let step = match self.0.lock() {
            Ok(mut held) if held.ids.len() >= n => {
                let rest = held.ids.len() - n;
                return Ok(held.ids.split_off(rest));
            }
            Ok(held) => held.step,
            Err(_) => None,
        };
        let step = match step {
            Some(step) => step,
            None => query(
                db,
                "SELECT seqincrement AS step FROM pg_sequence \
                 WHERE seqrelid = CAST(pg_get_serial_sequence('activity', 'id') AS regclass)",
                vec![],
            )
            .await?
            .first()
            .map(|r| r.try_get::<i64>("", "step"))
            .transpose()?
            .filter(|s| *s >= 1)
            .ok_or_else(|| Error::Internal("the activity id sequence was not found".into()))?,
        };
        let values = (n as u64).div_ceil(step as u64).max(1) as i64;
        let firsts: Vec<i64> = query(
            db,
            "SELECT nextval(pg_get_serial_sequence('activity', 'id')) AS id \
             FROM generate_series(1, ?)",
            vec![values.into()],
        )
        .await?
        .iter()
        .map(|r| r.try_get::<i64>("", "id"))
        .collect::<std::result::Result<_, _>>()?;
        let mut fresh: Vec<i64> = firsts.iter().flat_map(|f| *f..*f + step).collect();
        fresh.sort_unstable_by(|a, b| b.cmp(a));
        let taken = fresh.split_off(fresh.len() - n);
        if let Ok(mut held) = self.0.lock() {
            held.step = Some(step);
            held.ids.extend(fresh);
            held.ids.sort_unstable_by(|a, b| b.cmp(a));
        }
        Ok(taken)
    }
}

/// A submission that passed the checks.
struct Checked {
    input: NewActivity,
    key: String,
    hash: String,
    unit_code: String,
    /// Since when the unit has had its units above it (its rollup row starts there).
    since: NaiveDate,
    cashless: HashSet<String>,
}

/// Checks one submission against the copy held in memory; problems are reported under
/// `prefix` (`input`, or `items.<i>` in a batch). Also the new state of a correction
/// ([`super::corrections`]). Answers where the activity is recorded, since when that unit has
/// sat where it sits (its rollup row starts there) and the cashless services among its
/// outcomes.
pub(super) fn check(
    snap: &View<'_>,
    principal: &Principal,
    input: &NewActivity,
    prefix: &str,
    today: NaiveDate,
) -> Result<(String, NaiveDate, HashSet<String>)> {
    let at = |field: &str| format!("{prefix}.{field}");
    let mut p = Problems::default();
    check_own_fields(&mut p, &at, input, today);
    let cashless = check_kind_and_outcomes(&mut p, &at, &snap.live.intake, input);
    let team = visible_team(snap, principal, input.team_id, today).ok_or_else(|| {
        Error::Invalid(vec![UserError::new(
            &at("teamId"),
            format!(
                "no team {} in the caller's area",
                ids::global(ids::TEAM, input.team_id)
            ),
            ErrorCode::NotFound,
        )])
    })?;
    check_team_days(&mut p, &at, &team, input.occurred_on);
    let unit_code = input
        .unit_code
        .as_deref()
        .map(str::trim)
        .unwrap_or(&team.unit_code)
        .to_owned();
    let placed = place(snap, &team, &unit_code, input.occurred_on);
    let (ancestors, since) = match placed {
        Ok(placed) => placed,
        Err(message) => {
            // Said only when nothing else is wrong (a bad day or team explains it better).
            if p.is_empty() {
                p.add(&at("unitCode"), message);
            }
            (Vec::new(), input.occurred_on)
        }
    };
    p.finish()?;
    authorise(snap, principal, input, &team, &unit_code, &ancestors)?;
    Ok((unit_code, since, cashless))
}

/// The submission's own fields: key, title, description, counts, day.
fn check_own_fields(
    p: &mut Problems,
    at: &impl Fn(&str) -> String,
    input: &NewActivity,
    today: NaiveDate,
) {
    let key = &input.idempotency_key;
    if key.trim().is_empty() || key.chars().count() > 200 || key.chars().any(char::is_control) {
        p.add(
            &at("idempotencyKey"),
            "idempotencyKey must be 1 to 200 printable characters",
        );
    }
    let title = text::clean(&input.title);
    if title.is_empty() {
        p.add(&at("title"), "title must not be empty");
    } else if title.chars().count() > 200 {
        p.add(&at("title"), "title must be at most 200 characters");
    }
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 5000)
    {
        p.add(
            &at("description"),
            "description must be at most 5000 characters",
        );
    }
    for (field, v) in [
        ("participants", input.participants),
        ("householdsReached", input.households_reached),
    ] {
        if let Some(v) = v
            && !(0..=MAX_COUNT).contains(&v)
        {
            p.add(
                &at(field),
                format!("must be between 0 and {MAX_COUNT}, not {v}"),
            );
        }
    }
    if input.occurred_on > today {
        p.add(
            &at("occurredOn"),
            format!("occurredOn {} is in the future", input.occurred_on),
        );
    }
}

/// The kind and the outcomes against the catalogues; answers the cashless services among the
/// outcomes.
fn check_kind_and_outcomes(
    p: &mut Problems,
    at: &impl Fn(&str) -> String,
    catalogue: &IntakeData,
    input: &NewActivity,
) -> HashSet<String> {
    if catalogue.kinds.get(&input.kind) != Some(&true) {
        p.add(
            &at("kind"),
            format!(
                "`{}` is not an activity kind code (see activityKinds)",
                input.kind
            ),
        );
    }
    if input.outcomes.len() > MAX_OUTCOMES {
        p.add(&at("outcomes"), format!("at most {MAX_OUTCOMES} outcomes"));
    }
    let mut cashless = HashSet::new();
    let mut seen = HashSet::new();
    for (i, o) in input.outcomes.iter().enumerate() {
        let base = at(&format!("outcomes.{i}"));
        match catalogue.services.get(&o.service) {
            Some((true, is_cashless)) => {
                if !seen.insert(o.service.clone()) {
                    p.add(
                        &format!("{base}.service"),
                        format!("service {} appears twice", o.service),
                    );
                } else if *is_cashless {
                    cashless.insert(o.service.clone());
                }
            }
            _ => p.add(
                &format!("{base}.service"),
                format!(
                    "`{}` is not a digital service code (see digitalServices)",
                    o.service
                ),
            ),
        }
        if !(0..=MAX_COUNT).contains(&o.people) {
            p.add(
                &format!("{base}.people"),
                format!("must be between 0 and {MAX_COUNT}, not {}", o.people),
            );
        }
        if let Some(h) = o.households
            && !(0..=MAX_COUNT).contains(&h)
        {
            p.add(
                &format!("{base}.households"),
                format!("must be between 0 and {MAX_COUNT}, not {h}"),
            );
        }
    }
    cashless
}

/// The team, if the caller may see it: the area rule for teams (any day from founding to
/// dissolution). Nothing about a team outside it is said (NOT_FOUND).
fn visible_team(
    snap: &View<'_>,
    principal: &Principal,
    team_id: i64,
    today: NaiveDate,
) -> Option<TeamDays> {
    snap.team(team_id).filter(|t| {
        let scope = principal.scope(Action::ReadTeams);
        let last = match t.dissolved_on {
            Some(d) => d.pred_opt().unwrap_or(d),
            None => today,
        };
        scope.all
            || scope.teams.contains(&team_id)
            || (!scope.units.is_empty()
                && snap.under_some_day(&scope.units, &t.unit_code, t.founded_on, last))
    })
}

/// The day against the team's founding and dissolution.
fn check_team_days(p: &mut Problems, at: &impl Fn(&str) -> String, team: &TeamDays, on: NaiveDate) {
    if on < team.founded_on {
        p.add(
            &at("occurredOn"),
            format!(
                "occurredOn {on} is before the team was founded ({})",
                team.founded_on
            ),
        );
    }
    if let Some(d) = team.dissolved_on
        && on >= d
    {
        p.add(&at("occurredOn"), format!("the team was dissolved on {d}"));
    }
}

/// Where an activity of `team` recorded at `unit_code` on `on` sits: the unit and the units
/// above it, and since when it has sat there (its rollup row starts there); or why it cannot
/// be recorded there (the unit is neither the team's nor one containing it).
fn place(
    snap: &View<'_>,
    team: &TeamDays,
    unit_code: &str,
    on: NaiveDate,
) -> std::result::Result<(Vec<String>, NaiveDate), String> {
    let above_team = snap.chain(&team.unit_code, on);
    let position = above_team
        .as_ref()
        .and_then(|c| c.codes.iter().position(|a| a == unit_code));
    match (above_team, position) {
        (Some(c), Some(0)) => Ok((c.codes, c.since)),
        (Some(c), Some(i)) => {
            // Recorded at a unit above the team's: that unit's own place in the hierarchy.
            let since = snap.chain(unit_code, on).map_or(on, |own| own.since);
            Ok((c.codes[i..].to_vec(), since))
        }
        _ if snap.chain(unit_code, on).is_none() => Err(format!(
            "no administrative unit `{unit_code}` exists on {on}"
        )),
        _ => Err(format!(
            "unit {unit_code} is neither the team's unit ({}) nor one containing it on {on}",
            team.unit_code
        )),
    }
}

/// Whether the caller may record the activity at its unit (the team's, or one above it, which
/// must lie in the caller's area on the day: a token's team grants its own unit only, never
/// the units above it), and whether the month is open there.
fn authorise(
    snap: &View<'_>,
    principal: &Principal,
    input: &NewActivity,
    team: &TeamDays,
    unit_code: &str,
    ancestors: &[String],
) -> Result<()> {
    if !allows_in_chain(
        &principal.scope(Action::SubmitActivities),
        Some((input.team_id, &team.unit_code)),
        unit_code,
        ancestors,
    ) {
        return Err(Error::forbidden(format!(
            "the caller may not submit activities for team {} on {}",
            ids::global(ids::TEAM, input.team_id),
            input.occurred_on
        )));
    }
    let on = input.occurred_on;
    if let Some(unit) = snap.locked(ancestors, on) {
        let month = crate::locks::service::Month {
            start: rollup::month_start(on),
        };
        return Err(Error::PeriodLocked(format!(
            "{month} is locked for unit {unit} (and everything under it); {on} cannot be \
             changed until it is unlocked"
        )));
    }
    Ok(())
}

/// Stores each of `items` once per idempotency key (their problems reported under `input`
/// for a single submission, under `items.<i>` in a batch; an item already refused, e.g. for a
/// malformed id, comes as its error); with `atomic`, nothing unless every item passes.
/// Answers per item, in input order: the activity and whether it was a replay, or what is
/// wrong with it.
pub async fn submit(
    db: &DatabaseConnection,
    (store, pool): (&Store, &Pool),
    principal: &Principal,
    request: Option<&RequestId>,
    items: Vec<Result<NewActivity>>,
    batch: bool,
    atomic: bool,
) -> Result<Vec<Outcome>> {
    let scope = principal.identity();
    // Items refused before (a malformed id, say) are answered already.
    let (items, mut results): (Vec<Option<NewActivity>>, Vec<Option<Outcome>>) = items
        .into_iter()
        .map(|item| item.map_or_else(|e| (None, Some(Err(e))), |a| (Some(a), None)))
        .unzip();
    let prefix = |i: usize| {
        if batch {
            format!("items.{i}")
        } else {
            "input".to_owned()
        }
    };
    let keyed = keys_of(&items);
    refuse_repeated_keys(&keyed, &mut results, &prefix);
    let mut snap = store.catalogues(db).await?;
    let today = crate::units::service::today();
    // Most submissions are new: the first round writes without looking the keys up, and the
    // unique index on the keys refuses the write if one was stored before. Then (or when an
    // item fails the checks, which a retry of an item stored before it was locked, say, must
    // not) the keys are looked up first.
    let mut lookup = false;
    let (mut conflicts, mut stale) = (0, 0);
    loop {
        if lookup {
            replays(db, &scope, &keyed, &mut results).await?;
        }
        // The checks and the generation they were made at, read under one lock: the write
        // goes through only while the data is still at that generation.
        let (checked, refused, generation) = {
            let view = snap.view();
            let open = |i: usize| results[i].is_none();
            let (checked, refused) =
                check_open(&view, principal, &items, &keyed, open, &prefix, today);
            (checked, refused, view.live.generation)
        };
        if !refused.is_empty() && !lookup {
            lookup = true;
            continue;
        }
        let refused_now: Vec<usize> = refused.iter().map(|(i, _)| *i).collect();
        for (i, e) in refused {
            results[i] = Some(Err(e));
        }
        let failed: Vec<usize> = (0..items.len())
            .filter(|i| matches!(results[*i], Some(Err(_))))
            .collect();
        if atomic && !failed.is_empty() {
            refuse_for_atomic(&checked, &failed, &mut results, &prefix);
            break;
        }
        if checked.is_empty() {
            break;
        }
        match write(db, pool, principal, request, generation, &checked).await {
            Ok(Some(stored)) => {
                for ((i, _), a) in checked.iter().zip(stored) {
                    results[*i] = Some(Ok((a, false)));
                }
                break;
            }
            // A key was stored before, or by a concurrent request: those items answer as
            // replays on the next round, the others are written again.
            Err(Error::Db(e)) if key_taken(&e) && conflicts < 3 => {
                conflicts += 1;
                lookup = true;
            }
            // The data changed since the copy the items were checked against (a lock, say):
            // nothing was written; every item is checked again against a fresh copy.
            Ok(None) if stale < 10 => {
                stale += 1;
                for i in refused_now {
                    results[i] = None;
                }
                snap = store.catalogues(db).await?;
            }
            Ok(None) => {
                return Err(Error::Conflict(
                    "the teams, units, catalogues or locks kept changing while this submission \
                     was written; nothing was stored, send it again"
                        .into(),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(results.into_iter().map(answered).collect())
}

/// An item's answer (every item has one when the rounds end).
fn answered(result: Option<Outcome>) -> Outcome {
    result.unwrap_or_else(|| Err(Error::Internal("an item was not answered".into())))
}

/// In an atomic batch with `failed` items, every item that passed is refused too.
fn refuse_for_atomic(
    checked: &[(usize, Checked)],
    failed: &[usize],
    results: &mut [Option<Outcome>],
    prefix: &impl Fn(usize) -> String,
) {
    let list = failed
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    for (i, _) in checked {
        results[*i] = Some(Err(Error::Invalid(vec![UserError::new(
            &prefix(*i),
            format!("not stored: the batch is atomic and item(s) {list} failed"),
            ErrorCode::Validation,
        )])));
    }
}

/// Each item's idempotency key and request hash (empty for an item already refused).
fn keys_of(items: &[Option<NewActivity>]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|input| match input {
            Some(input) => (input.idempotency_key.trim().to_owned(), request_hash(input)),
            None => (String::new(), String::new()),
        })
        .collect()
}

/// A key twice in one batch: the later items are refused.
fn refuse_repeated_keys(
    keyed: &[(String, String)],
    results: &mut [Option<Outcome>],
    prefix: &impl Fn(usize) -> String,
) {
    let mut first_with: HashMap<&str, usize> = HashMap::new();
    for (i, (key, _)) in keyed.iter().enumerate() {
        if results[i].is_some() {
            continue;
        }
        if let Some(first) = first_with.get(key.as_str()) {
            results[i] = Some(Err(Error::invalid(
                &format!("{}.idempotencyKey", prefix(i)),
                format!("idempotencyKey `{key}` is also used by item {first} of this batch"),
            )));
        } else {
            first_with.insert(key, i);
        }
    }
}

/// A round of checks: the items that pass and those refused, by position.
type Round = (Vec<(usize, Checked)>, Vec<(usize, Error)>);

/// Checks the items still `open` against the copy: those that pass, and those refused.
fn check_open(
    view: &View<'_>,
    principal: &Principal,
    items: &[Option<NewActivity>],
    keyed: &[(String, String)],
    open: impl Fn(usize) -> bool,
    prefix: &impl Fn(usize) -> String,
    today: NaiveDate,
) -> Round {
    let mut checked: Vec<(usize, Checked)> = Vec::new();
    let mut refused: Vec<(usize, Error)> = Vec::new();
    for (i, input) in items.iter().enumerate() {
        let Some(input) = input.as_ref().filter(|_| open(i)) else {
            continue;
        };
        match check(view, principal, input, &prefix(i), today) {
            Ok((unit_code, since, cashless)) => checked.push((
                i,
                Checked {
                    input: input.clone(),
                    key: keyed[i].0.clone(),
                    hash: keyed[i].1.clone(),
                    unit_code,
                    since,
                    cashless,
                },
            )),
            Err(e) => refused.push((i, e)),
        }
    }
    (checked, refused)
}

/// Answers the items whose keys are recorded: the activity (a replay), or a refusal when the
/// key was used for a different input or another operation. One statement for every key still
/// unanswered: the activities that hold the keys, and the keys other operations recorded
/// (`idempotency_record`, which also holds the keys of submissions stored before activities
/// held their own).
async fn replays(
    db: &DatabaseConnection,
    scope: &str,
    keyed: &[(String, String)],
    results: &mut [Option<Outcome>],
) -> Result<()> {
    let open: Vec<usize> = (0..keyed.len()).filter(|i| results[*i].is_none()).collect();
    if open.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let keys = open.iter().map(|i| keyed[*i].0.as_str());
    let lookup = if backend == DbBackend::Postgres {
        // One unique-index probe per key, whatever the planner knows of the tables: a cached
        // generic plan for `key IN (…)`, or a join, may probe the index by the caller alone
        // and filter every row of the caller, which grows with every submission (a batch took
        // 0.1 s and more). `OFFSET 0` keeps each lookup a subquery run per key.
        let keys: Vec<&str> = keys.collect();
        stmt(
            backend,
            "WITH k(key) AS (SELECT * FROM json_array_elements_text(CAST(? AS json))) \
             SELECT a.idempotency_key AS found_key, a.request_hash AS found_hash, \
             'submitActivity' AS found_operation, a.* FROM k CROSS JOIN LATERAL \
             (SELECT * FROM activity WHERE submitter = ? AND idempotency_key = k.key OFFSET 0) a \
             UNION ALL \
             SELECT r.idempotency_key, r.request_hash, r.operation, a.* FROM k CROSS JOIN LATERAL \
             (SELECT * FROM idempotency_record WHERE scope = ? AND idempotency_key = k.key \
             OFFSET 0) r LEFT JOIN activity a ON a.id = r.resource_id \
             AND r.operation = 'submitActivity'",
            vec![to_json(&keys)?.into(), scope.into(), scope.into()],
        )
    } else {
        let keys: Vec<Value> = keys.map(Value::from).collect();
        let list = placeholders(keys.len());
        let mut values: Vec<Value> = vec![scope.into()];
        values.extend(keys.iter().cloned());
        values.push(scope.into());
        values.extend(keys);
        stmt(
            backend,
            &format!(
                "SELECT a.idempotency_key AS found_key, a.request_hash AS found_hash, \
                 'submitActivity' AS found_operation, a.* FROM activity a \
                 WHERE a.submitter = ? AND a.idempotency_key IN ({list}) \
                 UNION ALL \
                 SELECT r.idempotency_key, r.request_hash, r.operation, a.* \
                 FROM idempotency_record r LEFT JOIN activity a ON a.id = r.resource_id \
                 AND r.operation = 'submitActivity' \
                 WHERE r.scope = ? AND r.idempotency_key IN ({list})"
            ),
            values,
        )
    };
    let rows = db.query_all_raw(lookup).await?;
    let mut found: HashMap<String, (String, String, Option<activity::Model>)> = HashMap::new();
    for row in &rows {
        let key: String = row.try_get("", "found_key")?;
        let hash: String = row.try_get("", "found_hash")?;
        let operation: String = row.try_get("", "found_operation")?;
        let stored = if operation == "submitActivity" {
            activity::Model::from_query_result(row, "").ok()
        } else {
            None
        };
        found.insert(key, (hash, operation, stored));
    }
    for i in open {
        let (key, hash) = &keyed[i];
        let Some((found_hash, operation, stored)) = found.get(key) else {
            continue;
        };
        results[i] = Some(if found_hash != hash || operation != "submitActivity" {
            Err(Error::IdempotencyKeyReused(format!(
                "idempotency key `{key}` was already used for a different submission; use a \
                 new key for new input"
            )))
        } else {
            stored.clone().map(|a| (a, true)).ok_or_else(|| {
                Error::Internal(format!("the activity recorded for key `{key}` is missing"))
            })
        });
    }
    Ok(())
}

/// The rows of one write on SQLite: activities and the rest, as `VALUES` lists with their
/// values.
#[derive(Default)]
struct Rows {
    activities: (Vec<String>, Vec<Value>),
    outcomes: (Vec<String>, Vec<Value>),
    audit: Vec<audit_entry::ActiveModel>,
    cells: BTreeMap<rollup::Cell, f64>,
}

fn row(list: &mut (Vec<String>, Vec<Value>), values: Vec<Value>) {
    list.0.push(format!("({})", placeholders(values.len())));
    list.1.extend(values);
}

/// Writes checked activities; answers the stored rows in order, or `None` (nothing written)
/// when the data is no longer at `generation`, the one the checks were made against.
async fn write(
    db: &DatabaseConnection,
    pool: &Pool,
    principal: &Principal,
    request: Option<&RequestId>,
    generation: i64,
    checked: &[(usize, Checked)],
) -> Result<Option<Vec<activity::Model>>> {
    if db.get_database_backend() == DbBackend::Postgres {
        write_postgres(db, pool, principal, request, generation, checked).await
    } else {
        write_sqlite(db, pool, principal, request, generation, checked).await
    }
}

/// [`write`] on PostgreSQL: [`POSTGRES_WRITE`] once per chunk, several in one transaction.
async fn write_postgres(
    db: &DatabaseConnection,
    pool: &Pool,
    principal: &Principal,
    request: Option<&RequestId>,
    generation: i64,
    checked: &[(usize, Checked)],
) -> Result<Option<Vec<activity::Model>>> {
    let backend = DbBackend::Postgres;
    let ids = pool.ids.take(db, checked.len()).await?;
    let models = models(principal, checked, &ids);
    let chunks: Vec<Vec<Value>> = checked
        .chunks(CHUNK)
        .zip(models.chunks(CHUNK))
        .map(|(c, m)| postgres_values(principal, request, generation, c, m))
        .collect::<Result<_>>()?;
    // One rollup delta per chunk.
    let deltas = chunks.len();
    let current = |row: Option<sea_orm::QueryResult>| -> Result<bool> {
        Ok(row.map(|r| r.try_get::<bool>("", "current")).transpose()? == Some(true))
    };
    if deltas == 1 {
        let values = chunks.into_iter().next().unwrap_or_default();
        if !current(
            db.query_one_raw(stmt(backend, POSTGRES_WRITE, values))
                .await?,
        )? {
            return Ok(None);
        }
    } else {
        let txn = crate::db::begin_write(db).await?;
        for values in chunks {
            // A stale chunk wrote nothing; the earlier ones roll back with the transaction.
            if !current(
                txn.query_one_raw(stmt(backend, POSTGRES_WRITE, values))
                    .await?,
            )? {
                return Ok(None);
            }
        }
        txn.commit().await?;
    }
    pool.wrote_deltas(db, deltas);
    Ok(Some(models))
}

/// [`write`] on SQLite: multi-row inserts in one write transaction.
async fn write_sqlite(
    db: &DatabaseConnection,
    pool: &Pool,
    principal: &Principal,
    request: Option<&RequestId>,
    generation: i64,
    checked: &[(usize, Checked)],
) -> Result<Option<Vec<activity::Model>>> {
    let backend = DbBackend::Sqlite;
    // SQLite: one write transaction (which also makes the next ids ours to take, and keeps
    // out every other writer, a lock among them, until it ends).
    let txn = crate::db::begin_write(db).await?;
    let row = query(
        &txn,
        "SELECT COALESCE(MAX(id), 0) + 1 AS id, \
         (SELECT n FROM data_generation WHERE id = 1) AS generation FROM activity",
        vec![],
    )
    .await?;
    let row = row
        .first()
        .ok_or_else(|| Error::Internal("no next activity id".into()))?;
    if row.try_get::<i64>("", "generation")? != generation {
        return Ok(None);
    }
    let next: i64 = row.try_get("", "id")?;
    let ids: Vec<i64> = (next..next + checked.len() as i64).collect();
    let models = models(principal, checked, &ids);
    let mut cells = BTreeMap::new();
    for (c, m) in checked.chunks(CHUNK).zip(models.chunks(CHUNK)) {
        let r = rows(principal, request, c, m);
        for (table, list) in [
            (ACTIVITY_INSERT, r.activities),
            (OUTCOME_INSERT, r.outcomes),
        ] {
            if !list.0.is_empty() {
                txn.execute_raw(stmt(
                    backend,
                    &format!("{table} VALUES {}", list.0.join(", ")),
                    list.1,
                ))
                .await?;
            }
        }
        if !r.audit.is_empty() {
            audit_entry::Entity::insert_many(r.audit)
                .exec_without_returning(&txn)
                .await?;
        }
        for (cell, v) in r.cells {
            *cells.entry(cell).or_insert(0.0) += v;
        }
    }
    for c in checked.chunks(CHUNK) {
        let mut values: Vec<Value> = vec![principal.identity().into()];
        values.extend(c.iter().map(|(_, c)| Value::from(c.key.clone())));
        txn.execute_raw(stmt(
            backend,
            &format!("{GUARD} ({})", placeholders(c.len())),
            values,
        ))
        .await?;
    }
    rollup::record(&txn, &cells).await?;
    txn.commit().await?;
    pool.wrote_deltas(db, 1);
    Ok(Some(models))
}

/// An activity's key per submitter (a batch's key is guarded by [`IDEMPOTENCY_KEY`]).
const ACTIVITY_KEY: Unique = Unique {
    name: "ux_activity_key",
    columns: "activity.submitter, activity.idempotency_key",
};

/// Whether a write failed because a key it wrote was stored before, or at the same time.
fn key_taken(e: &sea_orm::DbErr) -> bool {
    ACTIVITY_KEY.violated_by(e) || IDEMPOTENCY_KEY.violated_by(e)
}

const ACTIVITY_INSERT: &str = "INSERT INTO activity (id, team_id, unit_code, kind_code, \
     occurred_on, title, description, participants, households_reached, status, submitted_by, \
     client_id, submitter, created_at, updated_at, idempotency_key, request_hash)";
/// The guard of [`POSTGRES_WRITE`]'s clause `g` on SQLite, for the keys `IN (…)`.
const GUARD: &str = "INSERT INTO idempotency_record (scope, idempotency_key, operation, \
     request_hash, resource_id, created_at) SELECT scope, idempotency_key, operation, \
     request_hash, resource_id, created_at FROM idempotency_record WHERE scope = ? AND \
     idempotency_key IN";
const OUTCOME_INSERT: &str =
    "INSERT INTO activity_outcome (activity_id, service_code, people, households)";

/// The activities as they are stored.
fn models(
    principal: &Principal,
    checked: &[(usize, Checked)],
    ids: &[i64],
) -> Vec<activity::Model> {
    let now = Utc::now();
    checked
        .iter()
        .zip(ids)
        .map(|((_, c), id)| activity::Model {
            id: *id,
            team_id: c.input.team_id,
            unit_code: c.unit_code.clone(),
            kind_code: c.input.kind.clone(),
            occurred_on: c.input.occurred_on,
            title: text::clean(&c.input.title),
            description: c
                .input
                .description
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(text::nfc),
            participants: c.input.participants,
            households_reached: c.input.households_reached,
            status: ActivityStatus::Recorded,
            submitted_by: principal.subject.clone(),
            client_id: principal.client_id.clone(),
            submitter: principal.identity(),
            created_at: now,
            updated_at: now,
            idempotency_key: Some(c.key.clone()),
            request_hash: Some(c.hash.clone()),
        })
        .collect()
}

fn rows(
    principal: &Principal,
    request: Option<&RequestId>,
    checked: &[(usize, Checked)],
    models: &[activity::Model],
) -> Rows {
    let mut r = Rows::default();
    for ((_, c), a) in checked.iter().zip(models) {
        row(
            &mut r.activities,
            vec![
                a.id.into(),
                a.team_id.into(),
                a.unit_code.clone().into(),
                a.kind_code.clone().into(),
                a.occurred_on.into(),
                a.title.clone().into(),
                a.description.clone().into(),
                a.participants.into(),
                a.households_reached.into(),
                a.status.as_str().into(),
                a.submitted_by.clone().into(),
                a.client_id.clone().into(),
                a.submitter.clone().into(),
                a.created_at.into(),
                a.updated_at.into(),
                a.idempotency_key.clone().into(),
                a.request_hash.clone().into(),
            ],
        );
        let outcomes = outcomes_of(c, a);
        for o in &outcomes {
            row(
                &mut r.outcomes,
                vec![
                    o.activity_id.into(),
                    o.service_code.clone().into(),
                    o.people.into(),
                    o.households.into(),
                ],
            );
        }
        r.audit
            .push(audit_change(c, a).entry(principal, request, a.created_at));
        rollup::add(&mut r.cells, a, &outcomes, c.since, &c.cashless, 1.0);
    }
    r
}

/// The PostgreSQL write of a chunk: one statement, every insert a `WITH` clause of it, the
/// rows of each table passed as one JSON array (`json_to_recordset`). The text never changes,
/// so each connection prepares it once; a chunk binds twelve values, however many rows.
///
/// The checks were made against the in-memory copy at data generation `n` (clause `v`): the
/// statement writes only if that is still the current generation, holding the generation row
/// (`FOR KEY SHARE`) until it commits. A lock, which takes that row `FOR UPDATE` before it
/// writes ([`crate::locks::service::take_turn`]), thus either waits for this write to commit
/// or, committed first, has moved the generation: the statement writes nothing and answers
/// `false`, and the submission is checked again against a fresh copy.
///
/// A key can also have been used by another operation (`submitDataValues`, whose keys are
/// idempotency records): clause `g` copies any such record onto itself, which its unique
/// index refuses, so the write fails as on a key an activity holds, and the next round looks
/// the keys up and refuses the item ([`GUARD`] on SQLite).
const POSTGRES_WRITE: &str = "WITH \
v AS (SELECT n = ? AS current FROM data_generation WHERE id = 1 FOR KEY SHARE), \
a AS (INSERT INTO activity (id, team_id, unit_code, kind_code, occurred_on, title, description, \
  participants, households_reached, status, submitted_by, client_id, submitter, created_at, \
  updated_at, idempotency_key, request_hash) \
  SELECT x.id, x.team_id, x.unit_code, x.kind_code, x.occurred_on, x.title, x.description, \
  x.participants, x.households_reached, x.status, x.submitted_by, x.client_id, x.submitter, \
  x.created_at, x.created_at, x.key, x.hash \
  FROM json_to_recordset(?::json) AS x(id bigint, team_id bigint, unit_code text, \
  kind_code text, occurred_on date, title text, description text, participants int, \
  households_reached int, status text, submitted_by text, client_id text, submitter text, \
  created_at timestamptz, key text, hash text) \
  WHERE (SELECT current FROM v) \
  RETURNING submitter, idempotency_key), \
g AS (INSERT INTO idempotency_record (scope, idempotency_key, operation, request_hash, \
  resource_id, created_at) \
  SELECT r.scope, r.idempotency_key, r.operation, r.request_hash, r.resource_id, r.created_at \
  FROM a CROSS JOIN LATERAL (SELECT * FROM idempotency_record \
  WHERE scope = a.submitter AND idempotency_key = a.idempotency_key OFFSET 0) r), \
o AS (INSERT INTO activity_outcome (activity_id, service_code, people, households) \
  SELECT x.activity_id, x.service_code, x.people, x.households \
  FROM json_to_recordset(?::json) AS x(activity_id bigint, service_code text, people int, \
  households int) WHERE (SELECT current FROM v)), \
e AS (INSERT INTO audit_entry (occurred_at, subject, client_id, roles, action, entity_type, \
  entity_id, unit_code, concerns_unit, concerns_from, concerns_to, before, after, request_id) \
  SELECT ?, ?, ?, ?, ?, ?, x.entity_id, x.unit_code, x.unit_code, x.day_from, x.day_to, \
  x.before, x.after, ? \
  FROM json_to_recordset(?::json) AS x(entity_id text, unit_code text, day_from date, \
  day_to date, before json, after json) \
  WHERE (SELECT current FROM v)), \
r AS (INSERT INTO unit_month_delta (cells) SELECT ? WHERE (SELECT current FROM v)) \
SELECT current FROM v";

/// An activity row of [`POSTGRES_WRITE`].
#[derive(serde::Serialize)]
struct ActivityRow<'a> {
    id: i64,
    team_id: i64,
    unit_code: &'a str,
    kind_code: &'a str,
    occurred_on: NaiveDate,
    title: &'a str,
    description: Option<&'a str>,
    participants: Option<i32>,
    households_reached: Option<i32>,
    status: &'a str,
    submitted_by: &'a str,
    client_id: Option<&'a str>,
    submitter: &'a str,
    created_at: chrono::DateTime<Utc>,
    key: &'a str,
    hash: &'a str,
}

/// An audit entry of [`POSTGRES_WRITE`]: the columns of [`Change::entry`] that differ from
/// one entry of a chunk to the next (the statement binds the rest once).
#[derive(serde::Serialize)]
struct AuditRow {
    entity_id: String,
    unit_code: Option<String>,
    day_from: Option<NaiveDate>,
    day_to: Option<NaiveDate>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
}

impl From<Change> for AuditRow {
    fn from(c: Change) -> Self {
        Self {
            entity_id: c.entity_id,
            unit_code: c.unit_code,
            day_from: c.concerns.map(|d| d.0),
            day_to: c.concerns.and_then(|d| d.1),
            before: c.before,
            after: c.after,
        }
    }
}

/// The audit entry of a submission: the activity as stored, with its outcomes.
fn audit_change(c: &Checked, a: &activity::Model) -> Change {
    let mut after = serde_json::to_value(a).unwrap_or_default();
    after["outcomes"] = serde_json::to_value(&c.input.outcomes).unwrap_or_default();
    Change {
        action: AuditAction::SubmitActivity,
        entity_id: ids::global(ids::ACTIVITY, a.id),
        unit_code: Some(a.unit_code.clone()),
        concerns: Some((a.occurred_on, Some(a.occurred_on))),
        before: None,
        after: Some(after),
    }
}

/// Rows as a JSON array.
fn to_json<T: serde::Serialize>(rows: &T) -> Result<String> {
    serde_json::to_string(rows)
        .map_err(|e| Error::Internal(format!("intake rows not written as JSON: {e}")))
}

/// The outcomes of a checked submission as stored for activity `a`.
fn outcomes_of(c: &Checked, a: &activity::Model) -> Vec<activity_outcome::Model> {
    c.input
        .outcomes
        .iter()
        .map(|o| activity_outcome::Model {
            id: 0,
            activity_id: a.id,
            service_code: o.service.clone(),
            people: o.people,
            households: o.households,
        })
        .collect()
}

/// The values of [`POSTGRES_WRITE`] for a chunk.
fn postgres_values(
    principal: &Principal,
    request: Option<&RequestId>,
    generation: i64,
    checked: &[(usize, Checked)],
    models: &[activity::Model],
) -> Result<Vec<Value>> {
    let activities: Vec<ActivityRow> = models
        .iter()
        .map(|a| ActivityRow {
            id: a.id,
            team_id: a.team_id,
            unit_code: &a.unit_code,
            kind_code: &a.kind_code,
            occurred_on: a.occurred_on,
            title: &a.title,
            description: a.description.as_deref(),
            participants: a.participants,
            households_reached: a.households_reached,
            status: a.status.as_str(),
            submitted_by: &a.submitted_by,
            client_id: a.client_id.as_deref(),
            submitter: &a.submitter,
            created_at: a.created_at,
            key: a.idempotency_key.as_deref().unwrap_or_default(),
            hash: a.request_hash.as_deref().unwrap_or_default(),
        })
        .collect();
    // The outcomes as stored (their `id` key is not a column the statement reads), and the
    // rollup cells they and the activities add to.
    let mut outcomes: Vec<activity_outcome::Model> = Vec::new();
    let mut cells = BTreeMap::new();
    for ((_, c), a) in checked.iter().zip(models) {
        let of = outcomes_of(c, a);
        rollup::add(&mut cells, a, &of, c.since, &c.cashless, 1.0);
        outcomes.extend(of);
    }
    let audit: Vec<AuditRow> = checked
        .iter()
        .zip(models)
        .map(|((_, c), a)| audit_change(c, a).into())
        .collect();
    // Every submission adds to some cell (ACTIVITIES at least).
    let delta = rollup::delta_text(&cells).unwrap_or_else(|| "[]".to_owned());
    let now = models.first().map_or_else(Utc::now, |a| a.created_at);
    Ok(vec![
        generation.into(),
        to_json(&activities)?.into(),
        to_json(&outcomes)?.into(),
        now.into(),
        principal.subject.clone().into(),
        principal.client_id.clone().into(),
        principal.roles_label().into(),
        AuditAction::SubmitActivity.as_str().into(),
        AuditAction::SubmitActivity.entity_type().into(),
        request.map(|r| r.0.clone()).into(),
        to_json(&audit)?.into(),
        delta.into(),
    ])
}
