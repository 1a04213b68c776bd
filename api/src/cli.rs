//! The command line: serve, migrate, seed, import, token, schema.
use crate::auth::{Claims, Role, mint};
use crate::config::{DEMO_SECRET, LogFormat, Settings};
use crate::startup::{Application, prepare_database};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use cnscd_migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "cnscd",
    version,
    about = "GraphQL API for community digital technology teams"
)]
pub struct Cli {
    /// Tracing filter, e.g. `info` or `cnscd_api=debug`.
    #[arg(long, env = "CNSCD_LOG", default_value = "info", global = true)]
    pub log: String,
    /// Log format.
    #[arg(
        long,
        env = "CNSCD_LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the process's command line and environment, a variable set to the empty string
    /// counting as unset (operators write `NAME=` in env files and compose files to leave one
    /// out), and exits with clap's message when they do not parse.
    pub fn parse_args() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let matches = unset_empty_env(Self::command()).get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// `cmd` with every argument whose environment variable is set but empty read as if the
/// variable were not set (its default, or absent), in every subcommand.
fn unset_empty_env(cmd: clap::Command) -> clap::Command {
    let cmd = cmd.mut_args(|arg| {
        let empty = arg
            .get_env()
            .is_some_and(|name| std::env::var_os(name).is_some_and(|v| v.is_empty()));
        if empty { arg.env(None) } else { arg }
    });
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    names
        .into_iter()
        .fold(cmd, |cmd, name| cmd.mut_subcommand(name, unset_empty_env))
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve {
        // Boxed: the settings are most of the command's size.
        #[command(flatten)]
        settings: Box<Settings>,
        /// Load the demo data set into an empty database and print one token per role.
        #[arg(long)]
        demo: bool,
        /// Folder with the reference unit catalogues (for --demo).
        #[arg(long, env = "CNSCD_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Apply or inspect database migrations.
    Migrate {
        #[arg(value_enum, default_value = "up")]
        action: MigrateAction,
        #[arg(
            long,
            env = "CNSCD_DATABASE_URL",
            default_value = "sqlite://cnscd.db?mode=rwc"
        )]
        database_url: String,
    },
    /// Load a data set.
    Seed {
        #[command(subcommand)]
        what: SeedWhat,
    },
    /// Import reference data.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Print a signed HS256 token (development and tests).
    Token(TokenArgs),
    /// Print the GraphQL SDL.
    Schema,
}

/// `cnscd token`: what the token says and how it is signed.
#[derive(Args)]
pub struct TokenArgs {
    /// Role: ADMIN, UNIT_ADMIN, TEAM_LEADER, REPORTER or VIEWER (repeatable).
    #[arg(long = "role", required = true)]
    pub roles: Vec<String>,
    /// Administrative unit code of the caller's area (repeatable).
    #[arg(long = "unit")]
    pub units: Vec<String>,
    /// Team id, as the API returns it (repeatable; for TEAM_LEADER).
    #[arg(long = "team")]
    pub teams: Vec<String>,
    #[arg(long, default_value = "dev-user")]
    pub sub: String,
    #[arg(long)]
    pub client: Option<String>,
    /// Lifetime, e.g. 1h, 30m, 7d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    #[arg(long, env = "CNSCD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    #[arg(long, env = "CNSCD_JWT_ISSUER")]
    pub issuer: Option<String>,
    #[arg(long, env = "CNSCD_JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// Sign with the development secret that `serve --demo` uses.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum MigrateAction {
    Up,
    Down,
    Status,
    Fresh,
}

