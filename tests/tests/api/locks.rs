//! Period locks: who may lock and unlock, what a lock refuses (submissions, corrections, voids,
//! reported figures), listing, and bad input.
use cnscd_tests::*;
use serde_json::{Value, json};

const LOCK: &str = "mutation($i: LockPeriodInput!) { lockPeriod(input: $i) { lock { id unitCode unit { code } month periodStart periodEnd lockedBy reason } userErrors { field message code } } }";
const UNLOCK: &str = "mutation($i: UnlockPeriodInput!) { unlockPeriod(input: $i) { lock { unitCode month } userErrors { field message code } } }";
const LOCKS: &str = "query($u: String, $f: String, $t: String) { periodLocks(under: $u, from: $f, to: $t) { totalCount edges { node { unitCode month } } } }";
const SUBMIT: &str = "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { activity { id } userErrors { field message code } } }";
const FIGURES: &str = "mutation($i: SubmitDataValuesInput!) { submitDataValues(input: $i) { values { value } userErrors { field message code } } }";
const CORRECT: &str = "mutation($i: CorrectActivityInput!) { correctActivity(input: $i) { activity { occurredOn } userErrors { field message code } } }";
const VOID: &str = "mutation($i: VoidActivityInput!) { voidActivity(input: $i) { activity { status } userErrors { field message code } } }";

fn lock(unit: &str, month: &str) -> Value {
    json!({ "i": { "unitCode": unit, "month": month, "reason": "Báo cáo quý đã gửi" } })
}

fn activity(team: &str, key: &str, on: &str) -> Value {
    json!({ "i": { "idempotencyKey": key, "teamId": team, "kind": "COMMUNITY_MEETING", "occurredOn": on, "title": "Họp thôn" } })
}

fn figures(key: &str, start: &str, end: &str) -> Value {
    json!({ "i": { "idempotencyKey": key, "sourceSystem": "DVCQG", "values": [
        { "element": "DOSSIERS_TOTAL", "unitCode": "05677", "periodStart": start, "periodEnd": end, "value": 12 } ] } })
}

fn unit_admin() -> String {
    token(&["UNIT_ADMIN"], &["169"], &[])
}

