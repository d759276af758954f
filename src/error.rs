//! The service layer's errors: Keystone's exception classes, without HTTP.
//! `api::error` is the single place that maps them to status codes and bodies.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400 ValidationError: the message is shown to the client verbatim.
    #[error("{0}")]
    Validation(String),
    /// 401: the detail is logged, never shown (Keystone's security errors).
    #[error("authentication failed: {detail}")]
    Unauthorized { detail: String },
    /// 401 AuthMethodNotSupported, which also lists the configured methods.
    #[error("Attempted to authenticate with an unsupported method.")]
    AuthMethodNotSupported { methods: Vec<String> },
    /// 403 on a policy failure; `action` is Keystone's rule name.
    #[error("You are not authorized to perform the requested action: {action}.")]
    PolicyForbidden { action: String },
    /// 403 for other refusals; the detail is logged, the client sees the generic text.
    #[error("forbidden: {detail}")]
    Forbidden { detail: String },
    /// 403 whose message Keystone shows verbatim (ForbiddenAction-style rule violations).
    #[error("{0}")]
    ForbiddenAction(String),
    /// 404 with Keystone's message (token, user, project, domain not found...).
    #[error("{0}")]
    NotFound(String),
    /// 409 Conflict.
    #[error("Conflict occurred attempting to store {what}")]
    Conflict { what: String },
    /// 503: a dependency (database, revocation feed) is unreachable; fail closed.
    #[error("service unavailable: {detail}")]
    Unavailable { detail: String },
    /// 500: a bug or a broken deployment (e.g. no usable Fernet keys).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Error::Unauthorized {
            detail: detail.into(),
        }
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }

    pub fn validation(msg: impl Into<String>) -> Self {
        Error::Validation(msg.into())
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Error::Internal(e.into())
    }

    pub fn validation_forbidden(msg: impl Into<String>) -> Self {
        Error::ForbiddenAction(msg.into())
    }

    /// Keystone's "Failed to validate token" 404.
    pub fn token_invalid() -> Self {
        Error::NotFound("Failed to validate token".into())
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { what } => Error::Conflict { what },
            StoreError::Unavailable { .. } => Error::Unavailable {
                detail: format!("{:#}", anyhow::Error::new(e)),
            },
            other => Error::Internal(anyhow::Error::new(other)),
        }
    }
}
