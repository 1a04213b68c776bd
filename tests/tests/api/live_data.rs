//! Routine changes are applied as changes (issue 16, item 1): after every kind of change —
//! teams founded, moved in time and dissolved, memberships added, changed and ended, figures
//! (flows and reference figures) sent and replaced, targets set and cleared, a definition
//! revised, periods locked and unlocked, the activity kinds changed by hand, activities sent
//! and corrected — the indicators equal a cold server's on the same database, on the server
//! that made the change and (PostgreSQL) on a second replica, and neither has loaded its data
//! in full again.
use cnscd_tests::*;
use serde_json::{Value, json};

const CODES: &[&str] = &[
    "CNS01", "CNS02", "CNS03", "CNS04", "CNS05", "CNS06", "CNS07", "CNS08", "CNS09", "CNS10",
    "EG01", "EG02", "DS01",
];

const INDICATORS: &str = "query($c: [String!]!, $u: [String!]!, $g: PeriodGranularity!, $b: UnitBreakdown!) {
  indicators(codes: $c, unitCodes: $u, from: \"2023-01-01\", to: \"2025-12-31\", granularity: $g, breakdown: $b) {
    indicator { code version } unit { code } period { label } value numerator denominator status target } }";

/// Every indicator for the fixture's units by month, quarter and year, themselves and their
/// children (in requests each within the cost limit).
async fn answers(app: &TestApp, address: &str) -> Vec<Value> {
    let units = ["19", "169", "05677", "05692", "05677-01", "05692-01"];
    let mut out = Vec::new();
    for codes in CODES.chunks(2) {
        for (g, b, u) in [
            ("MONTH", "SELF", &units[..]),
            ("QUARTER", "CHILDREN", &units[..3]),
            ("YEAR", "SELF", &units[..]),
            ("YEAR", "CHILDREN", &units[..]),
        ] {
            let r = app
                .gql_at(
                    address,
                    &admin(),
                    INDICATORS,
                    json!({ "c": codes, "u": u, "g": g, "b": b }),
                )
                .await
                .ok();
            out.push(r.body["data"].clone());
        }
    }
    out
}

/// The servers that follow the changes, and the loads each had done when warmed up.
struct Followers {
    servers: Vec<(String, cnscd_api::memory::Store)>,
}

impl Followers {
    /// The server of `app` and, on PostgreSQL, a second replica on the same database.
    async fn start(app: &TestApp) -> Self {
        let mut servers = vec![(app.address.clone(), app.store.clone())];
        if app.test_db.is_postgres() {
            servers.push(app.replica_with_store(|_| {}).await);
        }
        Self { servers }
    }

    /// Every follower answers what a server started now (a cold copy) answers.
    async fn agree(&self, app: &TestApp, after: &str) {
        let (cold, _) = app.replica_with_store(|_| {}).await;
        let expected = answers(app, &cold).await;
        for (address, _) in &self.servers {
            let got = answers(app, address).await;
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    g == e,
                    "after {after}: {address} differs from a cold server in query {i}:\n{}",
                    first_difference(g, e)
                );
            }
        }
    }
}

