//! Membership queries and changes: who may add, change and end memberships, and the rule of
//! one active leader per team.
use crate::audit::service::{AuditAction, Change, RequestId, record, reread};
use crate::auth::{Action, Columns, Last, Principal, scope_condition};
use crate::db::{OnUnique, Unique, Where};
use crate::error::{Error, Problems, Result};
use crate::ids;
use crate::paging::{PageArgs, Window};
use crate::teams::service as teams;
use crate::text;
use crate::units::service as units;
use chrono::{Datelike, NaiveDate, Utc};
use cnscd_entity::codes::{Gender, MemberRole, TeamStatus};
use cnscd_entity::{affiliation, membership, person, team};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QuerySelect, Set,
};

/// Columns of `membership m JOIN team t` for area conditions: a membership concerns its
/// team's unit from the day it started to the day it ended (or today).
pub const MEMBERSHIP_COLUMNS: Columns<'static> = Columns {
    unit: "t.unit_code",
    from: "m.started_on",
    last: Last::Through("m.ended_on"),
    team: Some("t.id"),
    submitter: None,
};

/// Adds the caller's area for `action` to a query over `membership m JOIN team t`.
pub fn scope(w: &mut Where, principal: &Principal, action: Action) {
    if let Some((sql, values)) = scope_condition(&principal.scope(action), &MEMBERSHIP_COLUMNS) {
        w.and(sql, values);
    }
}

/// Sort rank of a member role: leaders first.
pub fn role_rank(role: MemberRole) -> u8 {
    match role {
        MemberRole::Leader => 0,
        MemberRole::Deputy => 1,
        MemberRole::Member => 2,
    }
}

/// A person's details as given in a request.
#[derive(Debug, Clone)]
pub struct PersonFields {
    pub full_name: String,
    pub gender: Option<Gender>,
    pub birth_year: Option<i32>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// Checks and normalises a person's details; problems are named by field, never by value.
fn check_person(p: &mut Problems, f: &PersonFields) -> PersonFields {
    let full_name = text::clean(&f.full_name);
    if full_name.is_empty() {
        p.add("input.person.fullName", "fullName must not be empty");
    } else if full_name.chars().count() > 100 {
        p.add(
            "input.person.fullName",
            "fullName must be at most 100 characters",
        );
    } else if full_name
        .chars()
        .any(|c| c.is_control() || c.is_ascii_digit())
    {
        p.add(
            "input.person.fullName",
            "fullName may not contain digits or control characters",
        );
    }
    let this_year = units::today().year();
    if let Some(y) = f.birth_year
        && !(1900..=this_year - 10).contains(&y)
    {
        p.add(
            "input.person.birthYear",
            format!("birthYear must be between 1900 and {}", this_year - 10),
        );
    }
    let phone = f
        .phone
        .as_deref()
        .map(|s| s.split_whitespace().collect::<String>())
        .filter(|s| !s.is_empty());
    if let Some(ph) = &phone {
        let digits = ph.strip_prefix('+').unwrap_or(ph);
        if !(9..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            p.add(
                "input.person.phone",
                "phone must be 9 to 15 digits, optionally after a +",
            );
        }
    }
    let email = f
        .email
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    if let Some(e) = &email {
        let ok = e.len() <= 254
            && !e.contains(char::is_whitespace)
            && e.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
            });
        if !ok {
            p.add("input.person.email", "email is not a valid address");
        }
    }
    PersonFields {
        full_name,
        gender: f.gender,
        birth_year: f.birth_year,
        phone,
        email,
    }
}

/// The days a membership concerns, for its audit entries.
fn concerns(m: &membership::Model) -> (NaiveDate, Option<NaiveDate>) {
    (m.started_on, m.ended_on)
}

/// A membership and its person's name, as an audit entry shows them.
type Shown<'a> = (&'a membership::Model, &'a str);