#[tokio::test]
async fn a_locked_month_refuses_submissions_corrections_voids_and_figures_until_unlocked() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let march = app
        .submit(&team, "COMMUNITY_MEETING", "2024-03-05", json!({}))
        .await;
    let april = app
        .submit(&team, "COMMUNITY_MEETING", "2024-04-05", json!({}))
        .await;

    let r = app
        .gql(&unit_admin(), LOCK, lock("169", "2024-03"))
        .await
        .ok();
    assert_eq!(r.at("lockPeriod.userErrors"), &json!([]), "{}", r.body);
    assert_eq!(r.at("lockPeriod.lock.month"), "2024-03");
    assert_eq!(r.at("lockPeriod.lock.periodStart"), "2024-03-01");
    assert_eq!(r.at("lockPeriod.lock.periodEnd"), "2024-03-31");
    assert_eq!(r.at("lockPeriod.lock.unit.code"), "169");
    assert_eq!(r.at("lockPeriod.lock.reason"), "Báo cáo quý đã gửi");

    // Every kind of change to a day of March under 169 is refused, naming the unit and month.
    let refused = |r: &Gql, field: &str| {
        let e = &r.body["data"][field]["userErrors"][0];
        assert_eq!(e["code"], "PERIOD_LOCKED", "{}", r.body);
        let m = e["message"].as_str().unwrap();
        assert!(m.contains("2024-03") && m.contains("169"), "{m}");
    };
    let r = app
        .gql(&admin(), SUBMIT, activity(&team, "m", "2024-03-20"))
        .await
        .ok();
    refused(&r, "submitActivity");
    let r = app
        .gql(
            &admin(),
            CORRECT,
            json!({ "i": { "activityId": march, "reason": "sai ngày", "title": "Họp" } }),
        )
        .await
        .ok();
    refused(&r, "correctActivity");
    // Moving an open activity into the locked month is refused too.
    let r = app
        .gql(&admin(), CORRECT, json!({ "i": { "activityId": april, "reason": "sai ngày", "occurredOn": "2024-03-30" } }))
        .await
        .ok();
    refused(&r, "correctActivity");
    let r = app
        .gql(
            &admin(),
            VOID,
            json!({ "i": { "activityId": march, "reason": "trùng" } }),
        )
        .await
        .ok();
    refused(&r, "voidActivity");
    // A figure whose period overlaps the month (a quarter, a year) is refused; April is open.
    for (start, end) in [
        ("2024-03-01", "2024-03-31"),
        ("2024-01-01", "2024-03-31"),
        ("2024-01-01", "2024-12-31"),
    ] {
        let r = app
            .gql(
                &admin(),
                FIGURES,
                figures(&format!("f{start}{end}"), start, end),
            )
            .await
            .ok();
        refused(&r, "submitDataValues");
        assert_eq!(
            r.at("submitDataValues.userErrors.0.field"),
            &json!(["values", "0", "periodStart"])
        );
    }
    let r = app
        .gql(
            &admin(),
            FIGURES,
            figures("april", "2024-04-01", "2024-04-30"),
        )
        .await
        .ok();
    assert_eq!(
        r.at("submitDataValues.userErrors"),
        &json!([]),
        "{}",
        r.body
    );
    let r = app
        .gql(&admin(), SUBMIT, activity(&team, "a", "2024-04-20"))
        .await
        .ok();
    assert_eq!(r.at("submitActivity.userErrors"), &json!([]));
    // Units outside the locked subtree are open.
    let other = app
        .create_team("05659-01", "Tổ Chùa Hang", "2022-01-01")
        .await;
    let r = app
        .gql(&admin(), SUBMIT, activity(&other, "o", "2024-03-20"))
        .await
        .ok();
    assert_eq!(r.at("submitActivity.userErrors"), &json!([]));

    // Unlocking needs a reason and the unit the lock was set on.
    let r = app
        .gql(
            &unit_admin(),
            UNLOCK,
            json!({ "i": { "unitCode": "169", "month": "2024-03", "reason": " " } }),
        )
        .await
        .ok();
    assert_eq!(
        r.at("unlockPeriod.userErrors.0.field"),
        &json!(["input", "reason"])
    );
    let r = app
        .gql(
            &unit_admin(),
            UNLOCK,
            json!({ "i": { "unitCode": "05677", "month": "2024-03", "reason": "sửa số liệu" } }),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("unlockPeriod"), ["NOT_FOUND"]);
    let r = app
        .gql(
            &unit_admin(),
            UNLOCK,
            json!({ "i": { "unitCode": "169", "month": "2024-03", "reason": "sửa số liệu" } }),
        )
        .await
        .ok();
    assert_eq!(r.at("unlockPeriod.userErrors"), &json!([]), "{}", r.body);
    assert_eq!(r.at("unlockPeriod.lock.month"), "2024-03");
    let r = app
        .gql(
            &admin(),
            VOID,
            json!({ "i": { "activityId": march, "reason": "trùng" } }),
        )
        .await
        .ok();
    assert_eq!(r.at("voidActivity.activity.status"), "VOIDED", "{}", r.body);

    // Both changes are audited, the unlock with its reason.
    let r = app
        .gql(&admin(), "{ auditLog(entityType: \"PeriodLock\") { edges { node { action subject unitCode before after } } } }", json!({}))
        .await
        .ok();
    let actions: Vec<&str> = r
        .at("auditLog.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"lockPeriod") && actions.contains(&"unlockPeriod"),
        "{actions:?}"
    );
    let unlock = r
        .at("auditLog.edges")
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["action"] == "unlockPeriod")
        .unwrap();
    assert_eq!(unlock["node"]["after"]["reason"], "sửa số liệu");
    assert_eq!(unlock["node"]["before"]["unit_code"], "169");
}

