//! What presenters need and nothing more: where links point, and the one collection
//! body. Presenters turn model values into Keystone's JSON; they never call a service.

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use futures_util::future::{ready, Ready};
use serde_json::{json, Map, Value};

use ipnet::IpNet;

use super::caller::app_state;
use super::client::from_trusted_proxy;
use super::input::invalid_query;
use crate::api::error::{ApiError, ApiResult};
use crate::config::DefaultSection;
use crate::model::{Page, PageRequest};

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
    /// `X-Forwarded-*` and `Forwarded` are believed only from a trusted proxy, as
    /// Keystone ignores them unless told otherwise: a client must not rewrite the
    /// links we return.
    pub fn of(req: &HttpRequest, public_endpoint: Option<&str>, trusted: &[IpNet]) -> Self {
        if public_endpoint.is_none() && from_trusted_proxy(req, trusted) {
            let info = req.connection_info();
            return Links {
                base: base_url_from(None, info.scheme(), info.host()),
                path: req.path().to_string(),
                query: req.query_string().to_string(),
            };
        }
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

    /// The `next` link of a page, built as Keystone builds it: the query's first
    /// value of each name in order (Flask's `args.to_dict()`), `marker` and `limit`
    /// replaced in place or appended in that order.
    pub fn with_page(&self, marker: &str, limit: usize) -> String {
        let mut args: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(self.query.as_bytes()).into_owned() {
            if !args.iter().any(|(seen, _)| *seen == k) {
                args.push((k, v));
            }
        }
        for (name, value) in [("marker", marker.to_string()), ("limit", limit.to_string())] {
            match args.iter_mut().find(|(k, _)| k == name) {
                Some(slot) => slot.1 = value,
                None => args.push((name.to_string(), value)),
            }
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(args)
            .finish();
        format!("{}?{query}", self.at(&self.path))
    }
}

impl FromRequest for Links {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(app_state(req).map(|state| {
            Links::of(
                req,
                state.settings.default.public_endpoint.as_deref(),
                &state.settings.server.trusted_proxies,
            )
        }))
    }
}

/// A JSON response with Keystone's content type.
pub fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

/// 204 with no body: every successful write Keystone answers without one.
pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// `{"<name>": <entity>}` with `status`.
pub fn entity(status: StatusCode, name: &str, body: Value) -> HttpResponse {
    let mut m = Map::new();
    m.insert(name.to_string(), body);
    json_response(status, &Value::Object(m))
}

/// `limit` and `marker`, as the paged collections (users, groups, projects) read them.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub marker: Option<String>,
}

impl PageQuery {
    /// Keystone's page size: the request's `limit`, else the section's `list_limit`,
    /// else `[DEFAULT] list_limit`, never more than `[DEFAULT] max_db_limit`. An empty
    /// marker or a zero limit counts as absent; a limit that is not a non-negative
    /// integer is a 400 (Keystone answers 500).
    pub fn request(
        &self,
        section_limit: Option<usize>,
        d: &DefaultSection,
    ) -> ApiResult<PageRequest> {
        let asked = match self.limit.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => match raw.parse::<usize>() {
                Ok(0) => None,
                Ok(n) => Some(n),
                Err(_) => {
                    return Err(invalid_query(
                        "limit",
                        raw,
                        "The limit must be a non-negative integer.",
                    ))
                }
            },
        };
        let limit = asked
            .or(section_limit)
            .or(d.list_limit)
            .unwrap_or(d.max_db_limit)
            .min(d.max_db_limit.max(1));
        Ok(PageRequest {
            marker: self.marker.clone().filter(|m| !m.is_empty()),
            limit: Some(limit),
        })
    }
}

/// The `next` link of a page: the id of its last entry when more follow.
pub fn page_links<T>(page: &Page<T>, request: &PageRequest, id: impl Fn(&T) -> &str) -> PageLinks {
    PageLinks {
        next_marker: page
            .more
            .then(|| page.items.last().map(|e| id(e).to_string()))
            .flatten(),
        limit: request.limit.unwrap_or(0),
    }
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
