//! Every mutation leaves an audit entry, readable by admins in their area, without contacts.
use cnscd_tests::*;
use serde_json::json;

const LOG: &str = "query($t: String) { auditLog(entityType: $t, first: 50) { totalCount edges { node { action entityType entityId subject clientId roles unitCode before after requestId } } } }";

#[tokio::test]
async fn mutations_are_audited_with_before_and_after() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let m = app
        .add_member(&team, "Trần Thị Lệ", "MEMBER", "YOUTH_UNION", "2023-01-01")
        .await;
    app.gql(
        &admin(),
        "mutation($i: UpdateTeamInput!) { updateTeam(input: $i) { userErrors { message } } }",
        json!({ "i": { "teamId": team, "name": "Tổ mới" } }),
    )
    .await
    .ok();
    app.gql(
        &admin(),
        "mutation($i: EndMembershipInput!) { endMembership(input: $i) { userErrors { message } } }",
        json!({ "i": { "membershipId": m, "endedOn": "2024-01-01" } }),
    )
    .await
    .ok();
    app.submit(&team, "TRAINING", "2024-02-01", json!({})).await;
    let far = app
        .create_team("05659-01", "Tổ Chùa Hang", "2022-05-01")
        .await;
    let r = app.gql(&admin(), LOG, json!({})).await.ok();
    let entries = r.at("auditLog.edges").as_array().unwrap().clone();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "createTeam",
            "submitActivity",
            "endMembership",
            "updateTeam",
            "addMember",
            "createTeam"
        ]
    );
    let update = &entries[3]["node"];
    assert_eq!(update["before"]["name"], "Tổ Cà Phê");
    assert_eq!(update["after"]["name"], "Tổ mới");
    assert_eq!(update["entityId"], team.as_str());
    assert_eq!(update["clientId"], "test-app");
    assert_eq!(update["roles"], "ADMIN");
    assert!(update["requestId"].as_str().is_some_and(|s| !s.is_empty()));
    // Contacts never reach the log.
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains("0912345678") && !text.contains("a@example.vn"));
    // A unit admin reads its area's entries only, on the day each change was made: today the
    // far team's hamlet lies under 05710, and district 164 (ceased) covers nothing.
    let r = app
        .gql(&token(&["UNIT_ADMIN"], &["05710"], &[]), LOG, json!({}))
        .await
        .ok();
    assert_eq!(r.at("auditLog.totalCount"), 1);
    assert_eq!(r.at("auditLog.edges.0.node.entityId"), far.as_str());
    let r = app
        .gql(&token(&["UNIT_ADMIN"], &["164"], &[]), LOG, json!({}))
        .await
        .ok();
    assert_eq!(r.at("auditLog.totalCount"), 0);
    for t in [
        token(&["VIEWER"], &["19"], &[]),
        token(&["REPORTER"], &["19"], &[]),
        token(&["TEAM_LEADER"], &[], &[&team]),
    ] {
        let r = app.gql(&t, LOG, json!({})).await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    }
    let r = app
        .gql(&admin(), LOG, json!({ "t": "Membership" }))
        .await
        .ok();
    assert_eq!(r.at("auditLog.totalCount"), 2);
}

#[tokio::test]
async fn refused_mutations_leave_no_audit_entry() {
    let app = spawn_app().await;
    let r = app.gql(&admin(), "mutation { createTeam(input: { unitCode: \"05677-01\", name: \"\", foundedOn: \"2022-01-01\" }) { userErrors { code } } }", json!({})).await.ok();
    assert_eq!(r.user_error_codes("createTeam"), ["VALIDATION"]);
    let r = app.gql(&admin(), LOG, json!({})).await.ok();
    assert_eq!(r.at("auditLog.totalCount"), 0);
}

const FIGURE: &str = "mutation($i: SubmitDataValuesInput!) { submitDataValues(input: $i) { userErrors { code message } } }";
const TARGET: &str = "mutation($i: SetIndicatorTargetInput!) { setIndicatorTarget(input: $i) { userErrors { code message } } }";

