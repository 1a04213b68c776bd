//! The whole data model: units, teams, members, catalogues, activities, figures, indicators,
//! locks, audit and idempotency records, and the monthly rollups.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn id(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}
fn text(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string()
        .not_null()
        .to_owned()
}
fn text_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).string().null().to_owned()
}
fn date(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .date()
        .not_null()
        .to_owned()
}
fn date_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).date().null().to_owned()
}
fn int(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .integer()
        .not_null()
        .to_owned()
}
fn int_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).integer().null().to_owned()
}
fn big(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .to_owned()
}
fn big_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .null()
        .to_owned()
}
fn double(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .double()
        .not_null()
        .to_owned()
}
fn boolean(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .boolean()
        .not_null()
        .default(true)
        .to_owned()
}
fn ts(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}
fn json_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).json().null().to_owned()
}

fn table(name: &str, columns: Vec<ColumnDef>) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(Alias::new(name));
    for mut c in columns {
        t.col(&mut c);
    }
    t.to_owned()
}

fn index(table: &str, name: &str, columns: &[&str], unique: bool) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(Alias::new(table));
    for c in columns {
        i.col(Alias::new(*c));
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}

/// Tables in creation order (dropped in reverse).
const TABLES: &[&str] = &[
    "admin_unit",
    "admin_unit_closure",
    "admin_unit_succession",
    "team",
    "person",
    "membership",
    "activity_kind",
    "digital_service",
    "affiliation",
    "data_element",
    "activity",
    "activity_outcome",
    "data_value",
    "indicator_definition",
    "period_lock",
    "audit_entry",
    "idempotency_record",
    "unit_month_fact",
];

