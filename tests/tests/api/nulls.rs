//! Answers every GraphQL client can read (GraphQL spec, Execution, "Handling Field Errors"): a
//! field error makes that field `null` in `data`, its key present, and the error of a
//! non-null field nulls its nearest nullable parent. Typed clients (Apollo, Relay, generated
//! TypeScript) fail on a missing key, and a dashboard must tell "withheld" from "not asked".
//!
//! The schema walk builds queries from the service's own introspection. There is one per object
//! type reachable from `Query` (along the shortest path of fields to it), selecting every field
//! of the type and one level of fields under each of its object fields. There is one per root
//! field, and `node` for each kind of id. The test asserts that every field of every reachable
//! type is asked. It runs each query for every role over a fixture with data of every kind,
//! once with good arguments and once with bad ones. Then it runs every mutation, with inputs
//! generated from the schema, selecting its payload's fields and one level under them. It checks
//! each answer: no key that was asked for is missing, and no non-null field is null. Every error
//! with a path points at a `null`: the field itself, or for a non-null field an ancestor. A
//! FORBIDDEN error below the root points at the field itself, answered `null`. The smaller tests
//! name the cases product.md names.
use cnscd_tests::fuzz::{Generator, Pools, Schema, TypeRef};
use cnscd_tests::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// One selected field (or an inline fragment, with `on`).
#[derive(Clone, Debug)]
struct Sel {
    /// Response key (the field name) or, for a fragment, empty.
    key: String,
    /// Arguments as written (`(first: 3)`), or empty.
    args: String,
    /// The field's type; `None` for `__typename` and fragments.
    ty: Option<TypeRef>,
    /// The type condition of an inline fragment.
    on: Option<String>,
    children: Vec<Sel>,
}

impl Sel {
    fn typename() -> Self {
        Sel {
            key: "__typename".into(),
            args: String::new(),
            ty: None,
            on: None,
            children: Vec::new(),
        }
    }

    fn render(&self, out: &mut String) {
        if let Some(on) = &self.on {
            out.push_str(&format!("... on {on} "));
        } else {
            out.push_str(&self.key);
            out.push_str(&self.args);
        }
        if !self.children.is_empty() {
            out.push_str(" { ");
            for c in &self.children {
                c.render(out);
                out.push(' ');
            }
            out.push('}');
        }
    }
}

fn render(root: &[Sel]) -> String {
    let mut out = String::from("{ ");
    for s in root {
        s.render(&mut out);
        out.push(' ');
    }
    out.push('}');
    out
}

/// Arguments of the fixture, good and bad, by argument name.
struct Hints {
    team: String,
    activity: String,
    webhook: String,
}

impl Hints {
    /// The literal for `arg`, good or `bad`: for a required argument without a default always
    /// (a new one needs a line here), for an optional one when it bounds the answer or picks
    /// the interesting case.
    fn literal(&self, arg: &cnscd_tests::fuzz::InputDef, bad: bool) -> Option<String> {
        let (name, ty) = (arg.name.as_str(), &arg.ty);
        let named = ty.named();
        Some(match (name, named, bad) {
            ("first", _, false) => "3".into(),
            ("first", _, true) => "101".into(),
            ("id" | "teamId", _, false) => format!("\"{}\"", self.team),
            ("activityId", _, false) => format!("\"{}\"", self.activity),
            ("webhookId", _, false) => format!("\"{}\"", self.webhook),
            ("id" | "teamId" | "activityId" | "webhookId", _, true) => "\"bm90LWFuLWlk\"".into(),
            ("code", _, false) => "\"05677\"".into(),
            ("codes", _, false) => "[\"CNS02\", \"CNS05\", \"EG01\"]".into(),
            ("unitCodes", _, false) => "[\"05677-01\"]".into(),
            ("code", _, true) => "\"NOPE\"".into(),
            ("codes" | "unitCodes", _, true) => "[\"NOPE\"]".into(),
            ("from", "Date", false) => "\"2024-01-01\"".into(),
            ("to", "Date", false) => "\"2025-12-31\"".into(),
            // Reversed.
            ("from", "Date", true) => "\"2025-12-31\"".into(),
            ("to", "Date", true) => "\"2024-01-01\"".into(),
            ("from", _, false) => "\"2024-01\"".into(),
            ("to", _, false) => "\"2025-12\"".into(),
            ("from" | "to", _, true) => "\"2024-13\"".into(),
            ("granularity", _, _) => "YEAR".into(),
            ("under", _, true) => "\"NOPE\"".into(),
            _ => {
                assert!(
                    !matches!(ty, TypeRef::NonNull(_)) || arg.default_value.is_some(),
                    "no value for the required argument `{name}: {}`: add one to Hints",
                    ty.sdl()
                );
                return None;
            }
        })
    }
}

