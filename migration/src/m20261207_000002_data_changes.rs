//! The data change log: what changed in the tables the in-memory copy holds, so that every
//! replica applies routine changes as changes instead of loading everything again.
//!
//! `data_change` gets one row per changed key, written by triggers in the transaction of the
//! change (whatever path makes it), stamped like the rollup deltas: on PostgreSQL with the
//! writing transaction's id, on SQLite with a counter (one writer at a time). The kinds and
//! keys are those `cnscd_api::memory::changes` applies:
//!
//! | table | kind | key |
//! |---|---|---|
//! | team | `team` | id |
//! | membership | `team` | team_id |
//! | data_value | `data_value` | element_code, period_start, period_end |
//! | indicator_target | `target` | indicator_code, unit_code, period_start, period_end |
//! | indicator_definition | `definition` | code |
//! | period_lock | `lock` | unit_code |
//! | activity_kind, digital_service | `kinds`, `services` | (none) |
//! | unit_month_fact, written without a stamp | `rollup` | unit_code, element_code, month_start |
//! | admin_unit, admin_unit_closure, admin_unit_succession, data_element | `reload` | (none) |
//!
//! An update writes the key before and after when they differ (a figure moved to another
//! period changes both groups). `data_change_pruned` notes the highest stamp pruned: a copy
//! that had not read that far loads anew. The `data_generation` bump stays: it is what a
//! request reads.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Tables whose rows are logged by key: table, kind, key columns.
const KEYED: &[(&str, &str, &[&str])] = &[
    ("team", "team", &["id"]),
    ("membership", "team", &["team_id"]),
    (
        "data_value",
        "data_value",
        &["element_code", "period_start", "period_end"],
    ),
    (
        "indicator_target",
        "target",
        &["indicator_code", "unit_code", "period_start", "period_end"],
    ),
    ("indicator_definition", "definition", &["code"]),
    ("period_lock", "lock", &["unit_code"]),
    ("activity_kind", "kinds", &[]),
    ("digital_service", "services", &[]),
];

/// Tables whose every change needs a new copy.
const RELOAD: &[&str] = &[
    "admin_unit",
    "admin_unit_closure",
    "admin_unit_succession",
    "data_element",
];

const ROLLUP_KEY: &[&str] = &["unit_code", "element_code", "month_start"];

