//! Indicator targets (`setIndicatorTarget`, `IndicatorValue.target` and `attainment`) and
//! indicator definitions (`saveIndicatorDefinition`, versions valid from a day).
use cnscd_tests::*;
use serde_json::{Value, json};

const SET: &str = "mutation($i: SetIndicatorTargetInput!) { setIndicatorTarget(input: $i) {
  indicator { code version } target { indicator unitCode periodStart periodEnd target }
  userErrors { field message code } } }";

const VALUES: &str = "query($c: [String!]!, $u: [String!]!, $f: Date!, $t: Date!, $g: PeriodGranularity!, $b: UnitBreakdown!) {
  indicators(codes: $c, unitCodes: $u, from: $f, to: $t, granularity: $g, breakdown: $b) {
    indicator { code } unit { code } period { label } value status target attainment } }";

const SAVE: &str =
    "mutation($i: SaveIndicatorDefinitionInput!) { saveIndicatorDefinition(input: $i) {
  indicator { code version validFrom numerator denominator factor nameVi }
  userErrors { field message code } } }";

fn target(indicator: &str, unit: &str, start: &str, end: &str, t: Value) -> Value {
    json!({ "i": { "indicator": indicator, "unitCode": unit, "periodStart": start, "periodEnd": end, "target": t } })
}

async fn fixture() -> TestApp {
    let app = spawn_app().await;
    let t1 = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let t2 = app.create_team("05692-01", "Tổ TDP 1", "2022-06-15").await;
    for (team, on) in [
        (&t1, "2023-01-05"),
        (&t1, "2023-02-10"),
        (&t2, "2023-02-11"),
        (&t2, "2025-08-01"),
    ] {
        app.submit(team, "COMMUNITY_MEETING", on, json!({})).await;
    }
    app
}

fn row<'a>(rows: &'a Value, code: &str, unit: &str, label: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["indicator"]["code"] == code
                && r["unit"]["code"] == unit
                && r["period"]["label"] == label
        })
        .unwrap_or_else(|| panic!("no {code} {unit} {label}: {rows}"))
}

