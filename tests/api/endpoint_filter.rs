//! /v3/OS-EP-FILTER over HTTP, and the filtered catalog in project-scoped tokens.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::catalog::{
    call, catalog_endpoint_ids, catalog_service_ids, create_endpoint, create_service,
    member_token_on, system_reader_token,
};
#[allow(unused_imports)]
use crate::helpers::{message, sorted_ids, TestApp};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn project_endpoint_associations_filter_the_catalog(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = Some(admin.as_str());
    let nova = create_service(&app, &admin, "compute", "nova").await;
    let nova_public =
        create_endpoint(&app, &admin, &nova, "public", "http://nova/$(project_id)s").await;
    let nova_internal = create_endpoint(&app, &admin, &nova, "internal", "http://nova-int").await;
    let glance = create_service(&app, &admin, "image", "glance").await;
    let glance_public = create_endpoint(&app, &admin, &glance, "public", "http://glance").await;
    let project = app.create_project("filtered", "default").await;
    let other = app.create_project("unfiltered", "default").await;
    let (_, full) = member_token_on(&app, &project).await;
    let full_ids = catalog_endpoint_ids(&full["token"]["catalog"]);
    assert!(
        full_ids.contains(&nova_public) && full_ids.contains(&glance_public),
        "no association yet: full catalog"
    );

    // Associate one endpoint.
    let assoc = format!("/v3/OS-EP-FILTER/projects/{project}/endpoints/{nova_public}");
    let generation = app.store.generation().current();
    let (s, b) = call(&app, Method::PUT, &assoc, a, None).await;
    assert_eq!((s, b), (204, Value::Null));
    assert!(
        app.store.generation().current() > generation,
        "an association changes catalogs: caches must drop"
    );
    let (s, b) = call(&app, Method::PUT, &assoc, a, None).await;
    assert_eq!(s, 409);
    assert_eq!(
        message(&b),
        "Conflict occurred attempting to store project_endpoint - Duplicate entry."
    );
    let (s, b) = call(
        &app,
        Method::PUT,
        &format!("/v3/OS-EP-FILTER/projects/{project}/endpoints/nope"),
        a,
        None,
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find endpoint: nope."));
    let (s, b) = call(
        &app,
        Method::PUT,
        &format!("/v3/OS-EP-FILTER/projects/nope/endpoints/{nova_public}"),
        a,
        None,
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find project: nope."));
    for method in [Method::GET, Method::HEAD] {
        let (s, _) = call(&app, method.clone(), &assoc, a, None).await;
        assert_eq!(s, 204, "{method}");
    }
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-EP-FILTER/projects/{project}/endpoints/{glance_public}"),
        a,
        None,
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (
            404,
            format!("Endpoint {glance_public} not found in project {project}").as_str()
        )
    );

    // Listings both ways.
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-EP-FILTER/projects/{project}/endpoints"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(sorted_ids(&b["endpoints"]), vec![nova_public.clone()]);
    assert_eq!(b["endpoints"][0]["region"], "RegionOne");
    assert_eq!(
        b["endpoints"][0]["links"]["self"],
        format!("{}/v3/endpoints/{nova_public}", app.address)
    );
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/OS-EP-FILTER/projects/nope/endpoints",
        a,
        None,
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find project: nope."));
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-EP-FILTER/endpoints/{nova_public}/projects"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(sorted_ids(&b["projects"]), vec![project.clone()]);
    assert_eq!(
        b["projects"][0]["links"]["self"],
        format!("{}/v3/projects/{project}", app.address)
    );
    assert_eq!(b["projects"][0]["name"], "filtered");
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/OS-EP-FILTER/endpoints/nope/projects",
        a,
        None,
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find endpoint: nope."));

    // The project's tokens see only that endpoint; services left empty disappear.
    let (member, body) = member_token_on(&app, &project).await;
    let catalog = &body["token"]["catalog"];
    assert_eq!(catalog_endpoint_ids(catalog), vec![nova_public.clone()]);
    assert_eq!(catalog_service_ids(catalog), vec![nova.clone()]);
    assert_eq!(
        catalog[0]["endpoints"][0]["url"],
        format!("http://nova/{project}")
    );
    let (s, c) = call(&app, Method::GET, "/v3/auth/catalog", Some(&member), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        catalog_endpoint_ids(&c["catalog"]),
        vec![nova_public.clone()]
    );
    let (s, v) = app.validate(&admin, &member, "").await;
    assert_eq!(s, 200);
    assert_eq!(
        catalog_endpoint_ids(&v["token"]["catalog"]),
        vec![nova_public.clone()]
    );
    // Another project is not affected.
    let (_, o) = member_token_on(&app, &other).await;
    assert!(catalog_endpoint_ids(&o["token"]["catalog"]).contains(&glance_public));

    // A second association widens the filter.
    let (s, _) = call(
        &app,
        Method::PUT,
        &format!("/v3/OS-EP-FILTER/projects/{project}/endpoints/{glance_public}"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, c) = call(&app, Method::GET, "/v3/auth/catalog", Some(&member), None).await;
    assert_eq!(
        catalog_endpoint_ids(&c["catalog"]),
        sorted(vec![nova_public.clone(), glance_public.clone()])
    );
    assert!(!catalog_endpoint_ids(&c["catalog"]).contains(&nova_internal));
    // A disabled associated endpoint stays out.
    call(
        &app,
        Method::PATCH,
        &format!("/v3/endpoints/{glance_public}"),
        a,
        Some(json!({"endpoint": {"enabled": false}})),
    )
    .await;
    let (_, c) = call(&app, Method::GET, "/v3/auth/catalog", Some(&member), None).await;
    assert_eq!(
        catalog_endpoint_ids(&c["catalog"]),
        vec![nova_public.clone()]
    );
    assert_eq!(catalog_service_ids(&c["catalog"]), vec![nova.clone()]);

    // Deleting an endpoint drops its associations.
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/endpoints/{glance_public}"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, b) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-EP-FILTER/projects/{project}/endpoints"),
        a,
        None,
    )
    .await;
    assert_eq!(sorted_ids(&b["endpoints"]), vec![nova_public.clone()]);

    // Removing the last association restores the full catalog.
    let (s, _) = call(&app, Method::DELETE, &assoc, a, None).await;
    assert_eq!(s, 204);
    let (s, b) = call(&app, Method::DELETE, &assoc, a, None).await;
    assert_eq!(
        (s, message(&b)),
        (
            404,
            format!("Endpoint {nova_public} not found in project {project}").as_str()
        )
    );
    let (_, c) = call(&app, Method::GET, "/v3/auth/catalog", Some(&member), None).await;
    let ids = catalog_endpoint_ids(&c["catalog"]);
    assert!(
        ids.contains(&nova_internal) && ids.contains(&nova_public),
        "{c}"
    );

    // Deleting the project drops its associations (store-level: the foreign key cascades).
    call(
        &app,
        Method::PUT,
        &format!("/v3/OS-EP-FILTER/projects/{other}/endpoints/{nova_internal}"),
        a,
        None,
    )
    .await;
    assert_eq!(
        app.store
            .delete_project(&other)
            .await
            .expect("delete project"),
        keystone_rs::model::ProjectDeletion::Deleted
    );
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-EP-FILTER/endpoints/{nova_internal}/projects"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(sorted_ids(&b["projects"]), Vec::<String>::new());
}

