//! Flat in the data, checked the way PostgreSQL really runs it (issue 16, item 2).
//!
//! PostgreSQL plans a prepared statement for its values the first five times it runs on a
//! connection, then may switch to a generic plan that knows none of them: a predicate an index
//! serves for the values at hand (`seq >= $1 OR seq = ANY(…)`) can become a read of the whole
//! table, which costs nothing at a few thousand rows and grows with every activity. sqlx
//! prepares every statement on each pooled connection, so a busy service runs the generic
//! plans.
//!
//! The oracle here holds no list of statements: it loads a database whose tables that grow with
//! activities (and with teams, people, figures, clients) hold at least 100,000 rows each, by
//! server-side `INSERT … SELECT … generate_series` (seconds) on top of the unit fixture and
//! some 2,000 units of five more provinces (so that a unit's share of the rows is as small as
//! in a real province), the rollup rows stamped as a rebuild leaves them (one stamp), then
//! `VACUUM ANALYZE`; starts the real server on it with the rate limiter on; records every
//! statement the server runs (sea-orm's metric callback hands over its SQL and values) while
//! representative requests go through HTTP as several roles (every list, page one and the
//! next, indicators and their table, `node`, versions, targets, audit; and the writes: intake
//! single and batched, replays, corrections, voids, figures, locks, targets, teams, members;
//! then an activity alone, after which the in-memory copy catches up); and then, for every
//! distinct statement, does what PostgreSQL does after five executions: on one connection with
//! `plan_cache_mode = force_generic_plan`, `PREPARE` it (with the parameter types sqlx sends)
//! and `EXPLAIN EXECUTE` it with the recorded values (EXPLAIN without ANALYZE runs nothing, so
//! writes are planned, not done).
//!
//! It fails, naming the statement and its plan, on any read of a whole growing table: a
//! sequential scan, or an index scan without an index condition that either has no `Limit`
//! above it or filters on the index's own columns (the old `generations` check, on a vacuumed
//! table: an index-only scan of every stamp). Two kinds are reported instead of failed, each
//! with its reason: a full load of the in-memory copy (`memory::load`, at start and after a
//! catalogue import), and totals over a whole table for a caller whose area is everything (no plan
//! makes a count of every row flat). An ordered index walk under a `Limit` that filters on
//! other columns (ADMIN's newest activities of a status) is reported too: flat while the
//! filter keeps a steady share of the rows.
//!
//! With `--nocapture` it prints what it allowed and why; with `CNSCD_PLANS_KEEP` set it keeps
//! the database and prints its URL, to look at the plans in `psql`.
//!
//! PostgreSQL only: it is about PostgreSQL's planner (SQLite has no generic plans; its
//! statements are checked by the other tests' statement counts).
use cnscd_tests::{Gql, SECRET, TestApp, admin, claims, spawn_app_prepared};
use sea_orm::sea_query::{ArrayType, PostgresQueryBuilder, QueryBuilder};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value as DbValue,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

/// The tables whose rows grow with activities, teams, people, figures or clients: a read of
/// the whole of any of them on a request's path costs more with every row.
const GROWING: &[&str] = &[
    "activity",
    "activity_outcome",
    "activity_version",
    "audit_entry",
    "data_value",
    "data_value_history",
    "idempotency_record",
    "indicator_target",
    "membership",
    "period_lock",
    "person",
    "rate_limit_bucket",
    "team",
    "unit_month_delta",
    "unit_month_fact",
];

/// A full load of the in-memory copy (`memory::load`, at start and after what reshapes
/// everything, such as a unit catalogue import) reads whole tables: allowed, matched exactly
/// (the same tables read for one change carry a `WHERE`, and are checked). Each entry is the
/// statement's SQL and why.
const FULL_LOAD: &[(&str, &str)] = &[
    (
        "SELECT id, unit_code, founded_on, dissolved_on FROM team",
        LOAD,
    ),
    (
        "SELECT team_id, affiliation, started_on, ended_on FROM membership ORDER BY id",
        LOAD,
    ),
    (
        "SELECT unit_code, period_start, period_end FROM period_lock",
        LOAD,
    ),
    (
        "SELECT v.unit_code, v.element_code, v.period_start, v.period_end, v.value, \
         e.aggregation FROM data_value v JOIN data_element e ON e.code = v.element_code \
         ORDER BY v.id",
        LOAD,
    ),
    (
        "SELECT indicator_code, unit_code, period_start, period_end, target \
         FROM indicator_target",
        LOAD,
    ),
];

/// Why a full load reads whole tables.
const LOAD: &str = "a full load of the in-memory copy (at start, and after a unit catalogue \
                    import or a rollup rebuild) reads the table whole; routine changes are \
                    applied as changes, reading only their rows";

/// A total over a whole table: a count (a list's `totalCount`) for a caller whose area is
/// everything (ADMIN), with no condition on who or where (at most on status, kind or days).
/// It reads every row it counts, whatever the plan; only an estimate or a capped count would
/// make it flat, which the API does not offer (yet).
fn whole_table_count(sql: &str) -> bool {
    sql.starts_with("SELECT COUNT(*) AS n FROM ")
        && ![
            "admin_unit_closure",
            "unit_code",
            "submitter",
            "team_id =",
            "team_id IN",
        ]
        .iter()
        .any(|c| sql.contains(c))
}

