//! Limits: what one request may ask for is refused before it runs, errors are classified by
//! the stage that raised them, database faults never reach the client, introspection works.
use cnscd_tests::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

fn viewer() -> String {
    token(&["VIEWER"], &["169"], &[])
}

fn message(r: &Gql) -> String {
    r.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// One `indicators` field, aliased.
fn indicator_field(i: usize) -> String {
    format!(
        "a{i}: indicators(codes: [\"CNS01\"], unitCodes: [\"169\"], from: \"2024-01-01\", to: \"2024-12-31\") {{ value }}"
    )
}

#[tokio::test]
async fn three_thousand_aliased_indicators_are_refused_before_anything_runs() {
    let app = spawn_app().await;
    let q = format!(
        "{{ {} }}",
        (0..3000).map(indicator_field).collect::<Vec<_>>().join(" ")
    );
    let start = Instant::now();
    let (statements, r) = app.statements_for(&viewer(), &q, json!({})).await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["QUERY_TOO_COMPLEX"]);
    assert!(r.body.get("data").is_none_or(Value::is_null), "{}", r.body);
    assert_eq!(statements, 0, "no SQL may run for a refused request");
    // The same fields through a fragment used many times count as often as they are used.
    let q = format!(
        "fragment I on Query {{ {} }} {{ {} }}",
        (0..100).map(indicator_field).collect::<Vec<_>>().join(" "),
        (0..30)
            .map(|i| format!("... on Query {{ ...I }} x{i}: me {{ subject }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (statements, r) = app.statements_for(&viewer(), &q, json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["QUERY_TOO_COMPLEX"]);
    assert_eq!(statements, 0);
}

#[tokio::test]
async fn aliases_count_toward_the_cost() {
    let app = spawn_app().await;
    // 400 fields are few, but each `indicators` costs its statements and its values.
    let q = format!(
        "{{ {} }}",
        (0..400).map(indicator_field).collect::<Vec<_>>().join(" ")
    );
    let (statements, r) = app.statements_for(&viewer(), &q, json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["QUERY_TOO_COMPLEX"]);
    assert!(message(&r).contains("costs"), "{}", r.body);
    assert_eq!(statements, 0);
    // A handful of them is fine.
    let q = format!(
        "{{ {} }}",
        (0..3).map(indicator_field).collect::<Vec<_>>().join(" ")
    );
    let r = app.gql(&viewer(), &q, json!({})).await.ok();
    assert_eq!(r.at("a2").as_array().unwrap().len(), 12);
}

#[tokio::test]
async fn indicators_cost_units_times_periods_times_codes() {
    let app = spawn_app().await;
    let q = "query($c: [String!]!, $u: [String!]!, $f: Date!, $t: Date!, $g: PeriodGranularity!) {
        indicators(codes: $c, unitCodes: $u, from: $f, to: $t, granularity: $g) {
          indicator { code } unit { code } period { label } value } }";
    let codes: Vec<String> = (1..=10).map(|i| format!("CNS{i:02}")).collect();
    // 10 codes × 1 unit × 12 months × 7 subfields: fine.
    let r = app
        .gql(
            &viewer(),
            q,
            json!({ "c": codes, "u": ["169"], "f": "2024-01-01", "t": "2024-12-31", "g": "MONTH" }),
        )
        .await
        .ok();
    assert_eq!(r.at("indicators").as_array().unwrap().len(), 120);
    // 10 codes × 20 units × 120 months: refused before anything runs, whatever the units are.
    let units: Vec<String> = (0..20).map(|i| format!("X{i}")).collect();
    let (statements, r) = app
        .statements_for(
            &viewer(),
            q,
            json!({ "c": codes, "u": units, "f": "2015-01-01", "t": "2024-12-31", "g": "MONTH" }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["QUERY_TOO_COMPLEX"]);
    assert_eq!(statements, 0);
    // The same by year costs a twelfth: it runs (and finds the units unknown).
    let r = app
        .gql(
            &viewer(),
            q,
            json!({ "c": codes, "u": units, "f": "2015-01-01", "t": "2024-12-31", "g": "YEAR" }),
        )
        .await;
    assert_eq!(r.error_codes(), ["VALIDATION"], "{}", r.body);
    assert!(message(&r).contains("unknown unit"), "{}", r.body);
}

#[tokio::test]
async fn list_and_string_arguments_are_bounded_before_any_sql() {
    let app = spawn_app().await;
    let q = "query($c: [String!]!) { indicators(codes: $c, unitCodes: [\"169\"], from: \"2024-01-01\", to: \"2024-01-31\") { value } }";
    // Over the bound of every list: refused before validation, naming the argument.
    let many: Vec<String> = (0..501).map(|i| format!("C{i}")).collect();
    let (statements, r) = app.statements_for(&viewer(), q, json!({ "c": many })).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["VALIDATION"]);
    assert!(
        message(&r).contains("`indicators` argument `codes` has 501 items"),
        "{}",
        r.body
    );
    assert!(message(&r).contains("at most 500"), "{}", r.body);
    assert_eq!(statements, 0);
    // A variable no argument uses is bounded too.
    let r = app
        .gql(
            &viewer(),
            "query($x: [String!]) { me { subject } }",
            json!({ "x": many }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        message(&r).contains("variable `$x` has 501 items"),
        "{}",
        r.body
    );
    // The same inline: naming the argument.
    let inline = format!(
        "{{ indicators(codes: [{}], unitCodes: [\"169\"], from: \"2024-01-01\", to: \"2024-01-31\") {{ value }} }}",
        many.iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let (statements, r) = app.statements_for(&viewer(), &inline, json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["VALIDATION"]);
    assert!(
        message(&r).contains("`indicators` argument `codes`"),
        "{}",
        r.body
    );
    assert_eq!(r.body["errors"][0]["extensions"]["field"], json!(["codes"]));
    assert_eq!(statements, 0);
    // Over the bound of indicator codes.
    let some: Vec<String> = (0..51).map(|i| format!("C{i}")).collect();
    let (statements, r) = app.statements_for(&viewer(), q, json!({ "c": some })).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["VALIDATION"]);
    assert_eq!(r.body["errors"][0]["extensions"]["field"], json!(["codes"]));
    assert_eq!(statements, 0);
    // Search strings.
    let long = "a".repeat(201);
    for q in [
        "query($s: String) { teams(search: $s) { totalCount } }",
        "query($s: String) { members(search: $s) { totalCount } }",
        "query($s: String) { activities(search: $s) { totalCount } }",
        "query($s: String) { adminUnits(search: $s) { totalCount } }",
    ] {
        let (statements, r) = app.statements_for(&admin(), q, json!({ "s": long })).await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        assert_eq!(r.error_codes(), ["VALIDATION"]);
        assert!(message(&r).contains("`search`"), "{}", r.body);
        assert_eq!(statements, 0);
    }
    // Any string: at most 10,000 characters.
    let r = app
        .gql(
            &admin(),
            "query($c: String!) { adminUnit(code: $c) { code } }",
            json!({ "c": "x".repeat(10_001) }),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_codes(), ["VALIDATION"]);
    // No text holds a NUL (PostgreSQL refuses it): refused before it reaches the database.
    let (statements, r) = app
        .statements_for(
            &admin(),
            "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id } } }",
            json!({ "i": { "unitCode": "05677-01", "name": "T\u{0}", "foundedOn": "2024-01-01" } }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["VALIDATION"]);
    assert!(
        message(&r).contains("argument `input.name`") && message(&r).contains("NUL"),
        "{}",
        r.body
    );
    assert_eq!(statements, 0);
}

#[tokio::test]
async fn dates_outside_1900_to_2100_are_validation_errors_everywhere() {
    let app = spawn_app().await;
    // An argument of a field whose cost depends on it: refused at validation.
    for (from, to) in [("0001-01-01", "2024-01-01"), ("2024-01-01", "9999-12-31")] {
        let (statements, r) = app
            .statements_for(
                &viewer(),
                "query($f: Date!, $t: Date!) { indicators(codes: [\"CNS01\"], unitCodes: [\"169\"], from: $f, to: $t, granularity: YEAR) { value } }",
                json!({ "f": from, "t": to }),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.error_codes(), ["VALIDATION"]);
        assert!(
            message(&r).contains("1900-01-01 to 2100-12-31"),
            "{}",
            r.body
        );
        assert_eq!(statements, 0);
    }
    // Any other argument, literal or variable.
    for (q, vars) in [
        (
            "{ adminUnit(code: \"19\", on: \"1899-12-31\") { code } }",
            json!({}),
        ),
        (
            "query($d: Date) { teams(activeOn: $d) { totalCount } }",
            json!({ "d": "2101-01-01" }),
        ),
        (
            "query($d: Date) { activities(from: $d) { totalCount } }",
            json!({ "d": "+10000-01-01" }),
        ),
    ] {
        let r = app.gql(&admin(), q, vars).await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        assert_eq!(r.error_codes(), ["VALIDATION"], "{q}: {}", r.body);
        assert!(
            message(&r).contains("1900-01-01 to 2100-12-31") || message(&r).contains("YYYY-MM-DD"),
            "{}",
            r.body
        );
    }
    // Input fields of mutations.
    let r = app
        .gql(
            &admin(),
            "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id } userErrors { message } } }",
            json!({ "i": { "unitCode": "05677-01", "name": "Tổ", "foundedOn": "2200-01-01" } }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["VALIDATION"]);
    assert!(
        message(&r).contains("1900-01-01 to 2100-12-31"),
        "{}",
        r.body
    );
    // Times of the audit log, likewise.
    for since in ["1899-12-31T23:00:00Z", "2101-01-01T00:00:00Z"] {
        let r = app
            .gql(
                &admin(),
                "query($s: DateTime) { auditLog(since: $s) { totalCount } }",
                json!({ "s": since }),
            )
            .await;
        assert_eq!(r.error_codes(), ["VALIDATION"], "{}", r.body);
        assert!(
            message(&r).contains("1900-01-01 to 2100-12-31"),
            "{}",
            r.body
        );
    }
    // The edges of the range are days like any other.
    app.gql(
        &admin(),
        "{ a: adminUnit(code: \"19\", on: \"1900-01-01\") { code } b: adminUnit(code: \"19\", on: \"2100-12-31\") { code } }",
        json!({}),
    )
    .await
    .ok();
}

#[tokio::test]
async fn errors_are_classified_by_the_stage_that_raised_them() {
    let app = spawn_app().await;
    // Parse.
    let r = app.gql(&viewer(), "{ me { subject ", json!({})).await;
    assert_eq!(
        (r.status, r.error_codes()),
        (400, vec!["VALIDATION".into()])
    );
    // Validation.
    let r = app.gql(&viewer(), "{ me { nope } }", json!({})).await;
    assert_eq!(
        (r.status, r.error_codes()),
        (400, vec!["VALIDATION".into()])
    );
    let r = app
        .gql(
            &viewer(),
            "query A { me { subject } } query B { me { subject } }",
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.error_codes()),
        (400, vec!["VALIDATION".into()])
    );
    // Limits.
    let mut deep = String::from("{ adminUnit(code: \"05677-01\") { ");
    deep.push_str(&"parent { ".repeat(11));
    deep.push_str("code");
    deep.push_str(&" }".repeat(12));
    deep.push_str(" }");
    let r = app.gql(&viewer(), &deep, json!({})).await;
    assert_eq!(
        (r.status, r.error_codes()),
        (400, vec!["QUERY_TOO_COMPLEX".into()])
    );
    assert!(message(&r).contains("13 levels"), "{}", r.body);
    // Execution: the resolver's code, with data.
    let r = app
        .gql(
            &viewer(),
            "{ me { subject } indicators(codes: [\"CNS01\"], unitCodes: [\"164\"], from: \"2024-01-01\", to: \"2024-01-31\") { value } }",
            json!({}),
        )
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"], "{}", r.body);
    // Execution: an argument async-graphql cannot coerce, beside a field that ran.
    let r = app
        .gql(
            &viewer(),
            "query($d: Date) { me { subject } adminUnit(code: \"19\", on: $d) { code } }",
            json!({ "d": "2024-02-30" }),
        )
        .await;
    assert_eq!(r.error_codes(), ["VALIDATION"], "{}", r.body);
}

/// What the server logs at error level (with the request span), for the whole test binary.
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("error,cnscd_api::http=info")
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
    .clone()
}

#[tokio::test]
async fn database_errors_reach_the_client_as_internal_with_the_request_id() {
    use sea_orm::ConnectionTrait;
    let log = captured_log();
    let app = spawn_app().await;
    app.db
        .execute_unprepared("ALTER TABLE admin_unit_succession RENAME TO gone_1")
        .await
        .unwrap();
    app.db
        .execute_unprepared("ALTER TABLE activity_kind RENAME TO gone_2")
        .await
        .unwrap();
    // A resolver and a loader, each hitting a missing table.
    for q in [
        "{ activityKinds { code } }",
        "{ adminUnit(code: \"05677\") { code successors { newCode } } }",
    ] {
        let resp = app
            .client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(viewer())
            .json(&json!({ "query": q }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body: Value = resp.json().await.unwrap();
        let e = &body["errors"][0];
        assert_eq!(e["extensions"]["code"], "INTERNAL", "{q}: {body}");
        assert_eq!(e["extensions"]["requestId"], id.as_str(), "{body}");
        let text = body["errors"].to_string().to_lowercase();
        for leak in [
            "sql",
            "table",
            "relation",
            "succession",
            "activity_kind",
            "gone_",
            "database error",
        ] {
            assert!(!text.contains(leak), "{leak} in {body}");
        }
        assert!(text.contains(&id), "{body}");
        // The log has the cause, under the same request id.
        let log = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
        assert!(
            log.lines().any(|l| l.contains(&id)
                && l.contains("request failed")
                && (l.contains("activity_kind") || l.contains("admin_unit_succession"))),
            "no line with {id} and the cause in the log:\n{log}"
        );
    }
}

#[tokio::test]
async fn a_request_running_past_the_timeout_is_stopped_with_a_clear_error() {
    // A request that waits for several rounds of batched loads (each waits for its batch), so
    // it cannot finish before the timer fires, asked of a server with no time at all.
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2024-01-01").await;
    app.submit(&team, "TRAINING", "2024-02-01", json!({})).await;
    let hurried = app
        .replica_with(|s| s.request_timeout = Duration::ZERO)
        .await;
    let resp = app
        .client
        .post(format!("{hurried}/graphql"))
        .bearer_auth(viewer())
        .json(&json!({ "query": "{ teams(first: 5) { edges { node { latestActivity { team { latestActivity { team { latestActivity { title } } } } } } } } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL");
    assert!(body["errors"][0]["extensions"]["requestId"].is_string());
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("did not finish"),
        "{body}"
    );
    // The server is still there.
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_standard_introspection_query_works_for_every_role() {
    let app = spawn_app().await;
    let q = introspection_query();
    assert_eq!(q.matches("ofType").count(), 9);
    for t in [
        admin(),
        token(&["UNIT_ADMIN"], &["169"], &[]),
        token(&["REPORTER"], &["169"], &[]),
        token(&["TEAM_LEADER"], &["169"], &[]),
        viewer(),
    ] {
        let r = app.gql(&t, &q, json!({})).await.ok();
        let types = r.at("__schema.types").as_array().unwrap();
        assert!(types.iter().any(|t| t["name"] == "IndicatorValue"));
        assert_eq!(r.at("__schema.queryType.name"), "Query");
    }
    // Without a token: 401, as for every request.
    let r = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": q }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Introspection is bounded on its own: lists nested in lists multiply.
    let bomb = "{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }";
    let r = app.gql(&viewer(), bomb, json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["QUERY_TOO_COMPLEX"]);
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_refused() {
    let app = spawn_app().await;
    let q = format!("{{ me {{ subject }} }} # {}", "x".repeat(1024 * 1024));
    let r = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(viewer())
        .json(&json!({ "query": q }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn deeply_nested_documents_are_refused_without_crashing() {
    let app = spawn_app().await;
    let n = 200_000;
    for q in [
        format!("{}{}", "{ a ".repeat(n), "}".repeat(n)),
        format!(
            "{{ me(x: {}1{}) {{ subject }} }}",
            "[".repeat(n),
            "]".repeat(n)
        ),
        format!(
            "{{ me(x: {}1{}) {{ subject }} }}",
            "{a: ".repeat(n),
            "}".repeat(n)
        ),
        format!(
            "query($v: {}Int{}) {{ me {{ subject }} }}",
            "[".repeat(n),
            "]".repeat(n)
        ),
        format!(
            "{{ me {{ subject {} }} }}",
            "@skip(if: false) ".repeat(n / 20)
        ),
    ] {
        let r = app.gql(&viewer(), &q, json!({})).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(!r.error_codes().is_empty(), "{}", r.body);
    }
    let r = app
        .gql(
            &viewer(),
            "query($v: [[Int]]) { me { subject } }",
            json!({ "v": (0..200).fold(json!(1), |acc, _| json!([acc])) }),
        )
        .await;
    assert!(r.status < 500, "{}", r.body);
    app.gql(&viewer(), "{ me { subject } }", json!({}))
        .await
        .ok();
}

#[tokio::test]
async fn lists_nested_in_lists_are_priced_by_what_they_can_return() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    // A unit's children's parent's children's ...: each `children` may hold a province's
    // communes, so the nesting multiplies.
    let q = "{ adminUnit(code: \"19\") { children { parent { children { parent { children { parent { children { code } } } } } } } } }";
    let (statements, r) = app.statements_for(&admin(), q, json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["QUERY_TOO_COMPLEX"]);
    assert_eq!(statements, 0);
    // A team's members' team's members' ...
    let q = "query($t: ID!) { team(id: $t) { members { team { members { team { members { team { members { role } } } } } } } } }";
    let r = app.gql(&admin(), q, json!({ "t": team })).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["QUERY_TOO_COMPLEX"]);
    // One level of each is ordinary.
    app.gql(
        &admin(),
        "query($t: ID!) { adminUnit(code: \"19\") { children { code children { code } } } team(id: $t) { members { role person { fullName } } } }",
        json!({ "t": team }),
    )
    .await
    .ok();
}
