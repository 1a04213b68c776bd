//! Indicators against numbers computed by hand on a small fixture.
use cnscd_tests::*;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};

const Q: &str = "query($c: [String!]!, $u: [String!]!, $f: Date!, $t: Date!, $g: PeriodGranularity!, $b: UnitBreakdown!, $l: AdminLevel) {
  indicators(codes: $c, unitCodes: $u, from: $f, to: $t, granularity: $g, breakdown: $b, level: $l) {
    indicator { code factor } unit { code } period { label start end } value numerator denominator status } }";

async fn report(app: &TestApp, unit: &str, element: &str, start: &str, end: &str, value: f64) {
    report_from(app, "TEST", unit, element, start, end, value).await;
}

async fn report_from(
    app: &TestApp,
    source: &str,
    unit: &str,
    element: &str,
    start: &str,
    end: &str,
    value: f64,
) {
    cnscd_entity::data_value::ActiveModel {
        unit_code: Set(unit.into()),
        element_code: Set(element.into()),
        period_start: Set(date(start)),
        period_end: Set(date(end)),
        value: Set(value),
        source_system: Set(source.into()),
        submitted_by: Set("test".into()),
        client_id: Set(None),
        submitted_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
}

fn outcomes(list: &[(&str, i32)]) -> Value {
    json!({ "outcomes": list.iter().map(|(s, p)| json!({ "service": s, "people": p })).collect::<Vec<_>>() })
}

async fn fixture() -> TestApp {
    let app = spawn_app().await;
    let t1 = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let t2 = app.create_team("05692-01", "Tổ TDP 1", "2023-06-15").await;
    let t3 = app
        .create_team("05659-01", "Tổ Chùa Hang", "2022-01-01")
        .await;
    app.add_member(&t1, "Nguyễn Văn An", "LEADER", "HAMLET_HEAD", "2022-05-01")
        .await;
    app.add_member(&t1, "Trần Thị Lệ", "MEMBER", "YOUTH_UNION", "2023-01-10")
        .await;
    let gone = app
        .add_member(&t1, "Lê Văn Cường", "MEMBER", "YOUTH_UNION", "2023-02-01")
        .await;
    app.gql(
        &admin(),
        "mutation($i: EndMembershipInput!) { endMembership(input: $i) { userErrors { message } } }",
        json!({ "i": { "membershipId": gone, "endedOn": "2023-06-30" } }),
    )
    .await
    .ok();
    app.add_member(&t2, "Phạm Thu Hà", "LEADER", "YOUTH_UNION", "2023-06-15")
        .await;
    app.add_member(&t3, "Hoàng Minh Đức", "LEADER", "POLICE", "2022-01-01")
        .await;
    let mut a = outcomes(&[("ONLINE_PUBLIC_SERVICE", 5), ("TUITION_PAYMENT", 3)]);
    a["householdsReached"] = json!(10);
    app.submit(&t1, "COMMUNITY_MEETING", "2023-01-05", a).await;
    let mut a = outcomes(&[("VNEID", 6), ("HOSPITAL_FEE_PAYMENT", 2)]);
    a["householdsReached"] = json!(4);
    app.submit(&t1, "DOOR_TO_DOOR", "2023-02-10", a).await;
    let mut a = outcomes(&[("UTILITY_BILL_PAYMENT", 7), ("ONLINE_PUBLIC_SERVICE", 1)]);
    a["householdsReached"] = json!(20);
    app.submit(&t2, "COMMUNITY_MEETING", "2023-07-01", a).await;
    let mut a = outcomes(&[("VNEID", 100)]);
    a["householdsReached"] = json!(50);
    app.submit(&t3, "COMMUNITY_MEETING", "2023-03-03", a).await;
    app.submit(&t1, "TRAINING", "2025-08-01", outcomes(&[("VNEID", 2)]))
        .await;
    for (unit, start, end, online, total) in [
        ("05677", "2023-01-01", "2023-01-31", 30.0, 50.0),
        ("05677", "2023-02-01", "2023-02-28", 20.0, 30.0),
        ("05692", "2023-01-01", "2023-01-31", 10.0, 40.0),
        ("05659", "2023-01-01", "2023-01-31", 99.0, 100.0),
    ] {
        report(&app, unit, "DOSSIERS_ONLINE", start, end, online).await;
        report(&app, unit, "DOSSIERS_TOTAL", start, end, total).await;
    }
    for (unit, population, households) in [("05677", 5000.0, 1000.0), ("05692", 3000.0, 900.0)] {
        report(
            &app,
            unit,
            "POPULATION",
            "2023-01-01",
            "2023-12-31",
            population,
        )
        .await;
        report(
            &app,
            unit,
            "HOUSEHOLDS",
            "2023-01-01",
            "2023-12-31",
            households,
        )
        .await;
    }
    app
}

fn vars(
    codes: &[&str],
    units: &[&str],
    from: &str,
    to: &str,
    g: &str,
    b: &str,
    level: Option<&str>,
) -> Value {
    json!({ "c": codes, "u": units, "f": from, "t": to, "g": g, "b": b, "l": level })
}

fn find<'a>(rows: &'a Value, code: &str, unit: &str, label: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["indicator"]["code"] == code
                && r["unit"]["code"] == unit
                && r["period"]["label"] == label
        })
        .unwrap_or_else(|| panic!("no {code} for {unit} in {label}: {rows}"))
}

