use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
#[allow(unused_imports)]
use crate::helpers::{message, TestApp, ADMIN_PASSWORD};
use keystone_rs::model::TargetKind;

fn is_keystone_time(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 27 && s.ends_with(".000000Z") && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

fn role_names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["token"]["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn discovery_root_and_v3(app: TestApp) {
    let r = app.client.get(app.url("/")).send().await.expect("get /");
    assert_eq!(r.status().as_u16(), 300);
    let location = r.headers()["Location"]
        .to_str()
        .expect("location")
        .to_string();
    assert_eq!(location, format!("{}/v3/", app.address));
    assert_eq!(r.headers()["Vary"], "X-Auth-Token");
    assert!(r.headers()["x-openstack-request-id"]
        .to_str()
        .expect("id")
        .starts_with("req-"));
    let body: Value = r.json().await.expect("json");
    let v = &body["versions"]["values"][0];
    assert_eq!(v["id"], "v3.14");
    assert_eq!(v["status"], "stable");
    assert_eq!(v["links"][0]["href"], format!("{}/v3/", app.address));
    for path in ["/v3", "/v3/"] {
        let r = app
            .client
            .get(app.url(path))
            .header("X-Auth-Token", "garbage")
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["version"]["id"], "v3.14");
        assert_eq!(
            body["version"]["media-types"][0]["type"],
            "application/vnd.openstack.identity-v3+json"
        );
    }
}

async fn issue_project_token_with_catalog(app: TestApp) {
    let (status, token, body) = app
        .password_token(
            "admin",
            ADMIN_PASSWORD,
            json!({"project": {"name": "admin", "domain": {"name": "Default"}}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = token.expect("X-Subject-Token");
    assert!(
        token.starts_with("gAAAAA") && !token.ends_with('='),
        "{token}"
    );
    let t = &body["token"];
    assert_eq!(t["methods"], json!(["password"]));
    assert_eq!(t["user"]["name"], "admin");
    assert_eq!(t["user"]["id"], app.admin_user_id.as_str());
    assert_eq!(
        t["user"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert_eq!(t["user"]["password_expires_at"], Value::Null);
    assert_eq!(t["project"]["id"], app.admin_project_id.as_str());
    assert_eq!(t["project"]["domain"]["name"], "Default");
    assert_eq!(t["is_domain"], false);
    assert_eq!(
        role_names(&body),
        vec!["admin", "manager", "member", "reader"]
    );
    assert!(
        is_keystone_time(&t["expires_at"]) && is_keystone_time(&t["issued_at"]),
        "{t}"
    );
    let issued =
        chrono::DateTime::parse_from_rfc3339(t["issued_at"].as_str().expect("s")).expect("t");
    let expires =
        chrono::DateTime::parse_from_rfc3339(t["expires_at"].as_str().expect("s")).expect("t");
    let lifetime = (expires - issued).num_seconds();
    assert!((3599..=3600).contains(&lifetime), "{lifetime}");
    assert_eq!(t["audit_ids"].as_array().map(Vec::len), Some(1));
    assert_eq!(t["audit_ids"][0].as_str().map(str::len), Some(22));
    let catalog = t["catalog"].as_array().expect("catalog");
    let identity = catalog
        .iter()
        .find(|s| s["type"] == "identity")
        .expect("identity service");
    assert_eq!(identity["name"], "keystone");
    assert_eq!(identity["endpoints"].as_array().map(Vec::len), Some(3));
    assert_eq!(identity["endpoints"][0]["region_id"], "RegionOne");
    assert_eq!(identity["endpoints"][0]["region"], "RegionOne");
}

async fn issue_every_scope(app: TestApp) {
    // by ids, nocatalog
    let (status, _, body) = app
        .post_auth(
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": app.admin_user_id, "password": ADMIN_PASSWORD}}}, "scope": {"project": {"id": app.admin_project_id}}}}),
            "?nocatalog",
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["token"].get("catalog").is_none());
    // system
    let (status, _, body) = app
        .password_token("admin", ADMIN_PASSWORD, json!({"system": {"all": true}}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["token"]["system"], json!({"all": true}));
    assert_eq!(
        role_names(&body),
        vec!["admin", "manager", "member", "reader"]
    );
    // Keystone only looks at the key
    let (status, _, _) = app
        .password_token("admin", ADMIN_PASSWORD, json!({"system": {}}))
        .await;
    assert_eq!(status, 201);
    // unscoped: explicit string, and no scope without a default project
    for scope in [json!("unscoped"), Value::Null] {
        let (status, _, body) = app.password_token("admin", ADMIN_PASSWORD, scope).await;
        assert_eq!(status, 201, "{body}");
        let t = &body["token"];
        assert!(
            t.get("roles").is_none() && t.get("project").is_none() && t.get("catalog").is_none(),
            "{t}"
        );
    }
    // domain: no role on the domain -> 401, then with a role -> 201
    let (status, _, body) = app
        .password_token(
            "admin",
            ADMIN_PASSWORD,
            json!({"domain": {"id": "default"}}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    app.grant(&app.admin_user_id, TargetKind::Domain, "default", "reader")
        .await;
    let (status, _, body) = app
        .password_token(
            "admin",
            ADMIN_PASSWORD,
            json!({"domain": {"name": "Default"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["token"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert_eq!(role_names(&body), vec!["reader"]);
}

async fn default_project_auto_scope(app: TestApp) {
    let (member, _, project_id) = app.member_with_token("member").await;
    let mut user = app
        .state
        .identity
        .get_user(&member.user_id)
        .await
        .expect("user");
    user.default_project_id = Some(project_id.clone());
    app.state.identity.update_user(&user).await.expect("update");
    let (status, _, body) = app
        .password_token(&member.name, &member.password, Value::Null)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["token"]["project"]["id"], project_id.as_str());
    // explicit unscoped still wins
    let (_, _, body) = app
        .password_token(&member.name, &member.password, json!("unscoped"))
        .await;
    assert!(body["token"].get("project").is_none());
}

async fn bad_credentials_are_indistinguishable(app: TestApp) {
    let (s1, _, wrong_pw) = app.password_token("admin", "WRONG", Value::Null).await;
    let (s2, _, unknown) = app.password_token("nosuchuser", "x", Value::Null).await;
    let (s3, _, by_id) = app
        .post_auth(json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "0000", "password": "x"}}}}}), "")
        .await;
    assert_eq!((s1, s2, s3), (401, 401, 401));
    assert_eq!(wrong_pw, unknown);
    assert_eq!(wrong_pw, by_id);
    assert_eq!(
        message(&wrong_pw),
        "The request you have made requires authentication."
    );
    let r = app
        .client
        .post(app.url("/v3/auth/tokens"))
        .json(&json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "x", "domain": {"id": "default"}, "password": "x"}}}}}))
        .send()
        .await
        .expect("post");
    assert_eq!(
        r.headers()["WWW-Authenticate"],
        format!("Keystone uri=\"{}/v3\"", app.address).as_str()
    );
    // scope problems are the same generic 401
    for scope in [
        json!({"project": {"id": "nope"}}),
        json!({"project": {"name": "nope", "domain": {"id": "default"}}}),
        json!({"domain": {"id": "nope"}}),
    ] {
        let (status, _, body) = app.password_token("admin", ADMIN_PASSWORD, scope).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body, wrong_pw);
    }
}

