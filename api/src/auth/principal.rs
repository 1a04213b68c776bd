//! The caller: who it is, its roles, and the area each action is allowed over.
use super::Claims;
use crate::graphql::ids;

/// Roles a token may carry.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Admin,
    UnitAdmin,
    TeamLeader,
    Reporter,
    Viewer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADMIN" => Self::Admin,
            "UNIT_ADMIN" => Self::UnitAdmin,
            "TEAM_LEADER" => Self::TeamLeader,
            "REPORTER" => Self::Reporter,
            "VIEWER" => Self::Viewer,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "ADMIN",
            Self::UnitAdmin => "UNIT_ADMIN",
            Self::TeamLeader => "TEAM_LEADER",
            Self::Reporter => "REPORTER",
            Self::Viewer => "VIEWER",
        }
    }

    pub const ALL: [Role; 5] = [
        Self::Admin,
        Self::UnitAdmin,
        Self::TeamLeader,
        Self::Reporter,
        Self::Viewer,
    ];
}

/// What a caller may want to do; each role grants some actions over some area.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    ReadTeams,
    ReadMembers,
    ReadPersonalData,
    ReadActivities,
    ReadIndicators,
    ReadAudit,
    ManageTeams,
    ManageMembers,
    SubmitActivities,
    /// Set indicator targets (ADMIN; UNIT_ADMIN over its units).
    SetIndicatorTargets,
    /// Add or revise indicator definitions (ADMIN only).
    ManageIndicators,
    /// Correct or void an activity: what the caller submitted itself, its teams' activities
    /// (TEAM_LEADER), or the activities of its area (UNIT_ADMIN).
    CorrectActivities,
    /// Send reported figures (ADMIN; UNIT_ADMIN and REPORTER over their units).
    SubmitDataValues,
    /// Read reported figures: over the caller's units (UNIT_ADMIN, VIEWER), or what the caller
    /// sent itself (REPORTER).
    ReadDataValues,
    /// Lock and unlock periods (ADMIN; UNIT_ADMIN over its units).
    LockPeriods,
    /// Read period locks (every role but TEAM_LEADER, over its units).
    ReadPeriodLocks,
    /// Create and delete webhooks, see their deliveries (ADMIN; UNIT_ADMIN over its units).
    ManageWebhooks,
}

/// Where an action is allowed: everywhere, or over the token's units (and everything under
/// them), over the token's teams, or over what the caller itself submitted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub all: bool,
    pub units: Vec<String>,
    pub teams: Vec<i64>,
    /// The caller identity ([`identity`]) whose own submissions are in scope.
    pub submitter: Option<String>,
}

impl Scope {
    pub fn is_empty(&self) -> bool {
        !self.all && self.units.is_empty() && self.teams.is_empty() && self.submitter.is_none()
    }
}

/// The caller identity a row is owned by: subject and client together, as a JSON array
/// (`["sub","client"]`, `["sub",null]` without a client). The encoding is unambiguous whatever
/// characters the two hold (a naive `sub:client` makes `a:b`+`c` and `a`+`b:c` the same caller).
/// Idempotency keys are scoped by it and "what I submitted" compares it, so both agree on who
/// the caller is.
pub fn identity(subject: &str, client: Option<&str>) -> String {
    serde_json::json!([subject, client]).to_string()
}

/// The authenticated caller of one request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub subject: String,
    pub roles: Vec<Role>,
    pub role_names: Vec<String>,
    pub units: Vec<String>,
    pub teams: Vec<i64>,
    pub team_ids: Vec<String>,
    pub client_id: Option<String>,
}

impl Principal {
    pub fn from_claims(claims: Claims) -> Self {
        let mut roles: Vec<Role> = claims.roles.iter().filter_map(|r| Role::parse(r)).collect();
        roles.sort();
        roles.dedup();
        let teams = claims
            .teams
            .iter()
            .filter_map(|t| ids::decode_as(ids::TEAM, t).ok())
            .collect();
        Self {
            subject: claims.sub,
            role_names: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            roles,
            units: claims.units,
            teams,
            team_ids: claims.teams,
            client_id: claims.client_id,
        }
    }

    /// The caller's identity (subject and client), see [`identity`].
    pub fn identity(&self) -> String {
        identity(&self.subject, self.client_id.as_deref())
    }

    /// Whether any role grants `action` anywhere at all (the guard on fields and mutations).
    pub fn may(&self, action: Action) -> bool {
        !self.scope(action).is_empty()
    }

