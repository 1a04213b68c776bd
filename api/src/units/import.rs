//! Loading unit catalogues and successions (the CSV formats of the reference data).
//!
//! The first catalogue loaded into an empty database describes the units since records
//! began ([`RECORDS_BEGIN`]). Each later catalogue takes effect on its date: units missing
//! from it (other than hamlets) end the day before, changed units get a new version. A
//! successions file records which old units went into which new ones, and moves hamlets whose
//! commune ended into the commune that succeeded it.
use crate::error::{Error, Result};
use crate::text;
use chrono::{Days, NaiveDate};
use cnscd_entity::codes::{SuccessionKind, UnitLevel};
use cnscd_entity::{OPEN_END, admin_unit, admin_unit_succession};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use std::collections::{HashMap, HashSet};

/// The first day any catalogue is taken to cover when nothing earlier is known.
pub const RECORDS_BEGIN: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// Rows per multi-row INSERT: small enough that a statement and its values travel in one
/// TCP segment of the loopback (sqlx does not set `TCP_NODELAY`, and a message that spans
/// segments waits for the server's delayed acknowledgement, tens of milliseconds).
const INSERT_ROWS: usize = 100;

/// One unit of a catalogue file.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRow {
    pub code: String,
    pub name: String,
    pub unit_type: Option<String>,
    pub level: UnitLevel,
    pub parent_code: Option<String>,
}

/// One line of a successions file.
#[derive(Debug, Clone)]
pub struct SuccessionRow {
    pub new_code: String,
    pub old_code: String,
    pub kind: SuccessionKind,
}

/// What a file turned out to hold.
pub enum Parsed {
    Units(Vec<UnitRow>),
    Successions(Vec<SuccessionRow>),
}

/// What an import changed.
#[derive(Debug, Default)]
pub struct Report {
    pub inserted: usize,
    pub changed: usize,
    pub ended: usize,
    pub successions: usize,
    pub hamlets_moved: usize,
    pub closure_rows: usize,
}

/// The date in a file name such as `admin_units_2025-07-01.csv`.
pub fn date_in_name(path: &str) -> Option<NaiveDate> {
    let name = path.rsplit('/').next().unwrap_or(path);
    (0..name.len().saturating_sub(9)).find_map(|i| {
        name.get(i..i + 10)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    })
}

/// Parses a catalogue (`code,name[,type],level,parent_code`) or successions
/// (`new_code,new_name,new_level,old_code,old_name,kind`) file; names the line of any problem.
pub fn parse(content: &str) -> Result<Parsed> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(content.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::invalid("file", format!("cannot read the header line: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let bad = |line: u64, msg: String| Error::invalid("file", format!("line {line}: {msg}"));
    if let (Some(new), Some(old), Some(kind)) = (col("new_code"), col("old_code"), col("kind")) {
        let mut rows = Vec::new();
        for (i, rec) in reader.records().enumerate() {
            let line = i as u64 + 2;
            let rec = rec.map_err(|e| bad(line, e.to_string()))?;
            let get = |c: usize| rec.get(c).unwrap_or("").to_owned();
            let kind_text = get(kind);
            let Some(kind) = SuccessionKind::parse(&kind_text) else {
                return Err(bad(
                    line,
                    format!("kind must be FULL or PARTIAL, not `{kind_text}`"),
                ));
            };
            if get(new).is_empty() || get(old).is_empty() {
                return Err(bad(line, "new_code and old_code are required".into()));
            }
            rows.push(SuccessionRow {
                new_code: get(new),
                old_code: get(old),
                kind,
            });
        }
        return Ok(Parsed::Successions(rows));
    }
    let (Some(code), Some(name), Some(level)) = (col("code"), col("name"), col("level")) else {
        return Err(Error::invalid(
            "file",
            "the header must name code, name, level and parent_code (a catalogue) or \
             new_code, old_code and kind (successions)",
        ));
    };
    let parent = col("parent_code");
    let unit_type = col("type");
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| bad(line, e.to_string()))?;
        let get = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .map(str::to_owned)
                .filter(|s| !s.is_empty())
        };
        let Some(c) = get(Some(code)) else {
            return Err(bad(line, "code is empty".into()));
        };
        let Some(n) = get(Some(name)) else {
            return Err(bad(line, format!("unit {c} has no name")));
        };
        let lvl_text = get(Some(level)).unwrap_or_default();
        let Some(lvl) = UnitLevel::parse(&lvl_text) else {
            return Err(bad(
                line,
                format!("level must be PROVINCE, DISTRICT, COMMUNE or HAMLET, not `{lvl_text}`"),
            ));
        };
        if !seen.insert(c.clone()) {
            return Err(bad(line, format!("unit {c} appears twice")));
        }
        let parent_code = get(parent);
        if lvl != UnitLevel::Province && parent_code.is_none() {
            return Err(bad(line, format!("unit {c} ({lvl}) has no parent_code")));
        }
        rows.push(UnitRow {
            code: c,
            name: text::clean(&n),
            unit_type: get(unit_type),
            level: lvl,
            parent_code,
        });
    }
    Ok(Parsed::Units(rows))
}

