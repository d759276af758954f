//! The one place where errors become HTTP: status, Keystone's JSON body, and the
//! 5xx log line with its whole cause chain.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::error::Error;

/// Keystone's generic texts for its "security errors": the detail is never shown.
const UNAUTHORIZED_TEXT: &str = "The request you have made requires authentication.";
const FORBIDDEN_TEXT: &str = "You are not authorized to perform the requested action.";

#[derive(Debug)]
pub enum ApiError {
    Service(Error),
    /// 400 with a message shown verbatim.
    BadRequest(String),
    /// 404 for unknown routes.
    NoSuchRoute,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// The body did not arrive within `[server] body_timeout`.
    RequestTimeout,
    /// 429: `[rate_limit]` refused a login attempt; retry after this many seconds.
    TooManyRequests {
        retry_after_secs: u64,
    },
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Service(e) => write!(f, "{e}"),
            ApiError::BadRequest(m) => f.write_str(m),
            ApiError::NoSuchRoute => f.write_str("no such route"),
            ApiError::MethodNotAllowed => f.write_str("method not allowed"),
            ApiError::PayloadTooLarge => f.write_str("request too large"),
            ApiError::UnsupportedMediaType => f.write_str("unsupported media type"),
            ApiError::RequestTimeout => f.write_str("request body timed out"),
            ApiError::TooManyRequests { .. } => f.write_str("too many login attempts"),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Service(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Keystone's wording for a body it could not parse.
pub fn invalid_json() -> ApiError {
    ApiError::BadRequest(
        "Expecting to find valid JSON in request body. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."
            .into(),
    )
}

impl ApiError {
    fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            ApiError::NoSuchRoute => (
                StatusCode::NOT_FOUND,
                "The resource could not be found.".into(),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "The method is not allowed for the requested URL.".into(),
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request is too large.".into(),
            ),
            ApiError::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "The request body did not arrive in time.".into(),
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::BAD_REQUEST,
                "Expecting to find application/json in Content-Type header. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.".into(),
            ),
            ApiError::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many authentication attempts; retry after the time given in Retry-After."
                    .into(),
            ),
            ApiError::Service(e) => match e {
                Error::Validation(m) => (StatusCode::BAD_REQUEST, m.clone()),
                Error::Unauthorized { .. } | Error::AuthMethodNotSupported { .. } => {
                    let msg = match e {
                        Error::AuthMethodNotSupported { .. } => e.to_string(),
                        _ => UNAUTHORIZED_TEXT.to_string(),
                    };
                    (StatusCode::UNAUTHORIZED, msg)
                }
                Error::PolicyForbidden { .. } => (StatusCode::FORBIDDEN, e.to_string()),
                Error::Forbidden { .. } => (StatusCode::FORBIDDEN, FORBIDDEN_TEXT.to_string()),
                Error::ForbiddenAction(m) => (StatusCode::FORBIDDEN, m.clone()),
                Error::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
                Error::Conflict { .. } => (StatusCode::CONFLICT, e.to_string()),
                Error::Unavailable { .. } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is temporarily unavailable.".into(),
                ),
                Error::Internal(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An unexpected error prevented the server from fulfilling your request."
                        .into(),
                ),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status_and_message().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, message) = self.status_and_message();
        match self {
            ApiError::Service(e @ Error::Internal(_)) => {
                tracing::error!(status = status.as_u16(), error = %format!("{:#}", anyhow::anyhow!("{e}")), cause = ?source_chain(e), "request failed");
            }
            // Logged where the outage is detected, once per episode.
            ApiError::Service(e @ Error::Unavailable { .. }) => {
                tracing::debug!(status = status.as_u16(), error = %e, "request failed: service unavailable");
            }
            ApiError::Service(Error::Unauthorized { detail }) => {
                tracing::debug!(%detail, "authentication refused");
            }
            ApiError::Service(Error::Forbidden { detail }) => {
                tracing::debug!(%detail, "request forbidden");
            }
            _ => {}
        }
        let body = match self {
            ApiError::Service(Error::AuthMethodNotSupported { methods }) => json!({"error": {
                "code": status.as_u16(),
                "identity": {"methods": methods},
                "message": message,
                "title": title(status),
            }}),
            _ => json!({"error": {
                "code": status.as_u16(),
                "message": message,
                "title": title(status),
            }}),
        };
        let mut res = HttpResponse::build(status);
        res.content_type("application/json");
        if let ApiError::TooManyRequests { retry_after_secs } = self {
            res.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        if matches!(self, ApiError::RequestTimeout) {
            // The rest of the body may still trickle in: do not wait for it.
            res.force_close();
        }
        res.body(body.to_string())
    }
}

/// Every cause below the error, for the 5xx log line.
fn source_chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push(c.to_string());
        cur = c.source();
    }
    out
}

/// Keystone's titles: the HTTP reason phrases, with 413's older name.
fn title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "Request Entity Too Large",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(e: ApiError) -> (u16, serde_json::Value) {
        let resp = e.error_response();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().try_into_bytes().unwrap_or_default();
        (status, serde_json::from_slice(&bytes).expect("json body"))
    }

    #[test]
    fn security_errors_hide_their_detail() {
        let (status, body) = body_of(Error::unauthorized("user x has a secret reason").into());
        assert_eq!(status, 401);
        assert_eq!(body["error"]["message"], UNAUTHORIZED_TEXT);
        assert_eq!(body["error"]["title"], "Unauthorized");
    }

    #[test]
    fn internal_errors_are_generic_500() {
        let (status, body) = body_of(Error::internal(anyhow::anyhow!("disk on fire")).into());
        assert_eq!(status, 500);
        assert!(!body.to_string().contains("disk"));
    }

    #[test]
    fn unsupported_method_lists_methods() {
        let (status, body) = body_of(
            Error::AuthMethodNotSupported {
                methods: vec!["password".into()],
            }
            .into(),
        );
        assert_eq!(status, 401);
        assert_eq!(body["error"]["identity"]["methods"][0], "password");
        assert_eq!(
            body["error"]["message"],
            "Attempted to authenticate with an unsupported method."
        );
    }
}
