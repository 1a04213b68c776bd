//! `GET /exports/indicators.csv`: the `indicators` query as CSV, through HTTP.
use cnscd_tests::*;
use serde_json::{Value, json};

const Q: &str = "query($c: [String!]!, $u: [String!]!, $f: Date!, $t: Date!, $g: PeriodGranularity!, $b: UnitBreakdown!) {
  indicators(codes: $c, unitCodes: $u, from: $f, to: $t, granularity: $g, breakdown: $b) {
    indicator { code nameVi } unit { code name } period { label start end } value numerator denominator status target attainment } }";

struct Csv {
    status: u16,
    content_type: String,
    disposition: String,
    body: Vec<u8>,
}

async fn export(app: &TestApp, token: Option<&str>, query: &str) -> Csv {
    let mut req = app
        .client
        .get(format!("{}/exports/indicators.csv?{query}", app.address));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let header = |h: &str| {
        resp.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    Csv {
        status: resp.status().as_u16(),
        content_type: header("content-type"),
        disposition: header("content-disposition"),
        body: resp.bytes().await.unwrap().to_vec(),
    }
}

fn records(body: &[u8]) -> Vec<csv::StringRecord> {
    let text = std::str::from_utf8(body).unwrap();
    let text = text.strip_prefix('\u{feff}').expect("a BOM");
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect()
}

async fn fixture() -> TestApp {
    let app = spawn_app().await;
    let t1 = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let t2 = app.create_team("05692-01", "Tổ TDP 1", "2022-06-15").await;
    let t3 = app
        .create_team("05659-01", "Tổ Chùa Hang", "2022-01-01")
        .await;
    for (team, on) in [
        (&t1, "2023-01-05"),
        (&t1, "2023-02-10"),
        (&t2, "2023-02-11"),
        (&t3, "2023-03-03"),
        (&t2, "2025-08-01"),
    ] {
        app.submit(team, "COMMUNITY_MEETING", on, json!({})).await;
    }
    for (code, unit, start, end, t) in [
        ("CNS05", "05677", "2023-01-01", "2023-03-31", 4.0),
        ("CNS02", "169", "2023-01-01", "2023-03-31", 3.0),
    ] {
        app.gql(
            &admin(),
            "mutation($i: SetIndicatorTargetInput!) { setIndicatorTarget(input: $i) { userErrors { message } } }",
            json!({ "i": { "indicator": code, "unitCode": unit, "periodStart": start, "periodEnd": end, "target": t } }),
        )
        .await
        .ok();
    }
    app
}

fn number(cell: &str) -> Value {
    if cell.is_empty() {
        Value::Null
    } else {
        json!(cell.parse::<f64>().unwrap())
    }
}

#[tokio::test]
async fn the_file_has_a_bom_the_header_vietnamese_names_and_the_api_numbers() {
    let app = fixture().await;
    let viewer = token(&["VIEWER"], &["169"], &[]);
    let csv = export(
        &app,
        Some(&viewer),
        "codes=CNS02,CNS05,EG01&unitCodes=169&from=2023-01-01&to=2023-12-31&granularity=QUARTER&breakdown=CHILDREN",
    )
    .await;
    assert_eq!(csv.status, 200, "{}", String::from_utf8_lossy(&csv.body));
    assert_eq!(csv.content_type, "text/csv; charset=utf-8");
    assert_eq!(csv.disposition, "attachment; filename=\"indicators.csv\"");
    assert!(csv.body.starts_with(&[0xEF, 0xBB, 0xBF]));
    let text = std::str::from_utf8(&csv.body[3..]).unwrap();
    assert!(text.starts_with(
        "indicator,indicator_name_vi,unit_code,unit_name,period,period_start,period_end,value,numerator,denominator,status,target,attainment\n"
    ));
    let rows = records(&csv.body);
    let r = app
        .gql(
            &viewer,
            Q,
            json!({ "c": ["CNS02", "CNS05", "EG01"], "u": ["169"], "f": "2023-01-01", "t": "2023-12-31", "g": "QUARTER", "b": "CHILDREN" }),
        )
        .await
        .ok();
    let values = r.at("indicators").as_array().unwrap();
    assert_eq!(rows.len(), values.len());
    assert!(rows.len() >= 3 * 2 * 4);
    for (row, v) in rows.iter().zip(values) {
        assert_eq!(row[0], v["indicator"]["code"]);
        assert_eq!(row[1], v["indicator"]["nameVi"]);
        assert_eq!(row[2], v["unit"]["code"]);
        assert_eq!(row[3], v["unit"]["name"]);
        assert_eq!(row[4], v["period"]["label"]);
        assert_eq!(row[5], v["period"]["start"]);
        assert_eq!(row[6], v["period"]["end"]);
        for (i, f) in [
            (7, "value"),
            (8, "numerator"),
            (9, "denominator"),
            (11, "target"),
            (12, "attainment"),
        ] {
            assert_eq!(number(&row[i]), v[f], "{f} of {row:?}");
        }
        assert_eq!(row[10], v["status"]);
    }
    // The file costs the statements the GraphQL query costs: the same computation, and the
    // targets of every value in one statement.
    let before = app.statements.load(std::sync::atomic::Ordering::SeqCst);
    let csv = export(
        &app,
        Some(&viewer),
        "codes=CNS02,CNS05,EG01&unitCodes=169&from=2023-01-01&to=2023-12-31&granularity=QUARTER&breakdown=CHILDREN",
    )
    .await;
    let file = app.statements.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert_eq!(csv.status, 200);
    let (api, _) = app
        .statements_for(
            &viewer,
            Q,
            json!({ "c": ["CNS02", "CNS05", "EG01"], "u": ["169"], "f": "2023-01-01", "t": "2023-12-31", "g": "QUARTER", "b": "CHILDREN" }),
        )
        .await;
    assert_eq!(file, api);
    let minh_lap = rows
        .iter()
        .find(|r| &r[0] == "CNS05" && &r[2] == "05677" && &r[4] == "2023-Q1")
        .unwrap();
    assert_eq!(&minh_lap[3], "Xã Minh Lập");
    assert_eq!(&minh_lap[1], "Số buổi tuyên truyền");
    assert_eq!(&minh_lap[7], "2");
    assert_eq!(&minh_lap[11], "4");
    assert_eq!(&minh_lap[12], "50");
}

#[tokio::test]
async fn the_area_and_roles_apply_as_in_graphql() {
    let app = fixture().await;
    let q = "codes=CNS05&unitCodes=05692&from=2025-01-01&to=2025-12-31&granularity=YEAR";
    // No token, or a bad one.
    assert_eq!(export(&app, None, q).await.status, 401);
    assert_eq!(export(&app, Some("not.a.token"), q).await.status, 401);
    // Roles that may not read indicators.
    for role in ["REPORTER", "TEAM_LEADER"] {
        let csv = export(&app, Some(&token(&[role], &["169"], &[])), q).await;
        assert_eq!(csv.status, 403, "{role}");
    }
    // A unit wholly outside the caller's area.
    let csv = export(&app, Some(&token(&["VIEWER"], &["164"], &[])), q).await;
    assert_eq!(csv.status, 403);
    // 05692 was under 169 only until June 2025: the row is there, its numbers are not.
    let csv = export(&app, Some(&token(&["VIEWER"], &["169"], &[])), q).await;
    assert_eq!(csv.status, 200);
    let rows = records(&csv.body);
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][2], "05692");
    for i in [7, 8, 9, 11, 12] {
        assert_eq!(&rows[0][i], "", "column {i}");
    }
    assert_eq!(&rows[0][10], "NO_DATA");
    // ADMIN reads it (partial: 05692's territory changed on 2025-07-01).
    let rows = records(&export(&app, Some(&admin()), q).await.body);
    assert_eq!(&rows[0][7], "1");
    assert_eq!(&rows[0][10], "PARTIAL");
}

