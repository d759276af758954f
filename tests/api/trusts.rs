//! OS-TRUST: the trust API, trust-scoped tokens (issue, validate, every way they stop
//! working), remaining uses under a race, redelegation, and the delegated-token guard.

use keystone_rs::model::TargetKind;
use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{call, id, message, spawn_configured, system_token, Db, Member, TestApp};

/// A trustor holding `member` and `reader` on a project (with a project token), and a
/// trustee with an unscoped token.
struct Setup {
    trustor: Member,
    trustor_token: String,
    project_id: String,
    trustee: Member,
    trustee_token: String,
}

async fn setup(app: &TestApp) -> Setup {
    let (trustor, trustor_token, project_id) = app.member_with_token("member").await;
    app.grant(&trustor.user_id, TargetKind::Project, &project_id, "reader")
        .await;
    let name = format!("trustee-{}", &id()[..8]);
    let trustee = app.create_user(&name, "trustee-pw").await;
    let (s, token, b) = app
        .password_token(&name, "trustee-pw", json!({"unscoped": {}}))
        .await;
    assert_eq!(s, 201, "{b}");
    // A fresh token for the trustor: the grant above moved the generation, not the token.
    let (s, t2, b) = app
        .password_token(
            &trustor.name,
            &trustor.password,
            json!({"project": {"id": project_id}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let _ = trustor_token;
    Setup {
        trustor,
        trustor_token: t2.expect("token"),
        project_id,
        trustee,
        trustee_token: token.expect("token"),
    }
}

fn trust_body(s: &Setup, impersonation: bool, extra: Value) -> Value {
    let mut t = json!({
        "trustor_user_id": s.trustor.user_id,
        "trustee_user_id": s.trustee.user_id,
        "project_id": s.project_id,
        "impersonation": impersonation,
        "roles": [{"name": "member"}],
    });
    if let (Some(t), Value::Object(e)) = (t.as_object_mut(), extra) {
        for (k, v) in e {
            t.insert(k, v);
        }
    }
    json!({ "trust": t })
}

async fn create_trust(app: &TestApp, s: &Setup, impersonation: bool, extra: Value) -> Value {
    let (st, b) = call(
        app,
        Method::POST,
        "/v3/OS-TRUST/trusts",
        Some(&s.trustor_token),
        Some(trust_body(s, impersonation, extra)),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    b["trust"].clone()
}

/// A trust-scoped token for the trustee by password: (status, token, body).
async fn trust_token(app: &TestApp, s: &Setup, trust_id: &str) -> (u16, Option<String>, Value) {
    app.password_token(
        &s.trustee.name,
        &s.trustee.password,
        json!({"OS-TRUST:trust": {"id": trust_id}}),
    )
    .await
}

async fn trust_token_ok(app: &TestApp, s: &Setup, trust_id: &str) -> (String, Value) {
    let (st, token, b) = trust_token(app, s, trust_id).await;
    assert_eq!(st, 201, "{b}");
    (token.expect("token"), b)
}

async fn trust_api_shapes_and_policy(app: TestApp) {
    let s = setup(&app).await;
    let admin = app.admin_token().await;
    let t = create_trust(
        &app,
        &s,
        true,
        json!({"remaining_uses": 5, "color": "blue", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let tid = t["id"].as_str().expect("id").to_string();
    assert_eq!(tid.len(), 32);
    assert_eq!(t["impersonation"], true);
    assert_eq!(t["trustor_user_id"], s.trustor.user_id.as_str());
    assert_eq!(t["trustee_user_id"], s.trustee.user_id.as_str());
    assert_eq!(t["project_id"], s.project_id.as_str());
    assert_eq!(t["remaining_uses"], 5);
    assert_eq!(t["expires_at"], "2099-01-01T00:00:00.000000Z");
    assert_eq!(t["deleted_at"], Value::Null);
    assert_eq!(t["redelegated_trust_id"], Value::Null);
    assert_eq!(t["redelegation_count"], 0);
    assert_eq!(t["color"], "blue");
    assert_eq!(t["roles"].as_array().map(Vec::len), Some(1));
    assert_eq!(t["roles"][0]["name"], "member");
    assert!(t["roles"][0]["links"]["self"]
        .as_str()
        .is_some_and(|l| l.ends_with(&format!(
            "/v3/roles/{}",
            t["roles"][0]["id"].as_str().unwrap_or("")
        ))));
    assert!(t["links"]["self"]
        .as_str()
        .is_some_and(|l| l.ends_with(&format!("/v3/OS-TRUST/trusts/{tid}"))));
    assert!(t["roles_links"]["self"]
        .as_str()
        .is_some_and(|l| l.ends_with(&format!("/v3/{tid}/roles"))));
    let path = format!("/v3/OS-TRUST/trusts/{tid}");
    // trustor and trustee can read it, a stranger cannot, an unknown id is 404 first
    for token in [&s.trustor_token, &s.trustee_token, &admin] {
        let (st, b) = call(&app, Method::GET, &path, Some(token), None).await;
        assert_eq!(st, 200, "{b}");
        assert_eq!(b["trust"]["id"], tid.as_str());
        assert_eq!(b["trust"]["roles"][0]["name"], "member");
    }
    let (_, stranger, _) = app.member_with_token("member").await;
    let (st, b) = call(&app, Method::GET, &path, Some(&stranger), None).await;
    assert_eq!(
        (st, message(&b)),
        (
            403,
            "You are not authorized to perform the requested action: identity:get_trust."
        )
    );
    let (st, b) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-TRUST/trusts/{}", id()),
        Some(&stranger),
        None,
    )
    .await;
    assert_eq!(st, 404, "{b}");
    assert!(message(&b).starts_with("Could not find trust: "));
    // listings: by trustor, by trustee, everything (admin only), unknown filters list nothing
    let q = format!("/v3/OS-TRUST/trusts?trustor_user_id={}", s.trustor.user_id);
    let (st, b) = call(&app, Method::GET, &q, Some(&s.trustor_token), None).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["trusts"].as_array().map(Vec::len), Some(1));
    assert!(b["trusts"][0].get("roles").is_none());
    assert_eq!(b["links"]["next"], Value::Null);
    let (st, _) = call(&app, Method::GET, &q, Some(&stranger), None).await;
    assert_eq!(st, 403);
    let q = format!("/v3/OS-TRUST/trusts?trustee_user_id={}", s.trustee.user_id);
    let (st, b) = call(&app, Method::GET, &q, Some(&s.trustee_token), None).await;
    assert_eq!((st, b["trusts"].as_array().map(Vec::len)), (200, Some(1)));
    let (st, b) = call(
        &app,
        Method::GET,
        "/v3/OS-TRUST/trusts",
        Some(&s.trustor_token),
        None,
    )
    .await;
    assert_eq!(
        (st, message(&b)),
        (
            403,
            "You are not authorized to perform the requested action: identity:list_trusts."
        )
    );
    let (st, b) = call(&app, Method::GET, "/v3/OS-TRUST/trusts", Some(&admin), None).await;
    assert_eq!(st, 200);
    assert!(b["trusts"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["id"] == tid.as_str())));
    // a system reader reads and lists everything, but deletes nothing
    let (_, sys_reader) = system_token(&app, "reader").await;
    let (st, b) = call(
        &app,
        Method::GET,
        "/v3/OS-TRUST/trusts",
        Some(&sys_reader),
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert!(b["trusts"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["id"] == tid.as_str())));
    let (st, _) = call(&app, Method::GET, &path, Some(&sys_reader), None).await;
    assert_eq!(st, 200);
    let (st, _) = call(
        &app,
        Method::GET,
        &format!("{path}/roles"),
        Some(&sys_reader),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = call(&app, Method::DELETE, &path, Some(&sys_reader), None).await;
    assert_eq!(st, 403);
    // the trustee's listing is not the trustor's
    let q2 = format!("/v3/OS-TRUST/trusts?trustee_user_id={}", s.trustee.user_id);
    let (st, _) = call(&app, Method::GET, &q2, Some(&s.trustor_token), None).await;
    assert_eq!(st, 403);
    let (st, b) = call(
        &app,
        Method::GET,
        "/v3/OS-TRUST/trusts?foo=bar",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((st, b["trusts"].as_array().map(Vec::len)), (200, Some(0)));
    // roles of the trust
    let member_id = app.role_id("member").await;
    let reader_id = app.role_id("reader").await;
    let (st, b) = call(
        &app,
        Method::GET,
        &format!("{path}/roles"),
        Some(&s.trustee_token),
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["roles"].as_array().map(Vec::len), Some(1));
    assert_eq!(b["roles"][0]["id"], member_id.as_str());
    let (st, b) = call(
        &app,
        Method::GET,
        &format!("{path}/roles/{member_id}"),
        Some(&s.trustor_token),
        None,
    )
    .await;
    assert_eq!((st, b["role"]["name"].as_str()), (200, Some("member")));
    let (st, _) = call(
        &app,
        Method::HEAD,
        &format!("{path}/roles/{member_id}"),
        Some(&s.trustor_token),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let (st, b) = call(
        &app,
        Method::GET,
        &format!("{path}/roles/{reader_id}"),
        Some(&s.trustor_token),
        None,
    )
    .await;
    assert_eq!(
        (st, message(&b).to_string()),
        (404, format!("Could not find role: {reader_id}."))
    );
    // the same trust again is a conflict
    let (st, _) = call(
        &app,
        Method::POST,
        "/v3/OS-TRUST/trusts",
        Some(&s.trustor_token),
        Some(trust_body(
            &s,
            true,
            json!({"expires_at": "2099-01-01T00:00:00.000000Z"}),
        )),
    )
    .await;
    assert_eq!(st, 409);
    // only the trustor (or an admin) deletes; then it is gone
    let (st, _) = call(&app, Method::DELETE, &path, Some(&s.trustee_token), None).await;
    assert_eq!(st, 403);
    let (st, _) = call(&app, Method::DELETE, &path, Some(&s.trustor_token), None).await;
    assert_eq!(st, 204);
    let (st, _) = call(&app, Method::GET, &path, Some(&s.trustor_token), None).await;
    assert_eq!(st, 404);
    let (st, _) = call(&app, Method::DELETE, &path, Some(&s.trustor_token), None).await;
    assert_eq!(st, 404);
}

async fn create_errors_are_keystones(app: TestApp) {
    let s = setup(&app).await;
    let post = |body: Value| {
        let app = &app;
        let token = s.trustor_token.clone();
        async move {
            call(
                app,
                Method::POST,
                "/v3/OS-TRUST/trusts",
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    let base = trust_body(&s, false, json!({}));
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b["trust"][k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b["trust"].as_object_mut().map(|m| m.remove(k));
        b
    };
    let (st, b) = post(without("impersonation")).await;
    assert_eq!(
        (st, message(&b)),
        (
            400,
            "Invalid input for field 'trust': 'impersonation' is a required property"
        )
    );
    let (st, b) = post(with("impersonation", json!("yes"))).await;
    assert_eq!(st, 400, "{b}");
    let (st, b) = post(with("remaining_uses", json!(0))).await;
    assert_eq!(
        (st, message(&b)),
        (
            400,
            "Invalid input for field 'remaining_uses': 0 is less than the minimum of 1"
        )
    );
    let (st, _) = post(with("roles", json!([{"id": "x", "name": "y"}]))).await;
    assert_eq!(st, 400);
    let (st, _) = post(with("roles", json!([{"color": "x"}]))).await;
    assert_eq!(st, 400);
    let (st, b) = post(json!({"trust": base["trust"].clone(), "other": 1})).await;
    assert_eq!(st, 400, "{b}");
    let (st, b) = post(with("expires_at", json!("bad.123Z"))).await;
    assert_eq!(st, 400);
    assert!(
        message(&b).starts_with("Timestamp not in expected format."),
        "{b}"
    );
    let (st, b) = post(with("expires_at", json!("2001-01-01T00:00:00Z"))).await;
    assert_eq!(st, 400);
    assert!(
        message(&b).starts_with("The 'expires_at' must not be before now."),
        "{b}"
    );
    let (st, b) = post(with("trustor_user_id", json!(s.trustee.user_id))).await;
    assert_eq!(
        (st, message(&b)),
        (
            403,
            "You are not authorized to perform the requested action: identity:create_trust."
        )
    );
    let (st, b) = post(with("roles", json!([]))).await;
    assert_eq!(
        (st, message(&b)),
        (403, "You are not authorized to perform the requested action: At least one role should be specified.")
    );
    let ghost = id();
    let (st, b) = post(with("trustee_user_id", json!(ghost))).await;
    assert_eq!(
        (st, message(&b).to_string()),
        (404, format!("Could not find user: {ghost}."))
    );
    let (st, b) = post(with("roles", json!([{"name": "no-such-role"}]))).await;
    assert_eq!((st, message(&b)), (404, "Role no-such-role is not defined"));
    // a role the trustor does not hold on the project
    let admin_role = app.role_id("admin").await;
    let (st, b) = post(with("roles", json!([{"id": admin_role}]))).await;
    assert_eq!(
        (st, message(&b).to_string()),
        (404, format!("Could not find role: {admin_role}."))
    );
    // redelegation is off by default ([trust] allow_redelegation = false)
    let (st, b) = post(with("allow_redelegation", json!(true))).await;
    assert_eq!(st, 403, "{b}");
    // an expiry is kept with its microseconds
    let (st, b) = post(with("expires_at", json!("2099-01-02T03:04:05.123456Z"))).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["trust"]["expires_at"], "2099-01-02T03:04:05.123456Z");
    let (st, b) = post(with("expires_at", json!("2098-01-02T03:04:05"))).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["trust"]["expires_at"], "2098-01-02T03:04:05.000000Z");
}

async fn trust_tokens_impersonate_or_not(app: TestApp) {
    let s = setup(&app).await;
    let admin = app.admin_token().await;
    // `member` implies `implied-x`: the token carries both
    let implied = app.role_id("implied-x").await;
    let member_id = app.role_id("member").await;
    let (st, b) = call(
        &app,
        Method::PUT,
        &format!("/v3/roles/{member_id}/implies/{implied}"),
        Some(&app.system_admin_token().await),
        None,
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let expires = (app.clock.now() + chrono::Duration::minutes(30))
        .format("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string();
    let t = create_trust(&app, &s, true, json!({"expires_at": expires})).await;
    let tid = t["id"].as_str().expect("id");
    let (token, body) = trust_token_ok(&app, &s, tid).await;
    let tok = &body["token"];
    assert_eq!(tok["OS-TRUST:trust"]["id"], tid);
    assert_eq!(tok["OS-TRUST:trust"]["impersonation"], true);
    assert_eq!(
        tok["OS-TRUST:trust"]["trustor_user"]["id"],
        s.trustor.user_id.as_str()
    );
    assert_eq!(
        tok["OS-TRUST:trust"]["trustee_user"]["id"],
        s.trustee.user_id.as_str()
    );
    assert_eq!(
        tok["user"]["id"],
        s.trustor.user_id.as_str(),
        "impersonation: the trustor"
    );
    assert_eq!(tok["project"]["id"], s.project_id.as_str());
    assert!(tok.get("is_domain").is_none());
    let mut names: Vec<&str> = tok["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    names.sort();
    // member implies reader (bootstrap) and implied-x
    assert_eq!(names, vec!["implied-x", "member", "reader"]);
    // the token never outlives the trust
    assert_eq!(
        tok["expires_at"].as_str().map(|e| &e[..19]),
        Some(&expires[..19])
    );
    let (st, b) = app.validate(&admin, &token, "").await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["token"]["user"]["id"], s.trustor.user_id.as_str());
    assert_eq!(b["token"]["OS-TRUST:trust"]["id"], tid);
    // the token authorizes as the trustor: it reads its own project's trusts listing
    let q = format!("/v3/OS-TRUST/trusts?trustor_user_id={}", s.trustor.user_id);
    let (st, _) = call(&app, Method::GET, &q, Some(&token), None).await;
    assert_eq!(st, 200);
    // a trust token cannot be rescoped
    let (st, _, b) = app
        .post_auth(
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
                   "scope": {"project": {"id": s.project_id}}}}),
            "",
        )
        .await;
    assert_eq!(
        (st, message(&b)),
        (403, "You are not authorized to perform the requested action: Using trust-scoped token to create another token. Create a new trust-scoped token instead.")
    );
    // ... nor create a trust (no redelegation)
    let (st, _) = call(
        &app,
        Method::POST,
        "/v3/OS-TRUST/trusts",
        Some(&token),
        Some(trust_body(
            &s,
            false,
            json!({"impersonation": true, "roles": [{"id": member_id}]}),
        )),
    )
    .await;
    assert_eq!(st, 403);
    // without impersonation the user is the trustee; the token method works as well
    let t2 = create_trust(&app, &s, false, json!({})).await;
    let tid2 = t2["id"].as_str().expect("id");
    let (st, token2, b) = app
        .post_auth(
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": s.trustee_token}},
                   "scope": {"OS-TRUST:trust": {"id": tid2}}}}),
            "",
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["token"]["user"]["id"], s.trustee.user_id.as_str());
    assert_eq!(b["token"]["OS-TRUST:trust"]["impersonation"], false);
    let (st, b) = app.validate(&admin, &token2.expect("t"), "").await;
    assert_eq!(
        (st, b["token"]["user"]["id"].as_str()),
        (200, Some(s.trustee.user_id.as_str()))
    );
    // someone else cannot use the trust; an unknown trust is the generic 401
    let (st, _, _) = app
        .password_token(
            &s.trustor.name,
            &s.trustor.password,
            json!({"OS-TRUST:trust": {"id": tid2}}),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _, b) = trust_token(&app, &s, &id()).await;
    assert_eq!(st, 401, "{b}");
    let (st, _, b) = app
        .password_token(
            &s.trustee.name,
            &s.trustee.password,
            json!({"OS-TRUST:trust": {}}),
        )
        .await;
    assert_eq!(st, 400, "{b}");
}

async fn remaining_uses_count_down(app: TestApp) {
    let s = setup(&app).await;
    let t = create_trust(&app, &s, false, json!({"remaining_uses": 2})).await;
    let tid = t["id"].as_str().expect("id");
    let path = format!("/v3/OS-TRUST/trusts/{tid}");
    let (first, _) = trust_token_ok(&app, &s, tid).await;
    let (st, b) = call(&app, Method::GET, &path, Some(&s.trustor_token), None).await;
    assert_eq!((st, b["trust"]["remaining_uses"].as_i64()), (200, Some(1)));
    let (second, _) = trust_token_ok(&app, &s, tid).await;
    let (st, _, _) = trust_token(&app, &s, tid).await;
    assert_eq!(st, 401, "no use left");
    let (st, _) = call(&app, Method::GET, &path, Some(&s.trustor_token), None).await;
    assert_eq!(st, 404, "a used-up trust is not found");
    // the tokens the uses bought stay valid
    let admin = app.admin_token().await;
    for t in [&first, &second] {
        let (st, b) = app.validate(&admin, t, "").await;
        assert_eq!(st, 200, "{b}");
    }
}

async fn two_issues_cannot_both_take_the_last_use(app: TestApp) {
    let s = setup(&app).await;
    for _ in 0..3 {
        let t = create_trust(
            &app,
            &s,
            false,
            json!({"remaining_uses": 1, "expires_at": null, "color": id()}),
        )
        .await;
        let tid = t["id"].as_str().expect("id").to_string();
        let (a, b, c) = tokio::join!(
            trust_token(&app, &s, &tid),
            trust_token(&app, &s, &tid),
            trust_token(&app, &s, &tid)
        );
        let mut statuses = vec![a.0, b.0, c.0];
        statuses.sort();
        assert_eq!(statuses[0], 201, "{statuses:?}");
        assert!(
            statuses[1..].iter().all(|s| *s == 401 || *s == 403),
            "{statuses:?}"
        );
        // delete it so the next round's duplicate check does not apply
        let (st, _) = call(
            &app,
            Method::DELETE,
            &format!("/v3/OS-TRUST/trusts/{tid}"),
            Some(&app.admin_token().await),
            None,
        )
        .await;
        assert_eq!(st, 404, "a used-up trust reads as not found");
    }
}

async fn set_enabled(app: &TestApp, user_id: &str, enabled: bool) {
    let mut user = app.state.identity.get_user(user_id).await.expect("user");
    user.enabled = enabled;
    app.state.identity.update_user(&user).await.expect("update");
}

async fn every_revocation_path_fails_the_token(app: TestApp) {
    let admin = app.admin_token().await;
    let check = |token: String| {
        let app = &app;
        let admin = admin.clone();
        async move { app.validate(&admin, &token, "").await }
    };
    // deleting the trust
    let s = setup(&app).await;
    let t = create_trust(&app, &s, true, json!({})).await;
    let tid = t["id"].as_str().expect("id");
    let (token, _) = trust_token_ok(&app, &s, tid).await;
    assert_eq!(check(token.clone()).await.0, 200);
    let (st, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/OS-TRUST/trusts/{tid}"),
        Some(&s.trustor_token),
        None,
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(check(token).await.0, 404, "trust deleted");
    // the trustor losing the role
    let s = setup(&app).await;
    let t = create_trust(&app, &s, true, json!({})).await;
    let (token, _) = trust_token_ok(&app, &s, t["id"].as_str().expect("id")).await;
    assert_eq!(check(token.clone()).await.0, 200);
    app.ungrant(
        &s.trustor.user_id,
        TargetKind::Project,
        &s.project_id,
        "member",
    )
    .await;
    let (st, _) = check(token).await;
    assert!(st == 403 || st == 404, "trustor lost the role: {st}");
    let (st, _, _) = trust_token(&app, &s, t["id"].as_str().expect("id")).await;
    assert_eq!(st, 403, "no token either");
    // the trustor disabled, then the trustee disabled
    for who in ["trustor", "trustee"] {
        let s = setup(&app).await;
        let t = create_trust(&app, &s, false, json!({})).await;
        let (token, _) = trust_token_ok(&app, &s, t["id"].as_str().expect("id")).await;
        assert_eq!(check(token.clone()).await.0, 200);
        let user = if who == "trustor" {
            &s.trustor.user_id
        } else {
            &s.trustee.user_id
        };
        set_enabled(&app, user, false).await;
        let (st, _) = check(token.clone()).await;
        assert!(st == 403 || st == 404, "{who} disabled: {st}");
        set_enabled(&app, user, true).await;
    }
    // the trust expiring
    let s = setup(&app).await;
    let expires = (app.clock.now() + chrono::Duration::minutes(10))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let t = create_trust(&app, &s, false, json!({"expires_at": expires})).await;
    let (token, body) = trust_token_ok(&app, &s, t["id"].as_str().expect("id")).await;
    assert_eq!(
        body["token"]["expires_at"].as_str().map(|e| &e[..19]),
        Some(&expires[..19])
    );
    assert_eq!(check(token.clone()).await.0, 200);
    app.clock.advance(11 * 60);
    let admin2 = app.admin_token().await;
    let (st, _) = app.validate(&admin2, &token, "").await;
    assert_eq!(st, 404, "trust expired");
    let (st, _, _) = trust_token(&app, &s, t["id"].as_str().expect("id")).await;
    assert_eq!(st, 401);
    // the trustor deleted: its trusts go with it
    let s = setup(&app).await;
    let t = create_trust(&app, &s, false, json!({})).await;
    let tid = t["id"].as_str().expect("id");
    let (token, _) = trust_token_ok(&app, &s, tid).await;
    app.state
        .identity
        .delete_user(&s.trustor.user_id)
        .await
        .expect("delete");
    let (st, _) = app.validate(&admin2, &token, "").await;
    assert_eq!(st, 404, "trustor deleted");
    let (st, _) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-TRUST/trusts/{tid}"),
        Some(&admin2),
        None,
    )
    .await;
    assert_eq!(st, 404, "deleted with its trustor");
    // the trustee deleted
    let s = setup(&app).await;
    let t = create_trust(&app, &s, true, json!({})).await;
    let tid = t["id"].as_str().expect("id");
    let (token, _) = trust_token_ok(&app, &s, tid).await;
    app.state
        .identity
        .delete_user(&s.trustee.user_id)
        .await
        .expect("delete");
    let (st, _) = app.validate(&admin2, &token, "").await;
    assert_eq!(st, 404, "trustee deleted");
    let (st, _) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-TRUST/trusts/{tid}"),
        Some(&admin2),
        None,
    )
    .await;
    assert_eq!(st, 404, "deleted with its trustee");
    // the project deleted: its trusts go with it
    let s = setup(&app).await;
    let t = create_trust(&app, &s, false, json!({})).await;
    let tid = t["id"].as_str().expect("id");
    let (token, _) = trust_token_ok(&app, &s, tid).await;
    app.state
        .resource
        .delete_project(&s.project_id)
        .await
        .expect("delete project");
    let (st, _) = app.validate(&admin2, &token, "").await;
    assert_eq!(st, 404, "project deleted");
    let (st, _) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-TRUST/trusts/{tid}"),
        Some(&admin2),
        None,
    )
    .await;
    assert_eq!(st, 404, "deleted with its project");
}

/// A trust token (impersonating the trustor) cannot mint credentials, which would let
/// it outlive or exceed the trust (Keystone 30's `_require_primary_auth`).
async fn trust_tokens_cannot_touch_credentials(app: TestApp) {
    let s = setup(&app).await;
    let t = create_trust(&app, &s, true, json!({})).await;
    let (token, _) = trust_token_ok(&app, &s, t["id"].as_str().expect("id")).await;
    let expected = "You are not authorized to perform the requested action: Delegated tokens cannot access credentials directly.";
    let ec2 = format!("/v3/users/{}/credentials/OS-EC2", s.trustor.user_id);
    let (st, b) = call(
        &app,
        Method::POST,
        &ec2,
        Some(&token),
        Some(json!({"tenant_id": s.project_id})),
    )
    .await;
    assert_eq!((st, message(&b)), (403, expected));
    let (st, b) = call(&app, Method::GET, &ec2, Some(&token), None).await;
    assert_eq!((st, message(&b)), (403, expected));
    let blob = json!({"access": id(), "secret": "s"}).to_string();
    let body = json!({"credential": {"type": "ec2", "user_id": s.trustor.user_id,
                                      "project_id": s.project_id, "blob": blob}});
    let (st, b) = call(
        &app,
        Method::POST,
        "/v3/credentials",
        Some(&token),
        Some(body.clone()),
    )
    .await;
    assert_eq!((st, message(&b)), (403, expected));
    // the trustor's own token may; the trust token then lists nothing and reads nothing
    let (st, b) = call(
        &app,
        Method::POST,
        "/v3/credentials",
        Some(&s.trustor_token),
        Some(body),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let cid = b["credential"]["id"].as_str().expect("id").to_string();
    let (st, b) = call(&app, Method::GET, "/v3/credentials", Some(&token), None).await;
    assert_eq!(
        (st, b["credentials"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (st, b) = call(
        &app,
        Method::GET,
        "/v3/credentials",
        Some(&s.trustor_token),
        None,
    )
    .await;
    assert_eq!(
        (st, b["credentials"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (st, _) = call(
        &app,
        Method::GET,
        &format!("/v3/credentials/{cid}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/credentials/{cid}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(st, 403);
}

/// A trust deleted through one server fails its tokens on another (the shared state
/// generation drops the peer's caches within its refresh interval).
async fn a_peer_server_fails_trust_tokens_of_a_deleted_trust(app: TestApp) {
    let peer = app.spawn_peer().await;
    let s = setup(&app).await;
    let admin = app.admin_token().await;
    let t = create_trust(&app, &s, true, json!({})).await;
    let tid = t["id"].as_str().expect("id");
    let (token, _) = trust_token_ok(&app, &s, tid).await;
    let validate_on_peer = || async {
        app.client
            .get(format!("{peer}/v3/auth/tokens"))
            .header("X-Auth-Token", &admin)
            .header("X-Subject-Token", &token)
            .send()
            .await
            .expect("peer request")
            .status()
            .as_u16()
    };
    assert_eq!(validate_on_peer().await, 200, "cached on the peer now");
    let (st, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/OS-TRUST/trusts/{tid}"),
        Some(&s.trustor_token),
        None,
    )
    .await;
    assert_eq!(st, 204);
    let started = std::time::Instant::now();
    loop {
        let status = validate_on_peer().await;
        if status == 404 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "the peer still accepts the token of a deleted trust after 3 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn delegated_tokens_cannot_touch_trusts(app: TestApp) {
    use keystone_rs::token::{codec, payload};
    let s = setup(&app).await;
    let t = create_trust(&app, &s, false, json!({})).await;
    let tid = t["id"].as_str().expect("id");
    // the trustor's own token, re-minted as if obtained with application_credential
    let (mut p, _) = app
        .state
        .tokens
        .decode(&s.trustor_token)
        .await
        .expect("decode");
    p.methods = vec!["application_credential".into()];
    let plaintext =
        payload::encode_payload(&p, app.state.tokens.methods(), "default").expect("encode");
    let keys = app.keys.load().expect("keys");
    let crafted = codec::encrypt(&keys[0], &plaintext, app.clock.now().timestamp() as u64);
    let admin = app.admin_token().await;
    let (st, b) = app.validate(&admin, &crafted, "").await;
    assert_eq!(st, 200, "the crafted token is valid: {b}");
    let expected = "You are not authorized to perform the requested action: Delegated tokens cannot manage trusts..";
    for (method, path, body) in [
        (Method::GET, "/v3/OS-TRUST/trusts".to_string(), None),
        (Method::GET, format!("/v3/OS-TRUST/trusts/{tid}"), None),
        (Method::GET, format!("/v3/OS-TRUST/trusts/{}", id()), None),
        (
            Method::GET,
            format!("/v3/OS-TRUST/trusts/{tid}/roles"),
            None,
        ),
        (Method::DELETE, format!("/v3/OS-TRUST/trusts/{tid}"), None),
        (
            Method::POST,
            "/v3/OS-TRUST/trusts".to_string(),
            Some(trust_body(&s, false, json!({"color": 1}))),
        ),
    ] {
        let (st, b) = call(&app, method.clone(), &path, Some(&crafted), body).await;
        assert_eq!((st, message(&b)), (403, expected), "{method} {path}");
    }
    let (st, _) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-TRUST/trusts/{tid}"),
        Some(&s.trustor_token),
        None,
    )
    .await;
    assert_eq!(st, 200, "the trust is untouched");
}

async fn redelegation_only_narrows(db: Db) {
    let Some(app) = spawn_configured(db, |c| {
        c.trust.allow_redelegation = true;
        c.trust.max_redelegation_count = 3;
    })
    .await
    else {
        return;
    };
    let s = setup(&app).await;
    let reader_id = app.role_id("reader").await;
    let expires = (app.clock.now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let parent = create_trust(
        &app,
        &s,
        true,
        json!({"allow_redelegation": true, "expires_at": expires, "roles": [{"name": "member"}]}),
    )
    .await;
    assert_eq!(parent["redelegation_count"], 3);
    let pid = parent["id"].as_str().expect("id").to_string();
    let (token, _) = trust_token_ok(&app, &s, &pid).await;
    let post = |body: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            call(
                app,
                Method::POST,
                "/v3/OS-TRUST/trusts",
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    // a role outside the parent trust
    let (st, _) = post(trust_body(
        &s,
        true,
        json!({"roles": [{"id": reader_id}], "allow_redelegation": true}),
    ))
    .await;
    assert_eq!(st, 403);
    // a later expiry
    let later = (app.clock.now() + chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (st, _) = post(trust_body(&s, true, json!({"expires_at": later}))).await;
    assert_eq!(st, 403);
    // remaining_uses on a redelegated trust
    let (st, _) = post(trust_body(&s, true, json!({"remaining_uses": 2}))).await;
    assert_eq!(st, 403);
    // a changed redelegation_count
    let (st, _) = post(trust_body(
        &s,
        true,
        json!({"allow_redelegation": true, "redelegation_count": 1}),
    ))
    .await;
    assert_eq!(st, 403);
    // narrower: accepted, one level down, the parent's expiry (without impersonation:
    // the same trust with the parent's expiry would be a duplicate)
    let (st, b) = post(trust_body(&s, false, json!({"allow_redelegation": true}))).await;
    assert_eq!(st, 201, "{b}");
    let child = &b["trust"];
    assert_eq!(child["redelegated_trust_id"], pid.as_str());
    assert_eq!(child["redelegation_count"], 2);
    assert_eq!(
        child["expires_at"].as_str().map(|e| &e[..19]),
        Some(&expires[..19])
    );
    let cid = child["id"].as_str().expect("id").to_string();
    let (ctoken, cb) = trust_token_ok(&app, &s, &cid).await;
    assert_eq!(cb["token"]["user"]["id"], s.trustee.user_id.as_str());
    assert_eq!(
        cb["token"]["OS-TRUST:trust"]["trustor_user"]["id"],
        s.trustor.user_id.as_str()
    );
    // deleting the parent deletes the child and fails its tokens
    let (st, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/OS-TRUST/trusts/{pid}"),
        Some(&s.trustor_token),
        None,
    )
    .await;
    assert_eq!(st, 204);
    let (st, _) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-TRUST/trusts/{cid}"),
        Some(&s.trustor_token),
        None,
    )
    .await;
    assert_eq!(st, 404);
    let admin = app.admin_token().await;
    let (st, _) = app.validate(&admin, &ctoken, "").await;
    assert_eq!(st, 404);
    // a trust with redelegation_count 0 cannot be redelegated
    let zero = create_trust(
        &app,
        &s,
        true,
        json!({"allow_redelegation": true, "redelegation_count": 0, "color": 1}),
    )
    .await;
    assert_eq!(zero["redelegation_count"], 0);
    let (ztoken, _) = trust_token_ok(&app, &s, zero["id"].as_str().expect("id")).await;
    let (st, _) = call(
        &app,
        Method::POST,
        "/v3/OS-TRUST/trusts",
        Some(&ztoken),
        Some(trust_body(&s, true, json!({"color": 2}))),
    )
    .await;
    assert_eq!(st, 403);
    // above the maximum
    let (st, _) = call(
        &app,
        Method::POST,
        "/v3/OS-TRUST/trusts",
        Some(&s.trustor_token),
        Some(trust_body(
            &s,
            true,
            json!({"allow_redelegation": true, "redelegation_count": 4}),
        )),
    )
    .await;
    assert_eq!(st, 403);
}

async fn trusts_can_be_disabled(db: Db) {
    let Some(app) = spawn_configured(db, |c| c.trust.enabled = false).await else {
        return;
    };
    let s = setup(&app).await;
    let (st, b) = call(
        &app,
        Method::POST,
        "/v3/OS-TRUST/trusts",
        Some(&s.trustor_token),
        Some(trust_body(&s, false, json!({}))),
    )
    .await;
    assert_eq!(
        (st, message(&b)),
        (
            403,
            "You are not authorized to perform the requested action: Trusts are disabled."
        )
    );
    let (st, _, _) = trust_token(&app, &s, &id()).await;
    assert_eq!(st, 403);
}

both_backends!(
    trust_api_shapes_and_policy,
    create_errors_are_keystones,
    trust_tokens_impersonate_or_not,
    remaining_uses_count_down,
    two_issues_cannot_both_take_the_last_use,
    every_revocation_path_fails_the_token,
    delegated_tokens_cannot_touch_trusts,
    a_peer_server_fails_trust_tokens_of_a_deleted_trust,
    trust_tokens_cannot_touch_credentials,
);

mod configured {
    use super::*;
    both_backends!(@db redelegation_only_narrows, trusts_can_be_disabled);
}
