//! Computing indicator values for units and periods, as recorded: units as they were in each
//! period. Flow elements come from the monthly rollups, state elements are counted at the
//! period's end, reported figures come from data values.
use crate::auth::{Action, Principal};
use crate::error::{Error, Result};
use crate::memory::Store;
use cnscd_entity::indicator_definition;
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
use std::collections::HashMap;

pub use super::model::{
    Breakdown, Computed, MAX_PERIODS, MAX_UNITS, MAX_VALUES, Mode, Request, Status,
    parse_expression,
};

/// The latest active version of each indicator, by code.
pub async fn definitions(
    db: &impl ConnectionTrait,
) -> Result<HashMap<String, indicator_definition::Model>> {
    let mut out = HashMap::new();
    for d in indicator_definition::Entity::find()
        .order_by_asc(indicator_definition::Column::Code)
        .order_by_asc(indicator_definition::Column::Version)
        .all(db)
        .await?
    {
        if d.active {
            out.insert(d.code.clone(), d);
        }
    }
    Ok(out)
}

/// Computes the values asked for.
pub async fn compute(
    db: &(impl ConnectionTrait + sea_orm::StreamTrait),
    store: &Store,
    principal: &Principal,
    req: &Request,
) -> Result<Vec<Computed>> {
    Ok(compute_as_of(db, store, principal, req).await?.0)
}

/// Computes the values asked for, and says which data they reflect: what was committed up to
/// that time ([`crate::memory::Snapshot::as_of`]).
pub async fn compute_as_of(
    db: &(impl ConnectionTrait + sea_orm::StreamTrait),
    store: &Store,
    principal: &Principal,
    req: &Request,
) -> Result<(Vec<Computed>, chrono::DateTime<chrono::Utc>)> {
    if req.from > req.to {
        return Err(Error::invalid(
            "from",
            format!("`from` ({}) is after `to` ({})", req.from, req.to),
        ));
    }
    if req.codes.is_empty() || req.unit_codes.is_empty() {
        return Ok((Vec::new(), chrono::Utc::now()));
    }
    // The hierarchy, catalogues, definitions, states, reported figures and activity rollups as
    // committed now (one statement when the in-memory copy is current).
    let held = store.snapshot(db).await?;
    let as_of = held.as_of();
    let (scope, today) = (
        principal.scope(Action::ReadIndicators),
        crate::units::service::today(),
    );
    // Read-locked while computing (nothing awaits meanwhile): routine changes wait for the
    // answer. An answer that looks at units without units under them reads their activity
    // flows first (the lock is not held across the read), then is computed.
    let needs = match super::compute::compute_or_needs(&held.view(), &scope, req, today)? {
        Ok(values) => return Ok((values, as_of)),
        Err(needs) => needs,
    };
    let leaves = held
        .leaf_flows(db, &needs.units, needs.first, needs.last)
        .await?;
    let values = super::compute::compute_on(&held.view(), &scope, req, today, &leaves)?;
    Ok((values, as_of))
}
