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

const CORRECT: &str = "mutation($i: CorrectActivityInput!) { correctActivity(input: $i) { userErrors { code message } } }";
const VOID: &str =
    "mutation($i: VoidActivityInput!) { voidActivity(input: $i) { userErrors { code message } } }";
const ENTRIES: &str = "query($id: String) { auditLog(entityId: $id, first: 50) { totalCount edges { node { action unitCode currentUnitCode before after } } } }";

/// Corrects activity `id` as ADMIN with `change`.
async fn correct(app: &TestApp, id: &str, change: serde_json::Value) {
    let mut input = json!({ "activityId": id, "reason": "ghi nhầm" });
    if let (Some(obj), Some(change)) = (input.as_object_mut(), change.as_object()) {
        obj.extend(change.clone());
    }
    let r = app.gql(&admin(), CORRECT, json!({ "i": input })).await.ok();
    assert_eq!(r.at("correctActivity.userErrors"), &json!([]), "{}", r.body);
}

/// Dates every audit entry written so far on `day` (10:00 in Vietnam), as if each change had
/// been made then.
async fn made_on(app: &TestApp, day: &str) {
    use cnscd_entity::audit_entry::{Column, Entity};
    use sea_orm::EntityTrait;
    use sea_orm::sea_query::Expr;
    let at = date(day).and_hms_opt(3, 0, 0).unwrap().and_utc();
    Entity::update_many()
        .col_expr(Column::OccurredAt, Expr::value(at))
        .exec(&app.db)
        .await
        .unwrap();
}

