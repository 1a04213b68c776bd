//! Corrections and voids: indicators move with them at once, earlier versions are kept, who may
//! make them, and bad input.
use cnscd_tests::*;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const CORRECT: &str = "mutation($i: CorrectActivityInput!) { correctActivity(input: $i) { activity { id kind occurredOn unitCode title description participants householdsReached status outcomes { service people } } userErrors { field message code } } }";
const VOID: &str = "mutation($i: VoidActivityInput!) { voidActivity(input: $i) { activity { id status } userErrors { field message code } } }";
const FIGURES: &str = "query($u: [String!]!) { indicators(codes: [\"CNS05\", \"CNS07\"], unitCodes: $u, from: \"2024-01-01\", to: \"2024-06-30\", granularity: MONTH) { indicator { code } unit { code } period { label } value } }";

/// The figure of `code` for `unit` in `month` (no data counts as 0).
fn figure(rows: &Gql, code: &str, unit: &str, month: &str) -> f64 {
    rows.at("indicators")
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["indicator"]["code"] == code
                && r["unit"]["code"] == unit
                && r["period"]["label"] == month
        })
        .unwrap_or_else(|| panic!("no {code} {unit} {month}: {}", rows.body))["value"]
        .as_f64()
        .unwrap_or(0.0)
}

async fn figures(app: &TestApp) -> Gql {
    app.gql(
        &admin(),
        FIGURES,
        json!({ "u": ["05677-01", "05677", "169"] }),
    )
    .await
    .ok()
}