fn close(v: &Value, expected: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((got - expected).abs() < 1e-9, "{got} != {expected}");
}

#[tokio::test]
async fn district_values_for_a_year_match_hand_computed_numbers() {
    let app = fixture().await;
    let codes = [
        "CNS01", "CNS02", "CNS03", "CNS04", "CNS05", "CNS06", "CNS07", "CNS08", "CNS09", "CNS10",
        "EG01", "EG02", "DS01",
    ];
    let r = app
        .gql(
            &admin(),
            Q,
            vars(
                &codes,
                &["169"],
                "2023-01-01",
                "2023-12-31",
                "YEAR",
                "SELF",
                None,
            ),
        )
        .await
        .ok();
    let rows = r.at("indicators");
    assert_eq!(rows.as_array().unwrap().len(), codes.len());
    let v = |c| find(rows, c, "169", "2023");
    close(&v("CNS01")["value"], 200.0 / 3.0);
    close(&v("CNS02")["value"], 2.0);
    assert!(v("CNS02")["denominator"].is_null());
    close(&v("CNS03")["numerator"], 3.0);
    close(&v("CNS03")["denominator"], 8000.0);
    close(&v("CNS03")["value"], 0.0375);
    close(&v("CNS04")["value"], 200.0 / 3.0);
    close(&v("CNS05")["value"], 2.0);
    close(&v("CNS06")["value"], 34.0 / 1900.0 * 100.0);
    close(&v("CNS07")["value"], 6.0);
    close(&v("CNS08")["value"], 12.0);
    close(&v("CNS09")["value"], 6.0);
    close(&v("CNS10")["value"], 1.0);
    close(&v("EG01")["numerator"], 60.0);
    close(&v("EG01")["denominator"], 120.0);
    close(&v("EG01")["value"], 50.0);
    assert_eq!(v("EG01")["status"], "OK");
    // Nothing reported: no data, which is not zero.
    assert!(v("EG02")["value"].is_null());
    assert_eq!(v("EG02")["status"], "NO_DATA");
    assert_eq!(v("DS01")["status"], "NO_DATA");
    assert_eq!(v("CNS05")["status"], "OK");
}

#[tokio::test]
async fn rolling_up_sums_numerators_and_denominators_before_dividing() {
    let app = fixture().await;
    let r = app
        .gql(
            &admin(),
            Q,
            vars(
                &["EG01", "CNS05"],
                &["19"],
                "2023-01-01",
                "2023-12-31",
                "YEAR",
                "SELF",
                None,
            ),
        )
        .await
        .ok();
    let rows = r.at("indicators");
    // (60 + 99) / (120 + 100), not the average of 50% and 99%.
    close(
        &find(rows, "EG01", "19", "2023")["value"],
        159.0 / 220.0 * 100.0,
    );
    close(&find(rows, "CNS05", "19", "2023")["value"], 3.0);
    let r = app
        .gql(
            &admin(),
            Q,
            vars(
                &["EG01", "CNS05"],
                &["169"],
                "2023-01-01",
                "2023-12-31",
                "YEAR",
                "CHILDREN",
                None,
            ),
        )
        .await
        .ok();
    let rows = r.at("indicators");
    close(&find(rows, "EG01", "05677", "2023")["value"], 62.5);
    close(&find(rows, "EG01", "05692", "2023")["value"], 25.0);
    close(&find(rows, "CNS05", "05677", "2023")["value"], 1.0);
    close(&find(rows, "CNS05", "05692", "2023")["value"], 1.0);
    let r = app
        .gql(
            &admin(),
            Q,
            vars(
                &["CNS02"],
                &["19"],
                "2023-01-01",
                "2023-12-31",
                "YEAR",
                "LEVEL",
                Some("HAMLET"),
            ),
        )
        .await
        .ok();
    let rows = r.at("indicators");
    assert_eq!(rows.as_array().unwrap().len(), 4);
    close(&find(rows, "CNS02", "05677-01", "2023")["value"], 1.0);
    close(&find(rows, "CNS02", "05677-02", "2023")["value"], 0.0);
}