#[tokio::test]
async fn bad_parameters_are_answered_400_naming_the_parameter() {
    let app = fixture().await;
    let base = "codes=CNS05&unitCodes=169&from=2023-01-01&to=2023-12-31";
    let many_codes = format!(
        "codes={}&unitCodes=169&from=2023-01-01&to=2023-12-31",
        vec!["CNS05"; 51].join(",")
    );
    let many_units = format!(
        "codes=CNS05&unitCodes={}&from=2023-01-01&to=2023-12-31",
        vec!["169"; 501].join(",")
    );
    let cases: Vec<(String, &str)> = vec![
        (
            "unitCodes=169&from=2023-01-01&to=2023-12-31".into(),
            "codes",
        ),
        (
            "codes=CNS05&from=2023-01-01&to=2023-12-31".into(),
            "unitCodes",
        ),
        ("codes=CNS05&unitCodes=169&to=2023-12-31".into(), "from"),
        (
            format!("{base}&from=2023-13-01").replace("from=2023-01-01&", ""),
            "from",
        ),
        (
            "codes=CNS05&unitCodes=169&from=1899-12-31&to=2023-12-31".into(),
            "from",
        ),
        (
            "codes=CNS05&unitCodes=169&from=2023-01-01&to=2101-01-01".into(),
            "to",
        ),
        (
            "codes=CNS05&unitCodes=169&from=2023-12-31&to=2023-01-01".into(),
            "from",
        ),
        (
            "codes=CNS05&unitCodes=169&from=2000-01-01&to=2023-12-31".into(),
            "to",
        ),
        (format!("{base}&granularity=WEEK"), "granularity"),
        (format!("{base}&breakdown=ALL"), "breakdown"),
        (format!("{base}&breakdown=LEVEL"), "level"),
        (format!("{base}&breakdown=LEVEL&level=STREET"), "level"),
        (format!("{base}&mode=SOMETIMES"), "mode"),
        (format!("{base}&unitcodes=169"), "unitcodes"),
        (
            "codes=NOPE&unitCodes=169&from=2023-01-01&to=2023-12-31".into(),
            "codes",
        ),
        (
            "codes=CNS05&unitCodes=99999&from=2023-01-01&to=2023-12-31".into(),
            "unitCodes",
        ),
        (many_codes, "codes"),
        (many_units, "unitCodes"),
    ];
    for (query, field) in cases {
        let csv = export(&app, Some(&admin()), &query).await;
        assert_eq!(csv.status, 400, "{query}");
        let body: Value = serde_json::from_slice(&csv.body).unwrap();
        let e = &body["errors"][0];
        assert_eq!(e["extensions"]["code"], "VALIDATION", "{query}: {body}");
        assert_eq!(e["extensions"]["field"], json!([field]), "{query}: {body}");
        assert!(!e["message"].as_str().unwrap().is_empty(), "{body}");
    }
    // Defaults and an empty `level` are fine.
    let csv = export(
        &app,
        Some(&admin()),
        &format!("{base}&level=&mode=AS_RECORDED&breakdown=SELF&granularity=MONTH"),
    )
    .await;
    assert_eq!(csv.status, 200);
    assert_eq!(records(&csv.body).len(), 12);
}

