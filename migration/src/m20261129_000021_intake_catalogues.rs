//! The catalogues and locks a submission is checked against, watched by the data generation.
//!
//! Intake checks an activity against the activity kinds, the digital services, the teams, the
//! dated hierarchy and the period locks held in memory (instead of reading them per
//! submission); the first three tables of these join the ones whose changes bump the data
//! generation (see `m20261129_000004_data_generation`), so every replica sees a new lock or a
//! retired kind on its next request.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &["activity_kind", "digital_service", "period_lock"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for t in TABLES {
            if manager.get_database_backend() == DbBackend::Postgres {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER tr_{t}_generation AFTER INSERT OR UPDATE OR DELETE OR \
                     TRUNCATE ON {t} FOR EACH STATEMENT EXECUTE FUNCTION cnscd_bump_generation()"
                ))
                .await?;
            } else {
                for op in ["INSERT", "UPDATE", "DELETE"] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER tr_{t}_generation_{} AFTER {op} ON {t} \
                         BEGIN UPDATE data_generation SET n = n + 1 WHERE id = 1; END",
                        op.to_lowercase()
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for t in TABLES {
            if manager.get_database_backend() == DbBackend::Postgres {
                db.execute_unprepared(&format!("DROP TRIGGER tr_{t}_generation ON {t}"))
                    .await?;
            } else {
                for op in ["insert", "update", "delete"] {
                    db.execute_unprepared(&format!("DROP TRIGGER tr_{t}_generation_{op}"))
                        .await?;
                }
            }
        }
        Ok(())
    }
}
