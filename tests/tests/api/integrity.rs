//! The database guards integrity itself: foreign keys, closed sets of codes, non-negative
//! counts and date order are refused by the database, whatever code writes the row; and a
//! database at the previous migration, with data, upgrades in place.
use cnscd_api::db::stmt;
use cnscd_migration::{Migrator, MigratorTrait};
use cnscd_tests::*;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Value};
use serde_json::json;

async fn run(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    db.execute_raw(stmt(db.get_database_backend(), sql, values))
        .await
        .map(|r| r.rows_affected())
}

async fn scalar(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Option<String> {
    let row = db
        .query_one_raw(stmt(db.get_database_backend(), sql, values))
        .await
        .unwrap()?;
    row.try_get_by_index::<Option<String>>(0).unwrap()
}

/// Runs a statement that breaks a rule; the database must refuse it, naming the rule (SQLite
/// names CHECK constraints but not foreign keys).
async fn refused(db: &DatabaseConnection, rule: &str, sql: &str, values: Vec<Value>) {
    let err = match run(db, sql, values).await {
        Ok(n) => panic!("`{sql}` broke {rule} and was accepted ({n} rows)"),
        Err(e) => e.to_string(),
    };
    let named = if rule.starts_with("fk_") {
        err.to_lowercase().contains("foreign key")
    } else {
        err.contains(rule)
    };
    assert!(named, "`{sql}` was refused, but not for {rule}: {err}");
}

#[tokio::test]
async fn the_database_refuses_rows_that_break_integrity() {
    let app = spawn_app().await;
    let db = &app.db;
    if !app.test_db.is_postgres() {
        // Every connection of the pool enforces foreign keys.
        for _ in 0..6 {
            let on = db
                .query_one_raw(stmt(
                    db.get_database_backend(),
                    "PRAGMA foreign_keys",
                    vec![],
                ))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(on.try_get_by_index::<i32>(0).unwrap(), 1);
        }
    }
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    app.add_member(&team, "Nguyễn Văn An", "LEADER", "POLICE", "2022-05-01")
        .await;
    app.submit(
        &team,
        "DOOR_TO_DOOR",
        "2024-03-05",
        json!({ "participants": 3, "outcomes": [{ "service": "VNEID", "people": 2 }] }),
    )
    .await;
    let t = "(SELECT MAX(id) FROM team)";
    // A code outside its closed set.
    refused(
        db,
        "ck_team_status",
        "UPDATE team SET status = 'ZOMBIE'",
        vec![],
    )
    .await;
    refused(
        db,
        "ck_membership_role",
        "UPDATE membership SET role = 'BOSS'",
        vec![],
    )
    .await;
    refused(
        db,
        "ck_admin_unit_level",
        "UPDATE admin_unit SET level = 'VILLAGE' WHERE code = '05677-01'",
        vec![],
    )
    .await;
    refused(
        db,
        "ck_activity_status",
        "UPDATE activity SET status = 'DELETED'",
        vec![],
    )
    .await;
    refused(
        db,
        "ck_succession_kind",
        "UPDATE admin_unit_succession SET kind = 'SOME'",
        vec![],
    )
    .await;
    refused(
        db,
        "ck_data_element_source",
        "UPDATE data_element SET source = 'GUESSED'",
        vec![],
    )
    .await;
    refused(
        db,
        "ck_team_dissolved",
        "UPDATE team SET status = 'DISSOLVED'",
        vec![],
    )
    .await;
    // A negative count.
    refused(
        db,
        "ck_activity_participants",
        "UPDATE activity SET participants = -1",
        vec![],
    )
    .await;
    refused(
        db,
        "ck_outcome_people",
        "UPDATE activity_outcome SET people = -5",
        vec![],
    )
    .await;
    // An end before its start.
    refused(
        db,
        "ck_membership_dates",
        "UPDATE membership SET ended_on = ?",
        vec![date("2021-01-01").into()],
    )
    .await;
    refused(
        db,
        "ck_team_dates",
        "UPDATE team SET status = 'DISSOLVED', dissolved_on = ?",
        vec![date("2022-04-30").into()],
    )
    .await;
    refused(
        db,
        "ck_admin_unit_dates",
        "UPDATE admin_unit SET valid_to = ? WHERE code = '05677'",
        vec![date("1999-12-31").into()],
    )
    .await;
    refused(
        db,
        "ck_data_value_period",
        "INSERT INTO data_value (unit_code, element_code, period_start, period_end, value, \
         source_system, submitted_by, submitted_at) VALUES ('05677', 'POPULATION', ?, ?, 1, \
         'test', 'u', ?)",
        vec![
            date("2024-12-31").into(),
            date("2024-01-01").into(),
            chrono::Utc::now().into(),
        ],
    )
    .await;
    // A dangling reference.
    refused(
        db,
        "fk_membership_team",
        "UPDATE membership SET team_id = 987654",
        vec![],
    )
    .await;
    refused(
        db,
        "fk_team_unit",
        &format!("UPDATE team SET unit_code = 'NO-SUCH-UNIT' WHERE id = {t}"),
        vec![],
    )
    .await;
    refused(
        db,
        "fk_activity_kind",
        "UPDATE activity SET kind_code = 'NO_SUCH_KIND'",
        vec![],
    )
    .await;
    refused(
        db,
        "fk_outcome_activity",
        "UPDATE activity_outcome SET activity_id = 987654",
        vec![],
    )
    .await;
    refused(db, "fk_team_unit", "DELETE FROM admin_unit_code", vec![]).await;
    refused(db, "fk_membership_team", "DELETE FROM team", vec![]).await;
    // The good rows are still there and still served.
    let r = app
        .gql(
            &admin(),
            "{ teams { totalCount } activities { totalCount } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(r.at("teams.totalCount"), 1);
    assert_eq!(r.at("activities.totalCount"), 1);
}

/// A database at the previous migration, holding data written the old way, upgrades in place:
/// the rows keep their meaning (the caller identity is filled in from who submitted, old
/// idempotency keys still belong to their caller), the new rules hold, and `down` goes back.
#[tokio::test]
async fn a_database_at_the_previous_migration_upgrades_in_place() {
    let test_db = TestDb::new().await;
    let db = cnscd_api::db::connect(&test_db.url).await.unwrap();
    Migrator::up(&db, Some(1)).await.unwrap();
    cnscd_api::catalog::service::ensure_defaults(&db)
        .await
        .unwrap();
    let now: Value = chrono::Utc::now().into();
    let d = |s: &str| -> Value { date(s).into() };
    for (code, level, parent) in [
        ("19", "PROVINCE", None),
        ("169", "DISTRICT", Some("19")),
        ("05677", "COMMUNE", Some("169")),
    ] {
        run(
            &db,
            "INSERT INTO admin_unit (code, name, name_search, level, parent_code, valid_from, \
             valid_to) VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                code.into(),
                code.into(),
                code.into(),
                level.into(),
                parent.map(str::to_owned).into(),
                d("2000-01-01"),
                d("9999-12-31"),
            ],
        )
        .await
        .unwrap();
    }
    for (anc, desc, depth, level) in [
        ("19", "19", 0, "PROVINCE"),
        ("169", "169", 0, "DISTRICT"),
        ("19", "169", 1, "DISTRICT"),
        ("05677", "05677", 0, "COMMUNE"),
        ("169", "05677", 1, "COMMUNE"),
        ("19", "05677", 2, "COMMUNE"),
    ] {
        run(
            &db,
            "INSERT INTO admin_unit_closure (ancestor_code, descendant_code, valid_from, \
             valid_to, depth, descendant_level) VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                anc.into(),
                desc.into(),
                d("2000-01-01"),
                d("9999-12-31"),
                depth.into(),
                level.into(),
            ],
        )
        .await
        .unwrap();
    }
    run(
        &db,
        "INSERT INTO team (id, code, name, name_search, unit_code, founded_on, status, \
         created_at, updated_at) VALUES (1, 'T1', 'Tổ 1', 'to 1', '05677', ?, 'ACTIVE', ?, ?)",
        vec![d("2022-01-01"), now.clone(), now.clone()],
    )
    .await
    .unwrap();
    run(
        &db,
        "INSERT INTO person (id, full_name, name_search, created_at) VALUES (1, 'An', 'an', ?)",
        vec![now.clone()],
    )
    .await
    .unwrap();
    run(
        &db,
        "INSERT INTO membership (team_id, person_id, role, affiliation, started_on, created_at, \
         updated_at) VALUES (1, 1, 'LEADER', 'POLICE', ?, ?, ?)",
        vec![d("2022-01-01"), now.clone(), now.clone()],
    )
    .await
    .unwrap();
    // Two callers whose old idempotency scopes (`sub|client`) would read alike.
    for (id, sub, client) in [(1, "a|b", Some("c")), (2, "a", Some("b|c")), (3, "v", None)] {
        run(
            &db,
            "INSERT INTO activity (id, team_id, unit_code, kind_code, occurred_on, title, \
             participants, status, submitted_by, client_id, created_at, updated_at) \
             VALUES (?, 1, '05677', 'DOOR_TO_DOOR', ?, 'Old', 4, 'RECORDED', ?, ?, ?, ?)",
            vec![
                id.into(),
                d("2024-03-05"),
                sub.into(),
                client.map(str::to_owned).into(),
                now.clone(),
                now.clone(),
            ],
        )
        .await
        .unwrap();
        run(
            &db,
            "INSERT INTO activity_outcome (activity_id, service_code, people) VALUES (?, 'VNEID', 2)",
            vec![id.into()],
        )
        .await
        .unwrap();
    }
    // Rows the old service wrote took their ids from the sequences, which stand past them.
    if db.get_database_backend() == DbBackend::Postgres {
        for table in ["team", "activity", "activity_outcome"] {
            run(
                &db,
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     (SELECT MAX(id) FROM {table}))"
                ),
                vec![],
            )
            .await
            .unwrap();
        }
    }
    run(
        &db,
        "INSERT INTO idempotency_record (scope, idempotency_key, operation, request_hash, \
         resource_id, created_at) VALUES ('a|b|c', 'k1', 'submitActivity', 'h', 1, ?), \
         ('v|', 'k1', 'submitActivity', 'h', 3, ?)",
        vec![now.clone(), now.clone()],
    )
    .await
    .unwrap();
    run(
        &db,
        "INSERT INTO unit_month_fact (unit_code, element_code, month_start, value) \
         VALUES ('05677', 'ACTIVITIES', ?, 3)",
        vec![d("2024-03-01")],
    )
    .await
    .unwrap();
    // An activity's entries, the later one after a correction moved it to another unit, and a
    // definition's (no unit).
    for (entity, unit) in [
        ("Activity:1", Some("05677")),
        ("Activity:1", Some("169")),
        ("Def", None),
    ] {
        run(
            &db,
            "INSERT INTO audit_entry (occurred_at, subject, roles, action, entity_type, \
             entity_id, unit_code) VALUES (?, 'admin', 'ADMIN', 'change', ?, ?, ?)",
            vec![
                now.clone(),
                entity.split(':').next().unwrap_or_default().into(),
                entity.into(),
                unit.map(str::to_owned).into(),
            ],
        )
        .await
        .unwrap();
    }

    Migrator::up(&db, None).await.unwrap();
    cnscd_api::activities::rollup::rebuild(&db).await.unwrap();
    assert!(
        Migrator::get_pending_migrations(&db)
            .await
            .unwrap()
            .is_empty()
    );
    for (id, sub, client) in [(1, "a|b", Some("c")), (2, "a", Some("b|c")), (3, "v", None)] {
        assert_eq!(
            scalar(
                &db,
                "SELECT submitter FROM activity WHERE id = ?",
                vec![id.into()]
            )
            .await,
            Some(cnscd_api::auth::identity(sub, client))
        );
    }
    // The keys of submissions moved onto their activities (whose submitters are the callers
    // that used them).
    for id in [1, 3] {
        assert_eq!(
            scalar(
                &db,
                "SELECT idempotency_key FROM activity WHERE id = ?",
                vec![id.into()]
            )
            .await,
            Some("k1".to_owned())
        );
    }
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM idempotency_record",
            vec![]
        )
        .await,
        Some("0".to_owned())
    );
    // The rules hold on the upgraded tables, and the indexes came back.
    refused(
        &db,
        "ck_team_status",
        "UPDATE team SET status = 'X'",
        vec![],
    )
    .await;
    refused(
        &db,
        "fk_membership_team",
        "UPDATE membership SET team_id = 5",
        vec![],
    )
    .await;
    let second_leader = run(
        &db,
        "INSERT INTO membership (team_id, person_id, role, affiliation, started_on, created_at, \
         updated_at) VALUES (1, 1, 'LEADER', 'POLICE', ?, ?, ?)",
        vec![d("2023-01-01"), now.clone(), now.clone()],
    )
    .await;
    assert!(
        second_leader.is_err(),
        "the partial unique indexes came back"
    );

    // Every entry of a row takes the unit of the row's latest entry (the row's unit now).
    assert_eq!(
        scalar(
            &db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_entry WHERE entity_id = 'Activity:1' \
             AND concerns_unit = '169'",
            vec![]
        )
        .await,
        Some("2".to_owned())
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT concerns_unit FROM audit_entry WHERE entity_id = 'Def'",
            vec![]
        )
        .await,
        None
    );

    // The service reads the upgraded data: each caller sees its own activity, and an old key
    // still belongs to the caller that used it.
    let settings = cnscd_api::config::Settings::for_tests(&test_db.url, SECRET);
    let verifier = cnscd_api::auth::TokenVerifier::hs256(SECRET, None, None).unwrap();
    let app = cnscd_api::startup::Application::with_database(&settings, verifier, db.clone())
        .await
        .unwrap();
    let address = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let ask = |sub: &str, c: Option<&str>, query: &str, vars: serde_json::Value| {
        let mut claims = claims(sub, &["REPORTER"], &["169"], &[]);
        claims.client_id = c.map(str::to_owned);
        let t = cnscd_api::auth::mint(SECRET, &claims).unwrap();
        let req = client
            .post(format!("{address}/graphql"))
            .bearer_auth(t)
            .json(&json!({ "query": query, "variables": vars }));
        async move {
            req.send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    for (sub, client, id) in [("a|b", Some("c"), 1), ("a", Some("b|c"), 2), ("v", None, 3)] {
        let body = ask(
            sub,
            client,
            "{ activities { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await;
        assert_eq!(body["data"]["activities"]["totalCount"], 1, "{body}");
        let gid = cnscd_api::graphql::ids::encode(cnscd_api::graphql::ids::ACTIVITY, id).0;
        assert_eq!(body["data"]["activities"]["edges"][0]["node"]["id"], gid);
    }
    let reuse = ask(
        "a|b",
        Some("c"),
        "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { replayed userErrors { code } } }",
        json!({ "i": { "idempotencyKey": "k1", "teamId": cnscd_api::graphql::ids::encode(cnscd_api::graphql::ids::TEAM, 1).0,
            "kind": "DOOR_TO_DOOR", "occurredOn": "2024-03-06", "title": "New" } }),
    )
    .await;
    assert_eq!(
        reuse["data"]["submitActivity"]["userErrors"][0]["code"], "IDEMPOTENCY_KEY_REUSED",
        "{reuse}"
    );

    // And back down (past the audit-span, indicator-target, data-generation, rate-limit-bucket,
    // rollup-unit, intake-catalogue, intake-history, rollup-delta, activity-key, intake-storage,
    // audit-concerns-unit, data-change, plan-index, rollup-fold, figure-change-unit,
    // unused-rollup-index, redundant-figure-index, persisted-query, webhook and REST-endpoint
    // migrations that followed): the records and their old scopes return and the rules are gone.
    Migrator::down(&db, Some(21)).await.unwrap();
    assert_eq!(
        scalar(
            &db,
            "SELECT scope FROM idempotency_record WHERE resource_id = 1",
            vec![]
        )
        .await,
        Some("a|b|c".to_owned())
    );
    run(&db, "UPDATE team SET status = 'X'", vec![])
        .await
        .unwrap();
    run(&db, "UPDATE team SET status = 'ACTIVE'", vec![])
        .await
        .unwrap();
    Migrator::up(&db, None).await.unwrap();
}

/// Rebuilding the rollups while activities come in neither loses nor doubles one: the rebuild
/// is one transaction that intake cannot interleave with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollup_rebuild_never_loses_or_doubles_concurrent_intake() {
    let app = std::sync::Arc::new(spawn_app().await);
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let db = app.db.clone();
    let rebuilds = tokio::spawn(async move {
        for _ in 0..10 {
            cnscd_api::activities::rollup::rebuild(&db).await.unwrap();
        }
    });
    let mut clients = Vec::new();
    for c in 0..4 {
        let app = app.clone();
        let team = team.clone();
        clients.push(tokio::spawn(async move {
            for i in 0..8 {
                let on = format!("2024-{:02}-{:02}", 1 + (c * 8 + i) % 12, 1 + i);
                app.submit(&team, "DOOR_TO_DOOR", &on, json!({ "participants": 2 }))
                    .await;
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    rebuilds.await.unwrap();
    // Rollup rows and deltas, before and after folding the deltas in.
    let total = |element: &'static str| {
        let db = app.db.clone();
        async move {
            let cells = cnscd_api::activities::rollup::stored(&db).await.unwrap();
            cells
                .iter()
                .filter(|((unit, e, _), _)| unit == "05677-01" && e == element)
                .map(|(_, v)| v)
                .sum::<f64>()
        }
    };
    assert_eq!(total("ACTIVITIES").await, 32.0);
    assert_eq!(total("PARTICIPANTS").await, 64.0);
    cnscd_api::activities::rollup::compact(&app.db)
        .await
        .unwrap();
    assert_eq!(total("ACTIVITIES").await, 32.0);
    assert_eq!(total("PARTICIPANTS").await, 64.0);
    // And a rebuild from scratch agrees.
    cnscd_api::activities::rollup::rebuild(&app.db)
        .await
        .unwrap();
    assert_eq!(total("ACTIVITIES").await, 32.0);
}

/// Audit entries hold what the database held before each change: under concurrent updates of
/// one team, each entry's `before` is the previous entry's `after` (a request that lost the
/// race is a CONFLICT, not a change recorded against a stale copy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_record_the_stored_values_before_each_change() {
    let app = std::sync::Arc::new(spawn_app().await);
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let update = "mutation($i: UpdateTeamInput!) { updateTeam(input: $i) { team { name } userErrors { code } } }";
    let mut tasks = Vec::new();
    for i in 0..8 {
        let app = app.clone();
        let team = team.clone();
        tasks.push(tokio::spawn(async move {
            app.gql(
                &admin(),
                update,
                json!({ "i": { "teamId": team, "name": format!("Tên {i}") } }),
            )
            .await
        }));
    }
    let mut applied = 0;
    for t in tasks {
        let r = t.await.unwrap();
        let errors = r.user_error_codes("updateTeam");
        if errors.is_empty() && r.status == 200 {
            applied += 1;
        } else {
            let codes = [errors, r.error_codes()].concat();
            assert_eq!(codes, ["CONFLICT"], "{:?}", r.body);
        }
    }
    assert!(applied >= 1);
    let log = "query($id: ID) { auditLog(entityType: \"Team\", entityId: $id, first: 50) { edges { node { action before after } } } }";
    let r = app.gql(&admin(), log, json!({ "id": team })).await.ok();
    let mut entries: Vec<serde_json::Value> = r.at("auditLog.edges").as_array().unwrap().clone();
    entries.reverse();
    assert_eq!(entries.len(), applied + 1, "{entries:?}");
    for pair in entries.windows(2) {
        assert_eq!(
            pair[1]["node"]["before"], pair[0]["node"]["after"],
            "{entries:?}"
        );
    }
    let current = app
        .gql(
            &admin(),
            "query($id: ID!) { team(id: $id) { name } }",
            json!({ "id": team }),
        )
        .await
        .ok();
    assert_eq!(
        entries.last().unwrap()["node"]["after"]["name"],
        *current.at("team.name")
    );

    // A member's name before a change is the stored one, not the new one.
    let m = app
        .add_member(&team, "Trần Thị Lệ", "MEMBER", "YOUTH_UNION", "2023-01-01")
        .await;
    app.gql(
        &admin(),
        "mutation($i: UpdateMembershipInput!) { updateMembership(input: $i) { userErrors { message } } }",
        json!({ "i": { "membershipId": m, "role": "DEPUTY", "person": { "fullName": "Trần Thị Lệ Hằng" } } }),
    )
    .await
    .ok();
    let r = app
        .gql(
            &admin(),
            "{ auditLog(entityType: \"Membership\", first: 1) { edges { node { action before after } } } }",
            json!({}),
        )
        .await
        .ok();
    let e = r.at("auditLog.edges.0.node");
    assert_eq!(e["action"], "updateMembership");
    assert_eq!(e["before"]["fullName"], "Trần Thị Lệ");
    assert_eq!(e["before"]["role"], "MEMBER");
    assert_eq!(e["after"]["fullName"], "Trần Thị Lệ Hằng");
    assert_eq!(e["after"]["role"], "DEPUTY");
}

/// The CHECK constraints and the Rust enums name the same codes: each enum's every code is in
/// its constraint, and a code outside the enum is refused.
#[tokio::test]
async fn check_constraints_and_enums_name_the_same_codes() {
    use cnscd_entity::codes::*;
    let app = spawn_app().await;
    let db = &app.db;
    let pg = app.test_db.is_postgres();
    let definition = |table: &'static str, name: &'static str| async move {
        if pg {
            scalar(
                db,
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = ?",
                vec![name.into()],
            )
            .await
            .unwrap_or_default()
        } else {
            let sql = scalar(
                db,
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                vec![table.into()],
            )
            .await
            .unwrap_or_default();
            let at = sql
                .find(name)
                .unwrap_or_else(|| panic!("{name} not in {sql}"));
            let rest = &sql[at..];
            rest[..rest.find(", CONSTRAINT").unwrap_or(rest.len())].to_owned()
        }
    };
    let sets: Vec<(&str, &str, Vec<&str>)> = vec![
        (
            "team",
            "ck_team_status",
            TeamStatus::ALL.iter().map(|c| c.as_str()).collect(),
        ),
        (
            "membership",
            "ck_membership_role",
            MemberRole::ALL.iter().map(|c| c.as_str()).collect(),
        ),
        (
            "person",
            "ck_person_gender",
            Gender::ALL.iter().map(|c| c.as_str()).collect(),
        ),
        (
            "activity",
            "ck_activity_status",
            ActivityStatus::ALL.iter().map(|c| c.as_str()).collect(),
        ),
        (
            "admin_unit",
            "ck_admin_unit_level",
            UnitLevel::ALL.iter().map(|c| c.as_str()).collect(),
        ),
        (
            "admin_unit_closure",
            "ck_closure_level",
            UnitLevel::ALL.iter().map(|c| c.as_str()).collect(),
        ),
        (
            "admin_unit_succession",
            "ck_succession_kind",
            SuccessionKind::ALL.iter().map(|c| c.as_str()).collect(),
        ),
        (
            "data_element",
            "ck_data_element_source",
            ElementSource::ALL.iter().map(|c| c.as_str()).collect(),
        ),
        (
            "data_element",
            "ck_data_element_aggregation",
            Aggregation::ALL.iter().map(|c| c.as_str()).collect(),
        ),
    ];
    for (table, name, codes) in sets {
        let def = definition(table, name).await;
        let quoted = def.matches('\'').count() / 2;
        for code in &codes {
            assert!(
                def.contains(&format!("'{code}'")),
                "{name} lacks {code}: {def}"
            );
        }
        assert_eq!(quoted, codes.len(), "{name} names other codes: {def}");
    }
}
