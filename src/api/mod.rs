//! HTTP only: extract, authorize, call a service, render. No SQL here.

pub mod application_credentials;
pub mod auth_tokens;
pub mod credentials;
pub mod discovery;
pub mod domain_config;
pub mod domains;
pub mod ec2tokens;
pub mod endpoint_policy;
pub mod endpoints;
pub mod error;
pub mod grants;
pub mod groups;
pub mod health;
pub mod kit;
pub mod limits;
pub mod metrics;
pub mod oauth1;
pub mod os_ep_filter;
pub mod os_revoke;
pub mod policies;
pub mod projects;
pub mod ratelimit;
pub mod regions;
pub mod render;
pub mod role_assignments;
pub mod roles;
pub mod services;
pub mod trusts;
pub mod users;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::services::Services;

use self::error::ApiError;
use self::kit::{Links, RouteInfo, Router};

/// What a handler sees: the services and the HTTP layer's own render caches.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// Rendered validation bodies (see `render::BodyCache`).
    pub bodies: render::BodyCache,
    /// `[rate_limit]`: password attempts per client address and per user named.
    pub login_limiter: ratelimit::LoginLimiter,
}

impl AppState {
    pub fn new(services: Services, clock: crate::clock::Clock) -> Self {
        let bodies = render::BodyCache::new(services.generation.clone());
        let login_limiter = ratelimit::LoginLimiter::new(&services.settings.rate_limit, clock);
        AppState {
            services,
            bodies,
            login_limiter,
        }
    }

    /// `[server] max_request_body_size`: what a request body may hold.
    pub fn body_limit(&self) -> usize {
        self.settings.server.max_request_body_size
    }
}

/// Handlers call services as `state.identity`, `state.tokens`, ...
impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

/// Every route of the server, each declared once with the kit's route builder.
pub fn router() -> Router {
    let mut r = Router::default();
    discovery::routes(&mut r);
    health::routes(&mut r);
    metrics::routes(&mut r);
    auth_tokens::routes(&mut r);
    os_revoke::routes(&mut r);
    domain_config::routes(&mut r);
    domains::routes(&mut r);
    projects::routes(&mut r);
    users::routes(&mut r);
    groups::routes(&mut r);
    regions::routes(&mut r);
    services::routes(&mut r);
    endpoints::routes(&mut r);
    os_ep_filter::routes(&mut r);
    roles::routes(&mut r);
    grants::routes(&mut r);
    role_assignments::routes(&mut r);
    credentials::routes(&mut r);
    limits::routes(&mut r);
    credentials::ec2_routes(&mut r);
    ec2tokens::routes(&mut r);
    policies::routes(&mut r);
    endpoint_policy::routes(&mut r);
    trusts::routes(&mut r);
    application_credentials::routes(&mut r);
    oauth1::routes(&mut r);
    r
}

/// The paths and methods the server answers (HEAD included wherever GET is).
pub fn route_table() -> Vec<RouteInfo> {
    router().table()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    router().register(cfg);
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoSuchRoute)
}

/// Keystone's routes take a trailing slash (Flask's `strict_slashes=False`), and
/// repeated slashes collapse: `/v3/projects/` routes as `/v3/projects`. Cheap when
/// there is nothing to rewrite, which is every request from a real client.
/// A path holding an encoded NUL (`%00`) names nothing that can exist: 404 before
/// any lookup (PostgreSQL cannot even compare against such a string).
pub async fn normalize_path(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.path().to_ascii_lowercase().contains("%00") {
        let res = req.error_response(ApiError::NoSuchRoute);
        return Ok(res.map_into_right_body());
    }
    let path = req.path();
    if path.len() > 1 && (path.ends_with('/') || path.contains("//")) {
        let mut clean = String::with_capacity(path.len());
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            clean.push('/');
            clean.push_str(segment);
        }
        if clean.is_empty() {
            clean.push('/');
        }
        if let Some(q) = req.uri().query() {
            clean.push('?');
            clean.push_str(q);
        }
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = clean.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = actix_web::http::Uri::from_parts(parts) {
                req.match_info_mut().get_mut().update(&uri);
                req.head_mut().uri = uri;
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Counts and times every request by its route template (`[metrics] enabled`).
pub async fn measure(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    crate::telemetry::metrics::request(
        res.request().method(),
        route,
        res.status().as_u16(),
        started.elapsed(),
    );
    Ok(res)
}

/// Headers every Keystone response carries, and `WWW-Authenticate` on every 401.
pub async fn keystone_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let base = match req.app_data::<web::Data<AppState>>() {
        Some(state) => Links::of(
            req.request(),
            state.settings.default.public_endpoint.as_deref(),
            &state.settings.server.trusted_proxies,
        ),
        None => Links::of(req.request(), None, &[]),
    }
    .base()
    .to_string();
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