async fn versions(app: &TestApp) -> i64 {
    app.db
        .query_one_raw(sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM activity_version",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

fn correct(id: &str, change: Value) -> Value {
    let mut i = json!({ "activityId": id, "reason": "Nhập nhầm ngày" });
    i.as_object_mut()
        .unwrap()
        .extend(change.as_object().unwrap().clone());
    json!({ "i": i })
}

fn void(id: &str) -> Value {
    json!({ "i": { "activityId": id, "reason": "Nhập trùng" } })
}

#[tokio::test]
async fn a_correction_moves_its_figures_from_the_old_month_and_unit_to_the_new_at_once() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let id = app
        .submit(
            &team,
            "COMMUNITY_MEETING",
            "2024-03-05",
            json!({ "participants": 20, "outcomes": [ { "service": "ONLINE_PUBLIC_SERVICE", "people": 7 } ] }),
        )
        .await;
    let before = figures(&app).await;
    assert_eq!(figure(&before, "CNS05", "05677-01", "2024-03"), 1.0);
    assert_eq!(figure(&before, "CNS07", "05677", "2024-03"), 7.0);
    let replica = app.replica().await;

    // To May, recorded at the commune, with other outcomes.
    let r = app
        .gql(
            &admin(),
            CORRECT,
            correct(&id, json!({ "occurredOn": "2024-05-10", "unitCode": "05677", "outcomes": [ { "service": "ONLINE_PUBLIC_SERVICE", "people": 9 } ], "description": "Họp tại nhà văn hóa" })),
        )
        .await
        .ok();
    assert_eq!(r.at("correctActivity.userErrors"), &json!([]), "{}", r.body);
    assert_eq!(r.at("correctActivity.activity.occurredOn"), "2024-05-10");
    assert_eq!(r.at("correctActivity.activity.unitCode"), "05677");
    assert_eq!(r.at("correctActivity.activity.participants"), 20, "kept");
    assert_eq!(
        r.at("correctActivity.activity.title"),
        "Hướng dẫn cài VNeID",
        "kept"
    );
    assert_eq!(r.at("correctActivity.activity.outcomes.0.people"), 9);
    for address in [app.address.clone(), replica] {
        let after = app
            .gql_at(
                &address,
                &admin(),
                FIGURES,
                json!({ "u": ["05677-01", "05677", "169"] }),
            )
            .await
            .ok();
        assert_eq!(figure(&after, "CNS05", "05677-01", "2024-03"), 0.0);
        assert_eq!(figure(&after, "CNS05", "05677", "2024-03"), 0.0);
        assert_eq!(figure(&after, "CNS07", "169", "2024-03"), 0.0);
        // The hamlet no longer counts it: it happened at the commune.
        assert_eq!(figure(&after, "CNS05", "05677-01", "2024-05"), 0.0);
        assert_eq!(figure(&after, "CNS05", "05677", "2024-05"), 1.0);
        assert_eq!(figure(&after, "CNS07", "05677", "2024-05"), 9.0);
        assert_eq!(figure(&after, "CNS07", "169", "2024-05"), 9.0);
    }
    // Null clears an optional field; left out keeps it.
    let r = app
        .gql(
            &admin(),
            CORRECT,
            correct(&id, json!({ "description": null, "participants": null })),
        )
        .await
        .ok();
    assert!(
        r.at("correctActivity.activity.description").is_null(),
        "{}",
        r.body
    );
    assert!(r.at("correctActivity.activity.participants").is_null());
    assert_eq!(r.at("correctActivity.activity.occurredOn"), "2024-05-10");
    assert_eq!(versions(&app).await, 2);
    // The earlier versions, oldest first, for whoever may read the activity.
    let q = "query($id: ID!) { activityVersions(activityId: $id) { version endedBy reason changedBy activity } }";
    let r = app
        .gql(&token(&["VIEWER"], &["169"], &[]), q, json!({ "id": id }))
        .await
        .ok();
    assert_eq!(r.at("activityVersions.0.version"), 1);
    assert_eq!(r.at("activityVersions.0.endedBy"), "CORRECT");
    assert_eq!(r.at("activityVersions.0.reason"), "Nhập nhầm ngày");
    assert_eq!(
        r.at("activityVersions.0.activity.occurred_on"),
        "2024-03-05"
    );
    assert_eq!(r.at("activityVersions.0.activity.outcomes.0.people"), 7);
    assert_eq!(
        r.at("activityVersions.1.activity.occurred_on"),
        "2024-05-10"
    );
    assert_eq!(
        r.at("activityVersions.1.activity.description"),
        "Họp tại nhà văn hóa"
    );
    let r = app
        .gql(&token(&["VIEWER"], &["164"], &[]), q, json!({ "id": id }))
        .await;
    assert_eq!(r.error_codes(), ["NOT_FOUND"]);
    let r = app.gql(&admin(), q, json!({ "id": "nope" })).await;
    assert_eq!(r.error_codes(), ["VALIDATION"]);

    // The activity moved with its day and unit for reading too (area.md).
    let r = app
        .gql(
            &admin(),
            "query($id: ID!) { node(id: $id) { ... on Activity { occurredOn unitCode } } }",
            json!({ "id": id }),
        )
        .await
        .ok();
    assert_eq!(r.at("node.occurredOn"), "2024-05-10");
    // Audited with before and after.
    let r = app
        .gql(&admin(), "query($id: ID!) { auditLog(entityId: $id) { edges { node { action before after } } } }", json!({ "id": id }))
        .await
        .ok();
    let entries = r.at("auditLog.edges").as_array().unwrap();
    let first = entries
        .iter()
        .find(|e| {
            e["node"]["action"] == "correctActivity"
                && e["node"]["before"]["occurred_on"] == "2024-03-05"
        })
        .unwrap_or_else(|| panic!("{}", r.body));
    assert_eq!(first["node"]["after"]["occurred_on"], "2024-05-10");
    assert_eq!(first["node"]["after"]["reason"], "Nhập nhầm ngày");
    assert_eq!(first["node"]["before"]["outcomes"][0]["people"], 7);
}

#[tokio::test]
async fn a_void_removes_the_activity_from_lists_and_indicators_and_keeps_it_readable() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let id = app
        .submit(
            &team,
            "COMMUNITY_MEETING",
            "2024-03-05",
            json!({ "outcomes": [ { "service": "ONLINE_PUBLIC_SERVICE", "people": 7 } ] }),
        )
        .await;
    app.submit(&team, "COMMUNITY_MEETING", "2024-03-06", json!({}))
        .await;
    let r = app.gql(&admin(), VOID, void(&id)).await.ok();
    assert_eq!(r.at("voidActivity.userErrors"), &json!([]), "{}", r.body);
    assert_eq!(r.at("voidActivity.activity.status"), "VOIDED");
    let after = figures(&app).await;
    assert_eq!(figure(&after, "CNS05", "05677-01", "2024-03"), 1.0);
    assert_eq!(figure(&after, "CNS07", "169", "2024-03"), 0.0);
    let r = app
        .gql(&admin(), "{ a: activities { totalCount } v: activities(status: VOIDED) { totalCount edges { node { id } } } }", json!({}))
        .await
        .ok();
    assert_eq!(r.at("a.totalCount"), 1);
    assert_eq!(r.at("v.totalCount"), 1);
    assert_eq!(r.at("v.edges.0.node.id"), id.as_str());
    // A voided activity changes no more; a second void is refused too.
    let r = app.gql(&admin(), VOID, void(&id)).await.ok();
    assert_eq!(r.user_error_codes("voidActivity"), ["CONFLICT"]);
    let r = app
        .gql(&admin(), CORRECT, correct(&id, json!({ "title": "Khác" })))
        .await
        .ok();
    assert_eq!(r.user_error_codes("correctActivity"), ["CONFLICT"]);
    assert_eq!(versions(&app).await, 1);
    // A rebuild of the rollups from the raw rows agrees with what the void left.
    cnscd_api::activities::rollup::rebuild(&app.db)
        .await
        .unwrap();
    let rebuilt = figures(&app).await;
    assert_eq!(rebuilt.at("indicators"), after.at("indicators"));
}

