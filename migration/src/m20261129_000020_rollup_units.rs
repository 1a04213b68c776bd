//! Rollups per unit where activities were recorded, stamped without a shared counter on
//! PostgreSQL.
//!
//! Until now `unit_month_fact` held a row for the activity's unit and for every unit above it,
//! and every rollup write bumped one counter row: two rows (the province's, the counter) that
//! every submission in the province updated and held until it committed, so concurrent
//! submissions queued behind each other. From here on a row holds the activities recorded at
//! its own unit only (the service sums the units above in memory), keyed by the first day from
//! which the unit sat where it sits for the rest of the month; and on PostgreSQL it is stamped
//! (`seq`) with the id of the transaction that wrote it (`pg_current_xact_id()`), which a
//! reader compares with the oldest transaction still running (`pg_snapshot_xmin`) instead of a
//! counter. On SQLite, which has one writer at a time anyway, the rollup generation stays.
//!
//! The old rows are removed: the service rebuilds the rollups at start-up when it finds none
//! while activities exist.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The stamp a PostgreSQL transaction writes.
const XACT: &str = "pg_current_xact_id()::text::bigint";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DELETE FROM unit_month_fact").await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            // Rows written by any other path (by hand, say) get their transaction's stamp too,
            // instead of bumping the data generation.
            db.execute_unprepared(
                "DROP TRIGGER tr_unit_month_fact_generation_insert ON unit_month_fact",
            )
            .await?;
            db.execute_unprepared(
                "DROP TRIGGER tr_unit_month_fact_generation_update ON unit_month_fact",
            )
            .await?;
            db.execute_unprepared(&format!(
                "ALTER TABLE unit_month_fact ALTER COLUMN seq SET DEFAULT {XACT}"
            ))
            .await?;
            db.execute_unprepared(&format!(
                "CREATE FUNCTION cnscd_stamp_rollup() RETURNS trigger LANGUAGE plpgsql \
                 AS $$ BEGIN NEW.seq := {XACT}; RETURN NEW; END $$"
            ))
            .await?;
            for (name, when) in [
                (
                    "insert",
                    "BEFORE INSERT ON unit_month_fact FOR EACH ROW WHEN (NEW.seq = 0)",
                ),
                (
                    "update",
                    "BEFORE UPDATE ON unit_month_fact FOR EACH ROW WHEN (NEW.seq = OLD.seq)",
                ),
            ] {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER tr_unit_month_fact_stamp_{name} {when} \
                     EXECUTE FUNCTION cnscd_stamp_rollup()"
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DELETE FROM unit_month_fact").await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            for name in ["insert", "update"] {
                db.execute_unprepared(&format!(
                    "DROP TRIGGER tr_unit_month_fact_stamp_{name} ON unit_month_fact"
                ))
                .await?;
            }
            db.execute_unprepared("DROP FUNCTION cnscd_stamp_rollup()")
                .await?;
            db.execute_unprepared("ALTER TABLE unit_month_fact ALTER COLUMN seq SET DEFAULT 0")
                .await?;
            for (name, when) in [
                (
                    "insert",
                    "AFTER INSERT ON unit_month_fact FOR EACH ROW WHEN (NEW.seq = 0)",
                ),
                (
                    "update",
                    "AFTER UPDATE ON unit_month_fact FOR EACH ROW WHEN (NEW.seq = OLD.seq)",
                ),
            ] {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER tr_unit_month_fact_generation_{name} {when} \
                     EXECUTE FUNCTION cnscd_bump_generation()"
                ))
                .await?;
            }
        }
        Ok(())
    }
}