#[derive(Subcommand)]
pub enum SeedWhat {
    /// The demo data set (Đồng Hỷ district).
    Demo {
        /// Multiplies the number of activities (for benchmarks).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        scale: u32,
        #[arg(
            long,
            env = "CNSCD_DATABASE_URL",
            default_value = "sqlite://cnscd.db?mode=rwc"
        )]
        database_url: String,
        #[arg(long, env = "CNSCD_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// A deterministic data set for all 34 provinces on the real catalogues (hamlets generated
    /// under each commune), for work at scale. Loads into a database without units.
    National {
        /// Number of activities.
        #[arg(long, default_value_t = crate::demo::national::DEFAULT_ACTIVITIES)]
        activities: u64,
        /// The generator's seed: the same seed gives the same rows on every machine.
        #[arg(long, default_value_t = crate::demo::national::SEED)]
        seed: u64,
        /// Only these provinces of 2025-07-01 get hamlets, teams and figures (comma-separated
        /// codes; all by default). The catalogues are loaded whole.
        #[arg(long, value_delimiter = ',')]
        provinces: Vec<String>,
        #[arg(
            long,
            env = "CNSCD_DATABASE_URL",
            default_value = "sqlite://cnscd.db?mode=rwc"
        )]
        database_url: String,
        #[arg(long, env = "CNSCD_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum ImportWhat {
    /// An administrative-unit catalogue or successions file (CSV).
    Units {
        file: PathBuf,
        /// Day the file takes effect (default: the date in its file name).
        #[arg(long)]
        valid_from: Option<chrono::NaiveDate>,
        #[arg(
            long,
            env = "CNSCD_DATABASE_URL",
            default_value = "sqlite://cnscd.db?mode=rwc"
        )]
        database_url: String,
    },
}

/// The folder with the unit catalogues: the given one, `./data`, or the one in the source tree.
pub fn data_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        let local = PathBuf::from("data");
        if local.join("admin_units_2025-03-01.csv").exists() {
            local
        } else {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../data"))
        }
    })
}

/// Demo tokens: one per role, for the demo area.
pub fn demo_tokens(secret: &str, team_id: Option<&str>) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for role in Role::ALL {
        let mut claims = Claims {
            sub: format!("demo-{}", role.as_str().to_lowercase().replace('_', "-")),
            exp: chrono::Utc::now().timestamp() + 30 * 24 * 3600,
            iat: Some(chrono::Utc::now().timestamp()),
            roles: vec![role.as_str().to_owned()],
            ..Claims::default()
        };
        match role {
            Role::Admin => {}
            Role::TeamLeader => {
                claims.teams = team_id.map(|t| vec![t.to_owned()]).unwrap_or_default()
            }
            Role::Reporter => {
                claims.units = vec!["19".into()];
                claims.client_id = Some("demo-app".into());
            }
            _ => claims.units = vec!["19".into()],
        }
        out.push((role.as_str().to_owned(), mint(secret, &claims)?));
    }
    Ok(out)
}

/// The seed's wall time and activities per second, on stdout after its report.
fn print_rate(activities: u64, started: std::time::Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} activities in {secs:.1} s: {} activities/s",
        crate::seed::progress::thousands(activities),
        crate::seed::progress::thousands((activities as f64 / secs.max(1e-3)) as u64)
    );
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            settings,
            demo,
            data_dir: dir,
        } => serve(*settings, demo, data_dir(dir)).await,
        Command::Migrate {
            action,
            database_url,
        } => migrate(action, &database_url).await,
        Command::Seed {
            what:
                SeedWhat::Demo {
                    scale,
                    database_url,
                    data_dir: dir,
                },
        } => seed_demo(scale, &database_url, &data_dir(dir)).await,
        Command::Seed {
            what:
                SeedWhat::National {
                    activities,
                    seed,
                    provinces,
                    database_url,
                    data_dir: dir,
                },
        } => {
            let options = crate::demo::national::Options {
                activities,
                seed,
                provinces,
            };
            seed_national(&options, &database_url, &data_dir(dir)).await
        }
        Command::Import {
            what:
                ImportWhat::Units {
                    file,
                    valid_from,
                    database_url,
                },
        } => import_units(&file, valid_from, &database_url).await,
        Command::Token(args) => {
            println!("{}", token(args)?);
            Ok(())
        }
        Command::Schema => {
            print!("{}", crate::schema::sdl());
            Ok(())
        }
    }
}

/// `cnscd serve [--demo]`: with `--demo`, the demo data set loaded into an empty database and
/// tokens to try it with printed.
async fn serve(settings: Settings, demo: bool, dir: PathBuf) -> anyhow::Result<()> {
    let app = Application::build(&settings, demo).await?;
    if demo {
        load_demo(app.db(), &dir).await?;
        print_demo_welcome(&app, &settings).await?;
    }
    app.run_until_stopped().await
}

