//! GraphQL over HTTP: status codes, media types, GET, GraphiQL, health.
use cnscd_tests::*;
use serde_json::json;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn get_runs_queries_but_never_mutations() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/graphql", app.address))
        .bearer_auth(admin())
        .query(&[("query", "{ activityKinds { code nameVi } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["data"]["activityKinds"][0]["code"],
        "COMMUNITY_MEETING"
    );
    let r = app
        .client
        .get(format!("{}/graphql", app.address))
        .bearer_auth(admin())
        .query(&[("query", "mutation { dissolveTeam(input: {teamId: \"x\", dissolvedOn: \"2024-01-01\"}) { userErrors { message } } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn a_browser_gets_graphiql_without_a_token() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("graphiql"));
}

#[tokio::test]
async fn unparsable_or_invalid_requests_get_400() {
    let app = spawn_app().await;
    let r = app.gql(&admin(), "{ me { subject ", json!({})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = app.gql(&admin(), "{ me { noSuchField } }", json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_codes(), ["VALIDATION"]);
    let r = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(admin())
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .gql(
            &admin(),
            "query($d: Date!) { adminUnit(code: \"19\", on: $d) { code } }",
            json!({ "d": "2024-13-45" }),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("YYYY-MM-DD")
    );
}

#[tokio::test]
async fn media_type_follows_the_accept_header() {
    let app = spawn_app().await;
    for (accept, expected) in [
        ("application/json", "application/json"),
        (
            "application/graphql-response+json",
            "application/graphql-response+json",
        ),
    ] {
        let r = app
            .client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(admin())
            .header("Accept", accept)
            .json(&json!({ "query": "{ me { subject } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], expected);
    }
}

#[tokio::test]
async fn too_deep_queries_are_refused_before_they_run() {
    let app = spawn_app().await;
    let mut q = String::from("{ adminUnit(code: \"05677-01\") { ");
    for _ in 0..14 {
        q.push_str("parent { ");
    }
    q.push_str("code");
    for _ in 0..15 {
        q.push_str(" }");
    }
    q.push_str(" }");
    let r = app.gql(&admin(), &q, json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_codes(), ["QUERY_TOO_COMPLEX"]);
}

#[tokio::test]
async fn units_answer_as_they_were_on_a_date() {
    let app = spawn_app().await;
    let q = "query($on: Date) { adminUnit(code: \"05692\", on: $on) { name level parentCode validTo parent { code } } }";
    let before = app
        .gql(&admin(), q, json!({ "on": "2024-06-01" }))
        .await
        .ok();
    assert_eq!(before.at("adminUnit.name"), "Thị trấn Hóa Thượng");
    assert_eq!(before.at("adminUnit.parentCode"), "169");
    assert_eq!(before.at("adminUnit.validTo"), "2025-06-30");
    let after = app
        .gql(&admin(), q, json!({ "on": "2025-08-01" }))
        .await
        .ok();
    assert_eq!(after.at("adminUnit.name"), "Xã Đồng Hỷ");
    assert_eq!(after.at("adminUnit.parent.code"), "19");
    // Hamlets of Minh Lập moved into Xã Đồng Hỷ; search ignores diacritics.
    let q = "query($on: Date) { adminUnits(under: \"05692\", on: $on, level: HAMLET, search: \"ca phe\") { totalCount edges { node { code name } } } }";
    let r = app
        .gql(&admin(), q, json!({ "on": "2025-08-01" }))
        .await
        .ok();
    assert_eq!(r.at("adminUnits.totalCount"), 1);
    assert_eq!(r.at("adminUnits.edges.0.node.name"), "Xóm Cà Phê");
    let r = app
        .gql(&admin(), q, json!({ "on": "2024-08-01" }))
        .await
        .ok();
    assert_eq!(r.at("adminUnits.totalCount"), 0);
    let r = app
        .gql(
            &admin(),
            "{ adminUnit(code: \"05677\") { successors { newCode kind effectiveOn } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(r.at("adminUnit.successors.0.newCode"), "05692");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.db.clone().close().await.unwrap();
    let r = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let r = app
        .gql(&admin(), "{ activityKinds { code } }", json!({}))
        .await;
    assert_eq!(r.error_codes(), ["INTERNAL"]);
    let message = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        !message.contains("sqlx") && !message.contains("SELECT"),
        "{message}"
    );
}

#[tokio::test]
async fn the_demo_tokens_authenticate_each_role() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    for (role, t) in cnscd_api::cli::demo_tokens(SECRET, Some(&team)).unwrap() {
        let r = app.gql(&t, "{ me { roles teams } }", json!({})).await.ok();
        assert_eq!(r.at("me.roles"), &json!([role]));
    }
}

#[tokio::test]
async fn migrations_go_down_and_up_again() {
    use cnscd_migration::MigratorTrait;
    let test_db = TestDb::new().await;
    let db = cnscd_api::startup::prepare_database(&test_db.url)
        .await
        .unwrap();
    cnscd_migration::Migrator::down(&db, None).await.unwrap();
    assert_eq!(
        cnscd_migration::Migrator::get_pending_migrations(&db)
            .await
            .unwrap()
            .len(),
        cnscd_migration::Migrator::migrations().len()
    );
    cnscd_migration::Migrator::up(&db, None).await.unwrap();
    cnscd_api::catalog::service::ensure_defaults(&db)
        .await
        .unwrap();
    // Seeding the catalogues twice changes nothing.
    cnscd_api::catalog::service::ensure_defaults(&db)
        .await
        .unwrap();
}

#[tokio::test]
async fn malformed_requests_never_get_a_server_error() {
    let app = spawn_app().await;
    let url = format!("{}/graphql", app.address);
    let mut bodies: Vec<String> = vec![
        "".into(),
        "null".into(),
        "[]".into(),
        "{\"query\": 5}".into(),
        "{\"query\": \"{ me { subject } }\", \"variables\": \"nope\"}".into(),
        "{\"query\": \"query($x: Int!) { teams(first: $x) { totalCount } }\", \"variables\": {\"x\": 99999999999}}".into(),
        "{\"query\": \"{ teams(first: -5) { totalCount } }\"}".into(),
        "{\"query\": \"{ teams(after: \\\"%%%\\\") { totalCount } }\"}".into(),
        "{\"query\": \"{ node(id: \\\"\\\") { id } }\"}".into(),
        "{\"query\": \"{ node(id: \\\"QWRtaW5Vbml0OjE5QG5vdGFkYXRl\\\") { id } }\"}".into(),
        "{\"query\": \"{ adminUnits(search: \\\"%_\\\\\\\\\\\") { totalCount } }\"}".into(),
        "{\"query\": \"{ indicators(codes: [], unitCodes: [], from: \\\"2024-01-01\\\", to: \\\"2024-01-01\\\") { value } }\"}".into(),
        "{\"query\": \"{ indicators(codes: [\\\"CNS01\\\"], unitCodes: [\\\"19\\\"], from: \\\"0001-01-01\\\", to: \\\"9999-12-31\\\", granularity: YEAR) { value } }\"}".into(),
        "{\"query\": \"mutation { submitActivity(input: {idempotencyKey: \\\"k\\\", teamId: \\\"VGVhbTotMQ\\\", kind: \\\"OTHER\\\", occurredOn: \\\"2024-01-01\\\", title: \\\"t\\\"}) { userErrors { code } } }\"}".into(),
        "{\"query\": \"mutation { createTeam(input: {unitCode: \\\"\\u0000\\\", name: \\\"\\u0000\\\", foundedOn: \\\"2024-02-30\\\"}) { userErrors { code } } }\"}".into(),
        format!("{{\"query\": \"{}\"}}", "{ me { subject } } ".repeat(2000)),
        format!("{{\"query\": \"{{ {} }}\"}}", (0..300).map(|i| format!("a{i}: me {{ subject }}")).collect::<Vec<_>>().join(" ")),
        format!("{{\"query\": \"{}\"}}", "[".repeat(5000)),
    ];
    // Deterministic noise.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..20 {
        let len = (seed % 200) as usize;
        let mut noise = String::new();
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            noise.push(char::from(
                b" {}[]()\":,!$@.a-zA-Z0-9\\"[(seed % 24) as usize],
            ));
        }
        bodies.push(format!(
            "{{\"query\": \"{}\"}}",
            noise.replace(['\\', '"'], "")
        ));
        bodies.push(noise);
    }
    for body in bodies {
        let r = app
            .client
            .post(&url)
            .bearer_auth(admin())
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(
            status < 500,
            "{status} for {}",
            &body[..body.len().min(200)]
        );
        if status != 200 {
            let json: serde_json::Value = r.json().await.unwrap_or_default();
            assert!(json["errors"][0]["message"].is_string(), "{status}: {json}");
        }
    }
}

#[tokio::test]
async fn unit_lists_load_parents_children_and_successions_in_batches() {
    let app = spawn_app().await;
    let q = "query($n: Int) { adminUnits(on: \"2024-06-01\", first: $n) { edges { node { code parent { code } children { code } successors { newCode kind } predecessors { oldCode } } } } }";
    let (small, r) = app.statements_for(&admin(), q, json!({ "n": 2 })).await;
    assert_eq!(r.ok().at("adminUnits.edges").as_array().unwrap().len(), 2);
    let (large, r) = app.statements_for(&admin(), q, json!({ "n": 11 })).await;
    let r = r.ok();
    assert_eq!(r.at("adminUnits.edges").as_array().unwrap().len(), 11);
    assert!(
        large.abs_diff(small) <= 2,
        "2 units: {small} statements, 11 units: {large}"
    );
    let minh_lap = r
        .at("adminUnits.edges")
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["code"] == "05677")
        .unwrap();
    assert_eq!(minh_lap["node"]["children"].as_array().unwrap().len(), 2);
    assert_eq!(minh_lap["node"]["successors"][0]["newCode"], "05692");
    assert_eq!(minh_lap["node"]["parent"]["code"], "169");
}
