//! Unit look-ups and the closure table that answers "every unit under X on date D".
use crate::db::{Where, placeholders};
use crate::error::{Error, Result};
use crate::paging::{PageArgs, Window};
use crate::text;
use chrono::NaiveDate;
use cnscd_entity::codes::UnitLevel;
use cnscd_entity::{OPEN_END, admin_unit, admin_unit_closure};
use sea_orm::{ConnectionTrait, EntityTrait, FromQueryResult, QueryOrder, Value};
use std::collections::HashMap;

/// The version of `code` valid on `on`.
pub async fn version_on(
    db: &impl ConnectionTrait,
    code: &str,
    on: NaiveDate,
) -> Result<Option<admin_unit::Model>> {
    let rows = admin_unit::Entity::find()
        .from_raw_sql(crate::db::stmt(
            db.get_database_backend(),
            "SELECT * FROM admin_unit WHERE code = ? AND valid_from <= ? AND valid_to >= ?",
            vec![code.into(), on.into(), on.into()],
        ))
        .one(db)
        .await?;
    Ok(rows)
}

/// Every version of each code, oldest first.
pub async fn all_versions(
    db: &impl ConnectionTrait,
    codes: &[String],
) -> Result<HashMap<String, Vec<admin_unit::Model>>> {
    let mut out: HashMap<String, Vec<admin_unit::Model>> = HashMap::new();
    if codes.is_empty() {
        return Ok(out);
    }
    let rows = admin_unit::Entity::find()
        .from_raw_sql(crate::db::stmt(
            db.get_database_backend(),
            &format!(
                "SELECT * FROM admin_unit WHERE code IN ({}) ORDER BY code, valid_from",
                placeholders(codes.len())
            ),
            codes.iter().map(|c| Value::from(c.clone())).collect(),
        ))
        .all(db)
        .await?;
    for row in rows {
        out.entry(row.code.clone()).or_default().push(row);
    }
    Ok(out)
}

/// The latest version of each code (the current one, or the last before it ceased).
pub async fn latest_versions(
    db: &impl ConnectionTrait,
    codes: &[String],
) -> Result<HashMap<String, admin_unit::Model>> {
    Ok(all_versions(db, codes)
        .await?
        .into_iter()
        .filter_map(|(code, mut versions)| versions.pop().map(|v| (code, v)))
        .collect())
}

/// Codes of `code` and every unit under it on `on`, with their levels: one indexed query.
pub async fn subtree_on(
    db: &impl ConnectionTrait,
    code: &str,
    on: NaiveDate,
) -> Result<Vec<(String, UnitLevel)>> {
    #[derive(FromQueryResult)]
    struct Row {
        descendant_code: String,
        descendant_level: UnitLevel,
    }
    let rows = Row::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        "SELECT descendant_code, descendant_level FROM admin_unit_closure \
         WHERE ancestor_code = ? AND valid_from <= ? AND valid_to >= ?",
        vec![code.into(), on.into(), on.into()],
    ))
    .all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.descendant_code, r.descendant_level))
        .collect())
}

/// Filters of the `adminUnits` list.
#[derive(Default, Debug, Clone)]
pub struct UnitFilter {
    pub on: Option<NaiveDate>,
    pub parent_code: Option<String>,
    pub under: Option<String>,
    pub level: Option<UnitLevel>,
    pub search: Option<String>,
}

/// Units valid on the filter's date (default today) matching the filters, ordered by code.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &UnitFilter,
    args: &PageArgs,
) -> Result<(Vec<admin_unit::Model>, Window, u64)> {
    let on = filter.on.unwrap_or_else(today);
    let mut w = Where::new();
    w.and(
        "u.valid_from <= ? AND u.valid_to >= ?",
        [on.into(), on.into()],
    );
    if let Some(p) = &filter.parent_code {
        w.and("u.parent_code = ?", [p.clone().into()]);
    }
    if let Some(under) = &filter.under {
        w.and(
            "EXISTS (SELECT 1 FROM admin_unit_closure ac WHERE ac.ancestor_code = ? \
             AND ac.descendant_code = u.code AND ac.valid_from <= ? AND ac.valid_to >= ?)",
            [under.clone().into(), on.into(), on.into()],
        );
    }
    if let Some(level) = &filter.level {
        w.and("u.level = ?", [(*level).into()]);
    }
    if let Some(s) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
        w.and(
            "u.name_search LIKE ? ESCAPE '\\' OR u.code = ?",
            [text::like_pattern(s).into(), s.trim().into()],
        );
    }
    crate::db::page::<admin_unit::Entity>(db, "u", "admin_unit u", "u.code", &w, args).await
}

