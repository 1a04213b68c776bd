//! Catalogue queries (reference data: any authenticated caller).
use crate::graphql::state;
use async_graphql::{Context, Object, Result, SimpleObject};
use cnscd_entity::{activity_kind, affiliation, data_element, digital_service};
use sea_orm::{EntityTrait, QueryOrder};

/// An entry of a catalogue.
#[derive(SimpleObject)]
pub struct CatalogueEntry {
    /// Code used in data, e.g. DOOR_TO_DOOR or YOUTH_UNION.
    pub code: String,
    /// Vietnamese name.
    pub name_vi: String,
    /// English name.
    pub name_en: String,
    /// Whether new data may use it.
    pub active: bool,
}

/// A digital service teams help people with.
#[derive(SimpleObject)]
pub struct DigitalService {
    /// Service code, e.g. VNEID.
    pub code: String,
    /// Vietnamese name.
    pub name_vi: String,
    /// English name.
    pub name_en: String,
    /// Whether helping with it counts as cashless payment (CNS08).
    pub cashless: bool,
    /// Whether new activities may report it.
    pub active: bool,
}

/// Where a data element's values come from.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cnscd_entity::codes::ElementSource")]
pub enum ElementSource {
    /// Counted by the service from activities and memberships.
    Derived,
    /// Reported by other systems (data values).
    Reported,
}

/// How a data element's values add up over a period.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cnscd_entity::codes::Aggregation")]
pub enum Aggregation {
    /// Summed over the period.
    Flow,
    /// Taken at the period's end.
    State,
    /// The latest value reported for the period's year.
    Reference,
}

/// A data element indicators are computed from.
#[derive(SimpleObject)]
pub struct DataElement {
    /// Data element code, e.g. DOSSIERS_ONLINE.
    pub code: String,
    /// Vietnamese name.
    pub name_vi: String,
    /// English name.
    pub name_en: String,
    /// DERIVED from activities and memberships, or REPORTED by other systems.
    pub source: ElementSource,
    /// FLOW (summed over a period), STATE (at the period's end) or REFERENCE (latest value
    /// reported for the period's year).
    pub aggregation: Aggregation,
}

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// Kinds of activity.
    async fn activity_kinds(&self, ctx: &Context<'_>) -> Result<Vec<CatalogueEntry>> {
        let (db, _) = state(ctx)?;
        Ok(activity_kind::Entity::find()
            .order_by_asc(activity_kind::Column::SortOrder)
            .all(db)
            .await?
            .into_iter()
            .map(|k| CatalogueEntry {
                code: k.code,
                name_vi: k.name_vi,
                name_en: k.name_en,
                active: k.active,
            })
            .collect())
    }

    /// Digital services.
    async fn digital_services(&self, ctx: &Context<'_>) -> Result<Vec<DigitalService>> {
        let (db, _) = state(ctx)?;
        Ok(digital_service::Entity::find()
            .order_by_asc(digital_service::Column::SortOrder)
            .all(db)
            .await?
            .into_iter()
            .map(|s| DigitalService {
                code: s.code,
                name_vi: s.name_vi,
                name_en: s.name_en,
                cashless: s.cashless,
                active: s.active,
            })
            .collect())
    }

    /// Member affiliations.
    async fn affiliations(&self, ctx: &Context<'_>) -> Result<Vec<CatalogueEntry>> {
        let (db, _) = state(ctx)?;
        Ok(affiliation::Entity::find()
            .order_by_asc(affiliation::Column::SortOrder)
            .all(db)
            .await?
            .into_iter()
            .map(|k| CatalogueEntry {
                code: k.code,
                name_vi: k.name_vi,
                name_en: k.name_en,
                active: k.active,
            })
            .collect())
    }

    /// Data elements.
    async fn data_elements(&self, ctx: &Context<'_>) -> Result<Vec<DataElement>> {
        let (db, _) = state(ctx)?;
        Ok(data_element::Entity::find()
            .order_by_asc(data_element::Column::Code)
            .all(db)
            .await?
            .into_iter()
            .map(|e| DataElement {
                code: e.code,
                name_vi: e.name_vi,
                name_en: e.name_en,
                source: e.source.into(),
                aggregation: e.aggregation.into(),
            })
            .collect())
    }
}
