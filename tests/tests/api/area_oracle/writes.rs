//! The mutation matrix: each mutation for each caller, allowed exactly where the oracle says.
use super::fixture::{
    ADD, CORRECT, CREATE, DISSOLVE, END_MEMBER, SUBMIT, SUBMIT_BATCH, SUBMIT_VALUES, UPDATE_MEMBER,
    UPDATE_TEAM, VOID, alpha, mint_token, payload_id,
};
use super::model::{Op, Role, Who, exists_every_day, may, under};
use super::reads::finish;
use cnscd_tests::*;
use futures::stream::{self, StreamExt};
use serde_json::{Value, json};

// ------------------------------------------------------------------------------------------
// Mutations: each mutation × dates before/after 2025-07-01 × units inside/outside × callers.

pub(super) const H: &str = "05677-01";
pub(super) const S: &str = "05692-01";
pub(super) const O: &str = "05659-01";
const BEFORE: &str = "2024-05-01";
const AFTER: &str = "2025-08-01";

fn ops() -> Vec<Op> {
    use Op::*;
    let mut ops = Vec::new();
    for unit in [H, S, O] {
        for on in [BEFORE, AFTER] {
            ops.push(CreateTeam { unit, on });
            ops.push(AddMember { unit, on });
            ops.push(Void { unit, on });
        }
    }
    ops.extend([
        CreateTeam {
            unit: "05677",
            on: BEFORE,
        },
        CreateTeam {
            unit: "05692",
            on: BEFORE,
        },
        CreateTeam {
            unit: "05692",
            on: AFTER,
        },
        RenameTeam {
            unit: H,
            founded: "2024-01-01",
            dissolved: None,
        },
        RenameTeam {
            unit: H,
            founded: "2022-05-01",
            dissolved: Some("2024-09-01"),
        },
        RenameTeam {
            unit: S,
            founded: AFTER,
            dissolved: None,
        },
        RenameTeam {
            unit: O,
            founded: "2022-05-01",
            dissolved: None,
        },
        MoveFounding {
            unit: H,
            from: "2024-01-01",
            to: AFTER,
        },
        MoveFounding {
            unit: H,
            from: AFTER,
            to: "2025-09-01",
        },
        MoveFounding {
            unit: H,
            from: "2024-01-01",
            to: "2023-01-01",
        },
        MoveFounding {
            unit: H,
            from: AFTER,
            to: "2024-01-01",
        },
        MoveFounding {
            unit: S,
            from: "2024-01-01",
            to: AFTER,
        },
        MoveFounding {
            unit: O,
            from: "2024-01-01",
            to: AFTER,
        },
        DissolveTeam {
            unit: H,
            founded: "2024-01-01",
            on: "2025-03-01",
        },
        DissolveTeam {
            unit: H,
            founded: "2024-01-01",
            on: AFTER,
        },
        DissolveTeam {
            unit: H,
            founded: AFTER,
            on: "2025-10-01",
        },
        DissolveTeam {
            unit: O,
            founded: "2024-01-01",
            on: AFTER,
        },
        UpdateMembership {
            unit: H,
            started: BEFORE,
        },
        UpdateMembership {
            unit: H,
            started: AFTER,
        },
        UpdateMembership {
            unit: S,
            started: BEFORE,
        },
        UpdateMembership {
            unit: O,
            started: AFTER,
        },
        EndMembership {
            unit: H,
            started: "2024-01-01",
            on: "2025-03-01",
        },
        EndMembership {
            unit: H,
            started: "2024-01-01",
            on: AFTER,
        },
        EndMembership {
            unit: H,
            started: AFTER,
            on: "2025-10-01",
        },
        EndMembership {
            unit: O,
            started: "2024-01-01",
            on: AFTER,
        },
    ]);
    for (unit, before, after) in [(H, "05677", "05692"), (O, "05659", "05710")] {
        for (on, commune) in [(BEFORE, before), (AFTER, after)] {
            ops.push(Submit { unit, on, at: None });
            ops.push(Submit {
                unit,
                on,
                at: Some(commune),
            });
            ops.push(SubmitBatch { unit, on, at: None });
            ops.push(SubmitBatch {
                unit,
                on,
                at: Some(commune),
            });
        }
    }
    for on in [BEFORE, AFTER] {
        ops.push(Submit {
            unit: S,
            on,
            at: None,
        });
        ops.push(SubmitBatch {
            unit: S,
            on,
            at: None,
        });
    }
    let correct = |unit, from, to| Correct { unit, from, to };
    ops.extend([
        // Moved across 2025-07-01 at the hamlet that moves, both ways.
        correct(H, (H, BEFORE), Some((H, AFTER))),
        correct(H, (H, AFTER), Some((H, BEFORE))),
        // From the old commune to the new one, and the unit raised or lowered on one day.
        correct(H, ("05677", BEFORE), Some(("05692", AFTER))),
        correct(H, (H, BEFORE), Some(("05677", BEFORE))),
        correct(H, ("05692", AFTER), Some((H, AFTER))),
        // Only the title: on either side, and recorded above the team.
        correct(H, (H, BEFORE), None),
        correct(H, (H, AFTER), None),
        correct(H, ("05677", BEFORE), None),
        // The hamlet that stays, and the outsider, moved across.
        correct(S, (S, BEFORE), Some((S, AFTER))),
        correct(O, (O, AFTER), Some((O, BEFORE))),
        correct(O, ("05659", BEFORE), Some(("05710", AFTER))),
    ]);
    for (unit, start, end) in [
        (H, "2024-05-01", "2024-05-31"),
        (H, "2025-08-01", "2025-08-31"),
        (H, "2025-04-01", "2025-06-30"),
        (H, "2025-07-01", "2025-09-30"),
        (H, "2024-01-01", "2024-12-31"),
        (H, "2025-01-01", "2025-12-31"),
        ("05677", "2025-04-01", "2025-06-30"),
        ("05677", "2024-01-01", "2024-12-31"),
        ("05692", "2024-01-01", "2024-12-31"),
        ("05692", "2025-01-01", "2025-12-31"),
        ("05692", "2025-07-01", "2025-07-31"),
        (S, "2025-01-01", "2025-12-31"),
        (S, "2024-10-01", "2024-12-31"),
        (O, "2025-01-01", "2025-12-31"),
        (O, "2025-10-01", "2025-10-31"),
        ("05710", "2025-07-01", "2025-09-30"),
        ("169", "2025-01-01", "2025-03-31"),
        ("19", "2025-01-01", "2025-12-31"),
    ] {
        assert!(
            exists_every_day(unit, date(start), date(end)),
            "{unit} {start}"
        );
        ops.push(SubmitValues { unit, start, end });
    }
    ops
}

