//! The subscriptions: `activitySubmitted` and `indicatorChanged`, each a stream over this
//! server's [`super::Bus`] filtered by the caller's area.
use super::service::{self, check_under, check_units, may_see};
use super::{Event, bus};
use crate::activities::types::Activity;
use crate::auth::{Action, Principal};
use crate::error::Error;
use crate::graphql::guard::Allowed;
use crate::graphql::{state, store};
use crate::indicators::periods::{self, Granularity};
use crate::indicators::service::{Breakdown, Mode, Request};
use crate::indicators::types::IndicatorValue;
use async_graphql::futures_util::stream::{self, Stream};
use async_graphql::{Context, Result, Subscription};
use chrono::NaiveDate;
use sea_orm::DatabaseConnection;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

#[derive(Default)]
pub struct EventSubscription;

/// The next event, or `None` when the bus is gone; a subscriber that fell behind skips what
/// it missed (and the log says so).
async fn next(rx: &mut Receiver<Arc<Event>>) -> Option<Arc<Event>> {
    loop {
        match rx.recv().await {
            Ok(e) => return Some(e),
            Err(RecvError::Lagged(n)) => {
                metrics::counter!("cnscd_live_events_missed_total").increment(n);
                tracing::warn!(missed = n, "live feed: a subscriber fell behind");
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

#[Subscription]
impl EventSubscription {
    /// Activities as they are stored (not replays of a retried submission), limited to the
    /// caller's area on the day each happened, as the `activities` list is: over
    /// `graphql-transport-ws` at `/graphql/ws`.
    #[graphql(guard = "Allowed(Action::ReadActivities)")]
    async fn activity_submitted<'ctx>(
        &self,
        ctx: &Context<'ctx>,
        #[graphql(
            desc = "Only activities in this unit or under it (on the day they happened); it must lie in the caller's area."
        )]
        under: Option<String>,
    ) -> Result<impl Stream<Item = Activity> + 'ctx> {
        let (db, principal) = state(ctx)?;
        let scope = principal.scope(Action::ReadActivities);
        let under = under.map(|u| u.trim().to_owned());
        if let Some(u) = &under {
            let snap = store(ctx)?.snapshot(db).await?;
            let mut team_units: Vec<String> = principal
                .teams
                .iter()
                .filter_map(|t| snap.view().team(*t).map(|t| t.unit_code))
                .collect();
            if scope.submitter.is_some() {
                // A REPORTER reads what it submitted, which lies in the units it reports for.
                team_units.extend(principal.scope(Action::SubmitActivities).units);
            }
            check_under(&snap, &scope, &team_units, u)?;
        }
        let rx = bus(ctx)?.subscribe();
        let loaders = crate::graphql::loaders::<crate::members::loaders::MemberLoaders>(ctx).ok();
        Ok(stream::unfold(rx, move |mut rx| {
            let scope = scope.clone();
            let under = under.clone();
            async move {
                loop {
                    let event = next(&mut rx).await?;
                    let Some(activity) = &event.activity else {
                        continue;
                    };
                    if !may_see(&scope, &event, activity)
                        || under.as_deref().is_some_and(|u| !service::under(&event, u))
                    {
                        continue;
                    }
                    // Each event is answered afresh: nothing cached from the one before.
                    if let Some(l) = loaders {
                        l.personal_data.clear::<i64>();
                    }
                    return Some((Activity::from((**activity).clone()), rx));
                }
            }
        }))
    }

    /// The values of indicators as changes come in (activities submitted, and any other change
    /// of a unit's figures published to the feed): for each change, the value of every code asked for, for each unit asked for that is the changed
    /// unit or above it on the day of the change, for the month of the change (MONTH, as
    /// recorded), as the `indicators` query answers it. Changes that come in together are
    /// answered together (one value per code, unit and month). Values the caller's area does
    /// not cover on every day of the month are not sent.
    #[graphql(guard = "Allowed(Action::ReadIndicators)")]
    async fn indicator_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Indicator codes, e.g. [\"CNS02\", \"EG01\"].")] codes: Vec<String>,
        #[graphql(desc = "Administrative unit codes, e.g. [\"169\"]; each in the caller's area.")]
        unit_codes: Vec<String>,
    ) -> Result<impl Stream<Item = IndicatorValue> + use<>> {
        let (db, principal) = state(ctx)?;
        let codes = cleaned(codes);
        let unit_codes = cleaned(unit_codes);
        if codes.is_empty() || codes.len() > crate::indicators::resolvers::MAX_CODES {
            return Err(Error::invalid(
                "codes",
                format!(
                    "`codes` needs 1 to {} indicator codes",
                    crate::indicators::resolvers::MAX_CODES
                ),
            )
            .into());
        }
        if unit_codes.is_empty() || unit_codes.len() > crate::indicators::service::MAX_UNITS {
            return Err(Error::invalid(
                "unitCodes",
                format!(
                    "`unitCodes` needs 1 to {} unit codes",
                    crate::indicators::service::MAX_UNITS
                ),
            )
            .into());
        }
        let store = store(ctx)?.clone();
        let snap = store.snapshot(db).await?;
        let unknown: Vec<&str> = codes
            .iter()
            .filter(|c| !snap.view().live.definitions.contains_key(*c))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(Error::invalid(
                "codes",
                format!(
                    "unknown indicator code(s): {} (see indicatorDefinitions)",
                    unknown.join(", ")
                ),
            )
            .into());
        }
        check_units(&snap, &principal.scope(Action::ReadIndicators), &unit_codes)?;
        let watch = Watch {
            rx: bus(ctx)?.subscribe(),
            pending: VecDeque::new(),
            db: db.clone(),
            store,
            principal: principal.clone(),
            codes,
            units: unit_codes,
        };
        Ok(stream::unfold(watch, |mut w| async move {
            loop {
                if let Some(v) = w.pending.pop_front() {
                    return Some((v, w));
                }
                let first = next(&mut w.rx).await?;
                let mut events = vec![first];
                loop {
                    match w.rx.try_recv() {
                        Ok(e) => events.push(e),
                        Err(TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
                w.answer(&events).await;
            }
        }))
    }
}

/// Trimmed, without blanks and repeats, in the order given.
fn cleaned(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for s in list {
        let s = s.trim().to_owned();
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// One `indicatorChanged` subscription.
struct Watch {
    rx: Receiver<Arc<Event>>,
    pending: VecDeque<IndicatorValue>,
    db: DatabaseConnection,
    store: crate::memory::Store,
    principal: Principal,
    codes: Vec<String>,
    units: Vec<String>,
}

impl Watch {
    /// Computes the values the events change, by month, into `pending`.
    async fn answer(&mut self, events: &[Arc<Event>]) {
        let mut by_month: BTreeMap<NaiveDate, BTreeSet<&String>> = BTreeMap::new();
        for e in events {
            let affected: Vec<&String> =
                self.units.iter().filter(|u| service::under(e, u)).collect();
            if !affected.is_empty() {
                let month = periods::containing(e.change.day, Granularity::Month).start;
                by_month.entry(month).or_default().extend(affected);
            }
        }
        for (month, units) in by_month {
            let span = periods::containing(month, Granularity::Month);
            let request = Request {
                codes: self.codes.clone(),
                unit_codes: units.into_iter().cloned().collect(),
                from: span.start,
                to: span.end,
                granularity: Granularity::Month,
                breakdown: Breakdown::Own,
                mode: Mode::AsRecorded,
            };
            match crate::indicators::service::compute(
                &self.db,
                &self.store,
                &self.principal,
                &request,
            )
            .await
            {
                Ok(values) => self.pending.extend(
                    values
                        .into_iter()
                        .filter(|v| v.readable)
                        .map(IndicatorValue::from),
                ),
                Err(e) => {
                    tracing::warn!(error = %e.message(), "live feed: indicator values not computed")
                }
            }
        }
    }
}
