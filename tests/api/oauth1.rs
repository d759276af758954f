//! OS-OAUTH1 over HTTP: consumers, the request token → authorize → access token
//! flow signed as oauthlib signs (HMAC-SHA1, an independent signer below), the
//! `oauth1` auth method and its tokens (the `OS-OAUTH1` section, payload version 7,
//! delegated), the access-token routes, and every way such a token stops validating.

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha1::Sha1;

use crate::both_backends;
use crate::helpers::{call, message, Member, TestApp};
use keystone_rs::model::TargetKind;

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn esc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Default)]
struct Sign<'a> {
    consumer: (&'a str, &'a str),
    token: Option<(&'a str, &'a str)>,
    verifier: Option<&'a str>,
    callback: Option<&'a str>,
    /// Seconds added to the clock for `oauth_timestamp`.
    skew: i64,
    /// Sign with this consumer secret instead.
    wrong_secret: Option<&'a str>,
}

/// The `Authorization` header oauthlib's Client makes for a POST to `url`.
fn authorization(app: &TestApp, url: &str, s: &Sign<'_>) -> String {
    let ts = (app.clock.now().timestamp() + s.skew).to_string();
    let nonce = format!("{}", uuid::Uuid::new_v4().as_u128() % 10u128.pow(20));
    let mut params: Vec<(String, String)> = vec![
        ("oauth_nonce".into(), nonce),
        ("oauth_timestamp".into(), ts),
        ("oauth_version".into(), "1.0".into()),
        ("oauth_signature_method".into(), "HMAC-SHA1".into()),
        ("oauth_consumer_key".into(), s.consumer.0.into()),
    ];
    if let Some((key, _)) = s.token {
        params.push(("oauth_token".into(), key.into()));
    }
    if let Some(v) = s.verifier {
        params.push(("oauth_verifier".into(), v.into()));
    }
    if let Some(c) = s.callback {
        params.push(("oauth_callback".into(), c.into()));
    }
    let mut sorted: Vec<(String, String)> = params.iter().map(|(k, v)| (esc(k), esc(v))).collect();
    sorted.sort();
    let normalized = sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let base = format!("POST&{}&{}", esc(url), esc(&normalized));
    let key = format!(
        "{}&{}",
        esc(s.wrong_secret.unwrap_or(s.consumer.1)),
        esc(s.token.map_or("", |t| t.1))
    );
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("hmac");
    mac.update(base.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    params.push(("oauth_signature".into(), sig));
    let fields: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
        .collect();
    format!("OAuth {}", fields.join(", "))
}

/// POST with OAuth headers; (status, content type, body text).
async fn oauth_post(
    app: &TestApp,
    path: &str,
    auth: Option<String>,
    project: Option<&str>,
) -> (u16, String, String) {
    let mut rb = app.client.post(app.url(path));
    if let Some(a) = auth {
        rb = rb.header("Authorization", a);
    }
    if let Some(p) = project {
        rb = rb.header("Requested-Project-Id", p);
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ct, r.text().await.expect("body"))
}

fn form(body: &str) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))
}

const REQUEST: &str = "/v3/OS-OAUTH1/request_token";
const ACCESS: &str = "/v3/OS-OAUTH1/access_token";

