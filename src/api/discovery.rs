//! Version discovery: `GET /` (300) and `GET /v3` (200), as keystoneauth1 expects.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

use super::kit::{json_response, resource, Links, Router};

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

pub async fn versions(links: Links) -> HttpResponse {
    let base = links.base();
    let body = json!({"versions": {"values": [version_object(base)]}});
    HttpResponse::build(StatusCode::MULTIPLE_CHOICES)
        .content_type("application/json")
        .insert_header(("Location", format!("{base}/v3/")))
        .body(body.to_string())
}

pub async fn v3(links: Links) -> HttpResponse {
    json_response(
        StatusCode::OK,
        &json!({"version": version_object(links.base())}),
    )
}

pub fn routes(r: &mut Router) {
    r.add(resource("/").get(versions))
        .add(resource("/v3").get(v3));
}
