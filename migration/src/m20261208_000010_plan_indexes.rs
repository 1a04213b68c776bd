//! Indexes for the lists' pages, so that every statement on a request's path reads through an
//! index in the generic plans PostgreSQL switches to after a statement's fifth run on a
//! connection (issue 16; `tests/tests/api/plans.rs` checks them):
//!
//! - `audit_entry (unit_code, id)`: an area's audit entries, reached from the area's units
//!   (`auth::area` leads every area condition with them), newest first.
//! - `period_lock (period_start DESC, unit_code, id)` and `data_value (period_start DESC,
//!   element_code, unit_code, source_system, id)`: the lists' own orders, so that a page of an
//!   area that covers everything (ADMIN) is the first entries of an index, not a sort of the
//!   whole table.
//! - `data_value (submitter, period_start)`: a reporter's own figures.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Name and definition; the same syntax on both backends.
const INDEXES: &[(&str, &str)] = &[
    ("ix_audit_unit", "audit_entry (unit_code, id)"),
    (
        "ix_period_lock_recent",
        "period_lock (period_start DESC, unit_code, id)",
    ),
    (
        "ix_data_value_recent",
        "data_value (period_start DESC, element_code, unit_code, source_system, id)",
    ),
    (
        "ix_data_value_submitter",
        "data_value (submitter, period_start)",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, on) in INDEXES {
            db.execute_unprepared(&format!("CREATE INDEX {name} ON {on}"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _) in INDEXES.iter().rev() {
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        Ok(())
    }
}
