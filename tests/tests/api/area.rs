//! The area on the date, on the paths where it once leaked: each example is a row of
//! `../shared/design/area.md` (the oracle test checks every path; these name the cases).
use cnscd_tests::*;
use serde_json::json;

const END: &str = "mutation($i: EndMembershipInput!) { endMembership(input: $i) { membership { id } userErrors { code } } }";

#[tokio::test]
async fn indicator_values_need_every_day_of_their_period_in_the_area() {
    let app = spawn_app().await;
    let team = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    for on in ["2023-03-01", "2024-03-01", "2025-03-01", "2025-09-01"] {
        app.submit(&team, "COMMUNITY_MEETING", on, json!({})).await;
    }
    let q = "query($to: Date!) { indicators(codes: [\"CNS05\"], unitCodes: [\"05677-01\"], from: \"2023-01-01\", to: $to, granularity: YEAR) { period { label } value numerator status } }";
    // Commune 05692 holds the hamlet from 2025-07-01 only: no year is wholly its own.
    let viewer = token(&["VIEWER"], &["05692"], &[]);
    let r = app.gql(&viewer, q, json!({ "to": "2025-12-31" })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let values = r.at("indicators").as_array().unwrap();
    assert_eq!(values.len(), 3);
    for v in values {
        assert_eq!(v["value"], json!(null), "{}", r.body);
        assert_eq!(v["numerator"], json!(null));
        assert_eq!(v["status"], "NO_DATA");
    }
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 6, "{}", r.body);
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["code"] == "FORBIDDEN")
    );
    // Ending in 2024, no day of the range is in its area.
    let r = app.gql(&viewer, q, json!({ "to": "2024-12-31" })).await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    // Minh Lập (ceased 2025-06-30) reads the years it held the hamlet, and 2025: the hamlet
    // existed all year but was Minh Lập's only until June.
    let r = app
        .gql(
            &token(&["VIEWER"], &["05677"], &[]),
            q,
            json!({ "to": "2025-12-31" }),
        )
        .await;
    assert_eq!(r.at("indicators.0.value"), 1.0, "{}", r.body);
    assert_eq!(r.at("indicators.1.value"), 1.0);
    assert_eq!(r.at("indicators.2.value"), &json!(null));
    // The province held it every day.
    let r = app
        .gql(
            &token(&["VIEWER"], &["19"], &[]),
            q,
            json!({ "to": "2025-12-31" }),
        )
        .await
        .ok();
    assert_eq!(r.at("indicators.2.value"), 2.0);
}