/// Why a statement may read a whole growing table, if it may.
fn allowance(sql: &str) -> Option<String> {
    if let Some((_, why)) = FULL_LOAD.iter().find(|(f, _)| sql == *f) {
        return Some(format!("a full load: {why}"));
    }
    // The full load of the rollups: every row and delta, with the mark of the same statement.
    if sql.starts_with("SELECT NULL AS unit_code, pg_current_snapshot()::text AS element_code")
        && !sql.contains("WHERE seq")
    {
        return Some("a full load of the rollups (every row and delta)".to_owned());
    }
    whole_table_count(sql).then(|| {
        "a total over the whole table (ADMIN's totalCount): reads every row it counts under \
         any plan"
            .to_owned()
    })
}

/// Synthetic provinces `91`…`95`, each with 100 communes `9PCCC` and three hamlets each
/// (`9PCCC-0H`), in force since records began (the 2025 shape: communes under provinces).
fn synthetic_units() -> String {
    let mut csv = String::from("code,name,type,level,parent_code\n");
    for p in 1..=5 {
        csv.push_str(&format!("9{p},Tỉnh Thử {p},Tỉnh,PROVINCE,\n"));
        for c in 1..=100 {
            csv.push_str(&format!("9{p}{c:03},Xã Thử {p}-{c},Xã,COMMUNE,9{p}\n"));
            for h in 1..=3 {
                csv.push_str(&format!(
                    "9{p}{c:03}-0{h},Thôn Thử {p}-{c}-{h},Thôn,HAMLET,9{p}{c:03}\n"
                ));
            }
        }
    }
    csv
}

/// The bulk load: every growing table past 100,000 rows, spread over the synthetic units.
const FILL: &[&str] = &[
    "CREATE TABLE zz_unit AS SELECT row_number() OVER (ORDER BY code) AS i, code, level \
     FROM admin_unit WHERE code LIKE '9%' AND level IN ('COMMUNE', 'HAMLET')",
    "INSERT INTO person (full_name, name_search, gender, birth_year, phone, email, created_at) \
     SELECT 'Người Thử ' || g, 'nguoi thu ' || g, CASE g % 2 WHEN 0 THEN 'MALE' ELSE 'FEMALE' END, \
     1950 + g % 50, '09' || lpad(g::text, 8, '0'), 'p' || g || '@example.vn', now() \
     FROM generate_series(1, 100000) g",
    "INSERT INTO team (code, name, name_search, unit_code, founded_on, status, created_at, \
     updated_at) \
     SELECT 'S' || g, 'Tổ Thử ' || g, 'to thu ' || g, u.code, DATE '2022-01-01' + g % 365, \
     'ACTIVE', now(), now() \
     FROM generate_series(1, 100000) g JOIN zz_unit u ON u.i = 1 + g % (SELECT count(*) FROM zz_unit)",
    "INSERT INTO membership (team_id, person_id, role, affiliation, started_on, created_at, \
     updated_at) \
     SELECT t.id, p.id, CASE WHEN t.n % 2 = 0 THEN 'LEADER' ELSE 'MEMBER' END, 'VOLUNTEER', \
     t.founded_on, now(), now() \
     FROM (SELECT id, founded_on, row_number() OVER (ORDER BY id) AS n FROM team \
           WHERE code LIKE 'S%') t \
     JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM person) p ON p.n = t.n",
    "INSERT INTO activity (team_id, unit_code, kind_code, occurred_on, title, participants, \
     households_reached, status, submitted_by, client_id, submitter, created_at, updated_at, \
     idempotency_key, request_hash) \
     SELECT t.id, t.unit_code, \
     (ARRAY['COMMUNITY_MEETING', 'DOOR_TO_DOOR', 'HELP_DESK', 'TRAINING', 'ONLINE_GROUP', \
     'OTHER'])[1 + g % 6], DATE '2023-01-01' + g % 1000, 'Hoạt động thử ' || g, 5 + g % 20, \
     g % 10, 'RECORDED', 'reporter-' || g % 2000, 'app', \
     '[\"reporter-' || g % 2000 || '\",\"app\"]', now(), now(), 'key-' || g, 'hash' \
     FROM generate_series(1, 100000) g JOIN team t ON t.code = 'S' || g",
    "INSERT INTO activity_outcome (activity_id, service_code, people, households) \
     SELECT a.id, s.code, 1 + a.id % 7, NULL FROM activity a \
     CROSS JOIN (VALUES ('VNEID')) s(code)",
    "INSERT INTO activity_version (activity_id, version, action, reason, data, changed_by, \
     client_id, changed_at) \
     SELECT id, 1, 'CORRECT', 'sửa', '{}', submitter, 'app', now() FROM activity \
     ORDER BY id LIMIT 100000",
    "INSERT INTO audit_entry (occurred_at, subject, client_id, roles, action, entity_type, \
     entity_id, unit_code, concerns_from, concerns_unit, after) \
     SELECT now() - make_interval(mins => n::int), 'admin-' || n % 50, 'app', 'UNIT_ADMIN', \
     'createTeam', 'Team', id::text, unit_code, founded_on, unit_code, '{}' \
     FROM (SELECT t.*, row_number() OVER (ORDER BY id) AS n FROM team t WHERE code LIKE 'S%') t",
    "INSERT INTO idempotency_record (scope, idempotency_key, operation, request_hash, \
     created_at) \
     SELECT '[\"reporter-' || g % 2000 || '\",\"app\"]', 'dv-' || g, 'submitDataValues', 'hash', \
     now() FROM generate_series(1, 100000) g",
    "INSERT INTO data_value (unit_code, element_code, period_start, period_end, value, \
     source_system, submitted_by, client_id, submitted_at, submitter) \
     SELECT u.code, e.code, m::date, (m + interval '1 month' - interval '1 day')::date, \
     10 + u.i % 90, 'DVCQG', 'reporter-' || u.i % 500, 'app', now(), \
     '[\"reporter-' || u.i % 500 || '\",\"app\"]' \
     FROM zz_unit u CROSS JOIN (SELECT code FROM data_element WHERE source = 'REPORTED' \
     ORDER BY code LIMIT 5) e \
     CROSS JOIN generate_series(DATE '2024-01-01', DATE '2024-10-01', interval '1 month') m",
    "INSERT INTO data_value_history (data_value_id, unit_code, element_code, period_start, \
     period_end, value, source_system, submitted_by, client_id, submitted_at, replaced_at, \
     replaced_by) \
     SELECT id, unit_code, element_code, period_start, period_end, value - 1, source_system, \
     submitted_by, client_id, submitted_at, now(), submitter FROM data_value",
    // Stamped as a rebuild (`seed demo`, or the start-up rebuild) leaves them: every rollup row
    // with the one transaction's id.
    "INSERT INTO unit_month_fact (unit_code, element_code, month_start, value, seq, horizon) \
     SELECT u.code, e.code, m::date, 1 + u.i % 9, x.now - 1, 0 \
     FROM zz_unit u \
     CROSS JOIN (SELECT code FROM data_element WHERE source = 'DERIVED' \
     AND aggregation = 'FLOW' ORDER BY code LIMIT 5) e \
     CROSS JOIN generate_series(DATE '2024-01-01', DATE '2024-10-01', interval '1 month') m \
     CROSS JOIN (SELECT pg_current_xact_id()::text::bigint AS now) x",
    // One delta per write transaction.
    "INSERT INTO unit_month_delta (cells, seq) \
     SELECT '[]', x.now - 1 - g % 5000 FROM generate_series(1, 100000) g \
     CROSS JOIN (SELECT pg_current_xact_id()::text::bigint AS now) x",
    "INSERT INTO rate_limit_bucket (key, tokens, granted, updated_at) \
     SELECT md5(g::text), 10, true, now() FROM generate_series(1, 100000) g",
    "INSERT INTO period_lock (unit_code, period_start, period_end, locked_by, locked_at) \
     SELECT u.code, m::date, (m + interval '1 month' - interval '1 day')::date, 'admin', now() \
     FROM zz_unit u \
     CROSS JOIN generate_series(DATE '2015-01-01', DATE '2019-02-01', interval '1 month') m",
    "INSERT INTO indicator_target (indicator_code, unit_code, period_start, period_end, target, \
     set_by, set_at) \
     SELECT 'CNS05', u.code, m::date, (m + interval '1 month' - interval '1 day')::date, 50, \
     'admin', now() FROM zz_unit u \
     CROSS JOIN generate_series(DATE '2015-01-01', DATE '2019-02-01', interval '1 month') m",
    "DROP TABLE zz_unit",
];

