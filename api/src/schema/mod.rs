//! The schema's assembly: the features' query, mutation and subscription roots merged into one
//! schema (the helpers every resolver shares are in [`crate::graphql`]).
pub mod admission;
pub mod loaders;
pub mod node;

use async_graphql::{MergedObject, MergedSubscription, Schema};
use sea_orm::DatabaseConnection;

/// Reading. Teams, members, activities, indicators and the audit log are limited to the
/// caller's area; units and catalogues are open to every authenticated caller.
#[derive(MergedObject, Default)]
pub struct Query(
    crate::auth::resolvers::MeQuery,
    node::NodeQuery,
    crate::units::resolvers::UnitQuery,
    crate::units::resolvers::UnitListQuery,
    crate::teams::resolvers::TeamQuery,
    crate::teams::resolvers::TeamListQuery,
    crate::members::resolvers::MemberQuery,
    crate::activities::resolvers::ActivityQuery,
    crate::activities::corrections::CorrectionQuery,
    crate::catalog::resolvers::CatalogQuery,
    crate::indicators::resolvers::IndicatorQuery,
    crate::indicators::admin::IndicatorTargetQuery,
    crate::audit::resolvers::AuditQuery,
    crate::datavalues::resolvers::DataValueQuery,
    crate::locks::resolvers::LockQuery,
    crate::webhooks::resolvers::WebhookQuery,
    crate::webhooks::resolvers::WebhookDeliveryQuery,
    crate::rest::resolvers::RestQuery,
);

/// Changing: each mutation takes one `input`, answers problems the caller can fix in
/// `userErrors`, and leaves an entry in the audit log.
#[derive(MergedObject, Default)]
pub struct Mutation(
    crate::teams::resolvers::TeamMutation,
    crate::members::resolvers::MemberMutation,
    crate::activities::resolvers::ActivityMutation,
    crate::indicators::admin::IndicatorMutation,
    crate::activities::corrections::CorrectionMutation,
    crate::datavalues::resolvers::DataValueMutation,
    crate::locks::resolvers::LockMutation,
    crate::webhooks::resolvers::WebhookMutation,
    crate::rest::resolvers::RestMutation,
);

/// The live feed, over `graphql-transport-ws` at `/graphql/ws` with the token in
/// `connection_init`: events limited to the caller's area on their day.
#[derive(MergedSubscription, Default)]
pub struct Subscription(crate::events::resolvers::EventSubscription);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Builds the schema; `db`, `store` (the in-memory indicator data of that database) and
/// `events` (the live feed) are shared, everything per caller is added per request.
pub fn build_schema(
    db: DatabaseConnection,
    store: crate::memory::Store,
    events: crate::events::Bus,
    allow_private: crate::webhooks::resolvers::AllowPrivate,
    admission: std::sync::Arc<admission::Admission>,
) -> AppSchema {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .data(db)
    .data(store)
    .data(crate::activities::intake::Pool::default())
    .data(events)
    .data(allow_private)
    .data(admission as std::sync::Arc<dyn crate::rest::document::CheckDocument>)
    // Requests reach this schema parsed and admitted (`admission::Admission`: limits and the
    // validation rules), so it skips the rules and carries no extension.
    .validation_mode(async_graphql::ValidationMode::Fast)
    .limit_recursive_depth(crate::graphql::limits::RECURSIVE_DEPTH)
    .limit_directives(crate::graphql::limits::MAX_DIRECTIVES)
    .finish()
}

/// The schema without a database, to print the SDL.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .finish()
    .sdl()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::plain::{
        CONNECTION_COLUMNS, Columns, EDGE_COLUMNS, PAGE_INFO, check_table,
    };
    use crate::members::types::{
        MEMBERSHIP, MEMBERSHIP_NESTED, MEMBERSHIP_NORMAL, PERSON, PERSON_NORMAL,
    };
    use crate::teams::fields::{TEAM, TEAM_NESTED, TEAM_NORMAL};
    use async_graphql::OutputType;
    use async_graphql::registry::Registry;

    fn registry() -> Registry {
        let mut registry = Registry::default();
        <Query as OutputType>::create_type_info(&mut registry);
        registry
    }

    #[test]
    fn one_step_tables_match_the_schema() {
        // Every type the one-step path renders: each column exists, takes no arguments and is a
        // scalar or enum; every other field of the type is planned by its owner or declared as
        // resolved the normal way, so a field added later is placed on purpose.
        let registry = registry();
        let problems = [
            check_table(&registry, &TEAM, TEAM_NESTED, TEAM_NORMAL),
            check_table(&registry, &MEMBERSHIP, MEMBERSHIP_NESTED, MEMBERSHIP_NORMAL),
            check_table(&registry, &PERSON, &[], PERSON_NORMAL),
            check_table(&registry, &PAGE_INFO, &[], &[]),
            check_table(
                &registry,
                &Columns {
                    type_name: "TeamConnection",
                    fields: CONNECTION_COLUMNS,
                },
                &["pageInfo", "edges", "nodes"],
                &[],
            ),
            check_table(
                &registry,
                &Columns {
                    type_name: "TeamEdge",
                    fields: EDGE_COLUMNS,
                },
                &["node"],
                &[],
            ),
        ]
        .concat();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn every_audit_action_names_a_mutation_and_the_type_it_changes() {
        let mut registry = Registry::default();
        <Mutation as OutputType>::create_type_info(&mut registry);
        let Some(mutations) = registry.types.get("Mutation").and_then(|t| t.fields()) else {
            panic!("no mutation root in the registry");
        };
        for action in crate::audit::service::AuditAction::ALL {
            assert!(mutations.contains_key(action.as_str()), "{action:?}");
            assert!(
                registry.types.contains_key(action.entity_type()),
                "{action:?}"
            );
        }
    }

    #[test]
    fn a_table_that_strays_from_the_schema_is_caught() {
        let registry = registry();
        let wrong: Columns<()> = Columns {
            type_name: "Team",
            fields: &[
                ("nickname", |_| async_graphql::Value::Null),
                ("members", |_| async_graphql::Value::Null),
                ("unit", |_| async_graphql::Value::Null),
                ("name", |_| async_graphql::Value::Null),
            ],
        };
        let problems = check_table(&registry, &wrong, &["ghost"], &["name"]);
        for expected in [
            "Team.nickname is in the table but not in the schema",
            "Team.members takes arguments",
            "Team.unit is not a scalar or enum",
            "Team.name is both a column and resolved the normal way",
            "Team.ghost is planned as nested but not in the schema",
            "Team.code is neither in the one-step table",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "{expected:?} not in {problems:#?}"
            );
        }
        let none: Columns<()> = Columns {
            type_name: "Nothing",
            fields: &[],
        };
        assert_eq!(
            check_table(&registry, &none, &[], &[]),
            ["Nothing is not an object type of the schema"]
        );
    }
}
