//! Reported figures: roles and areas, validation with field paths, idempotency, replacement
//! with history, indicators that follow at once, and reading back.
use cnscd_tests::*;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const SUBMIT: &str = "mutation($i: SubmitDataValuesInput!) { submitDataValues(input: $i) { replayed values { element unitCode unit { code } periodStart periodEnd value sourceSystem submittedAt } userErrors { field message code } } }";

const EG01: &str = "query($u: [String!]!) { indicators(codes: [\"EG01\"], unitCodes: $u, from: \"2024-01-01\", to: \"2024-12-31\", granularity: YEAR) { unit { code } value numerator denominator status } }";

const LIST: &str = "query($e: String, $u: String, $f: Date, $t: Date, $s: String) { dataValues(element: $e, under: $u, from: $f, to: $t, sourceSystem: $s) { totalCount edges { node { element unitCode periodStart periodEnd value sourceSystem } } } }";

fn figure(element: &str, unit: &str, start: &str, end: &str, value: f64) -> Value {
    json!({ "element": element, "unitCode": unit, "periodStart": start, "periodEnd": end, "value": value })
}

fn batch(key: &str, values: Vec<Value>) -> Value {
    json!({ "i": { "idempotencyKey": key, "sourceSystem": "DVCQG", "values": values } })
}