/// The audit entry of a change to a membership of a team of `unit_code`: the row before (none
/// for a new one) and after; it concerns the membership's days after the change.
fn membership_change(
    action: AuditAction,
    unit_code: &str,
    before: Option<Shown<'_>>,
    (after, name): Shown<'_>,
) -> Change {
    Change {
        action,
        entity_id: ids::global(ids::MEMBERSHIP, after.id),
        unit_code: Some(unit_code.to_owned()),
        concerns: Some(concerns(after)),
        before: before.map(|(m, name)| audit_view(m, name)),
        after: Some(audit_view(after, name)),
    }
}

/// What an audit entry keeps of a membership: never contact details.
fn audit_view(m: &membership::Model, full_name: &str) -> serde_json::Value {
    serde_json::json!({
        "id": ids::global(ids::MEMBERSHIP, m.id),
        "team": ids::global(ids::TEAM, m.team_id),
        "person": m.person_id,
        "fullName": full_name,
        "role": m.role,
        "affiliation": m.affiliation,
        "startedOn": m.started_on,
        "endedOn": m.ended_on,
        "endReason": m.end_reason,
    })
}

async fn check_affiliation(db: &impl ConnectionTrait, p: &mut Problems, code: &str) -> Result<()> {
    let found = affiliation::Entity::find_by_id(code.to_owned())
        .one(db)
        .await?;
    if !found.is_some_and(|a| a.active) {
        p.add(
            "input.affiliation",
            format!("`{code}` is not an affiliation code (see the affiliations catalogue)"),
        );
    }
    Ok(())
}

/// The team, if the caller may manage its members on `on` (NOT_FOUND outside the area).
async fn team_to_manage(
    db: &impl ConnectionTrait,
    principal: &Principal,
    team_id: i64,
    on: NaiveDate,
) -> Result<team::Model> {
    // Every role that may manage a team's members may also read the team.
    let t = teams::get(db, principal, Action::ReadTeams, team_id).await?;
    let scope = principal.scope(Action::ManageMembers);
    if crate::auth::allows(db, &scope, Some((team_id, &t.unit_code)), &t.unit_code, on).await? {
        Ok(t)
    } else {
        Err(Error::forbidden(format!(
            "the caller may not manage the members of team {} on {on}",
            ids::global(ids::TEAM, team_id)
        )))
    }
}

/// A team's one open leadership (a partial index: what keeps a team to one leader, even under
/// concurrent requests).
const ONE_LEADER: Unique = Unique {
    name: "ux_membership_one_leader",
    columns: "membership.team_id",
};

/// A person's one open membership of a team (a partial index).
const OPEN_MEMBERSHIP: Unique = Unique {
    name: "ux_membership_open",
    columns: "membership.team_id, membership.person_id",
};

/// A membership write that failed, perhaps on one of the partial unique indexes: each
/// violation is the caller's conflict, and says which.
fn leader_conflict(e: sea_orm::DbErr) -> Error {
    e.on_unique(ONE_LEADER, || {
        Error::Conflict(
            "the team already has an active leader: end that membership or change its role first"
                .into(),
        )
    })
    .on_unique(OPEN_MEMBERSHIP, || {
        Error::Conflict(
            "the person already has an open membership of this team: end it first".into(),
        )
    })
}

/// A new membership.
pub struct NewMember {
    pub team_id: i64,
    pub person: PersonFields,
    pub role: MemberRole,
    pub affiliation: String,
    pub started_on: NaiveDate,
}

