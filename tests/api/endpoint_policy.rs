//! OS-ENDPOINT-POLICY: associations of a stored policy with an endpoint, a service, or
//! a service in a region, and an endpoint's policy (endpoint, then service+region up
//! the region tree, then service), with Keystone's messages.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::catalog::create_service;
use crate::helpers::{call, ids, message, TestApp};

async fn region(app: &TestApp, admin: &str, id: &str, parent: Option<&str>) {
    let (s, b) = call(
        app,
        Method::PUT,
        &format!("/v3/regions/{id}"),
        Some(admin),
        Some(json!({"region": {"parent_region_id": parent}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
}

async fn endpoint(app: &TestApp, admin: &str, service_id: &str, region_id: &str) -> String {
    let (s, b) = call(
        app,
        Method::POST,
        "/v3/endpoints",
        Some(admin),
        Some(json!({"endpoint": {"service_id": service_id, "interface": "public", "url": "http://x", "region_id": region_id}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["endpoint"]["id"].as_str().expect("id").to_string()
}

async fn policy(app: &TestApp, admin: &str, blob: &str) -> String {
    let (s, b) = call(
        app,
        Method::POST,
        "/v3/policies",
        Some(admin),
        Some(json!({"policy": {"blob": blob, "type": "application/json"}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["policy"]["id"].as_str().expect("id").to_string()
}

async fn status(app: &TestApp, token: &str, method: Method, path: &str) -> (u16, Value) {
    call(app, method, path, Some(token), None).await
}

/// The policy an endpoint resolves to (its id), or the 404 message.
async fn resolved(app: &TestApp, admin: &str, endpoint_id: &str) -> Result<String, String> {
    let (s, b) = status(
        app,
        admin,
        Method::GET,
        &format!("/v3/endpoints/{endpoint_id}/OS-ENDPOINT-POLICY/policy"),
    )
    .await;
    match s {
        200 => Ok(b["policy"]["id"].as_str().expect("id").to_string()),
        404 => Err(message(&b).to_string()),
        other => panic!("{other}: {b}"),
    }
}

async fn endpoint_policy_resolution(app: TestApp) {
    let admin = app.admin_token().await;
    region(&app, &admin, "top", None).await;
    region(&app, &admin, "mid", Some("top")).await;
    region(&app, &admin, "leaf", Some("mid")).await;
    region(&app, &admin, "elsewhere", None).await;
    let svc = create_service(&app, &admin, "compute", "nova").await;
    let other_svc = create_service(&app, &admin, "image", "glance").await;
    let e_leaf = endpoint(&app, &admin, &svc, "leaf").await;
    let e_top = endpoint(&app, &admin, &svc, "top").await;
    let e_else = endpoint(&app, &admin, &svc, "elsewhere").await;
    let e_image = endpoint(&app, &admin, &other_svc, "leaf").await;
    let (p_service, p_region, p_endpoint) = (
        policy(&app, &admin, "service").await,
        policy(&app, &admin, "region").await,
        policy(&app, &admin, "endpoint").await,
    );
    let base = "/v3/policies";

    assert_eq!(
        resolved(&app, &admin, &e_leaf).await,
        Err(format!("No policy is associated with endpoint {e_leaf}."))
    );

    let generation = app.store.generation().current();
    let service_path = format!("{base}/{p_service}/OS-ENDPOINT-POLICY/services/{svc}");
    let (s, b) = status(&app, &admin, Method::PUT, &service_path).await;
    assert_eq!(s, 204, "{b}");
    assert!(app.store.generation().current() > generation);
    let (s, _) = status(&app, &admin, Method::GET, &service_path).await;
    assert_eq!(s, 204);
    assert_eq!(resolved(&app, &admin, &e_leaf).await, Ok(p_service.clone()));
    assert!(resolved(&app, &admin, &e_image).await.is_err());

    // The service in a region up the tree wins over the service alone.
    let region_path = format!("{base}/{p_region}/OS-ENDPOINT-POLICY/services/{svc}/regions/top");
    let (s, b) = status(&app, &admin, Method::PUT, &region_path).await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(resolved(&app, &admin, &e_leaf).await, Ok(p_region.clone()));
    assert_eq!(resolved(&app, &admin, &e_top).await, Ok(p_region.clone()));
    assert_eq!(resolved(&app, &admin, &e_else).await, Ok(p_service.clone()));

    // The endpoint's own association wins over both.
    let endpoint_path = format!("{base}/{p_endpoint}/OS-ENDPOINT-POLICY/endpoints/{e_leaf}");
    let (s, b) = status(&app, &admin, Method::PUT, &endpoint_path).await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(
        resolved(&app, &admin, &e_leaf).await,
        Ok(p_endpoint.clone())
    );
    let (s, b) = status(
        &app,
        &admin,
        Method::GET,
        &format!("/v3/endpoints/{e_leaf}/OS-ENDPOINT-POLICY/policy"),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["policy"]["blob"], "endpoint");
    // Keystone names the policy's id under /v3/endpoints in this self link.
    assert!(b["policy"]["links"]["self"]
        .as_str()
        .is_some_and(|l| l.ends_with(&format!("/v3/endpoints/{p_endpoint}"))));

    // The endpoints each policy covers; a region covers its subregions.
    for (p, want) in [
        (
            &p_service,
            vec![e_else.clone(), e_leaf.clone(), e_top.clone()],
        ),
        (&p_region, vec![e_top.clone(), e_leaf.clone()]),
        (&p_endpoint, vec![e_leaf.clone()]),
    ] {
        let (s, b) = status(
            &app,
            &admin,
            Method::GET,
            &format!("{base}/{p}/OS-ENDPOINT-POLICY/endpoints"),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let mut got = ids(&b["endpoints"]);
        let mut want = want.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{b}");
        assert!(b["endpoints"][0]["links"]["self"]
            .as_str()
            .is_some_and(|l| l.contains("/v3/endpoints/")));
    }

    // One policy per target: a second PUT on the endpoint replaces the first.
    let (s, _) = status(
        &app,
        &admin,
        Method::PUT,
        &format!("{base}/{p_service}/OS-ENDPOINT-POLICY/endpoints/{e_leaf}"),
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = status(&app, &admin, Method::GET, &endpoint_path).await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(message(&b), "Could not find policy association.");
    assert_eq!(resolved(&app, &admin, &e_leaf).await, Ok(p_service.clone()));

    // Deleting an association (204 even when absent) and falling back.
    let (s, _) = status(
        &app,
        &admin,
        Method::DELETE,
        &format!("{base}/{p_service}/OS-ENDPOINT-POLICY/endpoints/{e_leaf}"),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = status(&app, &admin, Method::DELETE, &endpoint_path).await;
    assert_eq!(s, 204);
    assert_eq!(resolved(&app, &admin, &e_leaf).await, Ok(p_region.clone()));

    // Deleting the policy takes its associations.
    let (s, _) = status(&app, &admin, Method::DELETE, &format!("{base}/{p_region}")).await;
    assert_eq!(s, 204);
    assert_eq!(resolved(&app, &admin, &e_leaf).await, Ok(p_service.clone()));
    // Deleting the endpoint does too; it is then unknown.
    let (s, _) = status(
        &app,
        &admin,
        Method::DELETE,
        &format!("/v3/endpoints/{e_leaf}"),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        resolved(&app, &admin, &e_leaf).await,
        Err(format!("Could not find endpoint: {e_leaf}."))
    );
}

async fn endpoint_policy_errors_and_policy(app: TestApp) {
    let admin = app.admin_token().await;
    let svc = create_service(&app, &admin, "compute", "nova").await;
    let e = endpoint(&app, &admin, &svc, "RegionOne").await;
    let p = policy(&app, &admin, "b").await;
    for (path, text) in [
        (
            format!("/v3/policies/nope/OS-ENDPOINT-POLICY/endpoints/{e}"),
            "Could not find policy: nope.".to_string(),
        ),
        (
            format!("/v3/policies/{p}/OS-ENDPOINT-POLICY/endpoints/nope"),
            "Could not find endpoint: nope.".to_string(),
        ),
        (
            format!("/v3/policies/{p}/OS-ENDPOINT-POLICY/services/nope"),
            "Could not find service: nope.".to_string(),
        ),
        (
            format!("/v3/policies/{p}/OS-ENDPOINT-POLICY/services/{svc}/regions/nope"),
            "Could not find region: nope.".to_string(),
        ),
    ] {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let (s, b) = status(&app, &admin, method.clone(), &path).await;
            assert_eq!(s, 404, "{method} {path}: {b}");
            assert_eq!(message(&b), text);
        }
    }
    let (s, b) = status(
        &app,
        &admin,
        Method::GET,
        "/v3/policies/nope/OS-ENDPOINT-POLICY/endpoints",
    )
    .await;
    assert_eq!(s, 404, "{b}");
    let (s, b) = status(
        &app,
        &admin,
        Method::GET,
        "/v3/endpoints/nope/OS-ENDPOINT-POLICY/policy",
    )
    .await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(message(&b), "Could not find endpoint: nope.");

    let (_, member, _) = app.member_with_token("member").await;
    for (method, path) in [
        (
            Method::PUT,
            format!("/v3/policies/{p}/OS-ENDPOINT-POLICY/services/{svc}"),
        ),
        (
            Method::GET,
            format!("/v3/policies/{p}/OS-ENDPOINT-POLICY/services/{svc}"),
        ),
        (
            Method::DELETE,
            format!("/v3/policies/{p}/OS-ENDPOINT-POLICY/services/{svc}"),
        ),
        (
            Method::GET,
            format!("/v3/policies/{p}/OS-ENDPOINT-POLICY/endpoints"),
        ),
        (
            Method::GET,
            format!("/v3/endpoints/{e}/OS-ENDPOINT-POLICY/policy"),
        ),
    ] {
        let (s, b) = status(&app, &member, method.clone(), &path).await;
        assert_eq!(s, 403, "{method} {path}: {b}");
    }
}

both_backends!(
    endpoint_policy_resolution,
    endpoint_policy_errors_and_policy
);
