//! The per-request bundle of DataLoaders (never shared between requests or callers).
use crate::auth::Principal;
use async_graphql::dataloader::DataLoader;
use sea_orm::DatabaseConnection;

pub struct Loaders {
    pub unit: DataLoader<crate::units::loaders::LatestUnit>,
    pub unit_on: DataLoader<crate::units::loaders::UnitOn>,
    pub children: DataLoader<crate::units::loaders::ChildrenOn>,
    pub successors: DataLoader<crate::units::loaders::Successions>,
    pub predecessors: DataLoader<crate::units::loaders::Successions>,
    pub team: DataLoader<crate::teams::loaders::TeamById>,
    pub team_in_area: DataLoader<crate::teams::loaders::TeamInArea>,
    pub latest_activity: DataLoader<crate::teams::loaders::LatestActivity>,
    pub memberships: DataLoader<crate::members::loaders::MembershipsByTeam>,
    pub person: DataLoader<crate::members::loaders::PersonById>,
    pub outcomes: DataLoader<crate::activities::loaders::OutcomesByActivity>,
}

impl Loaders {
    pub fn new(db: &DatabaseConnection, principal: &Principal) -> Self {
        let spawn = tokio::spawn;
        Self {
            unit: DataLoader::new(crate::units::loaders::LatestUnit(db.clone()), spawn),
            unit_on: DataLoader::new(crate::units::loaders::UnitOn(db.clone()), spawn),
            children: DataLoader::new(crate::units::loaders::ChildrenOn(db.clone()), spawn),
            successors: DataLoader::new(
                crate::units::loaders::Successions(db.clone(), crate::units::loaders::Side::Old),
                spawn,
            ),
            predecessors: DataLoader::new(
                crate::units::loaders::Successions(db.clone(), crate::units::loaders::Side::New),
                spawn,
            ),
            team: DataLoader::new(crate::teams::loaders::TeamById(db.clone()), spawn),
            team_in_area: DataLoader::new(
                crate::teams::loaders::TeamInArea {
                    db: db.clone(),
                    units: principal.units.clone(),
                },
                spawn,
            ),
            latest_activity: DataLoader::new(
                crate::teams::loaders::LatestActivity(db.clone()),
                spawn,
            ),
            memberships: DataLoader::new(
                crate::members::loaders::MembershipsByTeam(db.clone()),
                spawn,
            ),
            person: DataLoader::new(crate::members::loaders::PersonById(db.clone()), spawn),
            outcomes: DataLoader::new(
                crate::activities::loaders::OutcomesByActivity(db.clone()),
                spawn,
            ),
        }
    }
}