async fn malformed_requests_are_4xx_json(app: TestApp) {
    let cases: Vec<(Option<&str>, String, u16, &str)> = vec![
        (Some("application/json"), "not json".into(), 400, "Expecting to find valid JSON in request body."),
        (Some("application/json"), "[1,2]".into(), 400, "Expecting to find valid JSON in request body."),
        (Some("application/json"), "null".into(), 400, "Expecting to find valid JSON in request body."),
        (Some("application/json"), "{}".into(), 400, "Expecting to find auth in request body."),
        (Some("application/json"), "".into(), 400, "Expecting to find auth in request body."),
        (Some("application/json"), "{\"auth\": null}".into(), 400, "Expecting to find auth in request body."),
        (Some("application/json"), "\"auth\"".into(), 400, "Expecting to find valid JSON in request body."),
        (Some("text/plain"), "{}".into(), 400, "Expecting to find application/json in Content-Type header."),
        (Some("application/json"), json!({"auth": {"identity": {}}}).to_string(), 400, "Invalid input for field 'identity': 'methods' is a required property"),
        (Some("application/json"), json!({"auth": {"identity": {"methods": ["password"]}}}).to_string(), 400, "Expecting to find password in identity."),
        (Some("application/json"), json!({"auth": {"identity": {"methods": [1]}}}).to_string(), 400, "Invalid input"),
        (Some("application/json"), json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "x"}}}}}).to_string(), 400, "Expecting to find domain in user."),
        (Some("application/json"), json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}}, "scope": {"project": {"id": "x"}, "domain": {"id": "default"}}}}).to_string(), 400, "Expecting to find system, project, domain, OS-TRUST:trust or unscoped in scope."),
        (Some("application/json"), json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}}, "scope": {"project": {"name": "admin"}}}}).to_string(), 400, "Expecting to find domain in project."),
        (None, "{\"auth\": 7}".into(), 400, "Invalid input for field 'auth'"),
        (Some("application/json"), json!({"auth": {"identity": {"methods": ["totp"], "totp": {}}}}).to_string(), 401, "Attempted to authenticate with an unsupported method."),
        (Some("application/json"), json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "garbage"}}}}).to_string(), 404, "Could not recognize Fernet token"),
        (Some("application/json"), json!({"auth": {"identity": {"methods": ["token"], "token": {}}}}).to_string(), 400, "Invalid input for field 'token': 'id' is a required property"),
        (Some("application/json"), json!({"auth": {"identity": {"methods": ["token"], "token": {"id": ""}}}}).to_string(), 404, "No token in the request"),
        (Some("application/json"), json!({"auth": {"identity": {"methods": []}}}).to_string(), 401, "The request you have made requires authentication."),
    ];
    for (ct, body, status, msg) in cases {
        let mut rb = app
            .client
            .post(app.url("/v3/auth/tokens"))
            .body(body.clone());
        if let Some(ct) = ct {
            rb = rb.header("Content-Type", ct);
        }
        let r = rb.send().await.expect("post");
        assert_eq!(r.status().as_u16(), status, "{body}");
        assert_eq!(r.headers()["Content-Type"], "application/json");
        let got: Value = r.json().await.expect("json error body");
        assert_eq!(got["error"]["code"], status, "{got}");
        assert!(message(&got).starts_with(msg), "{body} -> {got}");
        if status == 401 && msg.starts_with("Attempted") {
            assert_eq!(got["error"]["identity"]["methods"][1], "password");
        }
    }
    // oversized body: Keystone's 114688-byte limit
    let big = format!("{{\"auth\": \"{}\"}}", "x".repeat(120_000));
    let r = app
        .client
        .post(app.url("/v3/auth/tokens"))
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 413);
    let got: Value = r.json().await.expect("json");
    assert_eq!(got["error"]["code"], 413);
    // unknown route and method
    let r = app
        .client
        .get(app.url("/v3/nonexistent"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["code"], 404);
    let r = app
        .client
        .put(app.url("/v3/auth/tokens"))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 405);
}