fn whos(op: &Op) -> Vec<Who> {
    let mut out = vec![Who::Admin];
    out.extend(["169", "05677", "05692", "05677-01", "19", "05710", "164"].map(Who::UnitAdmin));
    out.push(Who::Viewer("19"));
    if matches!(
        op,
        Op::Submit { .. } | Op::SubmitBatch { .. } | Op::Correct { .. } | Op::SubmitValues { .. }
    ) {
        out.extend(["169", "05677", "05692", "05677-01", "19", "05710"].map(Who::Reporter));
    } else {
        out.push(Who::Reporter("19"));
    }
    if let Op::Correct {
        from: (place, on), ..
    } = op
    {
        // The reporters that could record the activity.
        for a in ["169", "05677", "05692", "05677-01", "19", "05710", "164"] {
            if under(place, &[a.to_owned()], date(on)) {
                out.push(Who::Submitter(a));
            }
        }
    }
    if !matches!(op, Op::SubmitValues { .. }) {
        out.push(Who::LeaderOfTheTeam);
    }
    out.push(Who::LeaderOfAnotherTeam);
    out
}

pub(super) fn who_label(who: &Who) -> String {
    match who {
        Who::Admin => "ADMIN".into(),
        Who::UnitAdmin(a) => format!("UNIT_ADMIN[{a}]"),
        Who::Viewer(a) => format!("VIEWER[{a}]"),
        Who::Reporter(a) => format!("REPORTER[{a}]"),
        Who::Submitter(a) => format!("REPORTER[{a}] (its submitter)"),
        Who::LeaderOfTheTeam => "TEAM_LEADER[the team]".into(),
        Who::LeaderOfAnotherTeam => "TEAM_LEADER[another team]".into(),
    }
}

