//! Team queries and changes, always inside the caller's area.
use crate::audit::service::{AuditAction, Change, RequestId, record, reread};
use crate::auth::{Action, Columns, Last, Principal, allows, scope_condition};
use crate::db::{OnUnique, Unique, Where};
use crate::error::{Error, Problems, Result};
use crate::ids;
use crate::paging::{PageArgs, Window};
use crate::text;
use crate::units::service as units;
use chrono::{NaiveDate, Utc};
use cnscd_entity::codes::{TeamStatus, UnitLevel};
use cnscd_entity::{membership, team};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, Set,
};

/// Columns of `team t` for area conditions: a team concerns every day of its life, from its
/// founding to the day before its dissolution (or today).
pub const TEAM_COLUMNS: Columns<'static> = Columns {
    unit: "t.unit_code",
    from: "t.founded_on",
    last: Last::Before("t.dissolved_on"),
    team: Some("t.id"),
    submitter: None,
};

/// Filters of the `teams` list.
#[derive(Default, Debug)]
pub struct TeamFilter {
    pub under: Option<String>,
    pub unit_code: Option<String>,
    pub status: Option<TeamStatus>,
    pub search: Option<String>,
    pub active_on: Option<NaiveDate>,
}

/// Adds the caller's area for `action` to a query over `team t`.
pub fn scope(w: &mut Where, principal: &Principal, action: Action) {
    if let Some((sql, values)) = scope_condition(&principal.scope(action), &TEAM_COLUMNS) {
        w.and(sql, values);
    }
}

/// A page of teams in the caller's area; `with_total` false skips counting every match when
/// the caller does not show `totalCount` (see [`crate::db::page_untotalled`]).
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &TeamFilter,
    args: &PageArgs,
    with_total: bool,
) -> Result<(Vec<team::Model>, Window, u64)> {
    let mut w = Where::new();
    scope(&mut w, principal, Action::ReadTeams);
    if let Some(under) = &filter.under {
        let (sql, values) = crate::auth::under_indexed(std::slice::from_ref(under), &TEAM_COLUMNS);
        w.and(sql, values);
    }
    if let Some(u) = &filter.unit_code {
        w.and("t.unit_code = ?", [u.clone().into()]);
    }
    if let Some(s) = &filter.status {
        w.and("t.status = ?", [s.as_str().into()]);
    }
    if let Some(d) = filter.active_on {
        w.and(
            "t.founded_on <= ? AND (t.dissolved_on IS NULL OR t.dissolved_on > ?)",
            [d.into(), d.into()],
        );
    }
    if let Some(s) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
        w.and(
            "t.name_search LIKE ? ESCAPE '\\' OR t.code = ?",
            [text::like_pattern(s).into(), s.trim().into()],
        );
    }
    if with_total {
        crate::db::page::<team::Entity>(db, "t", "team t", "t.id", &w, args).await
    } else {
        crate::db::page_untotalled::<team::Entity>(db, "t", "team t", "t.id", &w, args).await
    }
}

/// The team with this id if the caller may read it (otherwise NOT_FOUND, as if absent).
pub async fn get(
    db: &impl ConnectionTrait,
    principal: &Principal,
    action: Action,
    id: i64,
) -> Result<team::Model> {
    let mut w = Where::new();
    w.and("t.id = ?", [id.into()]);
    scope(&mut w, principal, action);
    team::Entity::find()
        .from_raw_sql(crate::db::stmt(
            db.get_database_backend(),
            &format!("SELECT t.* FROM team t{}", w.sql()),
            w.values,
        ))
        .one(db)
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "no team {} in the caller's area",
                ids::global(ids::TEAM, id)
            ))
        })
}

/// The days a team concerns, for its audit entries: its life.
fn concerns(t: &team::Model) -> (NaiveDate, Option<NaiveDate>) {
    (
        t.founded_on,
        t.dissolved_on
            .and_then(|d| d.pred_opt())
            .map(|d| d.max(t.founded_on)),
    )
}

/// The first day a membership or recorded activity of the team concerns.
async fn first_dependent_day(db: &impl ConnectionTrait, id: i64) -> Result<Option<NaiveDate>> {
    dependent_day(db, id, "MIN").await
}