/// The first value that differs between two answers, for the failure message.
fn first_difference(got: &Value, expected: &Value) -> String {
    let (g, e) = (
        got["indicators"].as_array().cloned().unwrap_or_default(),
        expected["indicators"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    for (a, b) in g.iter().zip(&e) {
        if a != b {
            return format!("got      {a}\nexpected {b}");
        }
    }
    format!("{} values against {}", g.len(), e.len())
}

async fn ok(app: &TestApp, address: &str, query: &str, input: Value, field: &str) -> Value {
    let r = app
        .gql_at(address, &admin(), query, json!({ "i": input }))
        .await
        .ok();
    assert_eq!(
        r.body["data"][field]["userErrors"],
        json!([]),
        "{field}: {}",
        r.body
    );
    r.body["data"][field].clone()
}

/// Submits an activity through `address`; its user error codes (empty when stored).
async fn submit(app: &TestApp, address: &str, team: &str, kind: &str, on: &str) -> Vec<String> {
    let r = app
        .gql_at(
            address,
            &admin(),
            "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { activity { id } userErrors { code } } }",
            json!({ "i": { "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": team, "kind": kind,
                           "occurredOn": on, "title": "Hướng dẫn cài VNeID",
                           "outcomes": [{ "service": "VNEID", "people": 3 }] } }),
        )
        .await
        .ok();
    r.user_error_codes("submitActivity")
}

#[tokio::test]
async fn every_kind_of_change_is_applied_as_a_change_on_every_replica() {
    let app = spawn_app().await;
    let followers = Followers::start(&app).await;
    // The writes go through the first server; on PostgreSQL the second follows.
    let a = app.address.clone();
    let cafe = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    app.add_member(
        &cafe,
        "Nguyễn Văn An",
        "LEADER",
        "HAMLET_HEAD",
        "2022-05-01",
    )
    .await;
    app.submit(&cafe, "COMMUNITY_MEETING", "2024-03-05", json!({}))
        .await;
    // Warm: each server has loaded once.
    followers.agree(&app, "the fixture").await;
    for (_, store) in &followers.servers {
        assert_eq!(store.loads(), 1);
    }

    // Teams: founded, moved in time, dissolved.
    let tdp = app.create_team("05692-01", "Tổ TDP 1", "2024-01-01").await;
    followers.agree(&app, "createTeam").await;
    ok(
        &app,
        &a,
        "mutation($i: UpdateTeamInput!) { updateTeam(input: $i) { userErrors { code message } } }",
        json!({ "teamId": tdp, "foundedOn": "2023-06-01" }),
        "updateTeam",
    )
    .await;
    followers.agree(&app, "updateTeam (founded earlier)").await;
    // Memberships: added, changed, ended.
    let m = app
        .add_member(&tdp, "Trần Thị Lệ", "MEMBER", "YOUTH_UNION", "2023-07-01")
        .await;
    followers.agree(&app, "addMember").await;
    ok(&app, &a, "mutation($i: UpdateMembershipInput!) { updateMembership(input: $i) { userErrors { code message } } }",
        json!({ "membershipId": m, "affiliation": "POLICE" }), "updateMembership").await;
    followers
        .agree(&app, "updateMembership (affiliation)")
        .await;
    ok(&app, &a, "mutation($i: EndMembershipInput!) { endMembership(input: $i) { userErrors { code message } } }",
        json!({ "membershipId": m, "endedOn": "2024-09-30" }), "endMembership").await;
    followers.agree(&app, "endMembership").await;
    ok(&app, &a, "mutation($i: DissolveTeamInput!) { dissolveTeam(input: $i) { userErrors { code message } } }",
        json!({ "teamId": tdp, "dissolvedOn": "2025-03-01" }), "dissolveTeam").await;
    followers.agree(&app, "dissolveTeam").await;

    // Figures: flows by month and reference figures by year, sent and then replaced.
    let figures = |online: f64, population: f64| {
        json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "sourceSystem": "DVCQG", "values": [
            { "element": "DOSSIERS_ONLINE", "unitCode": "05677", "periodStart": "2024-03-01", "periodEnd": "2024-03-31", "value": online },
            { "element": "DOSSIERS_TOTAL", "unitCode": "05677", "periodStart": "2024-03-01", "periodEnd": "2024-03-31", "value": 100.0 },
            { "element": "DOSSIERS_ONLINE", "unitCode": "05677-01", "periodStart": "2024-03-01", "periodEnd": "2024-03-31", "value": 7.0 },
            { "element": "POPULATION", "unitCode": "05677", "periodStart": "2024-01-01", "periodEnd": "2024-12-31", "value": population },
            { "element": "HOUSEHOLDS", "unitCode": "05692", "periodStart": "2024-01-01", "periodEnd": "2024-12-31", "value": 900.0 },
        ] })
    };
    let submit_values = "mutation($i: SubmitDataValuesInput!) { submitDataValues(input: $i) { userErrors { code message } } }";
    ok(
        &app,
        &a,
        submit_values,
        figures(60.0, 4000.0),
        "submitDataValues",
    )
    .await;
    followers.agree(&app, "submitDataValues").await;
    ok(
        &app,
        &a,
        submit_values,
        figures(75.0, 4321.0),
        "submitDataValues",
    )
    .await;
    followers.agree(&app, "submitDataValues (replaced)").await;

    // Targets: set, then cleared.
    let set_target = "mutation($i: SetIndicatorTargetInput!) { setIndicatorTarget(input: $i) { userErrors { code message } } }";
    let target = |t: Value| json!({ "indicator": "CNS05", "unitCode": "05677", "periodStart": "2024-01-01", "periodEnd": "2024-12-31", "target": t });
    ok(
        &app,
        &a,
        set_target,
        target(json!(12.0)),
        "setIndicatorTarget",
    )
    .await;
    followers.agree(&app, "setIndicatorTarget").await;
    ok(
        &app,
        &a,
        set_target,
        target(Value::Null),
        "setIndicatorTarget",
    )
    .await;
    followers.agree(&app, "setIndicatorTarget (cleared)").await;

    // A definition revised from 2025 on.
    ok(&app, &a, "mutation($i: SaveIndicatorDefinitionInput!) { saveIndicatorDefinition(input: $i) { userErrors { code message } } }",
        json!({ "code": "CNS05", "nameVi": "Số hoạt động", "nameEn": "Activities", "numerator": "ACTIVITIES", "validFrom": "2025-01-01" }),
        "saveIndicatorDefinition").await;
    followers.agree(&app, "saveIndicatorDefinition").await;

    // Locks: every follower refuses an activity in a locked month, and takes it once unlocked.
    ok(
        &app,
        &a,
        "mutation($i: LockPeriodInput!) { lockPeriod(input: $i) { userErrors { code message } } }",
        json!({ "unitCode": "05677", "month": "2024-04" }),
        "lockPeriod",
    )
    .await;
    for (address, _) in &followers.servers {
        assert_eq!(
            submit(&app, address, &cafe, "DOOR_TO_DOOR", "2024-04-10").await,
            ["PERIOD_LOCKED"]
        );
    }
    ok(&app, &a, "mutation($i: UnlockPeriodInput!) { unlockPeriod(input: $i) { userErrors { code message } } }",
        json!({ "unitCode": "05677", "month": "2024-04", "reason": "Sửa số liệu" }), "unlockPeriod").await;
    for (address, _) in &followers.servers {
        assert_eq!(
            submit(&app, address, &cafe, "DOOR_TO_DOOR", "2024-04-10").await,
            Vec::<String>::new()
        );
    }
    followers
        .agree(&app, "lockPeriod, unlockPeriod and the activities sent")
        .await;

    // The activity kinds, changed by hand in the database: every follower sees it.
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.db,
        "UPDATE activity_kind SET active = FALSE WHERE code = 'HELP_DESK'",
    )
    .await
    .unwrap();
    for (address, _) in &followers.servers {
        assert!(
            !submit(&app, address, &cafe, "HELP_DESK", "2024-05-10")
                .await
                .is_empty()
        );
    }
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.db,
        "UPDATE activity_kind SET active = TRUE WHERE code = 'HELP_DESK'",
    )
    .await
    .unwrap();
    for (address, _) in &followers.servers {
        assert_eq!(
            submit(&app, address, &cafe, "HELP_DESK", "2024-05-10").await,
            Vec::<String>::new()
        );
    }
    followers.agree(&app, "the activity kinds").await;

    // Nothing above needed a full load.
    for (address, store) in &followers.servers {
        assert_eq!(store.loads(), 1, "{address} loaded its data again");
    }
}