fn submitter_token(a: &str) -> String {
    mint_token(
        Role::Reporter,
        &[a.to_string()],
        &[],
        &format!("s-{a}"),
        "test-app",
    )
}

async fn admin_ok(app: &TestApp, q: &str, input: Value, path: &str) -> String {
    let r = app.gql(&admin(), q, json!({ "i": input })).await;
    payload_id(&r, path)
}

pub(super) async fn fresh_team(app: &TestApp, unit: &str, founded: &str, n: usize) -> String {
    admin_ok(
        app,
        CREATE,
        json!({ "unitCode": unit, "name": format!("Tổ ca {n}"), "foundedOn": founded, "code": format!("ORC-{n}") }),
        "createTeam.team.id",
    )
    .await
}

async fn fresh_member(app: &TestApp, team: &str, started: &str, n: usize) -> String {
    admin_ok(app, ADD, json!({ "teamId": team, "person": { "fullName": format!("Người {}", alpha(n)) }, "role": "MEMBER", "affiliation": "VOLUNTEER", "startedOn": started }), "addMember.membership.id").await
}

pub(super) enum Outcome {
    Allowed,
    Refused,
    /// Refused, but with another code than FORBIDDEN or NOT_FOUND (e.g. VALIDATION).
    RefusedAs(Vec<String>),
    Other(String),
}

pub(super) fn outcome(r: &Gql, field: &str, object: &str) -> Outcome {
    let refusal = |c: &String| c == "FORBIDDEN" || c == "NOT_FOUND";
    let top = r.error_codes();
    if !top.is_empty() {
        return if top.iter().all(refusal) && r.body["data"][field][object].is_null() {
            Outcome::Refused
        } else {
            Outcome::Other(r.body.to_string())
        };
    }
    let user = r.user_error_codes(field);
    if user.is_empty() && r.body["data"][field][object].is_object() {
        Outcome::Allowed
    } else if !user.is_empty()
        && user.iter().all(refusal)
        && r.body["data"][field][object].is_null()
    {
        Outcome::Refused
    } else if !user.is_empty() && r.body["data"][field][object].is_null() {
        Outcome::RefusedAs(user)
    } else {
        Outcome::Other(r.body.to_string())
    }
}

const Q_TEAM_STATE: &str = "query($id: ID!) { team(id: $id) { name foundedOn status dissolvedOn members(includeEnded: true) { person { fullName } } } }";

