//! The database guards integrity: foreign keys between every table that references another,
//! CHECK constraints for the closed sets of codes, non-negative counts and date order; and the
//! caller identity (`["subject","client"]` as JSON) that owns activities and idempotency keys.
//!
//! Unit codes are versioned (`admin_unit` holds one row per code and validity period), so a
//! foreign key cannot point at `admin_unit.code`; a registry of codes, `admin_unit_code`, is the
//! parent every unit-code column references (the unit import adds new codes to it first).
//!
//! PostgreSQL adds the constraints with `ALTER TABLE ... ADD CONSTRAINT`, which validates the
//! rows already present. SQLite cannot add constraints to a table, so each table is rebuilt:
//! renamed aside, created again with the constraints appended to its original definition,
//! refilled (parents before children, so every row is checked as it is copied), the old table
//! dropped and its indexes recreated; all in one transaction. `down` does the same in reverse.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Marks where the SQLite table definitions' additions begin (SQLite keeps the text as
/// written, comments included), so that `down` can cut them off again.
const MARK: &str = ", /* cnscd:integrity */ ";

const LEVELS: &str = "'PROVINCE', 'DISTRICT', 'COMMUNE', 'HAMLET'";

/// One constraint, in the syntax both backends share for table constraints.
struct Constraint {
    name: &'static str,
    body: String,
}

fn check(name: &'static str, expr: &str) -> Constraint {
    Constraint {
        name,
        body: format!("CHECK ({expr})"),
    }
}

fn fk(name: &'static str, column: &str, parent: &str, parent_column: &str) -> Constraint {
    Constraint {
        name,
        body: format!("FOREIGN KEY ({column}) REFERENCES {parent} ({parent_column})"),
    }
}

fn unit_fk(name: &'static str, column: &str) -> Constraint {
    fk(name, column, "admin_unit_code", "code")
}

/// The constrained tables, parents before children, with the columns each gains and its
/// constraints.
/// A table, the columns it gains (name, definition) and its constraints.
type Rules = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Vec<Constraint>,
);

