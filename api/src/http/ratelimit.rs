//! Per-caller request limits: a token bucket per caller, charged by each request's cost.
//!
//! A bucket belongs to one caller: the token's subject and client id (`CNSCD_JWT_CLIENT_CLAIM`)
//! together, so that the users of one shared client (the dashboard's `azp`) do not spend each
//! other's points, and a user signed in through two clients has a bucket in each. Its bucket
//! holds at most one minute's worth of points (`CNSCD_RATE_LIMIT_PER_MINUTE`, or the caller's
//! role's limit from `CNSCD_RATE_LIMIT_PER_ROLE`) and refills continuously at that many points
//! a minute. Each GraphQL request costs its query cost as admission computed it (at least 1; a
//! request refused by admission costs 1). An empty bucket answers 429 with `Retry-After`.
//!
//! Where the buckets live: on PostgreSQL in the `rate_limit_bucket` table, so that every
//! replica draws on the same bucket; one statement per request (an `INSERT … ON CONFLICT DO
//! UPDATE` that refills, charges and says whether it could, atomically under the row lock),
//! with the database's clock so replicas' clocks do not matter. On SQLite (one process) in
//! memory. Buckets are keyed by a hash of the caller, so the table holds no identifiers.
use crate::auth::{Principal, Role};
use crate::error::ErrorCode;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Cost points a client may spend a minute unless configured: 10,000 a second, so a client
/// may run thirty of the costliest queries admission lets through (20,000 points) a minute,
/// or some 375 `indicators` queries of one code for a district's communes by month over a year
/// (about 1,600 points each).
pub const DEFAULT_PER_MINUTE: u32 = 600_000;

/// Per-role limits: `ROLE=N` pairs (`VIEWER=120000,ADMIN=0`); 0 is unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleLimits(pub Vec<(Role, u32)>);

impl std::str::FromStr for RoleLimits {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut limits = Vec::new();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (role, n) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not ROLE=N (e.g. VIEWER=120000)"))?;
            let role = Role::parse(role.trim()).ok_or_else(|| {
                format!(
                    "`{}` is not a role (one of {})",
                    role.trim(),
                    Role::ALL.map(Role::as_str).join(", ")
                )
            })?;
            let n = n
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("`{}` in `{pair}` is not a number of points", n.trim()))?;
            limits.retain(|(r, _)| *r != role);
            limits.push((role, n));
        }
        Ok(Self(limits))
    }
}

/// The limits in force.
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// Points a minute for a role without its own limit; 0 is unlimited.
    pub per_minute: u32,
    pub per_role: RoleLimits,
}

impl RateLimits {
    /// The caller's limit: the most generous of its roles' (0, unlimited, wins), and the role
    /// it comes from.
    fn of(&self, principal: &Principal) -> (u32, &'static str) {
        let mut best: Option<(u32, &'static str)> = None;
        for role in &principal.roles {
            let n = self
                .per_role
                .0
                .iter()
                .find(|(r, _)| r == role)
                .map_or(self.per_minute, |(_, n)| *n);
            let better = match best {
                None => true,
                Some((b, _)) => b != 0 && (n == 0 || n > b),
            };
            if better {
                best = Some((n, role.as_str()));
            }
        }
        best.unwrap_or((self.per_minute, "NONE"))
    }

    fn is_off(&self) -> bool {
        self.per_minute == 0 && self.per_role.0.iter().all(|(_, n)| *n == 0)
    }
}

/// A bucket's state after a charge, as reported in `extensions.cost`.
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    pub cost: u64,
    pub maximum: u64,
    pub available: u64,
    /// Points restored a second.
    pub restore_rate: f64,
}

/// What the limiter says about one request.
#[derive(Clone, Copy, Debug)]
pub enum Decision {
    /// No limit applies to the caller.
    Unlimited {
        cost: u64,
    },
    Allowed(Throttle),
    /// The bucket holds less than the cost; nothing was charged.
    Refused {
        throttle: Throttle,
        retry_after: u64,
        role: &'static str,
    },
    /// The cost is more than the bucket can ever hold.
    TooCostly {
        throttle: Throttle,
        role: &'static str,
    },
}

impl Decision {
    /// `extensions.cost`, the way GitHub and Shopify report it.
    pub fn report(&self) -> async_graphql::Value {
        let (cost, throttle) = match self {
            Self::Unlimited { cost } => (*cost, None),
            Self::Allowed(t)
            | Self::Refused { throttle: t, .. }
            | Self::TooCostly { throttle: t, .. } => (t.cost, Some(t)),
        };
        let mut report = serde_json::json!({ "requestedQueryCost": cost });
        if let Some(t) = throttle {
            report["throttleStatus"] = serde_json::json!({
                "maximumAvailable": t.maximum,
                "currentlyAvailable": t.available,
                "restoreRate": (t.restore_rate * 1000.0).round() / 1000.0,
            });
        }
        async_graphql::Value::from_json(report).unwrap_or_default()
    }