/// Loads the synthetic units and the bulk rows, then fixes the statistics the plans are made
/// from (autovacuum off on the growing tables, so that the test's own writes do not change
/// them halfway).
async fn fill(db: &DatabaseConnection) {
    use cnscd_api::units::import::{Parsed, RECORDS_BEGIN, apply_units, parse};
    let started = Instant::now();
    let Ok(Parsed::Units(units)) = parse(&synthetic_units()) else {
        panic!("bad synthetic units")
    };
    apply_units(db, &units, RECORDS_BEGIN, false).await.unwrap();
    cnscd_api::units::service::rebuild_closure(db)
        .await
        .unwrap();
    // One transaction; without the foreign keys' triggers when the role may turn them off
    // (a superuser, as in CI): every row refers to rows that exist, by construction.
    let txn = db.begin().await.unwrap();
    let superuser = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
        ))
        .await
        .unwrap()
        .is_some_and(|r| r.try_get::<bool>("", "rolsuper").unwrap_or(false));
    if superuser {
        txn.execute_unprepared("SET LOCAL session_replication_role = replica")
            .await
            .unwrap();
    }
    for sql in FILL {
        txn.execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{sql}"));
    }
    txn.commit().await.unwrap();
    for t in GROWING {
        db.execute_unprepared(&format!("ALTER TABLE {t} SET (autovacuum_enabled = false)"))
            .await
            .unwrap();
    }
    db.execute_unprepared("VACUUM ANALYZE").await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT relname::text AS t, reltuples::bigint AS n FROM pg_class \
             WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
        ))
        .await
        .unwrap();
    let sizes: BTreeMap<String, i64> = rows
        .iter()
        .map(|r| (r.try_get("", "t").unwrap(), r.try_get("", "n").unwrap()))
        .collect();
    for t in GROWING {
        let n = sizes.get(*t).copied().unwrap_or(0);
        assert!(n >= 100_000, "{t} holds {n} rows, fewer than 100,000");
    }
    eprintln!(
        "plans: loaded in {:.1} s: {sizes:?}",
        started.elapsed().as_secs_f64()
    );
}

fn token_for(role: &str, units: &[&str], teams: &[&str], sub: &str) -> String {
    cnscd_api::auth::mint(SECRET, &claims(sub, &[role], units, teams)).unwrap()
}

