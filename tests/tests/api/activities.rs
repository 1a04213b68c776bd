//! Activity intake: roles and areas, validation, idempotency under retries and races.
use cnscd_tests::*;
use serde_json::{Value, json};

const SUBMIT: &str = "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { replayed activity { id kind unitCode participants outcomes { service people households } submittedBy clientId } userErrors { field message code } } }";

fn input(team: &str, key: &str) -> Value {
    json!({ "i": {
        "idempotencyKey": key, "teamId": team, "kind": "DOOR_TO_DOOR", "occurredOn": "2024-03-05",
        "title": "Hướng dẫn kích hoạt VNeID mức 2", "participants": 12, "householdsReached": 8,
        "outcomes": [ { "service": "VNEID", "people": 9, "households": 7 }, { "service": "UTILITY_BILL_PAYMENT", "people": 4 } ]
    } })
}

#[tokio::test]
async fn each_role_may_or_may_not_submit_activities() {
    let app = spawn_app().await;
    let team = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    let allowed = [
        admin(),
        token(&["UNIT_ADMIN"], &["169"], &[]),
        token(&["REPORTER"], &["05677"], &[]),
        token(&["TEAM_LEADER"], &[], &[&team]),
    ];
    for (i, t) in allowed.iter().enumerate() {
        let r = app
            .gql(t, SUBMIT, input(&team, &format!("k{i}")))
            .await
            .ok();
        assert_eq!(
            r.at("submitActivity.userErrors"),
            &json!([]),
            "{:?}",
            r.body
        );
        assert_eq!(r.at("submitActivity.activity.unitCode"), "05677-01");
        assert_eq!(r.at("submitActivity.activity.outcomes.0.service"), "VNEID");
        assert_eq!(r.at("submitActivity.activity.clientId"), "test-app");
    }
    let r = app
        .gql(
            &token(&["VIEWER"], &["169"], &[]),
            SUBMIT,
            input(&team, "v"),
        )
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    // A reporter elsewhere does not even see the team.
    let r = app
        .gql(
            &token(&["REPORTER"], &["164"], &[]),
            SUBMIT,
            input(&team, "far"),
        )
        .await
        .ok();
    assert_eq!(
        r.at("submitActivity.userErrors.0.field"),
        &json!(["input", "teamId"])
    );
    // A reporter of the ceased district cannot submit for days after it ended.
    let mut late = input(&team, "late");
    late["i"]["occurredOn"] = json!("2025-08-01");
    let r = app
        .gql(&token(&["REPORTER"], &["169"], &[]), SUBMIT, late.clone())
        .await
        .ok();
    assert_eq!(r.user_error_codes("submitActivity"), ["FORBIDDEN"]);
    let r = app
        .gql(&token(&["REPORTER"], &["05692"], &[]), SUBMIT, late)
        .await
        .ok();
    assert_eq!(r.at("submitActivity.userErrors"), &json!([]));
}

