//! Application credentials and access rules: the API and its errors, the
//! `application_credential` auth method (by id, by name with the user by id or by
//! name and domain), the CVE checks, the restricted guard, rescoping, the expiry cap,
//! every way a credential's tokens stop validating, and access-rule reuse/deletion
//! and enforcement.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{call, call_with_headers, message, response_parts, Member, TestApp};
use keystone_rs::model::TargetKind;

fn creds_path(user_id: &str) -> String {
    format!("/v3/users/{user_id}/application_credentials")
}

async fn create(app: &TestApp, token: &str, user_id: &str, body: Value) -> (u16, Value) {
    call(
        app,
        Method::POST,
        &creds_path(user_id),
        Some(token),
        Some(json!({ "application_credential": body })),
    )
    .await
}

/// A member with `member` and `reader` on a fresh project, its token, the project.
async fn member(app: &TestApp) -> (Member, String, String) {
    let (m, token, project_id) = app.member_with_token("member").await;
    app.grant(&m.user_id, TargetKind::Project, &project_id, "reader")
        .await;
    let (s, token2, b) = app
        .password_token(&m.name, &m.password, json!({"project": {"id": project_id}}))
        .await;
    assert_eq!(s, 201, "{b}");
    let _ = token;
    (m, token2.expect("token"), project_id)
}

async fn auth(app: &TestApp, cred: Value) -> (u16, Option<String>, Value) {
    app.post_auth(
        json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": cred}}}),
        "",
    )
    .await
}

/// Creates a credential and returns (id, secret, body).
async fn new_cred(
    app: &TestApp,
    token: &str,
    user_id: &str,
    body: Value,
) -> (String, String, Value) {
    let (s, b) = create(app, token, user_id, body).await;
    assert_eq!(s, 201, "{b}");
    let c = b["application_credential"].clone();
    (
        c["id"].as_str().expect("id").to_string(),
        c["secret"].as_str().expect("secret").to_string(),
        c,
    )
}

async fn cred_token(app: &TestApp, id: &str, secret: &str) -> (String, Value) {
    let (s, t, b) = auth(app, json!({"id": id, "secret": secret})).await;
    assert_eq!(s, 201, "{b}");
    (t.expect("token"), b)
}