fn tables() -> Vec<Rules> {
    vec![
        (
            "admin_unit",
            &[],
            vec![
                unit_fk("fk_admin_unit_code", "code"),
                unit_fk("fk_admin_unit_parent", "parent_code"),
                check("ck_admin_unit_level", &format!("level IN ({LEVELS})")),
                check("ck_admin_unit_dates", "valid_to >= valid_from"),
            ],
        ),
        (
            "admin_unit_closure",
            &[],
            vec![
                unit_fk("fk_closure_ancestor", "ancestor_code"),
                unit_fk("fk_closure_descendant", "descendant_code"),
                check(
                    "ck_closure_level",
                    &format!("descendant_level IN ({LEVELS})"),
                ),
                check("ck_closure_depth", "depth >= 0"),
                check("ck_closure_dates", "valid_to >= valid_from"),
            ],
        ),
        (
            "admin_unit_succession",
            &[],
            vec![
                unit_fk("fk_succession_old", "old_code"),
                unit_fk("fk_succession_new", "new_code"),
                check("ck_succession_kind", "kind IN ('FULL', 'PARTIAL')"),
            ],
        ),
        (
            "team",
            &[],
            vec![
                unit_fk("fk_team_unit", "unit_code"),
                check("ck_team_status", "status IN ('ACTIVE', 'DISSOLVED')"),
                check(
                    "ck_team_dissolved",
                    "(status = 'DISSOLVED') = (dissolved_on IS NOT NULL)",
                ),
                check(
                    "ck_team_dates",
                    "dissolved_on IS NULL OR dissolved_on >= founded_on",
                ),
            ],
        ),
        (
            "person",
            &[],
            vec![
                check(
                    "ck_person_gender",
                    "gender IS NULL OR gender IN ('MALE', 'FEMALE', 'OTHER')",
                ),
                check(
                    "ck_person_birth_year",
                    "birth_year IS NULL OR birth_year BETWEEN 1900 AND 2100",
                ),
            ],
        ),
        (
            "data_element",
            &[],
            vec![
                check(
                    "ck_data_element_source",
                    "source IN ('DERIVED', 'REPORTED')",
                ),
                check(
                    "ck_data_element_aggregation",
                    "aggregation IN ('FLOW', 'STATE', 'REFERENCE')",
                ),
            ],
        ),
        (
            "membership",
            &[],
            vec![
                fk("fk_membership_team", "team_id", "team", "id"),
                fk("fk_membership_person", "person_id", "person", "id"),
                fk(
                    "fk_membership_affiliation",
                    "affiliation",
                    "affiliation",
                    "code",
                ),
                check(
                    "ck_membership_role",
                    "role IN ('LEADER', 'DEPUTY', 'MEMBER')",
                ),
                check(
                    "ck_membership_dates",
                    "ended_on IS NULL OR ended_on >= started_on",
                ),
            ],
        ),
        (
            "activity",
            &[("submitter", "varchar NOT NULL DEFAULT ''")],
            vec![
                fk("fk_activity_team", "team_id", "team", "id"),
                unit_fk("fk_activity_unit", "unit_code"),
                fk("fk_activity_kind", "kind_code", "activity_kind", "code"),
                check("ck_activity_status", "status IN ('RECORDED', 'VOIDED')"),
                check(
                    "ck_activity_participants",
                    "participants IS NULL OR participants >= 0",
                ),
                check(
                    "ck_activity_households",
                    "households_reached IS NULL OR households_reached >= 0",
                ),
            ],
        ),
        (
            "activity_outcome",
            &[],
            vec![
                fk("fk_outcome_activity", "activity_id", "activity", "id"),
                fk(
                    "fk_outcome_service",
                    "service_code",
                    "digital_service",
                    "code",
                ),
                check("ck_outcome_people", "people >= 0"),
                check(
                    "ck_outcome_households",
                    "households IS NULL OR households >= 0",
                ),
            ],
        ),
        (
            "data_value",
            &[],
            vec![
                unit_fk("fk_data_value_unit", "unit_code"),
                fk(
                    "fk_data_value_element",
                    "element_code",
                    "data_element",
                    "code",
                ),
                check("ck_data_value_period", "period_end >= period_start"),
                check("ck_data_value_value", "value >= 0"),
            ],
        ),
        (
            "indicator_definition",
            &[],
            vec![check("ck_indicator_version", "version >= 1")],
        ),
        (
            "period_lock",
            &[],
            vec![
                unit_fk("fk_period_lock_unit", "unit_code"),
                check("ck_period_lock_period", "period_end >= period_start"),
            ],
        ),
        (
            "unit_month_fact",
            &[],
            vec![
                unit_fk("fk_fact_unit", "unit_code"),
                fk("fk_fact_element", "element_code", "data_element", "code"),
            ],
        ),
    ]
}

/// The caller identity as `cnscd_api::auth::identity` encodes it (a test there checks that
/// both agree): `["subject","client"]`, `null` without a client.
pub fn identity(subject: &str, client: Option<&str>) -> String {
    let mut out = String::from("[");
    out.push_str(&json_string(subject));
    out.push(',');
    match client {
        Some(c) => out.push_str(&json_string(c)),
        None => out.push_str("null"),
    }
    out.push(']');
    out
}

/// A JSON string literal, escaped the way serde_json escapes.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

async fn exec(db: &impl ConnectionTrait, sql: &str) -> Result<(), DbErr> {
    db.execute_unprepared(sql).await.map(|_| ())
}

async fn rows(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<sea_orm_migration::sea_orm::QueryResult>, DbErr> {
    db.query_all_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        values,
    ))
    .await
}

/// Fills `activity.submitter` from `submitted_by` and `client_id` (one statement per distinct
/// caller, of which there are few).
async fn backfill_submitters(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    let pg = db.get_database_backend() == DbBackend::Postgres;
    let callers = rows(
        db,
        "SELECT DISTINCT submitted_by, client_id FROM activity",
        vec![],
    )
    .await?;
    for r in callers {
        let sub: String = r.try_get("", "submitted_by")?;
        let client: Option<String> = r.try_get("", "client_id")?;
        let sql = if pg {
            "UPDATE activity SET submitter = $1 WHERE submitted_by = $2 \
             AND client_id IS NOT DISTINCT FROM $3"
        } else {
            "UPDATE activity SET submitter = ? WHERE submitted_by = ? AND client_id IS ?"
        };
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            vec![
                identity(&sub, client.as_deref()).into(),
                sub.into(),
                client.into(),
            ],
        ))
        .await?;
    }
    Ok(())
}