#[tokio::test]
async fn admin_sets_changes_and_clears_a_target_and_values_show_it() {
    let app = fixture().await;
    let r = app
        .gql(
            &admin(),
            SET,
            target("CNS05", "169", "2023-01-01", "2023-12-31", json!(6)),
        )
        .await
        .ok();
    assert_eq!(
        r.body["data"]["setIndicatorTarget"]["userErrors"],
        json!([])
    );
    assert_eq!(r.at("setIndicatorTarget.indicator.code"), "CNS05");
    assert_eq!(r.at("setIndicatorTarget.target.target"), 6.0);
    let q = json!({ "c": ["CNS05", "CNS02"], "u": ["169"], "f": "2023-01-01", "t": "2023-12-31", "g": "YEAR", "b": "SELF" });
    let r = app.gql(&admin(), VALUES, q.clone()).await.ok();
    let v = row(r.at("indicators"), "CNS05", "169", "2023");
    assert_eq!(v["value"], 3.0);
    assert_eq!(v["target"], 6.0);
    assert_eq!(v["attainment"], 50.0);
    // No target: both null.
    let v = row(r.at("indicators"), "CNS02", "169", "2023");
    assert!(v["target"].is_null() && v["attainment"].is_null());

    // Changed, then a target of 0 (no attainment), then cleared.
    app.gql(
        &admin(),
        SET,
        target("CNS05", "169", "2023-01-01", "2023-12-31", json!(4)),
    )
    .await
    .ok();
    let r = app.gql(&admin(), VALUES, q.clone()).await.ok();
    assert_eq!(
        row(r.at("indicators"), "CNS05", "169", "2023")["attainment"],
        75.0
    );
    app.gql(
        &admin(),
        SET,
        target("CNS05", "169", "2023-01-01", "2023-12-31", json!(0)),
    )
    .await
    .ok();
    let r = app.gql(&admin(), VALUES, q.clone()).await.ok();
    let v = row(r.at("indicators"), "CNS05", "169", "2023");
    assert_eq!(v["target"], 0.0);
    assert!(v["attainment"].is_null());
    let r = app
        .gql(
            &admin(),
            SET,
            target("CNS05", "169", "2023-01-01", "2023-12-31", Value::Null),
        )
        .await
        .ok();
    assert!(r.at("setIndicatorTarget.target").is_null());
    assert_eq!(r.at("setIndicatorTarget.indicator.code"), "CNS05");
    let r = app.gql(&admin(), VALUES, q).await.ok();
    assert!(row(r.at("indicators"), "CNS05", "169", "2023")["target"].is_null());

    // Every change is in the audit log, for the unit and the period.
    let r = app
        .gql(
            &admin(),
            "{ auditLog(entityType: \"IndicatorTarget\", first: 50) { edges { node { action entityId unitCode before after } } } }",
            json!({}),
        )
        .await
        .ok();
    let actions: Vec<&str> = r
        .at("auditLog.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["setIndicatorTarget"; 4]);
    let last = &r.at("auditLog.edges")[0]["node"];
    assert_eq!(last["unitCode"], "169");
    assert_eq!(last["entityId"], "CNS05:169:2023-01-01:2023-12-31");
    assert!(last["after"].is_null());
    assert!(last["before"].to_string().contains("\"target\":0"));
    // A UNIT_ADMIN of the province sees the entries of a commune that exists today; one of
    // another province does not (169 has ceased: its entries are ADMIN's only, by the rule).
    app.gql(
        &admin(),
        SET,
        target("CNS05", "05692", "2023-01-01", "2023-12-31", json!(1)),
    )
    .await
    .ok();
    let log = "{ auditLog(entityType: \"IndicatorTarget\") { totalCount } }";
    let r = app
        .gql(&token(&["UNIT_ADMIN"], &["19"], &[]), log, json!({}))
        .await
        .ok();
    assert_eq!(r.at("auditLog.totalCount"), 1);
    let r = app
        .gql(&token(&["UNIT_ADMIN"], &["06"], &[]), log, json!({}))
        .await
        .ok();
    assert_eq!(r.at("auditLog.totalCount"), 0);
}

#[tokio::test]
async fn targets_are_validated_naming_the_field() {
    let app = fixture().await;
    let cases = [
        (
            target("NOPE", "169", "2023-01-01", "2023-12-31", json!(1)),
            "indicator",
        ),
        (
            target("CNS05", "99999", "2023-01-01", "2023-12-31", json!(1)),
            "unitCode",
        ),
        // 05677 ceased on 2025-06-30.
        (
            target("CNS05", "05677", "2026-01-01", "2026-12-31", json!(1)),
            "unitCode",
        ),
        (
            target("CNS05", "169", "2023-01-02", "2023-12-31", json!(1)),
            "periodEnd",
        ),
        (
            target("CNS05", "169", "2023-02-01", "2023-04-30", json!(1)),
            "periodEnd",
        ),
        (
            target("CNS05", "169", "2023-12-31", "2023-01-01", json!(1)),
            "periodEnd",
        ),
        (
            target("CNS05", "169", "2023-01-01", "2023-12-31", json!(-1)),
            "target",
        ),
    ];
    for (input, field) in cases {
        let r = app.gql(&admin(), SET, input.clone()).await.ok();
        let errors = &r.body["data"]["setIndicatorTarget"]["userErrors"];
        assert_eq!(errors[0]["code"], "VALIDATION", "{input} {errors}");
        assert_eq!(
            errors[0]["field"],
            json!(["input", field]),
            "{input} {errors}"
        );
        assert!(r.at("setIndicatorTarget.indicator").is_null());
    }
    // Months and quarters are periods too.
    for (s, e) in [("2024-02-01", "2024-02-29"), ("2023-04-01", "2023-06-30")] {
        let r = app
            .gql(&admin(), SET, target("EG01", "05677", s, e, json!(80.5)))
            .await
            .ok();
        assert_eq!(
            r.body["data"]["setIndicatorTarget"]["userErrors"],
            json!([])
        );
    }
}

#[tokio::test]
async fn unit_admins_set_targets_only_where_their_area_covers_the_whole_period() {
    let app = fixture().await;
    let district = token(&["UNIT_ADMIN"], &["169"], &[]);
    let r = app
        .gql(
            &district,
            SET,
            target("CNS05", "05677", "2023-01-01", "2023-12-31", json!(2)),
        )
        .await
        .ok();
    assert_eq!(
        r.body["data"]["setIndicatorTarget"]["userErrors"],
        json!([])
    );
    // Another district's commune.
    let r = app
        .gql(
            &district,
            SET,
            target("CNS05", "05659", "2023-01-01", "2023-12-31", json!(2)),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("setIndicatorTarget"), ["FORBIDDEN"]);
    // 05692 left the district on 2025-07-01: not its whole year 2025, but its first quarter.
    let r = app
        .gql(
            &district,
            SET,
            target("CNS05", "05692", "2025-01-01", "2025-12-31", json!(2)),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("setIndicatorTarget"), ["FORBIDDEN"]);
    let r = app
        .gql(
            &district,
            SET,
            target("CNS05", "05692", "2025-01-01", "2025-03-31", json!(2)),
        )
        .await
        .ok();
    assert_eq!(
        r.body["data"]["setIndicatorTarget"]["userErrors"],
        json!([])
    );
    // Above its area.
    let r = app
        .gql(
            &district,
            SET,
            target("CNS05", "19", "2023-01-01", "2023-12-31", json!(2)),
        )
        .await
        .ok();
    assert_eq!(r.user_error_codes("setIndicatorTarget"), ["FORBIDDEN"]);
    // Roles that may not set targets at all.
    for role in ["VIEWER", "REPORTER", "TEAM_LEADER"] {
        let r = app
            .gql(
                &token(&[role], &["169"], &[]),
                SET,
                target("CNS05", "05677", "2023-01-01", "2023-12-31", json!(2)),
            )
            .await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"], "{role}");
    }
}

#[tokio::test]
async fn targets_of_values_the_caller_may_not_read_are_forbidden_and_cost_no_statement() {
    let app = fixture().await;
    for (unit, start, end) in [
        ("05692", "2025-01-01", "2025-12-31"),
        ("05677", "2023-01-01", "2023-12-31"),
    ] {
        app.gql(&admin(), SET, target("CNS05", unit, start, end, json!(4)))
            .await
            .ok();
    }
    let viewer = token(&["VIEWER"], &["169"], &[]);
    let r = app
        .gql(
            &viewer,
            VALUES,
            json!({ "c": ["CNS05"], "u": ["05692", "05677"], "f": "2023-01-01", "t": "2025-12-31", "g": "YEAR", "b": "SELF" }),
        )
        .await;
    let rows = r.at("indicators");
    let hidden = row(rows, "CNS05", "05692", "2025");
    assert!(hidden["value"].is_null() && hidden["target"].is_null());
    assert!(hidden["attainment"].is_null());
    let paths: Vec<String> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["extensions"]["code"] == "FORBIDDEN")
        .map(|e| e["path"].as_array().unwrap().last().unwrap().to_string())
        .collect();
    for field in ["\"value\"", "\"target\"", "\"attainment\""] {
        assert!(paths.iter().any(|p| p == field), "{paths:?}");
    }
    // Listing targets follows the same rule.
    let list = "query($u: [String!]!) { indicatorTargets(unitCodes: $u, from: \"2023-01-01\", to: \"2025-12-31\") { indicator unitCode periodStart periodEnd target } }";
    let r = app
        .gql(&viewer, list, json!({ "u": ["05692", "05677"] }))
        .await
        .ok();
    assert_eq!(
        r.at("indicatorTargets"),
        &json!([{ "indicator": "CNS05", "unitCode": "05677", "periodStart": "2023-01-01", "periodEnd": "2023-12-31", "target": 4.0 }])
    );
    let r = app
        .gql(&admin(), list, json!({ "u": ["05692", "05677"] }))
        .await
        .ok();
    assert_eq!(r.at("indicatorTargets").as_array().unwrap().len(), 2);
    let seen = row(rows, "CNS05", "05677", "2023");
    assert_eq!(seen["target"], 4.0);
    assert_eq!(seen["attainment"], 50.0);

    // Targets come with the values, from the in-memory copy: no statement more.
    let months = |fields: &str| {
        format!(
            "{{ indicators(codes: [\"CNS05\", \"CNS02\", \"EG01\"], unitCodes: [\"169\", \"164\", \"05677\", \"05692\"], from: \"2023-01-01\", to: \"2024-12-31\") {{ value {fields} }} }}"
        )
    };
    let (without, r) = app.statements_for(&admin(), &months(""), json!({})).await;
    assert_eq!(r.at("indicators").as_array().unwrap().len(), 3 * 4 * 24);
    let (with, r) = app
        .statements_for(&admin(), &months("target attainment"), json!({}))
        .await;
    let r = r.ok();
    assert_eq!(r.at("indicators").as_array().unwrap().len(), 3 * 4 * 24);
    assert_eq!(with, without, "targets cost {} statements", with - without);
}

