//! Members: who may add, change and end memberships; one active leader; personal data.
use cnscd_tests::*;
use serde_json::json;

const ADD: &str = "mutation($i: AddMemberInput!) { addMember(input: $i) { membership { id role affiliation active person { fullName phone } } userErrors { field message code } } }";
const UPDATE: &str = "mutation($i: UpdateMembershipInput!) { updateMembership(input: $i) { membership { id role affiliation } userErrors { field message code } } }";
const END: &str = "mutation($i: EndMembershipInput!) { endMembership(input: $i) { membership { id active endedOn } userErrors { field message code } } }";

fn member(team: &str, name: &str, role: &str) -> serde_json::Value {
    json!({ "i": { "teamId": team, "person": { "fullName": name, "gender": "FEMALE", "birthYear": 1995, "phone": "0987 654 321", "email": "le@example.vn" }, "role": role, "affiliation": "YOUTH_UNION", "startedOn": "2023-01-10" } })
}

#[tokio::test]
async fn each_role_may_or_may_not_add_members() {
    let app = spawn_app().await;
    let team = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    let other = app
        .create_team("05659-01", "Tổ 1 Chùa Hang", "2022-05-01")
        .await;
    // The area is taken on the membership's dates: in 2023 the hamlet was in Minh Lập, 169.
    for t in [
        admin(),
        token(&["UNIT_ADMIN"], &["169"], &[]),
        token(&["UNIT_ADMIN"], &["19"], &[]),
        token(&["TEAM_LEADER"], &[], &[&team]),
    ] {
        let r = app
            .gql(&t, ADD, member(&team, "Trần Thị Lệ", "MEMBER"))
            .await
            .ok();
        assert_eq!(r.at("addMember.userErrors"), &json!([]), "{:?}", r.body);
        assert_eq!(r.at("addMember.membership.person.phone"), "0987654321");
    }
    // A leader of another team, or a unit admin elsewhere, cannot.
    let r = app
        .gql(
            &token(&["TEAM_LEADER"], &[], &[&other]),
            ADD,
            member(&team, "Lê Văn B", "MEMBER"),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("addMember"), ["NOT_FOUND"]);
    let r = app
        .gql(
            &token(&["UNIT_ADMIN"], &["05710"], &[]),
            ADD,
            member(&team, "Lê Văn B", "MEMBER"),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("addMember"), ["NOT_FOUND"]);
    // Xã Đồng Hỷ's admin manages the team from the day its hamlet came under the commune.
    let r = app
        .gql(
            &token(&["UNIT_ADMIN"], &["05692"], &[]),
            ADD,
            member(&team, "Lê Văn B", "MEMBER"),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("addMember"), ["FORBIDDEN"]);
    let mut later = member(&team, "Lê Văn B", "MEMBER");
    later["i"]["startedOn"] = json!("2025-07-01");
    let r = app
        .gql(&token(&["UNIT_ADMIN"], &["05692"], &[]), ADD, later)
        .await
        .ok();
    assert_eq!(r.at("addMember.userErrors"), &json!([]));
    for t in [
        token(&["VIEWER"], &["19"], &[]),
        token(&["REPORTER"], &["19"], &[]),
    ] {
        let r = app.gql(&t, ADD, member(&team, "Lê Văn B", "MEMBER")).await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    }
}

