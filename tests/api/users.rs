//! /v3/users over HTTP: shapes, validation, filters, the default policy per route,
//! self-service password change, and the writes that revoke tokens.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
pub use crate::helpers::{call, create_domain, domain_token, ids, system_token};
#[allow(unused_imports)]
use crate::helpers::{id, message, Member, TestApp, ADMIN_PASSWORD};
use keystone_rs::model::TargetKind;

pub async fn unscoped_token(app: &TestApp, name: &str, password: &str) -> String {
    let (status, token, body) = app.password_token(name, password, json!("unscoped")).await;
    assert_eq!(status, 201, "{body}");
    token.expect("token")
}

/// The revoked token fails as a subject (404) and as a caller (401).
pub async fn assert_revoked(app: &TestApp, admin: &str, token: &str, own_user_id: &str) {
    let (status, body) = app.validate(admin, token, "").await;
    assert_eq!(
        (status, message(&body)),
        (404, "Failed to validate token"),
        "{body}"
    );
    let (status, _) = call(
        app,
        Method::GET,
        &format!("/v3/users/{own_user_id}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, 401, "a revoked token is no caller");
}

pub async fn assert_valid(app: &TestApp, admin: &str, token: &str) {
    let (status, body) = app.validate(admin, token, "").await;
    assert_eq!(status, 200, "{body}");
}

async fn user_events(app: &TestApp, admin: &str, user_id: &str) -> usize {
    let (status, body) = call(app, Method::GET, "/v3/OS-REVOKE/events", Some(admin), None).await;
    assert_eq!(status, 200);
    body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["user_id"] == user_id)
        .count()
}

async fn user_crud_shapes_and_validation(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = Some(admin.as_str());
    // create: Keystone's shape, extras kept, never the password
    let (status, body) = call(&app, Method::POST, "/v3/users", a, Some(json!({"user": {"name": "bob", "password": "bobpw-secret", "domain_id": "default", "email": "bob@example.org", "description": "builder"}}))).await;
    assert_eq!(status, 201, "{body}");
    let user = &body["user"];
    let uid = user["id"].as_str().expect("id").to_string();
    assert_eq!(uid.len(), 32);
    assert_eq!(
        (
            user["name"].clone(),
            user["domain_id"].clone(),
            user["enabled"].clone()
        ),
        (json!("bob"), json!("default"), json!(true))
    );
    assert_eq!(user["password_expires_at"], Value::Null);
    assert_eq!(user["options"], json!({}));
    assert_eq!(user["email"], "bob@example.org");
    assert_eq!(user["description"], "builder");
    assert_eq!(
        user["links"]["self"],
        format!("{}/v3/users/{uid}", app.address)
    );
    assert!(
        user.get("default_project_id").is_none(),
        "absent when unset, as Keystone"
    );
    assert!(!body.to_string().contains("bobpw-secret") && user.get("password").is_none());
    // the password works
    let (status, _, _) = app
        .password_token("bob", "bobpw-secret", json!("unscoped"))
        .await;
    assert_eq!(status, 201);
    // duplicate name in the domain: Keystone's 409 text
    let (status, body) = call(
        &app,
        Method::POST,
        "/v3/users",
        a,
        Some(json!({"user": {"name": "bob", "domain_id": "default"}})),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(message(&body), "Conflict occurred attempting to store user - Duplicate entry found with name bob at domain ID default.");
    // schema violations are 400 in Keystone's JSON shape
    for bad in [
        json!({"user": {}}),
        json!({"user": {"name": ""}}),
        json!({"user": {"name": "   "}}),
        json!({"user": {"name": "n".repeat(256)}}),
        json!({"user": {"name": 7}}),
        json!({"user": {"name": "x", "enabled": "yes"}}),
        json!({"user": {"name": "x", "domain_id": "bad id"}}),
        json!({"user": {"name": "x", "default_project_id": 5}}),
        json!({"user": {"name": "x", "description": "d".repeat(256)}}),
        json!({"user": {"name": "x", "options": {"lock_password": "yes"}}}),
        json!({"user": {"name": "x", "options": {"no_such_option": true}}}),
        json!({"user": {"name": "x", "options": {"multi_factor_auth_enabled": true}}}),
        json!({"user": {"name": "x", "options": []}}),
        json!({"user": {"name": "x", "password": 12}}),
        json!({"user": "x"}),
        json!({"nouser": {}}),
        json!({"user": {"name": "x"}, "stray": 1}),
    ] {
        let (status, body) = call(&app, Method::POST, "/v3/users", a, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"]["code"], 400, "{body}");
    }
    let r = app
        .client
        .post(app.url("/v3/users"))
        .header("X-Auth-Token", &admin)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    // nothing was half-written by the refused requests
    let (_, body) = call(&app, Method::GET, "/v3/users?name=x", a, None).await;
    assert_eq!(body["users"], json!([]));
    // an unknown domain is Keystone's 404 (domain ids are case-sensitive)
    let (status, body) = call(
        &app,
        Method::POST,
        "/v3/users",
        a,
        Some(json!({"user": {"name": "x", "domain_id": "DEFaUlT"}})),
    )
    .await;
    assert_eq!(
        (status, message(&body)),
        (404, "Could not find domain: DEFaUlT.")
    );
    // no domain_id: the default domain for a non-domain-scoped caller; `domain-id` is normalized
    let (status, body) = call(
        &app,
        Method::POST,
        "/v3/users",
        a,
        Some(json!({"user": {"name": "carol", "enabled": false}})),
    )
    .await;
    assert_eq!(
        (
            status,
            body["user"]["domain_id"].clone(),
            body["user"]["enabled"].clone()
        ),
        (201, json!("default"), json!(false))
    );
    let d2 = create_domain(&app, "d2").await;
    let (status, body) = call(
        &app,
        Method::POST,
        "/v3/users",
        a,
        Some(json!({"user": {"name": "dave", "domain-id": d2}})),
    )
    .await;
    assert_eq!(
        (status, body["user"]["domain_id"].clone()),
        (201, json!(d2))
    );
    assert!(body["user"].get("domain-id").is_none());
    let dave = body["user"]["id"].as_str().expect("id").to_string();
    // GET and HEAD
    let (status, body) = call(&app, Method::GET, &format!("/v3/users/{uid}"), a, None).await;
    assert_eq!(
        (status, body["user"]["email"].clone()),
        (200, json!("bob@example.org"))
    );
    let r = app
        .client
        .head(app.url(&format!("/v3/users/{uid}")))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("head");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.expect("body").is_empty());
    let (status, body) = call(&app, Method::GET, "/v3/users/nope", a, None).await;
    assert_eq!(
        (status, message(&body)),
        (404, "Could not find user: nope.")
    );
    // list filters
    let (status, body) = call(&app, Method::GET, "/v3/users?name=bob", a, None).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body["users"]), vec![uid.clone()]);
    assert_eq!(
        body["links"],
        json!({"next": null, "self": format!("{}/v3/users?name=bob", app.address), "previous": null})
    );
    let (_, body) = call(&app, Method::GET, "/v3/users", a, None).await;
    assert!(
        ids(&body["users"]).contains(&app.admin_user_id) && ids(&body["users"]).contains(&dave)
    );
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/v3/users?domain_id={d2}"),
        a,
        None,
    )
    .await;
    assert_eq!(ids(&body["users"]), vec![dave.clone()]);
    let (_, body) = call(&app, Method::GET, "/v3/users?enabled=false", a, None).await;
    let names: Vec<&str> = body["users"]
        .as_array()
        .expect("a")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(names, vec!["carol"]);
    let (_, body) = call(&app, Method::GET, "/v3/users?name__istartswith=BO", a, None).await;
    assert_eq!(ids(&body["users"]), vec![uid.clone()]);
    // federated filters select shadow users only: none here
    let (status, body) = call(&app, Method::GET, "/v3/users?idp_id=myidp", a, None).await;
    assert_eq!((status, body["users"].clone()), (200, json!([])));
    // password_expires_at={op}:{time}; users whose password never expires match nothing
    let carol = app
        .store
        .get_user_by_name("default", "carol")
        .await
        .expect("db")
        .expect("carol");
    let expiry = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .expect("t")
        .timestamp();
    app.store
        .set_user_password(
            &carol.id,
            &keystone_rs::model::NewPassword {
                hash: "not-a-hash".into(),
                created_at: 0,
                expires_at: Some(expiry),
                self_service: false,
                keep_history: 0,
            },
            &[],
            None,
        )
        .await
        .expect("expiry");
    let (_, body) = call(
        &app,
        Method::GET,
        "/v3/users?password_expires_at=lt:2031-01-01T00:00:00Z",
        a,
        None,
    )
    .await;
    assert_eq!(ids(&body["users"]), vec![carol.id.clone()]);
    assert_eq!(
        body["users"][0]["password_expires_at"],
        "2030-01-01T00:00:00.000000"
    );
    let (_, body) = call(
        &app,
        Method::GET,
        "/v3/users?password_expires_at=2030-01-01T00:00:00Z",
        a,
        None,
    )
    .await;
    assert_eq!(ids(&body["users"]), vec![carol.id.clone()], "eq by default");
    let (_, body) = call(
        &app,
        Method::GET,
        "/v3/users?password_expires_at=gt:2030-01-01T00:00:00Z",
        a,
        None,
    )
    .await;
    assert_eq!(body["users"], json!([]));
    let (status, body) = call(
        &app,
        Method::GET,
        "/v3/users?password_expires_at=ne:2030-01-01T00:00:00Z",
        a,
        None,
    )
    .await;
    assert_eq!((status, message(&body)), (400, "The given operator ne is not valid. It must be one of the following: 'eq', 'neq', 'lt', 'lte', 'gt', or 'gte'."));
    let (status, body) = call(
        &app,
        Method::GET,
        "/v3/users?password_expires_at=lt:tomorrow",
        a,
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(message(&body).starts_with("Timestamp not in expected format."));
    // PATCH: validation, immutables, extras
    let path = format!("/v3/users/{uid}");
    for (bad, msg) in [
        (json!({"user": {}}), None),
        (json!({"user": {"enabled": 1}}), None),
        (json!({"user": {"name": ""}}), None),
        (json!({"user": {"id": "other"}}), Some("Cannot change ID")),
        (
            json!({"user": {"domain_id": d2}}),
            Some("Cannot change Domain ID"),
        ),
    ] {
        let (status, body) = call(&app, Method::PATCH, &path, a, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
        if let Some(m) = msg {
            assert_eq!(message(&body), m);
        }
    }
    let (status, body) = call(&app, Method::PATCH, &path, a, Some(json!({"user": {"name": "robert", "domain_id": "default", "id": uid, "default_project_id": app.admin_project_id, "description": null, "email": "r@example.org"}}))).await;
    assert_eq!(status, 200, "{body}");
    let user = &body["user"];
    assert_eq!(
        (
            user["name"].clone(),
            user["default_project_id"].clone(),
            user["description"].clone(),
            user["email"].clone()
        ),
        (
            json!("robert"),
            json!(app.admin_project_id),
            Value::Null,
            json!("r@example.org")
        )
    );
    let (_, body) = call(&app, Method::GET, &path, a, None).await;
    assert_eq!(body["user"]["name"], "robert", "persisted");
    // renaming onto a taken name: 409 without the domain, as Keystone's update
    let (status, body) = call(
        &app,
        Method::PATCH,
        &path,
        a,
        Some(json!({"user": {"name": "admin"}})),
    )
    .await;
    assert_eq!(
        (status, message(&body)),
        (
            409,
            "Conflict occurred attempting to store user - Duplicate entry found with name admin."
        )
    );
    let (status, _) = call(
        &app,
        Method::PATCH,
        "/v3/users/nope",
        a,
        Some(json!({"user": {"name": "z"}})),
    )
    .await;
    assert_eq!(status, 404);
    // DELETE
    let (status, body) = call(&app, Method::DELETE, &path, a, None).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, _) = call(&app, Method::GET, &path, a, None).await;
    assert_eq!(status, 404);
    let (status, body) = call(&app, Method::DELETE, &path, a, None).await;
    assert_eq!(
        (status, message(&body).to_string()),
        (404, format!("Could not find user: {uid}."))
    );
    // unsupported methods are Keystone-shaped 405s
    let (status, body) = call(&app, Method::PUT, "/v3/users", a, None).await;
    assert_eq!((status, body["error"]["code"].clone()), (405, json!(405)));
}

