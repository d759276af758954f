//! /v3/credentials: CRUD, the owner/admin policy, blobs encrypted at rest with the
//! credential key repository, and the key rotation safety.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{call, message, TestApp};
use keystone_rs::credential::crypto::{key_hash, NULL_KEY};
use keystone_rs::credential::KeyRotation;

fn ec2_blob(access: &str, secret: &str) -> String {
    format!(r#"{{"access": "{access}", "secret": "{secret}"}}"#)
}

async fn create(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    call(
        app,
        Method::POST,
        "/v3/credentials",
        Some(token),
        Some(json!({ "credential": body })),
    )
    .await
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

async fn credentials_crud(app: TestApp) {
    let admin = app.admin_token().await;
    let (member, _, project) = app.member_with_token("member").await;
    let blob = ec2_blob("acc-1", "sec-1");
    let (s, b) = create(
        &app,
        &admin,
        json!({"user_id": member.user_id, "project_id": project, "type": "ec2", "blob": blob, "color": "red"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let c = &b["credential"];
    assert_eq!(c["id"], sha256_hex("acc-1"));
    assert_eq!(c["blob"], blob);
    assert_eq!(c["color"], "red");
    assert_eq!(c["project_id"], project.as_str());
    let id = c["id"].as_str().expect("id").to_string();
    assert!(c["links"]["self"]
        .as_str()
        .is_some_and(|l| l.ends_with(&format!("/v3/credentials/{id}"))));

    // At rest: encrypted, and with the null key until `credential setup`.
    let row = app
        .store
        .get_credential(&id)
        .await
        .expect("read")
        .expect("row");
    assert!(!row.encrypted_blob.contains("sec-1"));
    assert!(row.encrypted_blob.starts_with("gAAAAA"));
    assert_eq!(row.key_hash, key_hash(NULL_KEY));

    // The same access key again: 409.
    let (s, b) = create(
        &app,
        &admin,
        json!({"user_id": member.user_id, "project_id": project, "type": "ec2", "blob": blob}),
    )
    .await;
    assert_eq!(s, 409, "{b}");

    // Another type: a generated id, the blob kept verbatim.
    let (s, b) = create(
        &app,
        &admin,
        json!({"user_id": member.user_id, "type": "cert", "blob": "-----BEGIN é-----"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let cert = b["credential"]["id"].as_str().expect("id").to_string();
    assert_eq!(cert.len(), 32);
    assert_eq!(b["credential"]["project_id"], Value::Null);

    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/credentials/{cert}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["credential"]["blob"], "-----BEGIN é-----");

    // Filters.
    for (query, expected) in [
        (format!("?user_id={}", member.user_id), 2),
        (format!("?user_id={}&type=ec2", member.user_id), 1),
        ("?type=cert".to_string(), 1),
        ("?user_id=nobody".to_string(), 0),
    ] {
        let (s, b) = call(
            &app,
            Method::GET,
            &format!("/v3/credentials{query}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            b["credentials"].as_array().map(Vec::len),
            Some(expected),
            "{query}: {b}"
        );
    }

    // Update: only the blob; the id stays.
    let new_blob = ec2_blob("acc-2", "sec-2");
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/credentials/{id}"),
        Some(&admin),
        Some(json!({"credential": {"blob": new_blob}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["credential"]["id"], id.as_str());
    assert_eq!(b["credential"]["blob"], new_blob);
    assert_eq!(b["credential"]["user_id"], member.user_id.as_str());
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/credentials/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["credential"]["blob"], new_blob);

    for (body, text) in [
        (
            json!({"credential": {"blob": new_blob, "type": "x"}}),
            "Additional properties are not allowed ('type' was unexpected)",
        ),
        (json!({"credential": {}}), "'blob' is a required property"),
        (
            json!({"credential": {"blob": "not json"}}),
            "Invalid blob in credential",
        ),
        (
            json!({"credential": {"blob": r#"{"access": "a", "trust_id": "t"}"#}}),
            "trust_id can not be updated for credential",
        ),
    ] {
        let (s, b) = call(
            &app,
            Method::PATCH,
            &format!("/v3/credentials/{id}"),
            Some(&admin),
            Some(body),
        )
        .await;
        assert_eq!(s, 400, "{b}");
        assert!(message(&b).contains(text), "{b}");
    }

    // Delete, then 404.
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/credentials/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/credentials/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(message(&b), format!("Could not find credential: {id}."));
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/credentials/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 404);

    // Deleting the user deletes its credentials.
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/users/{}", member.user_id),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert!(app
        .store
        .get_credential(&cert)
        .await
        .expect("read")
        .is_none());
}

async fn credentials_validation(app: TestApp) {
    let admin = app.admin_token().await;
    let user = app.admin_user_id.clone();
    for (body, text) in [
        (
            json!({"type": "cert", "blob": "x"}),
            "'user_id' is a required property",
        ),
        (
            json!({"user_id": user, "type": "cert"}),
            "'blob' is a required property",
        ),
        (
            json!({"user_id": user, "blob": "x"}),
            "'type' is a required property",
        ),
        (
            json!({"user_id": user, "type": "ec2", "blob": ec2_blob("a", "b")}),
            "'project_id' is a required property",
        ),
        (
            json!({"user_id": user, "type": "cert", "blob": 5}),
            "5 is not of type 'string'",
        ),
        (
            json!({"user_id": user, "type": "ec2", "project_id": "p", "blob": "nope"}),
            "Invalid blob in credential",
        ),
        (
            json!({"user_id": user, "type": "ec2", "project_id": "p", "blob": "[1]"}),
            "Expecting to find blob in credential",
        ),
        (
            json!({"user_id": user, "type": "ec2", "project_id": "p", "blob": "{\"secret\": \"s\"}"}),
            "Expecting to find access in credential",
        ),
    ] {
        let (s, b) = create(&app, &admin, body.clone()).await;
        assert_eq!(s, 400, "{body}: {b}");
        assert!(message(&b).contains(text), "{body}: {b}");
    }
    let (s, _) = call(
        &app,
        Method::POST,
        "/v3/credentials",
        None,
        Some(json!({"credential": {}})),
    )
    .await;
    assert_eq!(s, 401);
}

async fn credentials_owner_policy(app: TestApp) {
    let admin = app.admin_token().await;
    let (alice, alice_token, project) = app.member_with_token("member").await;
    let (bob, bob_token, _) = app.member_with_token("member").await;
    // A user creates their own, never someone else's.
    let (s, b) = create(
        &app,
        &alice_token,
        json!({"user_id": alice.user_id, "project_id": project, "type": "ec2", "blob": ec2_blob("alice", "s")}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let alices = b["credential"]["id"].as_str().expect("id").to_string();
    let (s, _) = create(
        &app,
        &alice_token,
        json!({"user_id": bob.user_id, "type": "cert", "blob": "x"}),
    )
    .await;
    assert_eq!(s, 403);
    let (s, b) = create(
        &app,
        &admin,
        json!({"user_id": bob.user_id, "type": "cert", "blob": "b"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let bobs = b["credential"]["id"].as_str().expect("id").to_string();

    // Lists show only one's own; admin sees both.
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/credentials",
        Some(&alice_token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let seen: Vec<&str> = b["credentials"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(seen, vec![alices.as_str()]);
    let (s, b) = call(&app, Method::GET, "/v3/credentials", Some(&admin), None).await;
    assert_eq!(s, 200);
    assert!(b["credentials"].as_array().expect("list").len() >= 2);

    // Someone else's: 403 for get, update, delete; a missing one is 403 too
    // (the caller may not learn it is missing), 404 for admin.
    for path in [
        format!("/v3/credentials/{bobs}"),
        "/v3/credentials/missing".to_string(),
    ] {
        let (s, _) = call(&app, Method::GET, &path, Some(&alice_token), None).await;
        assert_eq!(s, 403, "{path}");
        let (s, _) = call(
            &app,
            Method::PATCH,
            &path,
            Some(&alice_token),
            Some(json!({"credential": {"blob": "x"}})),
        )
        .await;
        assert_eq!(s, 403, "{path}");
        let (s, _) = call(&app, Method::DELETE, &path, Some(&alice_token), None).await;
        assert_eq!(s, 403, "{path}");
    }
    let (s, _) = call(
        &app,
        Method::GET,
        "/v3/credentials/missing",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // One's own: read, update, delete.
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("/v3/credentials/{alices}"),
        Some(&bob_token),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/credentials/{alices}"),
        Some(&alice_token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/credentials/{alices}"),
        Some(&alice_token),
        Some(json!({"credential": {"blob": ec2_blob("alice", "s2")}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/credentials/{alices}"),
        Some(&alice_token),
        None,
    )
    .await;
    assert_eq!(s, 204);
}

async fn credential_keys_rotate_and_migrate(app: TestApp) {
    let admin = app.admin_token().await;
    let svc = &app.state.credentials;
    let (s, b) = create(
        &app,
        &admin,
        json!({"user_id": app.admin_user_id, "type": "cert", "blob": "before setup"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let first = b["credential"]["id"].as_str().expect("id").to_string();
    svc.setup_keys().expect("setup");
    let (s, b) = create(
        &app,
        &admin,
        json!({"user_id": app.admin_user_id, "type": "cert", "blob": "after setup"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let second = b["credential"]["id"].as_str().expect("id").to_string();
    let primary = svc.keys().load().expect("keys")[0].hash();
    let row = app
        .store
        .get_credential(&second)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.key_hash, primary);

    // Null-key rows survive any rotation; key-1 rows survive one.
    assert!(matches!(
        svc.rotate_keys().await.expect("rotate"),
        KeyRotation::Rotated(_)
    ));
    // Now key 1 is a secondary that the next rotation would purge.
    match svc.rotate_keys().await.expect("rotate") {
        KeyRotation::Refused { rows } => assert_eq!(rows, 1),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let report = svc.migrate().await.expect("migrate");
    assert_eq!(report.migrated, 2);
    assert_eq!(report.already_primary, 0);
    assert!(matches!(
        svc.rotate_keys().await.expect("rotate"),
        KeyRotation::Rotated(_)
    ));
    for (id, blob) in [(&first, "before setup"), (&second, "after setup")] {
        let (s, b) = call(
            &app,
            Method::GET,
            &format!("/v3/credentials/{id}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["credential"]["blob"], blob);
    }
}

async fn ec2_credentials(app: TestApp) {
    let admin = app.admin_token().await;
    let (alice, alice_token, project) = app.member_with_token("member").await;
    let (bob, bob_token, _) = app.member_with_token("member").await;
    let base = format!("/v3/users/{}/credentials/OS-EC2", alice.user_id);
    let (s, b) = call(
        &app,
        Method::POST,
        &base,
        Some(&alice_token),
        Some(json!({"tenant_id": project})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let c = b["credential"].clone();
    let access = c["access"].as_str().expect("access").to_string();
    assert_eq!(access.len(), 32);
    assert_eq!(c["secret"].as_str().map(str::len), Some(32));
    assert_eq!(c["tenant_id"], project.as_str());
    assert_eq!(c["user_id"], alice.user_id.as_str());
    assert_eq!(c["trust_id"], Value::Null);
    assert!(c["links"]["self"]
        .as_str()
        .is_some_and(|l| l.ends_with(&format!("{base}/{access}"))));
    // It is an ec2 row of /v3/credentials too, blob as Keystone writes it.
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/credentials/{}", sha256_hex(&access)),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["credential"]["type"], "ec2");
    assert_eq!(
        b["credential"]["blob"],
        format!(
            r#"{{"access": "{access}", "secret": "{}", "trust_id": null}}"#,
            c["secret"].as_str().unwrap_or("")
        )
    );

    let (s, b) = call(&app, Method::GET, &base, Some(&alice_token), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["credentials"].as_array().map(Vec::len), Some(1));
    assert_eq!(b["credentials"][0]["access"], access.as_str());
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("{base}/{access}"),
        Some(&alice_token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["credential"]["secret"], c["secret"]);

    // Others may not list, create, read or delete them.
    let (s, _) = call(&app, Method::GET, &base, Some(&bob_token), None).await;
    assert_eq!(s, 403);
    let (s, _) = call(
        &app,
        Method::POST,
        &base,
        Some(&bob_token),
        Some(json!({"tenant_id": project})),
    )
    .await;
    assert_eq!(s, 403);
    let bob_path = format!("/v3/users/{}/credentials/OS-EC2/{access}", bob.user_id);
    let (s, _) = call(&app, Method::GET, &bob_path, Some(&bob_token), None).await;
    assert_eq!(s, 403);
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("{base}/{access}"),
        Some(&bob_token),
        None,
    )
    .await;
    assert_eq!(s, 403);
    // Unknown project, unknown access key.
    let (s, b) = call(
        &app,
        Method::POST,
        &base,
        Some(&admin),
        Some(json!({"tenant_id": "nope"})),
    )
    .await;
    assert_eq!(s, 404, "{b}");
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("{base}/unknown"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // A non-ec2 credential is not an EC2 access key: 401.
    let (s, b) = create(
        &app,
        &admin,
        json!({"user_id": alice.user_id, "type": "cert", "blob": "x"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, _) = call(
        &app,
        Method::GET,
        "/v3/credentials?type=cert",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200);

    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("{base}/{access}"),
        Some(&alice_token),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("{base}/{access}"),
        Some(&alice_token),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

async fn ec2_and_s3_tokens(app: TestApp) {
    use base64::Engine;
    use keystone_rs::credential::signature::{ec2_signature, s3_signature};
    let admin = app.admin_token().await;
    let (alice, alice_token, project) = app.member_with_token("member").await;
    let base = format!("/v3/users/{}/credentials/OS-EC2", alice.user_id);
    let (s, b) = call(
        &app,
        Method::POST,
        &base,
        Some(&admin),
        Some(json!({"tenant_id": project})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let access = b["credential"]["access"]
        .as_str()
        .expect("access")
        .to_string();
    let secret = b["credential"]["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let ec2_request = |timestamp: &str, secret: &str| {
        let mut creds = json!({
            "access": access, "host": "localhost", "verb": "GET", "path": "/",
            "params": {"SignatureVersion": "2", "Action": "DescribeInstances", "AWSAccessKeyId": access, "Timestamp": timestamp},
        });
        let sig = ec2_signature(secret, creds.as_object().expect("obj")).expect("sig");
        creds["signature"] = json!(sig);
        // Signed without the port; Keystone retries without it.
        creds["host"] = json!("localhost:8773");
        json!({"credentials": creds})
    };
    let post = |path: &'static str, token: String, body: Value| {
        let app = &app;
        async move {
            crate::helpers::call_with_headers(app, Method::POST, path, Some(&token), Some(body))
                .await
        }
    };
    let (s, h, b) = post("/v3/ec2tokens", admin.clone(), ec2_request(&now, &secret)).await;
    assert_eq!(s, 200, "{b}");
    let subject = h
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .expect("subject")
        .to_string();
    assert_eq!(b["token"]["methods"], json!(["ec2credential"]));
    assert_eq!(b["token"]["user"]["id"], alice.user_id.as_str());
    assert_eq!(b["token"]["project"]["id"], project.as_str());
    assert!(b["token"]["catalog"].is_array(), "{b}");
    let (s, v) = app.validate(&admin, &subject, "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token"]["methods"], json!(["ec2credential"]));
    // It authorizes nothing (Keystone 30, LP#2153453) and is not exchanged for another.
    for path in ["/v3/projects", "/v3/auth/projects", "/v3/users"] {
        let (s, b) = call(&app, Method::GET, path, Some(&subject), None).await;
        assert_eq!(s, 403, "{path}: {b}");
        assert_eq!(
            message(&b),
            "You are not authorized to perform the requested action."
        );
    }
    let (s, _) = app.validate(&subject, &admin, "").await;
    assert_eq!(s, 403);
    let (s, _, b) = app
        .post_auth(
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": subject}},
                   "scope": {"project": {"id": project}}}}),
            "",
        )
        .await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(
        message(&b),
        "You are not authorized to perform the requested action: Using a delegated token to create another token is not allowed.."
    );

    // Wrong secret, unknown key, no access, stale timestamp: 401; a member: 403.
    let (s, _, _) = post("/v3/ec2tokens", admin.clone(), ec2_request(&now, "wrong")).await;
    assert_eq!(s, 401);
    let mut unknown = ec2_request(&now, &secret);
    unknown["credentials"]["access"] = json!("nobody");
    let (s, _, _) = post("/v3/ec2tokens", admin.clone(), unknown).await;
    assert_eq!(s, 401);
    let (s, _, _) = post(
        "/v3/ec2tokens",
        admin.clone(),
        json!({"credentials": {"signature": "x"}}),
    )
    .await;
    assert_eq!(s, 401);
    let stale = (chrono::Utc::now() - chrono::Duration::minutes(20))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (s, _, _) = post("/v3/ec2tokens", admin.clone(), ec2_request(&stale, &secret)).await;
    assert_eq!(s, 401);
    let (s, _, _) = post(
        "/v3/ec2tokens",
        alice_token.clone(),
        ec2_request(&now, &secret),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = call(
        &app,
        Method::POST,
        "/v3/ec2tokens",
        None,
        Some(ec2_request(&now, &secret)),
    )
    .await;
    assert_eq!(s, 401);

    // S3 v2 and SigV4 string-to-sign.
    for sts in [
        format!("GET\n\n\n{now}\n/bucket/key"),
        format!(
            "AWS4-HMAC-SHA256\n20261206T200000Z\n20261206/RegionOne/s3/aws4_request\n{}",
            "ab".repeat(32)
        ),
    ] {
        let token = base64::engine::general_purpose::URL_SAFE.encode(&sts);
        let signature = s3_signature(&secret, &token).expect("sig");
        let body =
            json!({"credentials": {"access": access, "token": token, "signature": signature}});
        let (s, h, b) = post("/v3/s3tokens", admin.clone(), body.clone()).await;
        assert_eq!(s, 200, "{b}");
        assert!(h.get("X-Subject-Token").is_none());
        assert_eq!(b["token"]["project"]["id"], project.as_str());
        let mut bad = body;
        bad["credentials"]["signature"] = json!("AAAA");
        let (s, _, _) = post("/v3/s3tokens", admin.clone(), bad).await;
        assert_eq!(s, 401);
    }

    // A disabled user gets nothing.
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/users/{}", alice.user_id),
        Some(&admin),
        Some(json!({"user": {"enabled": false}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _, _) = post("/v3/ec2tokens", admin.clone(), ec2_request(&now, &secret)).await;
    assert_eq!(s, 401);
}

both_backends!(
    ec2_and_s3_tokens,
    ec2_credentials,
    credentials_crud,
    credentials_validation,
    credentials_owner_policy,
    credential_keys_rotate_and_migrate,
);