#[tokio::test]
async fn who_may_correct_or_void_an_activity() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let other_team = app.create_team("05692-01", "Tổ 1", "2022-05-01").await;
    let submitter = token(&["REPORTER"], &["05677"], &[]);
    let submitted = |key: &str| json!({ "i": { "idempotencyKey": key, "teamId": team, "kind": "DOOR_TO_DOOR", "occurredOn": "2024-03-05", "title": "Hỗ trợ VNeID" } });
    let mut ids = Vec::new();
    for k in 0..6 {
        let r = app
            .gql(
                &submitter,
                "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { activity { id } userErrors { message } } }",
                submitted(&format!("k{k}")),
            )
            .await
            .ok();
        ids.push(
            r.at("submitActivity.activity.id")
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // (caller, may it, the code when not)
    let cases: Vec<(String, Option<&str>)> = vec![
        (submitter.clone(), None),
        (token(&["TEAM_LEADER"], &[], &[&team]), None),
        (token(&["UNIT_ADMIN"], &["169"], &[]), None),
        (admin(), None),
        (
            token(&["TEAM_LEADER"], &[], &[&other_team]),
            Some("NOT_FOUND"),
        ),
        (token(&["REPORTER"], &["169"], &[]), Some("NOT_FOUND")),
        (token(&["UNIT_ADMIN"], &["164"], &[]), Some("NOT_FOUND")),
    ];
    for (i, (caller, refused)) in cases.iter().enumerate() {
        let id = &ids[i % 4];
        let r = app
            .gql(
                caller,
                CORRECT,
                correct(id, json!({ "title": format!("Sửa {i}") })),
            )
            .await
            .ok();
        match refused {
            None => assert_eq!(
                r.at("correctActivity.userErrors"),
                &json!([]),
                "case {i}: {}",
                r.body
            ),
            Some(code) => {
                assert_eq!(
                    r.user_error_codes("correctActivity"),
                    [*code],
                    "case {i}: {}",
                    r.body
                );
                assert_eq!(
                    r.at("correctActivity.userErrors.0.field"),
                    &json!(["input", "activityId"])
                );
                let r = app.gql(caller, VOID, void(id)).await.ok();
                assert_eq!(r.user_error_codes("voidActivity"), [*code], "case {i}");
            }
        }
    }
    // A viewer may change nothing, even in its area.
    let r = app
        .gql(&token(&["VIEWER"], &["169"], &[]), VOID, void(&ids[4]))
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    let r = app
        .gql(
            &token(&["VIEWER"], &["169"], &[]),
            CORRECT,
            correct(&ids[4], json!({})),
        )
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    // A viewer who also reports reads the area, but changes only what it sent.
    let r = app
        .gql(
            &token(&["VIEWER", "REPORTER"], &["169"], &[]),
            VOID,
            void(&ids[4]),
        )
        .await
        .ok();
    assert_eq!(
        r.user_error_codes("voidActivity"),
        ["FORBIDDEN"],
        "{}",
        r.body
    );
    // The submitter, the leader and an admin in the area may void.
    for (caller, id) in [
        (submitter.clone(), &ids[4]),
        (token(&["TEAM_LEADER"], &[], &[&team]), &ids[5]),
        (token(&["UNIT_ADMIN"], &["05677"], &[]), &ids[0]),
    ] {
        let r = app.gql(&caller, VOID, void(id)).await.ok();
        assert_eq!(r.at("voidActivity.activity.status"), "VOIDED", "{}", r.body);
    }
}

#[tokio::test]
async fn corrections_with_bad_input_are_named_and_change_nothing() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let id = app
        .submit(&team, "COMMUNITY_MEETING", "2024-03-05", json!({}))
        .await;
    let unknown = cnscd_api::graphql::ids::encode(cnscd_api::graphql::ids::ACTIVITY, 999_999).0;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({ "i": { "activityId": "not-an-id", "reason": "x" } }),
            "activityId",
            "VALIDATION",
        ),
        (
            json!({ "i": { "activityId": team, "reason": "x" } }),
            "activityId",
            "VALIDATION",
        ),
        (
            json!({ "i": { "activityId": unknown, "reason": "x" } }),
            "activityId",
            "NOT_FOUND",
        ),
        (
            json!({ "i": { "activityId": id, "reason": "  " } }),
            "reason",
            "VALIDATION",
        ),
        (
            json!({ "i": { "activityId": id, "reason": "x".repeat(501) } }),
            "reason",
            "VALIDATION",
        ),
        (
            correct(&id, json!({ "occurredOn": "2099-01-01" })),
            "occurredOn",
            "VALIDATION",
        ),
        (
            correct(&id, json!({ "occurredOn": "2021-01-01" })),
            "occurredOn",
            "VALIDATION",
        ),
        (
            correct(&id, json!({ "participants": -4 })),
            "participants",
            "VALIDATION",
        ),
        (
            correct(
                &id,
                json!({ "outcomes": [ { "service": "VNEID", "people": -1 } ] }),
            ),
            "outcomes",
            "VALIDATION",
        ),
        (
            correct(&id, json!({ "kind": "PARTY" })),
            "kind",
            "VALIDATION",
        ),
        (correct(&id, json!({ "title": "" })), "title", "VALIDATION"),
        (
            correct(&id, json!({ "unitCode": "05659-01" })),
            "unitCode",
            "VALIDATION",
        ),
        (
            correct(&id, json!({ "unitCode": "nowhere" })),
            "unitCode",
            "VALIDATION",
        ),
    ];
    for (i, (input, field, code)) in cases.into_iter().enumerate() {
        let r = app.gql(&admin(), CORRECT, input).await.ok();
        assert!(r.at("correctActivity.activity").is_null(), "case {i}");
        assert_eq!(
            r.at("correctActivity.userErrors.0.field.1"),
            field,
            "case {i}: {}",
            r.body
        );
        assert_eq!(r.at("correctActivity.userErrors.0.code"), code, "case {i}");
    }
    for (input, field) in [
        (
            json!({ "i": { "activityId": "%%%", "reason": "x" } }),
            "activityId",
        ),
        (json!({ "i": { "activityId": id, "reason": "" } }), "reason"),
    ] {
        let r = app.gql(&admin(), VOID, input).await.ok();
        assert_eq!(
            r.at("voidActivity.userErrors.0.field.1"),
            field,
            "{}",
            r.body
        );
    }
    // A unit outside the caller's area: a unit admin of the commune may not move the activity
    // up to the district.
    let r = app
        .gql(
            &token(&["UNIT_ADMIN"], &["05677"], &[]),
            CORRECT,
            correct(&id, json!({ "unitCode": "169" })),
        )
        .await
        .ok();
    assert_eq!(
        r.user_error_codes("correctActivity"),
        ["FORBIDDEN"],
        "{}",
        r.body
    );
    // Nor a unit admin of the ceased district to a day after it ceased.
    let r = app
        .gql(
            &token(&["UNIT_ADMIN"], &["169"], &[]),
            CORRECT,
            correct(&id, json!({ "occurredOn": "2025-08-01" })),
        )
        .await
        .ok();
    assert_eq!(
        r.user_error_codes("correctActivity"),
        ["FORBIDDEN"],
        "{}",
        r.body
    );
    // Out-of-range integers never reach the service as a 500.
    let r = app
        .gql(
            &admin(),
            CORRECT,
            correct(&id, json!({ "participants": 1e12 })),
        )
        .await;
    assert!(r.status < 500 && r.body["errors"].is_array(), "{}", r.body);
    assert_eq!(versions(&app).await, 0);
    let r = app
        .gql(
            &admin(),
            "query($id: ID!) { node(id: $id) { ... on Activity { occurredOn title } } }",
            json!({ "id": id }),
        )
        .await
        .ok();
    assert_eq!(r.at("node.occurredOn"), "2024-03-05");
}