/// The last day a membership starts or a recorded activity happened in the team.
async fn last_dependent_day(db: &impl ConnectionTrait, id: i64) -> Result<Option<NaiveDate>> {
    dependent_day(db, id, "MAX").await
}

async fn dependent_day(db: &impl ConnectionTrait, id: i64, agg: &str) -> Result<Option<NaiveDate>> {
    let rows = crate::db::query(
        db,
        &format!(
            "SELECT {agg}(d) AS d FROM (SELECT started_on AS d FROM membership WHERE team_id = ? \
             UNION ALL SELECT occurred_on FROM activity WHERE team_id = ? AND status = 'RECORDED') x"
        ),
        vec![id.into(), id.into()],
    )
    .await?;
    Ok(rows
        .first()
        .and_then(|r| r.try_get::<Option<NaiveDate>>("", "d").ok())
        .flatten())
}

/// Checks that the caller may manage teams in `unit_code` on `on`.
pub async fn require_manage_unit(
    db: &impl ConnectionTrait,
    principal: &Principal,
    field: &str,
    unit_code: &str,
    on: NaiveDate,
) -> Result<()> {
    if allows(
        db,
        &principal.scope(Action::ManageTeams),
        None,
        unit_code,
        on,
    )
    .await?
    {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "{field}: unit {unit_code} is outside the caller's area on {on}"
        )))
    }
}

fn check_text(p: &mut Problems, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        p.add(
            field,
            format!(
                "{} must not be empty",
                field.rsplit('.').next().unwrap_or(field)
            ),
        );
    } else if value.chars().count() > max {
        p.add(field, format!("must be at most {max} characters"));
    }
}

fn check_code(p: &mut Problems, field: &str, code: &str) {
    if code.is_empty()
        || code.len() > 40
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        p.add(
            field,
            "a team code is 1 to 40 letters, digits, '-', '_' or '.'",
        );
    }
}

/// Fields of a new team.
pub struct NewTeam {
    pub unit_code: String,
    pub name: String,
    pub code: Option<String>,
    pub founded_on: NaiveDate,
    pub decision_number: Option<String>,
    pub decision_date: Option<NaiveDate>,
}

fn check_dates(p: &mut Problems, founded_on: NaiveDate, decision_date: Option<NaiveDate>) {
    let today = units::today();
    if founded_on > today {
        p.add(
            "input.foundedOn",
            format!("foundedOn {founded_on} is in the future"),
        );
    }
    if let Some(d) = decision_date
        && d > today
    {
        p.add(
            "input.decisionDate",
            format!("decisionDate {d} is in the future"),
        );
    }
}

pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    input: NewTeam,
) -> Result<team::Model> {
    let mut p = Problems::default();
    let name = text::clean(&input.name);
    check_text(&mut p, "input.name", &name, 200);
    if let Some(c) = &input.code {
        check_code(&mut p, "input.code", c.trim());
    }
    check_dates(&mut p, input.founded_on, input.decision_date);
    p.finish()?;
    let unit = units::require_on(db, "input.unitCode", &input.unit_code, input.founded_on).await?;
    if !matches!(unit.level, UnitLevel::Hamlet | UnitLevel::Commune) {
        return Err(Error::invalid(
            "input.unitCode",
            format!(
                "a team belongs to a hamlet or a commune; {} is a {}",
                unit.code,
                unit.level.as_str().to_lowercase()
            ),
        ));
    }
    require_manage_unit(
        db,
        principal,
        "input.unitCode",
        &unit.code,
        input.founded_on,
    )
    .await?;
    // A generated code can be taken by a concurrent request between reading and inserting
    // (a code given by hand, say): then the whole transaction is tried again with the next
    // free code.
    let mut attempt = 0;
    let (txn, model) = loop {
        attempt += 1;
        let txn = crate::db::begin_write(db).await?;
        let now = Utc::now();
        let code = match input.code.as_deref() {
            Some(c) => c.trim().to_owned(),
            None => generated_code(&txn, &unit.code).await?,
        };
        let inserted = team::ActiveModel {
            code: Set(code.clone()),
            name: Set(name.clone()),
            name_search: Set(text::fold(&name)),
            unit_code: Set(unit.code.clone()),
            founded_on: Set(input.founded_on),
            decision_number: Set(input
                .decision_number
                .as_deref()
                .map(text::clean)
                .filter(|d| !d.is_empty())),
            decision_date: Set(input.decision_date),
            status: Set(TeamStatus::Active),
            dissolved_on: Set(None),
            dissolution_reason: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(model) => break (txn, model),
            Err(e) if input.code.is_none() && TEAM_CODE.violated_by(&e) && attempt < 5 => {
                txn.rollback().await?;
            }
            Err(e) => return Err(code_conflict(e, &code)),
        }
    };
    let change = team_change(AuditAction::CreateTeam, None, &model);
    record(&txn, principal, request, change).await?;
    txn.commit().await?;
    Ok(model)
}