async fn validate_check_and_policy(app: TestApp) {
    let admin = app.admin_token().await;
    let (member, demo, _) = app.member_with_token("member").await;
    let (_, other_member, _) = app.member_with_token("member").await;
    let (_, service, _) = app.member_with_token("service").await;

    let (status, headers, body) = app
        .token_call(Method::GET, Some(&admin), Some(&demo), "")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["X-Subject-Token"], demo.as_str());
    assert_eq!(body["token"]["user"]["id"], member.user_id.as_str());
    assert_eq!(role_names(&body), vec!["member", "reader"]);
    assert!(body["token"]["catalog"].is_array());
    let (_, _, body) = app
        .token_call(Method::GET, Some(&admin), Some(&demo), "?nocatalog=0")
        .await;
    assert!(
        body["token"].get("catalog").is_none(),
        "nocatalog is presence-only"
    );

    // HEAD: 200, headers, no body; the service role is not enough for HEAD
    let (status, headers, body) = app
        .token_call(Method::HEAD, Some(&admin), Some(&demo), "")
        .await;
    assert_eq!((status, body), (200, Value::Null));
    assert_eq!(headers["X-Subject-Token"], demo.as_str());
    let (status, _, _) = app
        .token_call(Method::HEAD, Some(&service), Some(&demo), "")
        .await;
    assert_eq!(status, 403);
    let (status, _) = app.validate(&service, &demo, "?nocatalog").await;
    assert_eq!(status, 200);

    // own token yes, someone else's no
    let (status, _) = app.validate(&demo, &demo, "").await;
    assert_eq!(status, 200);
    let (status, body) = app.validate(&other_member, &demo, "").await;
    assert_eq!(status, 403);
    assert_eq!(
        message(&body),
        "You are not authorized to perform the requested action: identity:validate_token."
    );
    let (status, _, _) = app
        .token_call(Method::HEAD, Some(&other_member), Some(&demo), "")
        .await;
    assert_eq!(status, 403);

    // a system reader validates anyone's token
    let reader = app.create_user("sysreader", "pa55word").await;
    app.grant(&reader.user_id, TargetKind::System, "all", "reader")
        .await;
    let (status, sysreader, body) = app
        .password_token("sysreader", "pa55word", json!({"system": {"all": true}}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = app
        .validate(sysreader.as_deref().expect("t"), &demo, "")
        .await;
    assert_eq!(status, 200);

    // caller problems: 401 with WWW-Authenticate
    for caller in [None, Some("garbage")] {
        let (status, headers, body) = app.token_call(Method::GET, caller, Some(&demo), "").await;
        assert_eq!(status, 401, "{body}");
        assert!(headers["WWW-Authenticate"]
            .to_str()
            .expect("h")
            .starts_with("Keystone uri="));
    }
    // subject problems: 404
    let (status, _, body) = app.token_call(Method::GET, Some(&admin), None, "").await;
    assert_eq!((status, message(&body)), (404, "No token in the request"));
    let (status, body) = app.validate(&admin, "garbage", "").await;
    assert_eq!(
        (status, message(&body)),
        (404, "Could not recognize Fernet token")
    );
    // A middle character carries six real bits (the last one may carry padding bits).
    let mid = demo.len() / 2;
    let replacement = if &demo[mid..=mid] == "A" { "B" } else { "A" };
    let tampered = format!("{}{replacement}{}", &demo[..mid], &demo[mid + 1..]);
    let (status, body) = app.validate(&admin, &tampered, "").await;
    assert_eq!(
        (status, message(&body)),
        (404, "Could not recognize Fernet token")
    );
    // OS-PKI is gone
    let r = app
        .client
        .get(app.url("/v3/auth/tokens/OS-PKI/revoked"))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 403);
}