fn args(schema_args: &[cnscd_tests::fuzz::InputDef], hints: &Hints, bad: bool) -> String {
    let given: Vec<String> = schema_args
        .iter()
        .filter_map(|a| hints.literal(a, bad).map(|v| format!("{}: {v}", a.name)))
        .collect();
    if given.is_empty() {
        String::new()
    } else {
        format!("({})", given.join(", "))
    }
}

/// The (type, field) pairs a selection on `type_name` asks for, fragments and nesting included.
fn selected(type_name: &str, sels: &[Sel], out: &mut BTreeSet<(String, String)>) {
    for s in sels {
        if let Some(on) = &s.on {
            selected(on, &s.children, out);
        } else if let Some(ty) = &s.ty {
            out.insert((type_name.to_owned(), s.key.clone()));
            selected(ty.named(), &s.children, out);
        }
    }
}

fn is_composite(schema: &Schema, name: &str) -> bool {
    schema
        .types
        .get(name)
        .is_some_and(|t| matches!(t.kind.as_str(), "OBJECT" | "INTERFACE" | "UNION"))
}

/// Every field of `type_name`; object fields with `depth` more levels under them (leaves
/// only at the last), fragments on each possible type of an interface or union.
fn all_fields(
    schema: &Schema,
    type_name: &str,
    depth: usize,
    hints: &Hints,
    bad: bool,
) -> Vec<Sel> {
    let t = &schema.types[type_name];
    let mut out = vec![Sel::typename()];
    if t.kind != "OBJECT" {
        for p in &t.possible_types {
            out.push(Sel {
                key: String::new(),
                args: String::new(),
                ty: None,
                on: Some(p.clone()),
                children: all_fields(schema, p, depth, hints, bad),
            });
        }
        return out;
    }
    for f in &t.fields {
        let composite = is_composite(schema, f.ty.named());
        if composite && depth == 0 {
            continue;
        }
        out.push(Sel {
            key: f.name.clone(),
            args: args(&f.args, hints, bad),
            ty: Some(f.ty.clone()),
            on: None,
            children: if composite {
                all_fields(schema, f.ty.named(), depth - 1, hints, bad)
            } else {
                Vec::new()
            },
        });
    }
    out
}

/// How each composite type is first reached from `Query` (breadth first, `node` aside):
/// through a field of its parent, or as a possible type of an interface or union.
#[derive(Clone)]
enum Step {
    Field(String, String),
    Fragment,
}

fn shortest_paths(schema: &Schema) -> BTreeMap<String, Vec<(String, Step)>> {
    let mut parent: HashMap<String, (String, Step)> = HashMap::new();
    let mut queue = VecDeque::from([schema.query.clone()]);
    let mut seen = BTreeSet::from([schema.query.clone()]);
    while let Some(name) = queue.pop_front() {
        let t = &schema.types[&name];
        let mut next: Vec<(String, Step)> = Vec::new();
        if t.kind == "OBJECT" {
            for f in &t.fields {
                // `node` answers any type by id: it is walked on its own below.
                if name == schema.query && f.name == "node" {
                    continue;
                }
                if is_composite(schema, f.ty.named()) {
                    next.push((
                        f.ty.named().to_owned(),
                        Step::Field(name.clone(), f.name.clone()),
                    ));
                }
            }
        } else {
            for p in &t.possible_types {
                next.push((p.clone(), Step::Fragment));
            }
        }
        for (n, step) in next {
            if seen.insert(n.clone()) {
                parent.insert(n.clone(), (name.clone(), step));
                queue.push_back(n);
            }
        }
    }
    let mut paths = BTreeMap::new();
    for target in seen {
        let mut path = Vec::new();
        let mut at = target.clone();
        while let Some((from, step)) = parent.get(&at) {
            path.push((at.clone(), step.clone()));
            at = from.clone();
        }
        path.reverse();
        paths.insert(target, path);
    }
    paths
}

