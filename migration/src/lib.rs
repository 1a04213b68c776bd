//! Database migrations of cnscd, portable across SQLite and PostgreSQL.
pub use sea_orm_migration::prelude::*;

mod m20261128_000001_create_schema;
mod m20261129_000001_integrity;
mod m20261129_000002_audit_span;
mod m20261129_000003_indicator_targets;
mod m20261129_000004_data_generation;
mod m20261129_000010_rate_limit_bucket;
mod m20261129_000020_rollup_units;
mod m20261129_000021_intake_catalogues;
mod m20261129_000030_intake_history;
mod m20261129_000040_rollup_deltas;
mod m20261129_000050_activity_keys;
mod m20261129_000051_intake_storage;
mod m20261207_000001_audit_concerns_unit;
mod m20261207_000002_data_changes;
mod m20261208_000010_plan_indexes;
mod m20261208_000020_rollup_folds;
mod m20261208_000030_figure_change_unit;
mod m20261209_000010_unused_rollup_indexes;
mod m20261210_000010_redundant_figure_index;
mod m20261211_000010_persisted_queries;
mod m20261211_000020_webhooks;
mod m20261211_000030_rest_endpoints;

/// The caller identity encoding the integrity migration writes (see `cnscd_api::auth::identity`).
pub use m20261129_000001_integrity::identity as caller_identity;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_schema::Migration),
            Box::new(m20261129_000001_integrity::Migration),
            Box::new(m20261129_000002_audit_span::Migration),
            Box::new(m20261129_000003_indicator_targets::Migration),
            Box::new(m20261129_000004_data_generation::Migration),
            Box::new(m20261129_000010_rate_limit_bucket::Migration),
            Box::new(m20261129_000020_rollup_units::Migration),
            Box::new(m20261129_000021_intake_catalogues::Migration),
            Box::new(m20261129_000030_intake_history::Migration),
            Box::new(m20261129_000040_rollup_deltas::Migration),
            Box::new(m20261129_000050_activity_keys::Migration),
            Box::new(m20261129_000051_intake_storage::Migration),
            Box::new(m20261207_000001_audit_concerns_unit::Migration),
            Box::new(m20261207_000002_data_changes::Migration),
            Box::new(m20261208_000010_plan_indexes::Migration),
            Box::new(m20261208_000020_rollup_folds::Migration),
            Box::new(m20261208_000030_figure_change_unit::Migration),
            Box::new(m20261209_000010_unused_rollup_indexes::Migration),
            Box::new(m20261210_000010_redundant_figure_index::Migration),
            Box::new(m20261211_000010_persisted_queries::Migration),
            Box::new(m20261211_000020_webhooks::Migration),
            Box::new(m20261211_000030_rest_endpoints::Migration),
        ]
    }
}
