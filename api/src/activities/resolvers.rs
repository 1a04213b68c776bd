//! Activity queries and mutations: guard, convert, delegate.
use super::intake;
use super::service::{self, ActivityFilter, NewActivity, NewOutcome};
use super::types::{
    Activity, ActivityStatus, SubmitActivitiesInput, SubmitActivitiesPayload, SubmitActivityInput,
    SubmitActivityPayload,
};
use crate::audit::service::RequestId;
use crate::auth::Action;
use crate::error::{ErrorCode, UserError, into_payload};
use crate::graphql::guard::Allowed;
use crate::graphql::pagination::{Conn, PageArgs, connection, list_field};
use crate::graphql::{Date, ids, state};
use async_graphql::{Context, ID, Object, Result};

list_field! {
    /// Reading activities.
    ActivityQuery,
    /// Activities the caller may read, newest first.
    activities(
        #[graphql(desc = "Only activities of this team.")] team_id: Option<ID>,
        #[graphql(desc = "Only activities in this unit or under it (on the day they happened).")]
        under: Option<String>,
        #[graphql(desc = "Activity kind code.")] kind: Option<String>,
        #[graphql(desc = "First day, inclusive.")] from: Option<Date>,
        #[graphql(desc = "Last day, inclusive.")] to: Option<Date>,
        #[graphql(desc = "Default RECORDED.")] status: Option<ActivityStatus>,
        #[graphql(desc = "Part of the title.")] search: Option<String>,
    ) -> Conn<Activity> = list_activities, guard = "Allowed(Action::ReadActivities)"
}

#[allow(clippy::too_many_arguments)]
async fn list_activities(
    ctx: &Context<'_>,
    team_id: Option<ID>,
    under: Option<String>,
    kind: Option<String>,
    from: Option<Date>,
    to: Option<Date>,
    status: Option<ActivityStatus>,
    search: Option<String>,
    page: PageArgs,
) -> Result<Conn<Activity>> {
    let (db, principal) = state(ctx)?;
    let (from, to) = crate::error::Error::in_order(from.map(|d| d.0), to.map(|d| d.0))?;
    let filter = ActivityFilter {
        team_id: team_id
            .map(|id| ids::input_id(ids::TEAM, "teamId", &id))
            .transpose()?,
        under,
        kind,
        from,
        to,
        status: status.map(Into::into),
        search,
    };
    Ok(connection(
        service::list(db, principal, &filter, &page).await?,
    ))
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
            let new = new_activity(input, "input")?;
            service::submit(
                db,
                crate::graphql::store(ctx)?,
                intake_pool(ctx)?,
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

    /// Records up to 500 activities at once, each idempotent per caller and its own key (as
    /// `submitActivity`); results in input order. Items that pass are stored even when others
    /// fail, unless `atomic` is true (then nothing is stored unless all pass). A retried batch
    /// stores nothing twice and answers the same results (as replays).
    #[graphql(guard = "Allowed(Action::SubmitActivities)")]
    async fn submit_activities(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The activities.")] input: SubmitActivitiesInput,
    ) -> Result<SubmitActivitiesPayload> {
        let (db, principal) = state(ctx)?;
        let n = input.items.len();
        if !(1..=MAX_BATCH).contains(&n) {
            return Ok(SubmitActivitiesPayload {
                results: Vec::new(),
                user_errors: vec![UserError::new(
                    "input.items",
                    format!("items must hold 1 to {MAX_BATCH} submissions, not {n}"),
                    ErrorCode::Validation,
                )],
            });
        }
        let items = input
            .items
            .into_iter()
            .enumerate()
            .map(|(i, item)| new_activity(item, &format!("items.{i}")))
            .collect();
        let outcomes = intake::submit(
            db,
            (crate::graphql::store(ctx)?, intake_pool(ctx)?),
            principal,
            ctx.data_opt::<RequestId>(),
            items,
            true,
            input.atomic,
        )
        .await?;
        let fresh: Vec<&cnscd_entity::activity::Model> = outcomes
            .iter()
            .filter_map(|o| match o {
                Ok((a, false)) => Some(a),
                _ => None,
            })
            .collect();
        if !fresh.is_empty() {
            crate::events::publish_activities(ctx, &fresh);
        }
        let mut results = Vec::with_capacity(outcomes.len());
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let (done, mut user_errors) = into_payload(outcome)?;
            // Errors of no one field (a team out of reach, a locked period) name the item.
            for e in &mut user_errors {
                if e.field.is_none() {
                    e.field = Some(vec!["items".to_owned(), i.to_string()]);
                }
            }
            let replayed = done.as_ref().is_some_and(|(_, r)| *r);
            let counted = match &done {
                Some(_) if replayed => "replayed",
                Some(_) => "created",
                None => "rejected",
            };
            metrics::counter!("cnscd_activities_submitted_total", "result" => counted).increment(1);
            results.push(SubmitActivityPayload {
                activity: done.map(|(a, _)| a.into()),
                replayed,
                user_errors,
            });
        }
        Ok(SubmitActivitiesPayload {
            results,
            user_errors: Vec::new(),
        })
    }
}

/// Most activities one `submitActivities` takes.
pub const MAX_BATCH: usize = 500;

/// An activity as the service takes it; a malformed team id is reported under `prefix`.
fn new_activity(input: SubmitActivityInput, prefix: &str) -> crate::error::Result<NewActivity> {
    let team_id = ids::input_id(ids::TEAM, &format!("{prefix}.teamId"), &input.team_id)?;
    Ok(NewActivity {
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
    })
}

/// Intake's pool of the application (activity ids taken ahead, deltas written).
fn intake_pool<'a>(ctx: &Context<'a>) -> Result<&'a super::intake::Pool, crate::error::Error> {
    ctx.data::<super::intake::Pool>()
        .map_err(|_| crate::error::Error::Internal("no intake pool in the schema".into()))
}
