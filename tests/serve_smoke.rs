//! Starts the real binary (`keystone-rs serve --bind 127.0.0.1:0`) and talks
//! HTTP to it: discovery, token issue, and an expired token accepted under
//! `allow_expired` with exactly one audit line in the server's log.

mod common;

use std::time::Duration;

use common::{field, Sandbox, Server};
use serde_json::{json, Value};

const PASSWORD: &str = "smoke-admin-secret";

fn password_auth(scope: Option<Value>) -> Value {
    let mut auth = json!({
        "identity": {
            "methods": ["password"],
            "password": {"user": {
                "name": "admin",
                "domain": {"id": "default"},
                "password": PASSWORD,
            }},
        },
    });
    if let Some(scope) = scope {
        auth["scope"] = scope;
    }
    json!({ "auth": auth })
}

/// POST /v3/auth/tokens; returns (X-Subject-Token, body).
async fn issue(client: &reqwest::Client, base: &str, scope: Option<Value>) -> (String, Value) {
    let r = client
        .post(format!("{base}/v3/auth/tokens"))
        .json(&password_auth(scope))
        .send()
        .await
        .expect("POST /v3/auth/tokens");
    assert_eq!(r.status().as_u16(), 201, "token issue");
    let token = r.headers()["X-Subject-Token"]
        .to_str()
        .expect("token header")
        .to_string();
    (token, r.json().await.expect("token body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_binary_serves_tokens_and_audits_allow_expired() {
    let sandbox = Sandbox::new(&[("token", "expiration", "2")]);
    sandbox.run_ok(&["db", "sync"]);
    sandbox.run_ok(&["fernet", "setup"]);
    sandbox.run_ok(&["bootstrap", "--bootstrap-password", PASSWORD]);
    let mut server = Server::start(&sandbox);
    let base = server.base_url();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    // Discovery.
    let r = client.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(r.status().as_u16(), 300);
    let body: Value = r.json().await.expect("versions");
    assert_eq!(body["versions"]["values"][0]["id"], "v3.14");
    let r = client
        .get(format!("{base}/v3"))
        .send()
        .await
        .expect("GET /v3");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("v3");
    assert_eq!(body["version"]["status"], "stable");
    assert_eq!(body["version"]["links"][0]["href"], format!("{base}/v3/"));

    // An admin token.
    let admin_scope = json!({"project": {"name": "admin", "domain": {"id": "default"}}});
    let (admin, body) = issue(&client, &base, Some(admin_scope.clone())).await;
    assert_eq!(body["token"]["project"]["name"], "admin");
    let admin_user_id = body["token"]["user"]["id"]
        .as_str()
        .expect("user id")
        .to_string();
    assert!(body["token"]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .any(|r| r["name"] == "admin"));

    // A second token, left to expire ([token] expiration = 2).
    let (subject, body) = issue(&client, &base, None).await;
    let subject_audit_id = body["token"]["audit_ids"][0]
        .as_str()
        .expect("audit id")
        .to_string();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The first admin token has expired too: get a fresh one to validate with.
    let (admin_now, _) = issue(&client, &base, Some(admin_scope)).await;
    let validate = |token: &str, query: &str| {
        client
            .get(format!("{base}/v3/auth/tokens{query}"))
            .header("X-Auth-Token", admin_now.as_str())
            .header("X-Subject-Token", token)
            .send()
    };
    let expired = validate(&subject, "").await.expect("validate");
    assert_eq!(
        expired.status().as_u16(),
        404,
        "expired without allow_expired"
    );
    let old_admin = validate(&admin, "").await.expect("validate");
    assert_eq!(
        old_admin.status().as_u16(),
        404,
        "the first admin token expired"
    );
    assert!(
        !server.stderr().contains("allow_expired_accepted"),
        "audit line without allow_expired:\n{}",
        server.stderr()
    );

    let accepted = validate(&subject, "?allow_expired=1")
        .await
        .expect("validate");
    assert_eq!(accepted.status().as_u16(), 200, "allow_expired=1");
    let body: Value = accepted.json().await.expect("body");
    assert_eq!(body["token"]["audit_ids"][0], subject_audit_id.as_str());

    // Exactly one audit line, naming the caller and the subject.
    let audit = server
        .wait_for_line(Duration::from_secs(10), |l| {
            l.contains("allow_expired_accepted")
        })
        .unwrap_or_else(|| panic!("no audit line; stderr:\n{}", server.stderr()));
    let audit_lines: Vec<String> = server
        .lines()
        .into_iter()
        .filter(|l| l.contains("allow_expired_accepted"))
        .collect();
    assert_eq!(audit_lines.len(), 1, "{audit_lines:#?}");
    assert!(audit.contains("keystone_rs::audit"), "{audit}");
    assert_eq!(
        field(&audit, "event"),
        Some("allow_expired_accepted"),
        "{audit}"
    );
    assert_eq!(
        field(&audit, "caller_user_id"),
        Some(admin_user_id.as_str()),
        "{audit}"
    );
    assert_eq!(
        field(&audit, "subject_audit_id"),
        Some(subject_audit_id.as_str()),
        "{audit}"
    );
    let past: i64 = field(&audit, "seconds_past_expiry")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("seconds_past_expiry in {audit}"));
    assert!((0..=60).contains(&past), "{audit}");
}