async fn run_case(
    app: &TestApp,
    shared: &[(&'static str, String)],
    other: &str,
    n: usize,
    who: &Who,
    op: &Op,
) -> Option<String> {
    let shared_team = |unit: &str| {
        shared
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, id)| id.clone())
            .unwrap()
    };
    // Set up what the case acts on, as ADMIN.
    let (team, member) = match op {
        Op::CreateTeam { .. } => (None, None),
        Op::RenameTeam {
            unit,
            founded,
            dissolved,
        } => {
            let t = fresh_team(app, unit, founded, n).await;
            if let Some(on) = dissolved {
                admin_ok(
                    app,
                    DISSOLVE,
                    json!({ "teamId": t, "dissolvedOn": on }),
                    "dissolveTeam.team.id",
                )
                .await;
            }
            (Some(t), None)
        }
        Op::MoveFounding { unit, from, .. } => (Some(fresh_team(app, unit, from, n).await), None),
        Op::DissolveTeam { unit, founded, .. } => {
            (Some(fresh_team(app, unit, founded, n).await), None)
        }
        Op::AddMember { unit, .. } | Op::Submit { unit, .. } | Op::SubmitBatch { unit, .. } => {
            (Some(shared_team(unit)), None)
        }
        // The activity stands where a membership would.
        Op::Void { unit, on } => {
            let t = shared_team(unit);
            let a = app.submit(&t, "TRAINING", on, json!({})).await;
            (Some(t), Some(a))
        }
        Op::UpdateMembership { unit, started } | Op::EndMembership { unit, started, .. } => {
            let t = shared_team(unit);
            let m = fresh_member(app, &t, started, n).await;
            (Some(t), Some(m))
        }
        // The activity stands where a membership would, recorded by its submitter.
        Op::Correct {
            unit,
            from: (place, on),
            ..
        } => {
            let t = shared_team(unit);
            let token = match who {
                Who::Submitter(a) => submitter_token(a),
                _ => admin(),
            };
            let mut i = json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": t, "kind": "TRAINING", "occurredOn": on, "title": format!("Ca gốc {n}") });
            if place != unit {
                i["unitCode"] = json!(place);
            }
            let r = app.gql(&token, SUBMIT, json!({ "i": i })).await;
            let a = payload_id(&r, "submitActivity.activity.id");
            (Some(t), Some(a))
        }
        Op::SubmitValues { .. } => (None, None),
    };
    let token = match who {
        Who::Admin => admin(),
        Who::UnitAdmin(a) => mint_token(
            Role::UnitAdmin,
            &[a.to_string()],
            &[],
            &format!("ua-{a}"),
            "test-app",
        ),
        Who::Viewer(a) => mint_token(
            Role::Viewer,
            &[a.to_string()],
            &[],
            &format!("v-{a}"),
            "test-app",
        ),
        Who::Reporter(a) => mint_token(
            Role::Reporter,
            &[a.to_string()],
            &[],
            &format!("r-{a}"),
            "test-app",
        ),
        Who::Submitter(a) => submitter_token(a),
        Who::LeaderOfTheTeam => mint_token(
            Role::TeamLeader,
            &[],
            &team.iter().cloned().collect::<Vec<_>>(),
            "tl",
            "test-app",
        ),
        Who::LeaderOfAnotherTeam => mint_token(
            Role::TeamLeader,
            &[],
            &[other.to_owned()],
            "tl-other",
            "test-app",
        ),
    };
    let before = match &team {
        Some(t) => app
            .gql(&admin(), Q_TEAM_STATE, json!({ "id": t }))
            .await
            .body["data"]["team"]
            .clone(),
        None => Value::Null,
    };
    let team_name = format!("Tổ ca {n} mới");
    let person = format!("Người {}", alpha(n + 100_000));
    let title = format!("Ca kiểm thử {n}");
    let (q, input, field, object) = match op {
        Op::CreateTeam { unit, on } => (
            CREATE,
            json!({ "unitCode": unit, "name": team_name, "foundedOn": on, "code": format!("ORC-{n}-NEW") }),
            "createTeam",
            "team",
        ),
        Op::RenameTeam { .. } => (
            UPDATE_TEAM,
            json!({ "teamId": team, "name": team_name }),
            "updateTeam",
            "team",
        ),
        Op::MoveFounding { to, .. } => (
            UPDATE_TEAM,
            json!({ "teamId": team, "foundedOn": to }),
            "updateTeam",
            "team",
        ),
        Op::DissolveTeam { on, .. } => (
            DISSOLVE,
            json!({ "teamId": team, "dissolvedOn": on }),
            "dissolveTeam",
            "team",
        ),
        Op::AddMember { on, .. } => (
            ADD,
            json!({ "teamId": team, "person": { "fullName": person }, "role": "MEMBER", "affiliation": "VOLUNTEER", "startedOn": on }),
            "addMember",
            "membership",
        ),
        Op::UpdateMembership { .. } => (
            UPDATE_MEMBER,
            json!({ "membershipId": member, "affiliation": "TEACHER" }),
            "updateMembership",
            "membership",
        ),
        Op::EndMembership { on, .. } => (
            END_MEMBER,
            json!({ "membershipId": member, "endedOn": on }),
            "endMembership",
            "membership",
        ),
        Op::Submit { on, at, .. } => {
            let mut i = json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": team, "kind": "TRAINING", "occurredOn": on, "title": title });
            if let Some(at) = at {
                i["unitCode"] = json!(at);
            }
            (SUBMIT, i, "submitActivity", "activity")
        }
        Op::SubmitBatch { on, at, .. } => {
            let mut i = json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": team, "kind": "TRAINING", "occurredOn": on, "title": title });
            if let Some(at) = at {
                i["unitCode"] = json!(at);
            }
            (
                SUBMIT_BATCH,
                json!({ "items": [i] }),
                "submitActivity",
                "activity",
            )
        }
        Op::Void { .. } => (
            VOID,
            json!({ "activityId": member, "reason": "ghi nhầm" }),
            "voidActivity",
            "activity",
        ),
        Op::Correct { to, .. } => {
            let mut i = json!({ "activityId": member, "reason": "ghi nhầm", "title": title });
            if let Some((place, on)) = to {
                i["unitCode"] = json!(place);
                i["occurredOn"] = json!(on);
            }
            (CORRECT, i, "correctActivity", "activity")
        }
        Op::SubmitValues { unit, start, end } => (
            SUBMIT_VALUES,
            json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "sourceSystem": format!("ORC-{n}"), "values": [{ "element": "POPULATION", "unitCode": unit, "periodStart": start, "periodEnd": end, "value": 7.0 }] }),
            "submitDataValues",
            "value",
        ),
    };
    let r = app.gql(&token, q, json!({ "i": input })).await;
    // A batch's one result is judged as a single submission's payload.
    let r = if matches!(op, Op::SubmitBatch { .. }) {
        Gql {
            status: r.status,
            body: json!({
                "data": { "submitActivity": r.body["data"]["submitActivities"]["results"][0] },
                "errors": r.body["errors"],
            }),
        }
    } else if matches!(op, Op::SubmitValues { .. }) {
        // The one figure stands for the payload's object.
        let p = &r.body["data"]["submitDataValues"];
        Gql {
            status: r.status,
            body: json!({
                "data": if p.is_null() { Value::Null } else { json!({ "submitDataValues": { "value": p["values"][0], "userErrors": p["userErrors"] } }) },
                "errors": r.body["errors"],
            }),
        }
    } else {
        r
    };
    let expected = may(who, op);
    let label = format!("{} | {op:?}", who_label(who));
    let got = outcome(&r, field, object);
    let verdict = match (&got, expected) {
        (Outcome::Allowed, true) | (Outcome::Refused, false) => None,
        (Outcome::Allowed, false) => Some(format!(
            "{label} | oracle: refused, service: ALLOWED (a write outside the area)"
        )),
        (Outcome::Refused, true) => Some(format!(
            "{label} | oracle: allowed, service: refused {:?} {:?}",
            r.error_codes(),
            r.user_error_codes(field)
        )),
        (Outcome::RefusedAs(codes), false) => Some(format!(
            "{label} | refused, but as {codes:?} instead of FORBIDDEN or NOT_FOUND: {}",
            r.body
        )),
        (Outcome::RefusedAs(codes), true) => Some(format!(
            "{label} | oracle: allowed, service: refused as {codes:?}: {}",
            r.body
        )),
        (Outcome::Other(body), _) => Some(format!(
            "{label} | oracle: {}, service answered neither: {body}",
            if expected { "allowed" } else { "refused" }
        )),
    };
    if verdict.is_some() || !matches!(got, Outcome::Refused) {
        return verdict;
    }
    // Refused: nothing changed.
    let unchanged = match op {
        Op::CreateTeam { .. } => {
            let r = app.gql(&admin(), "query($s: String) { teams(search: $s, first: 100) { edges { node { name } } } }", json!({ "s": team_name })).await;
            !r.body["data"]["teams"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["node"]["name"] == team_name.as_str())
        }
        Op::Submit { .. } | Op::SubmitBatch { .. } => {
            let r = app.gql(&admin(), "query($t: ID, $s: String) { activities(teamId: $t, search: $s, first: 100) { edges { node { title } } } }", json!({ "t": team, "s": title })).await;
            !r.body["data"]["activities"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["node"]["title"] == title.as_str())
        }
        Op::AddMember { .. } => {
            let after = app
                .gql(&admin(), Q_TEAM_STATE, json!({ "id": team }))
                .await
                .body["data"]["team"]
                .clone();
            after["members"]
                .as_array()
                .is_some_and(|a| !a.iter().any(|m| m["person"]["fullName"] == person.as_str()))
        }
        Op::Void { .. } => {
            let r = app
                .gql(
                    &admin(),
                    "query($id: ID!) { node(id: $id) { ... on Activity { status } } }",
                    json!({ "id": member }),
                )
                .await;
            r.body["data"]["node"]["status"] == "RECORDED"
        }
        Op::Correct {
            from: (place, on), ..
        } => {
            let r = app
                .gql(
                    &admin(),
                    "query($id: ID!) { node(id: $id) { ... on Activity { title occurredOn unitCode } } activityVersions(activityId: $id) { version } }",
                    json!({ "id": member }),
                )
                .await;
            let a = &r.body["data"]["node"];
            a["title"] == format!("Ca gốc {n}").as_str()
                && a["occurredOn"] == *on
                && a["unitCode"] == *place
                && r.body["data"]["activityVersions"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
        }
        Op::SubmitValues { .. } => {
            let r = app
                .gql(
                    &admin(),
                    "query($s: String) { dataValues(sourceSystem: $s) { totalCount } }",
                    json!({ "s": format!("ORC-{n}") }),
                )
                .await;
            r.body["data"]["dataValues"]["totalCount"] == 0
        }
        Op::UpdateMembership { .. } | Op::EndMembership { .. } => {
            let r = app.gql(&admin(), "query($id: ID!) { node(id: $id) { ... on Membership { affiliation endedOn } } }", json!({ "id": member })).await;
            r.body["data"]["node"]["affiliation"] == "VOLUNTEER"
                && r.body["data"]["node"]["endedOn"].is_null()
        }
        _ => {
            let after = app
                .gql(&admin(), Q_TEAM_STATE, json!({ "id": team }))
                .await
                .body["data"]["team"]
                .clone();
            after == before
        }
    };
    (!unchanged).then(|| format!("{label} | refused, but the database changed"))
}

