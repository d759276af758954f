//! What presenters need and nothing more: where links point, and the one collection
//! body. Presenters turn model values into Keystone's JSON; they never call a service.

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use futures_util::future::{ready, Ready};
use serde_json::{json, Map, Value};

use super::caller::app_state;
use crate::api::error::ApiError;

/// `[DEFAULT] public_endpoint`, or the scheme and host the client used (without a
/// default port). Forwarded headers are never trusted here.
pub fn base_url_from(public_endpoint: Option<&str>, scheme: &str, host: &str) -> String {
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

/// Where this request's links point.
#[derive(Clone, Debug)]
pub struct Links {
    base: String,
    path: String,
    query: String,
}

impl Links {
    /// `X-Forwarded-*` and `Forwarded` are ignored, as Keystone ignores them unless
    /// it is told to trust a proxy: a client must not rewrite the links we return.
    pub fn of(req: &HttpRequest, public_endpoint: Option<&str>) -> Self {
        let config = req.app_config();
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| {
                req.headers()
                    .get(actix_web::http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| config.host().to_string());
        let scheme = if config.secure() { "https" } else { "http" };
        Links {
            base: base_url_from(public_endpoint, scheme, &host),
            path: req.path().to_string(),
            query: req.query_string().to_string(),
        }
    }

    /// `http://host:port` (or the public endpoint), no trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<base><path>`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `{"self": "<base>/v3/<collection>/<id>"}`.
    pub fn entity(&self, collection: &str, id: &str) -> Value {
        json!({"self": format!("{}/v3/{collection}/{id}", self.base)})
    }

    /// The URL as requested, query included.
    pub fn request_url(&self) -> String {
        if self.query.is_empty() {
            self.at(&self.path)
        } else {
            format!("{}?{}", self.at(&self.path), self.query)
        }
    }

    /// The request URL with `marker` and `limit` replaced (the `next` link of a page).
    pub fn with_page(&self, marker: &str, limit: usize) -> String {
        let kept = url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .filter(|(k, _)| k != "marker" && k != "limit")
            .collect::<Vec<_>>();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(kept)
            .append_pair("limit", &limit.to_string())
            .append_pair("marker", marker)
            .finish();
        format!("{}?{query}", self.at(&self.path))
    }
}

impl FromRequest for Links {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(
            app_state(req)
                .map(|state| Links::of(req, state.settings.default.public_endpoint.as_deref())),
        )
    }
}

/// A JSON response with Keystone's content type.
pub fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

/// `{"<name>": <entity>}` with `status`.
pub fn entity(status: StatusCode, name: &str, body: Value) -> HttpResponse {
    let mut m = Map::new();
    m.insert(name.to_string(), body);
    json_response(status, &Value::Object(m))
}

/// A page of a paginated collection: the entries and whether more follow.
#[derive(Clone, Debug)]
pub struct PageLinks {
    /// The id of the last entry, when the page is full (the next page starts after it).
    pub next_marker: Option<String>,
    pub limit: usize,
}

/// `{"<name>": [...], "links": {"next", "self", "previous"}}`; with a full page,
/// `links.next` names the next page and `"truncated": true` says more follow.
pub fn collection(
    links: &Links,
    name: &str,
    items: Vec<Value>,
    page: Option<PageLinks>,
) -> HttpResponse {
    let next = match &page {
        Some(PageLinks {
            next_marker: Some(marker),
            limit,
        }) => Value::String(links.with_page(marker, *limit)),
        _ => Value::Null,
    };
    let truncated = next.is_string();
    let mut body = Map::new();
    body.insert(name.to_string(), Value::Array(items));
    body.insert(
        "links".into(),
        json!({"next": next, "self": links.request_url(), "previous": null}),
    );
    if truncated {
        body.insert("truncated".into(), Value::Bool(true));
    }
    json_response(StatusCode::OK, &Value::Object(body))
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