#[tokio::test]
async fn memberships_show_by_their_own_dates() {
    let app = spawn_app().await;
    let team = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    let left = app
        .add_member(&team, "Trần Thị Lệ", "MEMBER", "YOUTH_UNION", "2023-01-10")
        .await;
    let r = app
        .gql(
            &admin(),
            END,
            json!({ "i": { "membershipId": left, "endedOn": "2024-06-30" } }),
        )
        .await
        .ok();
    assert_eq!(r.at("endMembership.userErrors"), &json!([]));
    let stays = app
        .add_member(
            &team,
            "Nguyễn Văn An",
            "LEADER",
            "HAMLET_HEAD",
            "2023-01-10",
        )
        .await;
    let ua = token(&["UNIT_ADMIN"], &["05692"], &[]);
    // The list, its count, the nested list and the count on the team agree.
    let r = app
        .gql(
            &ua,
            "{ members(active: false) { totalCount edges { node { id person { phone } } } } \
               all: members { totalCount edges { node { id } } } \
               teams { edges { node { memberCount members(includeEnded: true) { id } } } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(r.at("members.totalCount"), 0, "{}", r.body);
    assert_eq!(r.at("all.totalCount"), 1);
    assert_eq!(r.at("all.edges.0.node.id"), stays.as_str());
    assert_eq!(r.at("teams.edges.0.node.memberCount"), 1);
    assert_eq!(
        r.at("teams.edges.0.node.members"),
        &json!([{ "id": stays }])
    );
    // By id, the membership that ended before 2025-07-01 is not there for 05692.
    for q in [
        "query($id: ID!) { node(id: $id) { id } }",
        "query($id: ID!) { node(id: $id) { ... on Membership { person { phone } } } }",
    ] {
        let r = app.gql(&ua, q, json!({ "id": left })).await;
        assert_eq!(r.error_codes(), ["NOT_FOUND"], "{}", r.body);
    }
    // Minh Lập's admin reads both, with their phones.
    let r = app
        .gql(
            &token(&["UNIT_ADMIN"], &["05677"], &[]),
            "{ members(active: false) { edges { node { id person { phone } } } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(r.at("members.edges.0.node.id"), left.as_str());
    assert_eq!(r.at("members.edges.0.node.person.phone"), "0912345678");
    // A viewer of the same area reads names, never phones.
    let r = app
        .gql(
            &token(&["VIEWER"], &["05677"], &[]),
            "{ members { edges { node { person { fullName phone } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.error_codes().iter().filter(|c| *c == "FORBIDDEN").count(),
        2
    );
    assert_eq!(r.at("members.edges.0.node.person.phone"), &json!(null));
}

#[tokio::test]
async fn nested_activities_show_by_their_own_day() {
    let app = spawn_app().await;
    let team = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    let early = app
        .submit(&team, "DOOR_TO_DOOR", "2024-11-02", json!({}))
        .await;
    let late = app
        .submit(&team, "DOOR_TO_DOOR", "2025-12-02", json!({}))
        .await;
    let q = "{ teams { edges { node { latestActivity { id } } } } \
               activities { totalCount edges { node { id team { id } } } } }";
    for (units, latest, count) in [("05677", &early, 1), ("05692", &late, 1), ("19", &late, 2)] {
        let r = app
            .gql(&token(&["VIEWER"], &[units], &[]), q, json!({}))
            .await
            .ok();
        assert_eq!(
            r.at("teams.edges.0.node.latestActivity.id"),
            latest.as_str(),
            "{units}: {}",
            r.body
        );
        assert_eq!(r.at("activities.totalCount"), count, "{units}");
        assert_eq!(r.at("activities.edges.0.node.team.id"), team.as_str());
    }
    // A team's leader reads its team's activities on every date.
    let r = app
        .gql(&token(&["TEAM_LEADER"], &[], &[&team]), q, json!({}))
        .await
        .ok();
    assert_eq!(r.at("activities.totalCount"), 2);
}

#[tokio::test]
async fn changes_check_every_date_they_set_or_move() {
    let app = spawn_app().await;
    let team = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    let upd = "mutation($i: UpdateTeamInput!) { updateTeam(input: $i) { team { foundedOn } userErrors { code message } } }";
    let submit = "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { activity { id } userErrors { code } } }";
    let ua = token(&["UNIT_ADMIN"], &["05692"], &[]);
    // 05692 manages the team now, but its founding day (2022) lies in Minh Lập's time.
    let r = app
        .gql(
            &ua,
            upd,
            json!({ "i": { "teamId": team, "foundedOn": "2022-06-01" } }),
        )
        .await
        .ok();
    assert_eq!(
        r.user_error_codes("updateTeam"),
        ["FORBIDDEN"],
        "{}",
        r.body
    );
    let r = app
        .gql(
            &ua,
            upd,
            json!({ "i": { "teamId": team, "name": "Tổ Cà Phê" } }),
        )
        .await
        .ok();
    assert_eq!(r.at("updateTeam.userErrors"), &json!([]));
    // Moving the founding day past the team's first activity is refused.
    app.submit(&team, "DOOR_TO_DOOR", "2023-02-01", json!({}))
        .await;
    let r = app
        .gql(
            &admin(),
            upd,
            json!({ "i": { "teamId": team, "foundedOn": "2023-05-01" } }),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("updateTeam"), ["VALIDATION"]);
    // An activity recorded at a unit above the caller's area is refused, even for its team.
    let activity = |unit: &str| {
        json!({ "i": { "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": team,
                       "kind": "DOOR_TO_DOOR", "occurredOn": "2025-09-01", "title": "x",
                       "unitCode": unit } })
    };
    for t in [
        token(&["UNIT_ADMIN"], &["05677-01"], &[]),
        token(&["TEAM_LEADER"], &[], &[&team]),
    ] {
        let r = app.gql(&t, submit, activity("05692")).await.ok();
        assert_eq!(
            r.user_error_codes("submitActivity"),
            ["FORBIDDEN"],
            "{}",
            r.body
        );
        let r = app.gql(&t, submit, activity("05677-01")).await.ok();
        assert_eq!(r.at("submitActivity.userErrors"), &json!([]), "{}", r.body);
    }
    // District 169 ended on 2025-06-30: its admin cannot act after it.
    let r = app
        .gql(
            &token(&["UNIT_ADMIN"], &["169"], &[]),
            submit,
            activity("05677-01"),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("submitActivity"), ["FORBIDDEN"]);
}

#[tokio::test]
async fn audit_entries_say_nothing_of_rows_the_caller_may_not_see() {
    let app = spawn_app().await;
    let team = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    let old = app
        .add_member(&team, "Trần Thị Lệ", "MEMBER", "YOUTH_UNION", "2023-01-10")
        .await;
    // Ended today, back to a day before 05692 held the hamlet: the membership is not 05692's.
    let r = app
        .gql(
            &admin(),
            END,
            json!({ "i": { "membershipId": old, "endedOn": "2024-06-30" } }),
        )
        .await
        .ok();
    assert_eq!(r.at("endMembership.userErrors"), &json!([]));
    let log = "{ auditLog(first: 50) { edges { node { action entityId } } } }";
    let actions = |r: &Gql| -> Vec<String> {
        r.at("auditLog.edges")
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["action"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = app
        .gql(&token(&["UNIT_ADMIN"], &["05692"], &[]), log, json!({}))
        .await
        .ok();
    assert_eq!(actions(&r), ["createTeam"], "{}", r.body);
    let r = app
        .gql(&token(&["UNIT_ADMIN"], &["19"], &[]), log, json!({}))
        .await
        .ok();
    assert_eq!(actions(&r), ["endMembership", "addMember", "createTeam"]);
}