#[tokio::test]
async fn admins_add_and_revise_definitions_checked_against_the_catalogue() {
    let app = fixture().await;
    let new = json!({ "i": { "code": "CNS90", "nameVi": "Số buổi họp và tập huấn", "nameEn": "Meetings and trainings",
        "numerator": "MEETINGS + TRAININGS", "factor": 1, "validFrom": "2000-01-01" } });
    // The catalogue's element names come from the server: find two real ones.
    let r = app
        .gql(
            &admin(),
            "{ indicatorDefinitions { code numerator denominator validFrom version } }",
            json!({}),
        )
        .await
        .ok();
    let cns05 = r
        .at("indicatorDefinitions")
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "CNS05")
        .unwrap()
        .clone();
    assert_eq!(cns05["validFrom"], "2000-01-01");
    let meetings = cns05["numerator"].as_str().unwrap().to_owned();
    let mut input = new.clone();
    input["i"]["numerator"] = json!(format!("{meetings} + ACTIVITIES"));
    let r = app.gql(&admin(), SAVE, input.clone()).await.ok();
    assert_eq!(
        r.body["data"]["saveIndicatorDefinition"]["userErrors"],
        json!([])
    );
    assert_eq!(r.at("saveIndicatorDefinition.indicator.version"), 1);
    assert_eq!(
        r.at("saveIndicatorDefinition.indicator.nameVi"),
        "Số buổi họp và tập huấn"
    );

    // A revision valid from 2024: 2023 keeps the first version's formula, 2024 the new one.
    let mut revised = input.clone();
    revised["i"]["numerator"] = json!(meetings.clone());
    revised["i"]["validFrom"] = json!("2024-01-01");
    let r = app.gql(&admin(), SAVE, revised).await.ok();
    assert_eq!(r.at("saveIndicatorDefinition.indicator.version"), 2);
    assert_eq!(
        r.at("saveIndicatorDefinition.indicator.validFrom"),
        "2024-01-01"
    );
    let r = app
        .gql(
            &admin(),
            "{ indicatorDefinitions(allVersions: true) { code version validFrom } }",
            json!({}),
        )
        .await
        .ok();
    let mine: Vec<&Value> = r
        .at("indicatorDefinitions")
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "CNS90")
        .collect();
    assert_eq!(mine.len(), 2);
    let r = app
        .gql(
            &admin(),
            "{ indicatorDefinitions { code version } }",
            json!({}),
        )
        .await
        .ok();
    let latest: Vec<&Value> = r
        .at("indicatorDefinitions")
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "CNS90")
        .collect();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0]["version"], 2);

    // Never from before the latest version; from the same day, it replaces it.
    let mut earlier = input.clone();
    earlier["i"]["validFrom"] = json!("2023-06-01");
    let r = app.gql(&admin(), SAVE, earlier).await.ok();
    let errors = &r.body["data"]["saveIndicatorDefinition"]["userErrors"];
    assert_eq!(
        errors[0]["field"],
        json!(["input", "validFrom"]),
        "{errors}"
    );
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("2024-01-01")
    );
    let mut same_day = input.clone();
    same_day["i"]["validFrom"] = json!("2024-01-01");
    same_day["i"]["description"] = json!("Sửa lại: chỉ tính buổi họp");
    same_day["i"]["numerator"] = json!(meetings.clone());
    let r = app.gql(&admin(), SAVE, same_day).await.ok();
    assert_eq!(r.at("saveIndicatorDefinition.indicator.version"), 3);

    // Faults, each naming its field and what is wrong.
    let cases = [
        ("code", json!("cns-1"), "code"),
        ("numerator", json!("MEETINGS_TYPO"), "MEETINGS_TYPO"),
        ("numerator", json!("ACTIVITIES +"), "incomplete"),
        ("numerator", json!("ACTIVITIES * 2"), "`*`"),
        ("denominator", json!("NO_SUCH_ELEMENT"), "NO_SUCH_ELEMENT"),
        ("factor", json!(0), "factor"),
        ("nameVi", json!(" "), "nameVi"),
    ];
    for (field, value, said) in cases {
        let mut bad = input.clone();
        bad["i"][field] = value;
        let r = app.gql(&admin(), SAVE, bad).await.ok();
        let errors = &r.body["data"]["saveIndicatorDefinition"]["userErrors"];
        assert_eq!(errors.as_array().unwrap().len(), 1, "{field}: {errors}");
        assert_eq!(errors[0]["field"], json!(["input", field]), "{errors}");
        assert_eq!(errors[0]["code"], "VALIDATION");
        assert!(
            errors[0]["message"].as_str().unwrap().contains(said),
            "{errors}"
        );
        assert!(r.at("saveIndicatorDefinition.indicator").is_null());
    }
    // Only ADMIN.
    for role in ["UNIT_ADMIN", "VIEWER"] {
        let r = app
            .gql(&token(&[role], &["169"], &[]), SAVE, input.clone())
            .await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"], "{role}");
    }
    // Audited.
    let r = app
        .gql(
            &admin(),
            "{ auditLog(entityType: \"IndicatorDefinition\") { edges { node { action entityId before after } } } }",
            json!({}),
        )
        .await
        .ok();
    let actions: Vec<&str> = r
        .at("auditLog.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["saveIndicatorDefinition"; 3]);
    let edges = r.at("auditLog.edges").as_array().unwrap();
    assert_eq!(edges[0]["node"]["entityId"], "CNS90");
    assert_eq!(edges[0]["node"]["before"]["version"], 2);
    assert_eq!(edges[0]["node"]["after"]["version"], 3);
    assert!(edges[2]["node"]["before"].is_null());
}