/// Rewrites idempotency scopes between the old `subject|client` form and the identity.
async fn convert_scopes(db: &impl ConnectionTrait, to_identity: bool) -> Result<(), DbErr> {
    let pg = db.get_database_backend() == DbBackend::Postgres;
    let scopes = rows(db, "SELECT DISTINCT scope FROM idempotency_record", vec![]).await?;
    for r in scopes {
        let scope: String = r.try_get("", "scope")?;
        let is_identity = scope.starts_with('[') && scope.ends_with(']');
        let new = if to_identity && !is_identity {
            // The old form could not tell `a|b` + `c` from `a` + `b|c`; the client came last
            // and rarely holds `|`.
            let (sub, client) = scope.rsplit_once('|').unwrap_or((&scope, ""));
            identity(sub, Some(client).filter(|c| !c.is_empty()))
        } else if !to_identity && is_identity {
            match parse_identity(&scope) {
                Some((sub, client)) => format!("{sub}|{}", client.unwrap_or_default()),
                None => continue,
            }
        } else {
            continue;
        };
        let sql = if pg {
            "UPDATE idempotency_record SET scope = $1 WHERE scope = $2"
        } else {
            "UPDATE idempotency_record SET scope = ? WHERE scope = ?"
        };
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            vec![new.into(), scope.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Reads `["sub","client"]` back (only for `down`; simple escapes only).
fn parse_identity(s: &str) -> Option<(String, Option<String>)> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    let (sub, rest) = read_json_string(inner)?;
    let rest = rest.strip_prefix(',')?;
    if rest == "null" {
        return Some((sub, None));
    }
    let (client, rest) = read_json_string(rest)?;
    rest.is_empty().then_some((sub, Some(client)))
}

fn read_json_string(s: &str) -> Option<(String, &str)> {
    let s = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'b' => out.push('\u{08}'),
                'f' => out.push('\u{0c}'),
                'u' => {
                    let hex: String = (0..4).filter_map(|_| chars.next().map(|x| x.1)).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// SQLite: rebuilds `table` with the definition `make` derives from its current one, copying
/// the columns both have. Returns the statements that finish the job once every table has
/// been refilled (drop the old table, recreate its indexes).
struct Rebuild {
    table: &'static str,
    indexes: Vec<String>,
}

async fn sqlite_rebuild(
    db: &impl ConnectionTrait,
    order: &[&'static str],
    make: impl Fn(&str, &str) -> Result<String, DbErr>,
) -> Result<(), DbErr> {
    let mut rebuilds = Vec::new();
    let mut definitions = Vec::new();
    // 1. Read every definition and set the old tables aside.
    for table in order {
        let sql: String = rows(
            db,
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
            vec![(*table).into()],
        )
        .await?
        .first()
        .ok_or_else(|| DbErr::Migration(format!("table {table} is missing")))?
        .try_get("", "sql")?;
        let indexes = rows(
            db,
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? \
             AND sql IS NOT NULL",
            vec![(*table).into()],
        )
        .await?
        .into_iter()
        .map(|r| r.try_get::<String>("", "sql"))
        .collect::<Result<Vec<_>, _>>()?;
        exec(
            db,
            &format!("ALTER TABLE \"{table}\" RENAME TO \"{table}__old\""),
        )
        .await?;
        definitions.push(make(table, &sql)?);
        rebuilds.push(Rebuild { table, indexes });
    }
    // 2. Create and refill, parents first: rows are checked as they are copied.
    for (r, definition) in rebuilds.iter().zip(&definitions) {
        exec(db, definition).await?;
        let old = column_names(db, &format!("{}__old", r.table)).await?;
        let new = column_names(db, r.table).await?;
        let common: Vec<String> = new
            .iter()
            .filter(|c| old.contains(c))
            .map(|c| format!("\"{c}\""))
            .collect();
        let cols = common.join(", ");
        exec(
            db,
            &format!(
                "INSERT INTO \"{t}\" ({cols}) SELECT {cols} FROM \"{t}__old\"",
                t = r.table
            ),
        )
        .await
        .map_err(|e| {
            DbErr::Migration(format!(
                "rows of table {} break the new integrity rules: {e}",
                r.table
            ))
        })?;
    }
    // 3. Drop the old tables, children first, and recreate the indexes.
    for r in rebuilds.iter().rev() {
        exec(db, &format!("DROP TABLE \"{}__old\"", r.table)).await?;
    }
    for r in &rebuilds {
        for index in &r.indexes {
            exec(db, index).await?;
        }
    }
    Ok(())
}

async fn column_names(db: &impl ConnectionTrait, table: &str) -> Result<Vec<String>, DbErr> {
    rows(db, &format!("PRAGMA table_info(\"{table}\")"), vec![])
        .await?
        .into_iter()
        .map(|r| r.try_get::<String>("", "name"))
        .collect()
}

/// SQLite: the `foreign_key_check` pragma must find nothing (it matters when the migration's
/// connection runs with foreign keys off).
async fn sqlite_foreign_key_check(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    let bad = rows(db, "PRAGMA foreign_key_check", vec![]).await?;
    if let Some(r) = bad.first() {
        let table: String = r.try_get("", "table").unwrap_or_default();
        let parent: String = r.try_get("", "parent").unwrap_or_default();
        return Err(DbErr::Migration(format!(
            "{} rows break foreign keys, e.g. a row of {table} names a missing {parent}",
            bad.len()
        )));
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // One transaction on SQLite too: a failed rebuild leaves the database as it was.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let pg = db.get_database_backend() == DbBackend::Postgres;
        exec(
            db,
            "CREATE TABLE admin_unit_code (code varchar NOT NULL PRIMARY KEY)",
        )
        .await?;
        exec(
            db,
            "INSERT INTO admin_unit_code (code) SELECT DISTINCT code FROM admin_unit",
        )
        .await?;
        let tables = tables();
        if pg {
            exec(
                db,
                "ALTER TABLE activity ADD COLUMN submitter varchar NOT NULL DEFAULT ''",
            )
            .await?;
            backfill_submitters(db).await?;
            exec(
                db,
                "ALTER TABLE activity ALTER COLUMN submitter DROP DEFAULT",
            )
            .await?;
            for (table, _, constraints) in &tables {
                for c in constraints {
                    exec(
                        db,
                        &format!("ALTER TABLE {table} ADD CONSTRAINT {} {}", c.name, c.body),
                    )
                    .await?;
                }
            }
        } else {
            let order: Vec<&'static str> = tables.iter().map(|t| t.0).collect();
            sqlite_rebuild(db, &order, |table, sql| {
                let (_, columns, constraints) = tables
                    .iter()
                    .find(|t| t.0 == table)
                    .ok_or_else(|| DbErr::Migration(format!("no rules for {table}")))?;
                let end = sql
                    .rfind(')')
                    .ok_or_else(|| DbErr::Migration(format!("cannot read {table}")))?;
                let mut extra: Vec<String> = columns
                    .iter()
                    .map(|(name, def)| format!("\"{name}\" {def}"))
                    .collect();
                extra.extend(
                    constraints
                        .iter()
                        .map(|c| format!("CONSTRAINT {} {}", c.name, c.body)),
                );
                Ok(format!("{}{MARK}{} )", &sql[..end], extra.join(", ")))
            })
            .await?;
            backfill_submitters(db).await?;
            sqlite_foreign_key_check(db).await?;
        }
        exec(
            db,
            "CREATE INDEX ix_activity_submitter ON activity (submitter, occurred_on)",
        )
        .await?;
        convert_scopes(db, true).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let pg = db.get_database_backend() == DbBackend::Postgres;
        convert_scopes(db, false).await?;
        exec(db, "DROP INDEX IF EXISTS ix_activity_submitter").await?;
        let tables = tables();
        if pg {
            for (table, _, constraints) in tables.iter().rev() {
                for c in constraints.iter().rev() {
                    exec(
                        db,
                        &format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}", c.name),
                    )
                    .await?;
                }
            }
            exec(db, "ALTER TABLE activity DROP COLUMN IF EXISTS submitter").await?;
        } else {
            let order: Vec<&'static str> = tables.iter().map(|t| t.0).collect();
            sqlite_rebuild(db, &order, |table, sql| match sql.find(MARK) {
                Some(at) => Ok(format!("{} )", &sql[..at])),
                None => Err(DbErr::Migration(format!(
                    "table {table} was not changed by this migration"
                ))),
            })
            .await?;
        }
        exec(db, "DROP TABLE admin_unit_code").await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip() {
        for (sub, client) in [
            ("a:b", Some("c")),
            ("a", Some("b|c")),
            ("Trần \"x\"\\\n\u{1}", None),
        ] {
            let id = identity(sub, client);
            assert_eq!(
                parse_identity(&id),
                Some((sub.to_owned(), client.map(str::to_owned)))
            );
        }
        assert_eq!(identity("u", None), r#"["u",null]"#);
    }
}
