//! What intake keeps besides the current rows: replaced reported figures, earlier versions of
//! corrected or voided activities, the answer given to an idempotent batch of figures, who
//! submitted a figure, and at most one lock per unit and period.
//!
//! - `data_value_history`: a reported figure as it was before a newer one for the same unit,
//!   element, period and source replaced it, with when and by whom it was replaced.
//! - `activity_version`: an activity (row and outcomes, as JSON) as it was before each
//!   correction or void, numbered from 1, with the reason given.
//! - `data_value.submitter`: the caller identity (`["subject","client"]`, as on `activity`)
//!   that sent the figure, so that a reporter reads what it sent.
//! - `idempotency_record.response`: the answer a batch operation gave, returned again to a retry
//!   with the same key.
//! - `ux_period_lock`: one lock per unit and period.
//!
//! Every step adds a table, a column or an index: no table is rebuilt, so the SQLite triggers of
//! `m20261129_000004_data_generation` stay in place.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn col(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).not_null().to_owned()
}

fn null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).null().to_owned()
}

fn id() -> ColumnDef {
    col("id")
        .big_integer()
        .auto_increment()
        .primary_key()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("data_value_history"))
                    .col(id())
                    .col(col("data_value_id").big_integer())
                    .col(col("unit_code").string())
                    .col(col("element_code").string())
                    .col(col("period_start").date())
                    .col(col("period_end").date())
                    .col(col("value").double())
                    .col(col("source_system").string())
                    .col(col("submitted_by").string())
                    .col(null("client_id").string())
                    .col(col("submitted_at").timestamp_with_time_zone())
                    .col(col("replaced_at").timestamp_with_time_zone())
                    .col(col("replaced_by").string())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_data_value_history_unit")
                            .from(Alias::new("data_value_history"), Alias::new("unit_code"))
                            .to(Alias::new("admin_unit_code"), Alias::new("code")),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_data_value_history_element")
                            .from(Alias::new("data_value_history"), Alias::new("element_code"))
                            .to(Alias::new("data_element"), Alias::new("code")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_data_value_history_key")
                    .table(Alias::new("data_value_history"))
                    .col(Alias::new("unit_code"))
                    .col(Alias::new("element_code"))
                    .col(Alias::new("period_start"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("activity_version"))
                    .col(id())
                    .col(col("activity_id").big_integer())
                    .col(col("version").integer())
                    .col(col("action").string())
                    .col(col("reason").string())
                    .col(col("data").json())
                    .col(col("changed_by").string())
                    .col(null("client_id").string())
                    .col(col("changed_at").timestamp_with_time_zone())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_activity_version_activity")
                            .from(Alias::new("activity_version"), Alias::new("activity_id"))
                            .to(Alias::new("activity"), Alias::new("id")),
                    )
                    .check((
                        Alias::new("ck_activity_version_action"),
                        Expr::cust("action IN ('CORRECT', 'VOID')"),
                    ))
                    .check((
                        Alias::new("ck_activity_version_number"),
                        Expr::cust("version >= 1"),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_activity_version")
                    .table(Alias::new("activity_version"))
                    .col(Alias::new("activity_id"))
                    .col(Alias::new("version"))
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("data_value"))
                    .add_column(col("submitter").string().default(""))
                    .to_owned(),
            )
            .await?;
        fill_submitters(manager).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("idempotency_record"))
                    .add_column(null("response").json())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_period_lock")
                    .table(Alias::new("period_lock"))
                    .col(Alias::new("unit_code"))
                    .col(Alias::new("period_start"))
                    .col(Alias::new("period_end"))
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ux_period_lock")
                    .table(Alias::new("period_lock"))
                    .to_owned(),
            )
            .await?;
        for (table, column) in [
            ("idempotency_record", "response"),
            ("data_value", "submitter"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        for table in ["activity_version", "data_value_history"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Sets the submitter of the figures already stored from who sent them.
async fn fill_submitters(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let pairs = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT DISTINCT submitted_by, client_id FROM data_value",
        ))
        .await?;
    let sql = if backend == DbBackend::Postgres {
        "UPDATE data_value SET submitter = $1 WHERE submitted_by = $2 \
         AND client_id IS NOT DISTINCT FROM $3"
    } else {
        "UPDATE data_value SET submitter = ? WHERE submitted_by = ? AND client_id IS ?"
    };
    for r in pairs {
        let by: String = r.try_get("", "submitted_by")?;
        let client: Option<String> = r.try_get("", "client_id")?;
        let identity = crate::m20261129_000001_integrity::identity(&by, client.as_deref());
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [identity.into(), by.into(), client.into()],
        ))
        .await?;
    }
    Ok(())
}