#[tokio::test]
async fn months_and_quarters_tell_zero_from_no_data() {
    let app = fixture().await;
    let r = app
        .gql(
            &admin(),
            Q,
            vars(
                &["EG01", "CNS05"],
                &["169"],
                "2023-01-01",
                "2023-03-31",
                "MONTH",
                "SELF",
                None,
            ),
        )
        .await
        .ok();
    let rows = r.at("indicators");
    assert_eq!(rows.as_array().unwrap().len(), 6);
    close(
        &find(rows, "EG01", "169", "2023-01")["value"],
        40.0 / 90.0 * 100.0,
    );
    let march = find(rows, "EG01", "169", "2023-03");
    assert_eq!(march["status"], "NO_DATA");
    assert!(march["value"].is_null());
    let meetings = find(rows, "CNS05", "169", "2023-03");
    assert_eq!(meetings["status"], "OK");
    close(&meetings["value"], 0.0);
    let r = app
        .gql(
            &admin(),
            Q,
            vars(
                &["CNS05"],
                &["169"],
                "2023-01-01",
                "2023-12-31",
                "QUARTER",
                "SELF",
                None,
            ),
        )
        .await
        .ok();
    let rows = r.at("indicators");
    let q3 = find(rows, "CNS05", "169", "2023-Q3");
    assert_eq!(q3["period"]["start"], "2023-07-01");
    assert_eq!(q3["period"]["end"], "2023-09-30");
    close(&q3["value"], 1.0);
}

#[tokio::test]
async fn values_follow_units_as_they_were_across_the_reorganisation() {
    let app = fixture().await;
    let r = app
        .gql(
            &admin(),
            Q,
            vars(
                &["CNS09", "CNS02"],
                &["169", "05692"],
                "2025-01-01",
                "2025-12-31",
                "YEAR",
                "SELF",
                None,
            ),
        )
        .await
        .ok();
    let rows = r.at("indicators");
    // The district existed half of 2025: partial, and the August training is not its.
    let district = find(rows, "CNS09", "169", "2025");
    assert_eq!(district["status"], "PARTIAL");
    close(&district["value"], 0.0);
    // Xã Đồng Hỷ covers Minh Lập's hamlets after 2025-07-01: its territory changed inside
    // the year, so the year is partial.
    let commune = find(rows, "CNS09", "05692", "2025");
    assert_eq!(commune["status"], "PARTIAL");
    close(&commune["value"], 2.0);
    close(&find(rows, "CNS02", "05692", "2025")["value"], 2.0);
    let r = app
        .gql(
            &admin(),
            Q,
            vars(
                &["CNS09"],
                &["169"],
                "2026-01-01",
                "2026-12-31",
                "YEAR",
                "SELF",
                None,
            ),
        )
        .await
        .ok();
    assert_eq!(r.at("indicators.0.status"), "NO_DATA");
}

#[tokio::test]
async fn indicators_are_limited_to_the_callers_area() {
    let app = fixture().await;
    let v = vars(
        &["CNS05"],
        &["169"],
        "2023-01-01",
        "2023-12-31",
        "YEAR",
        "SELF",
        None,
    );
    let r = app
        .gql(&token(&["VIEWER"], &["169"], &[]), Q, v.clone())
        .await
        .ok();
    close(&r.at("indicators.0.value").clone(), 2.0);
    for t in [
        token(&["VIEWER"], &["164"], &[]),
        token(&["UNIT_ADMIN"], &["05677"], &[]),
    ] {
        let r = app.gql(&t, Q, v.clone()).await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"], "{:?}", r.body);
    }
    let r = app
        .gql(
            &token(&["VIEWER"], &["05677"], &[]),
            Q,
            vars(
                &["CNS05"],
                &["05677"],
                "2023-01-01",
                "2023-12-31",
                "YEAR",
                "SELF",
                None,
            ),
        )
        .await
        .ok();
    close(&r.at("indicators.0.value").clone(), 1.0);
    for t in [
        token(&["REPORTER"], &["169"], &[]),
        token(&["TEAM_LEADER"], &[], &[]),
    ] {
        let r = app.gql(&t, Q, v.clone()).await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    }
}