/// SQLite: the key of `row` (`NEW` or `OLD`) as text.
pub(crate) fn sqlite_key(row: &str, columns: &[&str]) -> String {
    if columns.is_empty() {
        return "''".to_owned();
    }
    columns
        .iter()
        .map(|c| format!("CAST({row}.{c} AS TEXT)"))
        .collect::<Vec<_>>()
        .join(" || '|' || ")
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        if postgres {
            db.execute_unprepared(
                "CREATE TABLE data_change (stamp BIGINT NOT NULL \
                 DEFAULT (pg_current_xact_id()::text::bigint), kind TEXT NOT NULL, \
                 key TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await?;
            db.execute_unprepared("CREATE INDEX ix_data_change_stamp ON data_change (stamp)")
                .await?;
        } else {
            db.execute_unprepared(
                "CREATE TABLE data_change (stamp INTEGER PRIMARY KEY AUTOINCREMENT, \
                 kind TEXT NOT NULL, key TEXT NOT NULL, \
                 created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
            )
            .await?;
        }
        db.execute_unprepared("CREATE INDEX ix_data_change_created ON data_change (created_at)")
            .await?;
        db.execute_unprepared(
            "CREATE TABLE data_change_pruned (id INTEGER NOT NULL PRIMARY KEY, \
             below BIGINT NOT NULL, CHECK (id = 1))",
        )
        .await?;
        db.execute_unprepared("INSERT INTO data_change_pruned (id, below) VALUES (1, 0)")
            .await?;
        // A flow group (element and period) is read again whole when one of its figures changes.
        db.execute_unprepared(
            "CREATE INDEX ix_data_value_element_period ON data_value \
             (element_code, period_start, period_end)",
        )
        .await?;
        if postgres {
            db.execute_unprepared(
                "CREATE FUNCTION cnscd_log_change() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 DECLARE old_key text; new_key text; i int; \
                 BEGIN \
                   IF TG_LEVEL = 'STATEMENT' THEN \
                     INSERT INTO data_change (kind, key) VALUES (TG_ARGV[0], ''); \
                     RETURN NULL; \
                   END IF; \
                   IF TG_OP IN ('UPDATE', 'DELETE') THEN \
                     old_key := ''; \
                     FOR i IN 1 .. TG_NARGS - 1 LOOP \
                       old_key := old_key || CASE WHEN i > 1 THEN '|' ELSE '' END \
                         || coalesce(to_jsonb(OLD) ->> TG_ARGV[i], ''); \
                     END LOOP; \
                     INSERT INTO data_change (kind, key) VALUES (TG_ARGV[0], old_key); \
                   END IF; \
                   IF TG_OP IN ('UPDATE', 'INSERT') THEN \
                     new_key := ''; \
                     FOR i IN 1 .. TG_NARGS - 1 LOOP \
                       new_key := new_key || CASE WHEN i > 1 THEN '|' ELSE '' END \
                         || coalesce(to_jsonb(NEW) ->> TG_ARGV[i], ''); \
                     END LOOP; \
                     IF new_key IS DISTINCT FROM old_key THEN \
                       INSERT INTO data_change (kind, key) VALUES (TG_ARGV[0], new_key); \
                     END IF; \
                   END IF; \
                   RETURN NULL; \
                 END $$",
            )
            .await?;
            for (table, kind, columns) in KEYED {
                let args: Vec<String> = std::iter::once(*kind)
                    .chain(columns.iter().copied())
                    .map(|a| format!("'{a}'"))
                    .collect();
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER tr_{table}_change AFTER INSERT OR UPDATE OR DELETE ON {table} \
                     FOR EACH ROW EXECUTE FUNCTION cnscd_log_change({})",
                    args.join(", ")
                ))
                .await?;
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER tr_{table}_change_truncate AFTER TRUNCATE ON {table} \
                     FOR EACH STATEMENT EXECUTE FUNCTION cnscd_log_change('reload')"
                ))
                .await?;
            }
            for table in RELOAD {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER tr_{table}_change AFTER INSERT OR UPDATE OR DELETE OR \
                     TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION \
                     cnscd_log_change('reload')"
                ))
                .await?;
            }
            let args = "'rollup', 'unit_code', 'element_code', 'month_start'";
            for (name, when) in [
                (
                    "insert",
                    "AFTER INSERT ON unit_month_fact FOR EACH ROW WHEN (NEW.seq = 0)",
                ),
                (
                    "update",
                    "AFTER UPDATE ON unit_month_fact FOR EACH ROW WHEN (NEW.seq = OLD.seq)",
                ),
                ("delete", "AFTER DELETE ON unit_month_fact FOR EACH ROW"),
            ] {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER tr_unit_month_fact_change_{name} {when} \
                     EXECUTE FUNCTION cnscd_log_change({args})"
                ))
                .await?;
            }
            db.execute_unprepared(
                "CREATE TRIGGER tr_unit_month_fact_change_truncate AFTER TRUNCATE ON \
                 unit_month_fact FOR EACH STATEMENT EXECUTE FUNCTION cnscd_log_change('reload')",
            )
            .await?;
        } else {
            let log = |kind: &str, key: String| {
                format!("INSERT INTO data_change (kind, key) VALUES ('{kind}', {key});")
            };
            for (table, kind, columns) in KEYED {
                let new = sqlite_key("NEW", columns);
                let old = sqlite_key("OLD", columns);
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER tr_{table}_change_insert AFTER INSERT ON {table} BEGIN {} END",
                    log(kind, new.clone())
                ))
                .await?;
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER tr_{table}_change_update AFTER UPDATE ON {table} BEGIN {} \
                     INSERT INTO data_change (kind, key) SELECT '{kind}', {new} \
                     WHERE ({new}) IS NOT ({old}); END",
                    log(kind, old.clone())
                ))
                .await?;
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER tr_{table}_change_delete AFTER DELETE ON {table} BEGIN {} END",
                    log(kind, old)
                ))
                .await?;
            }
            for table in RELOAD {
                for op in ["INSERT", "UPDATE", "DELETE"] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER tr_{table}_change_{} AFTER {op} ON {table} BEGIN {} END",
                        op.to_lowercase(),
                        log("reload", "''".to_owned())
                    ))
                    .await?;
                }
            }
            for (name, when, row) in [
                (
                    "insert",
                    "AFTER INSERT ON unit_month_fact WHEN NEW.seq = 0",
                    "NEW",
                ),
                (
                    "update",
                    "AFTER UPDATE ON unit_month_fact WHEN NEW.seq = OLD.seq",
                    "NEW",
                ),
                ("delete", "AFTER DELETE ON unit_month_fact", "OLD"),
            ] {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER tr_unit_month_fact_change_{name} {when} BEGIN {} END",
                    log("rollup", sqlite_key(row, ROLLUP_KEY))
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        if postgres {
            for (table, _, _) in KEYED {
                db.execute_unprepared(&format!("DROP TRIGGER tr_{table}_change ON {table}"))
                    .await?;
                db.execute_unprepared(&format!(
                    "DROP TRIGGER tr_{table}_change_truncate ON {table}"
                ))
                .await?;
            }
            for table in RELOAD {
                db.execute_unprepared(&format!("DROP TRIGGER tr_{table}_change ON {table}"))
                    .await?;
            }
            for name in ["insert", "update", "delete", "truncate"] {
                db.execute_unprepared(&format!(
                    "DROP TRIGGER tr_unit_month_fact_change_{name} ON unit_month_fact"
                ))
                .await?;
            }
            db.execute_unprepared("DROP FUNCTION cnscd_log_change()")
                .await?;
        } else {
            for (table, _, _) in KEYED {
                for op in ["insert", "update", "delete"] {
                    db.execute_unprepared(&format!("DROP TRIGGER tr_{table}_change_{op}"))
                        .await?;
                }
            }
            for table in RELOAD {
                for op in ["insert", "update", "delete"] {
                    db.execute_unprepared(&format!("DROP TRIGGER tr_{table}_change_{op}"))
                        .await?;
                }
            }
            for name in ["insert", "update", "delete"] {
                db.execute_unprepared(&format!("DROP TRIGGER tr_unit_month_fact_change_{name}"))
                    .await?;
            }
        }
        db.execute_unprepared("DROP INDEX ix_data_value_element_period")
            .await?;
        db.execute_unprepared("DROP TABLE data_change_pruned")
            .await?;
        db.execute_unprepared("DROP TABLE data_change").await?;
        Ok(())
    }
}
