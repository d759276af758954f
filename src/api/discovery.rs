//! Version discovery: `GET /` (300) and `GET /v3` (200), as keystoneauth1 expects.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{base_url, AppState};

fn version_object(base: &str) -> serde_json::Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/v3/")}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json"
        }]
    })
}

pub async fn versions(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let base = base_url(&req, &state.settings);
    let body = json!({"versions": {"values": [version_object(&base)]}});
    HttpResponse::build(StatusCode::MULTIPLE_CHOICES)
        .content_type("application/json")
        .insert_header(("Location", format!("{base}/v3/")))
        .body(body.to_string())
}

pub async fn v3(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let base = base_url(&req, &state.settings);
    super::json_response(StatusCode::OK, &json!({"version": version_object(&base)}))
}