/// Sends a request that must succeed (no error at all, no user error anywhere).
async fn ok(app: &TestApp, token: &str, query: &str, variables: Value) -> Gql {
    let r = app.gql(token, query, variables).await.ok();
    no_user_errors(query, &r);
    r
}

/// Sends a read whose only errors may be FORBIDDEN fields (members' personal data, for roles
/// that may not read it): the rest of it ran.
async fn read(app: &TestApp, token: &str, query: &str, variables: Value) -> Gql {
    let r = app.gql(token, query, variables).await;
    assert!(
        r.status == 200
            && r.error_codes()
                .iter()
                .all(|c| c == "FORBIDDEN" || c == "NOT_FOUND"),
        "unexpected errors for {query}: {} {}",
        r.status,
        r.body
    );
    no_user_errors(query, &r);
    r
}

fn no_user_errors(query: &str, r: &Gql) {
    let text = r.body.to_string();
    assert!(
        !text.contains("\"userErrors\":[{"),
        "user errors for {query}: {text}"
    );
}

const CODES: &str = "[\"CNS01\", \"CNS02\", \"CNS03\", \"CNS04\", \"CNS05\", \"CNS06\", \"CNS07\", \"CNS08\", \"CNS09\", \"CNS10\"]";

fn indicators_query(field: &str, selection: &str) -> String {
    format!(
        "query($u: [String!]!, $g: PeriodGranularity!, $b: UnitBreakdown!) {{ {field}(codes: {CODES}, \
         unitCodes: $u, from: \"2024-01-01\", to: \"2024-12-31\", granularity: $g, breakdown: $b) \
         {{ {selection} }} }}"
    )
}

const TEAMS: &str = "query($after: String, $under: String) { teams(first: 20, after: $after, under: $under) { totalCount pageInfo { endCursor } edges { node { id name memberCount latestActivity { id } members { id role person { fullName phone } } } } } }";
const MEMBERS: &str = "query($after: String, $active: Boolean, $team: ID) { members(first: 20, after: $after, active: $active, teamId: $team) { totalCount pageInfo { endCursor } edges { node { id role person { fullName phone } team { id } } } } }";
const ACTIVITIES: &str = "query($after: String, $under: String, $team: ID, $from: Date, $to: Date, $kind: String) { activities(first: 20, after: $after, under: $under, teamId: $team, from: $from, to: $to, kind: $kind) { totalCount pageInfo { endCursor } edges { node { id title occurredOn unitCode team { id } outcomes { service people } } } } }";
const AUDIT: &str = "query($after: String) { auditLog(first: 40, after: $after) { totalCount pageInfo { endCursor } edges { node { action entityType entityId occurredAt before after } } } }";
const VALUES: &str = "query($after: String, $under: String) { dataValues(first: 40, after: $after, under: $under, from: \"2024-01-01\", to: \"2024-12-31\") { totalCount pageInfo { endCursor } edges { node { unitCode element periodStart value } } } }";
const LOCKS: &str = "query($after: String, $under: String) { periodLocks(first: 40, after: $after, under: $under) { totalCount pageInfo { endCursor } edges { node { unitCode month } } } }";
const TARGETS: &str = "query($u: [String!]!) { indicatorTargets(unitCodes: $u, from: \"2015-01-01\", to: \"2016-12-31\") { indicator unitCode periodStart target } }";
const VERSIONS: &str =
    "query($id: ID!) { activityVersions(activityId: $id) { version changedBy activity } }";
const NODE: &str = "query($id: ID!) { node(id: $id) { id ... on Team { name } ... on Membership { role team { id } person { phone } } ... on Activity { title team { id } } } }";
const CREATE_TEAM: &str = "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id } userErrors { code message } } }";
const ADD_MEMBER: &str = "mutation($i: AddMemberInput!) { addMember(input: $i) { membership { id } userErrors { code message } } }";
const UPDATE_MEMBER: &str = "mutation($i: UpdateMembershipInput!) { updateMembership(input: $i) { membership { id } userErrors { code message } } }";
const SUBMIT: &str = "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { replayed activity { id } userErrors { code message } } }";
const SUBMIT_BATCH: &str = "mutation($i: SubmitActivitiesInput!) { submitActivities(input: $i) { results { activity { id } userErrors { code message } } userErrors { code message } } }";
const CORRECT: &str = "mutation($i: CorrectActivityInput!) { correctActivity(input: $i) { activity { id } userErrors { code message } } }";
const VOID: &str = "mutation($i: VoidActivityInput!) { voidActivity(input: $i) { activity { id } userErrors { code message } } }";
const FIGURES: &str = "mutation($i: SubmitDataValuesInput!) { submitDataValues(input: $i) { replayed values { unitCode } userErrors { code message } } }";
const LOCK: &str = "mutation($i: LockPeriodInput!) { lockPeriod(input: $i) { lock { month } userErrors { code message } } }";
const UNLOCK: &str = "mutation($i: UnlockPeriodInput!) { unlockPeriod(input: $i) { lock { month } userErrors { code message } } }";
const TARGET: &str = "mutation($i: SetIndicatorTargetInput!) { setIndicatorTarget(input: $i) { indicator { code } userErrors { code message } } }";

