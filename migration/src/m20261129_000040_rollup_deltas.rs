//! Rollups written as deltas: intake appends, nothing is updated in place.
//!
//! Until now every submission upserted its amounts into `unit_month_fact`: one row per unit,
//! element and month, each an index probe, a new row version and three index entries, and
//! concurrent submissions over the same unit and month waited for each other's rows until they
//! committed. That was most of what a batch of 100 activities cost the database (eight rows
//! per activity). From here on a write appends one row (`unit_month_delta`: every unit, month
//! and element amount it adds, as one `cells` text, stamped like the rollup rows), which
//! conflicts with nothing; a compaction folds the deltas into
//! `unit_month_fact` now and then, in one transaction that deletes the deltas it folds and
//! records on each rollup row the stamp below which every delta is in it (`horizon`). A rollup
//! cell is always its `unit_month_fact` value plus its deltas.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let stamp = if manager.get_database_backend() == DbBackend::Postgres {
            // The writing transaction's id, as on the rollup rows.
            "DEFAULT (pg_current_xact_id()::text::bigint)"
        } else {
            // The rollup generation, which the writer takes (one writer at a time).
            ""
        };
        // No key and no foreign keys: rows are only ever appended, read by stamp, and deleted
        // by the compaction; the units and elements were checked by the writer.
        db.execute_unprepared(&format!(
            "CREATE TABLE unit_month_delta (cells TEXT NOT NULL, seq BIGINT NOT NULL {stamp})"
        ))
        .await?;
        db.execute_unprepared("CREATE INDEX ix_delta_seq ON unit_month_delta (seq)")
            .await?;
        db.execute_unprepared(
            "ALTER TABLE unit_month_fact ADD COLUMN horizon BIGINT NOT NULL DEFAULT 0",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // The earlier form has no deltas: its service rebuilds the rollups at start-up when it
        // finds none while activities exist.
        db.execute_unprepared("DELETE FROM unit_month_fact").await?;
        db.execute_unprepared("DROP TABLE unit_month_delta").await?;
        db.execute_unprepared("ALTER TABLE unit_month_fact DROP COLUMN horizon")
            .await?;
        Ok(())
    }
}
