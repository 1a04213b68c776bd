//! Test harness: starts the real server on port 0 against a fresh database (a temporary SQLite
//! file, or a uniquely named PostgreSQL database when `CNSCD_TEST_DATABASE` is a postgres URL),
//! loads a small fixture of units, and talks GraphQL over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod fuzz;

use cnscd_api::auth::{Claims, mint};
use cnscd_api::config::Settings;
use cnscd_api::startup::{Application, prepare_database};
use cnscd_api::units::import::{Parsed, RECORDS_BEGIN, apply_successions, apply_units, parse};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const SECRET: &str = "test-secret-0123456789abcdef";

/// The fixture's units before the 2025 reorganisation.
pub const OLD_UNITS: &str = "code,name,type,level,parent_code
19,Tỉnh Thái Nguyên,Tỉnh,PROVINCE,
06,Tỉnh Bắc Kạn,Tỉnh,PROVINCE,
169,Huyện Đồng Hỷ,Huyện,DISTRICT,19
164,Thành phố Thái Nguyên,Thành phố,DISTRICT,19
05677,Xã Minh Lập,Xã,COMMUNE,169
05692,Thị trấn Hóa Thượng,Thị trấn,COMMUNE,169
05659,Phường Chùa Hang,Phường,COMMUNE,164
05677-01,Xóm Cà Phê,Xóm,HAMLET,05677
05677-02,Xóm Na Lay,Xóm,HAMLET,05677
05692-01,Tổ dân phố 1,Tổ dân phố,HAMLET,05692
05659-01,Tổ 1 Chùa Hang,Tổ dân phố,HAMLET,05659
";

/// The fixture's units from 2025-07-01.
pub const NEW_UNITS: &str = "code,name,level,parent_code
19,Tỉnh Thái Nguyên,PROVINCE,
05692,Xã Đồng Hỷ,COMMUNE,19
05710,Phường Linh Sơn,COMMUNE,19
";

pub const SUCCESSIONS: &str = "new_code,new_name,new_level,old_code,old_name,kind
19,Tỉnh Thái Nguyên,PROVINCE,06,Tỉnh Bắc Kạn,FULL
19,Tỉnh Thái Nguyên,PROVINCE,19,Tỉnh Thái Nguyên,FULL
05692,Xã Đồng Hỷ,COMMUNE,05677,Xã Minh Lập,FULL
05692,Xã Đồng Hỷ,COMMUNE,05692,Thị trấn Hóa Thượng,FULL
05710,Phường Linh Sơn,COMMUNE,05659,Phường Chùa Hang,FULL
";