async fn user_protection_matrix(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (_, reader) = system_token(&app, "reader").await;
    let (member, member_token, _) = app.member_with_token("member").await;
    let target = app.create_user("target", "t4rget-pw").await;
    let t = format!("/v3/users/{}", target.user_id);
    let own = format!("/v3/users/{}", member.user_id);
    let (a, r, m) = (
        Some(admin.as_str()),
        Some(reader.as_str()),
        Some(member_token.as_str()),
    );
    // reads: system admin and system reader yes, a project member no, anonymous 401
    for path in [
        "/v3/users".to_string(),
        t.clone(),
        format!("{t}/projects"),
        format!("{t}/groups"),
    ] {
        assert_eq!(
            call(&app, Method::GET, &path, a, None).await.0,
            200,
            "admin {path}"
        );
        assert_eq!(
            call(&app, Method::GET, &path, r, None).await.0,
            200,
            "reader {path}"
        );
        let (status, body) = call(&app, Method::GET, &path, m, None).await;
        assert_eq!(status, 403, "member {path}");
        assert!(
            message(&body)
                .starts_with("You are not authorized to perform the requested action: identity:"),
            "{body}"
        );
        let (status, body) = call(&app, Method::GET, &path, None, None).await;
        assert_eq!(
            (status, message(&body)),
            (401, "The request you have made requires authentication."),
            "anonymous {path}"
        );
    }
    // the owner reads its own user, projects and groups
    for path in [
        own.clone(),
        format!("{own}/projects"),
        format!("{own}/groups"),
    ] {
        assert_eq!(
            call(&app, Method::GET, &path, m, None).await.0,
            200,
            "owner {path}"
        );
    }
    // an unknown id: 403 for a caller with no right on it, 404 for one with
    assert_eq!(
        call(&app, Method::GET, "/v3/users/nope", m, None).await.0,
        403
    );
    assert_eq!(
        call(&app, Method::GET, "/v3/users/nope", r, None).await.0,
        404
    );
    assert_eq!(
        call(&app, Method::GET, "/v3/users/nope/projects", a, None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(&app, Method::GET, "/v3/users/nope/groups", a, None)
            .await
            .0,
        404
    );
    // writes: only the admin; not the reader, not a member, not even the owner
    let create = json!({"user": {"name": "newbie", "domain_id": "default"}});
    for tok in [r, m] {
        assert_eq!(
            call(&app, Method::POST, "/v3/users", tok, Some(create.clone()))
                .await
                .0,
            403
        );
        assert_eq!(
            call(
                &app,
                Method::PATCH,
                &t,
                tok,
                Some(json!({"user": {"name": "renamed"}}))
            )
            .await
            .0,
            403
        );
        assert_eq!(call(&app, Method::DELETE, &t, tok, None).await.0, 403);
    }
    assert_eq!(
        call(
            &app,
            Method::PATCH,
            &own,
            m,
            Some(json!({"user": {"enabled": true}}))
        )
        .await
        .0,
        403,
        "owner cannot update itself"
    );
    assert_eq!(
        call(&app, Method::DELETE, &own, m, None).await.0,
        403,
        "owner cannot delete itself"
    );
    assert_eq!(
        call(&app, Method::POST, "/v3/users", None, Some(create.clone()))
            .await
            .0,
        401
    );
    assert_eq!(
        call(
            &app,
            Method::PATCH,
            &t,
            None,
            Some(json!({"user": {"name": "renamed"}}))
        )
        .await
        .0,
        401
    );
    assert_eq!(call(&app, Method::DELETE, &t, None, None).await.0, 401);
    // nothing changed
    let (_, body) = call(&app, Method::GET, &t, a, None).await;
    assert_eq!(body["user"]["name"], "target");
    assert_eq!(
        call(&app, Method::GET, "/v3/users?name=newbie", a, None)
            .await
            .1["users"],
        json!([])
    );
    // the admin may
    assert_eq!(
        call(&app, Method::POST, "/v3/users", a, Some(create))
            .await
            .0,
        201
    );
    assert_eq!(
        call(
            &app,
            Method::PATCH,
            &t,
            a,
            Some(json!({"user": {"name": "renamed"}}))
        )
        .await
        .0,
        200
    );
    assert_eq!(call(&app, Method::DELETE, &t, a, None).await.0, 204);
    // a project-scoped admin is an admin too (rule:admin_required)
    let project_admin = app.admin_token().await;
    assert_eq!(
        call(&app, Method::GET, "/v3/users", Some(&project_admin), None)
            .await
            .0,
        200
    );
}

async fn domain_scoped_callers_stay_in_their_domain(app: TestApp) {
    let admin = app.system_admin_token().await;
    let d2 = create_domain(&app, "d2").await;
    let (manager, mtoken) = domain_token(&app, &d2, "manager").await;
    let (_, rtoken) = domain_token(&app, &d2, "reader").await;
    let (m, r) = (Some(mtoken.as_str()), Some(rtoken.as_str()));
    let (status, body) = call(
        &app,
        Method::POST,
        "/v3/users",
        Some(&admin),
        Some(json!({"user": {"name": "in-d2", "domain_id": d2}})),
    )
    .await;
    assert_eq!(status, 201);
    let in_d2 = body["user"]["id"].as_str().expect("id").to_string();
    // listing: only the domain's users, whatever domain_id asks
    for tok in [m, r] {
        let (status, body) = call(&app, Method::GET, "/v3/users", tok, None).await;
        assert_eq!(status, 200);
        assert_eq!(ids(&body["users"]), vec![in_d2.clone()]);
        let (_, body) = call(&app, Method::GET, "/v3/users?domain_id=default", tok, None).await;
        assert_eq!(body["users"], json!([]));
    }
    // reading: users of the domain, not others (the manager itself lives in default)
    assert_eq!(
        call(&app, Method::GET, &format!("/v3/users/{in_d2}"), r, None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/v3/users/{}", app.admin_user_id),
            r,
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/v3/users/{}", manager.user_id),
            m,
            None
        )
        .await
        .0,
        200,
        "own user"
    );
    // the manager creates and updates in its domain only; it must name the domain (Keystone
    // enforces on the body before filling in the token's domain)
    let (status, body) = call(
        &app,
        Method::POST,
        "/v3/users",
        m,
        Some(json!({"user": {"name": "hired", "domain_id": d2}})),
    )
    .await;
    assert_eq!(
        (status, body["user"]["domain_id"].clone()),
        (201, json!(d2))
    );
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/v3/users",
            m,
            Some(json!({"user": {"name": "x"}}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/v3/users",
            m,
            Some(json!({"user": {"name": "x", "domain_id": "default"}}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &app,
            Method::PATCH,
            &format!("/v3/users/{in_d2}"),
            m,
            Some(json!({"user": {"email": "e@d2"}}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(
            &app,
            Method::PATCH,
            &format!("/v3/users/{}", app.admin_user_id),
            m,
            Some(json!({"user": {"enabled": false}}))
        )
        .await
        .0,
        403
    );
    // the domain reader writes nothing
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/v3/users",
            r,
            Some(json!({"user": {"name": "y", "domain_id": d2}}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(&app, Method::DELETE, &format!("/v3/users/{in_d2}"), r, None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(&app, Method::DELETE, &format!("/v3/users/{in_d2}"), m, None)
            .await
            .0,
        204
    );
    // a domain-scoped admin that omits domain_id creates in its token's domain
    app.grant(&app.admin_user_id, TargetKind::Domain, &d2, "admin")
        .await;
    let (status, token, _) = app
        .password_token("admin", ADMIN_PASSWORD, json!({"domain": {"id": d2}}))
        .await;
    assert_eq!(status, 201);
    let (status, body) = call(
        &app,
        Method::POST,
        "/v3/users",
        token.as_deref(),
        Some(json!({"user": {"name": "implicit"}})),
    )
    .await;
    assert_eq!(
        (status, body["user"]["domain_id"].clone()),
        (201, json!(d2))
    );
}

async fn self_service_password_change(app: TestApp) {
    let admin = app.system_admin_token().await;
    let owner = app.create_user("owner", "old-pass").await;
    let before = unscoped_token(&app, "owner", "old-pass").await;
    let path = format!("/v3/users/{}/password", owner.user_id);
    // wrong original password: 401, nothing changes
    let (status, body) = call(
        &app,
        Method::POST,
        &path,
        Some(&before),
        Some(json!({"user": {"original_password": "wrong", "password": "new-pass"}})),
    )
    .await;
    assert_eq!(
        (status, message(&body)),
        (401, "The request you have made requires authentication.")
    );
    assert_valid(&app, &admin, &before).await;
    // bad bodies
    for bad in [
        json!({"user": {"password": "x"}}),
        json!({"user": {"original_password": "old-pass"}}),
        json!({"user": {"original_password": "old-pass", "password": 5}}),
        json!({"user": {"original_password": "old-pass", "password": "x", "name": "y"}}),
        json!({"password": "x"}),
    ] {
        assert_eq!(
            call(&app, Method::POST, &path, Some(&before), Some(bad.clone()))
                .await
                .0,
            400,
            "{bad}"
        );
    }
    // the owner changes it: 204, its earlier tokens die at once
    let (status, body) = call(
        &app,
        Method::POST,
        &path,
        Some(&before),
        Some(json!({"user": {"original_password": "old-pass", "password": "new-pass"}})),
    )
    .await;
    assert_eq!((status, body), (204, Value::Null));
    assert_revoked(&app, &admin, &before, &owner.user_id).await;
    assert_eq!(user_events(&app, &admin, &owner.user_id).await, 1);
    let (status, _, _) = app
        .password_token("owner", "old-pass", json!("unscoped"))
        .await;
    assert_eq!(status, 401, "old password refused");
    // a token issued a second later works
    app.clock.advance(1);
    let after = unscoped_token(&app, "owner", "new-pass").await;
    assert_valid(&app, &admin, &after).await;
    // Keystone asks no token here (api-ref: "does not require a token"): the original password is the credential
    let (status, _) = call(
        &app,
        Method::POST,
        &path,
        None,
        Some(json!({"user": {"original_password": "new-pass", "password": "third-pass"}})),
    )
    .await;
    assert_eq!(status, 204);
    assert_revoked(&app, &admin, &after, &owner.user_id).await;
    let (status, _) = call(
        &app,
        Method::POST,
        &path,
        None,
        Some(json!({"user": {"original_password": "new-pass", "password": "x"}})),
    )
    .await;
    assert_eq!(status, 401);
    // unknown user: 401 like a wrong password, not 404
    let (status, _) = call(
        &app,
        Method::POST,
        "/v3/users/nope/password",
        None,
        Some(json!({"user": {"original_password": "a", "password": "b"}})),
    )
    .await;
    assert_eq!(status, 401);
    // a disabled user cannot change its password
    let (status, _) = call(
        &app,
        Method::PATCH,
        &format!("/v3/users/{}", owner.user_id),
        Some(&admin),
        Some(json!({"user": {"enabled": false}})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        Method::POST,
        &path,
        None,
        Some(json!({"user": {"original_password": "third-pass", "password": "fourth"}})),
    )
    .await;
    assert_eq!(status, 401);
    // GET is not allowed
    assert_eq!(
        call(&app, Method::GET, &path, Some(&admin), None).await.0,
        405
    );
    // an expired password cannot log in but can still be replaced with itself as proof
    let expiring = app.create_user("expiring", "stale-pass").await;
    let stored = app
        .store
        .get_user(&expiring.user_id)
        .await
        .expect("db")
        .expect("user");
    let hash = stored.password_hash.expect("hash");
    app.store
        .set_user_password(
            &expiring.user_id,
            &keystone_rs::model::NewPassword {
                hash,
                created_at: 0,
                expires_at: Some(app.clock.now_secs() - 10),
                self_service: false,
                keep_history: 0,
            },
            &[],
            None,
        )
        .await
        .expect("expire");
    let (status, _, _) = app
        .password_token("expiring", "stale-pass", json!("unscoped"))
        .await;
    assert_eq!(status, 401, "expired");
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/v3/users/{}/password", expiring.user_id),
        None,
        Some(json!({"user": {"original_password": "stale-pass", "password": "fresh-pass"}})),
    )
    .await;
    assert_eq!(status, 204);
    app.clock.advance(1);
    let fresh = unscoped_token(&app, "expiring", "fresh-pass").await;
    assert_valid(&app, &admin, &fresh).await;
}

async fn disabling_a_user_revokes_its_tokens(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (member, token, project_id) = app.member_with_token("member").await;
    let bystander = app.member_with_token("member").await.1;
    let path = format!("/v3/users/{}", member.user_id);
    let (status, body) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"user": {"enabled": false}})),
    )
    .await;
    assert_eq!(
        (status, body["user"]["enabled"].clone()),
        (200, json!(false))
    );
    assert_revoked(&app, &admin, &token, &member.user_id).await;
    assert_eq!(user_events(&app, &admin, &member.user_id).await, 1);
    assert_valid(&app, &admin, &bystander).await;
    let (status, _, _) = app
        .password_token(&member.name, &member.password, json!("unscoped"))
        .await;
    assert_eq!(status, 401, "disabled users cannot log in");
    // disabling again records nothing new; enabling records nothing
    call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"user": {"enabled": false}})),
    )
    .await;
    call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"user": {"enabled": true}})),
    )
    .await;
    assert_eq!(user_events(&app, &admin, &member.user_id).await, 1);
    // re-enabled, a token issued a second later works; the old one stays dead
    app.clock.advance(1);
    let (status, fresh, _) = app
        .password_token(
            &member.name,
            &member.password,
            json!({"project": {"id": project_id}}),
        )
        .await;
    assert_eq!(status, 201);
    assert_valid(&app, &admin, fresh.as_deref().expect("t")).await;
    let (status, _) = app.validate(&admin, &token, "").await;
    assert_eq!(status, 404);
}