#[tokio::test]
async fn submit_activity_rejects_bad_input_and_stores_nothing() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "kind": "PARTY" }), "kind"),
        (json!({ "occurredOn": "2099-01-01" }), "occurredOn"),
        (json!({ "occurredOn": "2021-01-01" }), "occurredOn"),
        (json!({ "participants": -1 }), "participants"),
        (json!({ "householdsReached": 1000000 }), "householdsReached"),
        (json!({ "title": " " }), "title"),
        (json!({ "idempotencyKey": "" }), "idempotencyKey"),
        (json!({ "unitCode": "05659-01" }), "unitCode"),
        (json!({ "unitCode": "nowhere" }), "unitCode"),
        (
            json!({ "outcomes": [ { "service": "TELEPORT", "people": 1 } ] }),
            "outcomes.0.service",
        ),
        (
            json!({ "outcomes": [ { "service": "VNEID", "people": -5 } ] }),
            "outcomes.0.people",
        ),
        (
            json!({ "outcomes": [ { "service": "VNEID", "people": 1 }, { "service": "VNEID", "people": 2 } ] }),
            "outcomes.1.service",
        ),
    ];
    for (i, (change, field)) in cases.into_iter().enumerate() {
        let mut v = input(&team, &format!("bad-{i}"));
        for (k, val) in change.as_object().unwrap() {
            v["i"][k] = val.clone();
        }
        let r = app.gql(&admin(), SUBMIT, v).await.ok();
        assert!(r.at("submitActivity.activity").is_null(), "{field}");
        let expected: Vec<String> = ["input"]
            .into_iter()
            .chain(field.split('.'))
            .map(String::from)
            .collect();
        assert_eq!(
            r.at("submitActivity.userErrors.0.field"),
            &json!(expected),
            "{:?}",
            r.body
        );
        assert_eq!(r.at("submitActivity.userErrors.0.code"), "VALIDATION");
    }
    let r = app
        .gql(&admin(), "{ activities { totalCount } }", json!({}))
        .await
        .ok();
    assert_eq!(r.at("activities.totalCount"), 0);
    // An activity may be recorded at the commune that contains the team's hamlet.
    let mut at_commune = input(&team, "commune");
    at_commune["i"]["unitCode"] = json!("05677");
    let r = app.gql(&admin(), SUBMIT, at_commune).await.ok();
    assert_eq!(r.at("submitActivity.activity.unitCode"), "05677");
    // Out-of-range integers are refused as bad input, not a server error.
    let mut huge = input(&team, "huge");
    huge["i"]["participants"] = json!(1e12);
    let r = app.gql(&admin(), SUBMIT, huge).await;
    assert!(r.status == 400 || r.status == 200, "{}", r.status);
    assert!(r.body["errors"].is_array());
}

#[tokio::test]
async fn a_retry_returns_the_original_activity() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let reporter = token(&["REPORTER"], &["169"], &[]);
    let first = app
        .gql(&reporter, SUBMIT, input(&team, "retry-1"))
        .await
        .ok();
    assert_eq!(first.at("submitActivity.replayed"), false);
    let again = app
        .gql(&reporter, SUBMIT, input(&team, "retry-1"))
        .await
        .ok();
    assert_eq!(again.at("submitActivity.replayed"), true);
    assert_eq!(
        again.at("submitActivity.activity.id"),
        first.at("submitActivity.activity.id")
    );
    // Same key, different input: refused.
    let mut changed = input(&team, "retry-1");
    changed["i"]["participants"] = json!(13);
    let r = app.gql(&reporter, SUBMIT, changed).await.ok();
    assert_eq!(
        r.user_error_codes("submitActivity"),
        ["IDEMPOTENCY_KEY_REUSED"]
    );
    // Keys belong to their caller: another caller's same key is a new submission.
    let other = app
        .gql(
            &token(&["REPORTER"], &["05677"], &[]),
            SUBMIT,
            input(&team, "retry-1"),
        )
        .await
        .ok();
    assert_eq!(other.at("submitActivity.replayed"), false);
    let r = app
        .gql(&admin(), "{ activities { totalCount } }", json!({}))
        .await
        .ok();
    assert_eq!(r.at("activities.totalCount"), 2);
}

