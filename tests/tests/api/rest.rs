//! Saved operations as REST endpoints through the real endpoints: an ADMIN saves them (bad
//! names, documents and methods refused by field); `GET /api/rest/{name}` coerces its query
//! string by the variables' types, `POST` takes them as JSON; answers are the operation's data,
//! errors RFC 9457 problem documents with their status; the same token and area as `/graphql`;
//! `/api/openapi.json` describes every endpoint (validated by `openapi-spec-validator` where
//! Python has it; CI installs it); GET answers carry an ETag and answer 304.
use cnscd_tests::*;
use serde_json::{Value, json};

const SAVE: &str = "mutation($i: SaveRestEndpointInput!) { saveRestEndpoint(input: $i) { endpoint { name path method } userErrors { field code message } } }";

async fn save(app: &TestApp, name: &str, method: &str, document: &str) -> Gql {
    app.gql(
        &admin(),
        SAVE,
        json!({ "i": { "name": name, "method": method, "document": document, "description": format!("{name} for the LGSP") } }),
    )
    .await
}

async fn saved(app: &TestApp) {
    for (name, method, document) in [
        (
            "unit",
            "GET",
            "query Unit($code: String!, $on: Date) { adminUnit(code: $code, on: $on) { code name level } }",
        ),
        (
            "teams",
            "GET",
            "query Teams($under: String, $first: Int, $status: TeamStatus) { teams(under: $under, first: $first, status: $status) { totalCount nodes { code name memberCount } } }",
        ),
        (
            "indicators",
            "GET",
            "query($codes: [String!]!, $units: [String!]!, $from: Date!, $to: Date!) { indicators(codes: $codes, unitCodes: $units, from: $from, to: $to, granularity: YEAR) { indicator { code } unit { code } period { label } value status } }",
        ),
        (
            "create-team",
            "POST",
            "mutation CreateTeam($i: CreateTeamInput!) { createTeam(input: $i) { team { code name } userErrors { field code message } } }",
        ),
    ] {
        let r = save(app, name, method, document).await.ok();
        assert_eq!(
            r.at("saveRestEndpoint.userErrors"),
            &json!([]),
            "{:?}",
            r.body
        );
        assert_eq!(
            r.at("saveRestEndpoint.endpoint.path"),
            format!("/api/rest/{name}").as_str()
        );
    }
}