/// Waits until `store` has done `loads` full loads (one loading in the background).
async fn wait_for_loads(store: &cnscd_api::memory::Store, loads: usize) {
    let started = std::time::Instant::now();
    while store.loads() < loads {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no new copy loaded in 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A copy reads each rollup delta once, folded or not, and holds nothing per rollup row: a
/// fold of the deltas into the rows changes no answer and loads nothing; a rollup row written
/// by hand is applied as what it adds; and a copy that has not read as far as deltas pruned
/// since (a server idle through a fold's keeping time) loads anew and then answers as a cold
/// server. Hamlets, whose flows are read from the rows when asked, are in every answer.
#[tokio::test]
async fn folds_change_no_answer_and_a_copy_behind_pruned_deltas_loads_anew() {
    let app = spawn_app().await;
    let followers = Followers::start(&app).await;
    let a = app.address.clone();
    let cafe = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    for on in ["2024-03-05", "2024-03-20", "2025-02-11"] {
        assert_eq!(
            submit(&app, &a, &cafe, "HELP_DESK", on).await,
            Vec::<String>::new()
        );
    }
    followers.agree(&app, "activities (deltas)").await;

    let folded = cnscd_api::activities::rollup::compact(&app.db)
        .await
        .unwrap();
    assert!(folded >= 3, "{folded} deltas folded");
    followers.agree(&app, "a fold").await;
    assert_eq!(
        submit(&app, &a, &cafe, "HELP_DESK", "2024-03-07").await,
        Vec::<String>::new()
    );
    followers.agree(&app, "an activity after the fold").await;

    cnscd_api::db::query(
        &app.db,
        "UPDATE unit_month_fact SET value = value + 3 WHERE unit_code = '05677-01' \
         AND element_code = 'ACTIVITIES' AND month_start = ?",
        vec![date("2024-03-01").into()],
    )
    .await
    .unwrap();
    followers.agree(&app, "a rollup row written by hand").await;

    // An activity every copy reads as a delta, folded (the copies do not look), then its
    // hamlet's row deleted by hand: what the row held counts nowhere.
    assert_eq!(
        submit(&app, &a, &cafe, "HELP_DESK", "2024-05-06").await,
        Vec::<String>::new()
    );
    followers.agree(&app, "an activity in May").await;
    cnscd_api::activities::rollup::compact(&app.db)
        .await
        .unwrap();
    cnscd_api::db::query(
        &app.db,
        "DELETE FROM unit_month_fact WHERE unit_code = '05677-01' AND month_start = ?",
        vec![date("2024-05-01").into()],
    )
    .await
    .unwrap();
    followers
        .agree(&app, "a folded rollup row deleted by hand")
        .await;
    for (address, store) in &followers.servers {
        assert_eq!(store.loads(), 1, "{address} loaded its data again");
    }

    // Activities no follower reads before they are folded and their deltas pruned.
    for on in ["2024-04-01", "2024-04-02"] {
        assert_eq!(
            submit(&app, &a, &cafe, "HELP_DESK", on).await,
            Vec::<String>::new()
        );
    }
    cnscd_api::activities::rollup::compact(&app.db)
        .await
        .unwrap();
    let pruned = cnscd_api::activities::rollup::prune_folded(&app.db, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(pruned >= 2, "{pruned} deltas pruned");
    for (address, store) in &followers.servers {
        // The request that finds the copy behind starts a new one; it answers once loaded.
        app.gql_at(
            address,
            &admin(),
            INDICATORS,
            json!({ "c": ["CNS02"], "u": ["19"], "g": "YEAR", "b": "SELF" }),
        )
        .await
        .ok();
        wait_for_loads(store, 2).await;
    }
    followers
        .agree(&app, "deltas pruned past the copies' marks")
        .await;
}