/// Loads the demo data set unless it is there, or other data is.
async fn load_demo(db: &DatabaseConnection, dir: &Path) -> anyhow::Result<()> {
    if crate::demo::is_loaded(db).await? {
        tracing::info!("demo data already present; not loading it again");
    } else if !crate::units::import::is_empty(db).await? {
        tracing::warn!(
            "the database already holds other data: not loading the demo data set \
             (use an empty database, e.g. CNSCD_DATABASE_URL=sqlite://demo.db?mode=rwc)"
        );
    } else {
        tracing::info!("loading the demo data set (a minute on a laptop)");
        let report = crate::demo::seed(db, dir, 1).await?;
        tracing::info!(?report, "demo data loaded");
    }
    Ok(())
}

/// Where the demo's pages are, and a token per role signed with the development secret
/// (unless tokens come from an identity provider).
async fn print_demo_welcome(app: &Application, settings: &Settings) -> anyhow::Result<()> {
    let identity_provider = settings.jwt_public_keys.is_some() || settings.jwks_url.is_some();
    let secret = match (&settings.jwt_secret, identity_provider) {
        (Some(s), _) => Some(s.clone()),
        // Tokens come from the identity provider: a token signed with the development secret
        // would not be accepted.
        (None, true) => None,
        (None, false) => Some(DEMO_SECRET.to_owned()),
    };
    let team = crate::demo::first_team_id(app.db()).await?;
    println!("\ncnscd demo: GraphiQL at http://{}/graphql", app.address());
    println!(
        "            dashboard at http://{}/dashboard",
        app.address()
    );
    match secret {
        Some(secret) => {
            println!("Paste a token into the page's Token field and press \"Use token\"\n");
            for (role, token) in demo_tokens(&secret, team.as_deref())? {
                println!("{role:<12} {token}");
            }
        }
        None => println!("Use tokens from your identity provider."),
    }
    println!();
    Ok(())
}

/// `cnscd migrate up|down|status|fresh`.
async fn migrate(action: MigrateAction, database_url: &str) -> anyhow::Result<()> {
    let db = crate::db::connect_single(database_url)
        .await
        .with_context(|| {
            format!(
                "Failed to connect to {}",
                crate::config::redact_url(database_url)
            )
        })?;
    match action {
        MigrateAction::Up => Migrator::up(&db, None).await?,
        MigrateAction::Down => Migrator::down(&db, Some(1)).await?,
        MigrateAction::Fresh => Migrator::fresh(&db).await?,
        MigrateAction::Status => Migrator::status(&db).await?,
    }
    Ok(())
}

/// `cnscd seed demo [--scale N]`.
async fn seed_demo(scale: u32, database_url: &str, dir: &Path) -> anyhow::Result<()> {
    let db = prepare_database(database_url).await?;
    if crate::demo::is_loaded(&db).await? {
        bail!("the database already holds the demo data set: run `cnscd migrate fresh` first");
    }
    let started = std::time::Instant::now();
    let progress = crate::seed::progress::Progress::stderr();
    let report = crate::demo::seed_with(&db, dir, scale, &progress).await?;
    println!("{report:?}");
    print_rate(report.activities as u64, started);
    Ok(())
}

/// `cnscd seed national [--activities N] [--seed S]`.
async fn seed_national(
    options: &crate::demo::national::Options,
    database_url: &str,
    dir: &Path,
) -> anyhow::Result<()> {
    let db = prepare_database(database_url).await?;
    let started = std::time::Instant::now();
    let progress = crate::seed::progress::Progress::stderr();
    let report = crate::demo::national::seed(&db, dir, options, &progress)
        .await
        .map_err(|e| anyhow::anyhow!("seed national: {}", e.message()))?;
    println!("{report:?}");
    print_rate(report.activities, started);
    Ok(())
}

