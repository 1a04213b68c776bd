//! Two indexes of the rollup rows (`unit_month_fact`) that nothing reads through any more:
//!
//! - `ix_fact_element_month (element_code, month_start)`: from when indicators were summed in
//!   SQL by element and month; the in-memory copy reads the rows whole, or by unit (the
//!   primary key).
//! - `ix_fact_seq (seq)`: from when a copy caught up by reading the rows stamped past its
//!   mark; it now reads the deltas (`unit_month_delta`, indexed on their own `seq`). The
//!   stamp stays (the change-log triggers tell rows written by hand from it).
//!
//! Both were kept up by every fold of intake's deltas (an indexed `seq` also kept the
//! fold's updates from being heap-only), and they were the slowest of a seed's index builds
//! (about a third of `seed national --activities 1000000`).
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Name and definition; the same syntax on both backends.
const INDEXES: &[(&str, &str)] = &[
    (
        "ix_fact_element_month",
        "unit_month_fact (element_code, month_start)",
    ),
    ("ix_fact_seq", "unit_month_fact (seq)"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _) in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {name}"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, on) in INDEXES {
            db.execute_unprepared(&format!("CREATE INDEX {name} ON {on}"))
                .await?;
        }
        Ok(())
    }
}
