use reqwest::Method;
use serde_json::json;

use crate::both_backends;
#[allow(unused_imports)]
use crate::helpers::{message, TestApp};

async fn a_peer_server_sees_revocations_within_two_seconds(app: TestApp) {
    let peer = app.spawn_peer().await;
    let admin = app.admin_token().await;
    let (_, demo, _) = app.member_with_token("member").await;
    let validate_on_peer = || async {
        app.client
            .get(format!("{peer}/v3/auth/tokens"))
            .header("X-Auth-Token", &admin)
            .header("X-Subject-Token", &demo)
            .send()
            .await
            .expect("peer request")
            .status()
            .as_u16()
    };
    assert_eq!(
        validate_on_peer().await,
        200,
        "the peer shares keys and database"
    );
    let (status, _, _) = app
        .token_call(Method::DELETE, Some(&admin), Some(&demo), "")
        .await;
    assert_eq!(status, 204);
    let started = std::time::Instant::now();
    loop {
        let status = validate_on_peer().await;
        if status == 404 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "peer still accepts a revoked token after 2 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // and a token issued by the peer validates here
    let r = app.client.post(format!("{peer}/v3/auth/tokens"))
        .json(&json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": crate::helpers::ADMIN_PASSWORD}}}}}))
        .send().await.expect("post");
    assert_eq!(r.status().as_u16(), 201);
    let from_peer = r.headers()["X-Subject-Token"]
        .to_str()
        .expect("t")
        .to_string();
    let (status, _) = app.validate(&admin, &from_peer, "").await;
    assert_eq!(status, 200);
}

both_backends!(a_peer_server_sees_revocations_within_two_seconds,);
