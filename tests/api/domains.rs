use serde_json::{json, Value};

use crate::both_backends;
#[allow(unused_imports)]
use crate::helpers::{message, TestApp};

async fn domain_crud_and_rules(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (_, member, _) = app.member_with_token("member").await;
    let c = &app.client;
    // create
    let r = c
        .post(app.url("/v3/domains"))
        .header("X-Auth-Token", &admin)
        .json(&json!({"domain": {"name": "acme", "description": "d", "color": "red"}}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 201);
    let body: Value = r.json().await.expect("json");
    let id = body["domain"]["id"].as_str().expect("id").to_string();
    assert_eq!(body["domain"]["enabled"], true);
    assert_eq!(
        body["domain"]["color"], "red",
        "extra attributes round-trip"
    );
    assert_eq!(
        body["domain"]["links"]["self"],
        format!("{}/v3/domains/{id}", app.address)
    );
    // duplicate name
    let r = c
        .post(app.url("/v3/domains"))
        .header("X-Auth-Token", &admin)
        .json(&json!({"domain": {"name": "acme"}}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(
        message(&r.json::<Value>().await.expect("json")),
        "Conflict occurred attempting to store domain - Duplicate entry found with name acme."
    );
    // bad input
    for bad in [
        json!({"domain": {}}),
        json!({"domain": {"name": ""}}),
        json!({"domain": {"name": "x", "enabled": "yes"}}),
        json!({"domain": {"name": "y".repeat(65)}}),
        json!({"nodomain": {}}),
    ] {
        let r = c
            .post(app.url("/v3/domains"))
            .header("X-Auth-Token", &admin)
            .json(&bad)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 400, "{bad}");
    }
    // list with filters
    let r = c
        .get(app.url("/v3/domains?name=acme"))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("get");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["domains"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        body["links"]["self"],
        format!("{}/v3/domains?name=acme", app.address)
    );
    // policy: a project member can neither create nor list
    let r = c
        .post(app.url("/v3/domains"))
        .header("X-Auth-Token", &member)
        .json(&json!({"domain": {"name": "nope"}}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    // anonymous: 401 even for an unknown id
    let r = c
        .get(app.url("/v3/domains/unknown"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .get(app.url("/v3/domains/unknown"))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        message(&r.json::<Value>().await.expect("json")),
        "Could not find domain: unknown."
    );
    // an enabled domain cannot be deleted
    let r = c
        .delete(app.url(&format!("/v3/domains/{id}")))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        message(&r.json::<Value>().await.expect("json")),
        "Cannot delete a domain that is enabled, please disable it first."
    );
    // PATCH: id is immutable, enabled flips
    let r = c
        .patch(app.url(&format!("/v3/domains/{id}")))
        .header("X-Auth-Token", &admin)
        .json(&json!({"domain": {"id": "x"}}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status().as_u16(), 400);
    let r = c
        .patch(app.url(&format!("/v3/domains/{id}")))
        .header("X-Auth-Token", &admin)
        .json(&json!({"domain": {"enabled": false}}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("json")["domain"]["enabled"],
        false
    );
    let r = c
        .delete(app.url(&format!("/v3/domains/{id}")))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 204);
    let r = c
        .get(app.url(&format!("/v3/domains/{id}")))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 404);
    // the default domain is protected
    let r = c
        .delete(app.url("/v3/domains/default"))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 403);
    // disabling the admin's own domain invalidates the admin's token at once
    let r = c
        .patch(app.url("/v3/domains/default"))
        .header("X-Auth-Token", &admin)
        .json(&json!({"domain": {"enabled": false}}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status().as_u16(), 200);
    let r = c
        .get(app.url("/v3/domains"))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 401);
}

async fn deleting_a_domain_fails_tokens_scoped_into_it(app: TestApp) {
    let admin = app.system_admin_token().await;
    let c = &app.client;
    let r = c
        .post(app.url("/v3/domains"))
        .header("X-Auth-Token", &admin)
        .json(&json!({"domain": {"name": "doomed"}}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 201);
    let domain_id = r.json::<Value>().await.expect("json")["domain"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let project_id = app.create_project("in-doomed", &domain_id).await;
    let (member, _, _) = app.member_with_token("member").await;
    app.grant(
        &member.user_id,
        keystone_rs::model::TargetKind::Project,
        &project_id,
        "member",
    )
    .await;
    let (status, token, body) = app
        .password_token(
            &member.name,
            &member.password,
            json!({"project": {"id": project_id}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = token.expect("token");
    let (status, _) = app.validate(&admin, &token, "").await;
    assert_eq!(status, 200);
    let r = c
        .patch(app.url(&format!("/v3/domains/{domain_id}")))
        .header("X-Auth-Token", &admin)
        .json(&json!({"domain": {"enabled": false}}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status().as_u16(), 200);
    let (status, body) = app.validate(&admin, &token, "").await;
    assert_eq!(
        (status, message(&body).to_string()),
        (
            404,
            format!("Unable to validate token because domain {domain_id} is disabled")
        )
    );
    let r = c
        .delete(app.url(&format!("/v3/domains/{domain_id}")))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 204);
    let (status, body) = app.validate(&admin, &token, "?allow_expired=1").await;
    assert_eq!(
        (status, message(&body).to_string()),
        (404, format!("Could not find project: {project_id}."))
    );
}

both_backends!(
    domain_crud_and_rules,
    deleting_a_domain_fails_tokens_scoped_into_it,
);
