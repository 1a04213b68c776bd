//! Per-request loaders of memberships and persons; each answers only what the caller's area
//! shows.
use crate::auth::{Scope, scope_condition};
use crate::db::{Where, placeholders, query};
use async_graphql::dataloader::Loader;
use cnscd_entity::codes::{Gender, MemberRole};
use cnscd_entity::person;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// `membership m JOIN team t` rows whose `column` is in `keys` and that `scope` covers.
fn scoped(scope: &Scope, column: &str, keys: &[i64]) -> Where {
    let mut w = Where::new();
    w.and(
        format!("{column} IN ({})", placeholders(keys.len())),
        keys.iter().map(|k| Value::from(*k)),
    );
    if let Some((sql, values)) = scope_condition(scope, &super::service::MEMBERSHIP_COLUMNS) {
        w.and(sql, values);
    }
    w
}

/// The columns [`member_row`] reads, in its order: what the schema shows of a membership and
/// its person, and the keys; not the bookkeeping timestamps nor the search key, which the
/// database would send and sqlx decode for every row for nothing.
const MEMBER_ROW_COLUMNS: &str = "m.id, m.team_id, m.person_id, m.role, m.affiliation, \
     m.started_on, m.ended_on, m.end_reason, \
     p.full_name, p.gender, p.birth_year, p.phone, p.email";

/// A membership and its person from a row of [`MEMBER_ROW_COLUMNS`], read by position: decoding
/// by (prefixed) column name cost more than the rest of the nested list together.
fn member_row(r: &sea_orm::QueryResult) -> Result<MemberRow, sea_orm::DbErr> {
    if let Some(row) = r.try_as_pg_row() {
        return pg_member_row(row).map_err(|e| sea_orm::DbErr::Type(e.to_string()));
    }
    Ok((
        ListedMembership {
            id: r.try_get_by_index(0)?,
            team_id: r.try_get_by_index(1)?,
            person_id: r.try_get_by_index(2)?,
            role: r.try_get_by_index(3)?,
            affiliation: r.try_get_by_index(4)?,
            started_on: r.try_get_by_index(5)?,
            ended_on: r.try_get_by_index(6)?,
            end_reason: r.try_get_by_index(7)?,
        },
        Arc::new(PersonData {
            full_name: r.try_get_by_index(8)?,
            gender: r.try_get_by_index(9)?,
            birth_year: r.try_get_by_index(10)?,
            phone: r.try_get_by_index(11)?,
            email: r.try_get_by_index(12)?,
        }),
    ))
}

/// [`member_row`] on PostgreSQL, straight from sqlx: the column types are those of the
/// statement above (fixed), so each value is decoded without looking its type up again, and
/// the codes are read without a `String` each. This decoding was a sixth of the benchmarked
/// list's CPU. A value that does not decode (a malformed code, a NULL in a NOT NULL column)
/// is still an error.
fn pg_member_row(r: &sea_orm::sqlx::postgres::PgRow) -> Result<MemberRow, sea_orm::sqlx::Error> {
    use sea_orm::sqlx::Row;
    fn code<T>(value: &str, parse: fn(&str) -> Option<T>) -> Result<T, sea_orm::sqlx::Error> {
        parse(value)
            .ok_or_else(|| sea_orm::sqlx::Error::Decode(format!("unknown code {value}").into()))
    }
    Ok((
        ListedMembership {
            id: r.try_get_unchecked(0)?,
            team_id: r.try_get_unchecked(1)?,
            person_id: r.try_get_unchecked(2)?,
            role: code(r.try_get_unchecked(3)?, MemberRole::parse)?,
            affiliation: r.try_get_unchecked(4)?,
            started_on: r.try_get_unchecked(5)?,
            ended_on: r.try_get_unchecked(6)?,
            end_reason: r.try_get_unchecked(7)?,
        },
        Arc::new(PersonData {
            full_name: r.try_get_unchecked(8)?,
            gender: match r.try_get_unchecked::<Option<&str>, _>(9)? {
                Some(g) => Some(code(g, Gender::parse)?),
                None => None,
            },
            birth_year: r.try_get_unchecked(10)?,
            phone: r.try_get_unchecked(11)?,
            email: r.try_get_unchecked(12)?,
        }),
    ))
}

/// A membership with its person, read together.
pub type MemberRow = (ListedMembership, Arc<PersonData>);

/// The memberships (current and ended) of each team that the caller may read
/// (`ReadMembers`), leaders first, each with its person: one statement for the whole page, so
/// `members { person { ... } }` needs no second round. Values are shared (`Arc`), so handing
/// a team's list to its resolver copies nothing.
pub struct MembershipsByTeam {
    pub db: DatabaseConnection,
    /// The in-memory hierarchy, to apply the area rule to the rows read (see below).
    pub store: crate::memory::Store,
    pub scope: Scope,
}

