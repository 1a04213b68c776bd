//! Stand-alone migration CLI (`cnscd migrate` does the same from the main binary).
use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(cnscd_migration::Migrator).await;
}
