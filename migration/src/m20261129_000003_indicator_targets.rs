//! Indicator targets, and the day each indicator definition version takes effect.
//!
//! `indicator_target` holds one target per indicator, unit and calendar period (a whole month,
//! quarter or year; the service checks the shape, the database the order of the dates). The
//! unit code references the registry of unit codes (`admin_unit_code`, see the integrity
//! migration); the indicator code is versioned in `indicator_definition`, so it has no single
//! row to reference and the service checks it.
//!
//! `indicator_definition.valid_from`: a period is computed with the version whose `valid_from`
//! is the latest on or before the period's first day. Rows already present get 2000-01-01,
//! "valid since records began".
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn col(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("indicator_definition"))
                    .add_column(col("valid_from").date().default("2000-01-01"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("indicator_target"))
                    .col(
                        col("id")
                            .big_integer()
                            .auto_increment()
                            .primary_key()
                            .to_owned(),
                    )
                    .col(col("indicator_code").string())
                    .col(col("unit_code").string())
                    .col(col("period_start").date())
                    .col(col("period_end").date())
                    .col(col("target").double())
                    .col(col("set_by").string())
                    .col(col("set_at").timestamp_with_time_zone())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_indicator_target_unit")
                            .from(Alias::new("indicator_target"), Alias::new("unit_code"))
                            .to(Alias::new("admin_unit_code"), Alias::new("code")),
                    )
                    .check((
                        Alias::new("ck_indicator_target_period"),
                        Expr::cust("period_end >= period_start"),
                    ))
                    .check((
                        Alias::new("ck_indicator_target_value"),
                        Expr::cust("target >= 0"),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_indicator_target")
                    .table(Alias::new("indicator_target"))
                    .col(Alias::new("indicator_code"))
                    .col(Alias::new("unit_code"))
                    .col(Alias::new("period_start"))
                    .col(Alias::new("period_end"))
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_indicator_target_unit")
                    .table(Alias::new("indicator_target"))
                    .col(Alias::new("unit_code"))
                    .col(Alias::new("period_start"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("indicator_target"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("indicator_definition"))
                    .drop_column(Alias::new("valid_from"))
                    .to_owned(),
            )
            .await
    }
}