#[tokio::test]
async fn concurrent_changes_to_one_activity_apply_once_and_rollups_match_a_recount() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let id = app
        .submit(
            &team,
            "COMMUNITY_MEETING",
            "2024-03-05",
            json!({ "outcomes": [ { "service": "ONLINE_PUBLIC_SERVICE", "people": 7 } ] }),
        )
        .await;
    let moved = app
        .submit(&team, "COMMUNITY_MEETING", "2024-03-06", json!({}))
        .await;
    // Eight voids of the same activity at once: one is applied, the others are refused.
    let t = admin();
    let voids = (0..8).map(|_| app.gql(&t, VOID, void(&id)));
    let results = futures::future::join_all(voids).await;
    let mut done = 0;
    for r in &results {
        assert!(
            r.status == 200 && r.body.get("errors").is_none(),
            "{}",
            r.body
        );
        match r.body["data"]["voidActivity"]["userErrors"][0]["code"].as_str() {
            None => done += 1,
            Some(code) => assert_eq!(code, "CONFLICT", "{}", r.body),
        }
    }
    assert_eq!(done, 1);
    assert_eq!(versions(&app).await, 1);
    // Corrections racing each other: each is applied whole or refused, never half.
    let days = ["2024-04-01", "2024-04-02", "2024-05-03", "2024-06-04"];
    let corrections = days
        .iter()
        .map(|d| app.gql(&t, CORRECT, correct(&moved, json!({ "occurredOn": d }))));
    let results = futures::future::join_all(corrections).await;
    let applied = results
        .iter()
        .filter(|r| r.body["data"]["correctActivity"]["userErrors"] == json!([]))
        .count();
    assert!(
        applied >= 1,
        "{:?}",
        results.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    for r in &results {
        assert!(
            r.status == 200 && r.body.get("errors").is_none(),
            "{}",
            r.body
        );
    }
    let shown = figures(&app).await;
    cnscd_api::activities::rollup::rebuild(&app.db)
        .await
        .unwrap();
    let recounted = figures(&app).await;
    assert_eq!(shown.at("indicators"), recounted.at("indicators"));
    let total: f64 = ["2024-03", "2024-04", "2024-05", "2024-06"]
        .iter()
        .map(|m| figure(&recounted, "CNS05", "169", m))
        .sum();
    assert_eq!(
        total, 1.0,
        "the corrected activity counts once, the voided one not at all"
    );
}