fn catalogue(name: &str, extra: Vec<ColumnDef>) -> TableCreateStatement {
    let mut cols = vec![
        ColumnDef::new(Alias::new("code"))
            .string()
            .not_null()
            .primary_key()
            .to_owned(),
        text("name_vi"),
        text("name_en"),
    ];
    cols.extend(extra);
    table(name, cols)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = vec![
            table(
                "admin_unit",
                vec![
                    id("id"),
                    text("code"),
                    text("name"),
                    text("name_search"),
                    text_null("unit_type"),
                    text("level"),
                    text_null("parent_code"),
                    date("valid_from"),
                    date("valid_to"),
                ],
            ),
            Table::create()
                .table(Alias::new("admin_unit_closure"))
                .col(text("ancestor_code"))
                .col(text("descendant_code"))
                .col(date("valid_from"))
                .col(date("valid_to"))
                .col(int("depth"))
                .col(text("descendant_level"))
                .primary_key(
                    Index::create()
                        .col(Alias::new("ancestor_code"))
                        .col(Alias::new("descendant_code"))
                        .col(Alias::new("valid_from")),
                )
                .to_owned(),
            table(
                "admin_unit_succession",
                vec![
                    id("id"),
                    text("old_code"),
                    text("new_code"),
                    text("kind"),
                    date("effective_on"),
                    text_null("legal_basis"),
                ],
            ),
            table(
                "team",
                vec![
                    id("id"),
                    text("code"),
                    text("name"),
                    text("name_search"),
                    text("unit_code"),
                    date("founded_on"),
                    text_null("decision_number"),
                    date_null("decision_date"),
                    text("status"),
                    date_null("dissolved_on"),
                    text_null("dissolution_reason"),
                    ts("created_at"),
                    ts("updated_at"),
                ],
            ),
            table(
                "person",
                vec![
                    id("id"),
                    text("full_name"),
                    text("name_search"),
                    text_null("gender"),
                    int_null("birth_year"),
                    text_null("phone"),
                    text_null("email"),
                    ts("created_at"),
                ],
            ),
            table(
                "membership",
                vec![
                    id("id"),
                    big("team_id"),
                    big("person_id"),
                    text("role"),
                    text("affiliation"),
                    date("started_on"),
                    date_null("ended_on"),
                    text_null("end_reason"),
                    ts("created_at"),
                    ts("updated_at"),
                ],
            ),
            catalogue("activity_kind", vec![int("sort_order"), boolean("active")]),
            catalogue(
                "digital_service",
                vec![
                    ColumnDef::new(Alias::new("cashless"))
                        .boolean()
                        .not_null()
                        .default(false)
                        .to_owned(),
                    int("sort_order"),
                    boolean("active"),
                ],
            ),
            catalogue("affiliation", vec![int("sort_order"), boolean("active")]),
            catalogue("data_element", vec![text("source"), text("aggregation")]),
            table(
                "activity",
                vec![
                    id("id"),
                    big("team_id"),
                    text("unit_code"),
                    text("kind_code"),
                    date("occurred_on"),
                    text("title"),
                    text_null("description"),
                    int_null("participants"),
                    int_null("households_reached"),
                    text("status"),
                    text("submitted_by"),
                    text_null("client_id"),
                    ts("created_at"),
                    ts("updated_at"),
                ],
            ),
            table(
                "activity_outcome",
                vec![
                    id("id"),
                    big("activity_id"),
                    text("service_code"),
                    int("people"),
                    int_null("households"),
                ],
            ),
            table(
                "data_value",
                vec![
                    id("id"),
                    text("unit_code"),
                    text("element_code"),
                    date("period_start"),
                    date("period_end"),
                    double("value"),
                    text("source_system"),
                    text("submitted_by"),
                    text_null("client_id"),
                    ts("submitted_at"),
                ],
            ),
            table(
                "indicator_definition",
                vec![
                    id("id"),
                    text("code"),
                    int("version"),
                    text("name_vi"),
                    text("name_en"),
                    text_null("description"),
                    text("numerator"),
                    text_null("denominator"),
                    double("factor"),
                    boolean("active"),
                    ts("created_at"),
                ],
            ),
            table(
                "period_lock",
                vec![
                    id("id"),
                    text("unit_code"),
                    date("period_start"),
                    date("period_end"),
                    text("locked_by"),
                    ts("locked_at"),
                    text_null("reason"),
                ],
            ),
            table(
                "audit_entry",
                vec![
                    id("id"),
                    ts("occurred_at"),
                    text("subject"),
                    text_null("client_id"),
                    text("roles"),
                    text("action"),
                    text("entity_type"),
                    text("entity_id"),
                    text_null("unit_code"),
                    json_null("before"),
                    json_null("after"),
                    text_null("request_id"),
                ],
            ),
            table(
                "idempotency_record",
                vec![
                    id("id"),
                    text("scope"),
                    text("idempotency_key"),
                    text("operation"),
                    text("request_hash"),
                    big_null("resource_id"),
                    ts("created_at"),
                ],
            ),
            Table::create()
                .table(Alias::new("unit_month_fact"))
                .col(text("unit_code"))
                .col(text("element_code"))
                .col(date("month_start"))
                .col(double("value"))
                .primary_key(
                    Index::create()
                        .col(Alias::new("unit_code"))
                        .col(Alias::new("element_code"))
                        .col(Alias::new("month_start")),
                )
                .to_owned(),
        ];
        for t in tables {
            manager.create_table(t).await?;
        }

        let indexes = [
            index(
                "admin_unit",
                "ux_admin_unit_code_from",
                &["code", "valid_from"],
                true,
            ),
            index(
                "admin_unit",
                "ix_admin_unit_parent",
                &["parent_code", "valid_from"],
                false,
            ),
            index(
                "admin_unit",
                "ix_admin_unit_level",
                &["level", "valid_from"],
                false,
            ),
            index(
                "admin_unit_closure",
                "ix_closure_descendant",
                &["descendant_code", "valid_from", "valid_to"],
                false,
            ),
            index(
                "admin_unit_closure",
                "ix_closure_ancestor_level",
                &["ancestor_code", "descendant_level", "valid_from"],
                false,
            ),
            index(
                "admin_unit_succession",
                "ux_succession",
                &["old_code", "new_code", "effective_on"],
                true,
            ),
            index(
                "admin_unit_succession",
                "ix_succession_new",
                &["new_code"],
                false,
            ),
            index("team", "ux_team_code", &["code"], true),
            index("team", "ix_team_unit", &["unit_code"], false),
            index(
                "membership",
                "ix_membership_team",
                &["team_id", "started_on"],
                false,
            ),
            index("membership", "ix_membership_person", &["person_id"], false),
            index(
                "activity",
                "ix_activity_unit_date",
                &["unit_code", "occurred_on"],
                false,
            ),
            index(
                "activity",
                "ix_activity_team_date",
                &["team_id", "occurred_on"],
                false,
            ),
            index("activity", "ix_activity_date", &["occurred_on"], false),
            index(
                "activity_outcome",
                "ux_activity_outcome",
                &["activity_id", "service_code"],
                true,
            ),
            index(
                "data_value",
                "ux_data_value",
                &[
                    "unit_code",
                    "element_code",
                    "period_start",
                    "period_end",
                    "source_system",
                ],
                true,
            ),
            index(
                "data_value",
                "ix_data_value_element",
                &["element_code", "period_start"],
                false,
            ),
            index(
                "indicator_definition",
                "ux_indicator_code_version",
                &["code", "version"],
                true,
            ),
            index(
                "period_lock",
                "ix_period_lock_unit",
                &["unit_code", "period_start"],
                false,
            ),
            index(
                "audit_entry",
                "ix_audit_entity",
                &["entity_type", "entity_id"],
                false,
            ),
            index("audit_entry", "ix_audit_time", &["occurred_at"], false),
            index(
                "idempotency_record",
                "ux_idempotency",
                &["scope", "idempotency_key"],
                true,
            ),
            index(
                "unit_month_fact",
                "ix_fact_element_month",
                &["element_code", "month_start"],
                false,
            ),
        ];
        for i in indexes {
            manager.create_index(i).await?;
        }
        // A team has at most one open leadership: enforced by the database so that concurrent
        // requests cannot both succeed. Partial indexes have the same syntax on both backends.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_membership_one_leader ON membership (team_id) \
                 WHERE role = 'LEADER' AND ended_on IS NULL",
            )
            .await?;
        // A person holds at most one open membership of a team.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_membership_open ON membership (team_id, person_id) \
                 WHERE ended_on IS NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in TABLES.iter().rev() {
            manager
                .drop_table(
                    Table::drop()
                        .table(Alias::new(*name))
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
