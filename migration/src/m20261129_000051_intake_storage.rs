//! Cheaper intake writes on PostgreSQL.
//!
//! - Activity ids are handed out a thousand at a time: the `activity` id column's sequence steps by
//!   1,000 and each value is the first of a block its taker alone uses (a "pooled" id
//!   generator; the service asks once per thousand submissions instead of once per id, each
//!   `nextval` being a write to the sequence). Inserts that take the column's default get one
//!   id of a block and leave the rest unused.
//! - Rollup deltas (`unit_month_delta.cells`, a few kilobytes of JSON per batch) are
//!   compressed with LZ4 instead of the default pglz, several times faster to write, where the
//!   server was built with it.
//!
//! SQLite has neither: nothing to do there.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

/// Ids per block.
pub const ID_BLOCK: i64 = 1000;

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn has_lz4(db: &SchemaManagerConnection<'_>) -> Result<bool, DbErr> {
    Ok(db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT 1 AS yes FROM pg_settings WHERE name = 'default_toast_compression' \
             AND 'lz4' = ANY(enumvals)",
        ))
        .await?
        .is_some())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "ALTER TABLE activity ALTER COLUMN id SET INCREMENT BY {ID_BLOCK}"
        ))
        .await?;
        if has_lz4(db).await? {
            db.execute_unprepared(
                "ALTER TABLE unit_month_delta ALTER COLUMN cells SET COMPRESSION lz4",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE activity ALTER COLUMN id SET INCREMENT BY 1")
            .await?;
        if has_lz4(db).await? {
            db.execute_unprepared(
                "ALTER TABLE unit_month_delta ALTER COLUMN cells SET COMPRESSION default",
            )
            .await?;
        }
        Ok(())
    }
}
