//! Request bodies and their attributes, checked as Keystone's JSON schemas check them,
//! with jsonschema's messages ("Invalid input for field 'x': ...").
//!
//! Bodies are read by hand rather than with actix's `Json` so every failure is a
//! Keystone-shaped 4xx: the content-type rule, the size limit and the JSON error text.

use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde_json::{Map, Value};

use super::caller::app_state;
use super::query::QueryPairs;
use crate::api::error::{invalid_json, ApiError, ApiResult};

/// Keystone's schema-violation message.
pub fn invalid(field: &str, problem: &str) -> ApiError {
    ApiError::BadRequest(format!("Invalid input for field '{field}': {problem}"))
}

/// The first string (or key) holding a NUL, which no database here can store.
fn nul_field(v: &Value, at: &str) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(at.to_string()),
        Value::Array(items) => items.iter().find_map(|i| nul_field(i, at)),
        Value::Object(m) => m.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(at.to_string())
            } else {
                nul_field(v, k)
            }
        }),
        _ => None,
    }
}

/// Reads the whole body (at most `limit` bytes, within `timeout`) and parses it as a
/// JSON object. Valid JSON that is not an object is Keystone's "Expecting to find
/// valid JSON"; a body that stalls is a 408.
pub async fn json_object(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> ApiResult<Map<String, Value>> {
    match tokio::time::timeout(timeout, read_json_object(req, payload, limit)).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::RequestTimeout),
    }
}

async fn read_json_object(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> ApiResult<Map<String, Value>> {
    if let Some(ct) = req.headers().get(actix_web::http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").trim();
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !essence.is_empty() && essence != "application/json" {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    if let Some(len) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(ApiError::PayloadTooLarge);
        }
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| invalid_json())?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    // Keystone reads an empty body as `{}`.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => {
            let whole = Value::Object(map);
            if let Some(field) = nul_field(&whole, "/") {
                return Err(invalid(
                    &field,
                    "a value contains the NUL character (U+0000), which cannot be stored",
                ));
            }
            match whole {
                Value::Object(map) => Ok(map),
                _ => Err(invalid_json()),
            }
        }
        _ => Err(invalid_json()),
    }
}

/// Whether members beside the entity are refused (`additionalProperties: false` at
/// the top of Keystone's schema) or ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopLevel {
    Closed,
    Open,
}

/// The request body as a JSON object, read with Keystone's rules (content type,
/// `[server] max_request_body_size`, its JSON error text) before the handler runs.
pub struct JsonBody(pub Map<String, Value>);

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let payload = web::Payload::from_request(&req, payload).into_inner();
        Box::pin(async move {
            let state = app_state(&req)?;
            let limit = state.body_limit();
            let timeout = std::time::Duration::from_secs(state.settings.server.body_timeout.max(1));
            let payload = payload.map_err(|_| invalid_json())?;
            Ok(JsonBody(json_object(&req, payload, limit, timeout).await?))
        })
    }
}

impl JsonBody {
    /// `{"<key>": {...}}`: the inner object.
    pub fn entity(self, key: &str, top: TopLevel) -> ApiResult<Map<String, Value>> {
        let mut body = self.0;
        let inner = match body.remove(key) {
            Some(Value::Object(m)) => m,
            Some(other) => return Err(invalid(key, &format!("{other} is not of type 'object'"))),
            None => return Err(invalid(key, &format!("'{key}' is a required property"))),
        };
        if top == TopLevel::Closed {
            if let Some(extra) = body.keys().next() {
                return Err(invalid(
                    "/",
                    &format!("Additional properties are not allowed ('{extra}' was unexpected)"),
                ));
            }
        }
        Ok(inner)
    }
}

fn type_name(nullable: bool) -> &'static str {
    if nullable {
        "'string', 'null'"
    } else {
        "'string'"
    }
}

/// An optional string attribute (`Some(None)`: an explicit null, where `nullable`).
pub fn string_attr(
    obj: &Map<String, Value>,
    field: &str,
    nullable: bool,
) -> ApiResult<Option<Option<String>>> {
    bounded_string(obj, field, nullable, 0, usize::MAX)
}