#[tokio::test]
async fn bad_indicator_queries_name_what_is_wrong() {
    let app = fixture().await;
    let cases = [
        vars(
            &["NOPE"],
            &["169"],
            "2023-01-01",
            "2023-12-31",
            "YEAR",
            "SELF",
            None,
        ),
        vars(
            &["CNS05"],
            &["00000"],
            "2023-01-01",
            "2023-12-31",
            "YEAR",
            "SELF",
            None,
        ),
        vars(
            &["CNS05"],
            &["169"],
            "2023-12-31",
            "2023-01-01",
            "YEAR",
            "SELF",
            None,
        ),
        vars(
            &["CNS05"],
            &["169"],
            "2023-01-01",
            "2023-12-31",
            "YEAR",
            "LEVEL",
            None,
        ),
        vars(
            &["CNS05"],
            &["169"],
            "1000-01-01",
            "9000-12-31",
            "MONTH",
            "SELF",
            None,
        ),
    ];
    for v in cases {
        let r = app.gql(&admin(), Q, v.clone()).await;
        assert_eq!(r.error_codes(), ["VALIDATION"], "{v}: {:?}", r.body);
    }
    let r = app
        .gql(
            &admin(),
            "{ indicatorDefinitions { code nameVi nameEn numerator denominator factor } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(r.at("indicatorDefinitions").as_array().unwrap().len(), 13);
}

#[tokio::test]
async fn future_periods_have_no_data_and_the_current_one_is_partial() {
    let app = fixture().await;
    let today = cnscd_api::units::service::today();
    let next_year = format!("{}", chrono::Datelike::year(&today) + 1);
    let r = app
        .gql(
            &admin(),
            "query($f: Date!, $t: Date!) { indicators(codes: [\"CNS05\", \"CNS02\"], unitCodes: [\"05692\"], from: $f, to: $t, granularity: YEAR) { indicator { code } period { label } value status asOf } }",
            json!({ "f": format!("{}-01-01", chrono::Datelike::year(&today)), "t": format!("{next_year}-12-31") }),
        )
        .await
        .ok();
    let rows = r.at("indicators").as_array().unwrap().clone();
    for row in &rows {
        if row["period"]["label"] == next_year.as_str() {
            // Not started: nothing to say, not zero.
            assert_eq!(row["status"], "NO_DATA", "{row}");
            assert!(row["value"].is_null() && row["asOf"].is_null(), "{row}");
        } else {
            // Under way: states taken today, and the value says it is not final.
            assert_eq!(row["status"], "PARTIAL", "{row}");
            assert!(row["asOf"].as_str().unwrap() <= today.to_string().as_str());
        }
    }
    assert_eq!(rows.len(), 4);
}

#[tokio::test]
async fn a_reported_figure_counts_once_whatever_its_sources_and_levels() {
    let app = fixture().await;
    // The same month reported again by another system (a correction): the latest counts.
    report_from(
        &app,
        "PORTAL",
        "05677",
        "DOSSIERS_ONLINE",
        "2023-01-01",
        "2023-01-31",
        35.0,
    )
    .await;
    // A hamlet reporting what its commune already reported: the commune's figure stands.
    report(
        &app,
        "05677-01",
        "DOSSIERS_ONLINE",
        "2023-01-01",
        "2023-01-31",
        12.0,
    )
    .await;
    report(
        &app,
        "05677-01",
        "DOSSIERS_TOTAL",
        "2023-01-01",
        "2023-01-31",
        20.0,
    )
    .await;
    // Population reported for a hamlet and for its commune: the commune's.
    report(
        &app,
        "05677-01",
        "POPULATION",
        "2023-01-01",
        "2023-12-31",
        800.0,
    )
    .await;
    let r = app
        .gql(
            &admin(),
            Q,
            vars(
                &["EG01", "CNS03"],
                &["169", "05677", "05677-01"],
                "2023-01-01",
                "2023-01-31",
                "MONTH",
                "SELF",
                None,
            ),
        )
        .await
        .ok();
    let rows = r.at("indicators");
    let eg01 = find(rows, "EG01", "169", "2023-01");
    // 35 (05677, latest) + 10 (05692) online of 50 + 40.
    close(&eg01["numerator"], 45.0);
    close(&eg01["denominator"], 90.0);
    close(&find(rows, "EG01", "05677", "2023-01")["numerator"], 35.0);
    // The hamlet on its own still has its own figure.
    close(
        &find(rows, "EG01", "05677-01", "2023-01")["numerator"],
        12.0,
    );
    // Population of 169: 5,000 (05677, not + 800) + 3,000.
    close(
        &find(rows, "CNS03", "169", "2023-01")["denominator"],
        8000.0,
    );
    close(
        &find(rows, "CNS03", "05677-01", "2023-01")["denominator"],
        800.0,
    );
    // Population known for all of 169 (both communes reported it), not for all of province 19
    // (Chùa Hang in district 164 did not): the province's members per 100 people is partial.
    let r = app
        .gql(
            &admin(),
            Q,
            vars(
                &["CNS03"],
                &["169", "19"],
                "2023-01-01",
                "2023-12-31",
                "YEAR",
                "SELF",
                None,
            ),
        )
        .await
        .ok();
    let rows = r.at("indicators");
    assert_eq!(find(rows, "CNS03", "169", "2023")["status"], "OK");
    assert_eq!(find(rows, "CNS03", "19", "2023")["status"], "PARTIAL");
}

const REBASED: &str = "query($c: [String!]!, $u: [String!]!, $f: Date!, $t: Date!, $g: PeriodGranularity!, $b: UnitBreakdown!) {
  indicators(codes: $c, unitCodes: $u, from: $f, to: $t, granularity: $g, breakdown: $b, mode: REBASED) {
    indicator { code } unit { code name } period { label } value numerator denominator status asOf } }";