    /// The answer to a refused request (429 with `Retry-After`, or 400 for a query no bucket
    /// can pay for), or `None` when it may run.
    pub fn refusal(&self, media: &'static str) -> Option<Response> {
        let (status, code, message, retry_after) = match self {
            Self::Unlimited { .. } | Self::Allowed(_) => return None,
            Self::Refused {
                throttle: t,
                retry_after,
                ..
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!(
                    "rate limit: this request costs {} points and your client has {} left of \
                     {} a minute (restored at {:.1} a second); retry after {retry_after} s",
                    t.cost, t.available, t.maximum, t.restore_rate
                ),
                Some(*retry_after),
            ),
            Self::TooCostly { throttle: t, .. } => (
                StatusCode::BAD_REQUEST,
                ErrorCode::QueryTooComplex,
                format!(
                    "the query costs {} points, more than the {} a minute your client's rate \
                     limit allows: ask for less (fewer units, periods, codes or fields, smaller \
                     pages)",
                    t.cost, t.maximum
                ),
                None,
            ),
        };
        let body = serde_json::json!({
            "errors": [{ "message": message, "extensions": { "code": code.as_str() } }],
            "extensions": { "cost": self.report() },
        });
        let mut resp = (status, body.to_string()).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        Some(resp)
    }
}

/// The limiter every request passes; cheap to clone.
#[derive(Clone)]
pub struct RateLimiter(Option<Arc<Inner>>);

struct Inner {
    limits: RateLimits,
    store: Store,
}

enum Store {
    /// One process (SQLite): buckets in memory.
    Memory(Mutex<HashMap<[u8; 16], Bucket>>),
    /// Replicas on PostgreSQL: buckets in `rate_limit_bucket`.
    Database(DatabaseConnection),
}

struct Bucket {
    tokens: f64,
    at: Instant,
    capacity: f64,
    rate: f64,
}

/// Buckets kept in memory before full ones are dropped.
const MEMORY_BUCKETS: usize = 100_000;

/// Refill, charge and report in one statement. `$1` key, `$2` capacity, `$3` cost, `$4`
/// points a second. The refill is computed from the row's last update by the database's clock
/// (never negative: a transaction that started before a concurrent one committed sees an older
/// `now()`), capped at the capacity; the cost is taken only when it is there.
const CHARGE_SQL: &str = "\
INSERT INTO rate_limit_bucket AS b (key, tokens, granted, updated_at) \
VALUES ($1, $2 - $3, TRUE, now()) \
ON CONFLICT (key) DO UPDATE SET \
  tokens = CASE \
    WHEN LEAST($2, b.tokens + $4 * GREATEST(0, EXTRACT(EPOCH FROM now() - b.updated_at)::float8)) >= $3 \
    THEN LEAST($2, b.tokens + $4 * GREATEST(0, EXTRACT(EPOCH FROM now() - b.updated_at)::float8)) - $3 \
    ELSE LEAST($2, b.tokens + $4 * GREATEST(0, EXTRACT(EPOCH FROM now() - b.updated_at)::float8)) END, \
  granted = LEAST($2, b.tokens + $4 * GREATEST(0, EXTRACT(EPOCH FROM now() - b.updated_at)::float8)) >= $3, \
  updated_at = GREATEST(b.updated_at, now()) \
RETURNING tokens, granted";

impl RateLimiter {
    /// A limiter with these limits, its buckets in `db` when that is PostgreSQL.
    pub fn new(limits: RateLimits, db: &DatabaseConnection) -> Self {
        if limits.is_off() {
            return Self(None);
        }
        let store = match db.get_database_backend() {
            DbBackend::Postgres => Store::Database(db.clone()),
            _ => Store::Memory(Mutex::new(HashMap::new())),
        };
        Self(Some(Arc::new(Inner { limits, store })))
    }

    /// No limits at all.
    pub fn off() -> Self {
        Self(None)
    }

