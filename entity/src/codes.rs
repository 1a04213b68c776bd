//! The closed sets of codes stored in text columns. The database refuses any other value (CHECK
//! constraints), and the service and the GraphQL schema use these enums, never string literals.
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

macro_rules! codes {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, DeriveActiveEnum,
            Serialize, Deserialize,
        )]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
        pub enum $name {
            $($(#[$vdoc])* #[sea_orm(string_value = $value)] #[serde(rename = $value)] $variant,)+
        }

        impl $name {
            /// Every code, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The code as stored.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $value,)+
                }
            }

            /// The variant for a stored code.
            pub fn parse(code: &str) -> Option<Self> {
                match code {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

codes!(
    /// Whether a team is working.
    TeamStatus { Active = "ACTIVE", Dissolved = "DISSOLVED" }
);

codes!(
    /// A member's role in a team.
    MemberRole { Leader = "LEADER", Deputy = "DEPUTY", Member = "MEMBER" }
);

codes!(
    /// A person's gender, as the person gives it.
    Gender { Male = "MALE", Female = "FEMALE", Other = "OTHER" }
);

codes!(
    /// Whether an activity counts.
    ActivityStatus { Recorded = "RECORDED", Voided = "VOIDED" }
);

codes!(
    /// Level of an administrative unit.
    UnitLevel { Province = "PROVINCE", District = "DISTRICT", Commune = "COMMUNE", Hamlet = "HAMLET" }
);

codes!(
    /// Whether an old unit went wholly or in part into a new one.
    SuccessionKind { Full = "FULL", Partial = "PARTIAL" }
);

codes!(
    /// Where a data element's values come from.
    ElementSource { Derived = "DERIVED", Reported = "REPORTED" }
);

codes!(
    /// How a data element's values add up over a period.
    Aggregation { Flow = "FLOW", State = "STATE", Reference = "REFERENCE" }
);

impl UnitLevel {
    /// Depth below a province: 0 for a province, 3 for a hamlet.
    pub fn rank(self) -> u8 {
        match self {
            Self::Province => 0,
            Self::District => 1,
            Self::Commune => 2,
            Self::Hamlet => 3,
        }
    }
}

codes!(
    /// The change that ended a version of an activity.
    ActivityChange { Correct = "CORRECT", Void = "VOID" }
);