/// A new code for a team of `unit`, inside the transaction that inserts it. On PostgreSQL
/// requests generating a code in the same unit take turns until commit (SQLite's write
/// transactions already do), so the next one reads the code just taken instead of failing on
/// it.
async fn generated_code(txn: &impl ConnectionTrait, unit: &str) -> Result<String> {
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        crate::db::query(
            txn,
            "SELECT pg_advisory_xact_lock(hashtextextended(?, 0)) IS NULL AS x",
            vec![format!("team code in {unit}").into()],
        )
        .await?;
    }
    next_code(txn, unit).await
}

/// The first free code `{unit}-T{n}`, counting from the unit's number of teams.
async fn next_code(db: &impl ConnectionTrait, unit: &str) -> Result<String> {
    let mut n = team::Entity::find()
        .filter(team::Column::UnitCode.eq(unit))
        .count(db)
        .await?
        + 1;
    loop {
        let candidate = format!("{unit}-T{n}");
        let taken = team::Entity::find()
            .filter(team::Column::Code.eq(candidate.as_str()))
            .one(db)
            .await?
            .is_some();
        if !taken {
            return Ok(candidate);
        }
        n += 1;
    }
}

/// A team's code, unique among all teams.
const TEAM_CODE: Unique = Unique {
    name: "ux_team_code",
    columns: "team.code",
};

/// A write of team code `code` that failed, perhaps because the code is taken.
fn code_conflict(e: sea_orm::DbErr, code: &str) -> Error {
    e.on_unique(TEAM_CODE, || {
        Error::Conflict(format!(
            "team code `{code}` is already taken: give the team another `code`"
        ))
    })
}

/// Changes to a team's details.
pub struct TeamChanges {
    pub name: Option<String>,
    pub code: Option<String>,
    pub founded_on: Option<NaiveDate>,
    pub decision_number: Option<String>,
    pub decision_date: Option<NaiveDate>,
}

pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    id: i64,
    changes: TeamChanges,
) -> Result<team::Model> {
    // The caller manages the team on some day of its life (NOT_FOUND otherwise); a moved
    // founding day must lie in its area both where it was and where it goes.
    let before = get(db, principal, Action::ManageTeams, id).await?;
    if let Some(d) = changes.founded_on.filter(|d| *d != before.founded_on) {
        for (field, on) in [("input.teamId", before.founded_on), ("input.foundedOn", d)] {
            require_manage_unit(db, principal, field, &before.unit_code, on).await?;
        }
    }
    let mut p = Problems::default();
    let name = changes.name.as_deref().map(text::clean);
    if let Some(n) = &name {
        check_text(&mut p, "input.name", n, 200);
    }
    if let Some(c) = &changes.code {
        check_code(&mut p, "input.code", c.trim());
    }
    let founded_on = changes.founded_on.unwrap_or(before.founded_on);
    check_dates(&mut p, founded_on, changes.decision_date);
    if let Some(d) = before.dissolved_on
        && founded_on > d
    {
        p.add(
            "input.foundedOn",
            format!("foundedOn {founded_on} is after the team was dissolved ({d})"),
        );
    }
    if changes.founded_on.is_some()
        && let Some(first) = first_dependent_day(db, id).await?
        && founded_on > first
    {
        p.add(
            "input.foundedOn",
            format!(
                "foundedOn {founded_on} is after the team's first membership or activity ({first})"
            ),
        );
    }
    p.finish()?;
    let txn = crate::db::begin_write(db).await?;
    let before = reread(&txn, team::Entity::find_by_id(id), &before, "team").await?;
    let mut am: team::ActiveModel = before.clone().into();
    if let Some(n) = name {
        am.name_search = Set(text::fold(&n));
        am.name = Set(n);
    }
    if let Some(c) = &changes.code {
        am.code = Set(c.trim().to_owned());
    }
    if changes.founded_on.is_some() {
        am.founded_on = Set(founded_on);
    }
    if let Some(d) = changes.decision_number {
        am.decision_number = Set(Some(text::clean(&d)).filter(|d| !d.is_empty()));
    }
    if let Some(d) = changes.decision_date {
        am.decision_date = Set(Some(d));
    }
    am.updated_at = Set(Utc::now());
    let after = am
        .update(&txn)
        .await
        .map_err(|e| code_conflict(e, changes.code.as_deref().unwrap_or_default()))?;
    let change = team_change(AuditAction::UpdateTeam, Some(&before), &after);
    record(&txn, principal, request, change).await?;
    txn.commit().await?;
    Ok(after)
}