async fn crud(app: TestApp) {
    let (m, token, project_id) = member(&app).await;
    let (id, secret, c) = new_cred(
        &app,
        &token,
        &m.user_id,
        json!({"name": "ci", "description": "for CI"}),
    )
    .await;
    // Keystone's generated secret: 64 random bytes, URL-safe base64, no padding.
    assert_eq!(secret.len(), 86, "{secret}");
    assert!(!secret.contains('='));
    assert_eq!(c["project_id"], project_id);
    assert_eq!(c["unrestricted"], false);
    // Keystone shows the owner and `system` in every answer (its whitelist is unused).
    assert_eq!(c["user_id"], m.user_id.as_str());
    assert_eq!(c["system"], Value::Null);
    assert_eq!(c["expires_at"], Value::Null);
    assert_eq!(c["description"], "for CI");
    let mut names: Vec<&str> = c["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["member", "reader"]);
    assert!(c.get("access_rules").is_none(), "{c}");
    assert!(c["links"]["self"].as_str().unwrap().ends_with(&format!(
        "/v3/users/{}/application_credentials/{id}",
        m.user_id
    )));
    // The secret is shown once.
    let path = format!("{}/{id}", creds_path(&m.user_id));
    let (s, b) = call(&app, Method::GET, &path, Some(&token), None).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["application_credential"].get("secret").is_none());
    assert_eq!(b["application_credential"]["name"], "ci");
    // A given secret is kept as given.
    let (id2, secret2, _) = new_cred(
        &app,
        &token,
        &m.user_id,
        json!({"name": "two", "secret": "my-secret"}),
    )
    .await;
    assert_eq!(secret2, "my-secret");
    let (s, b) = call(
        &app,
        Method::GET,
        &creds_path(&m.user_id),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        b["application_credentials"].as_array().unwrap().len(),
        2,
        "{b}"
    );
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("{}?name=two", creds_path(&m.user_id)),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        crate::helpers::ids(&b["application_credentials"]),
        vec![id2.clone()]
    );
    // Names are unique per user.
    let (s, b) = create(&app, &token, &m.user_id, json!({"name": "ci"})).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(
        message(&b),
        "Conflict occurred attempting to store application_credential - Duplicate entry found with name ci."
    );
    // Another user may use the same name.
    let (m2, token2, _) = member(&app).await;
    new_cred(&app, &token2, &m2.user_id, json!({"name": "ci"})).await;
    // Someone else's credential is not visible under the owner's path.
    let (s, _) = call(&app, Method::GET, &path, Some(&token2), None).await;
    assert_eq!(s, 403);
    // The admin sees it.
    let admin = app.admin_token().await;
    let (s, _) = call(&app, Method::GET, &path, Some(&admin), None).await;
    assert_eq!(s, 200);
    let (s, _) = call(&app, Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(s, 204);
    let (s, b) = call(&app, Method::GET, &path, Some(&token), None).await;
    assert_eq!(s, 404);
    assert_eq!(
        message(&b),
        format!("Could not find Application Credential: {id}.")
    );
    let (s, _) = call(&app, Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(s, 404);
}

async fn validation(app: TestApp) {
    let (m, token, project_id) = member(&app).await;
    let cases = [
        (json!({}), "Invalid input for field 'application_credential': 'name' is a required property"),
        (json!({"name": "x", "bogus": 1}), "Invalid input for field 'application_credential': Additional properties are not allowed ('bogus' was unexpected)"),
        (json!({"name": 5}), "Invalid input for field 'name': 5 is not of type 'string'"),
        (json!({"name": "x", "unrestricted": "yes"}), "Invalid input for field 'unrestricted': \"yes\" is not of type 'boolean'"),
        (json!({"name": "x", "roles": [{"id": "a", "name": "b"}]}), "Invalid input for field 'roles/0': {\"id\":\"a\",\"name\":\"b\"} has too many properties"),
        (json!({"name": "x", "roles": [{"x": "a"}]}), "Invalid input for field 'roles/0': Additional properties are not allowed ('x' was unexpected)"),
        (json!({"name": "x", "access_rules": [{"service": "compute", "path": "/x", "method": "FETCH"}]}), "Invalid input for field 'access_rules/0/method': \"FETCH\" is not one of ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT']"),
        (json!({"name": "x", "access_rules": [{"service": "compute", "path": "x", "method": "GET"}]}), "Invalid input for field 'access_rules/0/path': 'x' does not match '^/\\\\.*'"),
        (json!({"name": "x", "expires_at": "2001-01-01T00:00:00"}), "The 'expires_at' must not be before now. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."),
        (json!({"name": "x", "expires_at": "tomorrow"}), "Timestamp not in expected format. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."),
    ];
    for (body, want) in cases {
        let (s, b) = create(&app, &token, &m.user_id, body.clone()).await;
        assert_eq!(s, 400, "{body}: {b}");
        assert_eq!(message(&b), want, "{body}");
    }
    // A role the token does not carry.
    app.role_id("other").await;
    let (s, b) = create(
        &app,
        &token,
        &m.user_id,
        json!({"name": "x", "roles": [{"name": "other"}]}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(message(&b), "Invalid application credential: Cannot create an application credential with unassigned role");
    let (s, b) = create(
        &app,
        &token,
        &m.user_id,
        json!({"name": "x", "roles": [{"name": "nope"}]}),
    )
    .await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(message(&b), "Role nope is not defined");
    // A subset, by name or by id.
    let reader = app.role_id("reader").await;
    let (_, _, c) = new_cred(
        &app,
        &token,
        &m.user_id,
        json!({"name": "r", "roles": [{"id": reader}]}),
    )
    .await;
    assert_eq!(crate::helpers::ids(&c["roles"]), vec![reader.clone()]);
    // Not for another user, even by an admin.
    let admin = app.admin_token().await;
    let (s, b) = create(&app, &admin, &m.user_id, json!({"name": "x"})).await;
    assert_eq!(s, 403, "{b}");
    let _ = project_id;
    // Without a token: 401.
    let (s, _) = call(
        &app,
        Method::POST,
        &creds_path(&m.user_id),
        None,
        Some(json!({"application_credential": {"name": "x"}})),
    )
    .await;
    assert_eq!(s, 401);
}

async fn auth_methods(app: TestApp) {
    let (m, token, project_id) = member(&app).await;
    let (id, secret, _) = new_cred(&app, &token, &m.user_id, json!({"name": "deploy"})).await;
    let (t, b) = cred_token(&app, &id, &secret).await;
    let tok = &b["token"];
    assert_eq!(tok["methods"], json!(["application_credential"]));
    assert_eq!(tok["project"]["id"], project_id);
    assert_eq!(tok["user"]["id"], m.user_id);
    assert_eq!(
        tok["application_credential"],
        json!({"id": id, "name": "deploy", "restricted": true})
    );
    assert_eq!(tok["roles"].as_array().unwrap().len(), 2);
    assert!(tok["catalog"].is_array());
    // The token validates, with the same section.
    let admin = app.admin_token().await;
    let (s, v) = app.validate(&admin, &t, "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token"]["application_credential"]["id"], id);
    // Fernet payload version 9.
    let (p, _) = app.state.tokens.decode(&t).await.expect("decode");
    assert_eq!(keystone_rs::token::payload::payload_version(&p).unwrap(), 9);
    assert_eq!(p.app_cred_id.as_deref(), Some(id.as_str()));
    // By name, with the user by id and by name + domain (id or name).
    for user in [
        json!({"id": m.user_id}),
        json!({"name": m.name, "domain": {"id": "default"}}),
        json!({"name": m.name, "domain": {"name": "Default"}}),
    ] {
        let (s, _, b) = auth(
            &app,
            json!({"name": "deploy", "user": user, "secret": secret}),
        )
        .await;
        assert_eq!(s, 201, "{user}: {b}");
        assert_eq!(b["token"]["application_credential"]["id"], id);
    }
    // By name without a user: Keystone's 400.
    let (s, _, b) = auth(&app, json!({"name": "deploy", "secret": secret})).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(message(&b), "Expecting to find user in application credential. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.");
    let (s, _, b) = auth(&app, json!({"secret": secret})).await;
    assert_eq!(s, 400, "{b}");
    // Wrong secret, unknown id, unknown name, unknown user: one and the same 401.
    let mut bodies = Vec::new();
    for cred in [
        json!({"id": id, "secret": "wrong"}),
        json!({"id": "0123456789abcdef", "secret": secret}),
        json!({"name": "nope", "user": {"id": m.user_id}, "secret": secret}),
        json!({"name": "deploy", "user": {"id": "nobody"}, "secret": secret}),
        json!({"id": id}),
    ] {
        let (s, t, b) = auth(&app, cred.clone()).await;
        assert_eq!(s, 401, "{cred}: {b}");
        assert!(t.is_none());
        bodies.push(b);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    // A requested scope is refused.
    let (s, _, b) = app
        .post_auth(
            json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": id, "secret": secret}}, "scope": {"project": {"id": project_id}}}}),
            "",
        )
        .await;
    assert_eq!(s, 401, "{b}");
}

/// CVE-2026-42998: a `user` beside the id must be the credential's owner.
async fn user_must_be_owner(app: TestApp) {
    let (m, token, _) = member(&app).await;
    let (victim, _, _) = member(&app).await;
    let (id, secret, _) = new_cred(&app, &token, &m.user_id, json!({"name": "mine"})).await;
    let (s, t, b) = auth(
        &app,
        json!({"id": id, "secret": secret, "user": {"id": victim.user_id}}),
    )
    .await;
    assert_eq!(s, 401, "{b}");
    assert!(t.is_none());
    let (_, _, wrong) = auth(&app, json!({"id": id, "secret": "wrong"})).await;
    assert_eq!(b, wrong);
    let (s, _, b) = auth(&app, json!({"id": id, "secret": secret, "user": {"name": victim.name, "domain": {"id": "default"}}})).await;
    assert_eq!(s, 401, "{b}");
    // The owner named beside the id is fine.
    let (s, _, b) = auth(
        &app,
        json!({"id": id, "secret": secret, "user": {"id": m.user_id}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["token"]["user"]["id"], m.user_id);
}

async fn restricted_and_rescope(app: TestApp) {
    let (m, token, project_id) = member(&app).await;
    let (rid, rsecret, _) = new_cred(&app, &token, &m.user_id, json!({"name": "restricted"})).await;
    let (uid, usecret, _) = new_cred(
        &app,
        &token,
        &m.user_id,
        json!({"name": "free", "unrestricted": true}),
    )
    .await;
    let (rt, _) = cred_token(&app, &rid, &rsecret).await;
    let (s, b) = create(&app, &rt, &m.user_id, json!({"name": "more"})).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(message(&b), "You are not authorized to perform the requested action: Using method 'application_credential' is not allowed for managing additional application credentials..");
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("{}/{uid}", creds_path(&m.user_id)),
        Some(&rt),
        None,
    )
    .await;
    assert_eq!(s, 403);
    // Listing is allowed.
    let (s, _) = call(&app, Method::GET, &creds_path(&m.user_id), Some(&rt), None).await;
    assert_eq!(s, 200);
    let (ut, b) = cred_token(&app, &uid, &usecret).await;
    assert_eq!(b["token"]["application_credential"]["restricted"], false);
    let (s, b) = create(&app, &ut, &m.user_id, json!({"name": "more"})).await;
    assert_eq!(s, 201, "{b}");
    // Nor can any application-credential token reach credentials (an EC2 secret would
    // outlive and widen the delegation): Keystone 30's `_require_primary_auth`.
    for t in [&rt, &ut] {
        let (s, b) = call(
            &app,
            Method::POST,
            &format!("/v3/users/{}/credentials/OS-EC2", m.user_id),
            Some(t),
            Some(json!({ "tenant_id": project_id })),
        )
        .await;
        assert_eq!(s, 403, "{b}");
        assert_eq!(
            message(&b),
            "You are not authorized to perform the requested action: Delegated tokens cannot access credentials directly."
        );
        let (s, _) = call(
            &app,
            Method::POST,
            "/v3/credentials",
            Some(t),
            Some(json!({"credential": {"type": "totp", "blob": "x", "user_id": m.user_id}})),
        )
        .await;
        assert_eq!(s, 403);
    }
    // No application-credential token, restricted or not, reaches /v3/OS-TRUST at all
    // (CVE-2026-43000): not even a listing of the user's own trusts.
    for t in [&rt, &ut] {
        let q = format!("/v3/OS-TRUST/trusts?trustor_user_id={}", m.user_id);
        let (s, b) = call(&app, Method::GET, &q, Some(t), None).await;
        assert_eq!(s, 403, "{b}");
        let (s, b) = call(
            &app,
            Method::POST,
            "/v3/OS-TRUST/trusts",
            Some(t),
            Some(
                json!({"trust": {"trustor_user_id": m.user_id, "trustee_user_id": m.user_id,
                "project_id": project_id, "impersonation": false, "roles": [{"name": "reader"}]}}),
            ),
        )
        .await;
        assert_eq!(s, 403, "{b}");
    }
    // The owner's own password token still may.
    let (s, b) = call(
        &app,
        Method::POST,
        &format!("/v3/users/{}/credentials/OS-EC2", m.user_id),
        Some(&token),
        Some(json!({ "tenant_id": project_id })),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    // No application-credential token can be exchanged for another, whatever the scope.
    for t in [&rt, &ut] {
        for scope in [
            Value::Null,
            json!({"system": {"all": true}}),
            json!({"unscoped": {}}),
        ] {
            let mut a = json!({"identity": {"methods": ["token"], "token": {"id": t}}});
            if !scope.is_null() {
                a["scope"] = scope.clone();
            }
            let (s, _, b) = app.post_auth(json!({ "auth": a }), "").await;
            assert_eq!(s, 403, "{scope}: {b}");
            assert_eq!(message(&b), "You are not authorized to perform the requested action: Using a delegated token to create another token is not allowed..");
        }
    }
}

/// CVE-2022-2447: the token never outlives the credential.
async fn expiry_cap(app: TestApp) {
    app.clock.freeze();
    let (m, token, _) = member(&app).await;
    let now = app.clock.now();
    let exp = now + chrono::Duration::seconds(600) + chrono::Duration::microseconds(123_456);
    let given = exp.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let (id, secret, c) = new_cred(
        &app,
        &token,
        &m.user_id,
        json!({"name": "short", "expires_at": given}),
    )
    .await;
    assert_eq!(c["expires_at"], given);
    let (t, b) = cred_token(&app, &id, &secret).await;
    let want = keystone_rs::token::payload::isotime(
        chrono::DateTime::from_timestamp(exp.timestamp(), 0).unwrap(),
    );
    assert_eq!(b["token"]["expires_at"], want);
    let admin = app.admin_token().await;
    app.clock.advance(601);
    let (s, _) = app.validate(&admin, &t, "").await;
    assert_eq!(s, 404);
    // An expired credential authenticates no one.
    let (s, _, _) = auth(&app, json!({"id": id, "secret": secret})).await;
    assert_eq!(s, 401);
    // A credential without expiry: the usual token lifetime.
    let (id2, secret2, _) = new_cred(&app, &token, &m.user_id, json!({"name": "long"})).await;
    let (_, b) = cred_token(&app, &id2, &secret2).await;
    assert_ne!(b["token"]["expires_at"], want);
}

async fn revocation_paths(app: TestApp) {
    let admin = app.admin_token().await;
    let check = |t: String| {
        let app = &app;
        let admin = admin.clone();
        async move { app.validate(&admin, &t, "").await.0 }
    };
    // 1. The credential is deleted.
    let (m, token, _) = member(&app).await;
    let (id, secret, _) = new_cred(&app, &token, &m.user_id, json!({"name": "a"})).await;
    let (t, _) = cred_token(&app, &id, &secret).await;
    assert_eq!(check(t.clone()).await, 200);
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("{}/{id}", creds_path(&m.user_id)),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(check(t).await, 404);
    // 2. The role it carries is removed from the user.
    let project_of = |b: &Value| b["project_id"].as_str().unwrap().to_string();
    let (_, _, probe) = new_cred(&app, &token, &m.user_id, json!({"name": "probe"})).await;
    app.grant(
        &m.user_id,
        TargetKind::Project,
        &project_of(&probe),
        "deployer",
    )
    .await;
    let (s, token, b) = app
        .password_token(
            &m.name,
            &m.password,
            json!({"project": {"id": project_of(&probe)}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let token = token.unwrap();
    let reader = app.role_id("deployer").await;
    let (id, secret, _) = new_cred(
        &app,
        &token,
        &m.user_id,
        json!({"name": "b", "roles": [{"id": reader}]}),
    )
    .await;
    let (t, b) = cred_token(&app, &id, &secret).await;
    assert_eq!(
        crate::helpers::ids(&b["token"]["roles"]),
        vec![reader.clone()]
    );
    assert_eq!(check(t.clone()).await, 200);
    let project_id = b["token"]["project"]["id"].as_str().unwrap().to_string();
    app.ungrant(&m.user_id, TargetKind::Project, &project_id, "deployer")
        .await;
    assert_eq!(check(t).await, 404);
    let (s, _, _) = auth(&app, json!({"id": id, "secret": secret})).await;
    assert_eq!(s, 401, "no role left");
    // 3. The user is disabled.
    let (m, token, _) = member(&app).await;
    let (id, secret, _) = new_cred(&app, &token, &m.user_id, json!({"name": "c"})).await;
    let (t, _) = cred_token(&app, &id, &secret).await;
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/users/{}", m.user_id),
        Some(&admin),
        Some(json!({"user": {"enabled": false}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(check(t).await, 404);
    let (s, _, _) = auth(&app, json!({"id": id, "secret": secret})).await;
    assert_eq!(s, 401);
    // 4. The user is deleted: the token fails and the credential is gone with them.
    let (m, token, _) = member(&app).await;
    let (id, secret, _) = new_cred(&app, &token, &m.user_id, json!({"name": "d", "access_rules": [{"service": "compute", "method": "GET", "path": "/x"}]})).await;
    let (t, _) = cred_token(&app, &id, &secret).await;
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/users/{}", m.user_id),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(check(t).await, 404);
    assert!(app
        .state
        .application_credentials
        .find(&id)
        .await
        .unwrap()
        .is_none());
    assert!(app
        .state
        .application_credentials
        .list_access_rules(&m.user_id, &Default::default())
        .await
        .unwrap()
        .is_empty());
}

async fn access_rules(app: TestApp) {
    let (m, token, _) = member(&app).await;
    let rule = json!({"service": "compute", "method": "GET", "path": "/v2.1/servers/*/ips"});
    let (id1, secret1, c1) = new_cred(
        &app,
        &token,
        &m.user_id,
        json!({"name": "one", "access_rules": [rule]}),
    )
    .await;
    let rules = c1["access_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    let rule_id = rules[0]["id"].as_str().unwrap().to_string();
    let mut shown = rules[0].clone();
    shown.as_object_mut().unwrap().remove("id");
    assert_eq!(shown, rule);
    // Identical fields reuse the rule; so does its id.
    let (_, _, c2) = new_cred(
        &app,
        &token,
        &m.user_id,
        json!({"name": "two", "access_rules": [rule]}),
    )
    .await;
    assert_eq!(c2["access_rules"][0]["id"], rule_id);
    let (id3, _, c3) = new_cred(
        &app,
        &token,
        &m.user_id,
        json!({"name": "three", "access_rules": [{"id": rule_id}]}),
    )
    .await;
    assert_eq!(c3["access_rules"][0]["path"], "/v2.1/servers/*/ips");
    // Another user cannot name it.
    let (m2, token2, _) = member(&app).await;
    let (s, b) = create(
        &app,
        &token2,
        &m2.user_id,
        json!({"name": "x", "access_rules": [{"id": rule_id}]}),
    )
    .await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(
        message(&b),
        format!("Could not find Access Rule: {rule_id}.")
    );
    let rules_path = format!("/v3/users/{}/access_rules", m.user_id);
    let (s, b) = call(&app, Method::GET, &rules_path, Some(&token), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        crate::helpers::ids(&b["access_rules"]),
        vec![rule_id.clone()]
    );
    assert!(b["access_rules"][0]["links"]["self"]
        .as_str()
        .unwrap()
        .ends_with(&format!("{rules_path}/{rule_id}")));
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("{rules_path}?service=image"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(b["access_rules"].as_array().unwrap().is_empty());
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("{rules_path}/{rule_id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["access_rule"]["method"], "GET");
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("/v3/users/{}/access_rules/{rule_id}", m2.user_id),
        Some(&token2),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(&app, Method::GET, &rules_path, Some(&token2), None).await;
    assert_eq!(s, 403);
    // The token carries the rules; validating it needs a client that enforces them.
    let (t, b) = cred_token(&app, &id1, &secret1).await;
    assert_eq!(
        b["token"]["application_credential"]["access_rules"],
        json!([{"id": rule_id, "service": "compute", "path": "/v2.1/servers/*/ips", "method": "GET"}])
    );
    let admin = app.admin_token().await;
    let (s, b) = app.validate(&admin, &t, "").await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(message(&b), "Failed to validate token");
    let r = app
        .client
        .get(app.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &admin)
        .header("X-Subject-Token", &t)
        .header("OpenStack-Identity-Access-Rules", "1")
        .send()
        .await
        .unwrap();
    let (s, _, b) = response_parts(r).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["token"]["application_credential"]["access_rules"][0]["id"],
        rule_id
    );
    // On Keystone's own API (service type identity) the rules are enforced: a token
    // for compute only may validate itself, nothing else.
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("/v3/users/{}", m.user_id),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(s, 401);
    let (s, _, _) = call_with_headers(&app, Method::GET, "/v3/auth/tokens", Some(&t), None).await;
    assert_ne!(s, 401);
    let (ida, secreta, _) = new_cred(&app, &token, &m.user_id, json!({"name": "identity", "access_rules": [{"service": "identity", "method": "GET", "path": "/v3/users/*"}]})).await;
    let (ta, _) = cred_token(&app, &ida, &secreta).await;
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/users/{}", m.user_id),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = call(&app, Method::GET, "/v3/projects", Some(&ta), None).await;
    assert_eq!(s, 401);
    // A rule in use cannot be deleted; once no credential uses it, it can.
    let rule_path = format!("{rules_path}/{rule_id}");
    let (s, b) = call(&app, Method::DELETE, &rule_path, Some(&token), None).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(message(&b), "May not delete access rule in use");
    for name in ["one", "two", "three"] {
        let (_, b) = call(
            &app,
            Method::GET,
            &format!("{}?name={name}", creds_path(&m.user_id)),
            Some(&token),
            None,
        )
        .await;
        let cid = b["application_credentials"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (s, _) = call(
            &app,
            Method::DELETE,
            &format!("{}/{cid}", creds_path(&m.user_id)),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(s, 204);
    }
    let _ = id3;
    // Deleting the credentials kept the rule.
    let (_, b) = call(&app, Method::GET, &rules_path, Some(&token), None).await;
    assert!(crate::helpers::ids(&b["access_rules"]).contains(&rule_id));
    let (s, _) = call(&app, Method::DELETE, &rule_path, Some(&token), None).await;
    assert_eq!(s, 204);
    let (s, b) = call(&app, Method::DELETE, &rule_path, Some(&token), None).await;
    assert_eq!(s, 404);
    assert_eq!(
        message(&b),
        format!("Could not find Access Rule: {rule_id}.")
    );
}

both_backends!(
    crud,
    validation,
    auth_methods,
    user_must_be_owner,
    restricted_and_rescope,
    expiry_cap,
    revocation_paths,
    access_rules,
);

/// `[application_credential] user_limit`: Keystone's 403 once the user owns that many.
async fn user_limit(db: crate::helpers::Db) {
    let Some(app) = crate::helpers::spawn_configured(db, |s| {
        s.application_credential.user_limit = 1;
    })
    .await
    else {
        return;
    };
    let (m, token, _) = member(&app).await;
    new_cred(&app, &token, &m.user_id, json!({"name": "first"})).await;
    let (s, b) = create(&app, &token, &m.user_id, json!({"name": "second"})).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(
        message(&b),
        "Unable to create additional application credentials, maximum of 1 already exceeded for user."
    );
    // Another user has their own allowance.
    let (m2, token2, _) = member(&app).await;
    new_cred(&app, &token2, &m2.user_id, json!({"name": "first"})).await;
}

pub mod configured {
    use super::*;
    both_backends!(@db user_limit);
}
