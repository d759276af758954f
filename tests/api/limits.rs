//! Unified limits: /v3/registered_limits and /v3/limits (batch creates all or nothing,
//! Keystone's messages and policies), /v3/limits/model, and the strict_two_level model.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{
    call, create_domain, domain_token, ids, message, spawn_configured, Db, TestApp,
};
use keystone_rs::config::EnforcementModel;

async fn service(app: &TestApp, admin: &str, kind: &str) -> String {
    let (s, b) = call(
        app,
        Method::POST,
        "/v3/services",
        Some(admin),
        Some(json!({"service": {"type": kind, "name": kind}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["service"]["id"].as_str().expect("id").to_string()
}

async fn region(app: &TestApp, admin: &str, id: &str) {
    let (s, b) = call(
        app,
        Method::POST,
        "/v3/regions",
        Some(admin),
        Some(json!({"region": {"id": id}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    call(app, Method::POST, path, Some(token), Some(body)).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    call(app, Method::GET, path, Some(token), None).await
}

async fn registered(app: &TestApp, admin: &str, items: Value) -> Vec<String> {
    let (s, b) = post(
        app,
        admin,
        "/v3/registered_limits",
        json!({ "registered_limits": items }),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    ids(&b["registered_limits"])
}

async fn registered_limits_crud(app: TestApp) {
    let admin = app.admin_token().await;
    let nova = service(&app, &admin, "compute").await;
    region(&app, &admin, "RegionTwo").await;

    let created = registered(
        &app,
        &admin,
        json!([
            {"service_id": nova, "resource_name": "cores", "default_limit": 10},
            {"service_id": nova, "region_id": "RegionTwo", "resource_name": "cores",
             "default_limit": 5, "description": "two"},
        ]),
    )
    .await;
    assert_eq!(created.len(), 2);

    let (s, b) = get(
        &app,
        &admin,
        &format!("/v3/registered_limits/{}", created[1]),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let r = &b["registered_limit"];
    assert_eq!(
        (
            &r["service_id"],
            &r["region_id"],
            &r["resource_name"],
            &r["default_limit"],
            &r["description"]
        ),
        (
            &json!(nova),
            &json!("RegionTwo"),
            &json!("cores"),
            &json!(5),
            &json!("two")
        )
    );
    assert!(r["links"]["self"]
        .as_str()
        .is_some_and(|l| l.ends_with(&format!("/v3/registered_limits/{}", created[1]))));

    // A batch with one duplicate writes nothing.
    let (s, b) = post(
        &app,
        &admin,
        "/v3/registered_limits",
        json!({"registered_limits": [
            {"service_id": nova, "resource_name": "ram", "default_limit": 1024},
            {"service_id": nova, "resource_name": "cores", "default_limit": 3},
        ]}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(
        message(&b),
        "Conflict occurred attempting to store registered_limit - Duplicate entry."
    );
    let (_, b) = get(&app, &admin, "/v3/registered_limits?resource_name=ram").await;
    assert_eq!(b["registered_limits"], json!([]));

    // Filters are exact matches.
    let (_, b) = get(&app, &admin, "/v3/registered_limits?region_id=RegionTwo").await;
    assert_eq!(ids(&b["registered_limits"]), vec![created[1].clone()]);
    let (_, b) = get(
        &app,
        &admin,
        &format!("/v3/registered_limits?service_id={nova}"),
    )
    .await;
    assert_eq!(b["registered_limits"].as_array().map(Vec::len), Some(2));

    // Schema and reference errors, as Keystone words them.
    for (body, want) in [
        (
            json!({"registered_limits": [{"service_id": nova, "resource_name": "x", "default_limit": -2}]}),
            "Invalid input for field 'registered_limits/0/default_limit': -2 is less than the minimum of -1",
        ),
        (
            json!({"registered_limits": [{"service_id": nova, "default_limit": 1}]}),
            "Invalid input for field 'registered_limits/0': 'resource_name' is a required property",
        ),
        (
            json!({"registered_limits": [{"service_id": nova, "resource_name": "x", "default_limit": "1"}]}),
            "Invalid input for field 'registered_limits/0/default_limit': \"1\" is not of type 'integer'",
        ),
        (
            json!({"registered_limits": [{"service_id": "nope", "resource_name": "x", "default_limit": 1}]}),
            "Expecting to find service_id in registered_limit. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
        ),
        (
            json!({"registered_limits": [{"service_id": nova, "region_id": "nowhere", "resource_name": "x", "default_limit": 1}]}),
            "Expecting to find region_id in registered_limit. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
        ),
    ] {
        let (s, b) = post(&app, &admin, "/v3/registered_limits", body).await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(message(&b), want);
    }
    let (s, _) = post(
        &app,
        &admin,
        "/v3/registered_limits",
        json!({"registered_limits": []}),
    )
    .await;
    assert_eq!(s, 400);

    // Anyone with a token reads; only admins write.
    let (_, member, _) = app.member_with_token("member").await;
    let (s, b) = get(
        &app,
        &member,
        &format!("/v3/registered_limits/{}", created[0]),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = post(
        &app,
        &member,
        "/v3/registered_limits",
        json!({"registered_limits": [{"service_id": nova, "resource_name": "ram", "default_limit": 1}]}),
    )
    .await;
    assert_eq!(s, 403, "{b}");

    // PATCH, then DELETE, then 404.
    let path = format!("/v3/registered_limits/{}", created[0]);
    let (s, b) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"registered_limit": {"default_limit": 20, "description": null}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["registered_limit"]["default_limit"], 20);
    let (s, b) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"registered_limit": {"region_id": "RegionTwo"}})),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    let (s, _) = call(&app, Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (s, b) = get(&app, &admin, &path).await;
    assert_eq!(s, 404);
    assert_eq!(
        message(&b),
        format!("Could not find registered limit for {}.", created[0])
    );
}

async fn limits_crud_and_visibility(app: TestApp) {
    let admin = app.admin_token().await;
    let nova = service(&app, &admin, "compute").await;
    let (model_s, model) = get(&app, &admin, "/v3/limits/model").await;
    assert_eq!(model_s, 200);
    assert_eq!(model["model"]["name"], "flat");

    let reg = registered(
        &app,
        &admin,
        json!([{"service_id": nova, "resource_name": "cores", "default_limit": 10}]),
    )
    .await;
    let (_, alice_token, alice_project) = app.member_with_token("member").await;
    let (_, bob_token, bob_project) = app.member_with_token("member").await;

    // No registered limit for the resource: 403, and nothing of the batch is written.
    let (s, b) = post(
        &app,
        &admin,
        "/v3/limits",
        json!({"limits": [
            {"project_id": alice_project, "service_id": nova, "resource_name": "cores", "resource_limit": 4},
            {"project_id": alice_project, "service_id": nova, "resource_name": "ram", "resource_limit": 4},
        ]}),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(
        message(&b),
        "Unable to create a limit that has no corresponding registered limit."
    );
    let (_, b) = get(&app, &admin, "/v3/limits").await;
    assert_eq!(b["limits"], json!([]));

    // One per project, one for the default domain (named as a project id).
    let (s, b) = post(
        &app,
        &admin,
        "/v3/limits",
        json!({"limits": [
            {"project_id": alice_project, "service_id": nova, "resource_name": "cores", "resource_limit": 4},
            {"project_id": bob_project, "service_id": nova, "resource_name": "cores", "resource_limit": 6,
             "description": "bob"},
            {"project_id": "default", "service_id": nova, "resource_name": "cores", "resource_limit": 50},
        ]}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let limits = b["limits"].as_array().expect("limits").clone();
    assert_eq!(limits[2]["domain_id"], "default");
    assert_eq!(limits[2]["project_id"], Value::Null);
    assert_eq!(limits[0]["resource_name"], "cores");
    assert_eq!(limits[0]["service_id"], json!(nova));
    let alice_limit = limits[0]["id"].as_str().expect("id").to_string();
    let bob_limit = limits[1]["id"].as_str().expect("id").to_string();

    // Duplicate, both owners, neither, unknown project.
    let (s, b) = post(
        &app,
        &admin,
        "/v3/limits",
        json!({"limits": [{"project_id": alice_project, "service_id": nova, "resource_name": "cores", "resource_limit": 1}]}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(
        message(&b),
        "Conflict occurred attempting to store limit - Duplicate entry."
    );
    for body in [
        json!({"limits": [{"project_id": alice_project, "domain_id": "default", "service_id": nova, "resource_name": "cores", "resource_limit": 1}]}),
        json!({"limits": [{"service_id": nova, "resource_name": "cores", "resource_limit": 1}]}),
    ] {
        let (s, b) = post(&app, &admin, "/v3/limits", body).await;
        assert_eq!(s, 400, "{b}");
        assert!(
            message(&b).starts_with("Invalid input for field 'limits/0'"),
            "{b}"
        );
    }
    let (s, b) = post(
        &app,
        &admin,
        "/v3/limits",
        json!({"limits": [{"project_id": "nope", "service_id": nova, "resource_name": "cores", "resource_limit": 1}]}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).starts_with("Expecting to find project_id in limit."));

    // A project member sees its own project's limits only.
    let (_, b) = get(&app, &alice_token, "/v3/limits").await;
    assert_eq!(ids(&b["limits"]), vec![alice_limit.clone()]);
    let (_, b) = get(
        &app,
        &alice_token,
        &format!("/v3/limits?project_id={bob_project}"),
    )
    .await;
    assert_eq!(b["limits"], json!([]));
    let (s, _) = get(&app, &alice_token, &format!("/v3/limits/{alice_limit}")).await;
    assert_eq!(s, 200);
    let (s, _) = get(&app, &alice_token, &format!("/v3/limits/{bob_limit}")).await;
    assert_eq!(s, 403);
    let (s, _) = get(&app, &bob_token, &format!("/v3/limits/{bob_limit}")).await;
    assert_eq!(s, 200);
    // The admin sees all; filters are exact.
    let (_, b) = get(
        &app,
        &admin,
        &format!("/v3/limits?project_id={bob_project}"),
    )
    .await;
    assert_eq!(ids(&b["limits"]), vec![bob_limit.clone()]);
    let (_, b) = get(&app, &admin, "/v3/limits?domain_id=default").await;
    assert_eq!(b["limits"].as_array().map(Vec::len), Some(1));
    // A domain reader of another domain sees none of the default domain's limits.
    let other = create_domain(&app, "elsewhere").await;
    let (_, other_reader) = domain_token(&app, &other, "reader").await;
    let (_, b) = get(&app, &other_reader, "/v3/limits").await;
    assert_eq!(b["limits"], json!([]));
    let (_, default_reader) = domain_token(&app, "default", "reader").await;
    let (_, b) = get(&app, &default_reader, "/v3/limits").await;
    assert_eq!(b["limits"].as_array().map(Vec::len), Some(3));

    // Members may not write.
    let (s, _) = call(
        &app,
        Method::PATCH,
        &format!("/v3/limits/{alice_limit}"),
        Some(&alice_token),
        Some(json!({"limit": {"resource_limit": 100}})),
    )
    .await;
    assert_eq!(s, 403);
    // PATCH: the override and the description only; 0 is a value.
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/limits/{alice_limit}"),
        Some(&admin),
        Some(json!({"limit": {"resource_limit": 0, "description": "none"}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["limit"]["resource_limit"], 0);
    assert_eq!(b["limit"]["description"], "none");
    let (s, _) = call(
        &app,
        Method::PATCH,
        &format!("/v3/limits/{alice_limit}"),
        Some(&admin),
        Some(json!({"limit": {"resource_name": "ram"}})),
    )
    .await;
    assert_eq!(s, 400);

    // A registered limit in use cannot change or go.
    let reg_path = format!("/v3/registered_limits/{}", reg[0]);
    let (s, b) = call(&app, Method::DELETE, &reg_path, Some(&admin), None).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(
        message(&b),
        format!(
            "Unable to update or delete registered limit {} because there are project limits associated with it.",
            reg[0]
        )
    );

    // Deleting a project deletes its limits.
    let (s, _) = call(
        &app,
        Method::PATCH,
        &format!("/v3/projects/{bob_project}"),
        Some(&admin),
        Some(json!({"project": {"enabled": false}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/projects/{bob_project}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = get(&app, &admin, &format!("/v3/limits/{bob_limit}")).await;
    assert_eq!(s, 404);

    for l in b_ids(&app, &admin).await {
        let (s, _) = call(
            &app,
            Method::DELETE,
            &format!("/v3/limits/{l}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, 204);
    }
    let (s, b) = call(
        &app,
        Method::DELETE,
        &format!("/v3/limits/{alice_limit}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(
        message(&b),
        format!("Could not find limit for {alice_limit}.")
    );
    let (s, _) = call(&app, Method::DELETE, &reg_path, Some(&admin), None).await;
    assert_eq!(s, 204);
}

async fn b_ids(app: &TestApp, admin: &str) -> Vec<String> {
    let (_, b) = get(app, admin, "/v3/limits").await;
    ids(&b["limits"])
}

/// strict_two_level: projects nest at most two deep, a project's limit stays within
/// its domain's (or the registered default), a domain's stays above its projects'.
async fn strict_two_level_model(db: Db) {
    let Some(app) = spawn_configured(db, |s| {
        s.unified_limit.enforcement_model = EnforcementModel::StrictTwoLevel;
    })
    .await
    else {
        return;
    };
    let admin = app.admin_token().await;
    let (_, b) = get(&app, &admin, "/v3/limits/model").await;
    assert_eq!(
        b["model"],
        json!({"name": "strict_two_level", "description": "This model requires project hierarchy never exceeds a depth of two"})
    );
    let nova = service(&app, &admin, "compute").await;
    registered(
        &app,
        &admin,
        json!([{"service_id": nova, "resource_name": "cores", "default_limit": 10}]),
    )
    .await;
    let domain = create_domain(&app, "strict").await;
    let project = app.create_project("top", &domain).await;

    // Over the registered default (no domain limit yet): refused.
    let one = |owner: &str, id: &str, value: i64| json!({"limits": [{owner: id, "service_id": nova, "resource_name": "cores", "resource_limit": value}]});
    let (s, b) = post(&app, &admin, "/v3/limits", one("project_id", &project, 11)).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(
        message(&b),
        format!("Invalid resource limit: The resource limit (project_id: {project}, resource_name: cores, resource_limit: 11, service_id: {nova}, region_id: None) doesn't satisfy current hierarchy model..")
    );
    // A domain limit and a project limit in one batch: checked against each other.
    let (s, b) = post(
        &app,
        &admin,
        "/v3/limits",
        json!({"limits": [
            {"domain_id": domain, "service_id": nova, "resource_name": "cores", "resource_limit": 30},
            {"project_id": project, "service_id": nova, "resource_name": "cores", "resource_limit": 25},
        ]}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let domain_limit = b["limits"][0]["id"].as_str().expect("id").to_string();
    // The domain's limit may not drop below its project's.
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/limits/{domain_limit}"),
        Some(&admin),
        Some(json!({"limit": {"resource_limit": 20}})),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert!(
        message(&b).contains(&format!("(domain_id: {domain}, ")),
        "{b}"
    );
    let (s, _) = call(
        &app,
        Method::PATCH,
        &format!("/v3/limits/{domain_limit}"),
        Some(&admin),
        Some(json!({"limit": {"resource_limit": 25}})),
    )
    .await;
    assert_eq!(s, 200);

    // Depth: a sub-project is allowed, a sub-sub-project is not.
    let (s, b) = post(
        &app,
        &admin,
        "/v3/projects",
        json!({"project": {"name": "sub", "domain_id": domain, "parent_id": project}}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let sub = b["project"]["id"].as_str().expect("id").to_string();
    let (s, b) = post(
        &app,
        &admin,
        "/v3/projects",
        json!({"project": {"name": "subsub", "domain_id": domain, "parent_id": sub}}),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(
        message(&b),
        format!("Max hierarchy depth reached for {sub} branch.")
    );
}

both_backends!(registered_limits_crud, limits_crud_and_visibility);

pub mod configured {
    use super::*;
    both_backends!(@db strict_two_level_model);
}