    /// The area over which the caller's roles grant `action`.
    pub fn scope(&self, action: Action) -> Scope {
        use Action::*;
        use Role::*;
        let mut scope = Scope::default();
        for role in &self.roles {
            let (units, teams, own) = match (role, action) {
                (Admin, _) => {
                    scope.all = true;
                    continue;
                }
                (UnitAdmin, ManageIndicators) => (false, false, false),
                (UnitAdmin, _) => (true, false, false),
                (TeamLeader, ReadTeams | ReadMembers | ReadPersonalData | ReadActivities) => {
                    (false, true, false)
                }
                (TeamLeader, ManageMembers | SubmitActivities) => (false, true, false),
                (TeamLeader, CorrectActivities) => (false, true, true),
                (Reporter, ReadTeams | SubmitActivities | SubmitDataValues | ReadPeriodLocks) => {
                    (true, false, false)
                }
                (Reporter, ReadActivities | CorrectActivities | ReadDataValues) => {
                    (false, false, true)
                }
                (
                    Viewer,
                    ReadTeams | ReadMembers | ReadActivities | ReadIndicators | ReadDataValues
                    | ReadPeriodLocks,
                ) => (true, false, false),
                _ => (false, false, false),
            };
            if units && scope.units.is_empty() {
                scope.units = self.units.clone();
            }
            if teams && scope.teams.is_empty() {
                scope.teams = self.teams.clone();
            }
            if own {
                scope.submitter = Some(self.identity());
            }
        }
        if scope.all {
            return Scope {
                all: true,
                ..Scope::default()
            };
        }
        scope
    }

    /// The role under which the caller acts, for audit entries.
    pub fn roles_label(&self) -> String {
        self.role_names.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[&str]) -> Principal {
        Principal::from_claims(Claims {
            sub: "u".into(),
            exp: 0,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            units: vec!["169".into()],
            teams: vec![ids::encode(ids::TEAM, 7).to_string()],
            ..Claims::default()
        })
    }

    #[test]
    fn viewer_reads_units_but_not_personal_data() {
        let p = principal(&["VIEWER"]);
        assert_eq!(p.scope(Action::ReadTeams).units, vec!["169".to_owned()]);
        assert!(!p.may(Action::ReadPersonalData));
        assert!(!p.may(Action::ManageTeams));
    }

    #[test]
    fn team_leader_is_limited_to_its_teams() {
        let p = principal(&["TEAM_LEADER"]);
        let s = p.scope(Action::ManageMembers);
        assert_eq!(s.teams, vec![7]);
        assert!(s.units.is_empty());
        assert!(!p.may(Action::ManageTeams));
    }

    #[test]
    fn reporter_reads_only_what_it_submitted() {
        let p = principal(&["REPORTER"]);
        let s = p.scope(Action::ReadActivities);
        assert_eq!(s.submitter.as_deref(), Some(r#"["u",null]"#));
        assert!(s.units.is_empty());
        assert!(!p.may(Action::ReadMembers));
    }

    #[test]
    fn identities_do_not_collide() {
        assert_ne!(identity("a:b", Some("c")), identity("a", Some("b:c")));
        assert_ne!(identity("a|b", Some("c")), identity("a", Some("b|c")));
        assert_ne!(identity("a", None), identity("a", Some("")));
        assert_eq!(identity("a\"b", Some("c")), r#"["a\"b","c"]"#);
        // The migration that filled existing rows encodes the same way.
        for (s, c) in [
            ("Trần\u{1}\\\"\n\t\u{7f}", Some("x\u{8}\u{c}\r")),
            ("u", None),
        ] {
            assert_eq!(identity(s, c), cnscd_migration::caller_identity(s, c));
        }
    }

    #[test]
    fn corrections_follow_the_submitter_the_team_and_the_area() {
        let p = principal(&["TEAM_LEADER"]);
        let s = p.scope(Action::CorrectActivities);
        assert_eq!(s.teams, vec![7]);
        assert_eq!(s.submitter.as_deref(), Some(r#"["u",null]"#));
        let s = principal(&["REPORTER"]).scope(Action::CorrectActivities);
        assert!(s.units.is_empty() && s.teams.is_empty() && s.submitter.is_some());
        let s = principal(&["UNIT_ADMIN"]).scope(Action::CorrectActivities);
        assert_eq!(s.units, vec!["169".to_owned()]);
        assert!(!principal(&["VIEWER"]).may(Action::CorrectActivities));
    }

    #[test]
    fn figures_and_locks_by_role() {
        assert!(principal(&["REPORTER"]).may(Action::SubmitDataValues));
        assert!(!principal(&["VIEWER"]).may(Action::SubmitDataValues));
        assert!(!principal(&["TEAM_LEADER"]).may(Action::SubmitDataValues));
        assert!(principal(&["UNIT_ADMIN"]).may(Action::LockPeriods));
        assert!(!principal(&["REPORTER"]).may(Action::LockPeriods));
        assert!(principal(&["VIEWER"]).may(Action::ReadDataValues));
    }

    #[test]
    fn unknown_roles_grant_nothing() {
        let p = principal(&["SUPERUSER"]);
        assert!(!p.may(Action::ReadTeams));
    }
}
