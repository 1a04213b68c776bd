//! Folds that keep the deltas they fold, for a while: `unit_month_fold` notes each fold of
//! rollup deltas into the rollup rows (every delta stamped up to `upto` is in the rows), and
//! when it was done. The deltas stay until the fold is older than a few minutes, then are
//! pruned (`pruned` set on the fold).
//!
//! So a copy in memory never has to read a rollup row again once loaded: it reads each delta
//! once, past its mark, whether folded since or not, and holds no per-row state to tell what a
//! row read again adds. A copy loads the rows and the deltas past the highest `upto`; a copy
//! whose mark lies before the highest pruned `upto` loads anew.
//!
//! A rollup row written by hand (without a stamp: the data change log's `rollup` kind) is
//! logged with what it adds, so that a copy applies it without the row's previous value: an
//! insert logs `unit|element|month|value`, a delete the value negated, an update both (and on
//! PostgreSQL, where such a row used to be read again through its stamp, moves the data
//! generation, as SQLite's triggers already do).
use sea_orm_migration::SchemaManagerConnection;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let time = if db.get_database_backend() == DbBackend::Postgres {
            "TIMESTAMPTZ"
        } else {
            "TIMESTAMP"
        };
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        replace_rollup_triggers(db, postgres, true).await?;
        db.execute_unprepared(&format!(
            "CREATE TABLE unit_month_fold (upto BIGINT NOT NULL PRIMARY KEY, \
             folded_at {time} NOT NULL, pruned BOOLEAN NOT NULL DEFAULT FALSE)"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE unit_month_fold").await?;
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        replace_rollup_triggers(db, postgres, false).await?;
        Ok(())
    }
}

/// When each of the rollup triggers fires (rows written without a stamp), and which row it
/// logs: `(name, when, row, sign)`.
const WHEN: &[(&str, &str, &str, &str)] = &[
    ("insert", "AFTER INSERT ON unit_month_fact", "NEW", ""),
    ("update", "AFTER UPDATE ON unit_month_fact", "NEW", ""),
    ("update_old", "AFTER UPDATE ON unit_month_fact", "OLD", "-"),
    ("delete", "AFTER DELETE ON unit_month_fact", "OLD", "-"),
];

/// The rollup triggers logging amounts (`amounts`: `tr_unit_month_fact_amount_*`), or as they
/// were (the key only: `tr_unit_month_fact_change_*`). The new ones have names of their own:
/// on SQLite a trigger dropped and created again by name in one migration can meet a pooled
/// connection that still sees the old one.
async fn replace_rollup_triggers(
    db: &SchemaManagerConnection<'_>,
    postgres: bool,
    amounts: bool,
) -> Result<(), DbErr> {
    let condition = |name: &str| match name {
        "insert" => "NEW.seq = 0",
        "update" | "update_old" => "NEW.seq = OLD.seq",
        _ => "",
    };
    let (old, new) = if amounts {
        ("change", "amount")
    } else {
        ("amount", "change")
    };
    if postgres {
        for (name, ..) in WHEN {
            db.execute_unprepared(&format!(
                "DROP TRIGGER IF EXISTS tr_unit_month_fact_{old}_{name} ON unit_month_fact"
            ))
            .await?;
        }
        if !amounts {
            for (name, when, _, _) in WHEN.iter().filter(|w| w.0 != "update_old") {
                let condition = condition(name);
                let condition = if condition.is_empty() {
                    String::new()
                } else {
                    format!("WHEN ({condition})")
                };
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER tr_unit_month_fact_{new}_{name} {when} FOR EACH ROW \
                     {condition} EXECUTE FUNCTION cnscd_log_change('rollup', 'unit_code', \
                     'element_code', 'month_start')"
                ))
                .await?;
            }
            db.execute_unprepared("DROP FUNCTION cnscd_log_rollup()")
                .await?;
            return Ok(());
        }
        db.execute_unprepared(
            "CREATE FUNCTION cnscd_log_rollup() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
               IF TG_OP IN ('UPDATE', 'DELETE') THEN \
                 INSERT INTO data_change (kind, key) VALUES ('rollup', OLD.unit_code || '|' \
                   || OLD.element_code || '|' || OLD.month_start::text || '|' \
                   || (-OLD.value)::text); \
               END IF; \
               IF TG_OP IN ('UPDATE', 'INSERT') THEN \
                 INSERT INTO data_change (kind, key) VALUES ('rollup', NEW.unit_code || '|' \
                   || NEW.element_code || '|' || NEW.month_start::text || '|' \
                   || NEW.value::text); \
               END IF; \
               IF TG_WHEN = 'BEFORE' THEN \
                 UPDATE data_generation SET n = n + 1 WHERE id = 1; \
                 RETURN NEW; \
               END IF; \
               RETURN NULL; \
             END $$",
        )
        .await?;
        // An insert or update by hand is stamped by a BEFORE trigger (`..._stamp_...`), after
        // which it no longer looks written by hand: logged before that (triggers of one kind
        // fire in the order of their names, and `amount` comes before `stamp`).
        for (name, when, _, _) in WHEN.iter().filter(|w| w.0 != "update_old") {
            let condition = condition(name);
            let condition = if condition.is_empty() {
                String::new()
            } else {
                format!("WHEN ({condition})")
            };
            let when = if *name == "delete" {
                (*when).to_owned()
            } else {
                when.replace("AFTER", "BEFORE")
            };
            db.execute_unprepared(&format!(
                "CREATE TRIGGER tr_unit_month_fact_{new}_{name} {when} FOR EACH ROW \
                 {condition} EXECUTE FUNCTION cnscd_log_rollup()"
            ))
            .await?;
        }
        return Ok(());
    }
    for (name, ..) in WHEN {
        db.execute_unprepared(&format!(
            "DROP TRIGGER IF EXISTS tr_unit_month_fact_{old}_{name}"
        ))
        .await?;
    }
    let cast = |row: &str, column: &str| format!("CAST({row}.{column} AS TEXT)");
    for (name, when, row, sign) in WHEN {
        if !amounts && *name == "update_old" {
            continue;
        }
        let mut key = ["unit_code", "element_code", "month_start"]
            .iter()
            .map(|c| cast(row, c))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        if amounts {
            key = format!("{key} || '|' || CAST({sign}{row}.value AS TEXT)");
        }
        let condition = condition(name);
        let condition = if condition.is_empty() {
            String::new()
        } else {
            format!("WHEN {condition}")
        };
        db.execute_unprepared(&format!(
            "CREATE TRIGGER tr_unit_month_fact_{new}_{name} {when} {condition} BEGIN \
             INSERT INTO data_change (kind, key) VALUES ('rollup', {key}); END"
        ))
        .await?;
    }
    Ok(())
}