/// The query reaching `target` along `path` and selecting all its fields there.
fn query_for(
    schema: &Schema,
    path: &[(String, Step)],
    target: &str,
    hints: &Hints,
    bad: bool,
) -> Vec<Sel> {
    let mut inner = all_fields(schema, target, 1, hints, bad);
    for (to, step) in path.iter().rev() {
        let sel = match step {
            Step::Field(parent, field) => {
                let f = schema.types[parent]
                    .fields
                    .iter()
                    .find(|f| &f.name == field)
                    .unwrap();
                debug_assert_eq!(f.ty.named(), to);
                Sel {
                    key: field.clone(),
                    args: args(&f.args, hints, bad),
                    ty: Some(f.ty.clone()),
                    on: None,
                    children: inner,
                }
            }
            Step::Fragment => Sel {
                key: String::new(),
                args: String::new(),
                ty: None,
                on: Some(to.clone()),
                children: inner,
            },
        };
        inner = if sel.on.is_some() {
            vec![Sel::typename(), sel]
        } else {
            vec![sel]
        };
    }
    inner
}

/// What is wrong with one answer, by the spec's rules for `data` and `errors`.
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    /// Objects seen in `data`, by type.
    types_seen: BTreeSet<String>,
    /// Errors checked, by code and the field they point at.
    errors_checked: BTreeSet<(String, String)>,
}

/// Every key asked for is there, and no non-null field is null.
fn check_keys(value: &Value, sels: &[Sel], path: &str, f: &mut Findings) {
    let Some(obj) = value.as_object() else {
        f.problems
            .push(format!("{path}: an object was expected, got {value}"));
        return;
    };
    if let Some(t) = obj.get("__typename").and_then(Value::as_str) {
        f.types_seen.insert(t.to_owned());
    }
    for s in sels {
        if let Some(on) = &s.on {
            if obj.get("__typename").and_then(Value::as_str) == Some(on) {
                check_keys(value, &s.children, path, f);
            }
            continue;
        }
        let here = format!("{path}.{}", s.key);
        let Some(v) = obj.get(&s.key) else {
            f.problems
                .push(format!("{here}: the key is missing from data"));
            continue;
        };
        if let Some(ty) = &s.ty {
            check_value(v, ty, &s.children, &here, f);
        }
    }
}

fn check_value(v: &Value, ty: &TypeRef, children: &[Sel], path: &str, f: &mut Findings) {
    match ty {
        TypeRef::NonNull(inner) => {
            if v.is_null() {
                f.problems
                    .push(format!("{path}: null for the non-null type {}", ty.sdl()));
            } else {
                check_value(v, inner, children, path, f);
            }
        }
        _ if v.is_null() => {}
        TypeRef::List(inner) => match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_value(item, inner, children, &format!("{path}.{i}"), f);
                }
            }
            None => f.problems.push(format!("{path}: a list was expected")),
        },
        TypeRef::Named(_) if !children.is_empty() => check_keys(v, children, path, f),
        TypeRef::Named(_) => {}
    }
}