/// An optional string attribute with Keystone's length limits.
pub fn bounded_string(
    obj: &Map<String, Value>,
    field: &str,
    nullable: bool,
    min: usize,
    max: usize,
) -> ApiResult<Option<Option<String>>> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::Null) if nullable => Ok(Some(None)),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < min {
                Err(invalid(field, &format!("'{s}' is too short")))
            } else if n > max {
                Err(invalid(field, &format!("'{s}' is too long")))
            } else {
                Ok(Some(Some(s.clone())))
            }
        }
        Some(other) => Err(invalid(
            field,
            &format!("{other} is not of type {}", type_name(nullable)),
        )),
    }
}

/// Keystone's `parameter_types.name`: a non-blank string of at most `max` characters.
pub fn name_attr(obj: &Map<String, Value>, field: &str, max: usize) -> ApiResult<Option<String>> {
    match bounded_string(obj, field, false, 0, max)?.flatten() {
        Some(s) if s.trim().is_empty() => {
            Err(invalid(field, &format!("'{s}' does not match '[\\S]+'")))
        }
        other => Ok(other),
    }
}

/// `parameter_types.id_string`: 1..64 characters of `[a-zA-Z0-9-]`.
pub fn valid_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// An `id_string` attribute (`domain_id`, `parent_id`, `default_project_id`, ...).
pub fn id_attr(
    obj: &Map<String, Value>,
    field: &str,
    nullable: bool,
) -> ApiResult<Option<Option<String>>> {
    match bounded_string(obj, field, nullable, 1, 64)? {
        Some(Some(s)) if !valid_id(&s) => Err(invalid(
            field,
            &format!("'{s}' does not match '^[a-zA-Z0-9-]+$'"),
        )),
        other => Ok(other),
    }
}

/// Keystone's nullable `description`, at most `max` characters.
pub fn description_attr(obj: &Map<String, Value>, max: usize) -> ApiResult<Option<Option<String>>> {
    bounded_string(obj, "description", true, 0, max)
}

/// An optional boolean attribute; Keystone's schemas accept JSON booleans only.
pub fn bool_attr(obj: &Map<String, Value>, field: &str) -> ApiResult<Option<bool>> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid(field, &format!("{other} is not of type 'boolean'"))),
    }
}

/// `'<field>' is a required property` unless present.
pub fn require(obj: &Map<String, Value>, field: &str, entity: &str) -> ApiResult<()> {
    if obj.contains_key(field) {
        Ok(())
    } else {
        Err(invalid(
            entity,
            &format!("'{field}' is a required property"),
        ))
    }
}

/// `minProperties: 1` on PATCH bodies.
pub fn non_empty(obj: &Map<String, Value>, entity: &str) -> ApiResult<()> {
    if obj.is_empty() {
        Err(invalid(entity, "{} does not have enough properties"))
    } else {
        Ok(())
    }
}

