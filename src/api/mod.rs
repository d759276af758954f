//! HTTP only: extract, authorize, call a service, render. No SQL here.

pub mod auth_tokens;
pub mod body;
pub mod catalog_input;
pub mod common;
pub mod context;
pub mod discovery;
pub mod domains;
pub mod endpoints;
pub mod error;
pub mod grants;
pub mod groups;
pub mod os_ep_filter;
pub mod os_revoke;
pub mod projects;
pub mod regions;
pub mod render;
pub mod role_assignments;
pub mod roles;
pub mod services;
pub mod users;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::config::Settings;
use crate::services::Services;

use self::error::ApiError;

/// What a handler sees: the services and the HTTP layer's own render caches.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// Rendered validation bodies (see `render::BodyCache`).
    pub bodies: render::BodyCache,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        let bodies = render::BodyCache::new(services.generation.clone());
        AppState { services, bodies }
    }
}

/// Handlers call services as `state.identity`, `state.tokens`, ...
impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(discovery::versions))
        .route("/v3", web::get().to(discovery::v3))
        .route("/v3/", web::get().to(discovery::v3))
        .service(
            web::resource("/v3/auth/tokens")
                .route(web::post().to(auth_tokens::issue))
                .route(web::get().to(auth_tokens::validate))
                .route(web::head().to(auth_tokens::check))
                .route(web::delete().to(auth_tokens::revoke))
                .default_service(web::to(method_not_allowed)),
        )
        .route(
            "/v3/auth/tokens/OS-PKI/revoked",
            web::get().to(auth_tokens::pki_revoked),
        )
        .route("/v3/auth/catalog", web::get().to(auth_tokens::catalog))
        .route("/v3/auth/projects", web::get().to(auth_tokens::projects))
        .route("/v3/auth/domains", web::get().to(auth_tokens::domains))
        .route("/v3/auth/system", web::get().to(auth_tokens::system))
        .route(
            "/v3/OS-REVOKE/events",
            web::get().to(os_revoke::list_events),
        )
        .configure(domains::routes)
        .configure(projects::routes)
        .configure(users::routes)
        .configure(groups::routes)
        .configure(regions::routes)
        .configure(services::routes)
        .configure(endpoints::routes)
        .configure(os_ep_filter::routes)
        .configure(roles::routes)
        .configure(grants::routes)
        .configure(role_assignments::routes);
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoSuchRoute)
}

pub async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// `[DEFAULT] public_endpoint`, or the URL the client used to reach us.
pub fn base_url(req: &HttpRequest, settings: &Settings) -> String {
    base_url_from(
        settings.default.public_endpoint.as_deref(),
        req.connection_info().scheme(),
        req.connection_info().host(),
    )
}

fn base_url_from(public_endpoint: Option<&str>, scheme: &str, host: &str) -> String {
    match public_endpoint {
        Some(p) => p.trim_end_matches('/').to_string(),
        None => {
            let host = match (scheme, host.rsplit_once(':')) {
                ("http", Some((h, "80"))) | ("https", Some((h, "443"))) => h,
                _ => host,
            };
            format!("{scheme}://{host}")
        }
    }
}

/// Headers every Keystone response carries, and `WWW-Authenticate` on every 401.
pub async fn keystone_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let public_endpoint = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.settings.default.public_endpoint.clone());
    let base = {
        let info = req.connection_info();
        base_url_from(public_endpoint.as_deref(), info.scheme(), info.host())
    };
    let mut res = next.call(req).await?;
    let unauthorized = res.status() == actix_web::http::StatusCode::UNAUTHORIZED;
    let headers = res.headers_mut();
    headers.insert(
        HeaderName::from_static("vary"),
        HeaderValue::from_static("X-Auth-Token"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("req-{}", uuid::Uuid::new_v4())) {
        headers.insert(HeaderName::from_static("x-openstack-request-id"), v);
    }
    if unauthorized {
        if let Ok(v) = HeaderValue::from_str(&format!("Keystone uri=\"{base}/v3\"")) {
            headers.insert(HeaderName::from_static("www-authenticate"), v);
        }
    }
    Ok(res)
}

/// A JSON 200/201 response with Keystone's content type.
pub fn json_response(
    status: actix_web::http::StatusCode,
    body: &serde_json::Value,
) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::base_url_from;

    #[test]
    fn base_url_drops_default_ports() {
        assert_eq!(
            base_url_from(None, "http", "localhost:80"),
            "http://localhost"
        );
        assert_eq!(
            base_url_from(None, "http", "127.0.0.1:5000"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            base_url_from(Some("https://ks.example/"), "http", "x"),
            "https://ks.example"
        );
    }
}