fn day_before(d: NaiveDate) -> NaiveDate {
    d.checked_sub_days(Days::new(1)).unwrap_or(d)
}

/// Whether the database holds any unit yet.
pub async fn is_empty(db: &impl ConnectionTrait) -> Result<bool> {
    Ok(admin_unit::Entity::find().count(db).await? == 0)
}

/// Applies a catalogue taking effect on `effective`; with `end_missing`, units other than
/// hamlets that it no longer lists end the day before.
pub async fn apply_units(
    db: &impl ConnectionTrait,
    rows: &[UnitRow],
    effective: NaiveDate,
    end_missing: bool,
) -> Result<Report> {
    register_codes(db, rows.iter().map(|r| r.code.as_str())).await?;
    let mut report = Report::default();
    let current: Vec<admin_unit::Model> = admin_unit::Entity::find()
        .filter(admin_unit::Column::ValidFrom.lte(effective))
        .filter(admin_unit::Column::ValidTo.gte(effective))
        .all(db)
        .await?;
    let mut by_code: HashMap<String, admin_unit::Model> =
        current.into_iter().map(|m| (m.code.clone(), m)).collect();
    let listed: HashSet<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    let mut inserts = Vec::new();
    // Versions that end the day before `effective`, ended together ([`end_versions`]).
    let mut ending: Vec<i64> = Vec::new();
    for row in rows {
        match by_code.remove(&row.code) {
            Some(v)
                if v.name == row.name
                    && v.level == row.level
                    && v.parent_code == row.parent_code =>
            {
                if v.unit_type.is_none() && row.unit_type.is_some() {
                    let mut am: admin_unit::ActiveModel = v.into();
                    am.unit_type = Set(row.unit_type.clone());
                    am.update(db).await?;
                }
            }
            Some(v) if v.valid_from == effective => {
                let mut am: admin_unit::ActiveModel = v.into();
                am.name = Set(row.name.clone());
                am.name_search = Set(text::fold(&row.name));
                am.level = Set(row.level);
                am.parent_code = Set(row.parent_code.clone());
                am.unit_type = Set(row.unit_type.clone());
                am.update(db).await?;
                report.changed += 1;
            }
            Some(v) => {
                ending.push(v.id);
                inserts.push(new_version(row, effective, v.valid_to));
                report.changed += 1;
            }
            None => {
                inserts.push(new_version(row, effective, OPEN_END));
                report.inserted += 1;
            }
        }
    }
    if end_missing {
        for (code, v) in by_code {
            if v.level != UnitLevel::Hamlet
                && !listed.contains(code.as_str())
                && v.valid_from < effective
            {
                ending.push(v.id);
                report.ended += 1;
            }
        }
    }
    end_versions(db, &ending, day_before(effective)).await?;
    for chunk in inserts.chunks(INSERT_ROWS) {
        admin_unit::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await?;
    }
    Ok(report)
}