async fn rescope_keeps_expiry_and_audit_chain(app: TestApp) {
    let (status, unscoped, body) = app
        .password_token("admin", ADMIN_PASSWORD, json!("unscoped"))
        .await;
    assert_eq!(status, 201);
    let unscoped = unscoped.expect("token");
    let original = body["token"].clone();
    app.clock.advance(5);
    let (status, scoped, body) = app
        .post_auth(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}}, "scope": {"project": {"id": app.admin_project_id}}}}), "?nocatalog")
        .await;
    assert_eq!(status, 201, "{body}");
    let t = &body["token"];
    assert_eq!(
        t["expires_at"], original["expires_at"],
        "rescope must not extend expiry"
    );
    assert_ne!(t["issued_at"], original["issued_at"]);
    let root = original["audit_ids"][0].clone();
    assert_eq!(t["audit_ids"][1], root);
    let mut methods: Vec<String> = serde_json::from_value(t["methods"].clone()).expect("methods");
    methods.sort();
    assert_eq!(methods, vec!["password", "token"]);
    // rescope again: the chain root is still the first token's audit id
    let (status, _, body) = app
        .post_auth(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": scoped.expect("t")}}, "scope": {"system": {"all": true}}}}), "")
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["token"]["audit_ids"][1], root);
    assert_eq!(body["token"]["expires_at"], original["expires_at"]);
    // system -> project is refused
    let (_, system, _) = app
        .password_token("admin", ADMIN_PASSWORD, json!({"system": {"all": true}}))
        .await;
    let (status, _, _) = app
        .post_auth(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": system.expect("t")}}, "scope": {"project": {"id": app.admin_project_id}}}}), "")
        .await;
    assert_eq!(status, 403);
    // an expired token cannot be rescoped, allow_expired or not
    app.clock.advance(3600);
    let (status, _, body) = app
        .post_auth(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}}, "scope": {"project": {"id": app.admin_project_id}}}}), "?allow_expired=1")
        .await;
    assert_eq!((status, message(&body)), (404, "Failed to validate token"));
}

async fn allow_expired_window(app: TestApp) {
    let (_, demo, _) = app.member_with_token("member").await;
    let (_, other, _) = app.member_with_token("member").await;
    // expire the demo token
    app.clock.advance(3601);
    let admin = app.admin_token().await;
    let system_admin = app.system_admin_token().await;
    let (_, service, _) = app.member_with_token("service").await;
    let (_, fresh_other, _) = app.member_with_token("member").await;

    let (status, body) = app.validate(&admin, &demo, "").await;
    assert_eq!((status, message(&body)), (404, "Failed to validate token"));
    for (caller, q) in [
        (&admin, "?allow_expired=1"),
        (&system_admin, "?allow_expired=true&nocatalog"),
        (&service, "?allow_expired=yes"),
    ] {
        let (status, body) = app.validate(caller, &demo, q).await;
        assert_eq!(status, 200, "{q}: {body}");
        let expires =
            chrono::DateTime::parse_from_rfc3339(body["token"]["expires_at"].as_str().expect("s"))
                .expect("t");
        assert!(expires < app.clock.now(), "the body keeps the past expiry");
    }
    let (status, _) = app.validate(&service, &demo, "?allow_expired=0").await;
    assert_eq!(status, 404);
    let (status, _, _) = app
        .token_call(Method::HEAD, Some(&admin), Some(&demo), "?allow_expired=1")
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = app
        .token_call(Method::HEAD, Some(&admin), Some(&demo), "")
        .await;
    assert_eq!(status, 404);
    // a non-privileged caller: 404 without allow_expired (subject resolved first), 403 with it
    let (status, _) = app.validate(&fresh_other, &demo, "").await;
    assert_eq!(status, 404);
    let (status, _) = app.validate(&fresh_other, &demo, "?allow_expired=1").await;
    assert_eq!(status, 403);
    // an expired caller is 401 even with allow_expired
    let (status, headers, _) = app
        .token_call(
            Method::GET,
            Some(&other),
            Some(&fresh_other),
            "?allow_expired=1",
        )
        .await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("WWW-Authenticate"));
    // an expired token cannot be revoked
    let (status, _, body) = app
        .token_call(
            Method::DELETE,
            Some(&admin),
            Some(&demo),
            "?allow_expired=1",
        )
        .await;
    assert_eq!((status, message(&body)), (404, "Failed to validate token"));

    // past the window: 404 again (default window 172800 s)
    app.clock.advance(172_800);
    let admin = app.admin_token().await;
    let (status, body) = app.validate(&admin, &demo, "?allow_expired=1").await;
    assert_eq!((status, message(&body)), (404, "Failed to validate token"));
}