fn activity_input(team: &str, key: &str, day: &str) -> Value {
    json!({
        "idempotencyKey": key, "teamId": team, "kind": "DOOR_TO_DOOR", "occurredOn": day,
        "title": "Hướng dẫn cài VNeID", "participants": 12, "householdsReached": 5,
        "outcomes": [ { "service": "VNEID", "people": 9, "households": 7 },
                      { "service": "UTILITY_BILL_PAYMENT", "people": 4 } ]
    })
}

/// The reads: every list (first page, and the next one from its cursor), the indicators and
/// their table at three levels, `node`, versions, targets; as `who` (a token).
async fn reads(app: &TestApp, who: &str, area: &str, ids: &[&str], audit: bool, indicators: bool) {
    for (query, vars) in [
        (TEAMS, json!({})),
        (TEAMS, json!({ "under": area })),
        (MEMBERS, json!({})),
        (MEMBERS, json!({ "active": true })),
        (ACTIVITIES, json!({})),
        (
            ACTIVITIES,
            json!({ "under": area, "from": "2024-01-01", "to": "2024-12-31" }),
        ),
        (ACTIVITIES, json!({ "kind": "TRAINING" })),
        (VALUES, json!({})),
        (VALUES, json!({ "under": area })),
        (LOCKS, json!({})),
        (LOCKS, json!({ "under": area })),
    ] {
        let first = read(app, who, query, vars.clone()).await;
        let list = first.body["data"]
            .as_object()
            .and_then(|d| d.values().next());
        if let Some(cursor) = list.and_then(|l| l["pageInfo"]["endCursor"].as_str()) {
            let mut vars = vars;
            vars["after"] = json!(cursor);
            read(app, who, query, vars).await;
        }
    }
    if audit {
        let first = read(app, who, AUDIT, json!({})).await;
        let cursor = first.at("auditLog.pageInfo.endCursor").clone();
        read(app, who, AUDIT, json!({ "after": cursor })).await;
    }
    for (units, breakdown, granularity) in [
        (json!([area]), "SELF", "MONTH"),
        (json!([area]), "CHILDREN", "YEAR"),
    ] {
        if !indicators {
            break;
        }
        let vars = json!({ "u": units, "g": granularity, "b": breakdown });
        read(
            app,
            who,
            &indicators_query(
                "indicators",
                "indicator { code } unit { code } period { label } value status",
            ),
            vars.clone(),
        )
        .await;
        read(
            app,
            who,
            &indicators_query(
                "indicatorTable",
                "codes units periods values statuses targets",
            ),
            vars,
        )
        .await;
    }
    read(app, who, TARGETS, json!({ "u": [area] })).await;
    for id in ids {
        read(app, who, NODE, json!({ "id": id })).await;
    }
}

/// What the requests below leave to look at: global ids.
struct Made {
    team: String,
    membership: String,
    activity: String,
    corrected: String,
}