#[tokio::test]
async fn cells_that_start_like_formulas_stay_text_in_the_file() {
    let app = fixture().await;
    // An indicator whose names an ADMIN wrote like formulas.
    let r = app
        .gql(
            &admin(),
            "mutation($i: SaveIndicatorDefinitionInput!) { saveIndicatorDefinition(input: $i) { userErrors { message } } }",
            json!({ "i": { "code": "CNS05", "nameVi": "=HYPERLINK(\"http://evil.example\",\"Bấm\")", "nameEn": "@SUM(A1)",
                           "numerator": "ACTIVITIES", "validFrom": "2023-01-01" } }),
        )
        .await
        .ok();
    assert_eq!(
        r.at("saveIndicatorDefinition.userErrors"),
        &json!([]),
        "{}",
        r.body
    );
    let csv = export(
        &app,
        Some(&admin()),
        "codes=CNS05&unitCodes=05677&from=2023-01-01&to=2023-03-31&granularity=QUARTER",
    )
    .await;
    assert_eq!(csv.status, 200);
    let rows = records(&csv.body);
    assert_eq!(&rows[0][1], "'=HYPERLINK(\"http://evil.example\",\"Bấm\")");
    // Every text cell of every row: nothing a spreadsheet would run.
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            assert!(
                !cell.starts_with(['=', '+', '@', '\t', '\r'])
                    && (!cell.starts_with('-') || cell.parse::<f64>().is_ok()),
                "column {i}: {cell}"
            );
        }
    }
}

#[tokio::test]
async fn numbers_out_of_range_are_refused_or_answered_null_never_inf() {
    let app = fixture().await;
    // A factor that would overflow: refused, naming it.
    let r = app
        .gql(
            &admin(),
            "mutation($i: SaveIndicatorDefinitionInput!) { saveIndicatorDefinition(input: $i) { userErrors { field message code } } }",
            json!({ "i": { "code": "CNS05", "nameVi": "x", "nameEn": "x", "numerator": "ACTIVITIES",
                           "factor": 1.7e308, "validFrom": "2023-01-01" } }),
        )
        .await
        .ok();
    let errors = r.at("saveIndicatorDefinition.userErrors");
    assert_eq!(errors[0]["field"], json!(["input", "factor"]), "{}", r.body);
    assert_eq!(errors[0]["code"], "VALIDATION");
    // A target so small that value ÷ target overflows: the attainment is null with an error,
    // in every form the values take, and an empty cell in the file.
    app.gql(
        &admin(),
        "mutation($i: SetIndicatorTargetInput!) { setIndicatorTarget(input: $i) { userErrors { message } } }",
        json!({ "i": { "indicator": "CNS05", "unitCode": "05677", "periodStart": "2023-01-01", "periodEnd": "2023-03-31", "target": 1e-310 } }),
    )
    .await
    .ok();
    let args = "codes: [\"CNS05\"], unitCodes: [\"05677\"], from: \"2023-01-01\", to: \"2023-03-31\", granularity: QUARTER";
    let r = app
        .gql(
            &admin(),
            &format!("{{ indicators({args}) {{ value attainment }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.at("indicators.0.value"), 2.0, "{}", r.body);
    assert!(!r.body.to_string().contains("inf"), "{}", r.body);
    assert_eq!(
        r.body["errors"][0]["path"],
        json!(["indicators", 0, "attainment"]),
        "{}",
        r.body
    );
    let r = app
        .gql(
            &admin(),
            &format!("{{ indicatorTable({args}) {{ values attainments }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.at("indicatorTable.attainments"),
        &json!([null]),
        "{}",
        r.body
    );
    assert_eq!(
        r.body["errors"][0]["path"],
        json!(["indicatorTable", "attainments", 0]),
        "{}",
        r.body
    );
    let csv = export(
        &app,
        Some(&admin()),
        "codes=CNS05&unitCodes=05677&from=2023-01-01&to=2023-03-31&granularity=QUARTER",
    )
    .await;
    let rows = records(&csv.body);
    assert_eq!(&rows[0][7], "2");
    assert_eq!(&rows[0][12], "", "{:?}", rows[0]);
    assert!(!String::from_utf8_lossy(&csv.body).contains("inf"));
}
