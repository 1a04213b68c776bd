//! `cnscd-bench crash`: exactly-once intake through crashes (quality.md, Reliability).
//!
//! Concurrent clients submit a fixed plan of activities, each with its own idempotency key, as
//! single `submitActivity` requests and `submitActivities` batches (partial and atomic), and some
//! requests twice from two clients at once (as a client does that retries while its first try
//! is still in flight). Meanwhile the server, a child process, is killed with SIGKILL after a
//! random share of the acknowledgements and started again on the same port, `--kills` times.
//! Some first attempts stop waiting for their answer after a few milliseconds and drop the
//! connection (a client's timeout). Every request without an acknowledgement (refused or reset
//! connection, timeout, 5xx, an internal error) is sent again, byte for byte, until it is acknowledged. Then every request is
//! sent once more, and the run proves:
//!
//! - every planned item acknowledged, with the same activity id in every answer for its key
//!   (retries, duplicate deliveries, the final replays), which answer as replays;
//! - one activity row holding the key (fields and outcomes as submitted) and one audit
//!   entry per key: none lost, none doubled, nothing else stored under the run's caller;
//! - the stored rollups (`unit_month_fact`) equal a recount from the raw rows, cell by cell;
//! - the indicators the server answers (`indicatorTable`, CNS01-CNS10 for the province and each
//!   of its communes over the months written to) equal the same numbers computed from the raw
//!   rows by SQL (the `indicators` benchmark's reference), on the server that lived through the
//!   last kill and again on one started cold.
//!
//! Exits non-zero when anything fails.
use super::{CODES, Client, Numbers, Reference};
use anyhow::{Context, bail};
use chrono::{Datelike, Months, NaiveDate};
use cnscd_api::auth::Claims;
use cnscd_api::db::query;
use cnscd_api::graphql::ids;
use sea_orm::{DbBackend, EntityTrait};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the command line asks for.
pub struct Options {
    pub database_url: String,
    pub server: PathBuf,
    pub clients: usize,
    pub items: usize,
    pub kills: usize,
    pub batch: usize,
    pub seed: Option<u64>,
    pub timeout: Duration,
}

/// Longest one request may take before it counts as unacknowledged.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest a started server may take to answer /readyz.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// The province whose teams are written to (the demo data set's).
const PROVINCE: &str = "19";
const KINDS: [&str; 6] = [
    "COMMUNITY_MEETING",
    "DOOR_TO_DOOR",
    "HELP_DESK",
    "TRAINING",
    "ONLINE_GROUP",
    "OTHER",
];
const SERVICES: [&str; 6] = [
    "VNEID",
    "ONLINE_PUBLIC_SERVICE",
    "UTILITY_BILL_PAYMENT",
    "TUITION_PAYMENT",
    "ECOMMERCE",
    "HOSPITAL_FEE_PAYMENT",
];
const TITLES: [&str; 4] = [
    "Hướng dẫn kích hoạt VNeID mức 2",
    "Họp tổ dân phố về dịch vụ công trực tuyến",
    "Hỗ trợ thanh toán tiền điện không dùng tiền mặt",
    "Tập huấn kỹ năng an toàn trên mạng",
];