/// The actions of the entries of `id` that `t` reads, newest first.
async fn actions_read(app: &TestApp, t: &str, id: &str) -> Vec<String> {
    let r = app.gql(t, ENTRIES, json!({ "id": id })).await.ok();
    let edges = r.at("auditLog.edges").as_array().unwrap().clone();
    assert_eq!(r.at("auditLog.totalCount"), edges.len(), "{}", r.body);
    edges
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_activitys_entries_follow_it_to_the_unit_a_correction_moved_it_to() {
    let app = spawn_app().await;
    // Commune 05677 (under district 169) ceased on 2025-06-30; commune 05692 lies under the
    // province 19 from 2025-07-01. Activity A was recorded at 05677 in March 2025 (its entry
    // made then) and moved to 05692 in September.
    let cafe = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let a = app
        .submit(
            &cafe,
            "TRAINING",
            "2025-03-01",
            json!({ "unitCode": "05677" }),
        )
        .await;
    made_on(&app, "2025-03-01").await;
    correct(
        &app,
        &a,
        json!({ "occurredOn": "2025-09-03", "unitCode": "05692" }),
    )
    .await;
    // The province's admin reads A now, and so its creation entry too: the entry's unit
    // (05677) lay under 19 on the day it was made, and A lies under 19 on its day now.
    let province = token(&["UNIT_ADMIN"], &["19"], &[]);
    assert_eq!(
        actions_read(&app, &province, &a).await,
        ["correctActivity", "submitActivity"]
    );
    let r = app.gql(&province, ENTRIES, json!({ "id": a })).await.ok();
    let created = &r.at("auditLog.edges.1.node");
    assert_eq!(created["unitCode"], "05677");
    assert_eq!(created["currentUnitCode"], "05692");
    assert_eq!(created["after"]["unit_code"], "05677");
    assert_eq!(r.at("auditLog.edges.0.node.before.unit_code"), "05677");
    assert_eq!(r.at("auditLog.edges.0.node.after.unit_code"), "05692");

    // Activity B was recorded at hamlet 05692-01 and moved up to its commune: the hamlet's
    // admin no longer reads B, nor any of its entries.
    let tdp = app.create_team("05692-01", "Tổ TDP 1", "2023-06-15").await;
    let b = app
        .submit(&tdp, "COMMUNITY_MEETING", "2025-08-01", json!({}))
        .await;
    let hamlet = token(&["UNIT_ADMIN"], &["05692-01"], &[]);
    assert_eq!(actions_read(&app, &hamlet, &b).await, ["submitActivity"]);
    correct(&app, &b, json!({ "unitCode": "05692" })).await;
    let r = app
        .gql(
            &hamlet,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": b }),
        )
        .await;
    assert_eq!(r.error_codes(), ["NOT_FOUND"], "{}", r.body);
    assert_eq!(actions_read(&app, &hamlet, &b).await, Vec::<String>::new());
    // The commune's admin reads both.
    assert_eq!(
        actions_read(&app, &token(&["UNIT_ADMIN"], &["05692"], &[]), &b).await,
        ["correctActivity", "submitActivity"]
    );
}

/// The FORBIDDEN errors of `r`, as their paths (`auditLog.edges.0.node.before`).
fn forbidden_paths(r: &Gql) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            assert_eq!(e["extensions"]["code"], "FORBIDDEN", "{e}");
            e["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| match p {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect()
}

#[tokio::test]
async fn an_entry_withholds_the_activity_as_it_was_where_the_caller_may_not_read_that_version() {
    let app = spawn_app().await;
    // Hamlet 05677-01 lay under district 169 until 2025-06-30 and under commune 05692 from
    // 2025-07-01. The activity happened in March (sent by the district's reporter), then was
    // corrected to August, then voided: the commune reads it now, not as it was in March (its
    // first version).
    let cafe = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let input = json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": cafe, "kind": "COMMUNITY_MEETING", "occurredOn": "2025-03-01", "title": "Họp xóm" });
    let r = app
        .gql(
            &token(&["REPORTER"], &["169"], &[]),
            "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { activity { id } } }",
            json!({ "i": input }),
        )
        .await
        .ok();
    let a = r
        .at("submitActivity.activity.id")
        .as_str()
        .unwrap()
        .to_owned();
    correct(&app, &a, json!({ "occurredOn": "2025-08-01" })).await;
    let r = app
        .gql(
            &admin(),
            VOID,
            json!({ "i": { "activityId": a, "reason": "trùng" } }),
        )
        .await
        .ok();
    assert_eq!(r.at("voidActivity.userErrors"), &json!([]), "{}", r.body);
    let commune = token(&["UNIT_ADMIN"], &["05692"], &[]);
    let r = app
        .gql(
            &commune,
            "query($id: ID!) { activityVersions(activityId: $id) { version } }",
            json!({ "id": a }),
        )
        .await
        .ok();
    assert_eq!(r.at("activityVersions"), &json!([{ "version": 2 }]));
    // Newest first: the void (before and after in August), the correction (before in March,
    // withheld), the submission (after in March, withheld); the rest of each entry answered.
    let r = app.gql(&commune, ENTRIES, json!({ "id": a })).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.at("auditLog.totalCount"), 3, "{}", r.body);
    let mut paths = forbidden_paths(&r);
    paths.sort();
    assert_eq!(
        paths,
        [
            "auditLog.edges.1.node.before",
            "auditLog.edges.2.node.after"
        ],
        "{}",
        r.body
    );
    let node = |i: usize| r.at(&format!("auditLog.edges.{i}.node")).clone();
    assert_eq!(node(0)["action"], "voidActivity");
    assert_eq!(node(0)["before"]["occurred_on"], "2025-08-01");
    assert_eq!(node(0)["after"]["status"], "VOIDED");
    assert_eq!(node(1)["action"], "correctActivity");
    assert!(node(1)["before"].is_null(), "{}", r.body);
    assert_eq!(node(1)["after"]["occurred_on"], "2025-08-01");
    assert_eq!(node(1)["unitCode"], "05677-01");
    assert_eq!(node(2)["action"], "submitActivity");
    assert!(node(2)["after"].is_null(), "{}", r.body);
    assert!(node(2)["before"].is_null());
    assert!(!r.body.to_string().contains("2025-03-01"), "{}", r.body);
    // The province reads every side, and so do ADMIN, the commune's admin that leads the team
    // and the one that sent the activity (subject and client together), as activityVersions
    // reads the versions.
    let own = |client: &str| {
        let mut c = claims("reporter-169", &["UNIT_ADMIN", "REPORTER"], &["05692"], &[]);
        c.client_id = Some(client.to_owned());
        cnscd_api::auth::mint(SECRET, &c).unwrap()
    };
    let r = app
        .gql(&own("other-app"), ENTRIES, json!({ "id": a }))
        .await;
    assert_eq!(forbidden_paths(&r).len(), 2, "{}", r.body);
    for t in [
        token(&["UNIT_ADMIN"], &["19"], &[]),
        admin(),
        token(&["UNIT_ADMIN", "TEAM_LEADER"], &["05692"], &[&cafe]),
        own("test-app"),
    ] {
        let r = app.gql(&t, ENTRIES, json!({ "id": a })).await.ok();
        assert_eq!(
            r.at("auditLog.edges.1.node.before.occurred_on"),
            "2025-03-01"
        );
        assert_eq!(
            r.at("auditLog.edges.2.node.after.occurred_on"),
            "2025-03-01"
        );
    }
}