#[tokio::test]
async fn add_member_rejects_bad_input() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let cases = [
        (json!({ "fullName": "" }), "fullName"),
        (json!({ "fullName": "Lê 123" }), "fullName"),
        (json!({ "fullName": "Lê Văn B", "phone": "12ab" }), "phone"),
        (
            json!({ "fullName": "Lê Văn B", "email": "not-an-email" }),
            "email",
        ),
        (
            json!({ "fullName": "Lê Văn B", "birthYear": 1850 }),
            "birthYear",
        ),
    ];
    for (person, field) in cases {
        let input = json!({ "i": { "teamId": team, "person": person, "role": "MEMBER", "affiliation": "VOLUNTEER", "startedOn": "2023-01-01" } });
        let r = app.gql(&admin(), ADD, input).await.ok();
        let errors = r.at("addMember.userErrors");
        assert_eq!(
            errors[0]["field"],
            json!(["input", "person", field]),
            "{errors}"
        );
        // Messages name the field, never the personal value.
        assert!(!errors[0]["message"].as_str().unwrap().contains("12ab"));
    }
    let mut bad = member(&team, "Lê Văn B", "MEMBER");
    bad["i"]["affiliation"] = json!("PIRATES");
    let r = app.gql(&admin(), ADD, bad).await.ok();
    assert_eq!(
        r.at("addMember.userErrors.0.field"),
        &json!(["input", "affiliation"])
    );
    let mut bad = member(&team, "Lê Văn B", "MEMBER");
    bad["i"]["startedOn"] = json!("2021-01-01");
    let r = app.gql(&admin(), ADD, bad).await.ok();
    assert_eq!(
        r.at("addMember.userErrors.0.field"),
        &json!(["input", "startedOn"])
    );
    let mut bad = member(&team, "Lê Văn B", "CAPTAIN");
    bad["i"]["role"] = json!("CAPTAIN");
    let r = app.gql(&admin(), ADD, bad).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn a_team_has_at_most_one_active_leader() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let first = app
        .add_member(
            &team,
            "Nguyễn Văn An",
            "LEADER",
            "HAMLET_HEAD",
            "2022-05-01",
        )
        .await;
    let r = app
        .gql(&admin(), ADD, member(&team, "Trần Thị Lệ", "LEADER"))
        .await
        .ok();
    assert_eq!(r.user_error_codes("addMember"), ["CONFLICT"]);
    let deputy = app
        .add_member(&team, "Trần Thị Lệ", "DEPUTY", "YOUTH_UNION", "2022-05-01")
        .await;
    let r = app
        .gql(
            &admin(),
            UPDATE,
            json!({ "i": { "membershipId": deputy, "role": "LEADER" } }),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("updateMembership"), ["CONFLICT"]);
    let r = app.gql(&admin(), END, json!({ "i": { "membershipId": first, "endedOn": "2024-12-31", "reason": "moved away" } })).await.ok();
    assert_eq!(r.at("endMembership.membership.active"), false);
    let r = app
        .gql(
            &admin(),
            UPDATE,
            json!({ "i": { "membershipId": deputy, "role": "LEADER" } }),
        )
        .await
        .ok();
    assert_eq!(r.at("updateMembership.membership.role"), "LEADER");
    let r = app
        .gql(
            &admin(),
            END,
            json!({ "i": { "membershipId": first, "endedOn": "2025-01-31" } }),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("endMembership"), ["CONFLICT"]);
}

#[tokio::test]
async fn concurrent_leaders_cannot_both_win() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (client, address, input) = (
            app.client.clone(),
            app.address.clone(),
            member(&team, &format!("Người Số {}", "I".repeat(i + 1)), "LEADER"),
        );
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{address}/graphql"))
                .bearer_auth(admin())
                .json(&json!({ "query": ADD, "variables": input }))
                .send()
                .await
                .unwrap();
            r.json::<serde_json::Value>().await.unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        let body = t.await.unwrap();
        if body["data"]["addMember"]["membership"].is_object() {
            won += 1;
        } else {
            assert_eq!(
                body["data"]["addMember"]["userErrors"][0]["code"], "CONFLICT",
                "{body}"
            );
        }
    }
    assert_eq!(won, 1);
    let r = app
        .gql(
            &admin(),
            "query($id: ID!) { team(id: $id) { members { role } } }",
            json!({ "id": team }),
        )
        .await
        .ok();
    assert_eq!(r.at("team.members").as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn end_membership_checks_dates_and_keeps_history() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let m = app
        .add_member(&team, "Nguyễn Văn An", "MEMBER", "POLICE", "2023-01-01")
        .await;
    for (day, field) in [("2022-12-31", "endedOn"), ("2099-01-01", "endedOn")] {
        let r = app
            .gql(
                &admin(),
                END,
                json!({ "i": { "membershipId": m, "endedOn": day } }),
            )
            .await
            .ok();
        assert_eq!(
            r.at("endMembership.userErrors.0.field"),
            &json!(["input", field])
        );
    }
    app.gql(
        &admin(),
        END,
        json!({ "i": { "membershipId": m, "endedOn": "2024-01-01" } }),
    )
    .await
    .ok();
    let q =
        "query($id: ID!) { team(id: $id) { memberCount members(includeEnded: true) { endedOn } } }";
    let r = app.gql(&admin(), q, json!({ "id": team })).await.ok();
    assert_eq!(r.at("team.memberCount"), 0);
    assert_eq!(r.at("team.members.0.endedOn"), "2024-01-01");
    let r = app
        .gql(
            &admin(),
            UPDATE,
            json!({ "i": { "membershipId": m, "affiliation": "TEACHER" } }),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("updateMembership"), ["CONFLICT"]);
    let r = app
        .gql(
            &admin(),
            UPDATE,
            json!({ "i": { "membershipId": "bogus" } }),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("updateMembership"), ["VALIDATION"]);
}

