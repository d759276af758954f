//! Query strings, parsed once per request into a typed struct per list route.
//!
//! Repeated parameters follow Keystone (Flask's `request.args`): the **first** value
//! of a name wins, for typed fields and for `first` alike. Unknown names are ignored,
//! as Keystone ignores them.

use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{ready, Ready};
use serde::de::DeserializeOwned;

use crate::api::error::{ApiError, ApiResult};

/// Every (name, value) pair of the query string, decoded, in order.
#[derive(Clone, Debug, Default)]
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    /// A NUL (U+0000) in a value becomes U+FFFD: no stored value can hold a NUL
    /// (PostgreSQL refuses it), so such a filter matches nothing, as it would in
    /// Keystone, instead of failing in SQL.
    pub fn parse(query: &str) -> Self {
        QueryPairs(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .map(|(k, v)| (k.replace('\0', "\u{FFFD}"), v.replace('\0', "\u{FFFD}")))
                .collect(),
        )
    }

    pub fn of(req: &HttpRequest) -> Self {
        QueryPairs::parse(req.query_string())
    }

    /// The first value of `name`.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.first(name).is_some()
    }

    /// Keystone's `query_filter_is_true`: present and not "0".
    pub fn flag(&self, name: &str) -> bool {
        self.first(name).is_some_and(|v| v != "0")
    }

    /// oslo's `bool_from_string` on the first value, when present.
    pub fn truthy(&self, name: &str) -> Option<bool> {
        self.first(name).map(truthy)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The pairs with every repeated name after its first occurrence dropped.
    fn deduplicated(&self) -> Vec<(&str, &str)> {
        let mut seen: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for (k, v) in self.iter() {
            if !seen.contains(&k) {
                seen.push(k);
                out.push((k, v));
            }
        }
        out
    }

    /// Deserializes `T` (fields named as the parameters) from the first values.
    pub fn typed<T: DeserializeOwned>(&self) -> ApiResult<T> {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.deduplicated())
            .finish();
        serde_urlencoded::from_str(&encoded)
            .map_err(|e| ApiError::BadRequest(format!("Invalid query string: {e}")))
    }
}

impl FromRequest for QueryPairs {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Ok(QueryPairs::of(req)))
    }
}

/// oslo's non-strict `bool_from_string`.
pub fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// A typed query (`Query<UserListQuery>`), with the raw pairs for filters that are
/// not fixed names (Keystone's `name__contains=` and friends).
pub struct Query<T> {
    pub params: T,
    pub pairs: QueryPairs,
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let pairs = QueryPairs::of(req);
        ready(pairs.typed::<T>().map(|params| Query { params, pairs }))
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.params
    }
}

/// An optional boolean filter (`enabled=`, `is_domain=`), read as oslo reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Truthy(pub bool);

impl<'de> serde::Deserialize<'de> for Truthy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Truthy(truthy(&s)))
    }
}

/// `Option<Truthy>` as the `Option<bool>` the services take.
pub fn flag(v: Option<Truthy>) -> Option<bool> {
    v.map(|t| t.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, Default)]
    #[serde(default)]
    struct Q {
        name: Option<String>,
        enabled: Option<Truthy>,
        #[serde(rename = "tags-any")]
        tags_any: Option<String>,
    }

    #[test]
    fn first_value_wins_everywhere() {
        let p = QueryPairs::parse("name=a&name=b&enabled=0&enabled=1&x=1&tags-any=t%2Cu");
        assert_eq!(p.first("name"), Some("a"));
        let q: Q = p.typed().expect("typed");
        assert_eq!(q.name.as_deref(), Some("a"));
        assert_eq!(flag(q.enabled), Some(false));
        assert_eq!(q.tags_any.as_deref(), Some("t,u"));
    }

    #[test]
    fn nul_in_a_value_can_match_nothing_stored() {
        let p = QueryPairs::parse("name=a%00b");
        assert_eq!(p.first("name"), Some("a\u{FFFD}b"));
    }

    #[test]
    fn truthy_matches_oslo() {
        for v in ["1", "true", "True", " yes ", "on", "t", "y"] {
            assert!(truthy(v), "{v}");
        }
        for v in ["0", "false", "", "2", "nope"] {
            assert!(!truthy(v), "{v}");
        }
    }
}
