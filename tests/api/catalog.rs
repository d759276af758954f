//! /v3/regions, /v3/services, /v3/endpoints over HTTP, and the catalog tokens carry.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
pub use crate::helpers::call;
#[allow(unused_imports)]
use crate::helpers::{message, sorted_ids, TestApp, ADMIN_PASSWORD};
use keystone_rs::model::TargetKind;

/// A user with `reader` on the system, and a system-scoped token.
pub async fn system_reader_token(app: &TestApp) -> String {
    let name = format!("sysreader-{}", &crate::helpers::id()[..8]);
    let user = app.create_user(&name, "pa55word").await;
    app.grant(&user.user_id, TargetKind::System, "all", "reader")
        .await;
    let (status, token, body) = app
        .password_token(&name, "pa55word", json!({"system": {"all": true}}))
        .await;
    assert_eq!(status, 201, "{body}");
    token.expect("token")
}

/// A project-scoped token (and its body) for a user with `member` on `project_id`.
pub async fn member_token_on(app: &TestApp, project_id: &str) -> (String, Value) {
    let name = format!("m-{}", &crate::helpers::id()[..8]);
    let user = app.create_user(&name, "pa55word").await;
    app.grant(&user.user_id, TargetKind::Project, project_id, "member")
        .await;
    let (status, token, body) = app
        .password_token(&name, "pa55word", json!({"project": {"id": project_id}}))
        .await;
    assert_eq!(status, 201, "{body}");
    (token.expect("token"), body)
}