#[tokio::test]
async fn rebased_values_put_the_past_into_todays_units() {
    let app = fixture().await;
    // FULL successions: Minh Lập (05677) and Hóa Thượng (05692) went into Xã Đồng Hỷ
    // (05692), Chùa Hang (05659) into Linh Sơn (05710).
    let r = app
        .gql(
            &admin(),
            REBASED,
            json!({ "c": ["CNS09", "CNS02", "CNS05"], "u": ["05692", "05710", "169"], "f": "2023-01-01", "t": "2023-12-31", "g": "YEAR", "b": "SELF" }),
        )
        .await
        .ok();
    let rows = r.at("indicators");
    // The dissolved district has no re-based row.
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["unit"]["code"] != "169"),
        "{rows}"
    );
    // 05692 in 2023: Minh Lập's 6 VNeID activations, both teams, both meetings.
    let vneid = find(rows, "CNS09", "05692", "2023");
    close(&vneid["value"], 6.0);
    assert_eq!(vneid["status"], "OK");
    assert_eq!(vneid["unit"]["name"], "Xã Đồng Hỷ");
    close(&find(rows, "CNS02", "05692", "2023")["value"], 2.0);
    close(&find(rows, "CNS05", "05692", "2023")["value"], 2.0);
    close(&find(rows, "CNS09", "05710", "2023")["value"], 100.0);
    // As recorded, 05692 (then Hóa Thượng) had none of Minh Lập's.
    let r = app
        .gql(
            &admin(),
            Q,
            vars(
                &["CNS09"],
                &["05692"],
                "2023-01-01",
                "2023-12-31",
                "YEAR",
                "SELF",
                None,
            ),
        )
        .await
        .ok();
    close(
        &find(r.at("indicators"), "CNS09", "05692", "2023")["value"],
        0.0,
    );
    // Across the reorganisation: 2025's states once (today's unit at the year's end), flows
    // from both halves.
    let r = app
        .gql(
            &admin(),
            REBASED,
            json!({ "c": ["CNS09", "CNS02"], "u": ["19"], "f": "2025-01-01", "t": "2025-12-31", "g": "YEAR", "b": "CHILDREN" }),
        )
        .await
        .ok();
    let rows = r.at("indicators");
    close(&find(rows, "CNS02", "05692", "2025")["value"], 2.0);
    close(&find(rows, "CNS09", "05692", "2025")["value"], 2.0);
    close(&find(rows, "CNS02", "05710", "2025")["value"], 1.0);
}

#[tokio::test]
async fn partial_successions_split_by_the_hamlets_taken_and_are_estimates() {
    let app = fixture().await;
    // Make Minh Lập's succession PARTIAL: xóm Na Lay (05677-02) goes to Linh Sơn instead.
    for sql in [
        "UPDATE admin_unit_succession SET kind = 'PARTIAL' WHERE old_code = '05677'",
        "INSERT INTO admin_unit_succession (old_code, new_code, kind, effective_on) \
         VALUES ('05677', '05710', 'PARTIAL', '2025-07-01')",
        "UPDATE admin_unit SET parent_code = '05710' WHERE code = '05677-02' \
         AND valid_from = '2025-07-01'",
    ] {
        sea_orm::ConnectionTrait::execute_unprepared(&app.db, sql)
            .await
            .unwrap();
    }
    cnscd_api::units::service::rebuild_closure(&app.db)
        .await
        .unwrap();
    // The catalogue changed: the server loads it anew in the background.
    app.wait_for_data().await;
    let na_lay = app.create_team("05677-02", "Tổ Na Lay", "2022-05-01").await;
    app.submit(
        &na_lay,
        "DOOR_TO_DOOR",
        "2023-04-04",
        outcomes(&[("VNEID", 10)]),
    )
    .await;
    let r = app
        .gql(
            &admin(),
            REBASED,
            json!({ "c": ["CNS09"], "u": ["05692", "05710"], "f": "2023-01-01", "t": "2023-12-31", "g": "YEAR", "b": "SELF" }),
        )
        .await
        .ok();
    let rows = r.at("indicators");
    // Minh Lập's 16 split half and half (one hamlet of two each): 8 to 05692; 05710 has
    // Chùa Hang's 100 and the other 8. Nothing lost, nothing counted twice.
    let dong_hy = find(rows, "CNS09", "05692", "2023");
    close(&dong_hy["value"], 8.0);
    assert_eq!(dong_hy["status"], "ESTIMATED");
    let linh_son = find(rows, "CNS09", "05710", "2023");
    close(&linh_son["value"], 108.0);
    assert_eq!(linh_son["status"], "ESTIMATED");
}

