//! The data change log names the unit of a changed figure (`data_value`: element, period
//! start, period end and unit), so that a copy applies a figure sent as that one figure: it
//! reads that unit's figures of the element and period, and moves the sums of the units above
//! it by the difference, instead of reading and summing the whole element and period (every
//! commune of the country for a month).
//!
//! The triggers get names of their own (on SQLite a trigger dropped and created again by name
//! in one migration can meet a pooled connection that still sees the old one).
use crate::m20261207_000002_data_changes::sqlite_key;
use sea_orm_migration::SchemaManagerConnection;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const WITH_UNIT: &[&str] = &["element_code", "period_start", "period_end", "unit_code"];
const WITHOUT: &[&str] = &["element_code", "period_start", "period_end"];

/// Replaces the triggers named `old` by triggers named `new` logging `columns`.
async fn replace(
    db: &SchemaManagerConnection<'_>,
    postgres: bool,
    (old, new): (&str, &str),
    columns: &[&str],
) -> Result<(), DbErr> {
    if postgres {
        db.execute_unprepared(&format!("DROP TRIGGER {old} ON data_value"))
            .await?;
        let args: Vec<String> = std::iter::once("data_value")
            .chain(columns.iter().copied())
            .map(|a| format!("'{a}'"))
            .collect();
        db.execute_unprepared(&format!(
            "CREATE TRIGGER {new} AFTER INSERT OR UPDATE OR DELETE ON data_value \
             FOR EACH ROW EXECUTE FUNCTION cnscd_log_change({})",
            args.join(", ")
        ))
        .await?;
        return Ok(());
    }
    let log =
        |key: String| format!("INSERT INTO data_change (kind, key) VALUES ('data_value', {key});");
    let (new_key, old_key) = (sqlite_key("NEW", columns), sqlite_key("OLD", columns));
    for op in ["insert", "update", "delete"] {
        db.execute_unprepared(&format!("DROP TRIGGER {old}_{op}"))
            .await?;
    }
    db.execute_unprepared(&format!(
        "CREATE TRIGGER {new}_insert AFTER INSERT ON data_value BEGIN {} END",
        log(new_key.clone())
    ))
    .await?;
    db.execute_unprepared(&format!(
        "CREATE TRIGGER {new}_update AFTER UPDATE ON data_value BEGIN {} \
         INSERT INTO data_change (kind, key) SELECT 'data_value', {new_key} \
         WHERE ({new_key}) IS NOT ({old_key}); END",
        log(old_key.clone())
    ))
    .await?;
    db.execute_unprepared(&format!(
        "CREATE TRIGGER {new}_delete AFTER DELETE ON data_value BEGIN {} END",
        log(old_key)
    ))
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        replace(
            db,
            postgres,
            ("tr_data_value_change", "tr_data_value_unit_change"),
            WITH_UNIT,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        replace(
            db,
            postgres,
            ("tr_data_value_unit_change", "tr_data_value_change"),
            WITHOUT,
        )
        .await
    }
}