async fn setting_a_password_by_patch_revokes(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (member, token, _) = app.member_with_token("member").await;
    let path = format!("/v3/users/{}", member.user_id);
    // a PATCH that does not touch the password or enabled revokes nothing
    call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"user": {"email": "m@example.org"}})),
    )
    .await;
    assert_valid(&app, &admin, &token).await;
    let (status, body) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"user": {"password": "reset-pass"}})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["user"].get("password").is_none());
    assert_revoked(&app, &admin, &token, &member.user_id).await;
    let (status, _, _) = app
        .password_token(&member.name, &member.password, json!("unscoped"))
        .await;
    assert_eq!(status, 401, "old password refused");
    app.clock.advance(1);
    let fresh = unscoped_token(&app, &member.name, "reset-pass").await;
    assert_valid(&app, &admin, &fresh).await;
    // password null removes password login without revoking
    let (status, _) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"user": {"password": null}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_valid(&app, &admin, &fresh).await;
    let (status, _, _) = app
        .password_token(&member.name, "reset-pass", json!("unscoped"))
        .await;
    assert_eq!(status, 401);
}

async fn deleting_a_user_revokes_and_cleans_up(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (member, token, project_id) = app.member_with_token("member").await;
    let bystander = app.member_with_token("member").await.1;
    let (status, body) = call(
        &app,
        Method::POST,
        "/v3/groups",
        Some(&admin),
        Some(json!({"group": {"name": "crew"}})),
    )
    .await;
    assert_eq!(status, 201);
    let gid = body["group"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        call(
            &app,
            Method::PUT,
            &format!("/v3/groups/{gid}/users/{}", member.user_id),
            Some(&admin),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &format!("/v3/users/{}", member.user_id),
            Some(&admin),
            None
        )
        .await
        .0,
        204
    );
    let (status, body) = app.validate(&admin, &token, "").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(user_events(&app, &admin, &member.user_id).await, 1);
    assert_valid(&app, &admin, &bystander).await;
    // memberships and assignments went with the user
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/v3/groups/{gid}/users"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(body["users"], json!([]));
    // a new user with the same name, a second later, starts clean with a working token
    app.clock.advance(1);
    let again = app.create_user(&member.name, "pa55word").await;
    assert_ne!(again.user_id, member.user_id);
    app.grant(&again.user_id, TargetKind::Project, &project_id, "member")
        .await;
    let (status, fresh, _) = app
        .password_token(
            &member.name,
            "pa55word",
            json!({"project": {"id": project_id}}),
        )
        .await;
    assert_eq!(status, 201);
    assert_valid(&app, &admin, fresh.as_deref().expect("t")).await;
}

