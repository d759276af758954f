//! /v3/policies: stored policy blobs (CRUD, the `type` filter, extra attributes,
//! Keystone's schema messages, enforce-before-validate) and their state generation.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{call, message, system_token, TestApp};

async fn create(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    call(
        app,
        Method::POST,
        "/v3/policies",
        Some(token),
        Some(json!({ "policy": body })),
    )
    .await
}

async fn policies_crud(app: TestApp) {
    let admin = app.admin_token().await;
    let generation = app.store.generation().current();
    let (s, b) = create(
        &app,
        &admin,
        json!({"blob": "{\"rule\": \"@\"}", "type": "application/json", "color-name": "red", "id": "mine"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert!(app.store.generation().current() > generation);
    let p = &b["policy"];
    let id = p["id"].as_str().expect("id").to_string();
    // The id is always generated; `color-name` is normalized as Keystone does.
    assert_ne!(id, "mine");
    assert_eq!(id.len(), 32);
    assert_eq!(p["blob"], "{\"rule\": \"@\"}");
    assert_eq!(p["type"], "application/json");
    assert_eq!(p["color_name"], "red");
    assert!(p["links"]["self"]
        .as_str()
        .is_some_and(|l| l.ends_with(&format!("/v3/policies/{id}"))));

    let (s, b) = create(&app, &admin, json!({"blob": "x", "type": "text/plain"})).await;
    assert_eq!(s, 201, "{b}");
    let other = b["policy"]["id"].as_str().expect("id").to_string();

    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/policies/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["policy"]["color_name"], "red");

    for (query, expected) in [
        ("", vec![id.clone(), other.clone()]),
        ("?type=text/plain", vec![other.clone()]),
        ("?type=application/json", vec![id.clone()]),
        ("?type=nothing", vec![]),
    ] {
        let (s, b) = call(
            &app,
            Method::GET,
            &format!("/v3/policies{query}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let mut got = crate::helpers::ids(&b["policies"]);
        got.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(got, want, "{query}: {b}");
        assert!(b["links"]["self"]
            .as_str()
            .is_some_and(|l| l.contains("/v3/policies")));
    }

    // Update merges: a new blob, a new extra attribute, the old ones kept.
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/policies/{id}"),
        Some(&admin),
        Some(json!({"policy": {"blob": "new", "size": 3}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["policy"]["blob"], "new");
    assert_eq!(b["policy"]["type"], "application/json");
    assert_eq!(b["policy"]["size"], 3);
    assert_eq!(b["policy"]["color_name"], "red");
    // The same id in the body is fine; another is refused.
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/policies/{id}"),
        Some(&admin),
        Some(json!({"policy": {"id": id, "type": "t2"}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["policy"]["type"], "t2");
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/policies/{id}"),
        Some(&admin),
        Some(json!({"policy": {"id": "other"}})),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(message(&b), "Cannot change policy ID");

    let (s, b) = call(
        &app,
        Method::DELETE,
        &format!("/v3/policies/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204, "{b}");
    for method in [Method::GET, Method::DELETE] {
        let (s, b) = call(
            &app,
            method,
            &format!("/v3/policies/{id}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, 404, "{b}");
        assert_eq!(message(&b), format!("Could not find policy: {id}."));
    }
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/policies/{id}"),
        Some(&admin),
        Some(json!({"policy": {"blob": "b"}})),
    )
    .await;
    assert_eq!(s, 404, "{b}");
}

async fn policies_validation(app: TestApp) {
    let admin = app.admin_token().await;
    for (body, status, text) in [
        (json!({"type": "t"}), 400, "'blob' is a required property"),
        (json!({"blob": "b"}), 400, "'type' is a required property"),
        (
            json!({"blob": 1, "type": "t"}),
            400,
            "Invalid input for field 'blob': 1 is not of type 'string'",
        ),
        (
            json!({"blob": "b", "type": "t".repeat(256)}),
            400,
            "is too long",
        ),
    ] {
        let (s, b) = create(&app, &admin, body.clone()).await;
        assert_eq!(s, status, "{body}: {b}");
        assert!(message(&b).contains(text), "{body}: {b}");
    }
    // No `policy` at all reads as `{}`.
    let (s, b) = call(
        &app,
        Method::POST,
        "/v3/policies",
        Some(&admin),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(message(&b), "'blob' is a required property");
    let (s, b) = create(&app, &admin, json!({"blob": "b", "type": "t"})).await;
    assert_eq!(s, 201, "{b}");
    let id = b["policy"]["id"].as_str().expect("id").to_string();
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/policies/{id}"),
        Some(&admin),
        Some(json!({"policy": {}})),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(message(&b), "{} does not have enough properties");
}

async fn policies_policy(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, member, _) = app.member_with_token("member").await;
    let (_, reader) = system_token(&app, "reader").await;
    let (s, b) = create(&app, &admin, json!({"blob": "b", "type": "t"})).await;
    assert_eq!(s, 201, "{b}");
    let id = b["policy"]["id"].as_str().expect("id").to_string();
    // A member may do nothing, even with a malformed body (enforced before validation).
    for (method, path, body) in [
        (Method::GET, "/v3/policies".to_string(), None),
        (Method::GET, format!("/v3/policies/{id}"), None),
        (
            Method::POST,
            "/v3/policies".to_string(),
            Some(json!({"policy": {}})),
        ),
        (
            Method::PATCH,
            format!("/v3/policies/{id}"),
            Some(json!({"policy": {"blob": "x"}})),
        ),
        (Method::DELETE, format!("/v3/policies/{id}"), None),
    ] {
        let (s, b) = call(&app, method.clone(), &path, Some(&member), body).await;
        assert_eq!(s, 403, "{method} {path}: {b}");
    }
    // A system reader reads, and only reads.
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/policies/{id}"),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = call(&app, Method::GET, "/v3/policies", Some(&reader), None).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = create(&app, &reader, json!({"blob": "b", "type": "t"})).await;
    assert_eq!(s, 403, "{b}");
    let (s, _) = call(&app, Method::GET, "/v3/policies", None, None).await;
    assert_eq!(s, 401);
}

both_backends!(policies_crud, policies_validation, policies_policy);
