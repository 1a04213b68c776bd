//! Seeding the standard catalogues (idempotent) and reading them.
use super::defaults::*;
use crate::error::Result;
use chrono::Utc;
use cnscd_entity::codes::{Aggregation, ElementSource};
use cnscd_entity::{
    activity_kind, affiliation, data_element, digital_service, indicator_definition,
};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ConnectionTrait, EntityName, EntityTrait,
    IntoActiveModel, PaginatorTrait, QuerySelect, Set,
};
use std::collections::HashSet;

/// Inserts every standard code that is missing; never changes what an admin edited.
pub async fn ensure_defaults(db: &impl ConnectionTrait) -> Result<()> {
    insert_missing(
        db,
        ACTIVITY_KINDS
            .iter()
            .enumerate()
            .map(|(i, (code, vi, en))| {
                let row = activity_kind::ActiveModel {
                    code: Set((*code).into()),
                    name_vi: Set((*vi).into()),
                    name_en: Set((*en).into()),
                    sort_order: Set(i as i32),
                    active: Set(true),
                };
                ((*code).to_owned(), row)
            }),
    )
    .await?;
    insert_missing(
        db,
        DIGITAL_SERVICES
            .iter()
            .enumerate()
            .map(|(i, (code, vi, en, cashless))| {
                let row = digital_service::ActiveModel {
                    code: Set((*code).into()),
                    name_vi: Set((*vi).into()),
                    name_en: Set((*en).into()),
                    cashless: Set(*cashless),
                    sort_order: Set(i as i32),
                    active: Set(true),
                };
                ((*code).to_owned(), row)
            }),
    )
    .await?;
    insert_missing(
        db,
        AFFILIATIONS.iter().enumerate().map(|(i, (code, vi, en))| {
            let row = affiliation::ActiveModel {
                code: Set((*code).into()),
                name_vi: Set((*vi).into()),
                name_en: Set((*en).into()),
                sort_order: Set(i as i32),
                active: Set(true),
            };
            ((*code).to_owned(), row)
        }),
    )
    .await?;
    insert_missing(
        db,
        standard_elements()
            .into_iter()
            .map(|(code, vi, en, source, aggregation)| {
                let row = data_element::ActiveModel {
                    code: Set(code.clone()),
                    name_vi: Set(vi),
                    name_en: Set(en),
                    source: Set(source),
                    aggregation: Set(aggregation),
                };
                (code, row)
            }),
    )
    .await?;
    let indicators = indicator_definition::Entity::find()
        .select_only()
        .column(indicator_definition::Column::Id)
        .count(db)
        .await?;
    if indicators == 0 {
        for (code, vi, en, num, den, factor) in INDICATORS {
            // Without RETURNING: a database at an earlier migration has fewer columns than
            // the entity (`valid_from` came later).
            indicator_definition::Entity::insert(indicator_definition::ActiveModel {
                code: Set((*code).into()),
                version: Set(1),
                name_vi: Set((*vi).into()),
                name_en: Set((*en).into()),
                description: Set(None),
                numerator: Set((*num).into()),
                denominator: Set(den.map(Into::into)),
                factor: Set(*factor),
                active: Set(true),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .exec_without_returning(db)
            .await?;
        }
    }
    Ok(())
}

/// Inserts the catalogue rows among `rows` (code, row) whose code the table does not hold yet.
async fn insert_missing<A>(
    db: &impl ConnectionTrait,
    rows: impl Iterator<Item = (String, A)>,
) -> Result<()>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    let table = A::Entity::default().table_name().to_owned();
    let mut have = HashSet::new();
    for r in crate::db::query(db, &format!("SELECT code FROM {table}"), vec![]).await? {
        have.insert(r.try_get::<String>("", "code")?);
    }
    for (code, row) in rows {
        if !have.contains(&code) {
            row.insert(db).await?;
        }
    }
    Ok(())
}

/// Every standard data element: (code, vi, en, source, aggregation).
pub fn standard_elements() -> Vec<(String, String, String, ElementSource, Aggregation)> {
    let mut out = vec![
        (
            "ACTIVITIES".into(),
            "Số hoạt động".into(),
            "Activities".into(),
            ElementSource::Derived,
            Aggregation::Flow,
        ),
        (
            "PARTICIPANTS".into(),
            "Lượt người tham dự".into(),
            "Participants".into(),
            ElementSource::Derived,
            Aggregation::Flow,
        ),
        (
            "HOUSEHOLDS_REACHED".into(),
            "Lượt hộ được tiếp cận".into(),
            "Households reached".into(),
            ElementSource::Derived,
            Aggregation::Flow,
        ),
        (
            "PEOPLE_CASHLESS".into(),
            "Lượt người được hỗ trợ thanh toán không dùng tiền mặt".into(),
            "People helped to pay cashless".into(),
            ElementSource::Derived,
            Aggregation::Flow,
        ),
    ];
    for (code, vi, en) in ACTIVITY_KINDS {
        out.push((
            format!("ACTIVITIES_{code}"),
            format!("Số hoạt động: {vi}"),
            format!("Activities: {en}"),
            ElementSource::Derived,
            Aggregation::Flow,
        ));
    }
    for (code, vi, en, _) in DIGITAL_SERVICES {
        out.push((
            format!("PEOPLE_{code}"),
            format!("Lượt người được hỗ trợ: {vi}"),
            format!("People helped: {en}"),
            ElementSource::Derived,
            Aggregation::Flow,
        ));
        out.push((
            format!("HOUSEHOLDS_{code}"),
            format!("Lượt hộ được hỗ trợ: {vi}"),
            format!("Households helped: {en}"),
            ElementSource::Derived,
            Aggregation::Flow,
        ));
    }
    for (code, vi, en) in STATE_ELEMENTS {
        out.push((
            (*code).into(),
            (*vi).into(),
            (*en).into(),
            ElementSource::Derived,
            Aggregation::State,
        ));
    }
    for (code, vi, en) in AFFILIATIONS {
        out.push((
            format!("ACTIVE_MEMBERS_{code}"),
            format!("Số thành viên: {vi}"),
            format!("Active members: {en}"),
            ElementSource::Derived,
            Aggregation::State,
        ));
    }
    for (code, vi, en, aggregation) in REPORTED_ELEMENTS {
        out.push((
            (*code).into(),
            (*vi).into(),
            (*en).into(),
            ElementSource::Reported,
            *aggregation,
        ));
    }
    out
}
