//! `GET /metrics`: Prometheus' text format. On the API listener only for an admin
//! token or a local, unproxied client (route templates and counts are operator
//! detail); `[metrics] bind` serves it to anyone who can reach that address.

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::{ApiError, ApiResult};
use super::kit::{operator_view, resource, Router};
use super::AppState;
use crate::error::Error;
use crate::telemetry::metrics;

fn exposition(state: &AppState) -> ApiResult<HttpResponse> {
    let handle = metrics::handle().ok_or(ApiError::NoSuchRoute)?;
    let body = metrics::render(handle, &state.health.readings());
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}

async fn scrape(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    if !state.settings.metrics.enabled {
        return Err(ApiError::NoSuchRoute);
    }
    if !operator_view(&req, &state).await {
        return Err(Error::PolicyForbidden {
            action: "metrics".into(),
        }
        .into());
    }
    exposition(&state)
}

/// The `[metrics] bind` listener's handler: no authentication.
pub async fn scrape_open(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    exposition(&state)
}

pub fn routes(r: &mut Router) {
    r.add(resource("/metrics").get(scrape));
}
