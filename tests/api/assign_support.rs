//! Helpers for the role, grant and role-assignment tests: HTTP calls with a token,
//! and fixtures created through the store (the users/groups/projects APIs are built
//! elsewhere).

use keystone_rs::model::{Group, Project, User};
use serde_json::{json, Value};

pub use crate::helpers::create_domain;
use crate::helpers::{id, TestApp};

pub const PASSWORD: &str = "pa55word";

/// One HTTP call; returns (status, JSON body or Null).
pub async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    crate::helpers::call(app, method, path, token, body).await
}

pub async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    call(app, "GET", path, Some(token), None).await
}

pub async fn create_project_under(
    app: &TestApp,
    name: &str,
    domain_id: &str,
    parent: Option<&str>,
) -> String {
    let p = Project {
        id: id(),
        name: name.into(),
        domain_id: domain_id.into(),
        parent_id: parent.map(str::to_string),
        description: String::new(),
        enabled: true,
        extra: Default::default(),
    };
    app.store.create_project(&p).await.expect("project");
    p.id
}

/// A user with `PASSWORD` in `domain_id`.
pub async fn create_user_in(app: &TestApp, name: &str, domain_id: &str) -> String {
    app.state
        .identity
        .create_user(
            User {
                id: id(),
                name: name.into(),
                domain_id: domain_id.into(),
                enabled: true,
                default_project_id: None,
                extra: Default::default(),
                password_hash: None,
                password_expires_at: None,
                created_at: 0,
                options: Default::default(),
                login: Default::default(),
            },
            Some(PASSWORD),
        )
        .await
        .expect("user")
        .id
}

pub async fn create_group(app: &TestApp, name: &str, domain_id: &str) -> String {
    let g = Group {
        id: id(),
        name: name.into(),
        domain_id: domain_id.into(),
        description: String::new(),
        extra: Default::default(),
    };
    app.store.create_group(&g).await.expect("group");
    g.id
}

pub async fn add_member(app: &TestApp, user_id: &str, group_id: &str) {
    app.store
        .add_user_to_group(user_id, group_id)
        .await
        .expect("membership");
}

/// POST /v3/auth/tokens for a user by id; returns (status, token).
pub async fn token_for(app: &TestApp, user_id: &str, scope: Value) -> (u16, Option<String>) {
    let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {"id": user_id, "password": PASSWORD}}}});
    if !scope.is_null() {
        auth["scope"] = scope;
    }
    let (status, token, _) = app.post_auth(json!({ "auth": auth }), "").await;
    (status, token)
}

pub async fn must_token(app: &TestApp, user_id: &str, scope: Value) -> String {
    let (status, token) = token_for(app, user_id, scope.clone()).await;
    assert_eq!(status, 201, "token for {user_id} on {scope}");
    token.expect("token")
}

/// POST /v3/roles as `token`; returns the new role's id.
pub async fn new_role(app: &TestApp, token: &str, body: Value) -> String {
    let (status, body) = call(
        app,
        "POST",
        "/v3/roles",
        Some(token),
        Some(json!({ "role": body })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["role"]["id"].as_str().expect("id").to_string()
}
