//! The whole route table, walked: every GET route answers HEAD the same way without a
//! body, every other method is Keystone's JSON 405 naming the allowed ones, and paths
//! route with a trailing slash as in Keystone.

use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{response_parts, TestApp};

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// `/v3/users/{user_id}/roles` -> `/v3/users/x-user_id/roles`.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        out.push_str(&format!("x-{}", &rest[open + 1..close]));
        rest = &rest[(close + 1).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let r = app
        .client
        .request(method, app.url(path))
        .header("X-Auth-Token", token)
        .send()
        .await
        .expect("request");
    response_parts(r).await
}

async fn every_route_has_head_and_json_405(app: TestApp) {
    let admin = app.system_admin_token().await;
    let table = keystone_rs::api::route_table();
    assert!(
        table.len() > 60,
        "the route table lists {} paths",
        table.len()
    );
    for route in table {
        let path = concrete(&route.path);
        let allowed: Vec<&str> = route.methods.iter().map(|m| m.as_str()).collect();
        if allowed.contains(&"GET") {
            assert!(
                allowed.contains(&"HEAD"),
                "{}: GET without HEAD",
                route.path
            );
            let (get, _, _) = send(&app, "GET", &path, &admin).await;
            let (head, _, body) = send(&app, "HEAD", &path, &admin).await;
            // oslo.middleware's healthcheck answers a healthy HEAD with 204.
            let expected = if route.path == "/healthcheck" {
                204
            } else {
                get
            };
            assert_eq!(head, expected, "{}: HEAD answers like GET", route.path);
            assert_eq!(body, Value::Null, "{}: HEAD has no body", route.path);
            assert_ne!(get, 405, "{}", route.path);
        }
        let (status, headers, _) = send(&app, "OPTIONS", &path, &admin).await;
        assert_eq!(status, 200, "OPTIONS {}", route.path);
        let allow = headers
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            allow.contains("OPTIONS") && allowed.iter().all(|m| allow.contains(m)),
            "OPTIONS {}: {allow}",
            route.path
        );
        for method in METHODS.iter().filter(|m| !allowed.contains(m)) {
            let (status, headers, body) = send(&app, method, &path, &admin).await;
            assert_eq!(status, 405, "{method} {}", route.path);
            // A HEAD response never carries a body; every other 405 is Keystone's JSON.
            if *method != "HEAD" {
                let e = &body["error"];
                assert_eq!(e["code"], 405, "{method} {}: {body}", route.path);
                assert_eq!(e["title"], "Method Not Allowed", "{method} {}", route.path);
                assert!(e["message"].is_string(), "{method} {}", route.path);
            }
            let allow = headers
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            for m in &allowed {
                assert!(
                    allow.contains(m),
                    "{method} {}: Allow {allow:?} lacks {m}",
                    route.path
                );
            }
        }
    }
}

async fn trailing_slashes_route_as_without(app: TestApp) {
    let admin = app.system_admin_token().await;
    for path in [
        "/v3/projects/",
        "/v3/roles/",
        "/v3/domains/default/",
        "/v3/users/",
        "/v3/",
    ] {
        let (status, _, body) = send(&app, "GET", path, &admin).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, _, body) = send(&app, "GET", "/v3/domains/default/", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(body["domain"]["id"], "default");
    // An empty tag segment reaches the tags route (which wants a body), as in Keystone.
    let path = format!("/v3/projects/{}/tags//", app.admin_project_id);
    let (status, _, body) = send(&app, "PUT", &path, &admin).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], 400);
}

both_backends!(
    every_route_has_head_and_json_405,
    trailing_slashes_route_as_without,
);
