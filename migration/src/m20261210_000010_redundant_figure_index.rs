//! `ix_data_value_element (element_code, period_start)` is the first two columns of
//! `ix_data_value_element_period (element_code, period_start, period_end)`: every statement it
//! served, the longer one serves in the same order. It was kept up by every figure written and
//! built once more by every seed (1.8 s of `seed national --activities 1000000`, 1.6 million
//! figures).
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ix_data_value_element")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_data_value_element ON data_value (element_code, period_start)",
            )
            .await?;
        Ok(())
    }
}
