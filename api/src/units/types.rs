//! GraphQL types of administrative units.
use crate::graphql::{Date, ids, loaders};
use crate::units::service;
use async_graphql::{ComplexObject, Context, Enum, ID, Result, SimpleObject};
use cnscd_entity::{admin_unit, admin_unit_succession};

/// Level of an administrative unit.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cnscd_entity::codes::UnitLevel")]
pub enum AdminLevel {
    /// Tỉnh or thành phố trực thuộc trung ương.
    Province,
    /// Abolished on 2025-07-01.
    District,
    /// Xã, phường, thị trấn or đặc khu.
    Commune,
    /// Thôn, xóm, bản, tổ dân phố: local codes given by the province.
    Hamlet,
}

/// Whether an old unit went wholly or in part into a new one.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cnscd_entity::codes::SuccessionKind")]
pub enum SuccessionKind {
    /// The whole old unit went into the new one.
    Full,
    /// Only part of the old unit went into the new one.
    Partial,
}

/// One version of an administrative unit: a code valid over a period, with its parent.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AdminUnit {
    /// Global id of this version.
    pub id: ID,
    /// Code: GSO code for provinces, districts and communes; local code for hamlets.
    pub code: String,
    /// Official name, e.g. "Xã Đồng Hỷ".
    pub name: String,
    /// Kind of unit as the catalogue names it (Tỉnh, Huyện, Xã, Phường, Thị trấn, …).
    #[graphql(name = "type")]
    pub unit_type: Option<String>,
    /// Level in the hierarchy.
    pub level: AdminLevel,
    /// Code of the parent unit during this version.
    pub parent_code: Option<String>,
    /// First day of this version.
    pub valid_from: Date,
    /// Last day of this version; null while it is in force.
    pub valid_to: Option<Date>,
    #[graphql(skip)]
    pub model: admin_unit::Model,
}

impl From<admin_unit::Model> for AdminUnit {
    fn from(m: admin_unit::Model) -> Self {
        Self {
            id: ids::encode(ids::ADMIN_UNIT, format!("{}@{}", m.code, m.valid_from)),
            code: m.code.clone(),
            name: m.name.clone(),
            unit_type: m.unit_type.clone(),
            level: m.level.into(),
            parent_code: m.parent_code.clone(),
            valid_from: m.valid_from.into(),
            valid_to: (!service::is_open(m.valid_to)).then_some(m.valid_to.into()),
            model: m,
        }
    }
}

/// A link between an old unit and the unit that succeeded it.
#[derive(SimpleObject)]
pub struct Succession {
    /// Code of the earlier unit.
    pub old_code: String,
    /// Code of the unit that succeeded it.
    pub new_code: String,
    /// FULL: the whole old unit went into the new one; PARTIAL: only part of it.
    pub kind: SuccessionKind,
    /// Day the succession took effect.
    pub effective_on: Date,
    /// The resolution that decided it, when recorded.
    pub legal_basis: Option<String>,
}

impl From<admin_unit_succession::Model> for Succession {
    fn from(m: admin_unit_succession::Model) -> Self {
        Self {
            old_code: m.old_code,
            new_code: m.new_code,
            kind: m.kind.into(),
            effective_on: m.effective_on.into(),
            legal_basis: m.legal_basis,
        }
    }
}

impl AdminUnit {
    /// The last day this version describes, capped at today.
    fn as_of(&self) -> chrono::NaiveDate {
        self.model.valid_to.min(service::today())
    }
}

#[ComplexObject]
impl AdminUnit {
    /// The parent unit as it was during this version.
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<AdminUnit>> {
        let Some(code) = &self.model.parent_code else {
            return Ok(None);
        };
        let on = self.as_of().max(self.model.valid_from);
        let loaders = loaders::<crate::units::loaders::UnitLoaders>(ctx)?;
        match loaders.unit_on.load_one((code.clone(), on)).await? {
            Some(p) => Ok(Some(p.into())),
            None => Ok(loaders.unit.load_one(code.clone()).await?.map(Into::into)),
        }
    }

    /// Units directly under this one on `on` (default: today, or the last day of this version).
    #[graphql(
        complexity = "crate::graphql::limits::list_complexity(crate::graphql::limits::CHILDREN_ESTIMATE, child_complexity)"
    )]
    async fn children(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Day the hierarchy is taken on.")] on: Option<Date>,
    ) -> Result<Vec<AdminUnit>> {
        let on = on.map(|d| d.0).unwrap_or_else(|| self.as_of());
        Ok(loaders::<crate::units::loaders::UnitLoaders>(ctx)?
            .children
            .load_one((self.model.code.clone(), on))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Units this one succeeded (2025 reorganisation and later).
    async fn predecessors(&self, ctx: &Context<'_>) -> Result<Vec<Succession>> {
        Ok(loaders::<crate::units::loaders::UnitLoaders>(ctx)?
            .predecessors
            .load_one(self.model.code.clone())
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Units that succeeded this one.
    async fn successors(&self, ctx: &Context<'_>) -> Result<Vec<Succession>> {
        Ok(loaders::<crate::units::loaders::UnitLoaders>(ctx)?
            .successors
            .load_one(self.model.code.clone())
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect())
    }
}
