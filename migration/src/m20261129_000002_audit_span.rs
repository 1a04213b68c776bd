//! The days an audit entry's row concerns, so that an entry is shown only where the row itself
//! may be seen (a membership that ended before the caller's area took its hamlet stays hidden
//! in the log too). Entries written before this migration concern the day they were made.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["concerns_from", "concerns_to"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("audit_entry"))
                        .add_column(ColumnDef::new(Alias::new(column)).date().null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["concerns_to", "concerns_from"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("audit_entry"))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
