//! Saved GraphQL operations served as REST endpoints (`/api/rest/{name}`) and described by the
//! OpenAPI document (`cnscd_api::rest`).
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE rest_endpoint (\
                 name VARCHAR(64) NOT NULL PRIMARY KEY, \
                 method VARCHAR(4) NOT NULL CHECK (method IN ('GET', 'POST')), \
                 document TEXT NOT NULL, \
                 description TEXT NULL, \
                 saved_by TEXT NOT NULL, \
                 saved_at TIMESTAMP WITH TIME ZONE NOT NULL)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE rest_endpoint")
            .await?;
        Ok(())
    }
}