async fn revoke_and_cascade(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, demo, project_id) = app.member_with_token("member").await;
    let (status, _, _) = app
        .token_call(Method::DELETE, Some(&demo), Some(&demo), "")
        .await;
    assert_eq!(status, 204, "a user revokes its own token");
    let (status, body) = app.validate(&admin, &demo, "").await;
    assert_eq!((status, message(&body)), (404, "Failed to validate token"));
    let (status, body) = app.validate(&admin, &demo, "?allow_expired=1").await;
    assert_eq!((status, message(&body)), (404, "Failed to validate token"));
    let (status, _, _) = app
        .token_call(Method::DELETE, Some(&admin), Some(&demo), "")
        .await;
    assert_eq!(status, 404, "already revoked");
    let (status, _, _) = app
        .token_call(Method::GET, Some(&demo), Some(&admin), "")
        .await;
    assert_eq!(status, 401, "a revoked caller is anonymous");

    // cascade: revoking the unscoped parent revokes what was rescoped from it
    let (member, _, _) = app.member_with_token("member").await;
    let rescope = |parent: String| json!({"auth": {"identity": {"methods": ["token"], "token": {"id": parent}}, "scope": {"project": {"id": project_id}}}});
    app.grant(&member.user_id, TargetKind::Project, &project_id, "member")
        .await;
    let (_, parent, _) = app
        .password_token(&member.name, &member.password, json!("unscoped"))
        .await;
    let parent = parent.expect("t");
    let (status, child, body) = app.post_auth(rescope(parent.clone()), "").await;
    assert_eq!(status, 201, "{body}");
    let child = child.expect("t");
    let (status, _, _) = app
        .token_call(Method::DELETE, Some(&admin), Some(&parent), "")
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.validate(&admin, &child, "").await;
    assert_eq!(status, 404, "cascade revokes the rescoped child");

    // cascade=false leaves the child alone
    app.clock.advance(1);
    let (_, parent, _) = app
        .password_token(&member.name, &member.password, json!("unscoped"))
        .await;
    let parent = parent.expect("t");
    let (_, child, _) = app.post_auth(rescope(parent.clone()), "").await;
    let child = child.expect("t");
    let (status, _, _) = app
        .token_call(
            Method::DELETE,
            Some(&admin),
            Some(&parent),
            "?cascade=false",
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.validate(&admin, &parent, "").await;
    assert_eq!(status, 404);
    let (status, _) = app.validate(&admin, &child, "").await;
    assert_eq!(status, 200);

    // someone else's token: 403
    let (_, other, _) = app.member_with_token("member").await;
    let (status, _, body) = app
        .token_call(Method::DELETE, Some(&other), Some(&child), "")
        .await;
    assert_eq!(
        (status, message(&body)),
        (
            403,
            "You are not authorized to perform the requested action: identity:revoke_token."
        )
    );
}

async fn revoked_token_never_revives(app: TestApp) {
    let (_, demo, _) = app.member_with_token("member").await;
    let (status, _, _) = app
        .token_call(Method::DELETE, Some(&demo), Some(&demo), "")
        .await;
    assert_eq!(status, 204);
    // past expiration + 1800 s (where Python Keystone prunes) but inside the window
    app.clock.advance(3600 + 1800 + 600);
    let pruned = app.state.revoke.prune().await.expect("prune");
    assert_eq!(
        pruned, 0,
        "events must outlive expiration + allow_expired_window"
    );
    let admin = app.admin_token().await;
    let (status, body) = app.validate(&admin, &demo, "?allow_expired=1").await;
    assert_eq!((status, message(&body)), (404, "Failed to validate token"));
    // once no token it revokes can be accepted, the event goes
    app.clock.advance(172_800 + 1800);
    assert!(app.state.revoke.prune().await.expect("prune") >= 2);
    let admin = app.admin_token().await;
    let (status, _) = app.validate(&admin, &demo, "?allow_expired=1").await;
    assert_eq!(status, 404, "and the token is past its window anyway");
}

async fn live_state_is_rechecked(app: TestApp) {
    let admin = app.admin_token().await;
    // project disabled
    let (_, demo, project_id) = app.member_with_token("member").await;
    let mut project = app
        .store
        .get_project(&project_id)
        .await
        .expect("p")
        .expect("p");
    project.enabled = false;
    app.store.update_project(&project).await.expect("disable");
    let (status, body) = app.validate(&admin, &demo, "").await;
    assert_eq!(status, 404);
    assert_eq!(
        message(&body),
        format!("Unable to validate token because project {project_id} is disabled")
    );
    project.enabled = true;
    app.store.update_project(&project).await.expect("enable");
    let (status, _) = app.validate(&admin, &demo, "").await;
    assert_eq!(status, 200);
    // role removed: no roles left on the scope
    let (member, demo, project_id) = app.member_with_token("member").await;
    app.ungrant(&member.user_id, TargetKind::Project, &project_id, "member")
        .await;
    let (status, body) = app.validate(&admin, &demo, "").await;
    assert_eq!(
        (status, message(&body).to_string()),
        (404, format!("Could not find token: {demo}."))
    );
    // user disabled (revocation event)
    let (member, demo, _) = app.member_with_token("member").await;
    let mut user = app
        .state
        .identity
        .get_user(&member.user_id)
        .await
        .expect("u");
    user.enabled = false;
    app.state
        .identity
        .update_user(&user)
        .await
        .expect("disable");
    let (status, body) = app.validate(&admin, &demo, "").await;
    assert_eq!((status, message(&body)), (404, "Failed to validate token"));
    let (status, _, _) = app
        .password_token(&member.name, &member.password, json!("unscoped"))
        .await;
    assert_eq!(status, 401);
    // user deleted
    let (member, demo, _) = app.member_with_token("member").await;
    app.state
        .identity
        .delete_user(&member.user_id)
        .await
        .expect("delete");
    let (status, _) = app.validate(&admin, &demo, "").await;
    assert_eq!(status, 404);
    // project deleted
    let (_, demo, project_id) = app.member_with_token("member").await;
    app.store.delete_project(&project_id).await.expect("delete");
    let (status, body) = app.validate(&admin, &demo, "").await;
    assert_eq!(
        (status, message(&body).to_string()),
        (404, format!("Could not find project: {project_id}."))
    );
}