async fn user_projects_and_groups(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = Some(admin.as_str());
    let (member, token, direct) = app.member_with_token("member").await;
    // through a group
    let via_group = app.create_project("via-group", "default").await;
    let (_, body) = call(
        &app,
        Method::POST,
        "/v3/groups",
        a,
        Some(json!({"group": {"name": "g1", "description": "first"}})),
    )
    .await;
    let gid = body["group"]["id"].as_str().expect("id").to_string();
    call(
        &app,
        Method::PUT,
        &format!("/v3/groups/{gid}/users/{}", member.user_id),
        a,
        None,
    )
    .await;
    let role_id = app.role_id("member").await;
    app.store
        .add_assignment(&keystone_rs::model::Assignment {
            actor: keystone_rs::model::ActorKind::Group,
            actor_id: gid.clone(),
            target: TargetKind::Project,
            target_id: via_group.clone(),
            role_id: role_id.clone(),
            inherited: false,
        })
        .await
        .expect("group grant");
    // inherited from a domain
    let d2 = create_domain(&app, "d2").await;
    let inherited = app.create_project("in-d2", &d2).await;
    app.store
        .add_assignment(&keystone_rs::model::Assignment {
            actor: keystone_rs::model::ActorKind::User,
            actor_id: member.user_id.clone(),
            target: TargetKind::Domain,
            target_id: d2.clone(),
            role_id,
            inherited: true,
        })
        .await
        .expect("inherited grant");
    // a disabled project still lists (Keystone's list_projects_for_user does not filter)
    let mut p = app
        .store
        .get_project(&via_group)
        .await
        .expect("p")
        .expect("p");
    p.enabled = false;
    app.store.update_project(&p).await.expect("disable");
    let path = format!("/v3/users/{}/projects", member.user_id);
    let (status, body) = call(&app, Method::GET, &path, Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    let mut got = ids(&body["projects"]);
    got.sort();
    let mut want = vec![direct.clone(), via_group.clone(), inherited.clone()];
    want.sort();
    assert_eq!(got, want);
    let project = body["projects"]
        .as_array()
        .expect("a")
        .iter()
        .find(|p| p["id"] == inherited)
        .expect("in-d2");
    assert_eq!(
        (
            project["domain_id"].clone(),
            project["parent_id"].clone(),
            project["is_domain"].clone()
        ),
        (json!(d2), json!(d2), json!(false))
    );
    assert_eq!(
        project["links"]["self"],
        format!("{}/v3/projects/{inherited}", app.address)
    );
    assert_eq!(body["links"]["self"], format!("{}{path}", app.address));
    let (_, body) = call(&app, Method::GET, &format!("{path}?enabled=false"), a, None).await;
    assert_eq!(ids(&body["projects"]), vec![via_group.clone()]);
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("{path}?domain_id={d2}"),
        a,
        None,
    )
    .await;
    assert_eq!(ids(&body["projects"]), vec![inherited.clone()]);
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("{path}?name=via-group"),
        a,
        None,
    )
    .await;
    assert_eq!(ids(&body["projects"]), vec![via_group]);
    // groups of the user, with Keystone's membership_expires_at
    let (status, body) = call(
        &app,
        Method::GET,
        &format!("/v3/users/{}/groups", member.user_id),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["groups"],
        json!([{"id": gid, "name": "g1", "domain_id": "default", "description": "first", "links": {"self": format!("{}/v3/groups/{gid}", app.address)}, "membership_expires_at": null}])
    );
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/v3/users/{}/groups?name=other", member.user_id),
        a,
        None,
    )
    .await;
    assert_eq!(body["groups"], json!([]));
    // a user with nothing lists nothing
    let (_, body) = call(
        &app,
        Method::GET,
        &format!(
            "/v3/users/{}/projects",
            app.create_user("lonely", "pw").await.user_id
        ),
        a,
        None,
    )
    .await;
    assert_eq!(body["projects"], json!([]));
}

both_backends!(
    user_crud_shapes_and_validation,
    user_protection_matrix,
    domain_scoped_callers_stay_in_their_domain,
    self_service_password_change,
    disabling_a_user_revokes_its_tokens,
    setting_a_password_by_patch_revokes,
    deleting_a_user_revokes_and_cleans_up,
    user_projects_and_groups,
);