/// The figures (`after.value`) or targets (`after.target`) whose entries `t` reads.
async fn audited(app: &TestApp, t: &str, kind: &str, field: &str) -> Vec<f64> {
    let r = app.gql(t, LOG, json!({ "t": kind })).await.ok();
    let mut out: Vec<f64> = r
        .at("auditLog.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["after"][field].as_f64().unwrap())
        .collect();
    out.sort_by(f64::total_cmp);
    assert_eq!(r.at("auditLog.totalCount"), out.len(), "{}", r.body);
    out
}

#[tokio::test]
async fn a_figure_or_target_is_audited_only_to_those_who_may_read_it() {
    let app = spawn_app().await;
    // Hamlet 05677-01 lay under district 169 until 2025-06-30 and under commune 05692 from
    // 2025-07-01; hamlet 05692-01 lay under 05692 all along.
    for (unit, start, end, value) in [
        ("05677-01", "2025-01-01", "2025-12-31", 4321.0),
        ("05677-01", "2025-07-01", "2025-09-30", 55.0),
        ("05692-01", "2025-01-01", "2025-12-31", 66.0),
    ] {
        let input = json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "sourceSystem": "DVCQG", "values": [{ "element": "POPULATION", "unitCode": unit, "periodStart": start, "periodEnd": end, "value": value }] });
        let r = app.gql(&admin(), FIGURE, json!({ "i": input })).await.ok();
        assert_eq!(
            r.at("submitDataValues.userErrors"),
            &json!([]),
            "{}",
            r.body
        );
    }
    for (start, end, value) in [
        ("2025-01-01", "2025-12-31", 777.0),
        ("2025-07-01", "2025-09-30", 88.0),
    ] {
        let input = json!({ "indicator": "CNS05", "unitCode": "05677-01", "periodStart": start, "periodEnd": end, "target": value });
        let r = app.gql(&admin(), TARGET, json!({ "i": input })).await.ok();
        assert_eq!(
            r.at("setIndicatorTarget.userErrors"),
            &json!([]),
            "{}",
            r.body
        );
    }
    let unit_admin = token(&["UNIT_ADMIN"], &["05692"], &[]);
    // What the rows' own lists show the commune's admin: not the hamlet's 2025 figure and
    // target, which concern days it did not hold the hamlet.
    let r = app
        .gql(
            &unit_admin,
            "{ dataValues(element: \"POPULATION\") { edges { node { value } } } indicatorTargets(unitCodes: [\"05677-01\"], from: \"2025-01-01\", to: \"2025-12-31\") { target } }",
            json!({}),
        )
        .await
        .ok();
    let mut values: Vec<f64> = r
        .at("dataValues.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["value"].as_f64().unwrap())
        .collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [55.0, 66.0]);
    assert_eq!(r.at("indicatorTargets"), &json!([{ "target": 88.0 }]));
    // The audit log shows it the entries of those rows, and no more.
    assert_eq!(
        audited(&app, &unit_admin, "DataValue", "value").await,
        [55.0, 66.0]
    );
    assert_eq!(
        audited(&app, &unit_admin, "IndicatorTarget", "target").await,
        [88.0]
    );
    let r = app.gql(&unit_admin, LOG, json!({})).await.ok();
    assert_eq!(r.at("auditLog.totalCount"), 3, "{}", r.body);
    // (Only what the entries say of the rows: request ids are random hex, "4321" among them.)
    for e in r.at("auditLog.edges").as_array().unwrap() {
        let said = format!("{} {}", e["node"]["before"], e["node"]["after"]);
        assert!(!said.contains("4321") && !said.contains("777"), "{said}");
    }
    // ADMIN reads every entry.
    assert_eq!(
        audited(&app, &admin(), "DataValue", "value").await,
        [55.0, 66.0, 4321.0]
    );
    assert_eq!(
        audited(&app, &admin(), "IndicatorTarget", "target").await,
        [88.0, 777.0]
    );
}
