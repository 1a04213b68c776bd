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

impl From<activity_kind::Model> for CatalogueEntry {
    fn from(k: activity_kind::Model) -> Self {
        Self {
            code: k.code,
            name_vi: k.name_vi,
            name_en: k.name_en,
            active: k.active,
        }
    }
}

impl From<affiliation::Model> for CatalogueEntry {
    fn from(a: affiliation::Model) -> Self {
        Self {
            code: a.code,
            name_vi: a.name_vi,
            name_en: a.name_en,
            active: a.active,
        }
    }
}

impl From<digital_service::Model> for DigitalService {
    fn from(s: digital_service::Model) -> Self {
        Self {
            code: s.code,
            name_vi: s.name_vi,
            name_en: s.name_en,
            cashless: s.cashless,
            active: s.active,
        }
    }
}

impl From<data_element::Model> for DataElement {
    fn from(e: data_element::Model) -> Self {
        Self {
            code: e.code,
            name_vi: e.name_vi,
            name_en: e.name_en,
            source: e.source.into(),
            aggregation: e.aggregation.into(),
        }
    }
}

/// Every row of a catalogue in `order`, as its GraphQL type.
async fn entries<E, T>(ctx: &Context<'_>, order: E::Column) -> Result<Vec<T>>
where
    E: EntityTrait,
    T: From<E::Model>,
{
    let (db, _) = state(ctx)?;
    Ok(E::find()
        .order_by_asc(order)
        .all(db)
        .await?
        .into_iter()
        .map(T::from)
        .collect())
}

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// Kinds of activity.
    async fn activity_kinds(&self, ctx: &Context<'_>) -> Result<Vec<CatalogueEntry>> {
        entries::<activity_kind::Entity, _>(ctx, activity_kind::Column::SortOrder).await
    }

    /// Digital services.
    async fn digital_services(&self, ctx: &Context<'_>) -> Result<Vec<DigitalService>> {
        entries::<digital_service::Entity, _>(ctx, digital_service::Column::SortOrder).await
    }

    /// Member affiliations.
    async fn affiliations(&self, ctx: &Context<'_>) -> Result<Vec<CatalogueEntry>> {
        entries::<affiliation::Entity, _>(ctx, affiliation::Column::SortOrder).await
    }

    /// Data elements.
    async fn data_elements(&self, ctx: &Context<'_>) -> Result<Vec<DataElement>> {
        entries::<data_element::Entity, _>(ctx, data_element::Column::Code).await
    }
}
