//! Field and mutation guards: which actions a caller's roles allow at all.
use crate::auth::{Action, Principal};
use crate::error::Error;
use async_graphql::{Context, Guard, Result};

/// Lets the field run only when one of the caller's roles grants `action` somewhere.
pub struct Allowed(pub Action);

impl Guard for Allowed {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let principal = ctx.data::<Principal>()?;
        if principal.may(self.0) {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "none of the caller's roles ({}) may {}",
                if principal.role_names.is_empty() {
                    "none".to_owned()
                } else {
                    principal.role_names.join(", ")
                },
                describe(self.0)
            ))
            .into())
        }
    }
}

fn describe(action: Action) -> &'static str {
    match action {
        Action::ReadTeams => "read teams",
        Action::ReadMembers => "read members",
        Action::ReadPersonalData => "read members' personal data",
        Action::ReadActivities => "read activities",
        Action::ReadIndicators => "read indicators",
        Action::ReadAudit => "read the audit log",
        Action::ManageTeams => "manage teams",
        Action::ManageMembers => "manage memberships",
        Action::SubmitActivities => "submit activities",
        Action::SetIndicatorTargets => "set indicator targets",
        Action::ManageIndicators => "add or revise indicator definitions",
        Action::CorrectActivities => "correct or void activities",
        Action::SubmitDataValues => "submit reported figures",
        Action::ReadDataValues => "read reported figures",
        Action::LockPeriods => "lock or unlock periods",
        Action::ReadPeriodLocks => "read period locks",
        Action::ManageWebhooks => "manage webhooks",
    }
}