    /// Charges the caller's bucket `cost` points (at least 1) if it holds them.
    pub async fn charge(&self, principal: &Principal, cost: usize) -> Decision {
        let cost = cost.max(1) as u64;
        let Some(inner) = &self.0 else {
            return Decision::Unlimited { cost };
        };
        let (per_minute, role) = inner.limits.of(principal);
        if per_minute == 0 {
            return Decision::Unlimited { cost };
        }
        let capacity = f64::from(per_minute);
        let rate = capacity / 60.0;
        let mut throttle = Throttle {
            cost,
            maximum: u64::from(per_minute),
            available: 0,
            restore_rate: rate,
        };
        if cost > throttle.maximum {
            metrics::counter!("cnscd_rate_limited_total", "role" => role).increment(1);
            return Decision::TooCostly { throttle, role };
        }
        let key = bucket_key(principal);
        let (left, granted) = match &inner.store {
            Store::Memory(buckets) => charge_in_memory(buckets, key, capacity, rate, cost as f64),
            Store::Database(db) => {
                match charge_in_database(db, key, capacity, rate, cost as f64).await {
                    Ok(r) => r,
                    Err(e) => {
                        // The limit is not worth failing requests over: the request goes on (and
                        // will most likely meet the same database trouble and say so).
                        tracing::warn!(error = %e, "rate limit bucket not updated; request let through");
                        return Decision::Unlimited { cost };
                    }
                }
            }
        };
        throttle.available = left.max(0.0).floor() as u64;
        if granted {
            Decision::Allowed(throttle)
        } else {
            metrics::counter!("cnscd_rate_limited_total", "role" => role).increment(1);
            let missing = (cost as f64 - left).max(0.0);
            let retry_after = ((missing / rate).ceil() as u64).max(1);
            tracing::info!(
                role,
                cost,
                left = throttle.available,
                retry_after,
                "rate limited"
            );
            Decision::Refused {
                throttle,
                retry_after,
                role,
            }
        }
    }
}

/// The caller a bucket belongs to: subject and client together ([`Principal::identity`]),
/// hashed.
fn bucket_key(principal: &Principal) -> [u8; 16] {
    let digest = Sha256::digest(principal.identity().as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

fn charge_in_memory(
    buckets: &Mutex<HashMap<[u8; 16], Bucket>>,
    key: [u8; 16],
    capacity: f64,
    rate: f64,
    cost: f64,
) -> (f64, bool) {
    let now = Instant::now();
    let mut buckets = match buckets.lock() {
        Ok(b) => b,
        Err(poisoned) => poisoned.into_inner(),
    };
    if buckets.len() >= MEMORY_BUCKETS {
        // Full buckets are the same as none.
        buckets
            .retain(|_, b| b.tokens + b.rate * now.duration_since(b.at).as_secs_f64() < b.capacity);
    }
    let bucket = buckets.entry(key).or_insert(Bucket {
        tokens: capacity,
        at: now,
        capacity,
        rate,
    });
    let refilled =
        (bucket.tokens + rate * now.duration_since(bucket.at).as_secs_f64()).min(capacity);
    let granted = refilled >= cost;
    bucket.tokens = if granted { refilled - cost } else { refilled };
    bucket.at = now;
    bucket.capacity = capacity;
    bucket.rate = rate;
    (bucket.tokens, granted)
}

async fn charge_in_database(
    db: &DatabaseConnection,
    key: [u8; 16],
    capacity: f64,
    rate: f64,
    cost: f64,
) -> Result<(f64, bool), sea_orm::DbErr> {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            CHARGE_SQL,
            [hex.into(), capacity.into(), cost.into(), rate.into()],
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("rate_limit_bucket".into()))?;
    Ok((row.try_get("", "tokens")?, row.try_get("", "granted")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_limits_parse_and_say_what_is_wrong() {
        let l: RoleLimits = "VIEWER=1000, ADMIN=0".parse().unwrap_or_default();
        assert_eq!(l.0, vec![(Role::Viewer, 1000), (Role::Admin, 0)]);
        let err = "VIEWR=10".parse::<RoleLimits>().err().unwrap_or_default();
        assert!(err.contains("not a role"), "{err}");
        let err = "VIEWER=ten".parse::<RoleLimits>().err().unwrap_or_default();
        assert!(err.contains("not a number"), "{err}");
        let err = "VIEWER".parse::<RoleLimits>().err().unwrap_or_default();
        assert!(err.contains("ROLE=N"), "{err}");
    }

    #[test]
    fn the_most_generous_role_decides() {
        let limits = RateLimits {
            per_minute: 100,
            per_role: "VIEWER=50,ADMIN=0".parse().unwrap_or_default(),
        };
        let p = |roles: &[Role]| Principal {
            subject: "u".into(),
            roles: roles.to_vec(),
            role_names: vec![],
            units: vec![],
            teams: vec![],
            team_ids: vec![],
            client_id: None,
        };
        assert_eq!(limits.of(&p(&[Role::Viewer])), (50, "VIEWER"));
        assert_eq!(
            limits.of(&p(&[Role::Viewer, Role::Reporter])),
            (100, "REPORTER")
        );
        assert_eq!(limits.of(&p(&[Role::Admin, Role::Reporter])).0, 0);
    }

    #[test]
    fn a_bucket_refills_up_to_its_capacity() {
        let buckets = Mutex::new(HashMap::new());
        let key = [1; 16];
        assert_eq!(charge_in_memory(&buckets, key, 10.0, 0.0, 4.0), (6.0, true));
        assert_eq!(
            charge_in_memory(&buckets, key, 10.0, 0.0, 7.0),
            (6.0, false)
        );
        let (left, granted) = charge_in_memory(&buckets, key, 10.0, 1e9, 7.0);
        assert!(granted && (left - 3.0).abs() < 1e-9, "{left}");
    }
}
