//! Input checks of Keystone's catalog schemas (`keystone/catalog/schema.py`)
//! that the shared helpers in `common` do not cover: length limits on
//! nullable strings, enums, the URL pattern, `minProperties`, closed objects,
//! and query strings validated as Keystone's `request_query_schema` does.

use actix_web::HttpRequest;
use serde_json::{Map, Value};

use super::common::{invalid, query_pairs};
use super::error::{ApiError, ApiResult};

/// Keystone's endpoint interfaces.
pub const INTERFACES: &[&str] = &["admin", "internal", "public"];

fn type_name(nullable: bool) -> &'static str {
    if nullable {
        "'string', 'null'"
    } else {
        "'string'"
    }
}

/// An optional string attribute with Keystone's length limits; `Some(None)` is
/// an explicit null (only where `nullable`).
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

/// A string restricted to Keystone's interface enum.
pub fn interface_attr(obj: &Map<String, Value>) -> ApiResult<Option<String>> {
    match bounded_string(obj, "interface", false, 0, usize::MAX)?.flatten() {
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

/// `minProperties: 1` on PATCH bodies.
pub fn non_empty(obj: &Map<String, Value>, entity: &str) -> ApiResult<()> {
    if obj.is_empty() {
        Err(invalid(entity, "{} does not have enough properties"))
    } else {
        Ok(())
    }
}

/// `additionalProperties: false`.
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

/// `request_query_schema` with `additionalProperties: false`: a parameter
/// outside `allowed` is a 400.
pub fn closed_query(req: &HttpRequest, allowed: &[&str]) -> ApiResult<()> {
    for (k, _) in query_pairs(req) {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    Ok(())
}

/// A query parameter failing its schema, in Keystone's query wording.
pub fn invalid_query(name: &str, value: &str, problem: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "Invalid input for query parameters {name}. Value: {value}. {problem}"
    ))
}

/// The last value of a query parameter (Keystone's validator sees one value).
pub fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    query_pairs(req)
        .into_iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .next_back()
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
        let n = crate::api::common::normalize_keys(&obj(json!({"a:b-c": 1})));
        assert!(n.contains_key("a_b_c"));
    }
}
