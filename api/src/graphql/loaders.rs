//! The per-request bundle of DataLoaders (never shared between requests or callers). Every
//! loader of rows that belong to an area carries the caller's scope for reading them, so a
//! nested field shows only what its own rows' rule shows (`auth::area`).
use crate::auth::{Action, Principal};
use async_graphql::dataloader::{DataLoader, HashMapCache};
use sea_orm::DatabaseConnection;

pub struct Loaders {
    pub unit: DataLoader<crate::units::loaders::LatestUnit>,
    pub unit_on: DataLoader<crate::units::loaders::UnitOn>,
    pub children: DataLoader<crate::units::loaders::ChildrenOn>,
    pub successors: DataLoader<crate::units::loaders::Successions>,
    pub predecessors: DataLoader<crate::units::loaders::Successions>,
    /// Teams the caller may read.
    pub team: DataLoader<crate::teams::loaders::TeamById>,
    /// The latest activity of each team among those the caller may read.
    pub latest_activity: DataLoader<crate::teams::loaders::LatestActivity>,
    /// The memberships of each team that the caller may read.
    pub memberships: DataLoader<crate::members::loaders::MembershipsByTeam>,
    /// Whether the caller may read the personal data of each membership's person.
    /// Cached for the request: a person's personal fields resolve one after the other.
    pub personal_data: DataLoader<crate::members::loaders::MembershipInScope, HashMapCache>,
    pub person: DataLoader<crate::members::loaders::PersonById>,
    pub outcomes: DataLoader<crate::activities::loaders::OutcomesByActivity>,
}

impl Loaders {
    pub fn new(
        db: &DatabaseConnection,
        store: &crate::memory::Store,
        principal: &Principal,
    ) -> Self {
        use crate::{activities, members, teams, units};
        let spawn = tokio::spawn;
        let scoped = |action| (db.clone(), principal.scope(action));
        Self {
            unit: DataLoader::new(units::loaders::LatestUnit(db.clone()), spawn),
            unit_on: DataLoader::new(units::loaders::UnitOn(db.clone()), spawn),
            children: DataLoader::new(units::loaders::ChildrenOn(db.clone()), spawn),
            successors: DataLoader::new(
                units::loaders::Successions(db.clone(), units::loaders::Side::Old),
                spawn,
            ),
            predecessors: DataLoader::new(
                units::loaders::Successions(db.clone(), units::loaders::Side::New),
                spawn,
            ),
            team: {
                let (db, scope) = scoped(Action::ReadTeams);
                DataLoader::new(teams::loaders::TeamById { db, scope }, spawn)
            },
            latest_activity: {
                let (db, scope) = scoped(Action::ReadActivities);
                DataLoader::new(teams::loaders::LatestActivity { db, scope }, spawn)
            },
            memberships: {
                let (db, scope) = scoped(Action::ReadMembers);
                DataLoader::new(
                    members::loaders::MembershipsByTeam {
                        db,
                        store: store.clone(),
                        scope,
                    },
                    spawn,
                )
            },
            personal_data: {
                let (db, scope) = scoped(Action::ReadPersonalData);
                DataLoader::with_cache(
                    members::loaders::MembershipInScope { db, scope },
                    spawn,
                    HashMapCache::default(),
                )
            },
            person: DataLoader::new(members::loaders::PersonById(db.clone()), spawn),
            outcomes: DataLoader::new(activities::loaders::OutcomesByActivity(db.clone()), spawn),
        }
    }
}