#[tokio::test]
async fn each_period_is_computed_with_the_definition_valid_for_it() {
    let app = fixture().await;
    // From 2025, CNS05 counts every activity, not only community meetings.
    let r = app
        .gql(
            &admin(),
            "mutation($i: SaveIndicatorDefinitionInput!) { saveIndicatorDefinition(input: $i) { indicator { version } userErrors { message } } }",
            json!({ "i": { "code": "CNS05", "nameVi": "Số hoạt động", "nameEn": "Activities",
                           "numerator": "ACTIVITIES", "validFrom": "2025-01-01" } }),
        )
        .await
        .ok();
    assert_eq!(
        r.at("saveIndicatorDefinition.userErrors"),
        &json!([]),
        "{}",
        r.body
    );
    let r = app
        .gql(
            &admin(),
            "{ indicators(codes: [\"CNS05\"], unitCodes: [\"05677-01\"], from: \"2023-01-01\", to: \"2025-12-31\", granularity: YEAR) { indicator { version numerator } period { label } value } }",
            json!({}),
        )
        .await
        .ok();
    let rows = r.at("indicators").as_array().unwrap().clone();
    // 2023: the meeting of 5 January, by version 1; 2025: the August training, by version 2.
    assert_eq!(rows[0]["indicator"]["version"], 1, "{rows:?}");
    close(&rows[0]["value"], 1.0);
    assert_eq!(rows[2]["indicator"]["version"], 2);
    assert_eq!(rows[2]["indicator"]["numerator"], "ACTIVITIES");
    close(&rows[2]["value"], 1.0);
    // The hamlet's two 2023 activities would have counted 2 under version 2.
    assert_eq!(
        rows[0]["indicator"]["numerator"],
        "ACTIVITIES_COMMUNITY_MEETING"
    );
}

#[tokio::test]
async fn the_table_form_holds_the_same_values() {
    let app = fixture().await;
    let args = "codes: [\"CNS05\", \"CNS02\", \"EG01\"], unitCodes: [\"19\"], from: \"2023-01-01\", to: \"2025-12-31\", granularity: QUARTER, breakdown: LEVEL, level: COMMUNE";
    let r = app
        .gql(
            &admin(),
            &format!("{{ indicators({args}) {{ indicator {{ code }} unit {{ code }} period {{ label }} value numerator denominator status }} \
                      indicatorTable({args}) {{ codes units periods values numerators denominators statuses withheld }} }}"),
            json!({}),
        )
        .await
        .ok();
    let t = r.at("indicatorTable");
    let (codes, units, periods) = (
        t["codes"].as_array().unwrap(),
        t["units"].as_array().unwrap(),
        t["periods"].as_array().unwrap(),
    );
    assert_eq!(periods.len(), 12);
    assert_eq!(units.len(), 4, "{t}");
    assert_eq!(
        t["values"].as_array().unwrap().len(),
        codes.len() * units.len() * periods.len()
    );
    let mut seen = 0;
    for v in r.at("indicators").as_array().unwrap() {
        let ci = codes
            .iter()
            .position(|c| *c == v["indicator"]["code"])
            .unwrap();
        let ui = units.iter().position(|u| *u == v["unit"]["code"]).unwrap();
        let pi = periods
            .iter()
            .position(|p| *p == v["period"]["label"])
            .unwrap();
        let i = (ci * units.len() + ui) * periods.len() + pi;
        for (column, field) in [
            ("values", "value"),
            ("numerators", "numerator"),
            ("denominators", "denominator"),
            ("statuses", "status"),
        ] {
            assert_eq!(t[column][i], v[field], "{column} at {i}: {v}");
        }
        seen += 1;
    }
    assert!(seen > 50);
    assert_eq!(t["withheld"], 0);
    // A viewer of 05692 reads xóm Cà Phê's quarters after the reorganisation only.
    let r = app
        .gql(
            &token(&["VIEWER"], &["05692"], &[]),
            "{ indicatorTable(codes: [\"CNS05\"], unitCodes: [\"05677-01\"], from: \"2024-01-01\", to: \"2025-12-31\", granularity: QUARTER) { periods values statuses withheld } }",
            json!({}),
        )
        .await
        .ok();
    let t = r.at("indicatorTable");
    assert_eq!(t["withheld"], 6, "{t}");
    assert_eq!(t["statuses"][6], "OK");
    assert_eq!(t["statuses"][0], "NO_DATA");
    assert!(t["values"][0].is_null());
}