#[tokio::test]
async fn a_concurrent_double_submission_stores_one_activity() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let reporter = token(&["REPORTER"], &["169"], &[]);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, address, reporter, body) = (
            app.client.clone(),
            app.address.clone(),
            reporter.clone(),
            json!({ "query": SUBMIT, "variables": input(&team, "race") }),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(format!("{address}/graphql"))
                .bearer_auth(reporter)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut fresh = 0;
    for t in tasks {
        let body = t.await.unwrap();
        let payload = &body["data"]["submitActivity"];
        assert!(payload["activity"]["id"].is_string(), "{body}");
        ids.insert(payload["activity"]["id"].as_str().unwrap().to_owned());
        if payload["replayed"] == false {
            fresh += 1;
        }
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(fresh, 1);
    let r = app
        .gql(&admin(), "{ activities { totalCount } }", json!({}))
        .await
        .ok();
    assert_eq!(r.at("activities.totalCount"), 1);
    // The rollups counted it once.
    let r = app
        .gql(&admin(), "{ indicators(codes: [\"CNS09\"], unitCodes: [\"169\"], from: \"2024-03-01\", to: \"2024-03-31\") { value } }", json!({}))
        .await
        .ok();
    assert_eq!(r.at("indicators.0.value"), 9.0);
}

#[tokio::test]
async fn activities_are_read_within_the_callers_scope() {
    let app = spawn_app().await;
    let cafe = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let far = app
        .create_team("05659-01", "Tổ Chùa Hang", "2022-05-01")
        .await;
    let reporter = token(&["REPORTER"], &["169"], &[]);
    let mine = app.gql(&reporter, SUBMIT, input(&cafe, "mine")).await.ok();
    let mine = mine
        .at("submitActivity.activity.id")
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = app.submit(&cafe, "TRAINING", "2024-04-01", json!({})).await;
    let far_one = app.submit(&far, "HELP_DESK", "2024-04-02", json!({})).await;
    let list = "query($k: String, $f: Date, $t: Date) { activities(kind: $k, from: $f, to: $t) { totalCount edges { node { id team { name } } } } }";
    // A reporter reads what it submitted, and nothing else.
    let r = app.gql(&reporter, list, json!({})).await.ok();
    assert_eq!(r.at("activities.totalCount"), 1);
    assert_eq!(r.at("activities.edges.0.node.id"), mine.as_str());
    let r = app
        .gql(
            &reporter,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": theirs }),
        )
        .await;
    assert_eq!(r.error_codes(), ["NOT_FOUND"]);
    // A viewer reads its area, with filters.
    let viewer = token(&["VIEWER"], &["169"], &[]);
    let r = app.gql(&viewer, list, json!({})).await.ok();
    assert_eq!(r.at("activities.totalCount"), 2);
    let r = app
        .gql(&viewer, list, json!({ "k": "TRAINING" }))
        .await
        .ok();
    assert_eq!(r.at("activities.totalCount"), 1);
    let r = app
        .gql(
            &viewer,
            list,
            json!({ "f": "2024-03-06", "t": "2024-12-31" }),
        )
        .await
        .ok();
    assert_eq!(r.at("activities.totalCount"), 1);
    let r = app
        .gql(
            &viewer,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": far_one }),
        )
        .await;
    assert_eq!(r.error_codes(), ["NOT_FOUND"]);
    // Team leaders read their team's activities.
    let r = app
        .gql(&token(&["TEAM_LEADER"], &[], &[&far]), list, json!({}))
        .await
        .ok();
    assert_eq!(r.at("activities.totalCount"), 1);
    let r = app
        .gql(
            &viewer,
            list,
            json!({ "f": "2024-05-01", "t": "2024-01-01" }),
        )
        .await;
    assert_eq!(r.error_codes(), ["VALIDATION"]);
}

#[tokio::test]
async fn nested_lists_cost_the_same_statements_whatever_the_page_size() {
    let app = spawn_app().await;
    for i in 0..12 {
        let unit = if i % 2 == 0 { "05677-02" } else { "05692-01" };
        let t = app
            .create_team(unit, &format!("Tổ {i}"), "2022-05-01")
            .await;
        app.add_member(&t, "Nguyễn Văn An", "LEADER", "HAMLET_HEAD", "2022-05-01")
            .await;
        app.add_member(&t, "Trần Thị Lệ", "MEMBER", "YOUTH_UNION", "2022-05-01")
            .await;
        app.submit(
            &t,
            "TRAINING",
            "2024-04-01",
            json!({ "outcomes": [ { "service": "VNEID", "people": 3 } ] }),
        )
        .await;
    }
    let q = "query($n: Int) { teams(first: $n) { totalCount edges { node { name unit { name parent { name } } members { role person { fullName phone } team { code } } memberCount latestActivity { occurredOn outcomes { people } team { name } unit { code } } } } } }";
    let viewer = token(&["UNIT_ADMIN"], &["19"], &[]);
    // Once first: the area rule of member lists uses the in-memory hierarchy, which the first
    // request after the changes above loads again.
    app.gql(&viewer, q, json!({ "n": 1 })).await.ok();
    let (small, r) = app.statements_for(&viewer, q, json!({ "n": 2 })).await;
    assert_eq!(r.ok().at("teams.edges").as_array().unwrap().len(), 2);
    let (large, r) = app.statements_for(&viewer, q, json!({ "n": 12 })).await;
    let edges = r.ok().at("teams.edges").as_array().unwrap().clone();
    assert_eq!(edges.len(), 12);
    // Loaders batch each edge into one statement; when two edges share a loader, request
    // timing may split a batch in two, so allow that much jitter, never growth with the page.
    assert!(
        large.abs_diff(small) <= 2,
        "statements for 2 teams: {small}, for 12 teams: {large}"
    );
    assert!(large <= 16, "{large} statements");
    for e in edges {
        assert_eq!(e["node"]["latestActivity"]["outcomes"][0]["people"], 3);
        assert_eq!(e["node"]["members"][0]["role"], "LEADER");
    }
}

#[tokio::test]
async fn the_benchmarked_nested_list_costs_two_statements_whatever_the_page_size() {
    // `bench/lists.sh`'s query: the page of teams, then every membership of the page with its
    // person in one statement; no COUNT, since `totalCount` is not asked for.
    let app = spawn_app().await;
    for i in 0..12 {
        let unit = if i % 2 == 0 { "05677-02" } else { "05692-01" };
        let t = app
            .create_team(unit, &format!("Tổ {i}"), "2022-05-01")
            .await;
        app.add_member(&t, "Nguyễn Văn An", "LEADER", "HAMLET_HEAD", "2022-05-01")
            .await;
        app.add_member(&t, "Trần Thị Lệ", "MEMBER", "YOUTH_UNION", "2022-05-01")
            .await;
    }
    let q = "query($n: Int) { teams(first: $n) { pageInfo { hasNextPage } edges { node { id code name members(includeEnded: true) { role person { fullName } } } } } }";
    // Once first: the area rule of a VIEWER's member lists uses the in-memory hierarchy, which
    // the first request after the changes above loads again (its generation comes with the
    // memberships: no statement of its own).
    app.gql(&token(&["VIEWER"], &["19"], &[]), q, json!({ "n": 1 }))
        .await
        .ok();
    for (caller, expected) in [(admin(), 2), (token(&["VIEWER"], &["19"], &[]), 2)] {
        for (n, more) in [(2, true), (12, false), (100, false)] {
            let (statements, r) = app.statements_for(&caller, q, json!({ "n": n })).await;
            let r = r.ok();
            let edges = r.at("teams.edges").as_array().unwrap().clone();
            assert_eq!(edges.len(), n.min(12));
            assert_eq!(r.at("teams.pageInfo.hasNextPage"), more);
            for e in edges {
                assert_eq!(e["node"]["members"][0]["role"], "LEADER");
                assert_eq!(
                    e["node"]["members"][0]["person"]["fullName"],
                    "Nguyễn Văn An"
                );
                assert_eq!(e["node"]["members"][1]["person"]["fullName"], "Trần Thị Lệ");
            }
            assert_eq!(statements, expected, "{n} teams");
        }
    }
    // Personal data is still decided per membership, and asked once per membership however
    // many personal fields are read.
    let q = "{ teams(first: 12) { edges { node { members { person { fullName phone email birthYear } } } } } }";
    let (statements, r) = app.statements_for(&admin(), q, json!({})).await;
    assert_eq!(r.ok().at("teams.edges").as_array().unwrap().len(), 12);
    assert_eq!(statements, 2);
    let (statements, r) = app
        .statements_for(&token(&["VIEWER"], &["19"], &[]), q, json!({}))
        .await;
    assert!(
        r.error_codes().iter().all(|c| c == "FORBIDDEN"),
        "{:?}",
        r.body
    );
    assert_eq!(statements, 2);
}

#[tokio::test]
async fn a_locked_period_refuses_new_activities() {
    use sea_orm::ActiveModelTrait;
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    period_lock("169", "2024-01-01", "2024-03-31")
        .insert(&app.db)
        .await
        .unwrap();
    let r = app.gql(&admin(), SUBMIT, input(&team, "locked")).await.ok();
    assert_eq!(r.user_error_codes("submitActivity"), ["PERIOD_LOCKED"]);
    let mut april = input(&team, "open");
    april["i"]["occurredOn"] = json!("2024-04-01");
    let r = app.gql(&admin(), SUBMIT, april).await.ok();
    assert_eq!(r.at("submitActivity.userErrors"), &json!([]));
}

/// A key belongs to one submission of its caller, whichever operation used it first: the
/// other operation refuses it, and a retry of a stored activity answers as a replay even
/// after its month was locked.
#[tokio::test]
async fn a_key_is_one_submission_across_operations_and_locks() {
    use sea_orm::ActiveModelTrait;
    const FIGURES: &str = "mutation($i: SubmitDataValuesInput!) { submitDataValues(input: $i) { replayed userErrors { field code } } }";
    let figures = |key: &str| {
        json!({ "i": { "idempotencyKey": key, "sourceSystem": "DVCQG", "values": [
            { "element": "DOSSIERS_TOTAL", "unitCode": "05677", "periodStart": "2024-01-01",
              "periodEnd": "2024-12-31", "value": 10.0 } ] } })
    };
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    let reporter = token(&["REPORTER"], &["169"], &[]);

    let r = app.gql(&reporter, FIGURES, figures("shared-1")).await.ok();
    assert_eq!(
        r.at("submitDataValues.userErrors"),
        &json!([]),
        "{}",
        r.body
    );
    let r = app
        .gql(&reporter, SUBMIT, input(&team, "shared-1"))
        .await
        .ok();
    assert_eq!(
        r.user_error_codes("submitActivity"),
        ["IDEMPOTENCY_KEY_REUSED"],
        "{}",
        r.body
    );
    // In a batch too, where the other items are stored.
    let r = app
        .gql(
            &reporter,
            "mutation($i: SubmitActivitiesInput!) { submitActivities(input: $i) { results { replayed activity { id } userErrors { field code } } } }",
            json!({ "i": { "items": [input(&team, "shared-1")["i"], input(&team, "own-1")["i"]] } }),
        )
        .await
        .ok();
    assert_eq!(
        r.at("submitActivities.results.0.userErrors.0.code"),
        "IDEMPOTENCY_KEY_REUSED",
        "{}",
        r.body
    );
    assert!(r.at("submitActivities.results.1.activity.id").is_string());

    let first = app
        .gql(&reporter, SUBMIT, input(&team, "activity-1"))
        .await
        .ok();
    assert_eq!(first.at("submitActivity.replayed"), false, "{}", first.body);
    let r = app
        .gql(&reporter, FIGURES, figures("activity-1"))
        .await
        .ok();
    assert_eq!(
        r.user_error_codes("submitDataValues"),
        ["IDEMPOTENCY_KEY_REUSED"],
        "{}",
        r.body
    );

    // The month is locked; a retry of what was stored before still answers as a replay, a
    // new submission is refused.
    period_lock("169", "2024-03-01", "2024-03-31")
        .insert(&app.db)
        .await
        .unwrap();
    let again = app
        .gql(&reporter, SUBMIT, input(&team, "activity-1"))
        .await
        .ok();
    assert_eq!(again.at("submitActivity.replayed"), true, "{}", again.body);
    assert_eq!(
        again.at("submitActivity.activity.id"),
        first.at("submitActivity.activity.id")
    );
    let r = app
        .gql(&reporter, SUBMIT, input(&team, "activity-2"))
        .await
        .ok();
    assert_eq!(r.user_error_codes("submitActivity"), ["PERIOD_LOCKED"]);
    let r = app
        .gql(&admin(), "{ activities { totalCount } }", json!({}))
        .await
        .ok();
    assert_eq!(r.at("activities.totalCount"), 2);
}
