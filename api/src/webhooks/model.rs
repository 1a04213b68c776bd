//! What a webhook is told of, the states of a delivery, when a failed one is tried again, and
//! how a delivery is signed (Standard Webhooks).
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// A kind of change a webhook may subscribe to, from the audit action that records it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    ActivitySubmitted,
    ActivityCorrected,
    ActivityVoided,
    DataValuesSubmitted,
    TeamChanged,
    MembershipChanged,
    PeriodLocked,
    PeriodUnlocked,
}

impl Event {
    pub const ALL: [Event; 8] = [
        Self::ActivitySubmitted,
        Self::ActivityCorrected,
        Self::ActivityVoided,
        Self::DataValuesSubmitted,
        Self::TeamChanged,
        Self::MembershipChanged,
        Self::PeriodLocked,
        Self::PeriodUnlocked,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ActivitySubmitted => "ACTIVITY_SUBMITTED",
            Self::ActivityCorrected => "ACTIVITY_CORRECTED",
            Self::ActivityVoided => "ACTIVITY_VOIDED",
            Self::DataValuesSubmitted => "DATA_VALUES_SUBMITTED",
            Self::TeamChanged => "TEAM_CHANGED",
            Self::MembershipChanged => "MEMBERSHIP_CHANGED",
            Self::PeriodLocked => "PERIOD_LOCKED",
            Self::PeriodUnlocked => "PERIOD_UNLOCKED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The event an audit entry's action makes, if any (the outbox trigger lists the same
    /// actions).
    pub fn of_action(action: &str) -> Option<Self> {
        use crate::audit::service::AuditAction as A;
        let action = A::ALL.into_iter().find(|a| a.as_str() == action)?;
        Some(match action {
            A::SubmitActivity => Self::ActivitySubmitted,
            A::CorrectActivity => Self::ActivityCorrected,
            A::VoidActivity => Self::ActivityVoided,
            A::SubmitDataValues => Self::DataValuesSubmitted,
            A::CreateTeam | A::UpdateTeam | A::DissolveTeam => Self::TeamChanged,
            A::AddMember | A::UpdateMembership | A::EndMembership => Self::MembershipChanged,
            A::LockPeriod => Self::PeriodLocked,
            A::UnlockPeriod => Self::PeriodUnlocked,
            A::SaveIndicatorDefinition
            | A::SetIndicatorTarget
            | A::CreateWebhook
            | A::DeleteWebhook
            | A::RedeliverWebhook
            | A::SaveRestEndpoint
            | A::DeleteRestEndpoint => return None,
        })
    }

    /// A webhook's events as stored: their names, comma-separated.
    pub fn join(events: &[Event]) -> String {
        events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn split(stored: &str) -> Vec<Event> {
        stored.split(',').filter_map(Self::parse).collect()
    }
}

/// Where a delivery stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not delivered yet: waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Succeeded,
    /// Every attempt failed until the retry window closed; `redeliverWebhook` tries again.
    Failed,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// The waits after the first, second, … failed attempt, in units of the first: about 1 s, 5 s,
/// 30 s, 2 min, 10 min, 1 h, then hourly.
const SCHEDULE: [u32; 6] = [1, 5, 30, 120, 600, 3600];

/// How long to wait after the `failures`-th failed attempt (1 for the first), `first` being the
/// first wait, `jitter` a number in [0, 1) that spreads the wait over ±20%, so that the
/// deliveries a receiver's outage held back do not all come back at once.
pub fn retry_delay(failures: u32, first: Duration, jitter: f64) -> Duration {
    let index = (failures.max(1) as usize - 1).min(SCHEDULE.len() - 1);
    let base = first.saturating_mul(SCHEDULE[index]);
    base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

/// A new signing secret: `whsec_` and 32 random bytes in base64, as Standard Webhooks writes
/// them (the receiver signs with the decoded bytes).
pub fn new_secret() -> crate::error::Result<String> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| crate::error::Error::Internal(format!("no random bytes: {e}")))?;
    Ok(format!("whsec_{}", STANDARD.encode(key)))
}

/// The `webhook-signature` header of a delivery: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body`, keyed with the secret's bytes.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap_or_else(|_| secret.as_bytes().to_vec());
    let mut mac = match Hmac::<Sha256>::new_from_slice(&key) {
        Ok(mac) => mac,
        // HMAC takes a key of any length.
        Err(_) => return String::new(),
    };
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn retries_follow_the_schedule_within_their_jitter() {
        let first = Duration::from_secs(1);
        assert_eq!(retry_delay(1, first, 0.5), Duration::from_secs(1));
        assert_eq!(retry_delay(2, first, 0.5), Duration::from_secs(5));
        assert_eq!(retry_delay(6, first, 0.5), Duration::from_secs(3600));
        assert_eq!(retry_delay(40, first, 0.5), Duration::from_secs(3600));
        assert_eq!(retry_delay(3, first, 0.0), Duration::from_secs(24));
        assert!(retry_delay(3, first, 0.999) < Duration::from_secs(36));
    }

    #[test]
    fn every_event_names_itself_and_an_action_makes_at_most_one() {
        for e in Event::ALL {
            assert_eq!(Event::parse(e.as_str()), Some(e));
        }
        assert_eq!(Event::split(&Event::join(&Event::ALL)), Event::ALL.to_vec());
        assert_eq!(
            Event::of_action("submitActivity"),
            Some(Event::ActivitySubmitted)
        );
        assert_eq!(Event::of_action("dissolveTeam"), Some(Event::TeamChanged));
        assert_eq!(Event::of_action("setIndicatorTarget"), None);
        let with_events = crate::audit::service::AuditAction::ALL
            .into_iter()
            .filter(|a| Event::of_action(a.as_str()).is_some())
            .count();
        assert_eq!(with_events, 12, "the outbox trigger lists twelve actions");
    }
}