/// Every error with a path points at a null in `data`: the field itself, or an ancestor
/// (the nearest nullable one, when the field is non-null); a FORBIDDEN error below the root
/// points at the field itself.
fn check_errors(body: &Value, f: &mut Findings) {
    for e in body["errors"].as_array().into_iter().flatten() {
        let Some(path) = e["path"].as_array() else {
            continue;
        };
        let code = e["extensions"]["code"].as_str().unwrap_or("").to_owned();
        let shown = path
            .iter()
            .map(|s| match s {
                Value::String(k) => k.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".");
        let Some(mut v) = body.get("data") else {
            f.problems.push(format!(
                "{shown} ({code}): an error with a path but no data key"
            ));
            continue;
        };
        let mut reached = 0;
        let mut missing = false;
        for seg in path {
            if v.is_null() {
                break;
            }
            let next = match seg {
                Value::String(k) => v.as_object().and_then(|o| o.get(k)),
                Value::Number(i) => v
                    .as_array()
                    .and_then(|a| a.get(i.as_u64().unwrap_or(u64::MAX) as usize)),
                _ => None,
            };
            match next {
                Some(n) => {
                    v = n;
                    reached += 1;
                }
                None => {
                    f.problems.push(format!(
                        "{shown} ({code}): the error's path is not in data (stops after {reached} of {} steps)",
                        path.len()
                    ));
                    missing = true;
                    break;
                }
            }
        }
        if missing {
            continue;
        }
        if !v.is_null() {
            f.problems.push(format!(
                "{shown} ({code}): the value at the error's path is {v}, not null"
            ));
            continue;
        }
        let field = path
            .iter()
            .rev()
            .find_map(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if code == "FORBIDDEN" && path.len() > 1 && reached < path.len() {
            f.problems.push(format!(
                "{shown} (FORBIDDEN): the field a caller may not read must answer null itself, \
                 but an ancestor {} steps up was nulled",
                path.len() - reached
            ));
        }
        f.errors_checked.insert((code, field));
    }
}

/// One answer checked against the query that asked it.
fn check(body: &Value, sels: &[Sel], f: &mut Findings) {
    check_errors(body, f);
    match body.get("data") {
        Some(Value::Null) | None => {}
        Some(data) => check_keys(data, sels, "data", f),
    }
}

/// Teams inside and outside the district, members with personal data, activities (one
/// submitted by the reporter, one corrected), reported figures, a target and a period lock.
struct Fixture {
    team: String,
    membership: String,
    activity: String,
    webhook: String,
    ids: Vec<String>,
}

async fn fixture(app: &TestApp) -> Fixture {
    let webhook = app
        .gql(
            &admin(),
            "mutation { createWebhook(input: {url: \"http://127.0.0.1:9/hook\", events: [TEAM_CHANGED]}) { webhook { id } } }",
            json!({}),
        )
        .await
        .ok();
    let webhook = webhook
        .at("createWebhook.webhook.id")
        .as_str()
        .unwrap()
        .to_owned();
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let other = app
        .create_team("05659-01", "Tổ Chùa Hang", "2022-01-01")
        .await;
    let leader = app
        .add_member(&team, "Trần Thị Lệ", "LEADER", "HAMLET_HEAD", "2022-05-01")
        .await;
    app.add_member(
        &team,
        "Nguyễn Văn An",
        "MEMBER",
        "YOUTH_UNION",
        "2023-01-01",
    )
    .await;
    app.add_member(&other, "Lê Văn Bình", "LEADER", "POLICE", "2022-01-01")
        .await;
    let outcomes = json!({ "participants": 30, "householdsReached": 12,
        "outcomes": [{ "service": "VNEID", "people": 9, "households": 4 }] });
    let activity = app
        .submit(&team, "COMMUNITY_MEETING", "2024-03-05", outcomes.clone())
        .await;
    app.submit(&team, "DOOR_TO_DOOR", "2025-08-01", outcomes.clone())
        .await;
    app.submit(&other, "HELP_DESK", "2024-04-02", json!({}))
        .await;
    // The reporter's own submission, which it may read.
    let r = app
        .gql(
            &token(&["REPORTER"], &["169"], &[]),
            "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { activity { id } userErrors { message } } }",
            json!({ "i": { "idempotencyKey": "nulls-reporter-1", "teamId": team, "kind": "TRAINING",
                "occurredOn": "2024-05-06", "title": "Tập huấn VNeID" } }),
        )
        .await
        .ok();
    assert!(r.at("submitActivity.activity.id").is_string(), "{}", r.body);
    let mutations = [
        (
            "mutation($i: CorrectActivityInput!) { correctActivity(input: $i) { userErrors { message } } }",
            json!({ "activityId": activity, "reason": "số người sai", "participants": 31 }),
            "correctActivity",
        ),
        (
            "mutation($i: SubmitDataValuesInput!) { submitDataValues(input: $i) { userErrors { message } } }",
            json!({ "idempotencyKey": "nulls-figures-1", "sourceSystem": "DVC", "values": [
                { "element": "DOSSIERS_ONLINE", "unitCode": "05677", "periodStart": "2024-01-01", "periodEnd": "2024-12-31", "value": 70 },
                { "element": "DOSSIERS_TOTAL", "unitCode": "05677", "periodStart": "2024-01-01", "periodEnd": "2024-12-31", "value": 100 } ] }),
            "submitDataValues",
        ),
        (
            "mutation($i: SetIndicatorTargetInput!) { setIndicatorTarget(input: $i) { userErrors { message } } }",
            json!({ "indicator": "CNS05", "unitCode": "05677-01", "periodStart": "2024-01-01", "periodEnd": "2024-12-31", "target": 4 }),
            "setIndicatorTarget",
        ),
        (
            "mutation($i: LockPeriodInput!) { lockPeriod(input: $i) { userErrors { message } } }",
            json!({ "unitCode": "05677", "month": "2024-02", "reason": "đã báo cáo" }),
            "lockPeriod",
        ),
    ];
    for (m, input, name) in mutations {
        let r = app.gql(&admin(), m, json!({ "i": input })).await.ok();
        assert_eq!(
            r.at(&format!("{name}.userErrors")),
            &json!([]),
            "{}",
            r.body
        );
    }
    let units = app
        .gql(
            &admin(),
            "{ adminUnit(code: \"05677-01\") { id } }",
            json!({}),
        )
        .await
        .ok();
    let unit = units.at("adminUnit.id").as_str().unwrap().to_owned();
    let rest = app
        .gql(
            &admin(),
            "mutation { saveRestEndpoint(input: {name: \"unit\", method: GET, document: \"{ me { subject } }\"}) { userErrors { message } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(
        rest.at("saveRestEndpoint.userErrors"),
        &json!([]),
        "{:?}",
        rest.body
    );
    // The webhook made first has a delivery of every team change.
    let started = std::time::Instant::now();
    while app
        .gql(
            &admin(),
            "query($w: ID!) { webhookDeliveries(webhookId: $w) { totalCount } }",
            json!({ "w": webhook }),
        )
        .await
        .ok()
        .at("webhookDeliveries.totalCount")
        == 0
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no delivery"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Fixture {
        webhook,
        ids: vec![team.clone(), other, leader.clone(), activity.clone(), unit],
        team,
        membership: leader,
        activity,
    }
}

/// A token for each role, over the district (which ceased on 2025-06-30, so 2025's values
/// are not wholly its own) or, for the leader, over its team.
fn roles(team: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ADMIN", admin()),
        ("UNIT_ADMIN", token(&["UNIT_ADMIN"], &["169"], &[])),
        ("TEAM_LEADER", token(&["TEAM_LEADER"], &[], &[team])),
        ("REPORTER", token(&["REPORTER"], &["169"], &[])),
        ("VIEWER", token(&["VIEWER"], &["169"], &[])),
    ]
}

