//! The unit an audit entry's row has now (`concerns_unit`), beside the unit it had when the
//! change was made (`unit_code`). An entry is read by its row's own rule on the row's current
//! days (`concerns_from`, `concerns_to`) and, with this column, its current unit: an activity
//! corrected into another unit takes its earlier entries with it, as it takes their days.
//!
//! Existing entries take the unit of their row's latest entry, which is the row's unit now
//! (every change of a row is recorded, and its entry names the row's unit after the change).
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE audit_entry ADD COLUMN concerns_unit TEXT")
            .await?;
        db.execute_unprepared(
            "UPDATE audit_entry SET concerns_unit = (SELECT l.unit_code FROM audit_entry l \
             WHERE l.entity_type = audit_entry.entity_type \
             AND l.entity_id = audit_entry.entity_id ORDER BY l.id DESC LIMIT 1)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE audit_entry DROP COLUMN concerns_unit")
            .await?;
        Ok(())
    }
}