/// Ends the unit versions `ids` on `last_day`, 500 to a statement (a catalogue ends thousands
/// at once: one statement each would be a round trip each).
async fn end_versions(db: &impl ConnectionTrait, ids: &[i64], last_day: NaiveDate) -> Result<()> {
    for chunk in ids.chunks(500) {
        let mut values = vec![sea_orm::Value::from(last_day)];
        values.extend(chunk.iter().map(|id| sea_orm::Value::from(*id)));
        db.execute_raw(crate::db::stmt(
            db.get_database_backend(),
            &format!(
                "UPDATE admin_unit SET valid_to = ? WHERE id IN ({})",
                crate::db::placeholders(chunk.len())
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}

/// Which new unit each old unit went into: the first succession listed for it, unless a
/// later one is FULL (a FULL succession first). Where hamlets of an ended commune move.
pub fn successors(rows: &[SuccessionRow]) -> HashMap<String, String> {
    let mut out: HashMap<String, (String, bool)> = HashMap::new();
    for r in rows {
        let full = r.kind == SuccessionKind::Full;
        let entry = out
            .entry(r.old_code.clone())
            .or_insert((r.new_code.clone(), full));
        if full && !entry.1 {
            *entry = (r.new_code.clone(), true);
        }
    }
    out.into_iter().map(|(k, (v, _))| (k, v)).collect()
}

/// Adds codes to the registry every unit-code column references (a foreign key cannot point
/// at the versioned `admin_unit` rows); codes already there are left alone.
pub async fn register_codes<'a>(
    db: &impl ConnectionTrait,
    codes: impl Iterator<Item = &'a str>,
) -> Result<()> {
    let codes: Vec<&str> = codes.collect::<HashSet<_>>().into_iter().collect();
    for chunk in codes.chunks(500) {
        db.execute_raw(crate::db::stmt(
            db.get_database_backend(),
            &format!(
                "INSERT INTO admin_unit_code (code) VALUES {} ON CONFLICT (code) DO NOTHING",
                vec!["(?)"; chunk.len()].join(", ")
            ),
            chunk.iter().map(|c| sea_orm::Value::from(*c)).collect(),
        ))
        .await?;
    }
    Ok(())
}

fn new_version(row: &UnitRow, from: NaiveDate, to: NaiveDate) -> admin_unit::ActiveModel {
    admin_unit::ActiveModel {
        code: Set(row.code.clone()),
        name: Set(row.name.clone()),
        name_search: Set(text::fold(&row.name)),
        unit_type: Set(row.unit_type.clone()),
        level: Set(row.level),
        parent_code: Set(row.parent_code.clone()),
        valid_from: Set(from),
        valid_to: Set(to),
        ..Default::default()
    }
}

/// Records successions taking effect on `effective`, then moves hamlets whose commune ended
/// into the commune that succeeded it (a FULL succession first).
pub async fn apply_successions(
    db: &impl ConnectionTrait,
    rows: &[SuccessionRow],
    effective: NaiveDate,
) -> Result<Report> {
    let mut report = Report::default();
    let existing: HashSet<(String, String)> = admin_unit_succession::Entity::find()
        .filter(admin_unit_succession::Column::EffectiveOn.eq(effective))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.old_code, s.new_code))
        .collect();
    let mut inserts = Vec::new();
    let mut seen = HashSet::new();
    for r in rows {
        let key = (r.old_code.clone(), r.new_code.clone());
        if existing.contains(&key) || !seen.insert(key) {
            continue;
        }
        inserts.push(admin_unit_succession::ActiveModel {
            old_code: Set(r.old_code.clone()),
            new_code: Set(r.new_code.clone()),
            kind: Set(r.kind),
            effective_on: Set(effective),
            legal_basis: Set(None),
            ..Default::default()
        });
    }
    report.successions = inserts.len();
    for chunk in inserts.chunks(INSERT_ROWS) {
        admin_unit_succession::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await?;
    }
    report.hamlets_moved = move_orphan_hamlets(db, effective).await?;
    Ok(report)
}

/// Gives a new version, under the successor commune, to every hamlet open on `effective`
/// whose commune has no version on that day.
pub async fn move_orphan_hamlets(db: &impl ConnectionTrait, effective: NaiveDate) -> Result<usize> {
    let alive: HashSet<String> = admin_unit::Entity::find()
        .filter(admin_unit::Column::ValidFrom.lte(effective))
        .filter(admin_unit::Column::ValidTo.gte(effective))
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.code)
        .collect();
    let rows: Vec<SuccessionRow> = admin_unit_succession::Entity::find()
        .filter(admin_unit_succession::Column::EffectiveOn.eq(effective))
        .order_by_asc(admin_unit_succession::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|s| SuccessionRow {
            new_code: s.new_code,
            old_code: s.old_code,
            kind: s.kind,
        })
        .collect();
    let successor = successors(&rows);
    let hamlets = admin_unit::Entity::find()
        .filter(admin_unit::Column::Level.eq(UnitLevel::Hamlet))
        .filter(admin_unit::Column::ValidFrom.lt(effective))
        .filter(admin_unit::Column::ValidTo.gte(effective))
        .all(db)
        .await?;
    let mut ending = Vec::new();
    let mut inserts = Vec::new();
    for h in hamlets {
        let Some(parent) = h.parent_code.as_deref() else {
            continue;
        };
        if alive.contains(parent) {
            continue;
        }
        let Some(new_parent) = successor.get(parent) else {
            continue;
        };
        let row = UnitRow {
            code: h.code.clone(),
            name: h.name.clone(),
            unit_type: h.unit_type.clone(),
            level: h.level,
            parent_code: Some(new_parent.clone()),
        };
        ending.push(h.id);
        inserts.push(new_version(&row, effective, h.valid_to));
    }
    end_versions(db, &ending, day_before(effective)).await?;
    for chunk in inserts.chunks(INSERT_ROWS) {
        admin_unit::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await?;
    }
    Ok(ending.len())
}