pub async fn create_service(app: &TestApp, admin: &str, service_type: &str, name: &str) -> String {
    let (s, b) = call(
        app,
        Method::POST,
        "/v3/services",
        Some(admin),
        Some(json!({"service": {"type": service_type, "name": name}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["service"]["id"].as_str().expect("id").to_string()
}

pub async fn create_endpoint(
    app: &TestApp,
    admin: &str,
    service_id: &str,
    interface: &str,
    url: &str,
) -> String {
    let (s, b) = call(
        app,
        Method::POST,
        "/v3/endpoints",
        Some(admin),
        Some(json!({"endpoint": {"service_id": service_id, "interface": interface, "url": url, "region_id": "RegionOne"}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["endpoint"]["id"].as_str().expect("id").to_string()
}

/// Endpoint ids in a catalog, sorted.
pub fn catalog_endpoint_ids(catalog: &Value) -> Vec<String> {
    let mut ids: Vec<String> = catalog
        .as_array()
        .map(|services| {
            services
                .iter()
                .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
                .filter_map(|e| e["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

pub fn catalog_service_ids(catalog: &Value) -> Vec<String> {
    let mut ids: Vec<String> = catalog
        .as_array()
        .map(|services| {
            services
                .iter()
                .filter_map(|s| s["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

async fn region_crud_and_rules(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = Some(admin.as_str());
    // POST with an id keeps it; extras round-trip; description defaults to ''.
    let (s, b) = call(
        &app,
        Method::POST,
        "/v3/regions",
        a,
        Some(json!({"region": {"id": "north", "color": "blue"}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["region"],
        json!({"id": "north", "description": "", "parent_region_id": null, "color": "blue",
        "links": {"self": format!("{}/v3/regions/north", app.address)}})
    );
    // POST without id, or with an empty one, generates a uuid hex.
    for body in [
        json!({"region": {"description": "d"}}),
        json!({"region": {"id": ""}}),
    ] {
        let (s, b) = call(&app, Method::POST, "/v3/regions", a, Some(body)).await;
        assert_eq!(s, 201, "{b}");
        let id = b["region"]["id"].as_str().expect("id");
        assert!(
            id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
    }
    // A taken id: 409 with Keystone's text (double period included).
    let (s, b) = call(
        &app,
        Method::POST,
        "/v3/regions",
        a,
        Some(json!({"region": {"id": "north"}})),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(
        message(&b),
        "Conflict occurred attempting to store region - Duplicate ID, north.."
    );
    // PUT creates with the URL's id; again is 409; a different body id is 400.
    let (s, b) = call(
        &app,
        Method::PUT,
        "/v3/regions/south",
        a,
        Some(json!({"region": {"description": "s"}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["region"]["id"], "south");
    let (s, _) = call(
        &app,
        Method::PUT,
        "/v3/regions/south",
        a,
        Some(json!({"region": {}})),
    )
    .await;
    assert_eq!(s, 409);
    let (s, b) = call(
        &app,
        Method::PUT,
        "/v3/regions/east",
        a,
        Some(json!({"region": {"id": "west"}})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        message(&b),
        "Conflicting region IDs specified: \"east\" != \"west\""
    );
    // Unknown parent: 404 naming the parent; nothing created.
    let (s, b) = call(
        &app,
        Method::POST,
        "/v3/regions",
        a,
        Some(json!({"region": {"id": "orphan", "parent_region_id": "nope"}})),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(message(&b), "Could not find region: nope.");
    let (s, _) = call(&app, Method::GET, "/v3/regions/orphan", a, None).await;
    assert_eq!(s, 404);
    // Bad input.
    for bad in [
        json!({"region": {"description": 5}}),
        json!({"region": {"parent_region_id": ""}}),
        json!({"region": {"id": "x".repeat(256)}}),
        json!({"noregion": {}}),
    ] {
        let (s, b) = call(&app, Method::POST, "/v3/regions", a, Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad} {b}");
    }
    // Children and the parent_region_id filter.
    for child in ["n1", "n2"] {
        let (s, b) = call(
            &app,
            Method::POST,
            "/v3/regions",
            a,
            Some(json!({"region": {"id": child, "parent_region_id": "north"}})),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(b["region"]["parent_region_id"], "north");
    }
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/regions?parent_region_id=north",
        a,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(sorted_ids(&b["regions"]), vec!["n1", "n2"]);
    assert_eq!(
        b["links"]["self"],
        format!("{}/v3/regions?parent_region_id=north", app.address)
    );
    let (s, b) = call(&app, Method::GET, "/v3/regions", a, None).await;
    assert_eq!(s, 200);
    assert!(sorted_ids(&b["regions"]).contains(&"RegionOne".to_string()));
    let (s, b) = call(&app, Method::GET, "/v3/regions?colour=red", a, None).await;
    assert_eq!(s, 400);
    assert_eq!(
        message(&b),
        "Additional properties are not allowed ('colour' was unexpected)"
    );
    // GET / HEAD / 404.
    let (s, b) = call(&app, Method::GET, "/v3/regions/n1", a, None).await;
    assert_eq!(
        (s, b["region"]["parent_region_id"].as_str()),
        (200, Some("north"))
    );
    let (s, b) = call(&app, Method::HEAD, "/v3/regions/n1", a, None).await;
    assert_eq!((s, b), (200, Value::Null));
    let (s, b) = call(&app, Method::GET, "/v3/regions/nowhere", a, None).await;
    assert_eq!(s, 404);
    assert_eq!(message(&b), "Could not find region: nowhere.");
    // PATCH: null description becomes ''; id is immutable; {} is refused.
    let (s, b) = call(
        &app,
        Method::PATCH,
        "/v3/regions/south",
        a,
        Some(json!({"region": {"description": null, "size": 3}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (
            b["region"]["description"].as_str(),
            b["region"]["size"].as_i64()
        ),
        (Some(""), Some(3))
    );
    let (s, b) = call(
        &app,
        Method::PATCH,
        "/v3/regions/south",
        a,
        Some(json!({"region": {"id": "other"}})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(message(&b), "Cannot change ID");
    let (s, _) = call(
        &app,
        Method::PATCH,
        "/v3/regions/south",
        a,
        Some(json!({"region": {}})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, b) = call(
        &app,
        Method::PATCH,
        "/v3/regions/nowhere",
        a,
        Some(json!({"region": {"description": "x"}})),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find region: nowhere."));
    let (s, b) = call(
        &app,
        Method::PATCH,
        "/v3/regions/south",
        a,
        Some(json!({"region": {"parent_region_id": "nowhere"}})),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find region: nowhere."));
    // Moving a region under another works.
    let (s, b) = call(
        &app,
        Method::PATCH,
        "/v3/regions/south",
        a,
        Some(json!({"region": {"parent_region_id": "n1"}})),
    )
    .await;
    assert_eq!(
        (s, b["region"]["parent_region_id"].as_str()),
        (200, Some("n1"))
    );
}

async fn region_cycles_are_refused(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = Some(admin.as_str());
    // top <- mid <- leaf
    for (id, parent) in [("top", None), ("mid", Some("top")), ("leaf", Some("mid"))] {
        let (s, b) = call(
            &app,
            Method::POST,
            "/v3/regions",
            a,
            Some(json!({"region": {"id": id, "parent_region_id": parent}})),
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    // top under leaf would close the loop; Keystone's message names the region being moved.
    let (s, b) = call(
        &app,
        Method::PATCH,
        "/v3/regions/top",
        a,
        Some(json!({"region": {"parent_region_id": "leaf"}})),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(
        message(&b),
        "The specified parent region top would create a circular region hierarchy."
    );
    let (s, b) = call(
        &app,
        Method::PATCH,
        "/v3/regions/mid",
        a,
        Some(json!({"region": {"parent_region_id": "mid"}})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        message(&b),
        "The specified parent region mid would create a circular region hierarchy."
    );
    // Nothing changed.
    let (_, b) = call(&app, Method::GET, "/v3/regions/top", a, None).await;
    assert_eq!(b["region"]["parent_region_id"], Value::Null);
    let (_, b) = call(&app, Method::GET, "/v3/regions/mid", a, None).await;
    assert_eq!(b["region"]["parent_region_id"], "top");
    // Clearing the parent is fine.
    let (s, b) = call(
        &app,
        Method::PATCH,
        "/v3/regions/mid",
        a,
        Some(json!({"region": {"parent_region_id": null}})),
    )
    .await;
    assert_eq!(
        (s, b["region"]["parent_region_id"].clone()),
        (200, Value::Null)
    );
}

async fn region_delete_takes_children_unless_endpoints(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = Some(admin.as_str());
    for (id, parent) in [
        ("p", None),
        ("c1", Some("p")),
        ("c2", Some("c1")),
        ("q", None),
        ("qc", Some("q")),
    ] {
        let (s, b) = call(
            &app,
            Method::POST,
            "/v3/regions",
            a,
            Some(json!({"region": {"id": id, "parent_region_id": parent}})),
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    let service = create_service(&app, &admin, "compute", "nova").await;
    let (s, b) = call(&app, Method::POST, "/v3/endpoints", a, Some(json!({"endpoint": {"service_id": service, "interface": "public", "url": "http://nova", "region_id": "qc"}}))).await;
    assert_eq!(s, 201, "{b}");
    // q's child has an endpoint: 403, and nothing is deleted.
    let (s, b) = call(&app, Method::DELETE, "/v3/regions/q", a, None).await;
    assert_eq!(s, 403);
    assert_eq!(
        message(&b),
        "Unable to delete region q because it or its child regions have associated endpoints."
    );
    for id in ["q", "qc"] {
        let (s, _) = call(&app, Method::GET, &format!("/v3/regions/{id}"), a, None).await;
        assert_eq!(s, 200, "{id}");
    }
    // p has no endpoints below it: it goes with its whole subtree.
    let (s, _) = call(&app, Method::DELETE, "/v3/regions/p", a, None).await;
    assert_eq!(s, 204);
    for id in ["p", "c1", "c2"] {
        let (s, _) = call(&app, Method::GET, &format!("/v3/regions/{id}"), a, None).await;
        assert_eq!(s, 404, "{id}");
    }
    let (s, b) = call(&app, Method::DELETE, "/v3/regions/p", a, None).await;
    assert_eq!((s, message(&b)), (404, "Could not find region: p."));
}

async fn service_crud(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = Some(admin.as_str());
    // Minimal: name '' and enabled true; no description unless given; a body id is ignored.
    let (s, b) = call(
        &app,
        Method::POST,
        "/v3/services",
        a,
        Some(json!({"service": {"type": "compute", "id": "mine"}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let sid = b["service"]["id"].as_str().expect("id").to_string();
    assert_ne!(sid, "mine");
    assert_eq!(b["service"]["name"], "");
    assert_eq!(b["service"]["enabled"], true);
    assert!(b["service"].get("description").is_none(), "{b}");
    assert_eq!(
        b["service"]["links"]["self"],
        format!("{}/v3/services/{sid}", app.address)
    );
    // Full, with extras.
    let (s, b) = call(&app, Method::POST, "/v3/services", a, Some(json!({"service": {"type": "image", "name": "glance", "description": "images", "enabled": false, "owner": "ops"}}))).await;
    assert_eq!(s, 201, "{b}");
    let glance = b["service"]["id"].as_str().expect("id").to_string();
    assert_eq!(b["service"]["description"], "images");
    assert_eq!(b["service"]["owner"], "ops");
    assert_eq!(b["service"]["enabled"], false);
    // Bad input.
    for bad in [
        json!({"service": {}}),
        json!({"service": {"type": ""}}),
        json!({"service": {"type": "x", "enabled": "yes"}}),
        json!({"service": {"type": "x", "name": ""}}),
        json!({"service": {"type": 3}}),
    ] {
        let (s, b) = call(&app, Method::POST, "/v3/services", a, Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad} {b}");
    }
    // Filters.
    let (_, b) = call(&app, Method::GET, "/v3/services?type=image", a, None).await;
    assert_eq!(sorted_ids(&b["services"]), vec![glance.clone()]);
    let (_, b) = call(&app, Method::GET, "/v3/services?name=glance", a, None).await;
    assert_eq!(sorted_ids(&b["services"]), vec![glance.clone()]);
    let (_, b) = call(&app, Method::GET, "/v3/services", a, None).await;
    assert_eq!(
        b["services"].as_array().map(Vec::len),
        Some(3),
        "keystone, compute, image: {b}"
    );
    // GET / HEAD / PATCH.
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/services/{glance}"),
        a,
        None,
    )
    .await;
    assert_eq!((s, b["service"]["type"].as_str()), (200, Some("image")));
    let (s, _) = call(
        &app,
        Method::HEAD,
        &format!("/v3/services/{glance}"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/services/{glance}"),
        a,
        Some(json!({"service": {"enabled": true, "name": "glance2", "id": glance}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (
            b["service"]["enabled"].as_bool(),
            b["service"]["name"].as_str(),
            b["service"]["description"].as_str()
        ),
        (Some(true), Some("glance2"), Some("images"))
    );
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/services/{glance}"),
        a,
        Some(json!({"service": {"id": "other"}})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "Cannot change ID"));
    let (s, _) = call(
        &app,
        Method::PATCH,
        &format!("/v3/services/{glance}"),
        a,
        Some(json!({"service": {}})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, b) = call(
        &app,
        Method::PATCH,
        "/v3/services/nope",
        a,
        Some(json!({"service": {"name": "x"}})),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find service: nope."));
    // DELETE takes the service's endpoints with it.
    let ep = create_endpoint(&app, &admin, &glance, "public", "http://glance").await;
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/services/{glance}"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("/v3/services/{glance}"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, b) = call(&app, Method::GET, &format!("/v3/endpoints/{ep}"), a, None).await;
    assert_eq!(
        (s, message(&b)),
        (404, format!("Could not find endpoint: {ep}.").as_str())
    );
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/services/{glance}"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 404);
}

async fn endpoint_crud(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = Some(admin.as_str());
    let nova = create_service(&app, &admin, "compute", "nova").await;
    let (s, b) = call(&app, Method::POST, "/v3/endpoints", a, Some(json!({"endpoint": {"service_id": nova, "interface": "internal",
        "url": "http://nova:8774/v2.1/$(project_id)s", "region_id": "RegionOne", "name": "n", "id": "ignored"}}))).await;
    assert_eq!(s, 201, "{b}");
    let ep = b["endpoint"]["id"].as_str().expect("id").to_string();
    assert_ne!(ep, "ignored");
    assert_eq!(
        b["endpoint"],
        json!({"id": ep, "interface": "internal", "region_id": "RegionOne", "region": "RegionOne",
        "service_id": nova, "url": "http://nova:8774/v2.1/$(project_id)s", "enabled": true, "name": "n",
        "links": {"self": format!("{}/v3/endpoints/{ep}", app.address)}})
    );
    let (_, before) = call(&app, Method::GET, "/v3/endpoints", a, None).await;
    let count = before["endpoints"].as_array().map(Vec::len);
    // Refusals, each with nothing written.
    let cases = [
        (json!({"endpoint": {"interface": "public", "url": "http://x"}}), None),
        (json!({"endpoint": {"service_id": nova, "interface": "bogus", "url": "http://x"}}), None),
        (json!({"endpoint": {"service_id": nova, "interface": "public", "url": ""}}), None),
        (json!({"endpoint": {"service_id": nova, "interface": "public", "url": "no-scheme"}}), None),
        (json!({"endpoint": {"service_id": nova, "interface": "public", "url": "http://x", "enabled": "True"}}), None),
        (json!({"endpoint": {"service_id": nova, "interface": "public", "url": "http://x/$(nonexistent)s"}}),
            Some("Cannot create an endpoint with an invalid URL: http://x/$(nonexistent)s.")),
        (json!({"endpoint": {"service_id": nova, "interface": "public", "url": "http://x", "region_id": "nowhere"}}),
            Some("Expecting to find endpoint region_id in region table. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")),
        (json!({"endpoint": {"service_id": "nope", "interface": "public", "url": "http://x", "region": "fresh"}}),
            Some("Expecting to find endpoint service_id in service table. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")),
    ];
    for (bad, msg) in cases {
        let (s, b) = call(&app, Method::POST, "/v3/endpoints", a, Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad} {b}");
        if let Some(m) = msg {
            assert_eq!(message(&b), m);
        }
    }
    let (_, after) = call(&app, Method::GET, "/v3/endpoints", a, None).await;
    assert_eq!(after["endpoints"].as_array().map(Vec::len), count);
    let (s, _) = call(&app, Method::GET, "/v3/regions/fresh", a, None).await;
    assert_eq!(
        s, 404,
        "a refused endpoint must not leave its legacy region behind"
    );
    // The legacy `region` attribute creates its region.
    let (s, b) = call(&app, Method::POST, "/v3/endpoints", a, Some(json!({"endpoint": {"service_id": nova, "interface": "admin", "url": "http://nova-admin", "region": "legacy"}}))).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        (
            b["endpoint"]["region_id"].as_str(),
            b["endpoint"]["region"].as_str()
        ),
        (Some("legacy"), Some("legacy"))
    );
    let legacy_ep = b["endpoint"]["id"].as_str().expect("id").to_string();
    let (s, _) = call(&app, Method::GET, "/v3/regions/legacy", a, None).await;
    assert_eq!(s, 200);
    // No region at all is fine.
    let (s, b) = call(
        &app,
        Method::POST,
        "/v3/endpoints",
        a,
        Some(
            json!({"endpoint": {"service_id": nova, "interface": "public", "url": "http://nova"}}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["endpoint"]["region_id"], Value::Null);
    // Filters.
    let (_, b) = call(&app, Method::GET, "/v3/endpoints?interface=admin", a, None).await;
    assert!(
        b["endpoints"]
            .as_array()
            .expect("list")
            .iter()
            .all(|e| e["interface"] == "admin"),
        "{b}"
    );
    let (_, b) = call(
        &app,
        Method::GET,
        &format!("/v3/endpoints?service_id={nova}&region_id=legacy"),
        a,
        None,
    )
    .await;
    assert_eq!(sorted_ids(&b["endpoints"]), vec![legacy_ep.clone()]);
    let (_, b) = call(
        &app,
        Method::GET,
        &format!("/v3/endpoints?service_id={nova}"),
        a,
        None,
    )
    .await;
    assert_eq!(b["endpoints"].as_array().map(Vec::len), Some(3));
    let (s, b) = call(&app, Method::GET, "/v3/endpoints?interface=bogus", a, None).await;
    assert_eq!(s, 400);
    assert_eq!(message(&b), "Invalid input for query parameters interface. Value: bogus. 'bogus' is not one of ['admin', 'internal', 'public']");
    // GET / HEAD / PATCH / DELETE.
    let (s, _) = call(&app, Method::HEAD, &format!("/v3/endpoints/{ep}"), a, None).await;
    assert_eq!(s, 200);
    let (s, b) = call(&app, Method::PATCH, &format!("/v3/endpoints/{ep}"), a, Some(json!({"endpoint": {"enabled": false, "url": "http://nova2/$(tenant_id)s", "interface": "public"}}))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (
            b["endpoint"]["enabled"].as_bool(),
            b["endpoint"]["url"].as_str(),
            b["endpoint"]["interface"].as_str(),
            b["endpoint"]["name"].as_str()
        ),
        (
            Some(false),
            Some("http://nova2/$(tenant_id)s"),
            Some("public"),
            Some("n")
        )
    );
    for (bad, status) in [
        (json!({"endpoint": {"region_id": "nowhere"}}), 400),
        (json!({"endpoint": {"service_id": "nope"}}), 400),
        (json!({"endpoint": {"enabled": "kitties"}}), 400),
        (json!({"endpoint": {"id": "x"}}), 400),
        (json!({"endpoint": {}}), 400),
    ] {
        let (s, b) = call(
            &app,
            Method::PATCH,
            &format!("/v3/endpoints/{ep}"),
            a,
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, status, "{bad} {b}");
    }
    let (_, b) = call(&app, Method::GET, &format!("/v3/endpoints/{ep}"), a, None).await;
    assert_eq!(
        b["endpoint"]["region_id"], "RegionOne",
        "refused PATCHes change nothing"
    );
    let (s, b) = call(
        &app,
        Method::PATCH,
        "/v3/endpoints/nope",
        a,
        Some(json!({"endpoint": {"region": "never"}})),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find endpoint: nope."));
    let (s, _) = call(&app, Method::GET, "/v3/regions/never", a, None).await;
    assert_eq!(s, 404);
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/endpoints/{ep}"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/endpoints/{ep}"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 404);
}

async fn token_catalog_follows_catalog_changes(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = Some(admin.as_str());
    let nova = create_service(&app, &admin, "compute", "nova").await;
    let ep = create_endpoint(
        &app,
        &admin,
        &nova,
        "public",
        "http://nova/v2.1/$(project_id)s",
    )
    .await;
    let (status, token, body) = app
        .password_token(
            "admin",
            ADMIN_PASSWORD,
            json!({"project": {"id": app.admin_project_id}}),
        )
        .await;
    assert_eq!(status, 201);
    let catalog = &body["token"]["catalog"];
    let compute = catalog
        .as_array()
        .expect("catalog")
        .iter()
        .find(|s| s["id"] == nova.as_str())
        .expect("new service in catalog");
    assert_eq!(compute["type"], "compute");
    assert_eq!(compute["name"], "nova");
    assert_eq!(
        compute["endpoints"],
        json!([{"id": ep, "interface": "public", "region_id": "RegionOne",
        "url": format!("http://nova/v2.1/{}", app.admin_project_id), "region": "RegionOne"}])
    );
    // Domain- or system-scoped tokens have no project: a $(project_id)s endpoint is left out.
    let (_, _, sys) = app
        .password_token("admin", ADMIN_PASSWORD, json!({"system": {"all": true}}))
        .await;
    assert!(!catalog_endpoint_ids(&sys["token"]["catalog"]).contains(&ep));
    assert!(
        catalog_service_ids(&sys["token"]["catalog"]).contains(&nova),
        "services without endpoints stay in an unfiltered catalog"
    );
    // Disable the endpoint: new and re-validated tokens lose it.
    let (s, _) = call(
        &app,
        Method::PATCH,
        &format!("/v3/endpoints/{ep}"),
        a,
        Some(json!({"endpoint": {"enabled": false}})),
    )
    .await;
    assert_eq!(s, 200);
    let token = token.expect("token");
    let (s, v) = app.validate(&admin, &token, "").await;
    assert_eq!(s, 200);
    assert!(
        !catalog_endpoint_ids(&v["token"]["catalog"]).contains(&ep),
        "{v}"
    );
    let (s, c) = call(&app, Method::GET, "/v3/auth/catalog", Some(&token), None).await;
    assert_eq!(s, 200);
    assert!(!catalog_endpoint_ids(&c["catalog"]).contains(&ep));
    // Re-enable, then disable the service: the whole service goes.
    call(
        &app,
        Method::PATCH,
        &format!("/v3/endpoints/{ep}"),
        a,
        Some(json!({"endpoint": {"enabled": true}})),
    )
    .await;
    let (_, c) = call(&app, Method::GET, "/v3/auth/catalog", Some(&token), None).await;
    assert!(catalog_endpoint_ids(&c["catalog"]).contains(&ep));
    call(
        &app,
        Method::PATCH,
        &format!("/v3/services/{nova}"),
        a,
        Some(json!({"service": {"enabled": false}})),
    )
    .await;
    let (_, c) = call(&app, Method::GET, "/v3/auth/catalog", Some(&token), None).await;
    assert!(!catalog_service_ids(&c["catalog"]).contains(&nova));
    assert!(
        !catalog_endpoint_ids(&c["catalog"]).is_empty(),
        "keystone's own endpoints remain"
    );
}

async fn catalog_protection_matrix(app: TestApp) {
    let admin = app.system_admin_token().await;
    let reader = system_reader_token(&app).await;
    let (_, member, _) = app.member_with_token("member").await;
    let nova = create_service(&app, &admin, "compute", "nova").await;
    let ep = create_endpoint(&app, &admin, &nova, "public", "http://nova").await;
    let reads = [
        "/v3/services".to_string(),
        format!("/v3/services/{nova}"),
        "/v3/endpoints".to_string(),
        format!("/v3/endpoints/{ep}"),
    ];
    for path in &reads {
        for (who, token, want) in [
            ("admin", Some(admin.as_str()), 200),
            ("reader", Some(reader.as_str()), 200),
            ("member", Some(member.as_str()), 403),
            ("anonymous", None, 401),
        ] {
            let (s, b) = call(&app, Method::GET, path, token, None).await;
            assert_eq!(s, want, "{who} GET {path}: {b}");
        }
    }
    // Regions are readable with any token (Keystone's rule is empty).
    for path in ["/v3/regions", "/v3/regions/RegionOne"] {
        for (who, token, want) in [
            ("admin", Some(admin.as_str()), 200),
            ("reader", Some(reader.as_str()), 200),
            ("member", Some(member.as_str()), 200),
            ("anonymous", None, 401),
        ] {
            let (s, b) = call(&app, Method::GET, path, token, None).await;
            assert_eq!(s, want, "{who} GET {path}: {b}");
        }
    }
    // Writes: only the admin. Policy comes before lookups, so unknown ids still give 403 to others.
    let writes: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/v3/regions".into(),
            json!({"region": {"id": "m1"}}),
        ),
        (Method::PUT, "/v3/regions/m2".into(), json!({"region": {}})),
        (
            Method::PATCH,
            "/v3/regions/RegionOne".into(),
            json!({"region": {"description": "x"}}),
        ),
        (
            Method::POST,
            "/v3/services".into(),
            json!({"service": {"type": "t"}}),
        ),
        (
            Method::PATCH,
            format!("/v3/services/{nova}"),
            json!({"service": {"name": "n2"}}),
        ),
        (
            Method::POST,
            "/v3/endpoints".into(),
            json!({"endpoint": {"service_id": nova, "interface": "admin", "url": "http://a"}}),
        ),
        (
            Method::PATCH,
            format!("/v3/endpoints/{ep}"),
            json!({"endpoint": {"url": "http://b"}}),
        ),
        (Method::DELETE, "/v3/regions/unknown".into(), Value::Null),
        (Method::DELETE, "/v3/services/unknown".into(), Value::Null),
        (Method::DELETE, "/v3/endpoints/unknown".into(), Value::Null),
    ];
    for (method, path, body) in &writes {
        let body = (!body.is_null()).then(|| body.clone());
        for (who, token, want) in [
            ("reader", Some(reader.as_str()), 403),
            ("member", Some(member.as_str()), 403),
            ("anonymous", None, 401),
        ] {
            let (s, b) = call(&app, method.clone(), path, token, body.clone()).await;
            assert_eq!(s, want, "{who} {method} {path}: {b}");
        }
        let (s, b) = call(&app, method.clone(), path, Some(&admin), body.clone()).await;
        let want = if *method == Method::DELETE {
            404
        } else if *method == Method::PATCH {
            200
        } else {
            201
        };
        assert_eq!(s, want, "admin {method} {path}: {b}");
    }
    // The admin's deletes of real entities succeed.
    for path in [
        format!("/v3/endpoints/{ep}"),
        format!("/v3/services/{nova}"),
        "/v3/regions/m1".to_string(),
    ] {
        let (s, _) = call(&app, Method::DELETE, &path, Some(&admin), None).await;
        assert_eq!(s, 204, "{path}");
    }
    // A project member reads its catalog.
    let (s, b) = call(&app, Method::GET, "/v3/auth/catalog", Some(&member), None).await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b["catalog"]
            .as_array()
            .is_some_and(|c| c.iter().any(|s| s["type"] == "identity")),
        "{b}"
    );
    let (s, _) = call(&app, Method::GET, "/v3/auth/catalog", None, None).await;
    assert_eq!(s, 401);
}

both_backends!(
    region_crud_and_rules,
    region_cycles_are_refused,
    region_delete_takes_children_unless_endpoints,
    service_crud,
    endpoint_crud,
    token_catalog_follows_catalog_changes,
    catalog_protection_matrix,
);
