//! Teams: each role against each team mutation, scope on reads, bad input.
use cnscd_tests::*;
use serde_json::json;

const CREATE: &str = "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id code name unitCode status } userErrors { field message code } } }";
const UPDATE: &str = "mutation($i: UpdateTeamInput!) { updateTeam(input: $i) { team { id name code } userErrors { field message code } } }";
const DISSOLVE: &str = "mutation($i: DissolveTeamInput!) { dissolveTeam(input: $i) { team { status dissolvedOn members(includeEnded: true) { endedOn } } userErrors { field message code } } }";

fn create_input(unit: &str) -> serde_json::Value {
    json!({ "i": { "unitCode": unit, "name": "Tổ CNSCĐ Xóm Cà Phê", "foundedOn": "2022-05-01", "decisionNumber": "12/QĐ-UBND", "decisionDate": "2022-04-28" } })
}

#[tokio::test]
async fn each_role_may_or_may_not_create_teams() {
    let app = spawn_app().await;
    let allowed = [
        admin(),
        token(&["UNIT_ADMIN"], &["169"], &[]),
        token(&["UNIT_ADMIN"], &["05677"], &[]),
    ];
    for t in &allowed {
        let r = app.gql(t, CREATE, create_input("05677-01")).await.ok();
        assert_eq!(r.at("createTeam.userErrors"), &json!([]), "{:?}", r.body);
        assert_eq!(r.at("createTeam.team.status"), "ACTIVE");
    }
    for t in [
        token(&["VIEWER"], &["169"], &[]),
        token(&["REPORTER"], &["169"], &[]),
        token(&["TEAM_LEADER"], &[], &[]),
    ] {
        let r = app.gql(&t, CREATE, create_input("05677-01")).await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"], "{:?}", r.body);
        assert!(r.body["data"].is_null());
    }
}

#[tokio::test]
async fn unit_admin_cannot_create_a_team_outside_its_units() {
    let app = spawn_app().await;
    let r = app
        .gql(
            &token(&["UNIT_ADMIN"], &["164"], &[]),
            CREATE,
            create_input("05677-01"),
        )
        .await
        .ok();
    assert!(r.at("createTeam.team").is_null());
    assert_eq!(r.user_error_codes("createTeam"), ["FORBIDDEN"]);
    // A district that ceased covers nothing after its end.
    let mut input = create_input("05677-01");
    input["i"]["foundedOn"] = json!("2025-08-01");
    let r = app
        .gql(
            &token(&["UNIT_ADMIN"], &["169"], &[]),
            CREATE,
            input.clone(),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("createTeam"), ["FORBIDDEN"]);
    let r = app
        .gql(&token(&["UNIT_ADMIN"], &["05692"], &[]), CREATE, input)
        .await
        .ok();
    assert_eq!(
        r.user_error_codes("createTeam"),
        Vec::<String>::new(),
        "{:?}",
        r.body
    );
}

