//! Activity queries and mutations: guard, convert, delegate.
use super::service::{self, ActivityFilter, NewActivity, NewOutcome};
use super::types::{Activity, ActivityStatus, SubmitActivityInput, SubmitActivityPayload};
use crate::audit::service::RequestId;
use crate::auth::Action;
use crate::error::into_payload;
use crate::graphql::guard::Allowed;
use crate::graphql::pagination::{Conn, PageArgs, connection};
use crate::graphql::{Date, ids, state};
use async_graphql::{Context, ID, Object, Result};

#[derive(Default)]
pub struct ActivityQuery;

#[Object]
impl ActivityQuery {
    /// Activities the caller may read, newest first.
    #[graphql(
        guard = "Allowed(Action::ReadActivities)",
        complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn activities(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only activities of this team.")] team_id: Option<ID>,
        #[graphql(desc = "Only activities in this unit or under it (on the day they happened).")]
        under: Option<String>,
        #[graphql(desc = "Activity kind code.")] kind: Option<String>,
        #[graphql(desc = "First day, inclusive.")] from: Option<Date>,
        #[graphql(desc = "Last day, inclusive.")] to: Option<Date>,
        #[graphql(desc = "Default RECORDED.")] status: Option<ActivityStatus>,
        #[graphql(desc = "Part of the title.")] search: Option<String>,
        #[graphql(
            desc = "Number of items from the start of the list (after `after`), 0 to 100; 20 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(desc = "Cursor of an edge: only items after it.")] after: Option<String>,
        #[graphql(
            desc = "Number of items from the end of the list (before `before`), 0 to 100; not with `first`."
        )]
        last: Option<i32>,
        #[graphql(desc = "Cursor of an edge: only items before it.")] before: Option<String>,
    ) -> Result<Conn<Activity>> {
        let (db, principal) = state(ctx)?;
        let team_id = match team_id {
            Some(id) => Some(ids::input_id(ids::TEAM, "teamId", &id)?),
            None => None,
        };
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(crate::error::Error::invalid("from", "`from` is after `to`").into());
        }
        let filter = ActivityFilter {
            team_id,
            under,
            kind,
            from: from.map(|d| d.0),
            to: to.map(|d| d.0),
            status: status.map(Into::into),
            search,
        };
        Ok(connection(
            service::list(
                db,
                principal,
                &filter,
                &PageArgs::new(first, after, last, before),
            )
            .await?,
        ))
    }
}

#[derive(Default)]
pub struct ActivityMutation;

#[Object]
impl ActivityMutation {
    /// Records what a team did (ADMIN, UNIT_ADMIN and REPORTER of the area, TEAM_LEADER of the
    /// team). Idempotent per caller and `idempotencyKey`.
    #[graphql(guard = "Allowed(Action::SubmitActivities)")]
    async fn submit_activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The activity.")] input: SubmitActivityInput,
    ) -> Result<SubmitActivityPayload> {
        let (db, principal) = state(ctx)?;
        let result = async {
            let team_id = ids::input_id(ids::TEAM, "input.teamId", &input.team_id)?;
            let new = NewActivity {
                idempotency_key: input.idempotency_key,
                team_id,
                kind: input.kind.trim().to_owned(),
                occurred_on: input.occurred_on.0,
                unit_code: input.unit_code,
                title: input.title,
                description: input.description,
                participants: input.participants,
                households_reached: input.households_reached,
                outcomes: input
                    .outcomes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|o| NewOutcome {
                        service: o.service.trim().to_owned(),
                        people: o.people,
                        households: o.households,
                    })
                    .collect(),
            };
            service::submit(
                db,
                crate::graphql::store(ctx)?,
                principal,
                ctx.data_opt::<RequestId>(),
                new,
            )
            .await
        }
        .await;
        let (done, user_errors) = into_payload(result)?;
        let replayed = done.as_ref().is_some_and(|(_, r)| *r);
        if let Some((stored, false)) = &done {
            crate::events::publish_activities(ctx, &[stored]);
        }
        let counted = match &done {
            Some(_) if replayed => "replayed",
            Some(_) => "created",
            None => "rejected",
        };
        metrics::counter!("cnscd_activities_submitted_total", "result" => counted).increment(1);
        Ok(SubmitActivityPayload {
            activity: done.map(|(a, _)| a.into()),
            replayed,
            user_errors,
        })
    }
}
