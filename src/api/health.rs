//! `GET`/`HEAD /healthcheck`, as oslo.middleware's healthcheck answers it, so existing
//! load-balancer checks keep working: GET 200 `OK` (HEAD 204), or 503 with the reason.
//! Which check failed is told only to an admin token or to a local, unproxied client.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use tracing::warn;

use super::error::ApiResult;
use super::kit::{operator_view, resource, Router};
use super::AppState;

async fn get(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    answer(&req, &state, false).await
}

async fn head(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    answer(&req, &state, true).await
}

async fn answer(req: &HttpRequest, state: &AppState, head: bool) -> ApiResult<HttpResponse> {
    let report = state.health.report().await;
    if report.healthy() {
        let status = if head {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::OK
        };
        return Ok(plain(status, if head { "" } else { "OK" }));
    }
    let failing = report.failing();
    if !failing.is_empty() {
        warn!(?failing, "healthcheck failing");
    }
    let body = if report.disabled_by_file {
        "DISABLED BY FILE".to_string()
    } else if operator_view(req, state).await {
        report
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.reason))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        "Service Unavailable".to_string()
    };
    Ok(plain(
        StatusCode::SERVICE_UNAVAILABLE,
        if head { "" } else { body.as_str() },
    ))
}

fn plain(status: StatusCode, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=UTF-8")
        .body(body.to_string())
}

pub fn routes(r: &mut Router) {
    r.add(resource("/healthcheck").get(get).head(head));
}
