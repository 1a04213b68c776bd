//! Whether the demo data set is loaded, and a team to give the demo TEAM_LEADER.
use crate::error::Result;
use crate::graphql::ids;
use cnscd_entity::team;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

/// Code prefix of the demo teams.
pub const DEMO_TEAM_PREFIX: &str = "DH-";

/// Whether the demo teams are already in the database.
pub async fn is_loaded(db: &impl ConnectionTrait) -> Result<bool> {
    Ok(team::Entity::find()
        .filter(team::Column::Code.starts_with(DEMO_TEAM_PREFIX))
        .one(db)
        .await?
        .is_some())
}

/// Whether the database is empty or holds the demo data set: the only databases on which the
/// published development secret may be used.
pub async fn holds_only_demo_data(db: &impl ConnectionTrait) -> Result<bool> {
    Ok(crate::units::import::is_empty(db).await? || is_loaded(db).await?)
}

/// Global id of the demo team of xóm Cà Phê (or the first demo team).
pub async fn first_team_id(db: &impl ConnectionTrait) -> Result<Option<String>> {
    let cafe = team::Entity::find()
        .filter(team::Column::NameSearch.contains("ca phe"))
        .filter(team::Column::Code.starts_with(DEMO_TEAM_PREFIX))
        .one(db)
        .await?;
    let team = match cafe {
        Some(t) => Some(t),
        None => {
            team::Entity::find()
                .order_by_asc(team::Column::Id)
                .one(db)
                .await?
        }
    };
    Ok(team.map(|t| ids::encode(ids::TEAM, t.id).0))
}