/// The writes, by the roles that make them: teams and members, intake (single, replayed,
/// batched, atomic), corrections, voids, figures (and a replay), locks, targets.
async fn writes(app: &TestApp, admin: &str, unit_admin: &str, reporter: &str) -> Made {
    let r = ok(
        app,
        admin,
        CREATE_TEAM,
        json!({ "i": { "unitCode": "91001-01", "name": "Tổ đo", "foundedOn": "2023-01-02" } }),
    )
    .await;
    let team = r.at("createTeam.team.id").as_str().unwrap().to_owned();
    let r = ok(
        app,
        unit_admin,
        ADD_MEMBER,
        json!({ "i": { "teamId": team, "person": { "fullName": "Trần Thị Lệ", "phone": "0912345678", "birthYear": 1990 }, "role": "LEADER", "affiliation": "VOLUNTEER", "startedOn": "2023-01-02" } }),
    )
    .await;
    let membership = r.at("addMember.membership.id").as_str().unwrap().to_owned();
    ok(
        app,
        unit_admin,
        UPDATE_MEMBER,
        json!({ "i": { "membershipId": membership, "affiliation": "YOUTH_UNION" } }),
    )
    .await;
    let leader = token_for("TEAM_LEADER", &[], &[&team], "leader-plans");
    let mut activities = Vec::new();
    for (who, key, day) in [
        (admin, "plans-1", "2024-03-04"),
        (reporter, "plans-2", "2024-03-05"),
        (leader.as_str(), "plans-3", "2024-04-06"),
        (unit_admin, "plans-4", "2024-05-07"),
    ] {
        let r = ok(
            app,
            who,
            SUBMIT,
            json!({ "i": activity_input(&team, key, day) }),
        )
        .await;
        activities.push(
            r.at("submitActivity.activity.id")
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // A replay of a stored submission.
    let r = ok(
        app,
        reporter,
        SUBMIT,
        json!({ "i": activity_input(&team, "plans-2", "2024-03-05") }),
    )
    .await;
    assert_eq!(r.at("submitActivity.replayed"), &json!(true));
    for atomic in [false, true] {
        let items: Vec<Value> = (0..5)
            .map(|i| activity_input(&team, &format!("plans-batch-{atomic}-{i}"), "2024-06-10"))
            .collect();
        ok(
            app,
            reporter,
            SUBMIT_BATCH,
            json!({ "i": { "items": items, "atomic": atomic } }),
        )
        .await;
    }
    let corrected = activities[1].clone();
    ok(
        app,
        reporter,
        CORRECT,
        json!({ "i": { "activityId": corrected, "reason": "sai số", "participants": 14, "occurredOn": "2024-03-15", "outcomes": [ { "service": "VNEID", "people": 10 } ] } }),
    )
    .await;
    ok(
        app,
        unit_admin,
        CORRECT,
        json!({ "i": { "activityId": corrected, "reason": "chuyển xã", "unitCode": "91001" } }),
    )
    .await;
    ok(
        app,
        unit_admin,
        VOID,
        json!({ "i": { "activityId": activities[3], "reason": "trùng" } }),
    )
    .await;
    let figures = json!({ "i": { "idempotencyKey": "plans-figures", "sourceSystem": "DVCQG", "values": [
        { "element": "DOSSIERS_ONLINE", "unitCode": "91001", "periodStart": "2025-01-01", "periodEnd": "2025-01-31", "value": 12 },
        { "element": "DOSSIERS_TOTAL", "unitCode": "91001", "periodStart": "2025-01-01", "periodEnd": "2025-01-31", "value": 20 } ] } });
    ok(app, reporter, FIGURES, figures.clone()).await;
    let r = ok(app, reporter, FIGURES, figures).await;
    assert_eq!(r.at("submitDataValues.replayed"), &json!(true));
    // A new figure for the same unit and month replaces the first (kept as history).
    ok(
        app,
        unit_admin,
        FIGURES,
        json!({ "i": { "idempotencyKey": "plans-figures-2", "sourceSystem": "DVCQG", "values": [
            { "element": "DOSSIERS_ONLINE", "unitCode": "91001", "periodStart": "2025-01-01", "periodEnd": "2025-01-31", "value": 13 } ] } }),
    )
    .await;
    ok(
        app,
        unit_admin,
        LOCK,
        json!({ "i": { "unitCode": "91001", "month": "2025-02" } }),
    )
    .await;
    ok(
        app,
        unit_admin,
        UNLOCK,
        json!({ "i": { "unitCode": "91001", "month": "2025-02", "reason": "mở lại" } }),
    )
    .await;
    ok(
        app,
        unit_admin,
        TARGET,
        json!({ "i": { "indicator": "CNS05", "unitCode": "91001", "periodStart": "2025-01-01", "periodEnd": "2025-12-31", "target": 40 } }),
    )
    .await;
    Made {
        team,
        membership,
        activity: activities[0].clone(),
        corrected,
    }
}

/// The type sqlx declares for a value it binds (sea-query-sqlx's `into_arguments`), so that
/// the statement is prepared as the service prepares it.
fn pg_type(v: &DbValue) -> String {
    let scalar = match v {
        DbValue::Bool(_) => "bool",
        DbValue::SmallInt(_) | DbValue::TinyUnsigned(_) => "int2",
        DbValue::Int(_) | DbValue::SmallUnsigned(_) => "int4",
        DbValue::BigInt(_) | DbValue::Unsigned(_) | DbValue::BigUnsigned(_) => "int8",
        DbValue::Float(_) => "float4",
        DbValue::Double(_) => "float8",
        DbValue::String(_) | DbValue::Char(_) | DbValue::Enum(_) => "text",
        DbValue::Bytes(_) => "bytea",
        DbValue::Json(_) => "jsonb",
        DbValue::ChronoDate(_) => "date",
        DbValue::ChronoTime(_) => "time",
        DbValue::ChronoDateTime(_) => "timestamp",
        DbValue::ChronoDateTimeUtc(_)
        | DbValue::ChronoDateTimeLocal(_)
        | DbValue::ChronoDateTimeWithTimeZone(_) => "timestamptz",
        DbValue::Array(t, _) => {
            let element = match t {
                ArrayType::Bool => "bool",
                ArrayType::SmallInt | ArrayType::TinyUnsigned => "int2",
                ArrayType::Int | ArrayType::SmallUnsigned => "int4",
                ArrayType::BigInt | ArrayType::Unsigned | ArrayType::BigUnsigned => "int8",
                ArrayType::Float => "float4",
                ArrayType::Double => "float8",
                ArrayType::String | ArrayType::Char | ArrayType::Enum(_) => "text",
                ArrayType::Bytes => "bytea",
                ArrayType::Json => "jsonb",
                ArrayType::ChronoDate => "date",
                ArrayType::ChronoDateTimeUtc
                | ArrayType::ChronoDateTimeLocal
                | ArrayType::ChronoDateTimeWithTimeZone => "timestamptz",
                _ => return "unknown".into(),
            };
            return format!("{element}[]");
        }
        // Left for the server to infer from the statement.
        _ => "unknown",
    };
    scalar.to_owned()
}

/// Whether PostgreSQL plans the statement (the rest, BEGIN, SET, LISTEN…, has no plan).
fn plannable(sql: &str) -> bool {
    let head = sql.trim_start().trim_start_matches('(').trim_start();
    let word: String = head
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(
        word.as_str(),
        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "WITH" | "VALUES" | "MERGE"
    )
}

/// The columns of every index, by name.
type IndexColumns = BTreeMap<String, Vec<String>>;

async fn index_columns(db: &DatabaseConnection) -> IndexColumns {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.relname::text AS name, pg_get_indexdef(i.indexrelid) AS def \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relnamespace = 'public'::regnamespace",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let def: String = r.try_get("", "def").unwrap();
            let columns = def
                .split_once(" USING ")
                .and_then(|(_, rest)| rest.split_once('('))
                .map(|(_, cols)| cols.trim_end_matches(')').to_owned())
                .unwrap_or_default();
            let columns = columns
                .split(',')
                .filter_map(|c| c.split_whitespace().next())
                .map(|c| c.trim_matches('"').to_owned())
                .collect();
            (r.try_get("", "name").unwrap(), columns)
        })
        .collect()
}