fn dossiers(key: &str, online: f64, total: f64) -> Value {
    batch(
        key,
        vec![
            figure(
                "DOSSIERS_ONLINE",
                "05677",
                "2024-01-01",
                "2024-12-31",
                online,
            ),
            figure("DOSSIERS_TOTAL", "05677", "2024-01-01", "2024-12-31", total),
        ],
    )
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db
        .query_one_raw(sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

fn reporter() -> String {
    token(&["REPORTER"], &["169"], &[])
}

#[tokio::test]
async fn reported_figures_feed_indicators_at_once_and_a_newer_one_replaces_the_old() {
    let app = spawn_app().await;
    let viewer = token(&["VIEWER"], &["169"], &[]);
    // No figures yet: EG01 has no data.
    let r = app.gql(&viewer, EG01, json!({ "u": ["05677"] })).await.ok();
    assert_eq!(r.at("indicators.0.status"), "NO_DATA", "{}", r.body);

    let r = app
        .gql(&reporter(), SUBMIT, dossiers("march-1", 60.0, 120.0))
        .await
        .ok();
    assert_eq!(
        r.at("submitDataValues.userErrors"),
        &json!([]),
        "{}",
        r.body
    );
    assert_eq!(r.at("submitDataValues.replayed"), false);
    assert_eq!(r.at("submitDataValues.values.0.element"), "DOSSIERS_ONLINE");
    assert_eq!(r.at("submitDataValues.values.1.unit.code"), "05677");
    assert_eq!(r.at("submitDataValues.values.1.sourceSystem"), "DVCQG");
    let first_at = r.at("submitDataValues.values.0.submittedAt").clone();

    // The indicator follows on the very next request, on this server and on a replica.
    let replica = app.replica().await;
    for address in [app.address.clone(), replica.clone()] {
        let r = app
            .gql_at(&address, &viewer, EG01, json!({ "u": ["05677", "169"] }))
            .await
            .ok();
        assert_eq!(r.at("indicators.0.value"), 50.0, "{}", r.body);
        assert_eq!(r.at("indicators.1.numerator"), 60.0, "{}", r.body);
    }

    // A retry answers the first result again; nothing is stored twice.
    let r = app
        .gql(&reporter(), SUBMIT, dossiers("march-1", 60.0, 120.0))
        .await
        .ok();
    assert_eq!(r.at("submitDataValues.replayed"), true);
    assert_eq!(r.at("submitDataValues.values.0.submittedAt"), &first_at);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM data_value").await, 2);
    // The key with other input is refused.
    let r = app
        .gql(&reporter(), SUBMIT, dossiers("march-1", 61.0, 120.0))
        .await
        .ok();
    assert_eq!(
        r.user_error_codes("submitDataValues"),
        ["IDEMPOTENCY_KEY_REUSED"]
    );
    assert_eq!(
        r.at("submitDataValues.userErrors.0.field"),
        &json!(["idempotencyKey"])
    );
    // Another caller's key of the same name is its own.
    let other = token(&["UNIT_ADMIN"], &["169"], &[]);
    let r = app
        .gql(&other, SUBMIT, dossiers("march-1", 90.0, 120.0))
        .await
        .ok();
    assert_eq!(r.at("submitDataValues.replayed"), false, "{}", r.body);

    // The newer figure replaced the old one (same unit, element, period and source); the old
    // one is kept in the history, and the indicator moved at once.
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM data_value").await, 2);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM data_value_history").await,
        2
    );
    let r = app.gql(&viewer, EG01, json!({ "u": ["05677"] })).await.ok();
    assert_eq!(r.at("indicators.0.value"), 75.0, "{}", r.body);
    let r = app
        .gql_at(&replica, &viewer, EG01, json!({ "u": ["05677"] }))
        .await
        .ok();
    assert_eq!(r.at("indicators.0.value"), 75.0, "{}", r.body);

    // Each figure leaves an audit entry with what it replaced.
    let r = app
        .gql(
            &admin(),
            "{ auditLog(entityType: \"DataValue\") { totalCount edges { node { action subject before after } } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(r.at("auditLog.totalCount"), 4);
    let replaced: Vec<&Value> = r
        .at("auditLog.edges")
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["node"]["before"].is_null())
        .collect();
    assert_eq!(replaced.len(), 2, "{}", r.body);
    assert_eq!(replaced[0]["node"]["action"], "submitDataValues");
    assert!(
        replaced
            .iter()
            .any(|e| e["node"]["before"]["value"] == 60.0 && e["node"]["after"]["value"] == 90.0),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn each_role_may_or_may_not_submit_figures_in_its_area() {
    let app = spawn_app().await;
    for (i, t) in [
        admin(),
        token(&["UNIT_ADMIN"], &["169"], &[]),
        token(&["REPORTER"], &["05677"], &[]),
    ]
    .iter()
    .enumerate()
    {
        let r = app
            .gql(
                t,
                SUBMIT,
                batch(
                    &format!("ok-{i}"),
                    vec![figure(
                        "POPULATION",
                        "05677",
                        "2024-01-01",
                        "2024-12-31",
                        5000.0,
                    )],
                ),
            )
            .await
            .ok();
        assert_eq!(
            r.at("submitDataValues.userErrors"),
            &json!([]),
            "{}",
            r.body
        );
    }
    let team = app.create_team("05677-01", "Tổ", "2022-05-01").await;
    for t in [
        token(&["VIEWER"], &["169"], &[]),
        token(&["TEAM_LEADER"], &[], &[&team]),
    ] {
        let r = app
            .gql(
                &t,
                SUBMIT,
                batch(
                    "no",
                    vec![figure(
                        "POPULATION",
                        "05677",
                        "2024-01-01",
                        "2024-12-31",
                        1.0,
                    )],
                ),
            )
            .await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"], "{}", r.body);
    }
    // A unit outside the area, named by its path; nothing of the batch is stored.
    let r = app
        .gql(
            &token(&["REPORTER"], &["164"], &[]),
            SUBMIT,
            batch(
                "far",
                vec![
                    figure("POPULATION", "05659", "2024-01-01", "2024-12-31", 7000.0),
                    figure("POPULATION", "05677", "2024-01-01", "2024-12-31", 7000.0),
                ],
            ),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("submitDataValues"), ["FORBIDDEN"]);
    assert_eq!(
        r.at("submitDataValues.userErrors.0.field"),
        &json!(["values", "1", "unitCode"])
    );
    assert_eq!(r.at("submitDataValues.values"), &json!([]));
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM data_value WHERE unit_code = '05659'"
        )
        .await,
        0
    );
    // A reporter of the ceased district covers nothing after 2025-06-30: a year across the
    // reorganisation is not wholly in its area (and 05677 itself ceased).
    let r = app
        .gql(
            &token(&["REPORTER"], &["169"], &[]),
            SUBMIT,
            batch(
                "ceased",
                vec![figure(
                    "DOSSIERS_TOTAL",
                    "05692",
                    "2025-01-01",
                    "2025-12-31",
                    10.0,
                )],
            ),
        )
        .await
        .ok();
    assert_eq!(
        r.user_error_codes("submitDataValues"),
        ["FORBIDDEN"],
        "{}",
        r.body
    );
    let r = app
        .gql(
            &admin(),
            SUBMIT,
            batch(
                "gone",
                vec![figure(
                    "DOSSIERS_TOTAL",
                    "05677",
                    "2025-07-01",
                    "2025-07-31",
                    10.0,
                )],
            ),
        )
        .await
        .ok();
    assert_eq!(
        r.at("submitDataValues.userErrors.0.field"),
        &json!(["values", "0", "unitCode"]),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn submit_data_values_names_every_bad_figure_and_stores_nothing() {
    let app = spawn_app().await;
    let good = figure("EDOCS_EXCHANGED", "05677", "2024-03-01", "2024-03-31", 10.0);
    let cases: Vec<(Value, Vec<&str>, &str)> = vec![
        (
            figure("TELEPORTS", "05677", "2024-03-01", "2024-03-31", 1.0),
            vec!["element"],
            "VALIDATION",
        ),
        (
            figure("ACTIVITIES", "05677", "2024-03-01", "2024-03-31", 1.0),
            vec!["element"],
            "VALIDATION",
        ),
        (
            figure(
                "EDOCS_EXCHANGED",
                "nowhere",
                "2024-03-01",
                "2024-03-31",
                1.0,
            ),
            vec!["unitCode"],
            "VALIDATION",
        ),
        (
            figure("EDOCS_EXCHANGED", "05677", "2024-03-01", "2024-04-15", 1.0),
            vec!["periodEnd"],
            "VALIDATION",
        ),
        (
            figure("EDOCS_EXCHANGED", "05677", "2024-03-31", "2024-03-01", 1.0),
            vec!["periodEnd"],
            "VALIDATION",
        ),
        (
            figure("EDOCS_EXCHANGED", "05677", "2024-02-01", "2024-04-30", 1.0),
            vec!["periodEnd"],
            "VALIDATION",
        ),
        (
            figure("EDOCS_EXCHANGED", "05677", "2099-01-01", "2099-12-31", 1.0),
            vec!["periodStart"],
            "VALIDATION",
        ),
        (
            figure("EDOCS_EXCHANGED", "05677", "2024-03-01", "2024-03-31", -1.0),
            vec!["value"],
            "VALIDATION",
        ),
        (
            figure("EDOCS_EXCHANGED", "05677", "2024-03-01", "2024-03-31", 2.5),
            vec!["value"],
            "VALIDATION",
        ),
        (
            figure("EDOCS_EXCHANGED", "05677", "2024-03-01", "2024-03-31", 1e15),
            vec!["value"],
            "VALIDATION",
        ),
        (good.clone(), vec![], "VALIDATION"),
    ];
    for (i, (bad, field, code)) in cases.into_iter().enumerate() {
        // The bad figure is the second of the batch, after a good one.
        let r = app
            .gql(
                &admin(),
                SUBMIT,
                batch(&format!("bad-{i}"), vec![good.clone(), bad]),
            )
            .await
            .ok();
        let mut expected = vec!["values".to_owned(), "1".to_owned()];
        expected.extend(field.iter().map(|f| f.to_string()));
        assert_eq!(
            r.at("submitDataValues.userErrors.0.field"),
            &json!(expected),
            "case {i}: {}",
            r.body
        );
        assert_eq!(r.at("submitDataValues.userErrors.0.code"), code, "case {i}");
        assert!(
            r.at("submitDataValues.userErrors.0.message")
                .as_str()
                .unwrap()
                .len()
                > 10,
            "case {i}"
        );
        assert_eq!(r.at("submitDataValues.values"), &json!([]));
    }
    // Whole-batch problems.
    let many: Vec<Value> = (0..501)
        .map(|i| figure("POPULATION", "05677", "2024-01-01", "2024-12-31", i as f64))
        .collect();
    for (input, field) in [
        (
            json!({ "idempotencyKey": "", "sourceSystem": "DVCQG", "values": [good] }),
            "idempotencyKey",
        ),
        (
            json!({ "idempotencyKey": "k", "sourceSystem": "bad source!", "values": [good] }),
            "sourceSystem",
        ),
        (
            json!({ "idempotencyKey": "k", "sourceSystem": "DVCQG", "values": [] }),
            "values",
        ),
    ] {
        let r = app.gql(&admin(), SUBMIT, json!({ "i": input })).await.ok();
        assert_eq!(
            r.at("submitDataValues.userErrors.0.field"),
            &json!([field]),
            "{}",
            r.body
        );
    }
    // A batch over the limit is refused before it runs (the request's list limit).
    let r = app
        .gql(
            &admin(),
            SUBMIT,
            json!({ "i": { "idempotencyKey": "k", "sourceSystem": "DVCQG", "values": many } }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["VALIDATION"]);
    // Several problems are named at once.
    let r = app
        .gql(
            &admin(),
            SUBMIT,
            batch(
                "several",
                vec![
                    figure("TELEPORTS", "05677", "2024-03-01", "2024-03-31", 1.0),
                    figure("EDOCS_EXCHANGED", "05677", "2024-03-01", "2024-03-31", -3.0),
                ],
            ),
        )
        .await
        .ok();
    let fields: Vec<&Value> = r
        .at("submitDataValues.userErrors")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["field"])
        .collect();
    assert_eq!(
        fields,
        [
            &json!(["values", "0", "element"]),
            &json!(["values", "1", "value"])
        ]
    );
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM data_value").await, 0);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM idempotency_record").await,
        0
    );
    // A value that is not a number at all is refused before it runs (no 500).
    let r = app
        .gql(
            &admin(),
            SUBMIT,
            batch("nan", vec![json!({ "element": "POPULATION", "unitCode": "05677", "periodStart": "2024-01-01", "periodEnd": "2024-12-31", "value": "many" })]),
        )
        .await;
    assert!(r.status < 500 && r.body["errors"].is_array(), "{}", r.body);
}