#[tokio::test]
async fn personal_data_is_only_for_admins_unit_admins_and_the_teams_leader() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let other = app.create_team("05677-02", "Tổ Na Lay", "2022-05-01").await;
    app.add_member(&team, "Trần Thị Lệ", "MEMBER", "YOUTH_UNION", "2023-01-01")
        .await;
    let q = "query($id: ID!) { team(id: $id) { members { person { fullName phone email birthYear } } } }";
    for t in [
        admin(),
        token(&["UNIT_ADMIN"], &["169"], &[]),
        token(&["TEAM_LEADER"], &[], &[&team]),
    ] {
        let r = app.gql(&t, q, json!({ "id": team })).await.ok();
        assert_eq!(r.at("team.members.0.person.phone"), "0912345678");
    }
    // A viewer reads the name but not the personal data: null with FORBIDDEN on the path.
    let r = app
        .gql(&token(&["VIEWER"], &["169"], &[]), q, json!({ "id": team }))
        .await;
    assert_eq!(r.at("team.members.0.person.fullName"), "Trần Thị Lệ");
    assert!(r.at("team.members.0.person.phone").is_null());
    assert!(r.error_codes().iter().all(|c| c == "FORBIDDEN"));
    assert_eq!(r.error_codes().len(), 3);
    // A leader of another team (who also views the district) reads names, not contacts.
    let r = app
        .gql(
            &token(&["TEAM_LEADER", "VIEWER"], &["169"], &[&other]),
            q,
            json!({ "id": team }),
        )
        .await;
    assert!(r.at("team.members.0.person.email").is_null());
    // A reporter does not read members at all.
    let r = app
        .gql(
            &token(&["REPORTER"], &["169"], &[]),
            q,
            json!({ "id": team }),
        )
        .await;
    assert!(r.at("team.members").is_null());
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
}

#[tokio::test]
async fn members_are_listed_in_area_and_found_without_diacritics() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let far = app
        .create_team("05659-01", "Tổ Chùa Hang", "2022-05-01")
        .await;
    app.add_member(&team, "Trần Thị Lệ", "MEMBER", "YOUTH_UNION", "2023-01-01")
        .await;
    app.add_member(
        &far,
        "Trần Thị Lệ Hoa",
        "MEMBER",
        "YOUTH_UNION",
        "2023-01-01",
    )
    .await;
    let q = "query($s: String) { members(search: $s) { totalCount edges { node { person { fullName } team { name } } } } }";
    let r = app
        .gql(
            &token(&["VIEWER"], &["169"], &[]),
            q,
            json!({ "s": "tran thi le" }),
        )
        .await
        .ok();
    assert_eq!(r.at("members.totalCount"), 1);
    assert_eq!(r.at("members.edges.0.node.person.fullName"), "Trần Thị Lệ");
    let r = app
        .gql(&admin(), q, json!({ "s": "tran thi le" }))
        .await
        .ok();
    assert_eq!(r.at("members.totalCount"), 2);
    let r = app
        .gql(&token(&["REPORTER"], &["169"], &[]), q, json!({}))
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
}