/// splitmix64: a small seeded generator, so a run's plan can be drawn again from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// One planned activity.
struct Item {
    key: String,
    team_id: i64,
    kind: &'static str,
    occurred_on: NaiveDate,
    title: &'static str,
    participants: Option<i32>,
    households_reached: Option<i32>,
    outcomes: Vec<(&'static str, i32, Option<i32>)>,
}

impl Item {
    fn input(&self) -> serde_json::Value {
        let outcomes: Vec<_> = self
            .outcomes
            .iter()
            .map(|(service, people, households)| {
                serde_json::json!({ "service": service, "people": people, "households": households })
            })
            .collect();
        serde_json::json!({
            "idempotencyKey": self.key,
            "teamId": ids::encode(ids::TEAM, self.team_id).0,
            "kind": self.kind,
            "occurredOn": self.occurred_on.to_string(),
            "title": self.title,
            "participants": self.participants,
            "householdsReached": self.households_reached,
            "outcomes": outcomes,
        })
    }
}

/// One planned request: a single submission or a batch, its body fixed once (a retry sends
/// the same bytes).
struct Planned {
    items: Vec<usize>,
    batch: bool,
    body: String,
    /// Also sent by a second client at about the same time.
    duplicated: bool,
    /// The first attempt gives up waiting for the answer after this long and drops the
    /// connection (a client's timeout): the server may have stored the items or not.
    abandon_after: Option<Duration>,
}

const SINGLE: &str = "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { \
    replayed activity { id } userErrors { field code message } } }";
const BATCH: &str = "mutation($items: [SubmitActivityInput!]!, $atomic: Boolean) { \
    submitActivities(input: { items: $items, atomic: $atomic }) { \
    results { replayed activity { id } userErrors { field code message } } \
    userErrors { field code message } } }";

/// The months written to: the nine whole months before the current one (whole months, so
/// that every indicator of them can be compared, states included).
fn window(today: NaiveDate) -> anyhow::Result<(NaiveDate, NaiveDate)> {
    let this_month = today.with_day(1).context("today")?;
    let from = this_month
        .checked_sub_months(Months::new(9))
        .context("window start")?;
    let to = this_month.pred_opt().context("window end")?;
    Ok((from, to))
}

fn plan(
    rng: &mut Rng,
    run: &str,
    teams: &[i64],
    items: usize,
    batch: usize,
    (from, to): (NaiveDate, NaiveDate),
) -> (Vec<Item>, Vec<Planned>) {
    let days = (to - from).num_days() as usize + 1;
    let planned: Vec<Item> = (0..items)
        .map(|n| {
            let mut services = SERVICES.to_vec();
            rng.shuffle(&mut services);
            let outcomes = services[..rng.below(4)]
                .iter()
                .map(|s| {
                    let people = 1 + rng.below(40) as i32;
                    let households = rng
                        .chance(70)
                        .then(|| 1 + rng.below(people as usize) as i32);
                    (*s, people, households)
                })
                .collect();
            Item {
                key: format!("crash-{run}-{n}"),
                team_id: teams[rng.below(teams.len())],
                kind: KINDS[rng.below(KINDS.len())],
                occurred_on: from + chrono::Duration::days(rng.below(days) as i64),
                title: TITLES[rng.below(TITLES.len())],
                participants: rng.chance(85).then(|| rng.below(60) as i32),
                households_reached: rng.chance(75).then(|| rng.below(40) as i32),
                outcomes,
            }
        })
        .collect();
    // About half the items in batches, the rest one by one.
    let mut requests = Vec::new();
    let mut next = 0;
    while next < items {
        let take = if batch > 1 && rng.chance(4) {
            batch.min(items - next)
        } else {
            1
        };
        let members: Vec<usize> = (next..next + take).collect();
        next += take;
        let body = if take > 1 || rng.chance(5) {
            // Some one-item batches too.
            let inputs: Vec<_> = members.iter().map(|i| planned[*i].input()).collect();
            serde_json::json!({ "query": BATCH, "variables": { "items": inputs, "atomic": rng.chance(50) } })
        } else {
            serde_json::json!({ "query": SINGLE, "variables": { "i": planned[members[0]].input() } })
        };
        requests.push(Planned {
            batch: body["query"] == BATCH,
            items: members,
            body: body.to_string(),
            duplicated: rng.chance(6),
            abandon_after: rng
                .chance(5)
                .then(|| Duration::from_micros(rng.below(50_000) as u64)),
        });
    }
    rng.shuffle(&mut requests);
    (planned, requests)
}

/// Everything the clients saw.
#[derive(Default)]
struct Seen {
    /// Activity id (global) per item, from its first acknowledgement.
    ids: HashMap<usize, String>,
    /// Answers per item (first acknowledgements, duplicate deliveries, final replays).
    answers: usize,
    /// Answers per item that said the item was newly stored (not a replay).
    fresh: HashMap<usize, usize>,
    /// Unacknowledged attempts by cause.
    retries: BTreeMap<&'static str, usize>,
    /// Items first acknowledged by a retried request, as replays: stored before the crash,
    /// their acknowledgement lost with it.
    replayed_after_retry: usize,
    /// Items first acknowledged by a retried request as newly stored: the crash came before
    /// their transaction committed.
    stored_by_retry: usize,
    /// Requests that needed more than one attempt.
    retried_requests: usize,
    /// Problems found while the run went on.
    problems: Vec<String>,
}

struct Shared {
    seen: Mutex<Seen>,
    /// Items acknowledged at least once.
    acknowledged: AtomicUsize,
    /// Requests sent and not yet answered.
    in_flight: AtomicUsize,
    /// Clients done with their requests.
    finished: AtomicUsize,
}

impl Shared {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one answer came to.
enum Answer {
    /// (activity id, replayed) per item, in the request's order.
    Acknowledged(Vec<(String, bool)>),
    /// Not acknowledged: send it again.
    Retry(&'static str),
    /// A wrong answer: the run fails.
    Wrong(String),
}

fn classify(status: u16, text: &str, items: usize) -> Answer {
    let short = || text.chars().take(400).collect::<String>();
    if status >= 500 || status == 408 || status == 429 {
        return Answer::Retry("HTTP 5xx");
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return Answer::Wrong(format!("HTTP {status}, not JSON: {}", short()));
    };
    if let Some(errors) = json["errors"].as_array().filter(|e| !e.is_empty()) {
        // An internal error (the database went away, a transaction cut short) is a fault the
        // client retries; anything else is a wrong answer to a valid request.
        if errors.iter().all(|e| e["extensions"]["code"] == "INTERNAL") {
            return Answer::Retry("INTERNAL error");
        }
        return Answer::Wrong(format!("HTTP {status}: {}", short()));
    }
    if status != 200 {
        return Answer::Wrong(format!("HTTP {status}: {}", short()));
    }
    let data = &json["data"];
    let results: Vec<&serde_json::Value> = if let Some(batch) = data.get("submitActivities") {
        if batch["userErrors"].as_array().is_none_or(|e| !e.is_empty()) {
            return Answer::Wrong(format!("batch refused: {}", short()));
        }
        batch["results"].as_array().into_iter().flatten().collect()
    } else {
        vec![&data["submitActivity"]]
    };
    if results.len() != items {
        return Answer::Wrong(format!(
            "{} results for {items} items: {}",
            results.len(),
            short()
        ));
    }
    let mut out = Vec::with_capacity(items);
    for r in results {
        match (r["activity"]["id"].as_str(), r["replayed"].as_bool()) {
            (Some(id), Some(replayed)) if r["userErrors"].as_array().is_some_and(Vec::is_empty) => {
                out.push((id.to_owned(), replayed))
            }
            _ => return Answer::Wrong(format!("an item was not stored: {r}")),
        }
    }
    Answer::Acknowledged(out)
}

/// Sends `request` until it is acknowledged (or the deadline passes), and records what the
/// answer says of each item; `final_pass`: every item must answer as a replay.
async fn deliver(
    addr: SocketAddr,
    token: &str,
    conn: &mut Option<Client>,
    request: &Planned,
    shared: &Shared,
    deadline: Instant,
    final_pass: bool,
) -> anyhow::Result<()> {
    let mut attempts = 0u32;
    loop {
        if Instant::now() > deadline {
            bail!("the time limit passed with a request still unacknowledged");
        }
        let pause = Duration::from_millis((5u64 << attempts.min(5)).min(150));
        let client = match conn {
            Some(c) => c,
            None => match tokio::time::timeout(Duration::from_secs(2), Client::connect(addr)).await
            {
                Ok(Ok(c)) => conn.insert(c),
                _ => {
                    // The server is down: not an attempt, the request was never sent.
                    tokio::time::sleep(pause).await;
                    attempts += 1;
                    continue;
                }
            },
        };
        let (wait, cause) = match request.abandon_after {
            Some(d) if attempts == 0 && !final_pass => (d, "answer not awaited (client timeout)"),
            _ => (REQUEST_TIMEOUT, "timeout"),
        };
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let answer = tokio::time::timeout(wait, client.post(token, &request.body)).await;
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        let answer = match answer {
            Err(_) => Answer::Retry(cause),
            Ok(Err(_)) => Answer::Retry("connection reset or closed"),
            Ok(Ok((status, text))) => classify(status, &text, request.items.len()),
        };
        let sent_before = attempts > 0;
        match answer {
            Answer::Acknowledged(results) => {
                let mut seen = shared.seen();
                if sent_before {
                    seen.retried_requests += 1;
                }
                for (&item, (id, replayed)) in request.items.iter().zip(results) {
                    seen.answers += 1;
                    match seen.ids.get(&item) {
                        Some(known) if *known != id => {
                            let p = format!(
                                "item {item}: activity {id} in one answer, {known} in another"
                            );
                            seen.problems.push(p);
                        }
                        Some(_) => {}
                        None => {
                            if final_pass {
                                seen.problems.push(format!(
                                    "item {item}: first acknowledged in the final pass"
                                ));
                            }
                            if sent_before && replayed {
                                seen.replayed_after_retry += 1;
                            } else if sent_before {
                                seen.stored_by_retry += 1;
                            } else if replayed && !request.duplicated {
                                seen.problems.push(format!(
                                    "item {item}: answered as a replay the first time it was sent"
                                ));
                            }
                            seen.ids.insert(item, id);
                            shared.acknowledged.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    if !replayed {
                        // At most one answer says "newly stored" (whichever of two duplicate
                        // deliveries is recorded first).
                        let fresh = seen.fresh.entry(item).or_default();
                        *fresh += 1;
                        if *fresh == 2 {
                            seen.problems
                                .push(format!("item {item}: answered as newly stored twice"));
                        }
                    }
                    if final_pass && !replayed {
                        seen.problems
                            .push(format!("item {item}: not a replay in the final pass"));
                    }
                }
                return Ok(());
            }
            Answer::Retry(cause) => {
                *shared.seen().retries.entry(cause).or_default() += 1;
                *conn = None;
                attempts += 1;
                tokio::time::sleep(pause).await;
            }
            Answer::Wrong(message) => bail!("wrong answer: {message}"),
        }
    }
}

/// The server under test, a child process.
struct Server {
    path: PathBuf,
    url: String,
    addr: SocketAddr,
    secret: String,
    child: Option<std::process::Child>,
}

impl Server {
    async fn start(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let mut command = std::process::Command::new(&self.path);
        command
            .arg("serve")
            .env("CNSCD_DATABASE_URL", &self.url)
            .env("CNSCD_LISTEN", self.addr.to_string())
            .env("CNSCD_JWT_SECRET", &self.secret)
            .env("CNSCD_RATE_LIMIT_PER_MINUTE", "0")
            // The run's webhook receiver listens on loopback.
            .env("CNSCD_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("CNSCD_WEBHOOK_FIRST_RETRY", "100ms")
            .env("CNSCD_LOG", "warn")
            .stdin(std::process::Stdio::null());
        for other in [
            "CNSCD_JWT_PUBLIC_KEYS",
            "CNSCD_JWKS_URL",
            "CNSCD_JWT_ISSUER",
            "CNSCD_JWT_AUDIENCE",
            "CNSCD_RATE_LIMIT_PER_ROLE",
        ] {
            command.env_remove(other);
        }
        let child = self.child.insert(
            command
                .spawn()
                .with_context(|| format!("Failed to start {}", self.path.display()))?,
        );
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("the server exited while starting: {status}");
            }
            if ready(self.addr).await {
                break;
            }
            if started.elapsed() > START_TIMEOUT {
                bail!("the server was not ready within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(started.elapsed())
    }

    /// SIGKILL (what `Child::kill` sends on Unix), and wait for the process to be gone.
    async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            tokio::task::spawn_blocking(move || child.wait()).await??;
        }
        Ok(())
    }
}

impl Drop for Server {
    /// A run that stops on an error leaves no server behind.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether GET /readyz answers 200.
async fn ready(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await?;
        anyhow::Ok(head.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}

fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// One check's line in the summary.
struct Verdict {
    lines: Vec<(bool, String)>,
}

impl Verdict {
    fn check(&mut self, ok: bool, what: String, problems: &[String]) {
        println!("{} {what}", if ok { "PASS" } else { "FAIL" });
        for p in problems.iter().take(10) {
            println!("       {p}");
        }
        if problems.len() > 10 {
            println!("       ... and {} more", problems.len() - 10);
        }
        self.lines.push((ok, what));
    }
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = started + o.timeout;
    let db = cnscd_api::startup::prepare_database(&o.database_url).await?;
    let backend = db.get_database_backend();
    let backend_name = match backend {
        DbBackend::Postgres => "PostgreSQL",
        _ => "SQLite",
    };
    let mut seeded = None;
    if cnscd_api::db::count(&db, "SELECT COUNT(*) AS n FROM team", vec![]).await? == 0 {
        let t = Instant::now();
        let mut seed = std::process::Command::new(&o.server);
        seed.args(["seed", "demo", "--database-url", &o.database_url])
            .env("CNSCD_LOG", "warn")
            .stdout(std::process::Stdio::null());
        let status = tokio::task::spawn_blocking(move || seed.status())
            .await?
            .with_context(|| format!("Failed to run {} seed demo", o.server.display()))?;
        if !status.success() {
            bail!("`{} seed demo` failed: {status}", o.server.display());
        }
        seeded = Some(t.elapsed());
    }

    // Teams of the province that ran through the whole window.
    let today = cnscd_api::units::service::today();
    let (from, to) = window(today)?;
    let in_province: BTreeSet<String> = cnscd_api::units::service::subtree_on(&db, PROVINCE, to)
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?
        .into_iter()
        .map(|(code, _)| code)
        .collect();
    let teams: Vec<i64> = cnscd_entity::team::Entity::find()
        .all(&db)
        .await?
        .into_iter()
        .filter(|t| t.founded_on < from && t.dissolved_on.is_none_or(|d| d > to))
        .filter(|t| in_province.contains(&t.unit_code))
        .map(|t| t.id)
        .collect();
    if teams.is_empty() {
        bail!("no team of province {PROVINCE} ran from {from} to {to}: load `cnscd seed demo`");
    }

    let seed = o
        .seed
        .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let mut rng = Rng(seed);
    // Keys of their own even when a seed is given again on the same database.
    let run = format!(
        "{seed:016x}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let (items, requests) = plan(&mut rng, &run, &teams, o.items, o.batch, (from, to));
    let requests: Vec<Arc<Planned>> = requests.into_iter().map(Arc::new).collect();
    let batches = requests.iter().filter(|r| r.batch).count();
    let in_batches: usize = requests
        .iter()
        .filter(|r| r.batch)
        .map(|r| r.items.len())
        .sum();
    let duplicated = requests.iter().filter(|r| r.duplicated).count();
    let abandoned = requests
        .iter()
        .filter(|r| r.abandon_after.is_some())
        .count();

    // One caller for the whole run: idempotency keys belong to the caller.
    let secret = format!("cnscd-crash-{run}-{}", uuid::Uuid::new_v4().simple());
    let subject = format!("crash-{run}");
    let client_id = "cnscd-bench-crash";
    let token = cnscd_api::auth::mint(
        &secret,
        &Claims {
            sub: subject.clone(),
            exp: chrono::Utc::now().timestamp() + 24 * 3600,
            roles: vec!["REPORTER".into()],
            units: vec![PROVINCE.into()],
            client_id: Some(client_id.into()),
            ..Claims::default()
        },
    )?;

    println!(
        "crash: {backend_name}, {} items ({in_batches} in {batches} submitActivities, {} single \
         submitActivity; {duplicated} requests sent by two clients at once, {abandoned} first \
         sent by a client that drops the connection within 50 ms) from {} clients over {} teams, \
         {from} to {to}; {} kills; seed {seed}",
        o.items,
        o.items - in_batches,
        o.clients,
        teams.len(),
        o.kills
    );
    if let Some(t) = seeded {
        println!("  demo data loaded in {:.1} s", t.as_secs_f64());
    }

    let mut server = Server {
        path: o.server.clone(),
        url: o.database_url.clone(),
        addr: free_port()?,
        secret,
        child: None,
    };
    let first_start = server.start().await?;
    println!(
        "  server started in {:.2} s on {}",
        first_start.as_secs_f64(),
        server.addr
    );
    // A webhook for the province's activities: every one stored through the kills must reach
    // it (at least once, signed, one webhook-id each).
    let admin = cnscd_api::auth::mint(
        &server.secret,
        &Claims {
            sub: format!("{subject}-check"),
            exp: chrono::Utc::now().timestamp() + 24 * 3600,
            roles: vec!["ADMIN".into()],
            ..Claims::default()
        },
    )?;
    let receiver = crate::receiver::Receiver::start().await?;
    let webhook_secret =
        crate::receiver::register(server.addr, &admin, &receiver.url, PROVINCE).await?;

    // Each request goes to one client; a duplicated one also to the next client, at about the
    // same place in its queue.
    let mut queues: Vec<Vec<Arc<Planned>>> = vec![Vec::new(); o.clients];
    for (n, r) in requests.iter().enumerate() {
        queues[n % o.clients].push(r.clone());
        if r.duplicated && o.clients > 1 {
            queues[(n + 1) % o.clients].push(r.clone());
        }
    }
    let shared = Arc::new(Shared {
        seen: Mutex::new(Seen::default()),
        acknowledged: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
    });
    let intake_started = Instant::now();
    let mut tasks = Vec::new();
    for queue in queues {
        let (shared, token, addr) = (shared.clone(), token.clone(), server.addr);
        tasks.push(tokio::spawn(async move {
            let mut conn = None;
            let mut result = Ok(());
            for r in &queue {
                result = deliver(addr, &token, &mut conn, r, &shared, deadline, false).await;
                if result.is_err() {
                    break;
                }
            }
            shared.finished.fetch_add(1, Ordering::SeqCst);
            result
        }));
    }

    // The kills: after random shares of the acknowledgements, between 15% and 85%.
    let mut thresholds: Vec<usize> = (0..o.kills)
        .map(|_| o.items * 15 / 100 + rng.below(o.items * 70 / 100 + 1))
        .collect();
    thresholds.sort_unstable();
    let mut kills = Vec::new();
    for t in thresholds {
        while shared.acknowledged.load(Ordering::SeqCst) < t
            && shared.finished.load(Ordering::SeqCst) < o.clients
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if shared.finished.load(Ordering::SeqCst) == o.clients {
            break;
        }
        let acked = shared.acknowledged.load(Ordering::SeqCst);
        let in_flight = shared.in_flight.load(Ordering::SeqCst);
        server.kill().await?;
        let back = server.start().await?;
        println!(
            "  SIGKILL at {acked}/{} items acknowledged, {in_flight} requests in flight; \
             restarted, ready in {:.2} s",
            o.items,
            back.as_secs_f64()
        );
        kills.push(acked);
    }
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await? {
            failures.push(format!("{e:#}"));
        }
    }
    let intake_time = intake_started.elapsed();
    if !failures.is_empty() {
        server.kill().await?;
        for f in &failures {
            println!("  client: {f}");
        }
        println!("RESULT: FAIL (a client gave up)");
        bail!("{}", failures[0]);
    }

    // Every request once more, from as many clients: each item must come back as a replay of
    // the same activity.
    let final_started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..o.clients {
        let queue: Vec<Arc<Planned>> = requests
            .iter()
            .skip(c)
            .step_by(o.clients)
            .cloned()
            .collect();
        let (shared, token, addr) = (shared.clone(), token.clone(), server.addr);
        tasks.push(tokio::spawn(async move {
            let mut conn = None;
            for r in &queue {
                deliver(addr, &token, &mut conn, r, &shared, deadline, true).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let final_time = final_started.elapsed();

    let seen = std::mem::take(&mut *shared.seen());
    let retries: usize = seen.retries.values().sum();
    println!(
        "  intake {:.2} s ({:.0} items/s through {} kills), final replay of every request {:.2} s",
        intake_time.as_secs_f64(),
        o.items as f64 / intake_time.as_secs_f64(),
        kills.len(),
        final_time.as_secs_f64()
    );
    println!(
        "  {} requests, {retries} unacknowledged attempts retried ({}); {} requests needed a \
         retry; their items: {} had been stored before the crash or drop (answered as replays), {} \
         were stored by the retry",
        requests.len() + duplicated,
        seen.retries
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        seen.retried_requests,
        seen.replayed_after_retry,
        seen.stored_by_retry
    );

    let mut verdict = Verdict { lines: Vec::new() };
    verdict.check(
        kills.len() == o.kills,
        format!("server killed {} times of {} asked", kills.len(), o.kills),
        &[],
    );
    verdict.check(
        seen.ids.len() == o.items,
        format!(
            "every planned item acknowledged ({}/{})",
            seen.ids.len(),
            o.items
        ),
        &[],
    );
    verdict.check(
        seen.problems.is_empty(),
        format!(
            "every answer for a key names the same activity and answers a repeat as a replay \
             ({} answers for {} keys)",
            seen.answers, o.items
        ),
        &seen.problems,
    );

    // The rows.
    let mut acked: HashMap<i64, usize> = HashMap::new();
    let mut problems = Vec::new();
    for (item, id) in &seen.ids {
        match ids::decode_as(ids::ACTIVITY, id) {
            Ok(n) => {
                if acked.insert(n, *item).is_some() {
                    problems.push(format!("activity {n} acknowledged for two keys"));
                }
            }
            Err(_) => problems.push(format!("item {item}: `{id}` is not an activity id")),
        }
    }
    let scope = cnscd_api::auth::identity(&subject, Some(client_id));
    // Each key is held by one activity (the acknowledged one), and no other record holds it.
    let held = query(
        &db,
        "SELECT idempotency_key, id FROM activity WHERE submitter = ? \
         AND idempotency_key IS NOT NULL",
        vec![scope.clone().into()],
    )
    .await?;
    let records = query(
        &db,
        "SELECT idempotency_key FROM idempotency_record WHERE scope = ?",
        vec![scope.clone().into()],
    )
    .await?;
    for r in &records {
        let key: String = r.try_get("", "idempotency_key")?;
        problems.push(format!("an idempotency record also holds {key}"));
    }
    let by_key: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.key.as_str(), i))
        .collect();
    let mut keys_seen = BTreeSet::new();
    for r in &held {
        let key: String = r.try_get("", "idempotency_key")?;
        let id: i64 = r.try_get("", "id")?;
        let Some(&item) = by_key.get(key.as_str()) else {
            problems.push(format!("activity {id} holds a key not in the plan: {key}"));
            continue;
        };
        if !keys_seen.insert(item) {
            problems.push(format!("two activities hold {key}"));
        }
        let expected = seen
            .ids
            .get(&item)
            .and_then(|id| ids::decode_as(ids::ACTIVITY, id).ok());
        if Some(id) != expected {
            problems.push(format!(
                "{key}: held by activity {id}, acknowledged {expected:?}"
            ));
        }
    }
    verdict.check(
        held.len() == o.items && problems.is_empty(),
        format!(
            "each key held by one activity, the acknowledged one ({} keys held, {} planned)",
            held.len(),
            o.items
        ),
        &std::mem::take(&mut problems),
    );

    let rows = query(
        &db,
        "SELECT id, team_id, unit_code, kind_code, occurred_on, title, participants, \
         households_reached, status FROM activity WHERE submitter = ?",
        vec![scope.clone().into()],
    )
    .await?;
    let mut outcome_rows: HashMap<i64, Vec<(String, i32, Option<i32>)>> = HashMap::new();
    let outcomes = query(
        &db,
        "SELECT o.activity_id, o.service_code, o.people, o.households FROM activity_outcome o \
         JOIN activity a ON a.id = o.activity_id WHERE a.submitter = ?",
        vec![scope.clone().into()],
    )
    .await?;
    for r in &outcomes {
        outcome_rows
            .entry(r.try_get("", "activity_id")?)
            .or_default()
            .push((
                r.try_get("", "service_code")?,
                r.try_get("", "people")?,
                r.try_get("", "households")?,
            ));
    }
    let mut rows_seen = BTreeSet::new();
    for r in &rows {
        let id: i64 = r.try_get("", "id")?;
        let Some(&item) = acked.get(&id) else {
            problems.push(format!(
                "activity {id} was stored but acknowledged for no key"
            ));
            continue;
        };
        rows_seen.insert(id);
        let it = &items[item];
        let status: String = r.try_get("", "status")?;
        let stored = (
            r.try_get::<i64>("", "team_id")?,
            r.try_get::<String>("", "kind_code")?,
            r.try_get::<NaiveDate>("", "occurred_on")?,
            r.try_get::<String>("", "title")?,
            r.try_get::<Option<i32>>("", "participants")?,
            r.try_get::<Option<i32>>("", "households_reached")?,
        );
        let planned = (
            it.team_id,
            it.kind.to_owned(),
            it.occurred_on,
            it.title.to_owned(),
            it.participants,
            it.households_reached,
        );
        if stored != planned || status != "RECORDED" {
            problems.push(format!(
                "{}: stored {stored:?} ({status}), submitted {planned:?}",
                it.key
            ));
        }
        let mut got = outcome_rows.remove(&id).unwrap_or_default();
        got.sort();
        let mut want: Vec<(String, i32, Option<i32>)> = it
            .outcomes
            .iter()
            .map(|(s, p, h)| ((*s).to_owned(), *p, *h))
            .collect();
        want.sort();
        if got != want {
            problems.push(format!(
                "{}: outcomes stored {got:?}, submitted {want:?}",
                it.key
            ));
        }
    }
    for id in acked.keys() {
        if !rows_seen.contains(id) {
            problems.push(format!("activity {id} was acknowledged but is not stored"));
        }
    }
    let planned_outcomes: usize = items.iter().map(|i| i.outcomes.len()).sum();
    verdict.check(
        rows.len() == o.items && problems.is_empty() && outcomes.len() == planned_outcomes,
        format!(
            "one activity per key, as submitted: {} rows for {} keys, {} outcome rows for {} \
             submitted (none lost, none doubled, none extra)",
            rows.len(),
            o.items,
            outcomes.len(),
            planned_outcomes
        ),
        &std::mem::take(&mut problems),
    );

    let audited = query(
        &db,
        "SELECT entity_id FROM audit_entry WHERE subject = ? AND client_id = ? \
         AND action = 'submitActivity'",
        vec![subject.clone().into(), client_id.into()],
    )
    .await?;
    let audited_ids: BTreeSet<String> = audited
        .iter()
        .map(|r| r.try_get::<String>("", "entity_id"))
        .collect::<Result<_, _>>()?;
    let acked_ids: BTreeSet<String> = seen.ids.values().cloned().collect();
    verdict.check(
        audited.len() == o.items && audited_ids == acked_ids,
        format!(
            "one audit entry per activity ({} entries for {} activities)",
            audited.len(),
            o.items
        ),
        &[],
    );

    // Every activity stored reached the webhook, though the server was killed between commits
    // and deliveries.
    let waited = Instant::now();
    let report = loop {
        let report = crate::receiver::report(&receiver.got(), &webhook_secret, &acked_ids);
        if report.missing.is_empty() || waited.elapsed() > Duration::from_secs(60) {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    verdict.check(
        report.missing.is_empty() && report.unsigned == 0 && report.split.is_empty(),
        format!(
            "every activity reached the webhook through the kills: {} deliveries for {} \
             activities, {} missing, {} repeated (at least once), {} with a bad signature, {} \
             under two webhook-ids",
            report.received,
            acked_ids.len(),
            report.missing.len(),
            report.repeats,
            report.unsigned,
            report.split.len()
        ),
        &[report.missing.clone(), report.split.clone()].concat(),
    );

    // The rollups against a recount from the raw rows.
    let (counted, expected) = cnscd_api::activities::rollup::recount(&db).await?;
    let stored = cnscd_api::activities::rollup::stored(&db).await?;
    let cells: BTreeSet<_> = expected.keys().chain(stored.keys()).collect();
    for cell in &cells {
        let want = expected.get(*cell).copied().unwrap_or(0.0);
        let got = stored.get(*cell).copied().unwrap_or(0.0);
        if (want - got).abs() > 1e-6 {
            problems.push(format!("{cell:?}: stored {got}, recount {want}"));
        }
    }
    verdict.check(
        problems.is_empty(),
        format!(
            "rollups equal a recount from the raw rows: {} cells from {counted} activities, {} \
             differ",
            cells.len(),
            problems.len()
        ),
        &std::mem::take(&mut problems),
    );

    // The indicators the server answers against the same numbers from the raw rows.
    let reference = reference_numbers(&db, backend, from, to).await?;
    for when in [
        "the server that lived through the kills",
        "a server started cold",
    ] {
        if when.starts_with("a server started cold") {
            server.kill().await?;
            server.start().await?;
        }
        let answered = served_numbers(server.addr, &admin, from, to).await?;
        let (compared, differ) = compare(&reference, &answered);
        verdict.check(
            differ.is_empty() && compared > 0,
            format!(
                "indicators answered by {when} equal the recount from the raw rows: CNS01-CNS10 \
                 for province {PROVINCE} and its communes, {compared} values, {} differ",
                differ.len()
            ),
            &differ,
        );
    }
    server.kill().await?;

    let failed = verdict.lines.iter().filter(|(ok, _)| !ok).count();
    println!(
        "RESULT: {} ({} checks, {failed} failed; {} items, {} kills, {:.1} s in all)",
        if failed == 0 { "PASS" } else { "FAIL" },
        verdict.lines.len(),
        o.items,
        kills.len(),
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        bail!("{failed} checks failed");
    }
    Ok(())
}

/// The months of the window, by year: (year, first day, last day).
fn years(from: NaiveDate, to: NaiveDate) -> Vec<(i32, NaiveDate, NaiveDate)> {
    (from.year()..=to.year())
        .filter_map(|y| {
            let start = NaiveDate::from_ymd_opt(y, 1, 1)?.max(from);
            let end = NaiveDate::from_ymd_opt(y, 12, 31)?.min(to);
            Some((y, start, end))
        })
        .collect()
}

/// Month labels from `from` to `to`.
fn months(from: NaiveDate, to: NaiveDate) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut d = from;
    while d <= to {
        out.insert(format!("{:04}-{:02}", d.year(), d.month()));
        d = match d.checked_add_months(Months::new(1)) {
            Some(n) => n,
            None => break,
        };
    }
    out
}

/// CNS01-CNS10 for the province and its communes over the window's months, from the raw rows
/// (the `indicators` benchmark's grouped statements).
async fn reference_numbers(
    db: &sea_orm::DatabaseConnection,
    backend: DbBackend,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<Numbers> {
    let wanted = months(from, to);
    let mut out = Numbers::new();
    for (year, _, end) in years(from, to) {
        let mut units: Vec<String> = communes(db, end).await?;
        units.push(PROVINCE.to_owned());
        let reference = Reference::new(backend, &units, year)?;
        for (key, v) in reference.run(db, &units, year).await? {
            if wanted.contains(&key.2) {
                out.insert(key, v);
            }
        }
    }
    Ok(out)
}

async fn communes(db: &sea_orm::DatabaseConnection, on: NaiveDate) -> anyhow::Result<Vec<String>> {
    Ok(cnscd_api::units::service::subtree_on(db, PROVINCE, on)
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?
        .into_iter()
        .filter(|(_, level)| *level == cnscd_entity::codes::UnitLevel::Commune)
        .map(|(code, _)| code)
        .collect())
}

/// CNS01-CNS10 as the server answers them (`indicatorTable`): the province itself, and its
/// communes, month by month over the window.
async fn served_numbers(
    addr: SocketAddr,
    token: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<Numbers> {
    let mut client = Client::connect(addr).await?;
    let mut out = Numbers::new();
    for (_, start, end) in years(from, to) {
        for breakdown in ["breakdown: SELF", "breakdown: LEVEL, level: COMMUNE"] {
            let body = serde_json::json!({ "query": format!(
                "{{ indicatorTable(codes: {CODES:?}, unitCodes: [\"{PROVINCE}\"], from: \"{start}\", \
                 to: \"{end}\", granularity: MONTH, {breakdown}) {{ codes units periods \
                 numerators denominators }} }}"
            ) })
            .to_string();
            let (status, text) = client.post(token, &body).await?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("indicatorTable: HTTP {status}"))?;
            let table = &json["data"]["indicatorTable"];
            if status != 200 || table.is_null() {
                bail!(
                    "indicatorTable failed: HTTP {status} {}",
                    text.chars().take(400).collect::<String>()
                );
            }
            let strings = |f: &str| -> Vec<String> {
                table[f]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_str().unwrap_or_default().to_owned())
                    .collect()
            };
            let floats = |f: &str| -> Vec<Option<f64>> {
                table[f]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(serde_json::Value::as_f64)
                    .collect()
            };
            let (codes, units, periods) = (strings("codes"), strings("units"), strings("periods"));
            let (nums, dens) = (floats("numerators"), floats("denominators"));
            let (u, p) = (units.len(), periods.len());
            if nums.len() != codes.len() * u * p || dens.len() != nums.len() {
                bail!("indicatorTable: the lists do not match their dimensions");
            }
            for i in 0..nums.len() {
                out.insert(
                    (
                        codes[i / (u * p)].clone(),
                        units[(i / p) % u].clone(),
                        periods[i % p].clone(),
                    ),
                    (nums[i], dens[i]),
                );
            }
        }
    }
    Ok(out)
}

/// How many values were compared, and the ones that differ.
fn compare(reference: &Numbers, answered: &Numbers) -> (usize, Vec<String>) {
    let same = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-6,
        (None, None) => true,
        _ => false,
    };
    let mut differ = Vec::new();
    let mut compared = 0;
    for (key, want) in reference {
        let got = answered.get(key).copied();
        compared += 2;
        match got {
            Some(got) if same(got.0, want.0) && same(got.1, want.1) => {}
            _ => differ.push(format!("{key:?}: server {got:?}, raw rows {want:?}")),
        }
    }
    (compared, differ)
}

/// The path of the `cnscd` binary next to this one, when `--server` is not given.
pub fn default_server() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("cnscd")))
        .filter(|p| Path::new(p).exists())
        .unwrap_or_else(|| PathBuf::from("target/release/cnscd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_as_acknowledged_retried_or_wrong() {
        let single = r#"{"data":{"submitActivity":{"replayed":true,"activity":{"id":"QWN0aXZpdHk6Nw"},"userErrors":[]}}}"#;
        assert!(
            matches!(classify(200, single, 1), Answer::Acknowledged(v) if v == [("QWN0aXZpdHk6Nw".to_owned(), true)])
        );
        let batch = r#"{"data":{"submitActivities":{"userErrors":[],"results":[
            {"replayed":false,"activity":{"id":"a"},"userErrors":[]},
            {"replayed":true,"activity":{"id":"b"},"userErrors":[]}]}}}"#;
        assert!(matches!(classify(200, batch, 2), Answer::Acknowledged(v) if v.len() == 2));
        // One result short, an item refused, a refused batch: wrong answers, never retried.
        assert!(matches!(classify(200, batch, 3), Answer::Wrong(_)));
        let refused = r#"{"data":{"submitActivity":{"replayed":false,"activity":null,"userErrors":[{"code":"VALIDATION","message":"x"}]}}}"#;
        assert!(matches!(classify(200, refused, 1), Answer::Wrong(_)));
        let reused =
            r#"{"errors":[{"message":"m","extensions":{"code":"IDEMPOTENCY_KEY_REUSED"}}]}"#;
        assert!(matches!(classify(200, reused, 1), Answer::Wrong(_)));
        // Faults of the server: sent again.
        let internal =
            r#"{"data":null,"errors":[{"message":"m","extensions":{"code":"INTERNAL"}}]}"#;
        assert!(matches!(classify(200, internal, 1), Answer::Retry(_)));
        assert!(matches!(classify(503, "unavailable", 1), Answer::Retry(_)));
        assert!(matches!(classify(401, "{}", 1), Answer::Wrong(_)));
        assert!(matches!(classify(200, "<html>", 1), Answer::Wrong(_)));
    }

    #[test]
    fn the_plan_sends_every_item_once_in_the_window() {
        let today = NaiveDate::from_ymd_opt(2026, 1, 15).unwrap_or_default();
        let (from, to) = window(today).unwrap_or((today, today));
        assert_eq!(
            from,
            NaiveDate::from_ymd_opt(2025, 4, 1).unwrap_or_default()
        );
        assert_eq!(
            to,
            NaiveDate::from_ymd_opt(2025, 12, 31).unwrap_or_default()
        );
        let (items, requests) = plan(&mut Rng(7), "t", &[1, 2, 3], 500, 25, (from, to));
        let mut sent: Vec<usize> = requests.iter().flat_map(|r| r.items.clone()).collect();
        sent.sort_unstable();
        assert_eq!(sent, (0..500).collect::<Vec<_>>());
        assert!(requests.iter().any(|r| r.batch && r.items.len() == 25));
        assert!(requests.iter().any(|r| !r.batch));
        let keys: BTreeSet<&str> = items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys.len(), 500);
        assert!(
            items
                .iter()
                .all(|i| i.occurred_on >= from && i.occurred_on <= to)
        );
        // The same seed draws the same plan.
        let (_, again) = plan(&mut Rng(7), "t", &[1, 2, 3], 500, 25, (from, to));
        assert_eq!(
            requests.iter().map(|r| &r.body).collect::<Vec<_>>(),
            again.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        assert_eq!(months(from, to).len(), 9);
    }
}
