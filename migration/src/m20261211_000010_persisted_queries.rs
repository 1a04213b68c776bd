//! The query texts of automatic persisted queries (`cnscd_api::http::persisted`), shared by
//! the replicas: a text under its SHA-256, and when it was last used, so that the least
//! recently used go first once more than the kept number are stored.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE persisted_query (\
             hash VARCHAR(64) NOT NULL PRIMARY KEY, \
             query TEXT NOT NULL, \
             last_used TIMESTAMP WITH TIME ZONE NOT NULL)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX ix_persisted_query_last_used ON persisted_query (last_used)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE persisted_query")
            .await?;
        Ok(())
    }
}