/// Status, headers and JSON body of a response.
async fn answer(r: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

fn is_problem(headers: &reqwest::header::HeaderMap, body: &Value, status: u16, code: &str) -> bool {
    headers
        .get("content-type")
        .is_some_and(|c| c == "application/problem+json")
        && body["status"] == status
        && body["code"] == code
        && body["title"].is_string()
        && body["detail"].is_string()
}

#[tokio::test]
async fn saved_operations_answer_as_rest_with_the_callers_rights() {
    let app = spawn_app().await;
    saved(&app).await;
    let url = |p: &str| format!("{}/api/rest/{p}", app.address);
    let viewer = token(&["VIEWER"], &["169"], &[]);

    // GET: variables from the query string, coerced by their types.
    let (status, headers, body) = answer(
        app.client
            .get(url("unit"))
            .bearer_auth(&viewer)
            .query(&[("code", "05677"), ("on", "2024-01-01")]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["adminUnit"]["code"], "05677", "{body}");
    let etag = headers.get("etag").cloned().expect("an ETag");
    let (status, _, _) = answer(
        app.client
            .get(url("unit"))
            .bearer_auth(&viewer)
            .query(&[("code", "05677"), ("on", "2024-01-01")])
            .header("if-none-match", etag),
    )
    .await;
    assert_eq!(status, 304);

    app.create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    let (status, _, body) = answer(app.client.get(url("teams")).bearer_auth(&viewer).query(&[
        ("under", "169"),
        ("first", "5"),
        ("status", "ACTIVE"),
    ]))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["teams"]["totalCount"], 1, "{body}");

    // Lists as one parameter per item; the caller's area decides what is read.
    let (status, _, body) = answer(
        app.client
            .get(url("indicators"))
            .bearer_auth(&viewer)
            .query(&[
                ("codes", "CNS02"),
                ("codes", "CNS05"),
                ("units", "05677"),
                ("from", "2023-01-01"),
                ("to", "2023-12-31"),
            ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["indicators"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    let outside = token(&["VIEWER"], &["05692"], &[]);
    let (status, headers, body) = answer(
        app.client
            .get(url("indicators"))
            .bearer_auth(&outside)
            .query(&[
                ("codes", "CNS02"),
                ("units", "05677"),
                ("from", "2023-01-01"),
                ("to", "2023-12-31"),
            ]),
    )
    .await;
    assert!(
        is_problem(&headers, &body, 403, "FORBIDDEN"),
        "{status} {body}"
    );

    // POST: variables as JSON; the caller's own rights.
    let input =
        json!({ "i": { "unitCode": "05677-02", "name": "Tổ mới", "foundedOn": "2023-01-01" } });
    let (status, headers, body) = answer(
        app.client
            .post(url("create-team"))
            .bearer_auth(&viewer)
            .json(&input),
    )
    .await;
    assert!(
        is_problem(&headers, &body, 403, "FORBIDDEN"),
        "{status} {body}"
    );
    assert_eq!(status, 403);
    let (status, _, body) = answer(
        app.client
            .post(url("create-team"))
            .bearer_auth(admin())
            .json(&input),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["createTeam"]["team"]["name"], "Tổ mới", "{body}");
}

#[tokio::test]
async fn bad_rest_calls_are_problem_documents_naming_what_is_wrong() {
    let app = spawn_app().await;
    saved(&app).await;
    let url = |p: &str| format!("{}/api/rest/{p}", app.address);
    let viewer = token(&["VIEWER"], &["169"], &[]);
    let cases: Vec<(reqwest::RequestBuilder, u16, &str, &str)> = vec![
        (
            app.client.get(url("unit")).query(&[("code", "05677")]),
            401,
            "UNAUTHENTICATED",
            "Authorization",
        ),
        (
            app.client.get(url("nope")).bearer_auth(&viewer),
            404,
            "NOT_FOUND",
            "nope",
        ),
        (
            app.client
                .post(url("unit"))
                .bearer_auth(&viewer)
                .json(&json!({})),
            405,
            "VALIDATION",
            "GET",
        ),
        (
            app.client.get(url("unit")).bearer_auth(&viewer),
            400,
            "VALIDATION",
            "`code` is required",
        ),
        (
            app.client
                .get(url("teams"))
                .bearer_auth(&viewer)
                .query(&[("first", "many")]),
            400,
            "VALIDATION",
            "whole number",
        ),
        (
            app.client
                .get(url("teams"))
                .bearer_auth(&viewer)
                .query(&[("first", "500")]),
            400,
            "VALIDATION",
            "100",
        ),
        (
            app.client
                .get(url("teams"))
                .bearer_auth(&viewer)
                .query(&[("status", "SLEEPING")]),
            400,
            "VALIDATION",
            "SLEEPING",
        ),
        (
            app.client
                .get(url("teams"))
                .bearer_auth(&viewer)
                .query(&[("colour", "red")]),
            400,
            "VALIDATION",
            "colour",
        ),
        (
            app.client
                .post(url("create-team"))
                .bearer_auth(admin())
                .body("{not json"),
            400,
            "VALIDATION",
            "not JSON",
        ),
        (
            app.client
                .post(url("create-team"))
                .bearer_auth(admin())
                .json(&json!([1])),
            400,
            "VALIDATION",
            "JSON object",
        ),
        (
            app.client
                .post(url("create-team"))
                .bearer_auth(admin())
                .json(&json!({})),
            400,
            "VALIDATION",
            "`i` is required",
        ),
        (
            app.client
                .post(url("create-team"))
                .bearer_auth(admin())
                .json(&json!({ "i": { "unitCode": 5 } })),
            400,
            "VALIDATION",
            "unitCode",
        ),
    ];
    for (request, status, code, says) in cases {
        let (got, headers, body) = answer(request).await;
        assert_eq!(got, status, "{body}");
        assert!(is_problem(&headers, &body, status, code), "{body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains(says)),
            "{says}: {body}"
        );
    }
}

#[tokio::test]
async fn only_an_admin_saves_endpoints_and_bad_ones_are_refused_by_field() {
    let app = spawn_app().await;
    let cases = [
        ("Bad Name", "GET", "{ me { subject } }", "name"),
        ("", "GET", "{ me { subject } }", "name"),
        (&*"x".repeat(65), "GET", "{ me { subject } }", "name"),
        ("ok", "GET", "{ me { subject ", "document"),
        (
            "ok",
            "GET",
            "subscription { activitySubmitted { id } }",
            "document",
        ),
        (
            "ok",
            "GET",
            "query A { me { subject } } query B { me { subject } }",
            "document",
        ),
        ("ok", "GET", "{ nothingHere }", "document"),
        (
            "ok",
            "GET",
            "{ adminUnit(code: $undeclared) { code } }",
            "document",
        ),
        (
            "ok",
            "GET",
            "mutation { dissolveTeam(input: {teamId: \"x\", dissolvedOn: \"2024-01-01\", reason: \"r\"}) { userErrors { code } } }",
            "method",
        ),
    ];
    for (name, method, document, field) in cases {
        let r = save(&app, name, method, document).await.ok();
        assert!(r.at("saveRestEndpoint.endpoint").is_null(), "{:?}", r.body);
        assert_eq!(
            r.at("saveRestEndpoint.userErrors.0.code"),
            "VALIDATION",
            "{document}: {:?}",
            r.body
        );
        assert_eq!(
            r.at("saveRestEndpoint.userErrors.0.field.1"),
            field,
            "{document}: {:?}",
            r.body
        );
    }
    for role in ["UNIT_ADMIN", "VIEWER", "REPORTER"] {
        let r = app
            .gql(
                &token(&[role], &["169"], &[]),
                SAVE,
                json!({ "i": { "name": "x", "method": "GET", "document": "{ me { subject } }" } }),
            )
            .await;
        assert_eq!(r.error_codes(), vec!["FORBIDDEN"], "{role}: {:?}", r.body);
    }
    saved(&app).await;
    let listed = app
        .gql(&admin(), "{ restEndpoints { name method } }", json!({}))
        .await
        .ok();
    assert_eq!(
        listed.at("restEndpoints"),
        &json!([{ "name": "create-team", "method": "POST" }, { "name": "indicators", "method": "GET" }, { "name": "teams", "method": "GET" }, { "name": "unit", "method": "GET" }])
    );
    let delete = "mutation($n: String!) { deleteRestEndpoint(input: {name: $n}) { endpoint { name } userErrors { code } } }";
    let r = app.gql(&admin(), delete, json!({ "n": "unit" })).await.ok();
    assert_eq!(r.at("deleteRestEndpoint.endpoint.name"), "unit");
    let r = app.gql(&admin(), delete, json!({ "n": "unit" })).await.ok();
    assert_eq!(r.at("deleteRestEndpoint.userErrors.0.code"), "NOT_FOUND");
    // The saves and the delete are in the audit log; refused ones are not.
    let r = app
        .gql(
            &admin(),
            "{ auditLog(entityType: \"RestEndpoint\") { nodes { action entityId } } }",
            json!({}),
        )
        .await
        .ok();
    let entries: Vec<String> = r
        .at("auditLog.nodes")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap_or(""),
                e["entityId"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(entries.len(), 5, "{entries:?}");
    assert_eq!(entries[0], "deleteRestEndpoint unit", "{entries:?}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let app = spawn_app().await;
    saved(&app).await;
    let url = format!("{}/api/openapi.json", app.address);
    let (status, _, _) = answer(app.client.get(&url)).await;
    assert_eq!(status, 401);
    let (status, headers, doc) = answer(app.client.get(&url).bearer_auth(token(
        &["VIEWER"],
        &["169"],
        &[],
    )))
    .await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    let unit = &doc["paths"]["/api/rest/unit"]["get"];
    assert_eq!(unit["operationId"], "unit");
    let params: Vec<(&str, bool)> = unit["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["required"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(params, vec![("code", true), ("on", false)]);
    assert_eq!(unit["parameters"][1]["schema"]["format"], "date");
    let data = &unit["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(
        data["properties"]["adminUnit"]["properties"]["code"]["type"], "string",
        "{data}"
    );
    assert!(
        data["properties"]["adminUnit"]["properties"]["level"]["enum"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("COMMUNE"))),
        "{data}"
    );
    assert!(
        data["properties"]["adminUnit"]["description"].is_string(),
        "descriptions from the schema: {data}"
    );
    let teams = &doc["paths"]["/api/rest/teams"]["get"];
    assert_eq!(
        teams["parameters"][1]["schema"]["type"],
        json!(["integer", "null"])
    );
    let body = &doc["paths"]["/api/rest/create-team"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert_eq!(body["required"], json!(["i"]));
    assert!(
        body["properties"]["i"]["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("unitCode"))),
        "{body}"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // Cached by its ETag.
    let etag = headers.get("etag").cloned().expect("an ETag");
    let (status, _, _) = answer(
        app.client
            .get(&url)
            .bearer_auth(admin())
            .header("if-none-match", etag),
    )
    .await;
    assert_eq!(status, 304);

    // An OpenAPI validator from PyPI, where Python has it (CI installs it).
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), doc.to_string()).unwrap();
    let run = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\nprint('valid')",
        ])
        .arg(file.path())
        .output();
    match run {
        Ok(out) if out.status.success() => {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid");
        }
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named") => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must install openapi-spec-validator"
            );
            eprintln!("skipped: pip install openapi-spec-validator");
        }
        Ok(out) => panic!(
            "the OpenAPI document is not valid: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("python3: {e}"),
    }
}