#[tokio::test]
async fn every_field_error_of_every_role_is_a_null_in_data_with_its_key() {
    let app = spawn_app().await;
    let fx = fixture(&app).await;
    let hints = Hints {
        team: fx.team.clone(),
        activity: fx.activity.clone(),
        webhook: fx.webhook.clone(),
    };
    let introspection = app
        .gql(&admin(), &introspection_query(), json!({}))
        .await
        .ok();
    let schema = Schema::from_introspection(&introspection.body["data"]);
    let paths = shortest_paths(&schema);

    // The queries: one per type reachable from the root and one per root field, with good and
    // with bad arguments; and `node` with every kind of id of the fixture.
    let mut queries: Vec<(String, bool, Vec<Sel>)> = Vec::new();
    for (target, path) in &paths {
        if target == &schema.query || schema.types[target].kind != "OBJECT" {
            continue;
        }
        for bad in [false, true] {
            queries.push((
                target.clone(),
                bad,
                query_for(&schema, path, target, &hints, bad),
            ));
        }
    }
    // Every root field with its own fields and one level under them (a root field whose type
    // another path reaches first, like `affiliations`, is asked here).
    for f in &schema.types[&schema.query].fields {
        if f.name == "node" || f.name.starts_with("__") {
            continue;
        }
        for bad in [false, true] {
            let composite = is_composite(&schema, f.ty.named());
            queries.push((
                format!("Query.{}", f.name),
                bad,
                vec![Sel {
                    key: f.name.clone(),
                    args: args(&f.args, &hints, bad),
                    ty: Some(f.ty.clone()),
                    on: None,
                    children: if composite {
                        all_fields(&schema, f.ty.named(), 1, &hints, bad)
                    } else {
                        Vec::new()
                    },
                }],
            ));
        }
    }
    for id in &fx.ids {
        let node = schema.types[&schema.query]
            .fields
            .iter()
            .find(|f| f.name == "node")
            .unwrap();
        queries.push((
            "node".into(),
            false,
            vec![Sel {
                key: "node".into(),
                args: format!("(id: \"{id}\")"),
                ty: Some(node.ty.clone()),
                on: None,
                children: all_fields(&schema, node.ty.named(), 1, &hints, false),
            }],
        ));
    }
    // Every field of every object type reachable from the root is asked for.
    let mut asked = BTreeSet::new();
    for (_, _, sels) in &queries {
        selected(&schema.query, sels, &mut asked);
    }
    for target in paths.keys() {
        if schema.types[target].kind == "OBJECT" {
            for f in &schema.types[target].fields {
                assert!(
                    asked.contains(&(target.clone(), f.name.clone())),
                    "{target}.{} is asked by no query",
                    f.name
                );
            }
        }
    }

    let mut findings = Findings::default();
    let mut seen_by_role: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (role, tok) in roles(&fx.team) {
        for (target, bad, sels) in &queries {
            let query = render(sels);
            let r = app.gql(&tok, &query, json!({})).await;
            assert!(
                r.status == 200 || (*bad && r.status == 400),
                "{role} {target}: HTTP {} for {query}: {}",
                r.status,
                r.body
            );
            assert!(
                !r.error_codes()
                    .iter()
                    .any(|c| c == "INTERNAL" || c == "QUERY_TOO_COMPLEX"),
                "{role} {target}: {query}: {}",
                r.body
            );
            let mut f = Findings::default();
            check(&r.body, sels, &mut f);
            for p in f.problems {
                findings
                    .problems
                    .push(format!("{role} {target}: {p}\n    query: {query}"));
            }
            seen_by_role
                .entry(role)
                .or_default()
                .extend(f.types_seen.iter().cloned());
            findings.errors_checked.extend(f.errors_checked);
        }
    }
    // Mutations: each with inputs generated from the schema (fixture ids and codes where an
    // input field names one, three seeds), every field of its payload and one level under.
    let mutation = schema.mutation.clone().unwrap();
    let mut pools = Pools::with_ids(fx.ids.clone());
    for (name, values) in [
        ("teamId", json!([fx.team])),
        ("membershipId", json!([fx.membership])),
        ("activityId", json!([fx.activity])),
        ("unitCode", json!(["05677-01", "05677", "05659-01"])),
        ("kind", json!(["COMMUNITY_MEETING", "HELP_DESK"])),
        ("service", json!(["VNEID"])),
        ("affiliation", json!(["YOUTH_UNION"])),
        ("indicator", json!(["CNS05"])),
        ("element", json!(["DOSSIERS_ONLINE"])),
        ("idempotencyKey", json!(["{unique}"])),
        ("month", json!(["2024-06"])),
        ("occurredOn", json!(["2024-06-15", "2025-08-20"])),
        ("startedOn", json!(["2024-05-01"])),
        ("foundedOn", json!(["2023-06-01"])),
        ("periodStart", json!(["2024-01-01"])),
        ("periodEnd", json!(["2024-12-31"])),
    ] {
        pools
            .hints
            .insert(name.to_owned(), values.as_array().cloned().unwrap());
    }
    for (role, tok) in roles(&fx.team) {
        for (i, m) in schema.types[&mutation].fields.iter().enumerate() {
            let [input] = m.args.as_slice() else {
                panic!("{} takes one `input`", m.name);
            };
            let sel = Sel {
                key: m.name.clone(),
                args: "(input: $i)".into(),
                ty: Some(m.ty.clone()),
                on: None,
                children: all_fields(&schema, m.ty.named(), 1, &hints, false),
            };
            for seed in 0..3 {
                let mut generator = Generator::new(&schema, &pools, (i * 10 + seed) as u64);
                let value = generator.json_value(&input.ty, 0);
                let mut query = format!("mutation($i: {}) ", input.ty.sdl());
                query.push_str(&render(std::slice::from_ref(&sel)));
                let r = app.gql(&tok, &query, json!({ "i": value })).await;
                assert!(
                    r.status == 200 || r.status == 400,
                    "{role} {}: HTTP {} for {query} {value}: {}",
                    m.name,
                    r.status,
                    r.body
                );
                assert!(
                    !r.error_codes().iter().any(|c| c == "INTERNAL"),
                    "{role} {}: {query} {value}: {}",
                    m.name,
                    r.body
                );
                let mut f = Findings::default();
                check(&r.body, std::slice::from_ref(&sel), &mut f);
                for p in f.problems {
                    findings.problems.push(format!(
                        "{role} {}: {p}\n    query: {query} {value}",
                        m.name
                    ));
                }
                findings.errors_checked.extend(f.errors_checked);
            }
        }
    }
    assert!(
        findings.problems.is_empty(),
        "{} problems:\n{}",
        findings.problems.len(),
        findings.problems.join("\n")
    );
    // The walk saw data of every type it asked for (as ADMIN) ...
    let missing: Vec<&String> = paths
        .keys()
        .filter(|t| schema.types[*t].kind == "OBJECT" && **t != schema.query)
        .filter(|t| !seen_by_role["ADMIN"].contains(*t))
        .collect();
    assert!(missing.is_empty(), "the fixture has no data of {missing:?}");
    // ... and checked the errors that matter: fields withheld from some roles, and input.
    for (code, field) in [
        ("FORBIDDEN", "phone"),
        ("FORBIDDEN", "email"),
        ("FORBIDDEN", "birthYear"),
        ("FORBIDDEN", "memberCount"),
        ("FORBIDDEN", "members"),
        ("FORBIDDEN", "value"),
        ("FORBIDDEN", "auditLog"),
        ("FORBIDDEN", "createTeam"),
        ("VALIDATION", "teams"),
    ] {
        assert!(
            findings
                .errors_checked
                .contains(&(code.to_owned(), field.to_owned())),
            "no {code} error on `{field}` was checked; checked: {:?}",
            findings.errors_checked
        );
    }
}