/// Imports one file: a catalogue or successions, then rebuilds the closure.
pub async fn import_file(
    db: &impl ConnectionTrait,
    content: &str,
    path: &str,
    valid_from: Option<NaiveDate>,
) -> Result<Report> {
    let parsed = parse(content)?;
    let mut report = match parsed {
        Parsed::Units(rows) => {
            let first = is_empty(db).await?;
            let effective = match (valid_from, first) {
                (Some(d), _) => d,
                (None, true) => RECORDS_BEGIN,
                (None, false) => date_in_name(path).ok_or_else(|| {
                    Error::invalid(
                        "validFrom",
                        "the file name carries no date: say when the catalogue takes effect \
                         with --valid-from",
                    )
                })?,
            };
            apply_units(db, &rows, effective, !first).await?
        }
        Parsed::Successions(rows) => {
            let effective = valid_from.or_else(|| date_in_name(path)).ok_or_else(|| {
                Error::invalid(
                    "validFrom",
                    "the file name carries no date: say when the successions take effect with \
                     --valid-from",
                )
            })?;
            apply_successions(db, &rows, effective).await?
        }
    };
    report.closure_rows = super::service::rebuild_closure(db).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_catalogue_formats_and_successions() {
        let old = "code,name,type,level,parent_code\n19,Tỉnh Thái Nguyên,Tỉnh,PROVINCE,\n169,Huyện Đồng Hỷ,Huyện,DISTRICT,19\r\n";
        let Ok(Parsed::Units(rows)) = parse(old) else {
            panic!("not units")
        };
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].parent_code.as_deref(), Some("19"));
        let new = "code,name,level,parent_code\n05692,Xã Đồng Hỷ,COMMUNE,19\n";
        assert!(matches!(parse(new), Ok(Parsed::Units(_))));
        let succ = "new_code,new_name,new_level,old_code,old_name,kind\n05692,Xã Đồng Hỷ,COMMUNE,05677,Xã Minh Lập,FULL\n";
        assert!(matches!(parse(succ), Ok(Parsed::Successions(r)) if r.len() == 1));
    }

    #[test]
    fn names_the_line_of_a_bad_row() {
        let bad =
            "code,name,level,parent_code\n19,Tỉnh Thái Nguyên,PROVINCE,\n05692,Xã,VILLAGE,19\n";
        let err = parse(bad).err().map(|e| e.message()).unwrap_or_default();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("VILLAGE"), "{err}");
    }

    #[test]
    fn full_successions_win() {
        let row = |new: &str, kind| SuccessionRow {
            new_code: new.into(),
            old_code: "x".into(),
            kind,
        };
        let rows = vec![
            row("A", SuccessionKind::Partial),
            row("B", SuccessionKind::Full),
            row("C", SuccessionKind::Partial),
        ];
        assert_eq!(successors(&rows).get("x").map(String::as_str), Some("B"));
        let rows = vec![
            row("A", SuccessionKind::Partial),
            row("C", SuccessionKind::Partial),
        ];
        assert_eq!(successors(&rows).get("x").map(String::as_str), Some("A"));
    }

    #[test]
    fn finds_the_date_in_a_file_name() {
        assert_eq!(
            date_in_name("data/admin_units_2025-07-01.csv"),
            NaiveDate::from_ymd_opt(2025, 7, 1)
        );
        assert_eq!(date_in_name("units.csv"), None);
    }
}