#[tokio::test]
async fn each_role_may_or_may_not_change_and_end_memberships() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let other = app
        .create_team("05659-01", "Tổ Chùa Hang", "2022-05-01")
        .await;
    let cases = [
        (admin(), ""),
        (token(&["UNIT_ADMIN"], &["05692"], &[]), ""),
        (token(&["TEAM_LEADER"], &[], &[&team]), ""),
        (token(&["TEAM_LEADER"], &[], &[&other]), "NOT_FOUND"),
        (token(&["UNIT_ADMIN"], &["05710"], &[]), "NOT_FOUND"),
        (token(&["VIEWER"], &["19"], &[]), "FORBIDDEN top"),
        (token(&["REPORTER"], &["19"], &[]), "FORBIDDEN top"),
    ];
    for (t, expected) in cases {
        let m = app
            .add_member(&team, "Đỗ Văn Tú", "MEMBER", "VOLUNTEER", "2025-07-01")
            .await;
        let update = app
            .gql(
                &t,
                UPDATE,
                json!({ "i": { "membershipId": m, "affiliation": "TEACHER" } }),
            )
            .await;
        let end = app
            .gql(
                &t,
                END,
                json!({ "i": { "membershipId": m, "endedOn": "2025-10-01" } }),
            )
            .await;
        match expected {
            "" => {
                assert_eq!(
                    update.at("updateMembership.membership.affiliation"),
                    "TEACHER",
                    "{:?}",
                    update.body
                );
                assert_eq!(end.at("endMembership.membership.active"), false);
            }
            "FORBIDDEN top" => {
                assert_eq!(update.error_codes(), ["FORBIDDEN"]);
                assert_eq!(end.error_codes(), ["FORBIDDEN"]);
            }
            code => {
                assert_eq!(update.user_error_codes("updateMembership"), [code]);
                assert_eq!(end.user_error_codes("endMembership"), [code]);
            }
        }
    }
}

/// The raw body of a GraphQL answer (field order included) and the statements it cost.
async fn raw(app: &TestApp, token: &str, query: &str) -> (usize, String) {
    let before = app.statements.load(std::sync::atomic::Ordering::SeqCst);
    let body = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (
        app.statements.load(std::sync::atomic::Ordering::SeqCst) - before,
        body,
    )
}

/// The two ways of a query whose `{D}` follows a field or fragment spread: asked once (the
/// one-step path when the rest is plain), and asked twice under the same response key, which
/// the one-step paths leave to async-graphql's normal resolution (it merges the two into the
/// same answer). Blanks keep the rest of the query in place, so errors' locations match.
/// (`@include(if: true)` would not do: async-graphql drops `@include` and `@skip` before
/// resolving.)
fn both_ways(query: &str) -> (String, String) {
    let at = query.find("{D}").expect("a query with {D}");
    let start = query[..at]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .map_or(0, |i| i + 1);
    let repeated = format!(" {}", &query[start..at]);
    (
        query.replacen("{D}", &" ".repeat(repeated.len()), 1),
        query.replacen("{D}", &repeated, 1),
    )
}

/// An answer without its `extensions.cost` (a field asked twice costs twice).
fn without_cost(body: &str) -> String {
    const COST: &str = ",\"extensions\":{\"cost\":{\"requestedQueryCost\":";
    match body.find(COST) {
        Some(at) => {
            let end = at + body[at..].find("}}").expect("the end of the cost") + 2;
            format!("{}{}", &body[..at], &body[end..])
        }
        None => body.to_owned(),
    }
}

/// Callers of every kind for the one-step differential tests (`team`: the leader's team).
fn page_callers(team: &str) -> [String; 6] {
    [
        admin(),
        token(&["UNIT_ADMIN"], &["169"], &[]),
        token(&["VIEWER"], &["19"], &[]),
        token(&["VIEWER"], &["01"], &[]),
        token(&["TEAM_LEADER"], &[], &[team]),
        token(&["REPORTER"], &["169"], &[]),
    ]
}

/// One request first: the area rule of member lists uses the in-memory hierarchy, which the
/// first request after a test's changes loads again (the two ways compared then run the same
/// statements).
async fn load_hierarchy(app: &TestApp, caller: &str) {
    app.gql(
        caller,
        "{ teams(first: 10) { edges { node { members { role } } } } }",
        json!({}),
    )
    .await
    .ok();
}

