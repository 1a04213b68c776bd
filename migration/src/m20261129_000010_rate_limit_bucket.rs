//! Rate-limit buckets shared by the replicas on PostgreSQL (`cnscd_api::http::ratelimit`):
//! one row per client (a hash of its client id or subject, no identifier), refilled and
//! charged by one statement per request. Created on SQLite too (the schemas stay alike), where
//! the buckets are kept in memory instead.
//!
//! On PostgreSQL the table is UNLOGGED: a bucket is worth nothing after a crash (it refills in
//! a minute), and a transaction that changes only unlogged tables commits without waiting for
//! the write-ahead log to reach the disk, so the row of a busy client is held for the
//! statement alone, not for a disk flush per request.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let unlogged = if manager.get_database_backend() == DbBackend::Postgres {
            "UNLOGGED "
        } else {
            ""
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE {unlogged}TABLE rate_limit_bucket (\
                 key VARCHAR(32) NOT NULL PRIMARY KEY, \
                 tokens DOUBLE PRECISION NOT NULL, \
                 granted BOOLEAN NOT NULL, \
                 updated_at TIMESTAMP WITH TIME ZONE NOT NULL)"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE rate_limit_bucket")
            .await?;
        Ok(())
    }
}