const VERSIONS: &str =
    "query($id: ID!) { activityVersions(activityId: $id) { version changedBy activity } }";

/// The versions `t` reads (number, day, unit) and whether it sees the activity now; `None`
/// for NOT_FOUND.
async fn readable_versions(
    app: &TestApp,
    t: &str,
    id: &str,
) -> Option<(Vec<(i64, String, String)>, bool)> {
    let node = app
        .gql(
            t,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    let visible = !node.at("node").is_null();
    let r = app.gql(t, VERSIONS, json!({ "id": id })).await;
    if r.at("activityVersions").is_null() {
        assert_eq!(r.error_codes(), ["NOT_FOUND"], "{}", r.body);
        assert!(!visible);
        return None;
    }
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let versions = r
        .at("activityVersions")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["activity"]["occurred_on"].as_str().unwrap().to_owned(),
                v["activity"]["unit_code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    Some((versions, visible))
}

#[tokio::test]
async fn each_version_of_an_activity_is_read_by_its_own_day_and_unit() {
    let app = spawn_app().await;
    // Hamlet 05677-01 lay under district 169 until 2025-06-30 and under commune 05692 from
    // 2025-07-01.
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let id = app
        .submit(&team, "COMMUNITY_MEETING", "2025-06-10", json!({}))
        .await;
    let r = app
        .gql(
            &admin(),
            CORRECT,
            correct(
                &id,
                json!({ "occurredOn": "2025-08-12", "title": "Họp xóm tháng 8" }),
            ),
        )
        .await
        .ok();
    assert_eq!(r.at("correctActivity.userErrors"), &json!([]), "{}", r.body);
    let v1 = (1, "2025-06-10".to_owned(), "05677-01".to_owned());
    let viewer_05692 = token(&["VIEWER"], &["05692"], &[]);
    let viewer_169 = token(&["VIEWER"], &["169"], &[]);
    // The commune sees the activity as it is now (August), not version 1 (June, under 169).
    assert_eq!(
        readable_versions(&app, &viewer_05692, &id).await,
        Some((vec![], true))
    );
    // The district sees version 1, not the activity as it is now.
    assert_eq!(
        readable_versions(&app, &viewer_169, &id).await,
        Some((vec![v1.clone()], false))
    );
    // Back to June: version 2 (August) is the commune's, version 1 and now the district's.
    let r = app
        .gql(
            &admin(),
            CORRECT,
            correct(&id, json!({ "occurredOn": "2025-06-20" })),
        )
        .await
        .ok();
    assert_eq!(r.at("correctActivity.userErrors"), &json!([]), "{}", r.body);
    let v2 = (2, "2025-08-12".to_owned(), "05677-01".to_owned());
    assert_eq!(
        readable_versions(&app, &viewer_05692, &id).await,
        Some((vec![v2.clone()], false))
    );
    assert_eq!(
        readable_versions(&app, &viewer_169, &id).await,
        Some((vec![v1.clone()], true))
    );
    assert_eq!(
        readable_versions(&app, &admin(), &id).await,
        Some((vec![v1, v2], true))
    );
    // An area that held it on no day of any version: NOT_FOUND.
    let outsider = token(&["VIEWER"], &["05710"], &[]);
    assert_eq!(readable_versions(&app, &outsider, &id).await, None);
}