#[tokio::test]
async fn one_step_columns_answer_as_the_normal_resolution_does() {
    // Every column of the one-step tables, asked alone both ways (see `both_ways`) by every
    // role: a column whose field later takes a guard, or answers differently by caller, shows
    // up as a difference here, whichever table it is in.
    use cnscd_api::graphql::plain::{CONNECTION_COLUMNS, EDGE_COLUMNS, PAGE_INFO};
    use cnscd_api::members::types::{MEMBERSHIP, PERSON};
    use cnscd_api::teams::fields::TEAM;
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let r = app
        .gql(
            &admin(),
            "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id } } }",
            json!({ "i": { "unitCode": "05692-01", "name": "Tổ cũ", "foundedOn": "2021-01-01", "decisionNumber": "12/QĐ-UBND", "decisionDate": "2021-01-02" } }),
        )
        .await
        .ok();
    let old = r.at("createTeam.team.id").as_str().unwrap().to_owned();
    app.gql(&admin(), ADD, member(&team, "Trần Thị Lệ", "LEADER"))
        .await
        .ok();
    app.gql(&admin(), ADD, member(&old, "Lò Văn Minh", "DEPUTY"))
        .await
        .ok();
    let ended = app
        .add_member(&team, "Vàng A Dế", "MEMBER", "YOUTH_UNION", "2022-06-01")
        .await;
    app.gql(
        &admin(),
        END,
        json!({ "i": { "membershipId": ended, "endedOn": "2023-02-01", "reason": "moved away" } }),
    )
    .await
    .ok();
    let r = app
        .gql(
            &admin(),
            "mutation($i: DissolveTeamInput!) { dissolveTeam(input: $i) { userErrors { code } } }",
            json!({ "i": { "teamId": old, "dissolvedOn": "2024-03-01", "reason": "merged" } }),
        )
        .await
        .ok();
    assert!(
        r.user_error_codes("dissolveTeam").is_empty(),
        "{:?}",
        r.body
    );
    let callers = page_callers(&team);
    load_hierarchy(&app, &callers[2]).await;
    // Where each table's columns sit in a query (`C` is the column).
    let shapes = [
        (
            "{ teams(first: 5) { nodes { C } } }",
            TEAM.names().collect::<Vec<_>>(),
        ),
        (
            "{ teams(first: 5) { nodes { members(includeEnded: true) { C } } } }",
            MEMBERSHIP.names().collect(),
        ),
        (
            "{ teams(first: 5) { nodes { members(includeEnded: true) { person { C } } } } }",
            PERSON.names().collect(),
        ),
        (
            "{ teams(first: 1) { pageInfo { C } } }",
            PAGE_INFO.names().collect(),
        ),
        (
            "{ teams(first: 1) { C } }",
            CONNECTION_COLUMNS.iter().map(|c| c.0).collect(),
        ),
        (
            "{ teams(first: 2) { edges { C } } }",
            EDGE_COLUMNS.iter().map(|c| c.0).collect(),
        ),
    ];
    let mut asked = 0;
    for (shape, columns) in &shapes {
        assert!(!columns.is_empty(), "{shape}");
        for column in columns {
            let (one_step, normal) = both_ways(&shape.replace('C', &format!("{column}{{D}}")));
            for caller in &callers {
                let (fast_statements, fast) = raw(&app, caller, &one_step).await;
                let (normal_statements, normal) = raw(&app, caller, &normal).await;
                assert_eq!(
                    without_cost(&fast),
                    without_cost(&normal),
                    "{one_step} as {caller}"
                );
                assert_eq!(fast_statements, normal_statements, "{one_step}");
                asked += 1;
            }
        }
    }
    assert!(asked >= 27 * callers.len(), "{asked}");
    // The one-step path did answer: its objects keep the query's order, where the normal
    // resolution puts `members` (it waits for a loader) after the fields that follow it.
    let (_, body) = raw(
        &app,
        &admin(),
        "{ teams(first: 5) { nodes { members { role } code } } }",
    )
    .await;
    let (members, code) = (
        body.find("\"members\"").unwrap(),
        body.find("\"code\"").unwrap(),
    );
    assert!(members < code, "{body}");
}