/// Indicators are computed from an in-memory copy of the hierarchy, teams, memberships and
/// reported figures, labelled with the database's data generation: a change made through
/// another replica, or straight in the database, shows in the next answer of every replica,
/// and a request on a current copy runs the same few statements whatever it asks for.
#[tokio::test]
async fn every_replica_answers_from_what_is_committed() {
    let app = fixture().await;
    let other = app.replica().await;
    let ask = |address: String, codes: &'static [&'static str]| {
        let app = &app;
        async move {
            let r = app
                .gql_at(
                    &address,
                    &admin(),
                    Q,
                    vars(
                        codes,
                        &["05677"],
                        "2024-01-01",
                        "2024-12-31",
                        "YEAR",
                        "SELF",
                        None,
                    ),
                )
                .await
                .ok();
            let rows = r.at("indicators").clone();
            let n = |code: &str| find(&rows, code, "05677", "2024")["numerator"].as_f64();
            (n("CNS02"), n("CNS03"), n("EG02"), n("CNS05"))
        }
    };
    let codes: &[&str] = &["CNS02", "CNS03", "EG02", "CNS05"];
    let before = (Some(1.0), Some(2.0), None, Some(0.0));
    assert_eq!(ask(app.address.clone(), codes).await, before);
    assert_eq!(ask(other.clone(), codes).await, before);

    // A team founded through the replica counts at once on both.
    let team = app
        .gql_at(
            &other,
            &admin(),
            "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id } userErrors { message } } }",
            json!({ "i": { "unitCode": "05677-02", "name": "Tổ Mới", "foundedOn": "2024-03-01" } }),
        )
        .await
        .ok();
    assert!(team.at("createTeam.team.id").is_string(), "{:?}", team.body);
    // A membership ended and a figure reported by hand in the database: both replicas follow.
    cnscd_api::db::query(
        &app.db,
        "UPDATE membership SET ended_on = ? WHERE affiliation = 'HAMLET_HEAD'",
        vec![date("2024-05-31").into()],
    )
    .await
    .unwrap();
    report(
        &app,
        "05677",
        "EDOCS_EXCHANGED",
        "2024-04-01",
        "2024-04-30",
        7.0,
    )
    .await;
    let after = (Some(2.0), Some(1.0), Some(7.0), Some(0.0));
    assert_eq!(ask(app.address.clone(), codes).await, after);
    assert_eq!(ask(other.clone(), codes).await, after);

    // Activities submitted through the replica count on both; catching up with them is one
    // more statement, and only once.
    let new_team = team.at("createTeam.team.id").as_str().unwrap().to_owned();
    for day in ["2024-06-01", "2024-07-15"] {
        let r = app
            .gql_at(
                &other,
                &admin(),
                "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { activity { id } userErrors { message } } }",
                json!({ "i": { "idempotencyKey": day, "teamId": new_team, "kind": "COMMUNITY_MEETING",
                    "occurredOn": day, "title": "Họp dân" } }),
            )
            .await
            .ok();
        assert!(
            r.at("submitActivity.activity.id").is_string(),
            "{:?}",
            r.body
        );
    }
    let q1 = vars(
        codes,
        &["05677"],
        "2024-01-01",
        "2024-12-31",
        "YEAR",
        "SELF",
        None,
    );
    let (catching_up, r) = app.statements_for(&admin(), Q, q1.clone()).await;
    close(
        &find(r.ok().at("indicators"), "CNS05", "05677", "2024")["numerator"],
        2.0,
    );
    let (current, _) = app.statements_for(&admin(), Q, q1).await;
    assert_eq!((catching_up, current), (2, 1));
    assert_eq!(
        ask(other.clone(), codes).await,
        (Some(2.0), Some(1.0), Some(7.0), Some(2.0))
    );
    // A rollup corrected by hand (the row of the hamlet the activity was recorded at, which
    // the commune sums, once the deltas are folded in): both follow.
    cnscd_api::activities::rollup::compact(&app.db)
        .await
        .unwrap();
    cnscd_api::db::query(
        &app.db,
        "UPDATE unit_month_fact SET value = value + 5 WHERE unit_code = '05677-02' \
         AND element_code = 'ACTIVITIES_COMMUNITY_MEETING' AND month_start = ?",
        vec![date("2024-06-01").into()],
    )
    .await
    .unwrap();
    for address in [app.address.clone(), other.clone()] {
        assert_eq!(
            ask(address, codes).await,
            (Some(2.0), Some(1.0), Some(7.0), Some(7.0))
        );
    }

    // On a current copy the statements do not grow with what is asked.
    let q = |codes: &[&str], units: &[&str]| {
        vars(
            codes,
            units,
            "2023-01-01",
            "2025-12-31",
            "YEAR",
            "CHILDREN",
            None,
        )
    };
    let (small, r) = app
        .statements_for(&admin(), Q, q(&["CNS05"], &["05677"]))
        .await;
    r.ok();
    let (large, r) = app
        .statements_for(
            &admin(),
            Q,
            q(
                &[
                    "CNS01", "CNS02", "CNS03", "CNS04", "CNS05", "CNS06", "EG01", "DS01",
                ],
                &["19", "169", "05677", "05692"],
            ),
        )
        .await;
    r.ok();
    // The generations, and the rollup rows of the hamlets the breakdown shows (the copy
    // holds flows summed for units with units under them only): one statement each, however
    // much is asked.
    assert_eq!(
        (small, large),
        (2, 2),
        "statements for a small and a large request"
    );
    // Without hamlets in the answer, the generations alone.
    let (communes, r) = app
        .statements_for(
            &admin(),
            Q,
            vars(
                &["CNS01", "CNS05"],
                &["169"],
                "2023-01-01",
                "2025-12-31",
                "YEAR",
                "CHILDREN",
                None,
            ),
        )
        .await;
    r.ok();
    assert_eq!(communes, 1, "statements for a request of communes");
}