impl Loader<i64> for MembershipsByTeam {
    type Value = Arc<Vec<MemberRow>>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let mut out: HashMap<i64, Vec<MemberRow>> = HashMap::new();
        // The area rule by units is applied to the rows read, from the closure held in memory
        // (current as of this statement's generation check): the same rule as the SQL
        // condition (`auth::area::under` over `MEMBERSHIP_COLUMNS`: the team's unit under the
        // area on some day from the start to the end, or today), without a subquery per row.
        // Teams granted by the token and "everything" need no look-up.
        // The data generation comes with the rows: the copy held is used when it is as new,
        // and loaded again when not, so this costs no statement of its own.
        let by_units = !self.scope.all && !self.scope.units.is_empty();
        let mut snapshot = match (by_units, self.store.held()) {
            (false, _) => None,
            (true, Some(held)) => Some(held),
            (true, None) => Some(self.store.catalogues(&self.db).await?),
        };
        let w = if by_units {
            let mut w = Where::new();
            w.and(
                format!("m.team_id IN ({})", placeholders(keys.len())),
                keys.iter().map(|k| Value::from(*k)),
            );
            w
        } else {
            scoped(&self.scope, "m.team_id", keys)
        };
        let rows = query(
            &self.db,
            &format!(
                "SELECT {MEMBER_ROW_COLUMNS}, t.unit_code, \
                 (SELECT n FROM data_generation WHERE id = 1) AS generation FROM membership m \
                 JOIN team t ON t.id = m.team_id \
                 JOIN person p ON p.id = m.person_id{} ORDER BY m.id",
                w.sql()
            ),
            w.values,
        )
        .await?;
        if let Some(held) = &snapshot {
            let newest = rows
                .iter()
                .filter_map(|r| r.try_get_by_index::<i64>(14).ok())
                .max();
            if newest.is_some_and(|g| g > held.generation()) {
                snapshot = Some(self.store.catalogues(&self.db).await?);
            }
        }
        let today = crate::units::service::today();
        for r in rows {
            let row = member_row(&r)?;
            if let Some(snapshot) = &snapshot {
                let m = &row.0;
                let unit: String = r.try_get_by_index(13)?;
                let granted = self.scope.teams.contains(&m.team_id)
                    || snapshot.under_some_day(
                        &self.scope.units,
                        &unit,
                        m.started_on,
                        m.ended_on.unwrap_or(today),
                    );
                if !granted {
                    continue;
                }
            }
            out.entry(row.0.team_id).or_default().push(row);
        }
        Ok(out
            .into_iter()
            .map(|(team, mut list)| {
                list.sort_by_key(|(m, _)| (super::service::role_rank(m.role), m.id));
                (team, Arc::new(list))
            })
            .collect())
    }
}

/// Whether the caller's scope for one action (personal data) covers each membership.
pub struct MembershipInScope {
    pub db: DatabaseConnection,
    pub scope: Scope,
}

impl Loader<i64> for MembershipInScope {
    type Value = bool;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, bool>, Self::Error> {
        let mut out: HashMap<i64, bool> = keys.iter().map(|k| (*k, false)).collect();
        if self.scope.is_empty() {
            return Ok(out);
        }
        if self.scope.all {
            // Every key is a membership the caller has read; a scope over everything covers
            // each of them without asking.
            out.values_mut().for_each(|v| *v = true);
            return Ok(out);
        }
        let w = scoped(&self.scope, "m.id", keys);
        for r in query(
            &self.db,
            &format!(
                "SELECT m.id AS id FROM membership m JOIN team t ON t.id = m.team_id{}",
                w.sql()
            ),
            w.values,
        )
        .await?
        {
            if let Ok(id) = r.try_get::<i64>("", "id") {
                out.insert(id, true);
            }
        }
        Ok(out)
    }
}

/// Persons by id (reached only through a membership the caller may read).
pub struct PersonById(pub DatabaseConnection);

impl Loader<i64> for PersonById {
    type Value = person::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        Ok(person::Entity::find()
            .filter(person::Column::Id.is_in(keys.to_vec()))
            .all(&self.0)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect())
    }
}

/// The member loaders of one request, each with the caller's scope for its rows.
pub struct MemberLoaders {
    /// The memberships of each team that the caller may read.
    pub memberships: async_graphql::dataloader::DataLoader<MembershipsByTeam>,
    /// Whether the caller may read the personal data of each membership's person. Cached for
    /// the request: a person's personal fields resolve one after the other.
    pub personal_data: async_graphql::dataloader::DataLoader<
        MembershipInScope,
        async_graphql::dataloader::HashMapCache,
    >,
    pub person: async_graphql::dataloader::DataLoader<PersonById>,
}

impl MemberLoaders {
    pub fn new(
        db: &DatabaseConnection,
        store: &crate::memory::Store,
        principal: &crate::auth::Principal,
    ) -> Self {
        use crate::auth::Action;
        use async_graphql::dataloader::{DataLoader, HashMapCache};
        let spawn = tokio::spawn;
        Self {
            memberships: DataLoader::new(
                MembershipsByTeam {
                    db: db.clone(),
                    store: store.clone(),
                    scope: principal.scope(Action::ReadMembers),
                },
                spawn,
            ),
            personal_data: DataLoader::with_cache(
                MembershipInScope {
                    db: db.clone(),
                    scope: principal.scope(Action::ReadPersonalData),
                },
                spawn,
                HashMapCache::default(),
            ),
            person: DataLoader::new(PersonById(db.clone()), spawn),
        }
    }
}

/// A membership as lists read it: the columns the schema shows and the keys (not the
/// bookkeeping timestamps).
#[derive(Clone, Debug)]
pub struct ListedMembership {
    pub id: i64,
    pub team_id: i64,
    pub person_id: i64,
    pub role: cnscd_entity::codes::MemberRole,
    pub affiliation: String,
    pub started_on: chrono::NaiveDate,
    pub ended_on: Option<chrono::NaiveDate>,
    pub end_reason: Option<String>,
}

/// What the schema shows of a person (not the search key nor the bookkeeping timestamp).
#[derive(Clone, Debug)]
pub struct PersonData {
    pub full_name: String,
    pub gender: Option<cnscd_entity::codes::Gender>,
    pub birth_year: Option<i32>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

impl From<person::Model> for PersonData {
    fn from(p: person::Model) -> Self {
        Self {
            full_name: p.full_name,
            gender: p.gender,
            birth_year: p.birth_year,
            phone: p.phone,
            email: p.email,
        }
    }
}
