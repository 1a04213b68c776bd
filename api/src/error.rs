//! The one error type of the service, its GraphQL error codes, and user errors for payloads.
use async_graphql::{Enum, ErrorExtensions, SimpleObject};
use sea_orm::DbErr;

/// Codes carried by `extensions.code` on top-level errors and by `code` on user errors.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "UserErrorCode")]
pub enum ErrorCode {
    /// No valid bearer token: missing, expired or not verifiable (HTTP 401).
    Unauthenticated,
    /// The caller's roles or area do not allow this.
    Forbidden,
    /// No such object, or it lies outside the caller's area.
    NotFound,
    /// Input that is malformed or breaks a rule; `field` names the input at fault.
    Validation,
    /// The change clashes with the current state, e.g. a second current leader (tổ trưởng)
    /// or a change to an ended membership.
    Conflict,
    /// The idempotency key was already used for a different submission.
    IdempotencyKeyReused,
    /// The period containing the day is locked for the unit or a unit above it.
    PeriodLocked,
    /// The client's rate limit is spent (HTTP 429): retry after the `Retry-After` seconds;
    /// `extensions.cost` shows the bucket.
    RateLimited,
    /// The query exceeds the limits on depth, complexity or size.
    QueryTooComplex,
    /// A fault of the service, or the database is unavailable; the cause is logged, not shown.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::Validation => "VALIDATION",
            Self::Conflict => "CONFLICT",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::PeriodLocked => "PERIOD_LOCKED",
            Self::RateLimited => "RATE_LIMITED",
            Self::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Self::Internal => "INTERNAL",
        }
    }
}

/// Everything that can go wrong in a request. It deliberately does not implement `Display`,
/// so that `?` into a GraphQL error always goes through [`ErrorExtensions`] and carries a code.
#[derive(Debug)]
pub enum Error {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    /// Bad input; `field` is the path of the input field at fault.
    Validation {
        field: Vec<String>,
        message: String,
    },
    /// Several problems with the input at once.
    Invalid(Vec<UserError>),
    Conflict(String),
    IdempotencyKeyReused(String),
    PeriodLocked(String),
    Db(DbErr),
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A validation error on the input field at `field` (dotted path, e.g. `input.unitCode`).
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.split('.').map(str::to_owned).collect(),
            message: message.into(),
        }
    }

    /// A range filter's bounds as given, or a validation error on `from` when it is after `to`.
    pub fn in_order<T: PartialOrd>(
        from: Option<T>,
        to: Option<T>,
    ) -> Result<(Option<T>, Option<T>)> {
        match (&from, &to) {
            (Some(f), Some(t)) if f > t => Err(Self::invalid("from", "`from` is after `to`")),
            _ => Ok((from, to)),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Validation { .. } | Self::Invalid(_) => ErrorCode::Validation,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::IdempotencyKeyReused(_) => ErrorCode::IdempotencyKeyReused,
            Self::PeriodLocked(_) => ErrorCode::PeriodLocked,
            Self::Db(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Whether the caller can act on this error (it goes into `userErrors`), as opposed to a
    /// fault of the service (a top-level INTERNAL error).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Self::Db(_) | Self::Internal(_))
    }

    /// What went wrong, for the caller (internal causes only in logs: see
    /// [`Error::public_message`]).
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::IdempotencyKeyReused(m)
            | Self::PeriodLocked(m)
            | Self::Internal(m) => m.clone(),
            Self::Validation { message, .. } => message.clone(),
            Self::Invalid(errors) => errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            Self::Db(e) => format!("database error: {e}"),
        }
    }

    /// The message shown to the caller: internal causes are logged, never shown.
    fn public_message(&self) -> String {
        match self {
            Self::Db(e) if is_unavailable(e) => {
                "the database is unavailable; try again shortly".to_owned()
            }
            Self::Db(_) | Self::Internal(_) => "internal error; it has been logged".to_owned(),
            other => other.message(),
        }
    }
}

/// `extensions.reason` of an `INTERNAL` error raised because the database did not answer.
pub const DATABASE_UNAVAILABLE: &str = "DATABASE_UNAVAILABLE";

fn is_unavailable(e: &DbErr) -> bool {
    matches!(e, DbErr::ConnectionAcquire(_) | DbErr::Conn(_))
}

impl ErrorExtensions for Error {
    fn extend(&self) -> async_graphql::Error {
        if !self.is_user_error() {
            tracing::error!(error = %self.message(), "request failed");
        }
        if let Self::Db(DbErr::ConnectionAcquire(_)) = self {
            metrics::counter!("cnscd_db_pool_acquire_timeouts_total").increment(1);
        }
        async_graphql::Error::new(self.public_message()).extend_with(|_, e| {
            e.set("code", self.code().as_str());
            if let Self::Validation { field, .. } = self {
                e.set("field", field.clone());
            }
            // Lets the HTTP layer answer 503 with Retry-After when nothing could be read.
            if let Self::Db(d) = self
                && is_unavailable(d)
            {
                e.set("reason", DATABASE_UNAVAILABLE);
            }
        })
    }
}

impl From<Error> for async_graphql::Error {
    fn from(e: Error) -> Self {
        e.extend()
    }
}

impl From<Error> for anyhow::Error {
    fn from(e: Error) -> Self {
        anyhow::anyhow!(e.message())
    }
}

impl From<DbErr> for Error {
    fn from(e: DbErr) -> Self {
        Self::Db(e)
    }
}

/// A problem with a mutation's input that the caller can fix.
#[derive(SimpleObject, Clone, Debug)]
pub struct UserError {
    /// Path to the input field at fault, e.g. `["input", "occurredOn"]`; null when the
    /// problem is not one field's.
    pub field: Option<Vec<String>>,
    /// What is wrong, in words a person can act on.
    pub message: String,
    /// Kind of problem.
    pub code: ErrorCode,
}

impl UserError {
    pub fn new(field: &str, message: impl Into<String>, code: ErrorCode) -> Self {
        Self {
            field: Some(field.split('.').map(str::to_owned).collect()),
            message: message.into(),
            code,
        }
    }
}

/// Splits a service result into what a payload carries: the object, or user errors; faults
/// of the service become a top-level error.
pub fn into_payload<T>(
    result: Result<T>,
) -> std::result::Result<(Option<T>, Vec<UserError>), async_graphql::Error> {
    match result {
        Ok(v) => Ok((Some(v), Vec::new())),
        Err(Error::Invalid(errors)) => Ok((None, errors)),
        Err(e) if e.is_user_error() => {
            let field = match &e {
                Error::Validation { field, .. } => Some(field.clone()),
                _ => None,
            };
            Ok((
                None,
                vec![UserError {
                    field,
                    message: e.message(),
                    code: e.code(),
                }],
            ))
        }
        Err(e) => Err(e.extend()),
    }
}

/// Collects validation problems so that one response names all of them.
#[derive(Default)]
pub struct Problems(pub Vec<UserError>);

impl Problems {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .push(UserError::new(field, message, ErrorCode::Validation));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was found, otherwise an error naming every problem.
    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self.0))
        }
    }
}