/// The audit entry of a change to a team: the row before (none for a new team) and after; it
/// concerns the team's unit and days after the change.
fn team_change(action: AuditAction, before: Option<&team::Model>, after: &team::Model) -> Change {
    Change {
        action,
        entity_id: ids::global(ids::TEAM, after.id),
        unit_code: Some(after.unit_code.clone()),
        concerns: Some(concerns(after)),
        before: before.and_then(|b| serde_json::to_value(b).ok()),
        after: serde_json::to_value(after).ok(),
    }
}

pub async fn dissolve(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    id: i64,
    dissolved_on: NaiveDate,
    reason: Option<String>,
) -> Result<team::Model> {
    let before = get(db, principal, Action::ManageTeams, id).await?;
    if before.status == TeamStatus::Dissolved {
        return Err(Error::Conflict(format!(
            "the team was already dissolved on {}",
            before
                .dissolved_on
                .map(|d| d.to_string())
                .unwrap_or_default()
        )));
    }
    let mut p = Problems::default();
    if dissolved_on < before.founded_on {
        p.add(
            "input.dissolvedOn",
            format!(
                "dissolvedOn {dissolved_on} is before the team was founded ({})",
                before.founded_on
            ),
        );
    }
    if dissolved_on > units::today() {
        p.add(
            "input.dissolvedOn",
            format!("dissolvedOn {dissolved_on} is in the future"),
        );
    }
    if let Some(r) = &reason
        && r.chars().count() > 1000
    {
        p.add("input.reason", "must be at most 1000 characters");
    }
    if dissolved_on >= before.founded_on
        && let Some(last) = last_dependent_day(db, id).await?
        && dissolved_on < last
    {
        p.add(
            "input.dissolvedOn",
            format!(
                "dissolvedOn {dissolved_on} is before the team's last membership start or activity ({last})"
            ),
        );
    }
    p.finish()?;
    require_manage_unit(
        db,
        principal,
        "input.teamId",
        &before.unit_code,
        dissolved_on,
    )
    .await?;
    let txn = crate::db::begin_write(db).await?;
    let before = reread(&txn, team::Entity::find_by_id(id), &before, "team").await?;
    // Open memberships end the day the team is dissolved.
    let open = membership::Entity::find()
        .filter(membership::Column::TeamId.eq(id))
        .filter(membership::Column::EndedOn.is_null())
        .all(&txn)
        .await?;
    for m in open {
        let mut am: membership::ActiveModel = m.into();
        am.ended_on = Set(Some(dissolved_on.max(*am.started_on.as_ref())));
        am.end_reason = Set(Some("team dissolved".into()));
        am.updated_at = Set(Utc::now());
        am.update(&txn).await?;
    }
    let mut am: team::ActiveModel = before.clone().into();
    am.status = Set(TeamStatus::Dissolved);
    am.dissolved_on = Set(Some(dissolved_on));
    am.dissolution_reason = Set(reason.map(|r| text::clean(&r)));
    am.updated_at = Set(Utc::now());
    let after = am.update(&txn).await?;
    let change = team_change(AuditAction::DissolveTeam, Some(&before), &after);
    record(&txn, principal, request, change).await?;
    txn.commit().await?;
    Ok(after)
}