#[tokio::test]
async fn only_admins_of_the_area_lock_and_bad_input_is_named() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    for t in [
        token(&["REPORTER"], &["169"], &[]),
        token(&["VIEWER"], &["169"], &[]),
        token(&["TEAM_LEADER"], &[], &[&team]),
    ] {
        let r = app.gql(&t, LOCK, lock("05677", "2024-05")).await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"], "{}", r.body);
    }
    // A unit admin elsewhere, and one of the ceased district after it ceased.
    let r = app
        .gql(
            &token(&["UNIT_ADMIN"], &["164"], &[]),
            LOCK,
            lock("05677", "2024-05"),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("lockPeriod"), ["FORBIDDEN"]);
    let r = app
        .gql(&unit_admin(), LOCK, lock("05692", "2025-08"))
        .await
        .ok();
    assert_eq!(r.user_error_codes("lockPeriod"), ["FORBIDDEN"]);
    let cases = [
        (lock("05677", "2024-5"), "month"),
        (lock("05677", "2024-13"), "month"),
        (lock("05677", "May 2024"), "month"),
        (lock("05677", "2099-01"), "month"),
        (lock("nowhere", "2024-05"), "unitCode"),
        (lock("05677", "2025-08"), "unitCode"),
        (
            json!({ "i": { "unitCode": "05677", "month": "2024-05", "reason": "x".repeat(501) } }),
            "reason",
        ),
    ];
    for (input, field) in cases {
        let r = app.gql(&admin(), LOCK, input).await.ok();
        assert_eq!(
            r.at("lockPeriod.userErrors.0.field"),
            &json!(["input", field]),
            "{}",
            r.body
        );
        assert_eq!(r.at("lockPeriod.userErrors.0.code"), "VALIDATION");
    }
    let r = app
        .gql(&unit_admin(), LOCK, lock("05677", "2024-05"))
        .await
        .ok();
    assert_eq!(r.at("lockPeriod.userErrors"), &json!([]));
    let r = app.gql(&admin(), LOCK, lock("05677", "2024-05")).await.ok();
    assert_eq!(r.user_error_codes("lockPeriod"), ["CONFLICT"]);
    // Unlocking: the same rights.
    let unlock = json!({ "i": { "unitCode": "05677", "month": "2024-05", "reason": "mở lại" } });
    let r = app
        .gql(
            &token(&["UNIT_ADMIN"], &["164"], &[]),
            UNLOCK,
            unlock.clone(),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("unlockPeriod"), ["FORBIDDEN"]);
    let r = app
        .gql(&token(&["REPORTER"], &["169"], &[]), UNLOCK, unlock)
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
}