/// `cnscd import units FILE --valid-from DAY`, then the rollups rebuilt.
async fn import_units(
    file: &Path,
    valid_from: Option<chrono::NaiveDate>,
    database_url: &str,
) -> anyhow::Result<()> {
    let content = std::fs::read_to_string(file)
        .with_context(|| format!("Failed to read {}", file.display()))?;
    let db = prepare_database(database_url).await?;
    let path = file.to_string_lossy().to_string();
    let report = crate::units::import::import_file(&db, &content, &path, valid_from)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.message()))?;
    let activities = crate::activities::rollup::rebuild(&db).await?;
    println!("{report:?}; rollups rebuilt from {activities} activities");
    Ok(())
}

/// `cnscd token`: the signed token.
fn token(args: TokenArgs) -> anyhow::Result<String> {
    for r in &args.roles {
        if Role::parse(r).is_none() {
            bail!("unknown role `{r}`: use ADMIN, UNIT_ADMIN, TEAM_LEADER, REPORTER or VIEWER");
        }
    }
    let secret = match (args.jwt_secret, args.demo) {
        (Some(s), _) => s,
        (None, true) => DEMO_SECRET.to_owned(),
        (None, false) => {
            bail!("set CNSCD_JWT_SECRET (or pass --demo to sign with the development secret)")
        }
    };
    let ttl = humantime::parse_duration(&args.ttl)
        .with_context(|| format!("`{}` is not a duration such as 1h or 30m", args.ttl))?;
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: args.sub,
        exp: now + ttl.as_secs() as i64,
        iat: Some(now),
        iss: args.issuer,
        aud: args.audience.map(serde_json::Value::String),
        roles: args.roles,
        units: args.units,
        teams: args.teams,
        client_id: args.client,
        ..Claims::default()
    };
    mint(&secret, &claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contracts_command_lines_parse() {
        for line in [
            "cnscd serve --demo",
            "cnscd serve --db-pool-size 40",
            "cnscd migrate status",
            "cnscd migrate fresh",
            "cnscd seed demo --scale 10",
            "cnscd seed national",
            "cnscd seed national --activities 20000 --seed 7 --provinces 19,79",
            "cnscd import units data/admin_units_2025-07-01.csv",
            "cnscd token --role VIEWER --unit 169 --unit 170 --sub u --client app --ttl 8h",
            "cnscd schema",
        ] {
            let args = line.split_whitespace();
            assert!(Cli::try_parse_from(args).is_ok(), "{line}");
        }
        assert!(Cli::try_parse_from(["cnscd", "seed", "demo", "--scale", "0"]).is_err());
        for size in ["0", "1001", "many"] {
            let refused = Cli::try_parse_from(["cnscd", "serve", "--db-pool-size", size])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(refused.contains("--db-pool-size"), "{size}: {refused}");
        }
        assert!(Cli::try_parse_from(["cnscd", "migrate", "sideways"]).is_err());
        assert!(Cli::try_parse_from(["cnscd", "token"]).is_err());
    }

    #[tokio::test]
    async fn token_refuses_unknown_roles_and_durations() {
        let run_token = |role: &str, ttl: &str| {
            Cli::try_parse_from(["cnscd", "token", "--demo", "--role", role, "--ttl", ttl])
        };
        let Ok(cli) = run_token("WIZARD", "1h") else {
            panic!("parse")
        };
        let err = run(cli)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown role `WIZARD`"), "{err}");
        let Ok(cli) = run_token("VIEWER", "soon") else {
            panic!("parse")
        };
        let err = run(cli)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not a duration"), "{err}");
    }

    #[tokio::test]
    async fn demo_tokens_carry_the_demo_area() {
        let tokens = demo_tokens(DEMO_SECRET, Some("VGVhbTox")).unwrap_or_default();
        assert_eq!(tokens.len(), 5);
        let verifier =
            crate::auth::TokenVerifier::hs256(DEMO_SECRET, None, None).map_err(|e| e.to_string());
        let Ok(verifier) = verifier else {
            panic!("verifier")
        };
        for (role, token) in tokens {
            let claims = verifier.verify(&token).await.map_err(|e| e.message());
            let Ok(claims) = claims else { panic!("{role}") };
            assert_eq!(claims.roles, vec![role.clone()]);
            if role == "TEAM_LEADER" {
                assert_eq!(claims.teams, vec!["VGVhbTox".to_owned()]);
            }
        }
    }
}
