//! The read matrix: every read path, for every caller, against the oracle.
use super::fixture::{AREAS, FAudit, Fx, build, callers};
use super::model::{
    Caller, Role, TABLE, child_some_day, exists_every_day, month_span, under_every_day,
    under_every_existing_day, under_some_day,
};
use chrono::NaiveDate;
use cnscd_tests::*;
use futures::stream::{self, StreamExt};
use serde_json::{Value, json};
use std::collections::BTreeSet;

// ------------------------------------------------------------------------------------------
// Comparing answers.

fn codes_at(body: &Value, prefix: &[Value]) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| {
                    e["path"]
                        .as_array()
                        .is_some_and(|p| p.len() >= prefix.len() && p[..prefix.len()] == *prefix)
                })
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn top_codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn edge_ids(list: &Value) -> Vec<String> {
    list["edges"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["node"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn id_list(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

struct Report<'a> {
    fx: &'a Fx,
    failures: Vec<String>,
}

impl Report<'_> {
    fn fail(&mut self, c: &Caller, path: &str, what: String) {
        self.failures.push(format!("{} | {path} | {what}", c.label));
    }

    /// Compares the ids a path returned with the ids the oracle expects.
    fn ids(&mut self, c: &Caller, path: &str, got: &[String], expected: &[String]) {
        let got_set: BTreeSet<&String> = got.iter().collect();
        let exp_set: BTreeSet<&String> = expected.iter().collect();
        let extra: Vec<String> = got_set
            .difference(&exp_set)
            .map(|i| self.fx.label(i))
            .collect();
        let missing: Vec<String> = exp_set
            .difference(&got_set)
            .map(|i| self.fx.label(i))
            .collect();
        if !extra.is_empty() || !missing.is_empty() || got.len() != got_set.len() {
            self.fail(
                c,
                path,
                format!("leaked (not in area) {extra:?}; missing {missing:?}"),
            );
        }
    }

    fn count(&mut self, c: &Caller, path: &str, got: &Value, expected: usize) {
        if got.as_u64() != Some(expected as u64) {
            self.fail(c, path, format!("got {got}, oracle says {expected}"));
        }
    }
}

const Q_TEAMS: &str = "{ teams(first: 100) { totalCount edges { node { id } } } }";
const Q_TEAMS_NESTED: &str = "{ teams(first: 100) { edges { node { id latestActivity { id } current: members { id } all: members(includeEnded: true) { id person { phone } } } } } }";
const Q_MEMBER_COUNT: &str = "{ teams(first: 100) { edges { node { id memberCount } } } }";
const Q_MEMBERS: &str = "query($a: Boolean) { members(active: $a, first: 100) { totalCount edges { node { id person { phone } team { id } } } } }";
const Q_ACTIVITIES: &str =
    "{ activities(first: 100) { totalCount edges { node { id team { id } } } } }";
// Two requests: a root field the caller may not read (`members` for a REPORTER) is non-null,
// so its error nulls the whole `data` (GraphQL spec, "Handling Field Errors") and would hide
// the other list.
const Q_MEMBERS_OF_TEAM: &str =
    "query($t: ID) { members(teamId: $t, first: 100) { totalCount edges { node { id } } } }";
const Q_ACTIVITIES_OF_TEAM: &str =
    "query($t: ID) { activities(teamId: $t, first: 100) { totalCount edges { node { id } } } }";
const Q_AUDIT: &str = "query($after: String) { auditLog(first: 40, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { action entityId occurredAt before after } } } }";
const Q_TEAM: &str = "query($id: ID!) { team(id: $id) { id } }";
const Q_NODE: &str = "query($id: ID!) { node(id: $id) { id ... on Membership { team { id } person { phone } } ... on Activity { team { id } } } }";
const Q_INDICATORS: &str = "query($u: [String!]!, $g: PeriodGranularity!, $b: UnitBreakdown!) { indicators(codes: [\"CNS05\", \"CNS02\"], unitCodes: $u, from: \"2024-01-01\", to: \"2025-12-31\", granularity: $g, breakdown: $b) { indicator { code } unit { code } period { label start end } value numerator denominator status } }";

/// One request of the read matrix.
enum Probe {
    Teams,
    TeamsNested,
    MemberCount,
    Members(Option<bool>),
    Activities,
    /// `members(teamId:)` and `activities(teamId:)` of one team.
    ListsOfTeam(usize),
    Audit,
    TeamById(usize),
    Node(String),
    Indicators(&'static str, &'static str, &'static str),
    /// `dataValues` unfiltered and with each filter of [`VALUE_FILTERS`], in one request.
    DataValues,
    /// `periodLocks` unfiltered and with each filter of [`LOCK_FILTERS`], in one request.
    PeriodLocks,
    /// `activityVersions(activityId:)` of one activity.
    Versions(usize),
    /// `indicatorTargets` of every unit of the fixture's targets.
    Targets,
}

/// Filters of `dataValues` (under, from, to) checked for every caller.
const VALUE_FILTERS: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
    (None, None, None),
    (Some("169"), None, None),
    (Some("05677"), None, None),
    (Some("05692"), None, None),
    (Some("05677-01"), None, None),
    (Some("19"), None, None),
    (Some("05710"), None, None),
    (Some("05692-01"), None, None),
    (None, Some("2025-07-01"), None),
    (None, None, Some("2025-06-30")),
    (None, Some("2025-02-01"), Some("2025-08-31")),
    (Some("19"), Some("2025-10-01"), None),
];

/// Filters of `periodLocks` (under, from, to) checked for every caller.
const LOCK_FILTERS: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
    (None, None, None),
    (Some("169"), None, None),
    (Some("05677"), None, None),
    (Some("05692"), None, None),
    (Some("05677-01"), None, None),
    (Some("19"), None, None),
    (Some("05710"), None, None),
    (None, Some("2025-07"), None),
    (None, None, Some("2025-06")),
    (Some("19"), Some("2024-01"), Some("2025-09")),
];

/// One request selecting `field` once per filter, aliased `f0`, `f1`, …
fn filtered_query(
    field: &str,
    filters: &[(Option<&str>, Option<&str>, Option<&str>)],
    node: &str,
) -> String {
    let arg =
        |name: &str, v: &Option<&str>| v.map(|v| format!("{name}: \"{v}\", ")).unwrap_or_default();
    let lists: Vec<String> = filters
        .iter()
        .enumerate()
        .map(|(i, (u, f, t))| {
            format!(
                "f{i}: {field}({}{}{}first: 40) {{ totalCount edges {{ node {{ {node} }} }} }}",
                arg("under", u),
                arg("from", f),
                arg("to", t)
            )
        })
        .collect();
    format!("{{ {} }}", lists.join(" "))
}

fn filter_label(field: &str, (u, f, t): &(Option<&str>, Option<&str>, Option<&str>)) -> String {
    let parts: Vec<String> = [("under", u), ("from", f), ("to", t)]
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}: {v}")))
        .collect();
    format!("{field}({})", parts.join(", "))
}