pub async fn add(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    input: NewMember,
) -> Result<membership::Model> {
    let t = team_to_manage(db, principal, input.team_id, input.started_on).await?;
    let mut p = Problems::default();
    let person = check_person(&mut p, &input.person);
    check_affiliation(db, &mut p, &input.affiliation).await?;
    if input.started_on > units::today() {
        p.add(
            "input.startedOn",
            format!("startedOn {} is in the future", input.started_on),
        );
    }
    if input.started_on < t.founded_on {
        p.add(
            "input.startedOn",
            format!(
                "startedOn {} is before the team was founded ({})",
                input.started_on, t.founded_on
            ),
        );
    }
    if t.status == TeamStatus::Dissolved {
        p.add("input.teamId", "the team has been dissolved");
    }
    p.finish()?;
    let txn = crate::db::begin_write(db).await?;
    let now = Utc::now();
    let person_row = person::ActiveModel {
        full_name: Set(person.full_name.clone()),
        name_search: Set(text::fold(&person.full_name)),
        gender: Set(person.gender),
        birth_year: Set(person.birth_year),
        phone: Set(person.phone),
        email: Set(person.email),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let m = membership::ActiveModel {
        team_id: Set(t.id),
        person_id: Set(person_row.id),
        role: Set(input.role),
        affiliation: Set(input.affiliation),
        started_on: Set(input.started_on),
        ended_on: Set(None),
        end_reason: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(leader_conflict)?;
    record(
        &txn,
        principal,
        request,
        membership_change(
            AuditAction::AddMember,
            &t.unit_code,
            None,
            (&m, &person_row.full_name),
        ),
    )
    .await?;
    txn.commit().await.map_err(leader_conflict)?;
    Ok(m)
}

/// The membership with this id, if the caller may read it.
pub async fn get(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: i64,
) -> Result<(membership::Model, team::Model)> {
    get_for(db, principal, Action::ReadMembers, id).await
}

/// The membership with this id, if the caller's scope for `action` covers it (NOT_FOUND
/// otherwise, as if absent).
async fn get_for(
    db: &impl ConnectionTrait,
    principal: &Principal,
    action: Action,
    id: i64,
) -> Result<(membership::Model, team::Model)> {
    let not_found = || {
        Error::not_found(format!(
            "no membership {} in the caller's area",
            ids::global(ids::MEMBERSHIP, id)
        ))
    };
    let mut w = Where::new();
    w.and("m.id = ?", [id.into()]);
    scope(&mut w, principal, action);
    let m = membership::Entity::find()
        .from_raw_sql(crate::db::stmt(
            db.get_database_backend(),
            &format!(
                "SELECT m.* FROM membership m JOIN team t ON t.id = m.team_id{}",
                w.sql()
            ),
            w.values,
        ))
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    let t = team::Entity::find_by_id(m.team_id)
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    Ok((m, t))
}

/// Changes to a membership.
pub struct MembershipChanges {
    pub role: Option<MemberRole>,
    pub affiliation: Option<String>,
    pub person: Option<PersonFields>,
}

pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    id: i64,
    changes: MembershipChanges,
) -> Result<membership::Model> {
    // A change of role or details concerns the membership, not a date: the caller manages
    // it on some day of it.
    let (before, t) = get(db, principal, id).await?;
    if get_for(db, principal, Action::ManageMembers, id)
        .await
        .is_err()
    {
        return Err(Error::forbidden(format!(
            "the caller may not manage membership {}",
            ids::global(ids::MEMBERSHIP, id)
        )));
    }
    if before.ended_on.is_some() {
        return Err(Error::Conflict(
            "the membership has ended; ended memberships are history and cannot change".into(),
        ));
    }
    let mut p = Problems::default();
    if let Some(a) = &changes.affiliation {
        check_affiliation(db, &mut p, a).await?;
    }
    let person = changes.person.as_ref().map(|f| check_person(&mut p, f));
    p.finish()?;
    let txn = crate::db::begin_write(db).await?;
    let before = reread(
        &txn,
        membership::Entity::find_by_id(id),
        &before,
        "membership",
    )
    .await?;
    let person_before = person::Entity::find_by_id(before.person_id)
        .lock_exclusive()
        .one(&txn)
        .await?;
    // The name as stored before the change, and as it is after.
    let name_before = person_before
        .as_ref()
        .map(|p| p.full_name.clone())
        .unwrap_or_default();
    let mut name = name_before.clone();
    if let (Some(f), Some(pb)) = (person, person_before) {
        name = f.full_name.clone();
        let mut am: person::ActiveModel = pb.into();
        am.name_search = Set(text::fold(&f.full_name));
        am.full_name = Set(f.full_name);
        am.gender = Set(f.gender);
        am.birth_year = Set(f.birth_year);
        am.phone = Set(f.phone);
        am.email = Set(f.email);
        am.update(&txn).await?;
    }
    let mut am: membership::ActiveModel = before.clone().into();
    if let Some(r) = changes.role {
        am.role = Set(r);
    }
    if let Some(a) = changes.affiliation {
        am.affiliation = Set(a);
    }
    am.updated_at = Set(Utc::now());
    let after = am.update(&txn).await.map_err(leader_conflict)?;
    record(
        &txn,
        principal,
        request,
        membership_change(
            AuditAction::UpdateMembership,
            &t.unit_code,
            Some((&before, &name_before)),
            (&after, &name),
        ),
    )
    .await?;
    txn.commit().await.map_err(leader_conflict)?;
    Ok(after)
}

pub async fn end(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    id: i64,
    ended_on: NaiveDate,
    reason: Option<String>,
) -> Result<membership::Model> {
    let (before, t) = get(db, principal, id).await?;
    team_to_manage(db, principal, t.id, ended_on).await?;
    if let Some(d) = before.ended_on {
        return Err(Error::Conflict(format!(
            "the membership already ended on {d}"
        )));
    }
    let mut p = Problems::default();
    if ended_on < before.started_on {
        p.add(
            "input.endedOn",
            format!(
                "endedOn {ended_on} is before the membership started ({})",
                before.started_on
            ),
        );
    }
    if ended_on > units::today() {
        p.add(
            "input.endedOn",
            format!("endedOn {ended_on} is in the future"),
        );
    }
    if reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        p.add("input.reason", "must be at most 1000 characters");
    }
    p.finish()?;
    let txn = crate::db::begin_write(db).await?;
    let before = reread(
        &txn,
        membership::Entity::find_by_id(id),
        &before,
        "membership",
    )
    .await?;
    let name = person::Entity::find_by_id(before.person_id)
        .one(&txn)
        .await?
        .map(|p| p.full_name)
        .unwrap_or_default();
    let mut am: membership::ActiveModel = before.clone().into();
    am.ended_on = Set(Some(ended_on));
    am.end_reason = Set(reason.map(|r| text::clean(&r)).filter(|r| !r.is_empty()));
    am.updated_at = Set(Utc::now());
    let after = am.update(&txn).await?;
    record(
        &txn,
        principal,
        request,
        membership_change(
            AuditAction::EndMembership,
            &t.unit_code,
            Some((&before, &name)),
            (&after, &name),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}

/// Filters of the `members` list.
#[derive(Default, Debug)]
pub struct MemberFilter {
    pub team_id: Option<i64>,
    pub under: Option<String>,
    pub role: Option<MemberRole>,
    pub affiliation: Option<String>,
    pub active: Option<bool>,
    pub search: Option<String>,
}

/// Memberships of teams whose members the caller may read.
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &MemberFilter,
    args: &PageArgs,
) -> Result<(Vec<membership::Model>, Window, u64)> {
    let mut w = Where::new();
    scope(&mut w, principal, Action::ReadMembers);
    if let Some(t) = filter.team_id {
        w.and("m.team_id = ?", [t.into()]);
    }
    if let Some(u) = &filter.under {
        let (sql, values) =
            crate::auth::under_indexed(std::slice::from_ref(u), &MEMBERSHIP_COLUMNS);
        w.and(sql, values);
    }
    if let Some(r) = &filter.role {
        w.and("m.role = ?", [(*r).into()]);
    }
    if let Some(a) = &filter.affiliation {
        w.and("m.affiliation = ?", [a.clone().into()]);
    }
    match filter.active {
        Some(true) => w.and("m.ended_on IS NULL", []),
        Some(false) => w.and("m.ended_on IS NOT NULL", []),
        None => {}
    }
    if let Some(s) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
        w.and("EXISTS (SELECT 1 FROM person p WHERE p.id = m.person_id AND p.name_search LIKE ? ESCAPE '\\')", [text::like_pattern(s).into()]);
    }
    crate::db::page::<membership::Entity>(
        db,
        "m",
        "membership m JOIN team t ON t.id = m.team_id",
        "m.id",
        &w,
        args,
    )
    .await
}
