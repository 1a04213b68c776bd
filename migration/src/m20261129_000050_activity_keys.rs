//! A submitted activity carries its idempotency key.
//!
//! Until now every submission also wrote an `idempotency_record` row (its own table row, two
//! index entries and a sequence value) pointing at the activity. The activity now holds the key
//! and the hash of the submission itself (`activity.idempotency_key`, `activity.request_hash`),
//! unique per submitter (`ux_activity_key`), so a submission writes one row less and a retry
//! finds the activity in one probe. `idempotency_record` keeps the keys of the other
//! operations (`submitDataValues`). Existing records of submissions move onto their
//! activities; `down` moves them back.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for column in ["idempotency_key", "request_hash"] {
            db.execute_unprepared(&format!("ALTER TABLE activity ADD COLUMN {column} TEXT"))
                .await?;
        }
        // Records whose scope is the activity's submitter (all of them, since the integrity
        // migration); any other stays where it is, and intake still reads it.
        db.execute_unprepared(
            "UPDATE activity SET \
             idempotency_key = (SELECT r.idempotency_key FROM idempotency_record r \
               WHERE r.operation = 'submitActivity' AND r.resource_id = activity.id \
               AND r.scope = activity.submitter), \
             request_hash = (SELECT r.request_hash FROM idempotency_record r \
               WHERE r.operation = 'submitActivity' AND r.resource_id = activity.id \
               AND r.scope = activity.submitter) \
             WHERE EXISTS (SELECT 1 FROM idempotency_record r \
               WHERE r.operation = 'submitActivity' AND r.resource_id = activity.id \
               AND r.scope = activity.submitter)",
        )
        .await?;
        db.execute_unprepared(
            "DELETE FROM idempotency_record WHERE operation = 'submitActivity' AND EXISTS \
             (SELECT 1 FROM activity a WHERE a.id = idempotency_record.resource_id \
              AND a.submitter = idempotency_record.scope \
              AND a.idempotency_key = idempotency_record.idempotency_key)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_activity_key ON activity (submitter, idempotency_key)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "INSERT INTO idempotency_record (scope, idempotency_key, operation, request_hash, \
             resource_id, created_at) \
             SELECT submitter, idempotency_key, 'submitActivity', COALESCE(request_hash, ''), id, \
             created_at FROM activity WHERE idempotency_key IS NOT NULL",
        )
        .await?;
        db.execute_unprepared("DROP INDEX ux_activity_key").await?;
        for column in ["idempotency_key", "request_hash"] {
            db.execute_unprepared(&format!("ALTER TABLE activity DROP COLUMN {column}"))
                .await?;
        }
        Ok(())
    }
}