/// What a plan reads of the growing tables.
#[derive(Default)]
struct Reads {
    /// Whole tables: a sequential scan; an index scan with no index condition and no `Limit`
    /// above it; or one that filters on the index's own columns without using them as a
    /// condition (it reads on until it finds enough, every entry when nothing matches, as the
    /// generic plan of the old `generations` did).
    whole: Vec<String>,
    /// Index walks in order under a `Limit`, filtering on other columns: flat while the filter
    /// keeps a steady share of the rows (a status, a kind), not for a rare value.
    walks: Vec<String>,
}

fn plan_reads(node: &Value, limited: bool, indexes: &IndexColumns, out: &mut Reads) {
    let kind = node["Node Type"].as_str().unwrap_or("");
    if let Some(table) = node["Relation Name"].as_str()
        && GROWING.contains(&table)
    {
        let index = node["Index Name"].as_str();
        let what = format!(
            "{kind} on {table}{}",
            index.map(|i| format!(" using {i}")).unwrap_or_default()
        );
        if kind.contains("Seq Scan") {
            out.whole.push(what);
        } else if kind.starts_with("Index") && node.get("Index Cond").is_none() {
            let filter = node["Filter"].as_str();
            let own_columns = filter.is_some_and(|f| {
                let columns = index.and_then(|i| indexes.get(i));
                f.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|word| columns.is_some_and(|cs| cs.iter().any(|c| c == word)))
            });
            if !limited || own_columns {
                out.whole.push(what);
            } else if let Some(f) = filter {
                out.walks.push(format!("{what}, filter {f}"));
            }
        }
    }
    let limited = limited || kind == "Limit";
    for child in node["Plans"].as_array().into_iter().flatten() {
        plan_reads(child, limited, indexes, out);
    }
}

/// The plan PostgreSQL runs the statement with once it has switched to a generic plan: the
/// JSON plan and the text one.
async fn generic_plan(
    db: &DatabaseConnection,
    n: usize,
    stmt: &Statement,
) -> Result<(Value, String), String> {
    let values: Vec<DbValue> = stmt
        .values
        .as_ref()
        .map(|v| v.0.clone())
        .unwrap_or_default();
    let name = format!("cnscd_plan_{n}");
    let types: Vec<String> = values.iter().map(pg_type).collect();
    let prepare = if types.is_empty() {
        format!("PREPARE {name} AS {}", stmt.sql)
    } else {
        format!("PREPARE {name}({}) AS {}", types.join(", "), stmt.sql)
    };
    db.execute_unprepared(&prepare)
        .await
        .map_err(|e| format!("cannot prepare: {e}"))?;
    let literals: Vec<String> = values
        .iter()
        .map(|v| PostgresQueryBuilder.value_to_string(v))
        .collect();
    let execute = if literals.is_empty() {
        format!("EXECUTE {name}")
    } else {
        format!("EXECUTE {name}({})", literals.join(", "))
    };
    let explain = async |format: &str| {
        db.query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("EXPLAIN (FORMAT {format}) {execute}"),
        ))
        .await
        .map_err(|e| format!("cannot explain: {e}"))
    };
    let json = explain("JSON").await.and_then(|rows| {
        rows.first()
            .and_then(|r| r.try_get_by_index::<Value>(0).ok())
            .ok_or_else(|| "no plan".to_owned())
    });
    let text = explain("TEXT").await.map(|rows| {
        rows.iter()
            .filter_map(|r| r.try_get_by_index::<String>(0).ok())
            .collect::<Vec<_>>()
            .join("\n")
    });
    db.execute_unprepared(&format!("DEALLOCATE {name}"))
        .await
        .map_err(|e| e.to_string())?;
    Ok((json?, text?))
}