#[tokio::test]
async fn create_team_rejects_bad_input_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({ "unitCode": "05677-01", "name": "  ", "foundedOn": "2022-05-01" }),
            "name",
        ),
        (
            json!({ "unitCode": "05677-01", "name": "Tổ", "foundedOn": "2099-01-01" }),
            "foundedOn",
        ),
        (
            json!({ "unitCode": "99999", "name": "Tổ", "foundedOn": "2022-05-01" }),
            "unitCode",
        ),
        (
            json!({ "unitCode": "169", "name": "Tổ", "foundedOn": "2022-05-01" }),
            "unitCode",
        ),
        (
            json!({ "unitCode": "05677-01", "name": "Tổ", "code": "bad code!", "foundedOn": "2022-05-01" }),
            "code",
        ),
        (
            json!({ "unitCode": "05677-01", "name": "x".repeat(201), "foundedOn": "2022-05-01" }),
            "name",
        ),
        (
            json!({ "unitCode": "05677-01", "name": "Tổ", "foundedOn": "2022-05-01", "decisionDate": "2099-01-01" }),
            "decisionDate",
        ),
    ];
    for (input, field) in cases {
        let r = app.gql(&admin(), CREATE, json!({ "i": input })).await.ok();
        assert!(r.at("createTeam.team").is_null(), "{input}");
        let errors = r.at("createTeam.userErrors");
        assert_eq!(errors[0]["code"], "VALIDATION", "{input}: {errors}");
        assert_eq!(
            errors[0]["field"],
            json!(["input", field]),
            "{input}: {errors}"
        );
    }
    // A type error in a variable is a 400, not a 500.
    let r = app
        .gql(
            &admin(),
            CREATE,
            json!({ "i": { "unitCode": "05677-01", "name": "Tổ", "foundedOn": 5 } }),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn team_codes_are_unique() {
    let app = spawn_app().await;
    let mut input = create_input("05677-01");
    input["i"]["code"] = json!("CP-01");
    app.gql(&admin(), CREATE, input.clone()).await.ok();
    let r = app.gql(&admin(), CREATE, input).await.ok();
    assert_eq!(r.user_error_codes("createTeam"), ["CONFLICT"]);
    // Codes are generated per unit, skipping codes someone already chose by hand.
    let mut squatter = create_input("05677-02");
    squatter["i"]["code"] = json!("05677-02-T2");
    app.gql(&admin(), CREATE, squatter).await.ok();
    for expected in ["05677-02-T3", "05677-02-T4"] {
        let r = app
            .gql(&admin(), CREATE, create_input("05677-02"))
            .await
            .ok();
        assert_eq!(r.at("createTeam.team.code"), expected, "{:?}", r.body);
    }
}

#[tokio::test]
async fn update_and_dissolve_a_team() {
    let app = spawn_app().await;
    let team = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    app.add_member(
        &team,
        "Nguyễn Văn An",
        "LEADER",
        "HAMLET_HEAD",
        "2022-05-01",
    )
    .await;
    let ua = token(&["UNIT_ADMIN"], &["05692"], &[]);
    let r = app
        .gql(
            &ua,
            UPDATE,
            json!({ "i": { "teamId": team, "name": "Tổ công nghệ số Cà Phê", "code": "CP-1" } }),
        )
        .await
        .ok();
    assert_eq!(r.at("updateTeam.team.name"), "Tổ công nghệ số Cà Phê");
    assert_eq!(r.at("updateTeam.team.code"), "CP-1");
    let other = token(&["UNIT_ADMIN"], &["05710"], &[]);
    let r = app
        .gql(
            &other,
            UPDATE,
            json!({ "i": { "teamId": team, "name": "x" } }),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("updateTeam"), ["NOT_FOUND"]);
    let r = app
        .gql(
            &ua,
            DISSOLVE,
            json!({ "i": { "teamId": team, "dissolvedOn": "2021-01-01" } }),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("dissolveTeam"), ["VALIDATION"]);
    let r = app
        .gql(
            &ua,
            DISSOLVE,
            json!({ "i": { "teamId": team, "dissolvedOn": "2025-09-01", "reason": "merged" } }),
        )
        .await
        .ok();
    assert_eq!(r.at("dissolveTeam.team.status"), "DISSOLVED");
    assert_eq!(r.at("dissolveTeam.team.members.0.endedOn"), "2025-09-01");
    let r = app
        .gql(
            &ua,
            DISSOLVE,
            json!({ "i": { "teamId": team, "dissolvedOn": "2025-09-02" } }),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("dissolveTeam"), ["CONFLICT"]);
    let r = app
        .gql(
            &ua,
            DISSOLVE,
            json!({ "i": { "teamId": "not-an-id", "dissolvedOn": "2025-09-02" } }),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("dissolveTeam"), ["VALIDATION"]);
    for t in [
        token(&["VIEWER"], &["19"], &[]),
        token(&["REPORTER"], &["19"], &[]),
        token(&["TEAM_LEADER"], &[], &[&team]),
    ] {
        let r = app
            .gql(&t, UPDATE, json!({ "i": { "teamId": team, "name": "x" } }))
            .await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"]);
        let r = app
            .gql(
                &t,
                DISSOLVE,
                json!({ "i": { "teamId": team, "dissolvedOn": "2025-09-02" } }),
            )
            .await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    }
}

#[tokio::test]
async fn reads_are_limited_to_the_callers_area() {
    let app = spawn_app().await;
    let cafe = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    let chua_hang = app
        .create_team("05659-01", "Tổ CNSCĐ Tổ 1 Chùa Hang", "2022-05-01")
        .await;
    let list = "query($s: String) { teams(search: $s, first: 10) { totalCount edges { node { id name unit { name } } } } }";
    let viewer = token(&["VIEWER"], &["169"], &[]);
    let r = app.gql(&viewer, list, json!({})).await.ok();
    assert_eq!(r.at("teams.totalCount"), 1);
    assert_eq!(r.at("teams.edges.0.node.id"), cafe.as_str());
    assert_eq!(r.at("teams.edges.0.node.unit.name"), "Xóm Cà Phê");
    let r = app.gql(&admin(), list, json!({})).await.ok();
    assert_eq!(r.at("teams.totalCount"), 2);
    // By id and through node(): absent outside the area.
    let r = app
        .gql(
            &viewer,
            "query($id: ID!) { team(id: $id) { name } }",
            json!({ "id": chua_hang }),
        )
        .await;
    assert_eq!(r.error_codes(), ["NOT_FOUND"]);
    let r = app
        .gql(
            &viewer,
            "query($id: ID!) { node(id: $id) { id ... on Team { name } } }",
            json!({ "id": chua_hang }),
        )
        .await;
    assert_eq!(r.error_codes(), ["NOT_FOUND"]);
    let r = app
        .gql(
            &viewer,
            "query($id: ID!) { node(id: $id) { id ... on Team { name } } }",
            json!({ "id": cafe }),
        )
        .await
        .ok();
    assert_eq!(r.at("node.name"), "Tổ CNSCĐ Xóm Cà Phê");
    // Guessed ids of other types get NOT_FOUND, never another object.
    let r = app
        .gql(&viewer, "{ node(id: \"VGVhbTo5OTk\") { id } }", json!({}))
        .await;
    assert_eq!(r.error_codes(), ["NOT_FOUND"]);
    // The team leader sees its own team only.
    let leader = token(&["TEAM_LEADER"], &[], &[&chua_hang]);
    let r = app.gql(&leader, list, json!({})).await.ok();
    assert_eq!(r.at("teams.totalCount"), 1);
    assert_eq!(r.at("teams.edges.0.node.id"), chua_hang.as_str());
    // Search ignores diacritics and case.
    let r = app.gql(&admin(), list, json!({ "s": "CA PHE" })).await.ok();
    assert_eq!(r.at("teams.totalCount"), 1);
}

#[tokio::test]
async fn teams_are_paginated_with_cursors() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.create_team("05677-02", &format!("Tổ {i}"), "2022-05-01")
            .await;
    }
    let q = "query($a: String, $f: Int, $l: Int, $b: String) { teams(first: $f, after: $a, last: $l, before: $b) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor startCursor } edges { node { name } } } }";
    let p1 = app.gql(&admin(), q, json!({ "f": 2 })).await.ok();
    assert_eq!(p1.at("teams.totalCount"), 5);
    assert_eq!(p1.at("teams.pageInfo.hasNextPage"), true);
    let cursor = p1.at("teams.pageInfo.endCursor").clone();
    let p2 = app
        .gql(&admin(), q, json!({ "f": 2, "a": cursor }))
        .await
        .ok();
    assert_eq!(p2.at("teams.edges.0.node.name"), "Tổ 2");
    assert_eq!(p2.at("teams.pageInfo.hasPreviousPage"), true);
    let last = app.gql(&admin(), q, json!({ "l": 2 })).await.ok();
    assert_eq!(last.at("teams.edges.1.node.name"), "Tổ 4");
    let r = app.gql(&admin(), q, json!({ "f": 101 })).await;
    assert_eq!(r.error_codes(), ["VALIDATION"]);
    let r = app
        .gql(&admin(), q, json!({ "f": 1, "a": "garbage" }))
        .await;
    assert_eq!(r.error_codes(), ["VALIDATION"]);
}