/// Today's date (UTC+7, the province's day).
pub fn today() -> NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(7)).date_naive()
}

/// Checks that `code` names a unit that exists on `on`.
pub async fn require_on(
    db: &impl ConnectionTrait,
    field: &str,
    code: &str,
    on: NaiveDate,
) -> Result<admin_unit::Model> {
    version_on(db, code, on).await?.ok_or_else(|| {
        Error::invalid(
            field,
            format!("no administrative unit `{code}` exists on {on}"),
        )
    })
}

/// One unit version, as the closure is computed from it.
#[derive(Debug, Clone)]
pub struct Version {
    pub code: String,
    pub parent_code: Option<String>,
    pub level: UnitLevel,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
}

impl From<&admin_unit::Model> for Version {
    fn from(m: &admin_unit::Model) -> Self {
        Self {
            code: m.code.clone(),
            parent_code: m.parent_code.clone(),
            level: m.level,
            valid_from: m.valid_from,
            valid_to: m.valid_to,
        }
    }
}

/// One row of the closure: `ancestor` is `depth` levels above `descendant` from `valid_from`
/// to `valid_to`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosureRow<'a> {
    pub ancestor: &'a str,
    pub descendant: &'a str,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    pub depth: i32,
    pub level: UnitLevel,
}

/// The closure of a set of unit versions: for each version, each ancestor with the period
/// over which the ancestry holds (the intersection of the versions on the path).
pub fn closure_rows(versions: &[Version]) -> Vec<ClosureRow<'_>> {
    let mut by_code: HashMap<&str, Vec<&Version>> = HashMap::new();
    for v in versions {
        by_code.entry(v.code.as_str()).or_default().push(v);
    }
    let mut rows: Vec<ClosureRow<'_>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for v in versions {
        let mut stack = vec![(
            v.code.as_str(),
            v.parent_code.as_deref(),
            v.valid_from,
            v.valid_to,
            0,
        )];
        while let Some((ancestor, parent, from, to, depth)) = stack.pop() {
            if seen.insert((ancestor, v.code.as_str(), from)) {
                rows.push(ClosureRow {
                    ancestor,
                    descendant: v.code.as_str(),
                    valid_from: from,
                    valid_to: to,
                    depth,
                    level: v.level,
                });
            }
            let Some(parent) = parent else { continue };
            if depth > 8 {
                continue; // a cycle in bad data; the hierarchy is at most four deep
            }
            for p in by_code.get(parent).into_iter().flatten() {
                let (f, t) = (from.max(p.valid_from), to.min(p.valid_to));
                if f <= t {
                    stack.push((p.code.as_str(), p.parent_code.as_deref(), f, t, depth + 1));
                }
            }
        }
    }
    rows
}

/// Rebuilds the closure table from every unit version ([`closure_rows`]).
pub async fn rebuild_closure(db: &impl ConnectionTrait) -> Result<usize> {
    let versions: Vec<Version> = admin_unit::Entity::find()
        .order_by_asc(admin_unit::Column::Code)
        .order_by_asc(admin_unit::Column::ValidFrom)
        .all(db)
        .await?
        .iter()
        .map(Version::from)
        .collect();
    let rows: Vec<admin_unit_closure::ActiveModel> = closure_rows(&versions)
        .into_iter()
        .map(|r| admin_unit_closure::ActiveModel {
            ancestor_code: sea_orm::Set(r.ancestor.to_owned()),
            descendant_code: sea_orm::Set(r.descendant.to_owned()),
            valid_from: sea_orm::Set(r.valid_from),
            valid_to: sea_orm::Set(r.valid_to),
            depth: sea_orm::Set(r.depth),
            descendant_level: sea_orm::Set(r.level),
        })
        .collect();
    admin_unit_closure::Entity::delete_many().exec(db).await?;
    let n = rows.len();
    for chunk in rows.chunks(1000) {
        admin_unit_closure::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await?;
    }
    Ok(n)
}

/// Whether a date is the open end of a validity period.
pub fn is_open(d: NaiveDate) -> bool {
    d >= OPEN_END
}