async fn cached_validations_follow_writes(app: TestApp) {
    let admin = app.admin_token().await;
    let (member, demo, project_id) = app.member_with_token("member").await;
    for _ in 0..2 {
        let (status, body) = app.validate(&admin, &demo, "").await;
        assert_eq!(status, 200);
        assert_eq!(role_names(&body), vec!["member", "reader"]);
    }
    // a new grant shows in the very next validation of the same token
    app.grant(&member.user_id, TargetKind::Project, &project_id, "manager")
        .await;
    let (_, body) = app.validate(&admin, &demo, "").await;
    assert_eq!(role_names(&body), vec!["manager", "member", "reader"]);
    // and so does a new endpoint in its catalog
    let before = body["token"]["catalog"].to_string();
    let service = keystone_rs::model::Service {
        id: crate::helpers::id(),
        service_type: "volumev3".into(),
        name: "cinder".into(),
        description: String::new(),
        enabled: true,
        extra: Default::default(),
    };
    app.store.create_service(&service).await.expect("service");
    let (_, body) = app.validate(&admin, &demo, "").await;
    assert_ne!(body["token"]["catalog"].to_string(), before);
    assert!(body["token"]["catalog"]
        .as_array()
        .expect("catalog")
        .iter()
        .any(|s| s["type"] == "volumev3"));
    // nocatalog is its own cached body
    let (_, body) = app.validate(&admin, &demo, "?nocatalog").await;
    assert!(body["token"].get("catalog").is_none());
}