#[tokio::test]
async fn every_mutation_is_allowed_exactly_where_the_area_oracle_says() {
    let app = spawn_app().await;
    let mut shared = Vec::new();
    for unit in [H, S, O] {
        shared.push((
            unit,
            fresh_team(&app, unit, "2022-05-01", shared.len()).await,
        ));
    }
    let other = fresh_team(&app, S, "2022-05-01", 99).await;
    let mut cases = Vec::new();
    for op in ops() {
        for who in whos(&op) {
            cases.push((cases.len() + 1000, who, op.clone()));
        }
    }
    let failures: Vec<String> = stream::iter(cases.iter())
        .map(|(n, who, op)| run_case(&app, &shared, &other, *n, who, op))
        .buffer_unordered(8)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    // Refusals answered with another code are one finding per mutation and code: group them.
    let (wrong_code, mut failures): (Vec<String>, Vec<String>) = failures
        .into_iter()
        .partition(|f| f.contains("refused, but as"));
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in wrong_code {
        let op = f.split(" | ").nth(1).unwrap_or("?");
        let kind = op.split(' ').next().unwrap_or("?");
        let codes = f
            .split("refused, but as ")
            .nth(1)
            .and_then(|r| r.split(" instead").next())
            .unwrap_or("?");
        groups
            .entry(format!("{kind} refused as {codes}"))
            .or_default()
            .push(f);
    }
    for (what, mut cases) in groups {
        cases.sort();
        failures.push(format!(
            "{what} instead of FORBIDDEN or NOT_FOUND in {} cases (callers outside the area), e.g. {}",
            cases.len(),
            cases[0]
        ));
    }
    failures.sort();
    finish(&format!("mutations ({} cases)", cases.len()), failures);
}