#[tokio::test]
async fn no_statement_on_a_request_path_scans_a_growing_table_under_a_generic_plan() {
    if !std::env::var("CNSCD_TEST_DATABASE")
        .unwrap_or_default()
        .starts_with("postgres")
    {
        eprintln!(
            "skipped: generic plans are PostgreSQL's (set CNSCD_TEST_DATABASE to a postgres URL)"
        );
        return;
    }
    let started = Instant::now();
    let app = spawn_app_prepared(|s| s.rate_limit_per_minute = 1_000_000, fill).await;
    let admin = admin();
    let unit_admin = token_for("UNIT_ADMIN", &["91001"], &[], "unit-admin-plans");
    let province = token_for("UNIT_ADMIN", &["91"], &[], "province-plans");
    let viewer = token_for("VIEWER", &["92"], &[], "viewer-plans");
    let reporter = token_for("REPORTER", &["91001"], &[], "reporter-plans");
    let old_district = token_for("UNIT_ADMIN", &["169"], &[], "district-plans");

    // SQL text → (where it was first seen, the statement with its values).
    let mut seen: BTreeMap<String, (String, Statement)> = BTreeMap::new();
    let mut keep = |label: &str, statements: Vec<Statement>| {
        for s in statements {
            seen.entry(s.sql.clone())
                .or_insert_with(|| (label.to_owned(), s));
        }
    };

    app.recorder.start();
    let made = writes(&app, &admin, &unit_admin, &reporter).await;
    keep("writes", app.recorder.stop());
    let leader = token_for("TEAM_LEADER", &[], &[&made.team], "leader-plans");
    let ids = [
        made.team.as_str(),
        made.membership.as_str(),
        made.activity.as_str(),
    ];
    // Indicators run the same statements whoever asks (the data generation, and a catch-up
    // after writes): asked by two callers only.
    for (label, who, area, audit, indicators) in [
        ("reads as ADMIN", &admin, "91", true, true),
        (
            "reads as UNIT_ADMIN of a commune",
            &unit_admin,
            "91001",
            true,
            true,
        ),
        (
            "reads as UNIT_ADMIN of a province",
            &province,
            "91",
            false,
            false,
        ),
        ("reads as VIEWER of a province", &viewer, "92", false, false),
        ("reads as REPORTER", &reporter, "91001", false, false),
        ("reads as TEAM_LEADER", &leader, "91001-01", false, false),
        (
            "reads as UNIT_ADMIN of a district gone in 2025",
            &old_district,
            "169",
            true,
            false,
        ),
    ] {
        app.recorder.start();
        let ids: &[&str] = match area {
            "91" | "91001" => &ids,
            _ => &[],
        };
        reads(&app, who, area, ids, audit, indicators).await;
        keep(label, app.recorder.stop());
    }
    app.recorder.start();
    read(&app, &leader, MEMBERS, json!({ "team": made.team })).await;
    read(&app, &leader, ACTIVITIES, json!({ "team": made.team })).await;
    for who in [&admin, &reporter] {
        ok(&app, who, VERSIONS, json!({ "id": made.corrected })).await;
    }
    keep("reads by team, versions", app.recorder.stop());
    // An activity alone changes no table the copy watches: the next request catches up with
    // its rollup delta instead of loading again.
    app.recorder.start();
    ok(
        &app,
        &reporter,
        SUBMIT,
        json!({ "i": activity_input(&made.team, "plans-late", "2024-07-01") }),
    )
    .await;
    ok(
        &app,
        &admin,
        &indicators_query("indicators", "value"),
        json!({ "u": ["91001"], "g": "MONTH", "b": "SELF" }),
    )
    .await;
    keep(
        "an activity, then indicators (the copy catches up)",
        app.recorder.stop(),
    );
    // The paths the issue names are reached (a change that stopped reaching one would
    // otherwise pass unnoticed): the data generation check, the rate-limit charge, intake
    // (single and batched share the statement), figures, corrections, the catch-up, and the
    // rollup rows of hamlets an answer shows.
    for (what, fragment) in [
        (
            "the generation check",
            "FROM data_generation WHERE id = 1 UNION ALL",
        ),
        ("the rate-limit charge", "INSERT INTO rate_limit_bucket"),
        ("intake", "INSERT INTO activity ("),
        ("rollup deltas", "INSERT INTO unit_month_delta"),
        ("figures", "data_value_history"),
        ("corrections", "activity_version"),
        ("the catch-up", "FROM unit_month_delta WHERE seq >= "),
        (
            "the hamlets' rollup rows",
            "FROM unit_month_fact WHERE unit_code = ANY",
        ),
    ] {
        assert!(
            seen.keys().any(|sql| sql.contains(fragment)),
            "no statement of {what} was recorded (`{fragment}`)"
        );
    }
    eprintln!(
        "plans: {} distinct statements recorded after {:.1} s",
        seen.len(),
        started.elapsed().as_secs_f64()
    );

    // One connection, as PostgreSQL plans a statement after its fifth run on it.
    let db = cnscd_api::db::connect_single(&app.test_db.url)
        .await
        .unwrap();
    db.execute_unprepared("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let indexes = index_columns(&db).await;
    let (mut failures, mut known, mut walks) = (Vec::new(), Vec::new(), Vec::new());
    let (mut skipped, mut checked) = (0, 0);
    for (n, (sql, (label, stmt))) in seen.iter().enumerate() {
        if !plannable(sql) {
            skipped += 1;
            continue;
        }
        checked += 1;
        let (plan, text) = match generic_plan(&db, n, stmt).await {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{e}\n  statement ({label}): {sql}"));
                continue;
            }
        };
        let mut found = Reads::default();
        plan_reads(&plan[0]["Plan"], false, &indexes, &mut found);
        if !found.walks.is_empty() {
            walks.push(format!(
                "{}\n  statement ({label}): {sql}",
                found.walks.join(", ")
            ));
        }
        let scans = found.whole;
        if scans.is_empty() {
            continue;
        }
        let report = format!(
            "{}\n  statement ({label}): {sql}\n  values: {:?}\n  generic plan:\n{}",
            scans.join(", "),
            stmt.values.as_ref().map(|v| &v.0),
            text.lines()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        match allowance(sql) {
            Some(why) => known.push(format!("{why}: {report}")),
            None => failures.push(report),
        }
    }
    eprintln!(
        "plans: {checked} statements planned generically, {skipped} without a plan, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if std::env::var("CNSCD_PLANS_KEEP").is_ok() {
        eprintln!("kept: {}", app.test_db.url);
        std::mem::forget(app);
    }
    for k in &known {
        eprintln!("allowed, {k}\n");
    }
    for w in &walks {
        eprintln!("walks an index in order, filtering: {w}\n");
    }
    assert!(
        failures.is_empty(),
        "{} statements scan a growing table under a generic plan:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