async fn new_consumer(app: &TestApp, admin: &str) -> (String, String) {
    let (s, b) = call(
        app,
        Method::POST,
        "/v3/OS-OAUTH1/consumers",
        Some(admin),
        Some(json!({"consumer": {"description": "tests"}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    (
        b["consumer"]["id"].as_str().expect("id").to_string(),
        b["consumer"]["secret"]
            .as_str()
            .expect("secret")
            .to_string(),
    )
}

/// A user with `admin` and `reader` on a fresh project (admin_required lets them
/// authorize request tokens) and their project token.
async fn authorizer(app: &TestApp) -> (Member, String, String) {
    let (m, _, project_id) = app.member_with_token("admin").await;
    app.grant(&m.user_id, TargetKind::Project, &project_id, "reader")
        .await;
    let (s, token, b) = app
        .password_token(&m.name, &m.password, json!({"project": {"id": project_id}}))
        .await;
    assert_eq!(s, 201, "{b}");
    (m, token.expect("token"), project_id)
}

async fn request_token(
    app: &TestApp,
    consumer: (&str, &str),
    project: &str,
) -> (String, String, String) {
    let auth = authorization(
        app,
        &app.url(REQUEST),
        &Sign {
            consumer,
            callback: Some("oob"),
            ..Default::default()
        },
    );
    let (s, ct, body) = oauth_post(app, REQUEST, Some(auth), Some(project)).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(ct, "application/x-www-form-urlencoded");
    let f = form(&body);
    (
        f["oauth_token"].clone(),
        f["oauth_token_secret"].clone(),
        f["oauth_expires_at"].clone(),
    )
}

async fn authorize(app: &TestApp, token: &str, request_id: &str, roles: Value) -> (u16, Value) {
    call(
        app,
        Method::PUT,
        &format!("/v3/OS-OAUTH1/authorize/{request_id}"),
        Some(token),
        Some(json!({ "roles": roles })),
    )
    .await
}

async fn access_token(
    app: &TestApp,
    consumer: (&str, &str),
    request: (&str, &str),
    verifier: &str,
) -> (u16, String) {
    let auth = authorization(
        app,
        &app.url(ACCESS),
        &Sign {
            consumer,
            token: Some(request),
            verifier: Some(verifier),
            ..Default::default()
        },
    );
    let (s, _, body) = oauth_post(app, ACCESS, Some(auth), None).await;
    (s, body)
}

async fn oauth_auth(
    app: &TestApp,
    consumer: (&str, &str),
    access: (&str, &str),
) -> (u16, Option<String>, Value) {
    let url = app.url("/v3/auth/tokens");
    let auth = authorization(
        app,
        &url,
        &Sign {
            consumer,
            token: Some(access),
            ..Default::default()
        },
    );
    let r = app
        .client
        .post(url)
        .header("Authorization", auth)
        .json(&json!({"auth": {"identity": {"methods": ["oauth1"], "oauth1": {}}}}))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let token = r
        .headers()
        .get("X-Subject-Token")
        .map(|v| v.to_str().expect("ascii").to_string());
    (status, token, r.json().await.unwrap_or(Value::Null))
}

struct Flow {
    user: Member,
    user_token: String,
    project_id: String,
    consumer: (String, String),
    access: (String, String),
}

/// Consumer → request token → authorize with the `reader` role → access token.
async fn flow(app: &TestApp) -> Flow {
    let admin = app.admin_token().await;
    let consumer = new_consumer(app, &admin).await;
    let (user, user_token, project_id) = authorizer(app).await;
    let c = (consumer.0.as_str(), consumer.1.as_str());
    let (rid, rsecret, _) = request_token(app, c, &project_id).await;
    let reader = app.role_id("reader").await;
    let (s, b) = authorize(app, &user_token, &rid, json!([{ "id": reader }])).await;
    assert_eq!(s, 200, "{b}");
    let verifier = b["token"]["oauth_verifier"].as_str().expect("verifier");
    let (s, body) = access_token(app, c, (&rid, &rsecret), verifier).await;
    assert_eq!(s, 201, "{body}");
    let f = form(&body);
    Flow {
        user,
        user_token,
        project_id,
        access: (f["oauth_token"].clone(), f["oauth_token_secret"].clone()),
        consumer,
    }
}

impl Flow {
    fn c(&self) -> (&str, &str) {
        (&self.consumer.0, &self.consumer.1)
    }
    fn a(&self) -> (&str, &str) {
        (&self.access.0, &self.access.1)
    }
}

async fn consumers_crud(app: TestApp) {
    let admin = app.admin_token().await;
    let (s, b) = call(
        &app,
        Method::POST,
        "/v3/OS-OAUTH1/consumers",
        Some(&admin),
        Some(json!({"consumer": {"description": "first", "colour": "blue", "secret": "mine"}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let c = &b["consumer"];
    let id = c["id"].as_str().unwrap().to_string();
    let secret = c["secret"].as_str().unwrap();
    // Keystone makes the secret (a uuid hex), whatever the body says.
    assert_eq!(secret.len(), 32, "{secret}");
    assert_ne!(secret, "mine");
    assert_eq!(c["description"], "first");
    assert_eq!(c["colour"], "blue");
    assert!(c["links"]["self"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v3/OS-OAUTH1/consumers/{id}")));
    let path = format!("/v3/OS-OAUTH1/consumers/{id}");
    let (s, b) = call(&app, Method::GET, &path, Some(&admin), None).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["consumer"].get("secret").is_none(), "{b}");
    assert_eq!(b["consumer"]["colour"], "blue");
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/OS-OAUTH1/consumers",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let listed = b["consumers"].as_array().unwrap();
    assert!(listed.iter().any(|c| c["id"] == id.as_str()), "{b}");
    assert!(listed.iter().all(|c| c.get("secret").is_none()), "{b}");
    // PATCH: the description; never the secret; something to change.
    let (s, b) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"consumer": {"description": "second"}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["consumer"]["description"], "second");
    assert_eq!(b["consumer"]["colour"], "blue");
    assert!(b["consumer"].get("secret").is_none());
    for bad in [
        json!({"consumer": {"secret": "x"}}),
        json!({"consumer": {}}),
        json!({"consumer": {"description": 7}}),
        json!({"consumer": {"id": "other"}}),
    ] {
        let (s, b) = call(&app, Method::PATCH, &path, Some(&admin), Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad} {b}");
    }
    // A project member may not manage consumers.
    let (_, member, _) = app.member_with_token("member").await;
    let (s, _) = call(&app, Method::GET, &path, Some(&member), None).await;
    assert_eq!(s, 403);
    let (s, _) = call(
        &app,
        Method::POST,
        "/v3/OS-OAUTH1/consumers",
        Some(&member),
        Some(json!({"consumer": {}})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = call(&app, Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (s, b) = call(&app, Method::GET, &path, Some(&admin), None).await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(message(&b), "Consumer not found");
    let (s, _) = call(&app, Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(s, 404);
    // An empty body creates a consumer without a description.
    let (s, b) = call(
        &app,
        Method::POST,
        "/v3/OS-OAUTH1/consumers",
        Some(&admin),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["consumer"]["description"], Value::Null);
}

async fn full_flow(app: TestApp) {
    let f = flow(&app).await;
    let (s, token, b) = oauth_auth(&app, f.c(), f.a()).await;
    assert_eq!(s, 201, "{b}");
    let token = token.expect("token");
    let t = &b["token"];
    assert_eq!(t["methods"], json!(["oauth1"]));
    assert_eq!(t["user"]["id"], f.user.user_id.as_str());
    assert_eq!(t["project"]["id"], f.project_id.as_str());
    assert_eq!(
        t["OS-OAUTH1"],
        json!({"access_token_id": f.access.0, "consumer_id": f.consumer.0})
    );
    let names: Vec<&str> = t["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["reader"], "{t}");
    // It validates, with the same section.
    let admin = app.admin_token().await;
    let (s, v) = app.validate(&admin, &token, "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token"]["OS-OAUTH1"], t["OS-OAUTH1"]);
    assert_eq!(v["token"]["roles"], t["roles"]);
    // A delegated token: it cannot make another token or authorize request tokens.
    let (s, _, b) = app
        .post_auth(
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}}),
            "",
        )
        .await;
    assert_eq!(s, 403, "{b}");
    // The access-token routes (admin_required: the authorizing user is a project admin).
    let base = format!("/v3/users/{}/OS-OAUTH1/access_tokens", f.user.user_id);
    let (s, b) = call(&app, Method::GET, &base, Some(&f.user_token), None).await;
    assert_eq!(s, 200, "{b}");
    let listed = &b["access_tokens"][0];
    assert_eq!(listed["id"], f.access.0.as_str());
    assert_eq!(listed["consumer_id"], f.consumer.0.as_str());
    assert_eq!(listed["project_id"], f.project_id.as_str());
    assert_eq!(listed["authorizing_user_id"], f.user.user_id.as_str());
    assert!(listed.get("access_secret").is_none() && listed.get("role_ids").is_none());
    assert!(listed["links"]["roles"]
        .as_str()
        .unwrap()
        .ends_with("/roles"));
    let one = format!("{base}/{}", f.access.0);
    let (s, b) = call(&app, Method::GET, &one, Some(&f.user_token), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["access_token"]["id"], f.access.0.as_str());
    let reader = app.role_id("reader").await;
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("{one}/roles"),
        Some(&f.user_token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["roles"][0]["id"], reader.as_str());
    assert!(b["roles"][0].get("description").is_none(), "{b}");
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("{one}/roles/{reader}"),
        Some(&f.user_token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["role"]["name"], "reader");
    let admin_role = app.role_id("admin").await;
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("{one}/roles/{admin_role}"),
        Some(&f.user_token),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // The OAuth token may not manage access tokens.
    let (s, _) = call(&app, Method::GET, &base, Some(&token), None).await;
    assert_eq!(s, 403);
    // Deleting the access token ends its Keystone tokens.
    let (s, b) = call(&app, Method::DELETE, &one, Some(&f.user_token), None).await;
    assert_eq!(s, 204, "{b}");
    let (s, _) = app.validate(&admin, &token, "").await;
    assert_eq!(s, 404);
    let (s, _) = call(&app, Method::GET, &one, Some(&f.user_token), None).await;
    assert_eq!(s, 404);
    let (s, _, _) = oauth_auth(&app, f.c(), f.a()).await;
    assert_eq!(s, 404);
}

async fn consumer_deletion_and_role_loss(app: TestApp) {
    let f = flow(&app).await;
    let admin = app.admin_token().await;
    let (s, token, b) = oauth_auth(&app, f.c(), f.a()).await;
    assert_eq!(s, 201, "{b}");
    let token = token.expect("token");
    // The user losing the delegated role on the project (held directly and through
    // admin's implied roles): the token fails.
    for role in ["reader", "admin"] {
        app.ungrant(&f.user.user_id, TargetKind::Project, &f.project_id, role)
            .await;
    }
    let (s, _) = app.validate(&admin, &token, "").await;
    assert_eq!(s, 404);
    let (s, _, b) = oauth_auth(&app, f.c(), f.a()).await;
    assert_eq!(s, 401, "{b}");
    app.grant(
        &f.user.user_id,
        TargetKind::Project,
        &f.project_id,
        "reader",
    )
    .await;
    let (s, token, b) = oauth_auth(&app, f.c(), f.a()).await;
    assert_eq!(s, 201, "{b}");
    let token = token.expect("token");
    // Deleting the consumer: a revocation event and its access tokens are gone.
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/OS-OAUTH1/consumers/{}", f.consumer.0),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = app.validate(&admin, &token, "").await;
    assert_eq!(s, 404);
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/OS-REVOKE/events",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["OS-OAUTH1:consumer_id"] == f.consumer.0.as_str()),
        "{b}"
    );
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/users/{}/OS-OAUTH1/access_tokens", f.user.user_id),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["access_tokens"], json!([]));
}

async fn request_token_errors(app: TestApp) {
    let admin = app.admin_token().await;
    let (cid, csecret) = new_consumer(&app, &admin).await;
    let (_, _, project_id) = authorizer(&app).await;
    let url = app.url(REQUEST);
    let sign = |s: Sign<'_>| authorization(&app, &url, &s);
    let ok = || Sign {
        consumer: (&cid, &csecret),
        callback: Some("oob"),
        ..Default::default()
    };
    // No Authorization header: 400 (Keystone's is a 500).
    let (s, _, b) = oauth_post(&app, REQUEST, None, Some(&project_id)).await;
    assert_eq!(s, 400, "{b}");
    // No project header.
    let (s, _, b) = oauth_post(&app, REQUEST, Some(sign(ok())), None).await;
    assert_eq!(s, 400, "{b}");
    assert!(
        message(&json_of(&b)).contains("Requested-Project-Id"),
        "{b}"
    );
    // Unknown project, unknown consumer.
    let (s, _, b) = oauth_post(&app, REQUEST, Some(sign(ok())), Some("nope")).await;
    assert_eq!(s, 404, "{b}");
    let other = keystone_rs::model::new_id();
    let (s, _, b) = oauth_post(
        &app,
        REQUEST,
        Some(sign(Sign {
            consumer: (&other, "x"),
            callback: Some("oob"),
            ..Default::default()
        })),
        Some(&project_id),
    )
    .await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(message(&json_of(&b)), "Consumer not found");
    // A wrong secret: 401.
    let (s, _, b) = oauth_post(
        &app,
        REQUEST,
        Some(sign(Sign {
            wrong_secret: Some("not-it"),
            ..ok()
        })),
        Some(&project_id),
    )
    .await;
    assert_eq!(s, 401, "{b}");
    // oauthlib's checks: a stale timestamp, no callback.
    let (s, _, b) = oauth_post(
        &app,
        REQUEST,
        Some(sign(Sign {
            skew: -3600,
            ..ok()
        })),
        Some(&project_id),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(message(&json_of(&b)).starts_with("Validation failed with errors: invalid_request"));
    let (s, _, b) = oauth_post(
        &app,
        REQUEST,
        Some(sign(Sign {
            callback: None,
            ..ok()
        })),
        Some(&project_id),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    // A garbage header is a 4xx, never a 500.
    for h in [
        "OAuth",
        "OAuth ,,,",
        "OAuth a",
        "OAuth oauth_consumer_key=\"%zz\"",
    ] {
        let (s, _, b) = oauth_post(&app, REQUEST, Some(h.into()), Some(&project_id)).await;
        assert!((400..500).contains(&s), "{h}: {s} {b}");
    }
    // GET is not allowed.
    let (s, _) = call(&app, Method::GET, REQUEST, None, None).await;
    assert_eq!(s, 405);
}

async fn authorize_and_exchange_errors(app: TestApp) {
    let admin = app.admin_token().await;
    let (cid, csecret) = new_consumer(&app, &admin).await;
    let c = (cid.as_str(), csecret.as_str());
    let (_, user_token, project_id) = authorizer(&app).await;
    let (rid, rsecret, expires) = request_token(&app, c, &project_id).await;
    assert!(expires.ends_with('Z'), "{expires}");
    // A role the user does not hold on the project.
    let other = app.role_id("oauth-unheld").await;
    let (s, b) = authorize(&app, &user_token, &rid, json!([{ "id": other }])).await;
    assert_eq!(s, 401, "{b}");
    // Bad bodies.
    for bad in [
        json!("x"),
        json!([{}]),
        json!([{"id": "a", "name": "b"}]),
        json!([{"x": 1}]),
    ] {
        let (s, b) = authorize(&app, &user_token, &rid, bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {b}");
    }
    let (s, b) = authorize(&app, &user_token, "nope", json!([])).await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(message(&b), "Request token not found");
    // A project member may not authorize (admin_required).
    let (_, plain, _) = app.member_with_token("member").await;
    let (s, _) = authorize(&app, &plain, &rid, json!([])).await;
    assert_eq!(s, 403);
    // Exchanging before authorization: no verifier matches.
    let (s, b) = access_token(&app, c, (&rid, &rsecret), "abcdefgh").await;
    assert_eq!(s, 401, "{b}");
    let (s, b) = authorize(&app, &user_token, &rid, json!([{ "name": "reader" }])).await;
    assert_eq!(s, 200, "{b}");
    let verifier = b["token"]["oauth_verifier"].as_str().unwrap().to_string();
    assert_eq!(verifier.len(), 8);
    // Wrong verifier, wrong request-token secret, then the right one, then reuse.
    let (s, b) = access_token(&app, c, (&rid, &rsecret), "abcdefgh").await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(
        message(&json_of(&b)),
        "The request you have made requires authentication."
    );
    let (s, b) = access_token(&app, c, (&rid, "bad"), &verifier).await;
    assert_eq!(s, 401, "{b}");
    let (s, b) = access_token(&app, c, (&rid, &rsecret), &verifier).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = access_token(&app, c, (&rid, &rsecret), &verifier).await;
    assert_eq!(s, 404, "{b}");
    // Missing pieces of the access-token request.
    let (s, _, b) = oauth_post(&app, ACCESS, None, None).await;
    assert_eq!(s, 400, "{b}");
    let auth = authorization(
        &app,
        &app.url(ACCESS),
        &Sign {
            consumer: c,
            ..Default::default()
        },
    );
    let (s, _, b) = oauth_post(&app, ACCESS, Some(auth), None).await;
    assert_eq!(s, 400, "{b}");
    assert!(message(&json_of(&b)).contains("oauth_token"), "{b}");
}

async fn auth_method_errors(app: TestApp) {
    let f = flow(&app).await;
    // Signed with the wrong access secret, or a stale timestamp: 401.
    let (s, _, _) = oauth_auth(&app, f.c(), (&f.access.0, "wrong")).await;
    assert_eq!(s, 401);
    let (s, _, _) = oauth_auth(&app, (&f.consumer.0, "wrong"), f.a()).await;
    assert_eq!(s, 401);
    // No header at all.
    let (s, _, b) = app
        .post_auth(
            json!({"auth": {"identity": {"methods": ["oauth1"], "oauth1": {}}}}),
            "",
        )
        .await;
    assert_eq!(s, 400, "{b}");
    // An access token expired ([oauth1] access_token_duration).
    app.clock.advance(86400 + 1);
    let (s, _, b) = oauth_auth(&app, f.c(), f.a()).await;
    assert_eq!(s, 401, "{b}");
}

/// The access token's role implies another: the token carries both.
async fn implied_roles(app: TestApp) {
    let admin = app.admin_token().await;
    let (cid, csecret) = new_consumer(&app, &admin).await;
    let c = (cid.as_str(), csecret.as_str());
    let (user, user_token, project_id) = authorizer(&app).await;
    // admin implies member implies reader in the bootstrap; grant member explicitly too.
    app.grant(&user.user_id, TargetKind::Project, &project_id, "member")
        .await;
    let (rid, rsecret, _) = request_token(&app, c, &project_id).await;
    let member = app.role_id("member").await;
    let (s, b) = authorize(&app, &user_token, &rid, json!([{ "id": member }])).await;
    assert_eq!(s, 200, "{b}");
    let verifier = b["token"]["oauth_verifier"].as_str().unwrap().to_string();
    let (s, body) = access_token(&app, c, (&rid, &rsecret), &verifier).await;
    assert_eq!(s, 201, "{body}");
    let fa = form(&body);
    let (s, _, b) = oauth_auth(&app, c, (&fa["oauth_token"], &fa["oauth_token_secret"])).await;
    assert_eq!(s, 201, "{b}");
    let mut names: Vec<&str> = b["token"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert!(names.contains(&"member"), "{names:?}");
}

both_backends!(
    consumers_crud,
    full_flow,
    consumer_deletion_and_role_loss,
    request_token_errors,
    authorize_and_exchange_errors,
    auth_method_errors,
    implied_roles,
);