/// Intake appends rollup deltas and a compaction folds them into the rollup rows while
/// replicas hold them: at every step, on both replicas, each answer equals what was submitted
/// (no delta counted twice, none dropped), whether the copy read a delta before it was folded
/// or only the row it went into.
#[tokio::test]
async fn folding_rollup_deltas_changes_no_answer_on_any_replica() {
    let app = fixture().await;
    let other = app.replica().await;
    let team = app.create_team("05677-01", "Tổ Gộp", "2024-01-01").await;
    let ask = |address: String| {
        let app = &app;
        async move {
            let r = app
                .gql_at(
                    &address,
                    &admin(),
                    Q,
                    vars(
                        &["CNS05", "CNS09"],
                        &["05677-01"],
                        "2024-01-01",
                        "2024-12-31",
                        "YEAR",
                        "SELF",
                        None,
                    ),
                )
                .await
                .ok();
            let rows = r.at("indicators").clone();
            let n = |code: &str| {
                find(&rows, code, "05677-01", "2024")["numerator"]
                    .as_f64()
                    .unwrap_or(0.0)
            };
            (n("CNS05"), n("CNS09"))
        }
    };
    let (mut meetings, mut people) = ask(app.address.clone()).await;
    let mut rng = cnscd_tests::fuzz::Rng::new(11);
    let mut folds = 0;
    for _ in 0..20 {
        for _ in 0..rng.below(4) {
            let k = 1 + rng.below(9);
            let day = format!("2024-{:02}-10", 1 + rng.below(12));
            app.submit(
                &team,
                "COMMUNITY_MEETING",
                &day,
                json!({ "outcomes": [{ "service": "VNEID", "people": k }] }),
            )
            .await;
            meetings += 1.0;
            people += k as f64;
        }
        // One replica reads before the fold, sometimes; both after.
        if rng.chance(50) {
            assert_eq!(ask(other.clone()).await, (meetings, people));
        }
        // All of them, or only the oldest few (a slice: the rest stay deltas).
        if rng.chance(30) {
            folds += cnscd_api::activities::rollup::compact(&app.db)
                .await
                .unwrap();
        } else if rng.chance(50) {
            let slice = 1 + rng.below(3) as i64;
            folds += cnscd_api::activities::rollup::fold_slice(&app.db, slice)
                .await
                .unwrap();
        }
        for address in [app.address.clone(), other.clone()] {
            assert_eq!(ask(address).await, (meetings, people));
        }
    }
    assert!(folds > 0, "no delta was folded");
    // Folded or not, the stored rollups are the recount from the raw rows.
    let (_, recount) = cnscd_api::activities::rollup::recount(&app.db)
        .await
        .unwrap();
    let stored = cnscd_api::activities::rollup::stored(&app.db)
        .await
        .unwrap();
    let nonzero = |m: &std::collections::BTreeMap<cnscd_api::activities::rollup::Cell, f64>| {
        m.iter()
            .filter(|(_, v)| **v != 0.0)
            .map(|(k, v)| (k.clone(), *v))
            .collect::<Vec<(cnscd_api::activities::rollup::Cell, f64)>>()
    };
    assert_eq!(nonzero(&stored), nonzero(&recount));
}