#[tokio::test]
async fn data_values_lists_what_the_caller_may_read_with_filters() {
    let app = spawn_app().await;
    let sent = token(&["REPORTER"], &["169"], &[]);
    let r = app
        .gql(
            &sent,
            SUBMIT,
            batch(
                "a",
                vec![
                    figure("DOSSIERS_ONLINE", "05677", "2024-01-01", "2024-03-31", 30.0),
                    figure("DOSSIERS_ONLINE", "05692", "2024-04-01", "2024-06-30", 40.0),
                    figure("POPULATION", "05677-01", "2024-01-01", "2024-12-31", 1300.0),
                ],
            ),
        )
        .await
        .ok();
    assert_eq!(
        r.at("submitDataValues.userErrors"),
        &json!([]),
        "{}",
        r.body
    );
    let r = app
        .gql(
            &admin(),
            "mutation($i: SubmitDataValuesInput!) { submitDataValues(input: $i) { userErrors { message } } }",
            json!({ "i": { "idempotencyKey": "b", "sourceSystem": "QLVB", "values": [figure("EDOCS_EXCHANGED", "05659", "2024-01-01", "2024-12-31", 900.0)] } }),
        )
        .await
        .ok();
    assert_eq!(r.at("submitDataValues.userErrors"), &json!([]));

    let list = |t: String, vars: Value| {
        let app = &app;
        async move {
            let r = app.gql(&t, LIST, vars).await.ok();
            r.at("dataValues.edges")
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    format!(
                        "{}@{}:{}",
                        e["node"]["element"].as_str().unwrap(),
                        e["node"]["unitCode"].as_str().unwrap(),
                        e["node"]["periodStart"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    // ADMIN reads all, latest period first.
    assert_eq!(
        list(admin(), json!({})).await,
        [
            "DOSSIERS_ONLINE@05692:2024-04-01",
            "DOSSIERS_ONLINE@05677:2024-01-01",
            "EDOCS_EXCHANGED@05659:2024-01-01",
            "POPULATION@05677-01:2024-01-01"
        ]
    );
    assert_eq!(
        list(admin(), json!({ "e": "DOSSIERS_ONLINE", "u": "05677" })).await,
        ["DOSSIERS_ONLINE@05677:2024-01-01"]
    );
    assert_eq!(
        list(admin(), json!({ "u": "05677" })).await,
        [
            "DOSSIERS_ONLINE@05677:2024-01-01",
            "POPULATION@05677-01:2024-01-01"
        ]
    );
    assert_eq!(
        list(admin(), json!({ "f": "2024-04-01", "t": "2024-05-31" })).await,
        [
            "DOSSIERS_ONLINE@05692:2024-04-01",
            "EDOCS_EXCHANGED@05659:2024-01-01",
            "POPULATION@05677-01:2024-01-01"
        ]
    );
    assert_eq!(
        list(admin(), json!({ "s": "QLVB" })).await,
        ["EDOCS_EXCHANGED@05659:2024-01-01"]
    );
    // A viewer reads its area only; a reporter what it sent, not what others sent in its area.
    assert_eq!(
        list(token(&["VIEWER"], &["164"], &[]), json!({})).await,
        ["EDOCS_EXCHANGED@05659:2024-01-01"]
    );
    assert_eq!(list(sent.clone(), json!({})).await.len(), 3);
    assert_eq!(
        list(token(&["REPORTER"], &["164"], &[]), json!({})).await,
        Vec::<String>::new()
    );
    let r = app
        .gql(&token(&["TEAM_LEADER"], &[], &[]), LIST, json!({}))
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    let r = app
        .gql(
            &admin(),
            LIST,
            json!({ "f": "2024-05-01", "t": "2024-01-01" }),
        )
        .await;
    assert_eq!(r.error_codes(), ["VALIDATION"]);
}

#[tokio::test]
async fn concurrent_retries_store_a_batch_once_and_racing_sources_never_fail_hard() {
    let app = spawn_app().await;
    let t = reporter();
    let retries = (0..6).map(|_| app.gql(&t, SUBMIT, dossiers("same", 10.0, 20.0)));
    let results = futures::future::join_all(retries).await;
    let fresh = results
        .iter()
        .filter(|r| r.body["data"]["submitDataValues"]["replayed"] == false)
        .count();
    for r in &results {
        assert_eq!(
            r.body["data"]["submitDataValues"]["userErrors"],
            json!([]),
            "{}",
            r.body
        );
    }
    assert_eq!(fresh, 1);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM data_value").await, 2);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM data_value_history").await,
        0
    );
    // Batches with their own keys for the same figures: writers of figures take turns, so each
    // replaces the one committed before it; the figures stay one per key, the others in the
    // history.
    let racing = (0..6).map(|i| app.gql(&t, SUBMIT, dossiers(&format!("r{i}"), i as f64, 20.0)));
    let results = futures::future::join_all(racing).await;
    let mut stored = 0;
    for r in &results {
        assert!(
            r.status == 200 && r.body.get("errors").is_none(),
            "{}",
            r.body
        );
        match r.body["data"]["submitDataValues"]["userErrors"][0]["code"].as_str() {
            None => stored += 1,
            Some(code) => assert_eq!(code, "CONFLICT", "{}", r.body),
        }
    }
    assert_eq!(stored, 6);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM data_value").await, 2);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM data_value_history").await,
        2 * stored as i64
    );
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_refused_as_a_graphql_error() {
    let app = spawn_app().await;
    let huge = batch(
        &"k".repeat(cnscd_api::http::MAX_BODY + 10),
        vec![figure(
            "POPULATION",
            "05677",
            "2024-01-01",
            "2024-12-31",
            1.0,
        )],
    );
    let r = app.gql(&admin(), SUBMIT, huge.clone()).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.error_codes(), ["QUERY_TOO_COMPLEX"]);
    let r = app.gql("not-a-token", SUBMIT, huge).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.error_codes(), ["UNAUTHENTICATED"]);
}
