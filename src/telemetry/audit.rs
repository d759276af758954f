//! The audit trail of refused logins: one structured line (target `audit`) per
//! failed login, lockout and rate-limit refusal, with the user id when known, the
//! source address and the reason. Never the password, never the user name a
//! client typed (it may be a mistyped password).
//!
//! The HTTP layer runs each login inside [`with_source`], so the services can write
//! the line without knowing anything about HTTP.

use std::future::Future;
use std::net::IpAddr;

tokio::task_local! {
    static SOURCE: Option<IpAddr>;
}

/// Runs `fut` with `source` as the client address of its audit lines.
pub async fn with_source<F: Future>(source: Option<IpAddr>, fut: F) -> F::Output {
    SOURCE.scope(source, fut).await
}

fn source() -> String {
    SOURCE
        .try_with(|s| s.map(|ip| ip.to_string()))
        .ok()
        .flatten()
        .unwrap_or_else(|| "-".into())
}

/// A password login refused: wrong password, unknown user, locked, expired, disabled.
pub fn login_refused(reason: &str, user_id: Option<&str>) {
    tracing::warn!(
        target: "audit",
        event = "login_refused",
        reason,
        user_id = user_id.unwrap_or("-"),
        source = %source(),
        "password login refused"
    );
}

/// A login attempt refused by the rate limiter before any password was checked.
pub fn rate_limited(limit: &str, source_ip: Option<IpAddr>, retry_after_secs: u64) {
    tracing::warn!(
        target: "audit",
        event = "rate_limited",
        reason = limit,
        user_id = "-",
        source = %source_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into()),
        retry_after_secs,
        "login attempt rate-limited"
    );
}
