//! A generation counter for the data indicators read from memory.
//!
//! The service keeps the dated hierarchy, the catalogues, the indicator definitions, teams,
//! memberships and reported figures in memory to compute indicators without reading them per
//! request. `data_generation.n` tells whether that copy is current: triggers bump it in the
//! same transaction as any change to those tables, whichever path makes it (the service, an
//! import, a correction typed into `psql`), so every replica sees the change on its next
//! request and reloads. Activities are not watched: their monthly rollups are read per request.
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
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE data_generation (id INTEGER NOT NULL PRIMARY KEY, n BIGINT NOT NULL, \
             CHECK (id = 1))",
        )
        .await?;
        db.execute_unprepared("INSERT INTO data_generation (id, n) VALUES (1, 1)")
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
            }
            _ => {
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
        db.execute_unprepared("DROP TABLE data_generation").await?;
        Ok(())
    }
}