#[tokio::test]
async fn update_team_rejects_bad_input_naming_the_field() {
    let app = spawn_app().await;
    let team = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    let cases = [
        (json!({ "name": "" }), "name"),
        (json!({ "code": "has space" }), "code"),
        (json!({ "foundedOn": "2099-01-01" }), "foundedOn"),
        (json!({ "decisionDate": "2099-01-01" }), "decisionDate"),
    ];
    for (change, field) in cases {
        let mut input = change.clone();
        input["teamId"] = json!(team);
        let r = app.gql(&admin(), UPDATE, json!({ "i": input })).await.ok();
        assert!(r.at("updateTeam.team").is_null(), "{change}");
        assert_eq!(
            r.at("updateTeam.userErrors.0.field"),
            &json!(["input", field]),
            "{change}: {:?}",
            r.body
        );
    }
    // Nothing was changed by the refused updates.
    let r = app
        .gql(
            &admin(),
            "query($id: ID!) { team(id: $id) { name foundedOn } }",
            json!({ "id": team }),
        )
        .await
        .ok();
    assert_eq!(r.at("team.name"), "Tổ CNSCĐ Xóm Cà Phê");
    assert_eq!(r.at("team.foundedOn"), "2022-05-01");
}

#[tokio::test]
async fn concurrent_teams_get_distinct_generated_codes() {
    let app = spawn_app().await;
    let create = "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { code } userErrors { code message } } }";
    let requests = (0..6).map(|i| {
        let app = &app;
        async move {
            app.gql(
                &admin(),
                create,
                json!({ "i": { "unitCode": "05692-01", "name": format!("Tổ {i}"), "foundedOn": "2024-01-01" } }),
            )
            .await
        }
    });
    let mut codes: Vec<String> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| {
            let r = r.ok();
            assert_eq!(r.at("createTeam.userErrors"), &json!([]), "{}", r.body);
            r.at("createTeam.team.code").as_str().unwrap().to_owned()
        })
        .collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 6, "{codes:?}");
}
