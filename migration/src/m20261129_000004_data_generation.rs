//! Generation counters for the data indicators read from memory.
//!
//! The service keeps the dated hierarchy, the catalogues, the indicator definitions and targets,
//! teams, memberships, reported figures and the monthly activity rollups in memory to compute
//! indicators without reading them per request. `data_generation` tells whether that copy is
//! current, with two rows:
//!
//! - `id = 1`, the data: triggers bump it in the same transaction as any change to the watched
//!   tables, whichever path makes it (the service, an import, a correction typed into `psql`),
//!   so every replica sees the change on its next request and loads the copy again.
//! - `id = 2`, the rollups (`unit_month_fact`), which change with every activity: the service
//!   bumps it at the start of each rollup write and stamps the rows it writes with the new
//!   value (`seq`). The bump holds the row until commit, so stamps are taken in commit order and
//!   every row stamped up to a value a reader sees is committed: a replica catches up by reading
//!   the rows stamped after the last value it saw. A rollup row written by another path (or
//!   deleted) bumps the data counter instead, and the copy is loaded again.
//!
//! On SQLite, a later migration that rebuilds one of these tables (create, copy, drop, rename)
//! drops its triggers with it and must create them again.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables whose rows the in-memory copy holds.
pub const WATCHED: &[&str] = &[
    "admin_unit",
    "admin_unit_closure",
    "admin_unit_succession",
    "data_element",
    "indicator_definition",
    "team",
    "membership",
    "data_value",
    "indicator_target",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE data_generation (id INTEGER NOT NULL PRIMARY KEY, n BIGINT NOT NULL, \
             CHECK (id IN (1, 2)))",
        )
        .await?;
        db.execute_unprepared("INSERT INTO data_generation (id, n) VALUES (1, 1), (2, 1)")
            .await?;
        db.execute_unprepared(
            "ALTER TABLE unit_month_fact ADD COLUMN seq BIGINT NOT NULL DEFAULT 0",
        )
        .await?;
        db.execute_unprepared("CREATE INDEX ix_fact_seq ON unit_month_fact (seq)")
            .await?;
        let bump = "UPDATE data_generation SET n = n + 1 WHERE id = 1";
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(&format!(
                    "CREATE FUNCTION cnscd_bump_generation() RETURNS trigger LANGUAGE plpgsql \
                     AS $$ BEGIN {bump}; RETURN NULL; END $$"
                ))
                .await?;
                for t in WATCHED {
                    // Once per statement: a bulk import bumps it once.
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER tr_{t}_generation AFTER INSERT OR UPDATE OR DELETE OR \
                         TRUNCATE ON {t} FOR EACH STATEMENT EXECUTE FUNCTION cnscd_bump_generation()"
                    ))
                    .await?;
                }
                // Rollup rows written without a new stamp, or deleted.
                for (name, when) in [
                    (
                        "insert",
                        "AFTER INSERT ON unit_month_fact FOR EACH ROW WHEN (NEW.seq = 0)",
                    ),
                    (
                        "update",
                        "AFTER UPDATE ON unit_month_fact FOR EACH ROW WHEN (NEW.seq = OLD.seq)",
                    ),
                    (
                        "delete",
                        "AFTER DELETE OR TRUNCATE ON unit_month_fact FOR EACH STATEMENT",
                    ),
                ] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER tr_unit_month_fact_generation_{name} {when} \
                         EXECUTE FUNCTION cnscd_bump_generation()"
                    ))
                    .await?;
                }
            }
            _ => {
                for (name, when) in [
                    ("insert", "AFTER INSERT ON unit_month_fact WHEN NEW.seq = 0"),
                    (
                        "update",
                        "AFTER UPDATE ON unit_month_fact WHEN NEW.seq = OLD.seq",
                    ),
                    ("delete", "AFTER DELETE ON unit_month_fact"),
                ] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER tr_unit_month_fact_generation_{name} {when} \
                         BEGIN {bump}; END"
                    ))
                    .await?;
                }
                // SQLite has row triggers only.
                for t in WATCHED {
                    for op in ["INSERT", "UPDATE", "DELETE"] {
                        db.execute_unprepared(&format!(
                            "CREATE TRIGGER tr_{t}_generation_{} AFTER {op} ON {t} \
                             BEGIN {bump}; END",
                            op.to_lowercase()
                        ))
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for name in ["insert", "update", "delete"] {
            let on = if manager.get_database_backend() == DbBackend::Postgres {
                " ON unit_month_fact"
            } else {
                ""
            };
            db.execute_unprepared(&format!(
                "DROP TRIGGER tr_unit_month_fact_generation_{name}{on}"
            ))
            .await?;
        }
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                for t in WATCHED {
                    db.execute_unprepared(&format!("DROP TRIGGER tr_{t}_generation ON {t}"))
                        .await?;
                }
                db.execute_unprepared("DROP FUNCTION cnscd_bump_generation()")
                    .await?;
            }
            _ => {
                for t in WATCHED {
                    for op in ["insert", "update", "delete"] {
                        db.execute_unprepared(&format!("DROP TRIGGER tr_{t}_generation_{op}"))
                            .await?;
                    }
                }
            }
        }
        db.execute_unprepared("DROP INDEX ix_fact_seq").await?;
        db.execute_unprepared("ALTER TABLE unit_month_fact DROP COLUMN seq")
            .await?;
        db.execute_unprepared("DROP TABLE data_generation").await?;
        Ok(())
    }
}