const Q_TARGETS: &str = "query($u: [String!]!) { indicatorTargets(unitCodes: $u, from: \"2023-01-01\", to: \"2026-12-31\") { indicator unitCode periodStart periodEnd } }";

const Q_VERSIONS: &str =
    "query($id: ID!) { activityVersions(activityId: $id) { version changedBy activity } }";

async fn probe(app: &TestApp, fx: &Fx, c: &Caller, p: &Probe) -> Vec<String> {
    let mut rep = Report {
        fx,
        failures: Vec::new(),
    };
    let visible_teams: Vec<String> = (0..fx.teams.len())
        .filter(|&t| fx.team_visible(c, t))
        .map(|t| fx.teams[t].id.clone())
        .collect();
    let team_of = |t: usize| -> Value {
        if fx.team_visible(c, t) {
            json!(fx.teams[t].id)
        } else {
            Value::Null
        }
    };
    match p {
        Probe::Teams => {
            let r = app.gql(&c.token, Q_TEAMS, json!({})).await;
            rep.ids(
                c,
                "teams.edges",
                &edge_ids(&r.body["data"]["teams"]),
                &visible_teams,
            );
            rep.count(
                c,
                "teams.totalCount",
                &r.body["data"]["teams"]["totalCount"],
                visible_teams.len(),
            );
        }
        Probe::TeamsNested => {
            let r = app.gql(&c.token, Q_TEAMS_NESTED, json!({})).await;
            let edges = r.body["data"]["teams"]["edges"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if edges.is_empty() && !visible_teams.is_empty() {
                rep.fail(c, "teams{nested}", format!("no teams: {}", r.body));
            }
            for (i, e) in edges.iter().enumerate() {
                let node = &e["node"];
                let Some(t) = fx.teams.iter().position(|t| node["id"] == t.id.as_str()) else {
                    continue;
                };
                let tl = &fx.teams[t].label;
                let latest = fx.latest_act(c, t).map(|a| fx.acts[a].id.clone());
                let got = node["latestActivity"]["id"].as_str().map(str::to_owned);
                if got != latest {
                    rep.fail(
                        c,
                        &format!("team({tl}).latestActivity"),
                        format!(
                            "got {:?}, oracle says {:?}",
                            got.map(|g| fx.label(&g)),
                            latest.map(|g| fx.label(&g))
                        ),
                    );
                }
                let all: Vec<usize> = (0..fx.members.len())
                    .filter(|&m| fx.members[m].team == t && fx.member_visible(c, m))
                    .collect();
                let ids = |ms: &[usize]| -> Vec<String> {
                    ms.iter().map(|&m| fx.members[m].id.clone()).collect()
                };
                let open: Vec<usize> = all
                    .iter()
                    .copied()
                    .filter(|&m| fx.members[m].ended.is_none())
                    .collect();
                if Fx::members_readable(c) {
                    rep.ids(
                        c,
                        &format!("team({tl}).members(includeEnded: true)"),
                        &id_list(&node["all"]),
                        &ids(&all),
                    );
                    rep.ids(
                        c,
                        &format!("team({tl}).members"),
                        &id_list(&node["current"]),
                        &ids(&open),
                    );
                    for (j, m) in node["all"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .enumerate()
                    {
                        let Some(mi) = fx.members.iter().position(|x| m["id"] == x.id.as_str())
                        else {
                            continue;
                        };
                        let path = [
                            json!("teams"),
                            json!("edges"),
                            json!(i),
                            json!("node"),
                            json!("all"),
                            json!(j),
                            json!("person"),
                            json!("phone"),
                        ];
                        check_phone(
                            &mut rep,
                            c,
                            &format!(
                                "team({tl}).members.person.phone of {}",
                                fx.members[mi].label
                            ),
                            fx.personal_readable(c, mi),
                            &m["person"]["phone"],
                            &codes_at(&r.body, &path),
                        );
                    }
                } else {
                    for alias in ["all", "current"] {
                        let got = id_list(&node[alias]);
                        if !got.is_empty() {
                            rep.fail(
                                c,
                                &format!("team({tl}).members"),
                                format!(
                                    "role may not read members, got {:?}",
                                    got.iter().map(|g| fx.label(g)).collect::<Vec<_>>()
                                ),
                            );
                        }
                    }
                }
            }
        }
        Probe::MemberCount => {
            let r = app.gql(&c.token, Q_MEMBER_COUNT, json!({})).await;
            let edges = r.body["data"]["teams"]["edges"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if edges.is_empty() && !visible_teams.is_empty() {
                rep.fail(c, "teams.memberCount", format!("no teams: {}", r.body));
            }
            for (i, e) in edges.iter().enumerate() {
                let node = &e["node"];
                let Some(t) = fx.teams.iter().position(|t| node["id"] == t.id.as_str()) else {
                    continue;
                };
                let tl = &fx.teams[t].label;
                let open = (0..fx.members.len())
                    .filter(|&m| {
                        fx.members[m].team == t
                            && fx.members[m].ended.is_none()
                            && fx.member_visible(c, m)
                    })
                    .count();
                let path = [
                    json!("teams"),
                    json!("edges"),
                    json!(i),
                    json!("node"),
                    json!("memberCount"),
                ];
                if Fx::members_readable(c) {
                    rep.count(
                        c,
                        &format!("team({tl}).memberCount"),
                        &node["memberCount"],
                        open,
                    );
                } else if !node["memberCount"].is_null()
                    || !codes_at(&r.body, &path).contains(&"FORBIDDEN".to_owned())
                {
                    rep.fail(c, &format!("team({tl}).memberCount"), format!("role may not read members: expected null + FORBIDDEN, got {} (errors {:?})", node["memberCount"], codes_at(&r.body, &path)));
                }
            }
        }
        Probe::Members(active) => {
            let r = app.gql(&c.token, Q_MEMBERS, json!({ "a": active })).await;
            let path = format!("members(active: {active:?})");
            let list = &r.body["data"]["members"];
            if !Fx::members_readable(c) {
                let got = edge_ids(list);
                if !got.is_empty() || list["totalCount"].as_u64().is_some_and(|n| n > 0) {
                    rep.fail(
                        c,
                        &path,
                        format!(
                            "role may not read members, got {} {:?}",
                            list["totalCount"],
                            got.iter().map(|g| fx.label(g)).collect::<Vec<_>>()
                        ),
                    );
                }
                return rep.failures;
            }
            let expected: Vec<usize> = (0..fx.members.len())
                .filter(|&m| fx.member_visible(c, m))
                .filter(|&m| active.is_none_or(|a| a == fx.members[m].ended.is_none()))
                .collect();
            let exp_ids: Vec<String> = expected.iter().map(|&m| fx.members[m].id.clone()).collect();
            rep.ids(c, &format!("{path}.edges"), &edge_ids(list), &exp_ids);
            rep.count(
                c,
                &format!("{path}.totalCount"),
                &list["totalCount"],
                expected.len(),
            );
            for (i, e) in list["edges"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let Some(m) = fx
                    .members
                    .iter()
                    .position(|x| e["node"]["id"] == x.id.as_str())
                else {
                    continue;
                };
                let ml = &fx.members[m].label;
                let base = [json!("members"), json!("edges"), json!(i), json!("node")];
                let mut pp = base.to_vec();
                pp.extend([json!("person"), json!("phone")]);
                check_phone(
                    &mut rep,
                    c,
                    &format!("{path}.person.phone of {ml}"),
                    fx.personal_readable(c, m),
                    &e["node"]["person"]["phone"],
                    &codes_at(&r.body, &pp),
                );
                let want = team_of(fx.members[m].team);
                if e["node"]["team"]["id"] != want
                    && !(want.is_null() && e["node"]["team"].is_null())
                {
                    rep.fail(
                        c,
                        &format!("{path}.team of {ml}"),
                        format!("got {}, oracle says {want}", e["node"]["team"]),
                    );
                }
            }
        }
        Probe::Activities => {
            let r = app.gql(&c.token, Q_ACTIVITIES, json!({})).await;
            let list = &r.body["data"]["activities"];
            let expected: Vec<usize> = (0..fx.acts.len())
                .filter(|&a| fx.act_visible(c, a))
                .collect();
            let exp_ids: Vec<String> = expected.iter().map(|&a| fx.acts[a].id.clone()).collect();
            rep.ids(c, "activities.edges", &edge_ids(list), &exp_ids);
            rep.count(
                c,
                "activities.totalCount",
                &list["totalCount"],
                expected.len(),
            );
            for e in list["edges"].as_array().cloned().unwrap_or_default() {
                let Some(a) = fx
                    .acts
                    .iter()
                    .position(|x| e["node"]["id"] == x.id.as_str())
                else {
                    continue;
                };
                let want = team_of(fx.acts[a].team);
                let got = if e["node"]["team"].is_null() {
                    Value::Null
                } else {
                    e["node"]["team"]["id"].clone()
                };
                if got != want {
                    rep.fail(
                        c,
                        &format!("activities.team of {}", fx.acts[a].label),
                        format!("got {got}, oracle says {want}"),
                    );
                }
            }
        }
        Probe::ListsOfTeam(t) => {
            let tl = &fx.teams[*t].label;
            let r = app
                .gql(&c.token, Q_MEMBERS_OF_TEAM, json!({ "t": fx.teams[*t].id }))
                .await;
            // An invisible team may answer NOT_FOUND or an empty list; either way nothing leaks.
            let members = &r.body["data"]["members"];
            let expected: Vec<String> = (0..fx.members.len())
                .filter(|&m| fx.members[m].team == *t && fx.member_visible(c, m))
                .map(|m| fx.members[m].id.clone())
                .collect();
            rep.ids(
                c,
                &format!("members(teamId: {tl}).edges"),
                &edge_ids(members),
                &expected,
            );
            if !members["totalCount"].is_null() {
                rep.count(
                    c,
                    &format!("members(teamId: {tl}).totalCount"),
                    &members["totalCount"],
                    expected.len(),
                );
            }
            let r = app
                .gql(
                    &c.token,
                    Q_ACTIVITIES_OF_TEAM,
                    json!({ "t": fx.teams[*t].id }),
                )
                .await;
            let acts = &r.body["data"]["activities"];
            let expected: Vec<String> = (0..fx.acts.len())
                .filter(|&a| fx.acts[a].team == *t && fx.act_visible(c, a))
                .map(|a| fx.acts[a].id.clone())
                .collect();
            rep.ids(
                c,
                &format!("activities(teamId: {tl}).edges"),
                &edge_ids(acts),
                &expected,
            );
            if !acts["totalCount"].is_null() {
                rep.count(
                    c,
                    &format!("activities(teamId: {tl}).totalCount"),
                    &acts["totalCount"],
                    expected.len(),
                );
            }
        }
        Probe::Audit => {
            let r = app.gql(&c.token, Q_AUDIT, json!({})).await;
            let list = &r.body["data"]["auditLog"];
            if matches!(c.role, Role::Admin | Role::UnitAdmin) {
                // Every page (pages of 40: the fixture holds over 80 entries), with the errors
                // each answered, by the index of their edge among all pages.
                let mut edges = list["edges"].as_array().cloned().unwrap_or_default();
                let mut errors: Vec<(usize, Value)> = r.body["errors"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| (0, e))
                    .collect();
                let mut page = list.clone();
                while page["pageInfo"]["hasNextPage"] == true {
                    let next = app
                        .gql(
                            &c.token,
                            Q_AUDIT,
                            json!({ "after": page["pageInfo"]["endCursor"] }),
                        )
                        .await;
                    page = next.body["data"]["auditLog"].clone();
                    if page.is_null() {
                        rep.fail(c, "auditLog(after:)", format!("no answer: {}", next.body));
                        break;
                    }
                    let offset = edges.len();
                    errors.extend(
                        next.body["errors"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|e| (offset, e)),
                    );
                    edges.extend(page["edges"].as_array().cloned().unwrap_or_default());
                }
                let entry = |n: &Value| {
                    format!(
                        "{} {} {}",
                        n["action"].as_str().unwrap_or("?"),
                        fx.label(n["entityId"].as_str().unwrap_or("?")),
                        n["occurredAt"]
                            .as_str()
                            .unwrap_or("?")
                            .get(..10)
                            .unwrap_or("?")
                    )
                };
                let mut got: Vec<String> = edges.iter().map(|e| entry(&e["node"])).collect();
                let visible: Vec<&FAudit> = fx
                    .audits
                    .iter()
                    .filter(|e| fx.audit_visible(c, e))
                    .collect();
                let key = |e: &FAudit| format!("{} {} {}", e.action, fx.label(&e.entity), e.day);
                let mut expected: Vec<String> = visible.iter().map(|e| key(e)).collect();
                got.sort();
                expected.sort();
                if got != expected {
                    let extra: Vec<&String> =
                        got.iter().filter(|g| !expected.contains(g)).collect();
                    let missing: Vec<&String> =
                        expected.iter().filter(|g| !got.contains(g)).collect();
                    rep.fail(
                        c,
                        "auditLog.edges",
                        format!(
                            "leaked {extra:?}; missing {missing:?}; errors {:?}",
                            top_codes(&r.body)
                        ),
                    );
                }
                rep.count(
                    c,
                    "auditLog.totalCount",
                    &list["totalCount"],
                    expected.len(),
                );
                // An activity's entry holds the activity as it was before and after the
                // change: each side null with FORBIDDEN on its path where the caller may not
                // read that version, and shown otherwise.
                let mut got_withheld: Vec<String> = Vec::new();
                for (offset, e) in &errors {
                    let path = e["path"].as_array().cloned().unwrap_or_default();
                    let side = path.get(4).and_then(Value::as_str).unwrap_or("?");
                    let at = path
                        .get(2)
                        .and_then(Value::as_u64)
                        .map(|i| offset + i as usize);
                    match at.and_then(|i| edges.get(i)) {
                        Some(edge)
                            if path.len() == 5
                                && path[0] == "auditLog"
                                && e["extensions"]["code"] == "FORBIDDEN"
                                && matches!(side, "before" | "after")
                                && edge["node"][side].is_null() =>
                        {
                            got_withheld.push(format!("{} {side}", entry(&edge["node"])));
                        }
                        _ => rep.fail(c, "auditLog", format!("unexpected error {e}")),
                    }
                }
                let mut expected_withheld: Vec<String> = visible
                    .iter()
                    .flat_map(|e| {
                        fx.withheld_sides(c, e)
                            .into_iter()
                            .map(move |side| format!("{} {side}", key(e)))
                    })
                    .collect();
                got_withheld.sort();
                expected_withheld.sort();
                if got_withheld != expected_withheld {
                    let extra: Vec<&String> = got_withheld
                        .iter()
                        .filter(|g| !expected_withheld.contains(g))
                        .collect();
                    let missing: Vec<&String> = expected_withheld
                        .iter()
                        .filter(|g| !got_withheld.contains(g))
                        .collect();
                    rep.fail(
                        c,
                        "auditLog.edges.node.before/after",
                        format!("withheld (FORBIDDEN) but readable {extra:?}; shown but not readable {missing:?}"),
                    );
                }
                // A side the caller may read is there (an activity's entry always has an
                // `after`, a correction's a `before`).
                for e in &visible {
                    let Some((_, states)) = &e.states else {
                        continue;
                    };
                    let withheld = fx.withheld_sides(c, e);
                    for (side, state) in ["before", "after"].into_iter().zip(states) {
                        if state.is_none() || withheld.contains(&side) {
                            continue;
                        }
                        let shown = edges.iter().any(|edge| {
                            entry(&edge["node"]) == key(e) && !edge["node"][side].is_null()
                        });
                        if !shown {
                            rep.fail(
                                c,
                                "auditLog.edges.node.before/after",
                                format!("{} {side}: null, the caller may read it", key(e)),
                            );
                        }
                    }
                }
            } else if !edge_ids(list).is_empty()
                || list["edges"].as_array().is_some_and(|a| !a.is_empty())
                || top_codes(&r.body) != ["FORBIDDEN"]
            {
                rep.fail(
                    c,
                    "auditLog",
                    format!("expected FORBIDDEN and no entries, got {}", r.body),
                );
            }
        }
        Probe::TeamById(t) => {
            let r = app
                .gql(&c.token, Q_TEAM, json!({ "id": fx.teams[*t].id }))
                .await;
            let path = format!("team(id: {})", fx.teams[*t].label);
            by_id(
                &mut rep,
                c,
                &path,
                fx.team_visible(c, *t),
                &r.body["data"]["team"],
                &top_codes(&r.body),
                false,
            );
        }
        Probe::Node(id) => {
            let r = app.gql(&c.token, Q_NODE, json!({ "id": id })).await;
            let node = &r.body["data"]["node"];
            let path = format!("node(id: {})", fx.label(id));
            if let Some(t) = fx.teams.iter().position(|t| &t.id == id) {
                by_id(
                    &mut rep,
                    c,
                    &path,
                    fx.team_visible(c, t),
                    node,
                    &top_codes(&r.body),
                    false,
                );
            } else if let Some(m) = fx.members.iter().position(|x| &x.id == id) {
                let visible = fx.member_visible(c, m);
                by_id(
                    &mut rep,
                    c,
                    &path,
                    visible,
                    node,
                    &top_codes(&r.body),
                    c.role == Role::Reporter,
                );
                if visible && !node.is_null() {
                    let want = team_of(fx.members[m].team);
                    let got = if node["team"].is_null() {
                        Value::Null
                    } else {
                        node["team"]["id"].clone()
                    };
                    if got != want {
                        rep.fail(
                            c,
                            &format!("{path}.team"),
                            format!("got {got}, oracle says {want}"),
                        );
                    }
                    let pp = [json!("node"), json!("person"), json!("phone")];
                    check_phone(
                        &mut rep,
                        c,
                        &format!("{path}.person.phone"),
                        fx.personal_readable(c, m),
                        &node["person"]["phone"],
                        &codes_at(&r.body, &pp),
                    );
                }
            } else if let Some(a) = fx.acts.iter().position(|x| &x.id == id) {
                let visible = fx.act_visible(c, a);
                by_id(
                    &mut rep,
                    c,
                    &path,
                    visible,
                    node,
                    &top_codes(&r.body),
                    false,
                );
                if visible && !node.is_null() {
                    let want = team_of(fx.acts[a].team);
                    let got = if node["team"].is_null() {
                        Value::Null
                    } else {
                        node["team"]["id"].clone()
                    };
                    if got != want {
                        rep.fail(
                            c,
                            &format!("{path}.team"),
                            format!("got {got}, oracle says {want}"),
                        );
                    }
                }
            }
        }
        Probe::DataValues => {
            let q = filtered_query(
                "dataValues",
                VALUE_FILTERS,
                "element unitCode periodStart periodEnd sourceSystem",
            );
            let r = app.gql(&c.token, &q, json!({})).await;
            if c.role == Role::TeamLeader {
                forbidden_whole(&mut rep, c, "dataValues", &r);
                return rep.failures;
            }
            for (i, filter) in VALUE_FILTERS.iter().enumerate() {
                let (u, f, t) = filter;
                let path = filter_label("dataValues", filter);
                let list = &r.body["data"][format!("f{i}")];
                let got: Vec<String> = list["edges"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| {
                        let n = &e["node"];
                        let s = |k: &str| n[k].as_str().unwrap_or("?").to_owned();
                        format!(
                            "{}:{}:{}:{}:{}",
                            s("element"),
                            s("unitCode"),
                            s("periodStart"),
                            s("periodEnd"),
                            s("sourceSystem")
                        )
                    })
                    .collect();
                let expected: Vec<String> = (0..fx.values.len())
                    .filter(|&v| fx.value_visible(c, v))
                    .filter(|&v| {
                        let v = &fx.values[v];
                        u.is_none_or(|u| under_every_day(v.unit, &[u.to_owned()], v.start, v.end))
                            && f.is_none_or(|f| v.end >= date(f))
                            && t.is_none_or(|t| v.start <= date(t))
                    })
                    .map(|v| fx.values[v].key.clone())
                    .collect();
                if list.is_null() {
                    rep.fail(c, &path, format!("no answer: {}", r.body));
                    continue;
                }
                rep.ids(c, &format!("{path}.edges"), &got, &expected);
                rep.count(
                    c,
                    &format!("{path}.totalCount"),
                    &list["totalCount"],
                    expected.len(),
                );
            }
        }
        Probe::PeriodLocks => {
            let q = filtered_query("periodLocks", LOCK_FILTERS, "unitCode month");
            let r = app.gql(&c.token, &q, json!({})).await;
            if c.role == Role::TeamLeader {
                forbidden_whole(&mut rep, c, "periodLocks", &r);
                return rep.failures;
            }
            for (i, filter) in LOCK_FILTERS.iter().enumerate() {
                let (u, f, t) = filter;
                let path = filter_label("periodLocks", filter);
                let list = &r.body["data"][format!("f{i}")];
                let got: Vec<String> = list["edges"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| {
                        let n = &e["node"];
                        format!(
                            "{}:{}",
                            n["unitCode"].as_str().unwrap_or("?"),
                            n["month"].as_str().unwrap_or("?")
                        )
                    })
                    .collect();
                let expected: Vec<String> = (0..fx.locks.len())
                    .filter(|&l| fx.lock_visible(c, l))
                    .filter(|&l| {
                        let l = &fx.locks[l];
                        u.is_none_or(|u| under_some_day(l.unit, &[u.to_owned()], l.start, l.end))
                            && f.is_none_or(|f| l.end >= month_span(f).0)
                            && t.is_none_or(|t| l.start <= month_span(t).1)
                    })
                    .map(|l| fx.locks[l].key.clone())
                    .collect();
                if list.is_null() {
                    rep.fail(c, &path, format!("no answer: {}", r.body));
                    continue;
                }
                rep.ids(c, &format!("{path}.edges"), &got, &expected);
                rep.count(
                    c,
                    &format!("{path}.totalCount"),
                    &list["totalCount"],
                    expected.len(),
                );
            }
        }
        Probe::Targets => {
            let units: BTreeSet<&str> = fx.targets.iter().map(|t| t.unit).collect();
            let r = app.gql(&c.token, Q_TARGETS, json!({ "u": units })).await;
            if matches!(c.role, Role::Reporter | Role::TeamLeader) {
                forbidden_whole(&mut rep, c, "indicatorTargets", &r);
                return rep.failures;
            }
            let list = &r.body["data"]["indicatorTargets"];
            if list.is_null() {
                rep.fail(c, "indicatorTargets", format!("no answer: {}", r.body));
                return rep.failures;
            }
            let got: Vec<String> = list
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    let s = |k: &str| t[k].as_str().unwrap_or("?").to_owned();
                    format!(
                        "{}:{}:{}:{}",
                        s("indicator"),
                        s("unitCode"),
                        s("periodStart"),
                        s("periodEnd")
                    )
                })
                .collect();
            let expected: Vec<String> = (0..fx.targets.len())
                .filter(|&t| !fx.targets[t].cleared && fx.target_visible(c, t))
                .map(|t| fx.targets[t].key.clone())
                .collect();
            rep.ids(c, "indicatorTargets", &got, &expected);
        }
        Probe::Versions(a) => {
            let act = &fx.acts[*a];
            let path = format!("activityVersions(activityId: {})", act.label);
            let r = app.gql(&c.token, Q_VERSIONS, json!({ "id": act.id })).await;
            let list = &r.body["data"]["activityVersions"];
            // Each version by its own day and unit; NOT_FOUND when neither the activity now
            // nor any version is visible.
            let visible: Vec<usize> = (0..act.history.len())
                .filter(|&v| fx.version_visible(c, *a, v))
                .collect();
            if visible.is_empty() && !fx.act_visible(c, *a) {
                if !list.is_null() || top_codes(&r.body) != ["NOT_FOUND"] {
                    rep.fail(
                        c,
                        &path,
                        format!("outside the area: expected NOT_FOUND, got {}", r.body),
                    );
                }
                return rep.failures;
            }
            let got: Vec<String> = list
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|v| {
                    format!(
                        "v{} {} @{} by {}",
                        v["version"],
                        v["activity"]["occurred_on"].as_str().unwrap_or("?"),
                        v["activity"]["unit_code"].as_str().unwrap_or("?"),
                        v["changedBy"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            let expected: Vec<String> = visible
                .iter()
                .map(|&i| {
                    let (on, unit, by) = &act.history[i];
                    format!("v{} {on} @{unit} by {by}", i + 1)
                })
                .collect();
            if got != expected || !top_codes(&r.body).is_empty() {
                rep.fail(
                    c,
                    &path,
                    format!(
                        "got {got:?}, oracle says {expected:?} (errors {:?})",
                        top_codes(&r.body)
                    ),
                );
            }
        }
        Probe::Indicators(unit, g, b) => {
            let r = app
                .gql(
                    &c.token,
                    Q_INDICATORS,
                    json!({ "u": [unit], "g": g, "b": b }),
                )
                .await;
            check_indicators(&mut rep, fx, c, unit, g, b, &r);
            let r = app
                .gql(&c.token, Q_TABLE, json!({ "u": [unit], "g": g, "b": b }))
                .await;
            check_table(&mut rep, fx, c, unit, g, b, &r);
            if *b == "SELF" && *g == "YEAR" {
                let r = app.gql(&c.token, Q_REBASED, json!({ "u": [unit] })).await;
                check_rebased(&mut rep, c, unit, &r);
            }
        }
    }
    rep.failures
}

/// A role without the right at all: the whole request FORBIDDEN, nothing answered.
fn forbidden_whole(rep: &mut Report<'_>, c: &Caller, path: &str, r: &Gql) {
    if !r.body["data"].is_null() || !top_codes(&r.body).contains(&"FORBIDDEN".to_owned()) {
        rep.fail(
            c,
            path,
            format!("role may not read it: expected FORBIDDEN, got {}", r.body),
        );
    }
}

fn check_phone(
    rep: &mut Report<'_>,
    c: &Caller,
    path: &str,
    readable: bool,
    phone: &Value,
    codes: &[String],
) {
    if readable {
        if !phone.is_string() || !codes.is_empty() {
            rep.fail(
                c,
                path,
                format!("readable by the oracle, got {phone} (errors {codes:?})"),
            );
        }
    } else if !phone.is_null() || !codes.contains(&"FORBIDDEN".to_owned()) {
        rep.fail(
            c,
            path,
            format!("personal data: expected null + FORBIDDEN, got {phone} (errors {codes:?})"),
        );
    }
}

fn by_id(
    rep: &mut Report<'_>,
    c: &Caller,
    path: &str,
    visible: bool,
    got: &Value,
    codes: &[String],
    forbidden_ok: bool,
) {
    if visible {
        if got["id"].is_null() {
            rep.fail(
                c,
                path,
                format!("visible by the oracle, got null (errors {codes:?})"),
            );
        }
    } else {
        let refused = codes
            .iter()
            .any(|c| c == "NOT_FOUND" || (forbidden_ok && c == "FORBIDDEN"));
        if !got.is_null() || !refused {
            rep.fail(
                c,
                path,
                format!(
                    "outside the area: expected null + NOT_FOUND, got {got} (errors {codes:?})"
                ),
            );
        }
    }
}

fn periods(g: &str) -> Vec<(String, NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    for year in [2024, 2025] {
        if g == "YEAR" {
            out.push((
                year.to_string(),
                NaiveDate::from_ymd_opt(year, 1, 1).unwrap(),
                NaiveDate::from_ymd_opt(year, 12, 31).unwrap(),
            ));
        } else {
            for month in 1..=12 {
                let start = NaiveDate::from_ymd_opt(year, month, 1).unwrap();
                let end = start
                    .checked_add_months(chrono::Months::new(1))
                    .unwrap()
                    .pred_opt()
                    .unwrap();
                out.push((format!("{year}-{month:02}"), start, end));
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
const Q_TABLE: &str = "query($u: [String!]!, $g: PeriodGranularity!, $b: UnitBreakdown!) { indicatorTable(codes: [\"CNS05\", \"CNS02\"], unitCodes: $u, from: \"2024-01-01\", to: \"2025-12-31\", granularity: $g, breakdown: $b) { codes units periods values numerators denominators statuses targets } }";

const Q_REBASED: &str = "query($u: [String!]!) { indicators(codes: [\"CNS05\"], unitCodes: $u, from: \"2024-01-01\", to: \"2025-12-31\", granularity: YEAR, mode: REBASED) { unit { code } value numerator status } }";

/// `indicatorTable` answers as `indicators` does: refused where the request is, and an entry
/// whose unit is not in the area on every day of its period that the unit existed holds
/// nothing (null numbers, NO_DATA).
#[allow(clippy::too_many_arguments)]
fn check_table(rep: &mut Report<'_>, fx: &Fx, c: &Caller, unit: &str, g: &str, b: &str, r: &Gql) {
    let path = format!("indicatorTable({unit}, {g}, {b})");
    let may_read = matches!(c.role, Role::Admin | Role::UnitAdmin | Role::Viewer);
    let in_area = c.role == Role::Admin
        || under_some_day(unit, &c.units, date("2024-01-01"), date("2025-12-31"));
    let t = &r.body["data"]["indicatorTable"];
    if !may_read || !in_area {
        if !t.is_null() || !top_codes(&r.body).contains(&"FORBIDDEN".to_owned()) {
            rep.fail(c, &path, format!("expected FORBIDDEN, got {}", r.body));
        }
        return;
    }
    let list = |k: &str| t[k].as_array().cloned().unwrap_or_default();
    let (codes, units, labels) = (list("codes"), list("units"), list("periods"));
    let spans = periods(g);
    let mut leaked = Vec::new();
    let mut wrong = Vec::new();
    for (ci, code) in codes.iter().enumerate() {
        for (ui, u) in units.iter().enumerate() {
            for (pi, label) in labels.iter().enumerate() {
                let i = (ci * units.len() + ui) * labels.len() + pi;
                let (Some(code), Some(u), Some((_, start, end))) = (
                    code.as_str(),
                    u.as_str(),
                    spans.iter().find(|p| label == p.0.as_str()),
                ) else {
                    rep.fail(c, &path, format!("unexpected entry {code} {u} {label}"));
                    continue;
                };
                let cell = format!("{code} {u} {label}");
                let readable =
                    c.role == Role::Admin || under_every_existing_day(u, &c.units, *start, *end);
                if !readable {
                    let empty = ["values", "numerators", "denominators", "targets"]
                        .iter()
                        .all(|k| t[*k][i].is_null());
                    if !empty || t["statuses"][i] != "NO_DATA" {
                        leaked.push(cell);
                    }
                } else if b == "SELF" && exists_every_day(u, *start, *end) {
                    let want = if code == "CNS05" {
                        fx.cns05(u, *start, *end)
                    } else {
                        fx.cns02(u, *end)
                    } as f64;
                    if !t["values"][i]
                        .as_f64()
                        .map_or(want == 0.0, |v| (v - want).abs() < 1e-9)
                    {
                        wrong.push(format!(
                            "{cell}: got {}, oracle says {want}",
                            t["values"][i]
                        ));
                    }
                }
            }
        }
    }
    if !leaked.is_empty() {
        rep.fail(
            c,
            &path,
            format!("entries outside the area hold data: {leaked:?}"),
        );
    }
    if !wrong.is_empty() {
        rep.fail(
            c,
            &path,
            format!("entries differ from the oracle: {wrong:?}"),
        );
    }
}

/// Re-based values are today's units: none for a unit that is gone, readable where today's
/// unit is in the area today.
fn check_rebased(rep: &mut Report<'_>, c: &Caller, unit: &str, r: &Gql) {
    let path = format!("indicators({unit}, REBASED)");
    let may_read = matches!(c.role, Role::Admin | Role::UnitAdmin | Role::Viewer);
    let in_area = c.role == Role::Admin
        || under_some_day(unit, &c.units, date("2024-01-01"), date("2025-12-31"));
    let rows = r.body["data"]["indicators"].as_array();
    if !may_read || !in_area {
        if rows.is_some() || !top_codes(&r.body).contains(&"FORBIDDEN".to_owned()) {
            rep.fail(c, &path, format!("expected FORBIDDEN, got {}", r.body));
        }
        return;
    }
    let Some(rows) = rows else {
        rep.fail(c, &path, format!("expected rows, got {}", r.body));
        return;
    };
    let today = (chrono::Utc::now() + chrono::Duration::hours(7)).date_naive();
    if !exists_every_day(unit, today, today) {
        if !rows.is_empty() {
            rep.fail(
                c,
                &path,
                format!("a unit that is gone has re-based rows: {rows:?}"),
            );
        }
        return;
    }
    let readable = c.role == Role::Admin || under_some_day(unit, &c.units, today, today);
    for (i, row) in rows.iter().enumerate() {
        let forbidden =
            codes_at(&r.body, &[json!("indicators"), json!(i)]).contains(&"FORBIDDEN".to_owned());
        let withheld = forbidden
            && row["value"].is_null()
            && row["numerator"].is_null()
            && row["status"] == "NO_DATA";
        if (readable && forbidden) || (!readable && !withheld) {
            rep.fail(
                c,
                &path,
                format!("readable today: {readable}, but got {row} (FORBIDDEN: {forbidden})"),
            );
        }
    }
}

fn check_indicators(
    rep: &mut Report<'_>,
    fx: &Fx,
    c: &Caller,
    unit: &str,
    g: &str,
    b: &str,
    r: &Gql,
) {
    let path = format!("indicators({unit}, {g}, {b})");
    let from = date("2024-01-01");
    let to = date("2025-12-31");
    let may_read = matches!(c.role, Role::Admin | Role::UnitAdmin | Role::Viewer);
    let in_area = c.role == Role::Admin || under_some_day(unit, &c.units, from, to);
    let rows = r.body["data"]["indicators"].as_array();
    if !may_read || !in_area {
        if rows.is_some() || !top_codes(&r.body).contains(&"FORBIDDEN".to_owned()) {
            let why = if may_read {
                "unit not in the area on any day"
            } else {
                "role may not read indicators"
            };
            rep.fail(
                c,
                &path,
                format!(
                    "{why}: expected FORBIDDEN, got {} rows (errors {:?})",
                    rows.map_or(0, Vec::len),
                    top_codes(&r.body)
                ),
            );
        }
        return;
    }
    let Some(rows) = rows else {
        rep.fail(c, &path, format!("oracle says readable, got {}", r.body));
        return;
    };
    let mut seen = BTreeSet::new();
    let mut leaked = Vec::new();
    let mut hidden = Vec::new();
    let mut wrong = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let code = row["indicator"]["code"].as_str().unwrap_or("?");
        let u = row["unit"]["code"].as_str().unwrap_or("?");
        let label = row["period"]["label"].as_str().unwrap_or("?");
        let (Some(start), Some(end)) = (
            row["period"]["start"].as_str().map(date),
            row["period"]["end"].as_str().map(date),
        ) else {
            rep.fail(c, &path, format!("row without period: {row}"));
            continue;
        };
        seen.insert((code.to_owned(), u.to_owned(), label.to_owned()));
        let cell = format!("{code} {u} {label}");
        if b == "SELF" && u != unit {
            rep.fail(c, &path, format!("row for another unit: {cell}"));
            continue;
        }
        if b == "CHILDREN" && !child_some_day(u, unit, start, end) {
            rep.fail(
                c,
                &path,
                format!("row for a unit that was not a child in the period: {cell}"),
            );
            continue;
        }
        let readable = c.role == Role::Admin || under_every_existing_day(u, &c.units, start, end);
        let forbidden =
            codes_at(&r.body, &[json!("indicators"), json!(i)]).contains(&"FORBIDDEN".to_owned());
        if readable {
            if forbidden {
                hidden.push(cell.clone());
            }
            if b == "SELF" && exists_every_day(u, start, end) {
                let want = if code == "CNS05" {
                    fx.cns05(u, start, end)
                } else {
                    fx.cns02(u, end)
                } as f64;
                let ok = match row["value"].as_f64() {
                    Some(v) => (v - want).abs() < 1e-9,
                    None => want == 0.0,
                };
                if !ok {
                    wrong.push(format!("{cell}: got {}, oracle says {want}", row["value"]));
                }
            }
        } else {
            let nulls = row["value"].is_null()
                && row["numerator"].is_null()
                && row["denominator"].is_null();
            if !nulls || row["status"] != "NO_DATA" || !forbidden {
                leaked.push(format!(
                    "{cell} (value {}, status {}, FORBIDDEN on path: {forbidden})",
                    row["value"], row["status"]
                ));
            }
        }
    }
    if b == "SELF" {
        for (label, start, end) in periods(g) {
            if exists_every_day(unit, start, end) {
                for code in ["CNS05", "CNS02"] {
                    if !seen.contains(&(code.to_owned(), unit.to_owned(), label.clone())) {
                        rep.fail(c, &path, format!("missing row {code} {unit} {label}"));
                    }
                }
            }
        }
    }
    if !leaked.is_empty() {
        rep.fail(
            c,
            &path,
            format!("values outside the area (must be null + FORBIDDEN + NO_DATA): {leaked:?}"),
        );
    }
    if !hidden.is_empty() {
        rep.fail(c, &path, format!("values in the area refused: {hidden:?}"));
    }
    if !wrong.is_empty() {
        rep.fail(
            c,
            &path,
            format!("values differ from the oracle: {wrong:?}"),
        );
    }
}

pub(super) fn finish(what: &str, failures: Vec<String>) {
    if failures.is_empty() {
        return;
    }
    // A summary by path (ids and arguments left out), then every failure.
    let mut by_path: std::collections::BTreeMap<String, usize> = Default::default();
    for f in &failures {
        let path = f.split(" | ").nth(1).unwrap_or("?");
        let mut kind = String::new();
        let mut depth = 0;
        for ch in path.chars() {
            match ch {
                '(' | '{' => depth += 1,
                ')' | '}' => depth -= 1,
                _ if depth == 0 => kind.push(ch),
                _ => {}
            }
        }
        let kind = kind.split(" of ").next().unwrap_or("").trim().to_owned();
        *by_path.entry(kind).or_default() += 1;
    }
    let summary: Vec<String> = by_path.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    let shown: Vec<&String> = failures.iter().take(400).collect();
    panic!(
        "{what}: {} checks disagree with the oracle ({}):\n{}",
        failures.len(),
        summary.join(", "),
        shown
            .iter()
            .map(|s| format!("  - {s}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The fixture's hierarchy as the public catalogue gives it must be the oracle's table;
/// otherwise the failures below would be the oracle's fault.
async fn fixture_units_match(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    let q = "query($c: String!, $on: Date) { adminUnit(code: $c, on: $on) { code parentCode validFrom validTo } }";
    for v in TABLE.iter() {
        for day in [date("2024-05-01"), date("2025-08-01")] {
            if v.from <= day && day <= v.to {
                let r = app
                    .gql(&admin(), q, json!({ "c": v.code, "on": day.to_string() }))
                    .await;
                let got = &r.body["data"]["adminUnit"];
                if got["parentCode"].as_str() != v.parent {
                    out.push(format!("FIXTURE: unit {} on {day}: catalogue says parent {}, oracle table says {:?}", v.code, got["parentCode"], v.parent));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn every_read_path_answers_what_the_area_oracle_says() {
    let app = spawn_app().await;
    let fx = build(&app).await;
    let mut failures = fixture_units_match(&app).await;
    let callers = callers(&fx);
    let mut probes: Vec<(usize, Probe)> = Vec::new();
    for (ci, c) in callers.iter().enumerate() {
        probes.push((ci, Probe::Teams));
        probes.push((ci, Probe::TeamsNested));
        probes.push((ci, Probe::MemberCount));
        for a in [Some(true), Some(false), None] {
            probes.push((ci, Probe::Members(a)));
        }
        probes.push((ci, Probe::Activities));
        for t in 0..fx.teams.len() {
            probes.push((ci, Probe::ListsOfTeam(t)));
        }
        probes.push((ci, Probe::Audit));
        for t in 0..fx.teams.len() {
            probes.push((ci, Probe::TeamById(t)));
        }
        let ids = fx
            .teams
            .iter()
            .map(|t| t.id.clone())
            .chain(fx.members.iter().map(|m| m.id.clone()))
            .chain(fx.acts.iter().map(|a| a.id.clone()));
        for id in ids {
            probes.push((ci, Probe::Node(id)));
        }
        probes.push((ci, Probe::DataValues));
        probes.push((ci, Probe::PeriodLocks));
        probes.push((ci, Probe::Targets));
        for (a, act) in fx.acts.iter().enumerate() {
            // Every corrected activity, and two that never were.
            if !act.history.is_empty()
                || act.label.starts_with("A2(")
                || act.label.starts_with("R2(")
            {
                probes.push((ci, Probe::Versions(a)));
            }
        }
        let units: &[&'static str] =
            if matches!(c.role, Role::Admin | Role::UnitAdmin | Role::Viewer) {
                &AREAS
            } else {
                &AREAS[..1]
            };
        for unit in units {
            for g in ["YEAR", "MONTH"] {
                for b in ["SELF", "CHILDREN"] {
                    probes.push((ci, Probe::Indicators(unit, g, b)));
                }
            }
        }
    }
    let results: Vec<Vec<String>> = stream::iter(probes.iter())
        .map(|(ci, p)| probe(&app, &fx, &callers[*ci], p))
        .buffer_unordered(8)
        .collect()
        .await;
    failures.extend(results.into_iter().flatten());
    failures.sort();
    finish(
        &format!(
            "reads ({} requests, {} callers)",
            probes.len(),
            callers.len()
        ),
        failures,
    );
}