async fn endpoint_groups_crud_and_filtering(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = Some(admin.as_str());
    let nova = create_service(&app, &admin, "compute", "nova").await;
    let nova_internal = create_endpoint(&app, &admin, &nova, "internal", "http://nova-int").await;
    let nova_public = create_endpoint(&app, &admin, &nova, "public", "http://nova").await;
    let project = app.create_project("grouped", "default").await;

    // Create: name and non-empty filters required, only known filters, nothing else.
    let (s, b) = call(&app, Method::POST, "/v3/OS-EP-FILTER/endpoint_groups", a,
        Some(json!({"endpoint_group": {"name": "internal-only", "filters": {"interface": "internal"}}}))).await;
    assert_eq!(s, 201, "{b}");
    let g = b["endpoint_group"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        b["endpoint_group"],
        json!({"id": g, "name": "internal-only", "description": null, "filters": {"interface": "internal"},
        "links": {"self": format!("{}/v3/OS-EP-FILTER/endpoint_groups/{g}", app.address)}})
    );
    let (s, b) = call(
        &app,
        Method::POST,
        "/v3/OS-EP-FILTER/endpoint_groups",
        a,
        Some(json!({"endpoint_group": {"name": "x", "filters": {}}})),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (400, "filters field is required and cannot be empty")
    );
    let (s, b) = call(
        &app,
        Method::POST,
        "/v3/OS-EP-FILTER/endpoint_groups",
        a,
        Some(json!({"endpoint_group": {"name": "x", "filters": {"url": "http://x"}}})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(message(&b), "Expecting to find service_id or region_id or interface in endpoint_group. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.");
    for bad in [
        json!({"endpoint_group": {"filters": {"interface": "public"}}}),
        json!({"endpoint_group": {"name": "x"}}),
        json!({"endpoint_group": {"name": "x", "filters": {"interface": "bogus"}}}),
        json!({"endpoint_group": {"name": "x", "filters": {"interface": "public"}, "extra": 1}}),
        json!({"endpoint_group": {"name": "", "filters": {"interface": "public"}}}),
        json!({"endpoint_group": {"name": "x", "filters": "interface=public"}}),
    ] {
        let (s, b) = call(
            &app,
            Method::POST,
            "/v3/OS-EP-FILTER/endpoint_groups",
            a,
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, 400, "{bad} {b}");
    }
    let (_, b) = call(
        &app,
        Method::GET,
        "/v3/OS-EP-FILTER/endpoint_groups",
        a,
        None,
    )
    .await;
    assert_eq!(
        sorted_ids(&b["endpoint_groups"]),
        vec![g.clone()],
        "refused groups are not stored"
    );

    // Read, list, filter, update.
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-EP-FILTER/endpoint_groups/{g}"),
        a,
        None,
    )
    .await;
    assert_eq!(
        (s, b["endpoint_group"]["name"].as_str()),
        (200, Some("internal-only"))
    );
    let (s, _) = call(
        &app,
        Method::HEAD,
        &format!("/v3/OS-EP-FILTER/endpoint_groups/{g}"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/OS-EP-FILTER/endpoint_groups/nope",
        a,
        None,
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (404, "Could not find Endpoint Group: nope.")
    );
    let (_, b) = call(
        &app,
        Method::GET,
        "/v3/OS-EP-FILTER/endpoint_groups?name=internal-only",
        a,
        None,
    )
    .await;
    assert_eq!(sorted_ids(&b["endpoint_groups"]), vec![g.clone()]);
    let (_, b) = call(
        &app,
        Method::GET,
        "/v3/OS-EP-FILTER/endpoint_groups?name=other",
        a,
        None,
    )
    .await;
    assert_eq!(sorted_ids(&b["endpoint_groups"]), Vec::<String>::new());
    let (s, _) = call(
        &app,
        Method::GET,
        "/v3/OS-EP-FILTER/endpoint_groups?interface=public",
        a,
        None,
    )
    .await;
    assert_eq!(s, 400);
    let (s, b) = call(&app, Method::PATCH, &format!("/v3/OS-EP-FILTER/endpoint_groups/{g}"), a,
        Some(json!({"endpoint_group": {"description": "nova internal", "filters": {"interface": "internal", "service_id": nova}}}))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["endpoint_group"]["description"], "nova internal");
    assert_eq!(
        b["endpoint_group"]["filters"],
        json!({"interface": "internal", "service_id": nova})
    );
    for bad in [
        json!({"endpoint_group": {}}),
        json!({"endpoint_group": {"id": g}}),
        json!({"endpoint_group": {"filters": {"enabled": true}}}),
    ] {
        let (s, b) = call(
            &app,
            Method::PATCH,
            &format!("/v3/OS-EP-FILTER/endpoint_groups/{g}"),
            a,
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, 400, "{bad} {b}");
    }
    let (s, _) = call(
        &app,
        Method::PATCH,
        "/v3/OS-EP-FILTER/endpoint_groups/nope",
        a,
        Some(json!({"endpoint_group": {"name": "n"}})),
    )
    .await;
    assert_eq!(s, 404);

    // The group's endpoints.
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-EP-FILTER/endpoint_groups/{g}/endpoints"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(sorted_ids(&b["endpoints"]), vec![nova_internal.clone()]);
    let (s, _) = call(
        &app,
        Method::GET,
        "/v3/OS-EP-FILTER/endpoint_groups/nope/endpoints",
        a,
        None,
    )
    .await;
    assert_eq!(s, 404);

    // Group <-> project.
    let link = format!("/v3/OS-EP-FILTER/endpoint_groups/{g}/projects/{project}");
    let (s, b) = call(&app, Method::PUT, &link, a, None).await;
    assert_eq!((s, b), (204, Value::Null));
    let (s, b) = call(&app, Method::PUT, &link, a, None).await;
    assert_eq!(
        (s, message(&b)),
        (
            409,
            "Conflict occurred attempting to store project_endpoint_group - Duplicate entry."
        )
    );
    let (s, b) = call(
        &app,
        Method::PUT,
        &format!("/v3/OS-EP-FILTER/endpoint_groups/{g}/projects/nope"),
        a,
        None,
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find project: nope."));
    let (s, b) = call(
        &app,
        Method::PUT,
        &format!("/v3/OS-EP-FILTER/endpoint_groups/nope/projects/{project}"),
        a,
        None,
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (404, "Could not find Endpoint Group: nope.")
    );
    let (s, b) = call(&app, Method::GET, &link, a, None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        json!({"project_endpoint_group": {"endpoint_group_id": g, "project_id": project,
        "links": {"self": format!("/OS-EP-FILTER/endpoint_groups/{g}/projects/{project}")}}})
    );
    let (s, _) = call(&app, Method::HEAD, &link, a, None).await;
    assert_eq!(s, 200);
    let (_, b) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-EP-FILTER/endpoint_groups/{g}/projects"),
        a,
        None,
    )
    .await;
    assert_eq!(sorted_ids(&b["projects"]), vec![project.clone()]);
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/OS-EP-FILTER/endpoint_groups/nope/projects",
        a,
        None,
    )
    .await;
    assert_eq!((s, sorted_ids(&b["projects"])), (200, Vec::<String>::new()));
    let (_, b) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-EP-FILTER/projects/{project}/endpoint_groups"),
        a,
        None,
    )
    .await;
    assert_eq!(sorted_ids(&b["endpoint_groups"]), vec![g.clone()]);
    assert_eq!(
        b["endpoint_groups"][0]["links"]["self"],
        format!("{}/v3/OS-EP-FILTER/endpoint_groups/{g}", app.address)
    );
    let (s, _) = call(
        &app,
        Method::GET,
        "/v3/OS-EP-FILTER/projects/nope/endpoint_groups",
        a,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, b) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-EP-FILTER/projects/{project}/endpoints"),
        a,
        None,
    )
    .await;
    assert_eq!(
        sorted_ids(&b["endpoints"]),
        vec![nova_internal.clone()],
        "group endpoints count as the project's"
    );

    // The project's tokens see the group's endpoints only.
    let (member, body) = member_token_on(&app, &project).await;
    assert_eq!(
        catalog_endpoint_ids(&body["token"]["catalog"]),
        vec![nova_internal.clone()]
    );
    // A direct association adds to the group's.
    call(
        &app,
        Method::PUT,
        &format!("/v3/OS-EP-FILTER/projects/{project}/endpoints/{nova_public}"),
        a,
        None,
    )
    .await;
    let (_, c) = call(&app, Method::GET, "/v3/auth/catalog", Some(&member), None).await;
    assert_eq!(
        catalog_endpoint_ids(&c["catalog"]),
        sorted(vec![nova_internal.clone(), nova_public.clone()])
    );
    call(
        &app,
        Method::DELETE,
        &format!("/v3/OS-EP-FILTER/projects/{project}/endpoints/{nova_public}"),
        a,
        None,
    )
    .await;
    // A group whose filters select nothing leaves the project unfiltered (Keystone).
    call(
        &app,
        Method::PATCH,
        &format!("/v3/OS-EP-FILTER/endpoint_groups/{g}"),
        a,
        Some(json!({"endpoint_group": {"filters": {"region_id": "nowhere"}}})),
    )
    .await;
    let (_, c) = call(&app, Method::GET, "/v3/auth/catalog", Some(&member), None).await;
    assert!(catalog_service_ids(&c["catalog"]).len() >= 2, "{c}");
    call(
        &app,
        Method::PATCH,
        &format!("/v3/OS-EP-FILTER/endpoint_groups/{g}"),
        a,
        Some(json!({"endpoint_group": {"filters": {"interface": "internal", "service_id": nova}}})),
    )
    .await;

    // Remove the association, then the group.
    let (s, _) = call(&app, Method::DELETE, &link, a, None).await;
    assert_eq!(s, 204);
    let (s, b) = call(&app, Method::DELETE, &link, a, None).await;
    assert_eq!(
        (s, message(&b)),
        (404, "Endpoint Group Project Association not found")
    );
    let (s, b) = call(&app, Method::GET, &link, a, None).await;
    assert_eq!(
        (s, message(&b)),
        (404, "Endpoint Group Project Association not found")
    );
    let (_, c) = call(&app, Method::GET, "/v3/auth/catalog", Some(&member), None).await;
    assert!(
        catalog_endpoint_ids(&c["catalog"]).contains(&nova_public),
        "unfiltered again"
    );
    call(&app, Method::PUT, &link, a, None).await;
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/OS-EP-FILTER/endpoint_groups/{g}"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-EP-FILTER/endpoint_groups/{g}"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, b) = call(
        &app,
        Method::GET,
        &format!("/v3/OS-EP-FILTER/projects/{project}/endpoint_groups"),
        a,
        None,
    )
    .await;
    assert_eq!(
        sorted_ids(&b["endpoint_groups"]),
        Vec::<String>::new(),
        "deleting a group drops its associations"
    );
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/OS-EP-FILTER/endpoint_groups/{g}"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 404);
}