#[tokio::test]
async fn plain_member_lists_answer_as_the_normal_resolution_does() {
    // `Team.members` answers plain selections in one step from the rows; a field asked twice
    // under one key sends the same selection through async-graphql's normal resolution. Both must give
    // the same bytes: values, nulls, aliases, fragments, `__typename`, field order, errors.
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let far = app.create_team("05692-01", "Tổ xa", "2022-05-01").await;
    for (t, name, role) in [
        (&team, "Nguyễn Văn An", "MEMBER"),
        (&team, "Trần Thị Lệ", "LEADER"),
        (&far, "Lò Văn Minh", "DEPUTY"),
    ] {
        app.gql(&admin(), ADD, member(t, name, role)).await.ok();
    }
    let ended = app
        .add_member(&team, "Vàng A Dế", "MEMBER", "YOUTH_UNION", "2022-06-01")
        .await;
    let r = app
        .gql(
            &admin(),
            END,
            json!({ "i": { "membershipId": ended, "endedOn": "2023-02-01", "reason": "moved away" } }),
        )
        .await
        .ok();
    assert!(
        r.user_error_codes("endMembership").is_empty(),
        "{:?}",
        r.body
    );

    // `{D}` follows the field or spread asked twice the normal way (see `both_ways`); then
    // the fragments the selection uses.
    const P: &str = "fragment P on Person { fullName gender __typename }";
    const M: &str = "fragment M on Membership { id endedOn person { ...P } }";
    let selections = [
        ("role{D} person { fullName }", String::new()),
        (
            "__typename id{D} r: role role affiliation startedOn endedOn endReason active person { __typename fullName gender n: fullName }",
            String::new(),
        ),
        (
            "...M{D} ... on Membership { role } ... { active p: person { ... on Person { g: gender } } }",
            format!("{M} {P}"),
        ),
        ("person { fullName{D} } role", String::new()),
        ("role{D} person { fullName phone }", String::new()),
        ("role{D} person { ...P birthYear }", P.to_owned()),
        ("id{D} team { name }", String::new()),
    ];
    let callers = [
        admin(),
        token(&["UNIT_ADMIN"], &["169"], &[]),
        token(&["VIEWER"], &["19"], &[]),
        token(&["VIEWER"], &["169"], &[]),
        token(&["TEAM_LEADER"], &[], &[&team]),
        token(&["REPORTER"], &["169"], &[]),
    ];
    load_hierarchy(&app, &callers[2]).await;
    for members in [
        "members",
        "members(includeEnded: true)",
        "current: members(includeEnded: false)",
    ] {
        for (selection, fragments) in &selections {
            let (one_step, normal) = both_ways(&format!(
                "{{ teams(first: 10) {{ edges {{ node {{ name {members} {{ {selection} }} }} }} }} }} {fragments}"
            ));
            for caller in &callers {
                let (fast_statements, fast) = raw(&app, caller, &one_step).await;
                let (normal_statements, normal) = raw(&app, caller, &normal).await;
                let (fast, normal) = (without_cost(&fast), without_cost(&normal));
                assert_eq!(fast, normal, "{one_step}");
                assert_eq!(fast_statements, normal_statements, "{one_step}");
                assert!(fast.contains("\"name\""), "{fast}");
            }
        }
    }

    // What the answers hold, for the bench's selection and a few callers.
    let q = "{ teams(first: 10) { edges { node { name members(includeEnded: true) { __typename r: role endedOn endReason person { __typename fullName gender } } } } } }";
    let (statements, body) = raw(&app, &admin(), q).await;
    assert_eq!(statements, 2);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let teams = body["data"]["teams"]["edges"].as_array().unwrap();
    assert_eq!(teams.len(), 2);
    let ours = teams.iter().find(|t| t["node"]["name"] == "Tổ").unwrap();
    let members = ours["node"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(members[0]["r"], "LEADER");
    assert_eq!(members[0]["__typename"], "Membership");
    assert_eq!(members[0]["person"]["__typename"], "Person");
    assert_eq!(members[0]["person"]["gender"], "FEMALE");
    assert_eq!(members[0]["endedOn"], serde_json::Value::Null);
    assert_eq!(members[2]["person"]["fullName"], "Vàng A Dế");
    assert_eq!(members[2]["person"]["gender"], serde_json::Value::Null);
    assert_eq!(members[2]["endedOn"], "2023-02-01");
    assert_eq!(members[2]["endReason"], "moved away");
    // A viewer of another area sees no team; a reporter may not read members.
    let (_, body) = raw(&app, &token(&["VIEWER"], &["01"], &[]), q).await;
    assert!(body.contains("\"edges\":[]"), "{body}");
    let (_, body) = raw(&app, &token(&["REPORTER"], &["169"], &[]), q).await;
    assert!(
        body.contains("FORBIDDEN") && !body.contains("\"role\""),
        "{body}"
    );
}

#[tokio::test]
async fn plain_team_pages_answer_as_the_normal_resolution_does() {
    // `Query.teams` answers plain selections of the page, its edges, teams and member lists in
    // one step from the rows; a field asked twice under one key anywhere in the page sends it
    // through the normal resolution. Both must give the same bytes (values, nulls, aliases, fragments,
    // `__typename`, cursors, field order, errors) and cost the same statements.
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let far = app.create_team("05692-01", "Tổ xa", "2022-05-01").await;
    let r = app
        .gql(
            &admin(),
            "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id } } }",
            json!({ "i": { "unitCode": "05677-01", "name": "Tổ cũ", "foundedOn": "2021-01-01", "decisionNumber": "12/QĐ-UBND", "decisionDate": "2021-01-02" } }),
        )
        .await
        .ok();
    let old = r.at("createTeam.team.id").as_str().unwrap().to_owned();
    for (t, name, role) in [
        (&team, "Nguyễn Văn An", "MEMBER"),
        (&team, "Trần Thị Lệ", "LEADER"),
        (&far, "Lò Văn Minh", "DEPUTY"),
        (&old, "Hà Thị Mai", "MEMBER"),
    ] {
        app.gql(&admin(), ADD, member(t, name, role)).await.ok();
    }
    app.add_member(&team, "Vàng A Dế", "MEMBER", "YOUTH_UNION", "2022-06-01")
        .await;
    let r = app
        .gql(
            &admin(),
            "mutation($i: DissolveTeamInput!) { dissolveTeam(input: $i) { userErrors { code } } }",
            json!({ "i": { "teamId": old, "dissolvedOn": "2024-03-01", "reason": "merged" } }),
        )
        .await
        .ok();
    assert!(
        r.user_error_codes("dissolveTeam").is_empty(),
        "{:?}",
        r.body
    );

    // `{D}` follows the field or spread asked twice the normal way (see `both_ways`); then
    // what follows the operation (fragments); then whether the bytes must be the same, or only
    // the JSON values. async-graphql's normal resolution puts an object's fields in the order
    // they complete, so a field that waits for a loader (`members`, `edges` above it, `unit`)
    // comes after those that follow it in the query, or in any order among several such
    // fields; the one-step answer keeps the query's order, as the GraphQL spec asks. The two
    // agree byte for byte where the waiting field comes last (the usual shape, the bench's).
    const T: &str = "fragment T on Team { id members(includeEnded: true) { ...M } }";
    const M: &str = "fragment M on Membership { role person { fullName } }";
    let queries = [
        (
            "{ teams(first: 100) { edges { node { id code name{D} members(includeEnded: true) { role person { fullName } } } } } }",
            String::new(),
            true,
        ),
        (
            "{ teams(first: 2) { __typename totalCount{D} pageInfo { __typename hasPreviousPage hasNextPage startCursor endCursor } edges { __typename cursor node { __typename id code name unitCode foundedOn decisionNumber decisionDate status dissolvedOn dissolutionReason createdAt updatedAt } } nodes { name } } }",
            String::new(),
            true,
        ),
        (
            "{ teams(last: 2, status: ACTIVE) { pageInfo { hasPreviousPage{D} hasNextPage startCursor endCursor } nodes { code members { id active } } } }",
            String::new(),
            true,
        ),
        (
            "{ teams(first: 10) { ...C ... on TeamConnection { pageInfo { endCursor{D} } } ... { totalCount } } }",
            format!(
                "fragment C on TeamConnection {{ edges {{ ...E }} }} fragment E on TeamEdge {{ node {{ ...T name }} }} {T} {M}"
            ),
            false,
        ),
        (
            "{ teams { a: edges { n: node { x: name m1: members(includeEnded: true) { role } m2: members { id endedOn } } } b: edges { cursor{D} } } }",
            String::new(),
            false,
        ),
        (
            "query($e: Boolean = true) { teams { edges { node { name{D} members(includeEnded: $e) { role endReason } } } } }",
            String::new(),
            true,
        ),
        // Not plain in the page: both ways resolve it normally (and agree on errors).
        (
            "query($e: Boolean) { teams { edges { node { name{D} members(includeEnded: $e) { role } } } } }",
            String::new(),
            true,
        ),
        (
            "{ teams { edges { node { id id{D} } } } }",
            String::new(),
            true,
        ),
        (
            "{ teams { edges { node { name{D} unit { code } memberCount latestActivity { id } } } } }",
            String::new(),
            false,
        ),
        (
            "{ teams { edges { node { ... on Node { id{D} } members { person { fullName phone } } } } } }",
            String::new(),
            true,
        ),
        (
            "{ teams(first: 101) { totalCount{D} } }",
            String::new(),
            true,
        ),
    ];
    let callers = [
        admin(),
        token(&["UNIT_ADMIN"], &["169"], &[]),
        token(&["VIEWER"], &["19"], &[]),
        token(&["VIEWER"], &["169"], &[]),
        token(&["VIEWER"], &["01"], &[]),
        token(&["TEAM_LEADER"], &[], &[&team]),
        token(&["REPORTER"], &["169"], &[]),
    ];
    load_hierarchy(&app, &callers[2]).await;
    for (query, fragments, exact) in &queries {
        let (one_step, normal) = both_ways(&format!("{query} {fragments}"));
        for caller in &callers {
            let (fast_statements, fast) = raw(&app, caller, &one_step).await;
            let (normal_statements, normal) = raw(&app, caller, &normal).await;
            let (fast, normal) = (without_cost(&fast), without_cost(&normal));
            let parsed = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
            assert_eq!(parsed(&fast), parsed(&normal), "{one_step}");
            if *exact {
                assert_eq!(fast, normal, "{one_step}");
            }
            assert_eq!(fast_statements, normal_statements, "{one_step}");
        }
    }

    // What the answers hold, for the bench's selection.
    let q = "{ teams(first: 100) { edges { node { id code name members(includeEnded: true) { role person { fullName } } } } } }";
    let (statements, body) = raw(&app, &admin(), q).await;
    assert_eq!(statements, 2);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let teams = body["data"]["teams"]["edges"].as_array().unwrap();
    assert_eq!(teams.len(), 3);
    let ours = teams
        .iter()
        .find(|t| t["node"]["id"] == team.as_str())
        .unwrap();
    assert_eq!(ours["node"]["name"], "Tổ");
    let members = ours["node"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(members[0]["role"], "LEADER");
    let (statements, body) = raw(&app, &token(&["VIEWER"], &["19"], &[]), q).await;
    assert_eq!(statements, 2);
    assert!(
        body.contains("Tổ xa") && body.contains("Lò Văn Minh"),
        "{body}"
    );
    let (_, body) = raw(&app, &token(&["VIEWER"], &["01"], &[]), q).await;
    assert!(body.contains("\"edges\":[]"), "{body}");
    let (_, body) = raw(&app, &token(&["REPORTER"], &["169"], &[]), q).await;
    assert!(
        body.contains("FORBIDDEN") && !body.contains("\"role\""),
        "{body}"
    );
    // A page of teams and one of team codes, pages, and cursors that move on.
    let (_, body) = raw(
        &app,
        &admin(),
        "{ teams(first: 1) { pageInfo { hasNextPage endCursor } edges { cursor } } }",
    )
    .await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["data"]["teams"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(
        body["data"]["teams"]["pageInfo"]["endCursor"],
        body["data"]["teams"]["edges"][0]["cursor"]
    );
}