/// `additionalProperties: false` on the entity.
pub fn closed(obj: &Map<String, Value>, allowed: &[&str], entity: &str) -> ApiResult<()> {
    let extra: Vec<&String> = obj
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    match extra.as_slice() {
        [] => Ok(()),
        [one] => Err(invalid(
            entity,
            &format!("Additional properties are not allowed ('{one}' was unexpected)"),
        )),
        many => Err(invalid(
            entity,
            &format!(
                "Additional properties are not allowed ({} were unexpected)",
                many.iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Refuses attributes Keystone's schema forbids on update (e.g. `id`).
pub fn forbid(obj: &Map<String, Value>, fields: &[&str]) -> ApiResult<()> {
    match fields.iter().find(|f| obj.contains_key(**f)) {
        Some(f) => Err(invalid(
            f,
            &format!("Additional properties are not allowed ('{f}' was unexpected)"),
        )),
        None => Ok(()),
    }
}

/// Keystone's `_require_matching_id`: an `id` in an update body must be the
/// entity's own (absent or null also pass).
pub fn require_same_id(obj: &Map<String, Value>, id: &str) -> ApiResult<()> {
    match obj.get("id") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s == id => Ok(()),
        Some(_) => Err(ApiError::BadRequest("Cannot change ID".into())),
    }
}

/// Keystone's `_require_matching_domain_id`: users and groups never move between
/// domains. True when the body names the (unchanged) domain.
pub fn require_same_domain(obj: &Map<String, Value>, domain_id: &str) -> ApiResult<bool> {
    match obj.get("domain_id") {
        None => Ok(false),
        Some(Value::String(s)) if s == domain_id => Ok(true),
        Some(_) => Err(ApiError::BadRequest("Cannot change Domain ID".into())),
    }
}

/// Attributes not in `known` are kept as Keystone's free-form `extra`.
pub fn extra_attrs(obj: &Map<String, Value>, known: &[&str]) -> Map<String, Value> {
    obj.iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Keystone's `_normalize_dict` on create: `domain-id` and `domain:id` mean `domain_id`.
pub fn normalize_keys(obj: &Map<String, Value>) -> Map<String, Value> {
    obj.iter()
        .map(|(k, v)| (k.replace([':', '-'], "_"), v.clone()))
        .collect()
}

/// Keystone's endpoint interfaces.
pub const INTERFACES: &[&str] = &["admin", "internal", "public"];

/// A string restricted to Keystone's interface enum.
pub fn interface_attr(obj: &Map<String, Value>) -> ApiResult<Option<String>> {
    match string_attr(obj, "interface", false)?.flatten() {
        None => Ok(None),
        Some(i) if INTERFACES.contains(&i.as_str()) => Ok(Some(i)),
        Some(i) => Err(invalid(
            "interface",
            &format!("'{i}' is not one of ['admin', 'internal', 'public']"),
        )),
    }
}

/// Keystone's `parameter_types.url`: at most 225 characters, `scheme:rest`.
pub fn url_attr(obj: &Map<String, Value>) -> ApiResult<Option<String>> {
    let Some(url) = bounded_string(obj, "url", false, 0, 225)?.flatten() else {
        return Ok(None);
    };
    let ok = url.split_once(':').is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
            && !rest.is_empty()
            && !rest.starts_with(['\n', '\r'])
    });
    if ok {
        Ok(Some(url))
    } else {
        Err(invalid(
            "url",
            &format!("'{url}' does not match '^[a-zA-Z0-9+.-]+:.+'"),
        ))
    }
}

/// `request_query_schema` with `additionalProperties: false`: a parameter outside
/// `allowed` is a 400.
pub fn closed_query(q: &QueryPairs, allowed: &[&str]) -> ApiResult<()> {
    match q.iter().find(|(k, _)| !allowed.contains(k)) {
        Some((k, _)) => Err(ApiError::BadRequest(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

/// A query parameter failing its schema, in Keystone's query wording.
pub fn invalid_query(name: &str, value: &str, problem: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "Invalid input for query parameters {name}. Value: {value}. {problem}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn urls_follow_keystone_pattern() {
        for good in ["http://x", "https://a.b/c", "svc+ssl:x", "a:b"] {
            assert!(url_attr(&obj(json!({"url": good}))).is_ok(), "{good}");
        }
        for bad in [
            json!(""),
            json!("nocolon"),
            json!(":x"),
            json!("http:"),
            json!("ht tp://x"),
            json!(5),
            json!("h://".to_string() + &"a".repeat(230)),
        ] {
            assert!(url_attr(&obj(json!({"url": bad}))).is_err(), "{bad}");
        }
    }

    #[test]
    fn interface_enum() {
        assert_eq!(
            interface_attr(&obj(json!({"interface": "admin"})))
                .ok()
                .flatten()
                .as_deref(),
            Some("admin")
        );
        let e = interface_attr(&obj(json!({"interface": "Public"}))).expect_err("400");
        assert!(e.to_string().contains("is not one of"), "{e}");
    }

    #[test]
    fn closed_objects_and_normalized_keys() {
        assert!(closed(&obj(json!({"a": 1})), &["a"], "x").is_ok());
        let e = closed(&obj(json!({"a": 1, "b": 2})), &["a"], "x").expect_err("400");
        assert!(e.to_string().contains("('b' was unexpected)"), "{e}");
        let n = normalize_keys(&obj(json!({"a:b-c": 1, "domain-id": "d"})));
        assert!(n.contains_key("a_b_c"));
        assert_eq!(n.get("domain_id"), Some(&json!("d")));
    }

    #[test]
    fn id_strings_follow_keystone_pattern() {
        let ok = json!({"domain_id": "abc-DEF-123"});
        assert!(id_attr(&obj(ok), "domain_id", false).is_ok());
        for bad in [json!(""), json!("a b"), json!("x".repeat(65)), json!(7)] {
            let o = obj(json!({ "domain_id": bad }));
            assert!(id_attr(&o, "domain_id", false).is_err(), "{bad}");
        }
        let null = obj(json!({"default_project_id": null}));
        assert_eq!(
            id_attr(&null, "default_project_id", true).expect("nullable"),
            Some(None)
        );
    }
}
