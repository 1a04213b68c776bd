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