#[tokio::test]
async fn period_locks_lists_locks_in_the_area_with_filters() {
    let app = spawn_app().await;
    for (unit, month) in [
        ("169", "2024-01"),
        ("05677-01", "2024-02"),
        ("05659", "2024-03"),
        ("19", "2024-04"),
    ] {
        let r = app.gql(&admin(), LOCK, lock(unit, month)).await.ok();
        assert_eq!(r.at("lockPeriod.userErrors"), &json!([]), "{}", r.body);
    }
    let list = |t: String, vars: Value| {
        let app = &app;
        async move {
            let r = app.gql(&t, LOCKS, vars).await.ok();
            r.at("periodLocks.edges")
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    format!(
                        "{}@{}",
                        e["node"]["unitCode"].as_str().unwrap(),
                        e["node"]["month"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(admin(), json!({})).await,
        [
            "19@2024-04",
            "05659@2024-03",
            "05677-01@2024-02",
            "169@2024-01"
        ]
    );
    assert_eq!(
        list(admin(), json!({ "u": "169" })).await,
        ["05677-01@2024-02", "169@2024-01"]
    );
    assert_eq!(
        list(admin(), json!({ "f": "2024-02", "t": "2024-03" })).await,
        ["05659@2024-03", "05677-01@2024-02"]
    );
    // In the area only.
    assert_eq!(
        list(token(&["VIEWER"], &["164"], &[]), json!({})).await,
        ["05659@2024-03"]
    );
    assert_eq!(
        list(token(&["REPORTER"], &["05677"], &[]), json!({})).await,
        ["05677-01@2024-02"]
    );
    // A lock is found again by its global id, in the area only.
    let r = app
        .gql(
            &admin(),
            "{ periodLocks(under: \"05659\") { edges { node { id } } } }",
            json!({}),
        )
        .await
        .ok();
    let id = r
        .at("periodLocks.edges.0.node.id")
        .as_str()
        .unwrap()
        .to_owned();
    let node = "query($id: ID!) { node(id: $id) { ... on PeriodLock { unitCode month } } }";
    let r = app
        .gql(
            &token(&["VIEWER"], &["164"], &[]),
            node,
            json!({ "id": id }),
        )
        .await
        .ok();
    assert_eq!(r.at("node.unitCode"), "05659");
    let r = app
        .gql(
            &token(&["VIEWER"], &["169"], &[]),
            node,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(r.error_codes(), ["NOT_FOUND"]);
    let r = app.gql(&admin(), LOCKS, json!({ "f": "2024-5" })).await;
    assert_eq!(r.error_codes(), ["VALIDATION"]);
    let r = app
        .gql(&admin(), LOCKS, json!({ "f": "2024-05", "t": "2024-01" }))
        .await;
    assert_eq!(r.error_codes(), ["VALIDATION"]);
    let r = app
        .gql(&token(&["TEAM_LEADER"], &[], &[]), LOCKS, json!({}))
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
}

/// A submission checked before a lock committed, and written after, must not slip into the
/// locked month: it waits for the lock's transaction, finds the data changed since its checks
/// and is checked again (PERIOD_LOCKED). The lock is held open by hand, as `lockPeriod` holds
/// it between taking its turn and committing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_racing_a_lock_does_not_slip_into_the_locked_month() {
    use sea_orm::{ActiveModelTrait, ConnectionTrait};
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    // The service's copy is current before the lock begins.
    app.submit(&team, "COMMUNITY_MEETING", "2024-03-04", json!({}))
        .await;

    let txn = cnscd_api::db::begin_write(&app.db).await.unwrap();
    cnscd_api::locks::service::take_turn(&txn).await.unwrap();
    period_lock("169", "2024-03-01", "2024-03-31")
        .insert(&*txn)
        .await
        .unwrap();

    let commit_when_waited_for = async {
        if app.test_db.is_postgres() {
            // Until the submission's write waits for the lock's transaction.
            let mut waited = false;
            for _ in 0..500 {
                let row = app
                    .db
                    .query_one_raw(sea_orm::Statement::from_string(
                        app.db.get_database_backend(),
                        "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = \
                         current_database() AND wait_event_type = 'Lock' \
                         AND query LIKE '%INSERT INTO activity%'",
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                if row.try_get::<i64>("", "n").unwrap() > 0 {
                    waited = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert!(waited, "the submission never waited for the lock");
        } else {
            // SQLite shows no waiters: time enough for the submission to be checked and to
            // queue for the writer's turn.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        txn.commit().await.unwrap();
    };
    let token = unit_admin();
    let (r, ()) = tokio::join!(
        app.gql(&token, SUBMIT, activity(&team, "racing", "2024-03-20")),
        commit_when_waited_for
    );
    let r = r.ok();
    assert_eq!(
        r.user_error_codes("submitActivity"),
        ["PERIOD_LOCKED"],
        "{}",
        r.body
    );
    let r = app
        .gql(&admin(), "{ activities { totalCount } }", json!({}))
        .await
        .ok();
    assert_eq!(r.at("activities.totalCount"), 1, "{}", r.body);
}