pub fn date(s: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A period lock of `unit` from `start` to `end`, to insert straight into the database (by
/// tests that hold the locking transaction open or need a lock `lockPeriod` would not take).
pub fn period_lock(unit: &str, start: &str, end: &str) -> cnscd_entity::period_lock::ActiveModel {
    use sea_orm::Set;
    cnscd_entity::period_lock::ActiveModel {
        unit_code: Set(unit.into()),
        period_start: Set(date(start)),
        period_end: Set(date(end)),
        locked_by: Set("admin".into()),
        locked_at: Set(chrono::Utc::now()),
        reason: Set(None),
        ..Default::default()
    }
}

/// A fresh database: SQLite file or PostgreSQL database, removed when dropped.
pub struct TestDb {
    pub url: String,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new() -> Self {
        let target = std::env::var("CNSCD_TEST_DATABASE").unwrap_or_default();
        if target.starts_with("postgres") {
            let name = format!("cnscd_test_{}", uuid::Uuid::new_v4().simple());
            let admin = sea_orm::Database::connect(&target)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {target} is not reachable: {e}"));
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            admin.close().await.ok();
            let base = target.rsplit_once('/').map(|(b, _)| b).unwrap_or(&target);
            Self {
                url: format!("{base}/{name}"),
                cleanup: Some((target.clone(), name)),
                _dir: None,
            }
        } else {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            Self {
                url,
                cleanup: None,
                _dir: Some(dir),
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.cleanup.is_some()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.cleanup.take() {
            // A runtime of its own: Drop cannot await, and the test's runtime may be gone.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async move {
                    let db = sea_orm::Database::connect(&admin).await.ok()?;
                    db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}

/// Records the statements the server runs (SQL and values, as sea-orm hands them to the
/// driver) between [`Recorder::start`] and [`Recorder::stop`].
#[derive(Default)]
pub struct Recorder {
    on: AtomicBool,
    statements: Mutex<Vec<sea_orm::Statement>>,
}

impl Recorder {
    pub fn start(&self) {
        self.on.store(true, Ordering::SeqCst);
    }

    /// Stops recording and returns what was recorded since the last stop.
    pub fn stop(&self) -> Vec<sea_orm::Statement> {
        self.on.store(false, Ordering::SeqCst);
        std::mem::take(&mut *self.statements.lock().unwrap())
    }
}

/// The running application and a client for it.
pub struct TestApp {
    pub address: String,
    pub db: DatabaseConnection,
    /// SQL statements the server has run so far.
    pub statements: Arc<AtomicUsize>,
    /// The statements themselves (SQL and values), while recording is on.
    pub recorder: Arc<Recorder>,
    pub client: reqwest::Client,
    pub test_db: TestDb,
    /// The server's in-memory indicator data (to count its full loads).
    pub store: cnscd_api::memory::Store,
}

/// Loads the unit fixture (old catalogue with hamlets, new catalogue, successions).
pub async fn load_units(db: &DatabaseConnection) {
    let Ok(Parsed::Units(old)) = parse(OLD_UNITS) else {
        panic!("bad fixture")
    };
    apply_units(db, &old, RECORDS_BEGIN, false).await.unwrap();
    let Ok(Parsed::Units(new)) = parse(NEW_UNITS) else {
        panic!("bad fixture")
    };
    apply_units(db, &new, date("2025-07-01"), true)
        .await
        .unwrap();
    let Ok(Parsed::Successions(s)) = parse(SUCCESSIONS) else {
        panic!("bad fixture")
    };
    apply_successions(db, &s, date("2025-07-01")).await.unwrap();
    cnscd_api::units::service::rebuild_closure(db)
        .await
        .unwrap();
}

/// Starts the app on a fresh database with the unit fixture.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with changed settings (issuer, audience, ...).
pub async fn spawn_app_with(change: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_prepared(change, async |_| {}).await
}

/// Like [`spawn_app_with`], with `prepare` run on the database (holding the unit fixture)
/// before the server starts: for tests that load rows in bulk.
pub async fn spawn_app_prepared(
    change: impl FnOnce(&mut Settings),
    prepare: impl AsyncFnOnce(&DatabaseConnection),
) -> TestApp {
    let test_db = TestDb::new().await;
    let mut settings = Settings::for_tests(&test_db.url, SECRET);
    change(&mut settings);
    let mut db = prepare_database(&settings.database_url).await.unwrap();
    load_units(&db).await;
    prepare(&db).await;
    let statements = Arc::new(AtomicUsize::new(0));
    let recorder = Arc::new(Recorder::default());
    let (counter, rec) = (statements.clone(), recorder.clone());
    db.set_metric_callback(move |info| {
        counter.fetch_add(1, Ordering::SeqCst);
        if rec.on.load(Ordering::SeqCst)
            && let Ok(mut all) = rec.statements.lock()
        {
            all.push(info.statement.clone());
        }
    });
    let verifier = cnscd_api::startup::verifier(&settings, false)
        .await
        .unwrap();
    let app = Application::with_database(&settings, verifier, db.clone())
        .await
        .unwrap();
    let address = format!("http://{}", app.address());
    let store = app.store().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        db,
        statements,
        recorder,
        client: reqwest::Client::new(),
        test_db,
        store,
    }
}

/// The app on a fresh database holding the demo data set (the repository's `data/` catalogues,
/// scale 1), as `serve --demo` starts it: its database (dropped with it), what the seed
/// reported, and its address.
pub async fn spawn_demo_app() -> (TestDb, cnscd_api::demo::DemoReport, String) {
    let test_db = TestDb::new().await;
    let db = prepare_database(&test_db.url).await.unwrap();
    let data = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../data"));
    let report = cnscd_api::demo::seed(&db, &data, 1).await.unwrap();
    let settings = Settings::for_tests(&test_db.url, SECRET);
    let verifier = cnscd_api::auth::TokenVerifier::hs256(SECRET, None, None).unwrap();
    let app = Application::with_database(&settings, verifier, db)
        .await
        .unwrap();
    let address = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped());
    (test_db, report, address)
}

/// A fresh database holding a national data set (the repository's `data/` catalogues) made
/// with `options`: the database (dropped with it), its connection and what the seed reported.
pub async fn seed_national(
    options: &cnscd_api::demo::national::Options,
) -> (
    TestDb,
    DatabaseConnection,
    cnscd_api::demo::national::NationalReport,
) {
    let test_db = TestDb::new().await;
    let db = prepare_database(&test_db.url).await.unwrap();
    let data = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../data"));
    let progress = cnscd_api::seed::progress::Progress::hidden();
    let report = cnscd_api::demo::national::seed(&db, &data, options, &progress)
        .await
        .unwrap_or_else(|e| panic!("seed national: {}", e.message()));
    (test_db, db, report)
}

/// Starts the app on an existing database (loaded by the caller); returns its address.
pub async fn serve(test_db: &TestDb, db: DatabaseConnection) -> String {
    let settings = Settings::for_tests(&test_db.url, SECRET);
    let verifier = cnscd_api::auth::TokenVerifier::hs256(SECRET, None, None).unwrap();
    let app = Application::with_database(&settings, verifier, db)
        .await
        .unwrap();
    let address = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped());
    address
}

/// Claims for a caller with `roles` over `units` and `teams`.
pub fn claims(sub: &str, roles: &[&str], units: &[&str], teams: &[&str]) -> Claims {
    Claims {
        sub: sub.into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        iat: Some(chrono::Utc::now().timestamp()),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        units: units.iter().map(|s| s.to_string()).collect(),
        teams: teams.iter().map(|s| s.to_string()).collect(),
        client_id: Some("test-app".into()),
        ..Claims::default()
    }
}

pub fn token(roles: &[&str], units: &[&str], teams: &[&str]) -> String {
    let sub = format!("{}-{}", roles.join("+").to_lowercase(), units.join("+"));
    mint(SECRET, &claims(&sub, roles, units, teams)).unwrap()
}

pub fn admin() -> String {
    token(&["ADMIN"], &[], &[])
}

/// A GraphQL response: HTTP status and body.
#[derive(Debug)]
pub struct Gql {
    pub status: u16,
    pub body: Value,
}

impl Gql {
    /// `data` at a dotted path (`createTeam.team.id`).
    pub fn at(&self, path: &str) -> &Value {
        let mut v = &self.body["data"];
        for p in path.split('.') {
            v = match p.parse::<usize>() {
                Ok(i) => &v[i],
                Err(_) => &v[p],
            };
        }
        v
    }

    /// Codes of the top-level errors.
    pub fn error_codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Codes of the user errors of the payload at `field`.
    pub fn user_error_codes(&self, field: &str) -> Vec<String> {
        self.body["data"][field]["userErrors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["code"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fails with the whole body when there are top-level errors.
    pub fn ok(self) -> Self {
        assert!(
            self.body.get("errors").is_none() && self.status == 200,
            "unexpected errors: {} {}",
            self.status,
            self.body
        );
        self
    }
}

impl TestApp {
    /// How many SQL statements the server runs to answer one request.
    pub async fn statements_for(&self, token: &str, query: &str, variables: Value) -> (usize, Gql) {
        let before = self.statements.load(Ordering::SeqCst);
        let r = self.gql(token, query, variables).await;
        (self.statements.load(Ordering::SeqCst) - before, r)
    }

    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Gql {
        self.gql_at(&self.address, token, query, variables).await
    }

    /// Like [`TestApp::gql`], to the server at `address` (a replica).
    pub async fn gql_at(&self, address: &str, token: &str, query: &str, variables: Value) -> Gql {
        let resp = self
            .client
            .post(format!("{address}/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        Gql { status, body }
    }

    /// Starts a second server on this app's database, as a replica behind a load balancer
    /// would be (its own in-memory state, the same rows), and returns its address.
    pub async fn replica(&self) -> String {
        self.replica_with(|_| {}).await
    }

    /// Like [`TestApp::replica`], with changed settings.
    pub async fn replica_with(&self, change: impl FnOnce(&mut Settings)) -> String {
        self.replica_with_store(change).await.0
    }

    /// Like [`TestApp::replica_with`], with the replica's in-memory indicator data.
    pub async fn replica_with_store(
        &self,
        change: impl FnOnce(&mut Settings),
    ) -> (String, cnscd_api::memory::Store) {
        let mut settings = Settings::for_tests(&self.test_db.url, SECRET);
        change(&mut settings);
        let verifier = cnscd_api::startup::verifier(&settings, false)
            .await
            .unwrap();
        let db = cnscd_api::db::connect(&self.test_db.url).await.unwrap();
        let app = Application::with_database(&settings, verifier, db)
            .await
            .unwrap();
        let address = format!("http://{}", app.address());
        let store = app.store().clone();
        tokio::spawn(app.run_until_stopped());
        (address, store)
    }

    /// Waits until the server answers indicators from data that holds everything committed
    /// before this call (a change to the unit catalogues is loaded in the background, and the
    /// copy held answers meanwhile): asks until `extensions.dataAsOf` is past the call.
    pub async fn wait_for_data(&self) {
        let since = chrono::Utc::now();
        let started = std::time::Instant::now();
        loop {
            let r = self
                .gql(
                    &admin(),
                    "{ indicators(codes: [\"CNS02\"], unitCodes: [\"19\"], from: \"2024-01-01\", to: \"2024-01-31\") { value } }",
                    json!({}),
                )
                .await;
            let at = r.body["extensions"]["dataAsOf"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            if at.is_some_and(|t| t >= since) {
                return;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "the data never caught up: {}",
                r.body
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Creates a team as ADMIN and returns its global id.
    pub async fn create_team(&self, unit: &str, name: &str, founded_on: &str) -> String {
        let r = self
            .gql(
                &admin(),
                "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id } userErrors { message } } }",
                json!({ "i": { "unitCode": unit, "name": name, "foundedOn": founded_on } }),
            )
            .await
            .ok();
        r.at("createTeam.team.id")
            .as_str()
            .unwrap_or_else(|| panic!("{:?}", r.body))
            .to_owned()
    }

    /// Adds a member as ADMIN and returns the membership id.
    pub async fn add_member(
        &self,
        team: &str,
        name: &str,
        role: &str,
        affiliation: &str,
        started: &str,
    ) -> String {
        let r = self
            .gql(
                &admin(),
                "mutation($i: AddMemberInput!) { addMember(input: $i) { membership { id } userErrors { message } } }",
                json!({ "i": { "teamId": team, "person": { "fullName": name, "phone": "0912345678", "email": "a@example.vn", "birthYear": 1990 }, "role": role, "affiliation": affiliation, "startedOn": started } }),
            )
            .await
            .ok();
        r.at("addMember.membership.id")
            .as_str()
            .unwrap_or_else(|| panic!("{:?}", r.body))
            .to_owned()
    }

    /// Submits an activity as ADMIN and returns its id.
    pub async fn submit(&self, team: &str, kind: &str, on: &str, extra: Value) -> String {
        let mut input = json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": team, "kind": kind, "occurredOn": on, "title": "Hướng dẫn cài VNeID" });
        if let (Some(obj), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            obj.extend(extra.clone());
        }
        let r = self
            .gql(
                &admin(),
                "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { activity { id } userErrors { message } } }",
                json!({ "i": input }),
            )
            .await
            .ok();
        r.at("submitActivity.activity.id")
            .as_str()
            .unwrap_or_else(|| panic!("{:?}", r.body))
            .to_owned()
    }
}

/// The query graphql-js's `getIntrospectionQuery()` produces (GraphiQL, graphql-codegen,
/// Apollo, Postman), with nine levels of `ofType`.
pub fn introspection_query() -> String {
    let mut type_ref = String::from("kind name");
    for _ in 0..9 {
        type_ref = format!("kind name ofType {{ {type_ref} }}");
    }
    format!(
        "query IntrospectionQuery {{
  __schema {{
    queryType {{ name }}
    mutationType {{ name }}
    subscriptionType {{ name }}
    types {{ ...FullType }}
    directives {{ name description locations args {{ ...InputValue }} }}
  }}
}}
fragment FullType on __Type {{
  kind name description
  fields(includeDeprecated: true) {{
    name description args {{ ...InputValue }} type {{ ...TypeRef }} isDeprecated deprecationReason
  }}
  inputFields {{ ...InputValue }}
  interfaces {{ ...TypeRef }}
  enumValues(includeDeprecated: true) {{ name description isDeprecated deprecationReason }}
  possibleTypes {{ ...TypeRef }}
}}
fragment InputValue on __InputValue {{ name description type {{ ...TypeRef }} defaultValue }}
fragment TypeRef on __Type {{ {type_ref} }}"
    )
}