/// The value at `path` in `data`, failing when a key on the way is missing.
fn present<'a>(body: &'a Value, path: &[Value]) -> &'a Value {
    let mut v = &body["data"];
    for seg in path {
        v = match seg {
            Value::String(k) => v
                .as_object()
                .and_then(|o| o.get(k))
                .unwrap_or_else(|| panic!("no key {k} on the way to {path:?}: {body}")),
            Value::Number(i) => &v[i.as_u64().unwrap() as usize],
            _ => panic!("bad path"),
        };
    }
    v
}

/// The paths of the errors with `code`.
fn error_paths(body: &Value, code: &str) -> Vec<Vec<Value>> {
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["extensions"]["code"] == code)
        .map(|e| e["path"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn a_reporter_gets_member_counts_and_lists_as_null_with_forbidden_on_their_paths() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    app.add_member(&team, "Trần Thị Lệ", "LEADER", "HAMLET_HEAD", "2022-05-01")
        .await;
    let r = app
        .gql(
            &token(&["REPORTER"], &["169"], &[]),
            "{ teams { nodes { code memberCount members { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let node = present(&r.body, &[json!("teams"), json!("nodes"), json!(0)]);
    assert!(node["code"].is_string(), "{}", r.body);
    for field in ["memberCount", "members"] {
        let path = [json!("teams"), json!("nodes"), json!(0), json!(field)];
        assert_eq!(present(&r.body, &path), &Value::Null, "{}", r.body);
        assert!(
            error_paths(&r.body, "FORBIDDEN").contains(&path.to_vec()),
            "{}",
            r.body
        );
    }
    assert_eq!(r.error_codes().len(), 2, "{}", r.body);
}

#[tokio::test]
async fn personal_data_withheld_from_viewers_and_reporters_answers_null_with_forbidden() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    app.add_member(&team, "Trần Thị Lệ", "LEADER", "HAMLET_HEAD", "2022-05-01")
        .await;
    // A viewer reads names, not personal data: each personal field is a key with null, and a
    // FORBIDDEN error points at it, in the members list and under a team alike.
    let q = "{ members { nodes { person { fullName phone email birthYear } } } \
               team: teams { nodes { members { person { fullName phone } } } } }";
    let r = app
        .gql(&token(&["VIEWER"], &["169"], &[]), q, json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let person = [json!("members"), json!("nodes"), json!(0), json!("person")];
    assert_eq!(present(&r.body, &person)["fullName"], "Trần Thị Lệ");
    let forbidden = error_paths(&r.body, "FORBIDDEN");
    for field in ["phone", "email", "birthYear"] {
        let mut path = person.to_vec();
        path.push(json!(field));
        assert_eq!(present(&r.body, &path), &Value::Null, "{}", r.body);
        assert!(forbidden.contains(&path), "{field}: {}", r.body);
    }
    let phone = [
        json!("team"),
        json!("nodes"),
        json!(0),
        json!("members"),
        json!(0),
        json!("person"),
        json!("phone"),
    ];
    assert_eq!(present(&r.body, &phone), &Value::Null, "{}", r.body);
    assert!(forbidden.contains(&phone.to_vec()), "{}", r.body);
    assert_eq!(forbidden.len(), 4, "{}", r.body);

    // A reporter reads no members at all. Under a team, the list answers null where it stands;
    // the root list is non-null, so its error nulls `data` (with the error), as the spec says.
    let reporter = token(&["REPORTER"], &["169"], &[]);
    let r = app
        .gql(
            &reporter,
            "{ teams { nodes { code members { person { phone } } } } }",
            json!({}),
        )
        .await;
    let path = [json!("teams"), json!("nodes"), json!(0), json!("members")];
    assert_eq!(present(&r.body, &path), &Value::Null, "{}", r.body);
    assert_eq!(error_paths(&r.body, "FORBIDDEN"), [path.to_vec()]);
    let r = app
        .gql(&reporter, "{ members { nodes { id } } }", json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.get("data"), Some(&Value::Null), "{}", r.body);
    assert_eq!(error_paths(&r.body, "FORBIDDEN"), [vec![json!("members")]]);
}

#[tokio::test]
async fn an_indicator_value_outside_the_area_answers_null_with_forbidden_on_its_path() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    for on in ["2024-03-01", "2025-09-01"] {
        app.submit(&team, "COMMUNITY_MEETING", on, json!({})).await;
    }
    // District 169 ceased on 2025-06-30: 2024 is its own, 2025 is not wholly.
    let r = app
        .gql(
            &token(&["VIEWER"], &["169"], &[]),
            "{ indicators(codes: [\"CNS05\"], unitCodes: [\"05677-01\"], from: \"2024-01-01\", \
               to: \"2025-12-31\", granularity: YEAR) { period { label } value numerator status } }",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.at("indicators.0.period.label"), "2024");
    assert_eq!(r.at("indicators.0.value"), 1.0, "{}", r.body);
    assert_eq!(r.at("indicators.1.period.label"), "2025");
    let forbidden = error_paths(&r.body, "FORBIDDEN");
    for field in ["value", "numerator"] {
        let path = [json!("indicators"), json!(1), json!(field)];
        assert_eq!(present(&r.body, &path), &Value::Null, "{}", r.body);
        assert!(forbidden.contains(&path.to_vec()), "{}", r.body);
    }
    assert_eq!(forbidden.len(), 2, "{}", r.body);
}
