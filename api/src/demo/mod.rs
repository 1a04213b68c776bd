//! The demo data set (being written).
mod status;
pub use status::{first_team_id, is_loaded};

#[derive(Debug)]
pub struct DemoReport;

pub async fn seed(
    _db: &sea_orm::DatabaseConnection,
    _dir: &std::path::Path,
    _scale: u32,
) -> crate::error::Result<DemoReport> {
    Err(crate::error::Error::Internal("demo seed not written yet".into()))
}
