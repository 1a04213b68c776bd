//! lockPeriod and unlockPeriod, callers in turn, allowed exactly where the oracle says.
use super::fixture::{LOCK, UNLOCK, mint_token};
use super::model::{LockOp, Role, Who, may_lock};
use super::reads::finish;
use super::writes::{H, O, Outcome, S, fresh_team, outcome, who_label};
use cnscd_tests::*;
use futures::stream::{self, StreamExt};
use serde_json::json;

// ------------------------------------------------------------------------------------------
// Locks: lockPeriod and unlockPeriod of a unit's month, on either side of 2025-07-01.

fn lock_ops() -> Vec<LockOp> {
    let mut out = Vec::new();
    for (unlock, before, after) in [(false, "2024-11", "2025-11"), (true, "2024-12", "2025-12")] {
        for (unit, month) in [
            (H, before),
            (H, after),
            ("05677", before),
            ("05692", before),
            ("05692", after),
            (S, before),
            (S, after),
            (O, before),
            (O, after),
            ("169", before),
            ("19", after),
        ] {
            out.push(LockOp {
                unit,
                month,
                unlock,
            });
        }
    }
    // The last month of a commune that ceases, the first of one that begins.
    out.extend([
        LockOp {
            unit: "05677",
            month: "2025-06",
            unlock: false,
        },
        LockOp {
            unit: "05710",
            month: "2025-07",
            unlock: false,
        },
        LockOp {
            unit: "164",
            month: "2025-05",
            unlock: true,
        },
        LockOp {
            unit: "05710",
            month: "2025-08",
            unlock: true,
        },
    ]);
    out
}

const Q_LOCKED: &str = "query($u: String, $m: String) { periodLocks(under: $u, from: $m, to: $m) { edges { node { unitCode month } } } }";

/// Whether `unit` itself has a lock of `month`, as ADMIN reads it.
async fn locked(app: &TestApp, unit: &str, month: &str) -> bool {
    let r = app
        .gql(&admin(), Q_LOCKED, json!({ "u": unit, "m": month }))
        .await;
    r.body["data"]["periodLocks"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.body))
        .iter()
        .any(|e| e["node"]["unitCode"] == unit && e["node"]["month"] == month)
}

async fn admin_lock(app: &TestApp, op: &LockOp, unlock: bool) {
    let (q, field) = if unlock {
        (UNLOCK, "unlockPeriod")
    } else {
        (LOCK, "lockPeriod")
    };
    let r = app
        .gql(
            &admin(),
            q,
            json!({ "i": { "unitCode": op.unit, "month": op.month, "reason": "kiểm thử" } }),
        )
        .await;
    assert!(
        r.body["data"][field]["lock"].is_object(),
        "{op:?}: {}",
        r.body
    );
}

/// Every caller of one operation, in turn (the lock is set again, or removed, after each
/// caller allowed to change it).
async fn run_lock_op(app: &TestApp, other: &str, op: &LockOp) -> Vec<String> {
    let mut failures = Vec::new();
    if op.unlock {
        admin_lock(app, op, false).await;
    }
    let mut whos = vec![Who::Admin];
    whos.extend(["169", "05677", "05692", "05677-01", "19", "05710", "164"].map(Who::UnitAdmin));
    whos.extend([
        Who::Viewer("19"),
        Who::Reporter("19"),
        Who::LeaderOfAnotherTeam,
    ]);
    for who in &whos {
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
            _ => mint_token(
                Role::TeamLeader,
                &[],
                &[other.to_owned()],
                "tl-other",
                "test-app",
            ),
        };
        let (q, field) = if op.unlock {
            (UNLOCK, "unlockPeriod")
        } else {
            (LOCK, "lockPeriod")
        };
        let r = app
            .gql(
                &token,
                q,
                json!({ "i": { "unitCode": op.unit, "month": op.month, "reason": "kiểm thử" } }),
            )
            .await;
        let expected = may_lock(who, op);
        let label = format!("{} | {op:?}", who_label(who));
        match (outcome(&r, field, "lock"), expected) {
            (Outcome::Allowed, true) => {
                // Back as it was for the next caller.
                admin_lock(app, op, !op.unlock).await;
                continue;
            }
            (Outcome::Refused, false) => {}
            (Outcome::Allowed, false) => {
                failures.push(format!(
                    "{label} | oracle: refused, service: ALLOWED (a write outside the area)"
                ));
                admin_lock(app, op, !op.unlock).await;
                continue;
            }
            (Outcome::Refused, true) => failures.push(format!(
                "{label} | oracle: allowed, service: refused {:?} {:?}",
                r.error_codes(),
                r.user_error_codes(field)
            )),
            (Outcome::RefusedAs(codes), _) => failures.push(format!(
                "{label} | oracle: {}, service: refused as {codes:?}: {}",
                if expected { "allowed" } else { "refused" },
                r.body
            )),
            (Outcome::Other(body), _) => failures.push(format!(
                "{label} | oracle: {}, service answered neither: {body}",
                if expected { "allowed" } else { "refused" }
            )),
        }
        // Refused: the lock is as it was.
        if locked(app, op.unit, op.month).await != op.unlock {
            failures.push(format!("{label} | refused, but the database changed"));
        }
    }
    failures
}

#[tokio::test]
async fn every_lock_and_unlock_is_allowed_exactly_where_the_area_oracle_says() {
    let app = spawn_app().await;
    let other = fresh_team(&app, S, "2022-05-01", 99).await;
    let ops = lock_ops();
    let results: Vec<Vec<String>> = stream::iter(ops.iter())
        .map(|op| run_lock_op(&app, &other, op))
        .buffer_unordered(4)
        .collect()
        .await;
    let mut failures: Vec<String> = results.into_iter().flatten().collect();
    failures.sort();
    finish(&format!("locks ({} operations)", ops.len()), failures);
}