async fn disabled_domain_fails_its_tokens(app: TestApp) {
    let store = &app.store;
    let domain = keystone_rs::model::Domain {
        id: crate::helpers::id(),
        name: "d2".into(),
        description: String::new(),
        enabled: true,
        extra: Default::default(),
    };
    store.create_domain(&domain).await.expect("domain");
    let project_id = app.create_project("in-d2", &domain.id).await;
    let (member, _, _) = app.member_with_token("member").await;
    app.grant(&member.user_id, TargetKind::Project, &project_id, "member")
        .await;
    let (status, token, body) = app
        .password_token(
            &member.name,
            &member.password,
            json!({"project": {"name": "in-d2", "domain": {"name": "d2"}}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = token.expect("t");
    let admin = app.admin_token().await;
    let mut disabled = domain.clone();
    disabled.enabled = false;
    store.update_domain(&disabled).await.expect("disable");
    let (status, body) = app.validate(&admin, &token, "").await;
    assert_eq!(
        (status, message(&body).to_string()),
        (
            404,
            format!(
                "Unable to validate token because domain {} is disabled",
                domain.id
            )
        )
    );
    let (status, _, _) = app
        .password_token(
            &member.name,
            &member.password,
            json!({"project": {"id": project_id}}),
        )
        .await;
    assert_eq!(status, 401);
}

async fn password_change_revokes_same_second(app: TestApp) {
    app.clock.freeze();
    let admin = app.admin_token().await;
    let (member, demo, _) = app.member_with_token("member").await;
    // Start at the top of a second so the "same second" token below is issued in
    // the event's second even though two password checks run in between.
    while app.clock.now().timestamp_subsec_millis() > 50 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    app.state
        .identity
        .set_password(&member.user_id, "n3w-pass")
        .await
        .expect("set");
    let (status, _) = app.validate(&admin, &demo, "").await;
    assert_eq!(status, 404);
    let (status, _, _) = app
        .password_token(&member.name, &member.password, json!("unscoped"))
        .await;
    assert_eq!(status, 401, "old password refused");
    // a token issued in the same second as the event is revoked; one second later it is not
    let (status, same_second, _) = app
        .password_token(&member.name, "n3w-pass", json!("unscoped"))
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .validate(&admin, same_second.as_deref().expect("t"), "")
        .await;
    assert_eq!(status, 404);
    app.clock.advance(1);
    let admin = app.admin_token().await;
    let (_, next_second, _) = app
        .password_token(&member.name, "n3w-pass", json!("unscoped"))
        .await;
    let (status, _) = app
        .validate(&admin, next_second.as_deref().expect("t"), "")
        .await;
    assert_eq!(status, 200);
}

async fn token_bodies_keep_keystone_key_order(app: TestApp) {
    fn keys(v: &Value) -> Vec<String> {
        v.as_object().expect("object").keys().cloned().collect()
    }
    let head = ["methods", "user", "audit_ids", "expires_at", "issued_at"];
    let with =
        |rest: &[&str]| -> Vec<String> { head.iter().chain(rest).map(|k| k.to_string()).collect() };
    let admin = app.admin_token().await;
    let system = app.system_admin_token().await;
    let (member, project_token, _) = app.member_with_token("member").await;
    app.grant(&member.user_id, TargetKind::Domain, "default", "reader")
        .await;
    let (status, domain_token, body) = app
        .password_token(
            &member.name,
            &member.password,
            json!({"domain": {"id": "default"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // The issue response and the validation of the same token render alike.
    assert_eq!(keys(&body["token"]), with(&["domain", "roles", "catalog"]));
    let (status, unscoped, _) = app
        .password_token(&member.name, &member.password, json!("unscoped"))
        .await;
    assert_eq!(status, 201);
    let cases = [
        (
            project_token,
            with(&["project", "is_domain", "roles", "catalog"]),
        ),
        (system, with(&["roles", "system", "catalog"])),
        (
            domain_token.expect("token"),
            with(&["domain", "roles", "catalog"]),
        ),
    ];
    for (subject, expected) in &cases {
        let (status, body) = app.validate(&admin, subject, "").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(&keys(&body["token"]), expected);
        assert_eq!(
            keys(&body["token"]["user"]),
            ["domain", "id", "name", "password_expires_at"]
        );
        assert!(body["token"]["user"]["password_expires_at"].is_null());
        let (_, nocatalog) = app.validate(&admin, subject, "?nocatalog").await;
        assert_eq!(&keys(&nocatalog["token"]), &expected[..expected.len() - 1]);
    }
    let (status, body) = app.validate(&admin, &unscoped.expect("token"), "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        keys(&body["token"]),
        with(&[]),
        "an unscoped token has no catalog"
    );
    let (_, project_body) = app.validate(&admin, &cases[0].0, "").await;
    assert_eq!(
        keys(&project_body["token"]["project"]),
        ["domain", "id", "name"]
    );
    assert_eq!(keys(&project_body["token"]["roles"][0]), ["id", "name"]);
    assert_eq!(project_body["token"]["is_domain"], json!(false));
    assert_eq!(project_body["token"]["system"], Value::Null);
    let (_, system_body) = app.validate(&admin, &cases[1].0, "").await;
    assert_eq!(system_body["token"]["system"], json!({"all": true}));
}

async fn key_rotation_keeps_tokens_until_purged(app: TestApp) {
    // Keystone's purge (SPEC 1.4): the repository keeps the staged key plus
    // max_active_keys - 1 others, so the key that was primary when a token was
    // issued survives max_active_keys - 2 rotations and is purged by the next.
    let (_, demo, _) = app.member_with_token("member").await;
    let max = app.keys.max_active_keys();
    assert!(max >= 2);
    for _ in 0..max - 2 {
        app.keys.rotate().expect("rotate");
    }
    // No waiting: a rotation is visible to the very next request, as in Keystone.
    let admin = app.admin_token().await;
    let (status, body) = app.validate(&admin, &demo, "").await;
    assert_eq!(status, 200, "{body}");
    // a token issued with the new primary survives the next rotation too
    let (status, _) = app.validate(&admin, &admin, "").await;
    assert_eq!(status, 200);
    app.keys.rotate().expect("rotate");
    let (status, body) = app.validate(&admin, &demo, "").await;
    assert_eq!(
        (status, message(&body)),
        (404, "Could not recognize Fernet token")
    );
    let (status, _) = app.validate(&admin, &admin, "").await;
    assert_eq!(status, 200, "the caller's key is still there");
}

/// Keystone reads the key repository on every request; so must we, in effect: a
/// token issued right after `fernet rotate` is encrypted with the new primary, and
/// validates at once.
async fn a_rotation_is_used_by_the_very_next_issue(app: TestApp) {
    for _ in 0..3 {
        app.keys.rotate().expect("rotate");
        let (status, token, body) = app
            .post_auth(
                json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}}}}),
                "",
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let token = token.expect("X-Subject-Token");
        let primary = app.keys.load().expect("keys").remove(0);
        let padded = format!("{token}{}", "=".repeat((4 - token.len() % 4) % 4));
        assert!(
            primary.decrypt(&padded).is_ok(),
            "issued with the primary now on disk"
        );
        let (status, body) = app.validate(&token, &token, "").await;
        assert_eq!(status, 200, "{body}");
    }
}

async fn os_revoke_events(app: TestApp) {
    let admin = app.admin_token().await;
    let (member, demo, _) = app.member_with_token("member").await;
    let before = app.clock.now();
    let (status, _, _) = app
        .token_call(Method::DELETE, Some(&demo), Some(&demo), "")
        .await;
    assert_eq!(status, 204);
    let r = app
        .client
        .get(app.url("/v3/OS-REVOKE/events"))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("json");
    let events = body["events"].as_array().expect("events");
    let audit = events
        .iter()
        .find(|e| e.get("audit_id").is_some())
        .expect("audit event");
    assert!(
        events
            .iter()
            .any(|e| e.get("audit_chain_id") == audit.get("audit_id")),
        "cascade event"
    );
    assert!(is_keystone_time(&audit["issued_before"]) && is_keystone_time(&audit["revoked_at"]));
    assert_eq!(
        body["links"]["self"],
        format!("{}/v3/OS-REVOKE/events", app.address)
    );
    // since is exclusive
    let since = (before - chrono::Duration::seconds(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let r = app
        .client
        .get(app.url(&format!("/v3/OS-REVOKE/events?since={since}")))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("get");
    let body: Value = r.json().await.expect("json");
    assert!(!body["events"].as_array().expect("events").is_empty());
    let future = (app.clock.now() + chrono::Duration::seconds(10))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let r = app
        .client
        .get(app.url(&format!("/v3/OS-REVOKE/events?since={future}")))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("get");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["events"], json!([]));
    let r = app
        .client
        .get(app.url("/v3/OS-REVOKE/events?since=yesterday"))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 400);
    // policy: a plain member may not list
    let (_, other, _) = app.member_with_token("member").await;
    let r = app
        .client
        .get(app.url("/v3/OS-REVOKE/events"))
        .header("X-Auth-Token", &other)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 403);
    let _ = member;
}

async fn auth_listings(app: TestApp) {
    let (member, demo, project_id) = app.member_with_token("member").await;
    let r = app
        .client
        .get(app.url("/v3/auth/projects"))
        .header("X-Auth-Token", &demo)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("json");
    let ids: Vec<&str> = body["projects"]
        .as_array()
        .expect("projects")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, vec![project_id.as_str()]);
    let r = app
        .client
        .get(app.url("/v3/auth/catalog"))
        .header("X-Auth-Token", &demo)
        .send()
        .await
        .expect("get");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["catalog"][0]["type"], "identity");
    let r = app
        .client
        .get(app.url("/v3/auth/system"))
        .header("X-Auth-Token", &demo)
        .send()
        .await
        .expect("get");
    assert_eq!(r.json::<Value>().await.expect("json")["system"], json!([]));
    let admin = app.admin_token().await;
    let r = app
        .client
        .get(app.url("/v3/auth/system"))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.json::<Value>().await.expect("json")["system"],
        json!([{"all": true}])
    );
    let r = app
        .client
        .get(app.url("/v3/auth/domains"))
        .header("X-Auth-Token", &demo)
        .send()
        .await
        .expect("get");
    assert_eq!(r.json::<Value>().await.expect("json")["domains"], json!([]));
    let (_, unscoped, _) = app
        .password_token(&member.name, &member.password, json!("unscoped"))
        .await;
    let r = app
        .client
        .get(app.url("/v3/auth/catalog"))
        .header("X-Auth-Token", unscoped.expect("t"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 403);
    let r = app
        .client
        .get(app.url("/v3/auth/projects"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 401);
    // A domain role lists the domain; an inherited one (OS-INHERIT) lists every
    // project of the domain, which the user can indeed scope to.
    app.grant(&member.user_id, TargetKind::Domain, "default", "reader")
        .await;
    let r = app
        .client
        .get(app.url("/v3/auth/domains"))
        .header("X-Auth-Token", &demo)
        .send()
        .await
        .expect("get");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["domains"][0]["id"], "default");
    assert_eq!(
        body["domains"][0]["links"]["self"],
        format!("{}/v3/domains/default", app.address)
    );
    let inherited_project = app.create_project("inherited-here", "default").await;
    let reader = app.role_id("reader").await;
    app.store
        .add_assignment(&keystone_rs::model::Assignment {
            actor: keystone_rs::model::ActorKind::User,
            actor_id: member.user_id.clone(),
            target: TargetKind::Domain,
            target_id: "default".into(),
            role_id: reader,
            inherited: true,
        })
        .await
        .expect("inherited grant");
    let r = app
        .client
        .get(app.url("/v3/auth/projects"))
        .header("X-Auth-Token", &demo)
        .send()
        .await
        .expect("get");
    let body: Value = r.json().await.expect("json");
    let ids: Vec<&str> = body["projects"]
        .as_array()
        .expect("projects")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert!(ids.contains(&inherited_project.as_str()), "{ids:?}");
    let (status, _, body) = app
        .password_token(
            &member.name,
            &member.password,
            json!({"project": {"id": inherited_project}}),
        )
        .await;
    assert_eq!(status, 201, "a listed project can be scoped to: {body}");
}

both_backends!(
    discovery_root_and_v3,
    issue_project_token_with_catalog,
    issue_every_scope,
    default_project_auto_scope,
    bad_credentials_are_indistinguishable,
    malformed_requests_are_4xx_json,
    validate_check_and_policy,
    rescope_keeps_expiry_and_audit_chain,
    allow_expired_window,
    revoke_and_cascade,
    revoked_token_never_revives,
    live_state_is_rechecked,
    cached_validations_follow_writes,
    disabled_domain_fails_its_tokens,
    password_change_revokes_same_second,
    token_bodies_keep_keystone_key_order,
    key_rotation_keeps_tokens_until_purged,
    a_rotation_is_used_by_the_very_next_issue,
    os_revoke_events,
    auth_listings,
);