async fn endpoint_filter_protection_matrix(app: TestApp) {
    let admin = app.system_admin_token().await;
    let reader = system_reader_token(&app).await;
    let (_, member, project) = app.member_with_token("member").await;
    let nova = create_service(&app, &admin, "compute", "nova").await;
    let ep = create_endpoint(&app, &admin, &nova, "public", "http://nova").await;
    let (s, b) = call(
        &app,
        Method::POST,
        "/v3/OS-EP-FILTER/endpoint_groups",
        Some(&admin),
        Some(json!({"endpoint_group": {"name": "g", "filters": {"interface": "public"}}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let g = b["endpoint_group"]["id"].as_str().expect("id").to_string();
    let assoc = format!("/v3/OS-EP-FILTER/projects/{project}/endpoints/{ep}");
    let gassoc = format!("/v3/OS-EP-FILTER/endpoint_groups/{g}/projects/{project}");
    call(&app, Method::PUT, &assoc, Some(&admin), None).await;
    call(&app, Method::PUT, &gassoc, Some(&admin), None).await;
    let reads = [
        (assoc.clone(), 204),
        (
            format!("/v3/OS-EP-FILTER/projects/{project}/endpoints"),
            200,
        ),
        (format!("/v3/OS-EP-FILTER/endpoints/{ep}/projects"), 200),
        ("/v3/OS-EP-FILTER/endpoint_groups".to_string(), 200),
        (format!("/v3/OS-EP-FILTER/endpoint_groups/{g}"), 200),
        (
            format!("/v3/OS-EP-FILTER/endpoint_groups/{g}/projects"),
            200,
        ),
        (
            format!("/v3/OS-EP-FILTER/endpoint_groups/{g}/endpoints"),
            200,
        ),
        (gassoc.clone(), 200),
        (
            format!("/v3/OS-EP-FILTER/projects/{project}/endpoint_groups"),
            200,
        ),
    ];
    for (path, ok) in &reads {
        // Even the project's own member may not read its filter: Keystone's rules are admin or system reader.
        for (who, token, want) in [
            ("admin", Some(admin.as_str()), *ok),
            ("reader", Some(reader.as_str()), *ok),
            ("member", Some(member.as_str()), 403),
            ("anonymous", None, 401),
        ] {
            let (s, b) = call(&app, Method::GET, path, token, None).await;
            assert_eq!(s, want, "{who} GET {path}: {b}");
        }
    }
    let writes: Vec<(Method, String, Option<Value>, u16)> = vec![
        (Method::PUT, assoc.clone(), None, 409),
        (Method::PUT, gassoc.clone(), None, 409),
        (
            Method::POST,
            "/v3/OS-EP-FILTER/endpoint_groups".into(),
            Some(json!({"endpoint_group": {"name": "h", "filters": {"interface": "admin"}}})),
            201,
        ),
        (
            Method::PATCH,
            format!("/v3/OS-EP-FILTER/endpoint_groups/{g}"),
            Some(json!({"endpoint_group": {"name": "g2"}})),
            200,
        ),
        (Method::DELETE, assoc.clone(), None, 204),
        (Method::DELETE, gassoc.clone(), None, 204),
        (
            Method::DELETE,
            format!("/v3/OS-EP-FILTER/endpoint_groups/{g}"),
            None,
            204,
        ),
    ];
    for (method, path, body, admin_status) in writes {
        for (who, token, want) in [
            ("reader", Some(reader.as_str()), 403),
            ("member", Some(member.as_str()), 403),
            ("anonymous", None, 401),
        ] {
            let (s, b) = call(&app, method.clone(), &path, token, body.clone()).await;
            assert_eq!(s, want, "{who} {method} {path}: {b}");
        }
        let (s, b) = call(&app, method.clone(), &path, Some(&admin), body.clone()).await;
        assert_eq!(s, admin_status, "admin {method} {path}: {b}");
    }
    // The member still reads its own catalog.
    let (s, _) = call(&app, Method::GET, "/v3/auth/catalog", Some(&member), None).await;
    assert_eq!(s, 200);
}

both_backends!(
    project_endpoint_associations_filter_the_catalog,
    endpoint_groups_crud_and_filtering,
    endpoint_filter_protection_matrix,
);
