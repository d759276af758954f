//! /v3/projects and project tags over HTTP: shapes, Keystone's hierarchy and tag
//! rules, projects acting as domains, revocation, and the default policy per route.

use keystone_rs::model::TargetKind;
use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::call_with_headers as call;
#[allow(unused_imports)]
use crate::helpers::{
    domain_token, message, role_token, spawn_app_with, system_token, Db, TestApp,
};

async fn status(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> u16 {
    call(app, method, path, token, body).await.0
}

/// Creates a project over the API as `token`; returns its body.
async fn create(app: &TestApp, token: &str, project: Value) -> Value {
    let (s, _, body) = call(
        app,
        Method::POST,
        "/v3/projects",
        Some(token),
        Some(json!({ "project": project })),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    body["project"].clone()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn project_token(app: &TestApp, role: &str, project_id: &str) -> String {
    let scope = json!({"project": {"id": project_id}});
    role_token(app, role, TargetKind::Project, project_id, scope)
        .await
        .1
}

async fn list_ids(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (s, _, body) = call(
        app,
        Method::GET,
        &format!("/v3/projects{query}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body["projects"]
        .as_array()
        .expect("projects")
        .iter()
        .map(id_of)
        .collect()
}

async fn project_crud_shape_and_validation(app: TestApp) {
    let admin = app.system_admin_token().await;
    // Keystone's shape, in Keystone's key order, extra attributes kept.
    let p = create(
        &app,
        &admin,
        json!({"name": "p1", "domain_id": "default", "description": "d", "color": "red"}),
    )
    .await;
    let id = id_of(&p);
    let keys: Vec<&str> = p
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "domain_id",
            "description",
            "enabled",
            "parent_id",
            "is_domain",
            "tags",
            "options",
            "color",
            "links"
        ]
    );
    assert_eq!(
        p["parent_id"], "default",
        "a top-level project's parent is its domain"
    );
    assert_eq!(p["is_domain"], false);
    assert_eq!(p["enabled"], true);
    assert_eq!(p["tags"], json!([]));
    assert_eq!(p["options"], json!({}));
    assert_eq!(
        p["links"]["self"],
        format!("{}/v3/projects/{id}", app.address)
    );
    // GET and HEAD
    let (s, _, got) = call(
        &app,
        Method::GET,
        &format!("/v3/projects/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(got["project"], p);
    let (s, _, body) = call(
        &app,
        Method::HEAD,
        &format!("/v3/projects/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((s, body), (200, Value::Null));
    // The domain defaults to [identity] default_domain_id for a system token; names are stripped.
    let p2 = create(&app, &admin, json!({"name": " p2 ", "enabled": false})).await;
    assert_eq!(
        (
            p2["domain_id"].as_str(),
            p2["name"].as_str(),
            p2["enabled"].as_bool()
        ),
        (Some("default"), Some("p2"), Some(false))
    );
    // Duplicate name in the same domain: Keystone's 409 text.
    let (s, _, body) = call(
        &app,
        Method::POST,
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "p1"}})),
    )
    .await;
    assert_eq!(s, 409);
    let m = message(&body);
    assert!(m.starts_with("Conflict occurred attempting to store project - it is not permitted to have two projects with either the same name or same id in the same domain: name is p1, project id "), "{m}");
    // ... but fine in another domain.
    let (s, _, d2) = call(
        &app,
        Method::POST,
        "/v3/domains",
        Some(&admin),
        Some(json!({"domain": {"name": "d2"}})),
    )
    .await;
    assert_eq!(s, 201);
    let d2 = id_of(&d2["domain"]);
    let other = create(&app, &admin, json!({"name": "p1", "domain_id": d2})).await;
    assert_eq!(other["parent_id"], d2.as_str());
    // Schema violations: 400 and nothing written.
    let before = list_ids(&app, &admin, "").await.len();
    for bad in [
        json!({"project": {}}),
        json!({"project": {"name": ""}}),
        json!({"project": {"name": "x".repeat(65)}}),
        json!({"project": {"name": "x", "enabled": "yes"}}),
        json!({"project": {"name": "x", "is_domain": 1}}),
        json!({"project": {"name": "x", "domain_id": "bad id"}}),
        json!({"project": {"name": "x", "parent_id": 7}}),
        json!({"project": {"name": "x", "tags": "a"}}),
        json!({"project": {"name": "x", "tags": ["a/b"]}}),
        json!({"project": {"name": "x", "tags": ["a", "a"]}}),
        json!({"project": {"name": "x", "tags": [""]}}),
        json!({"project": {"name": "x", "tags": (0..81).map(|i| format!("t{i}")).collect::<Vec<_>>()}}),
        json!({"project": {"name": "x", "options": {"colour": true}}}),
        json!({"project": {"name": "x", "options": {"immutable": true}}}),
        json!({"noproject": {"name": "x"}}),
    ] {
        let (s, _, body) = call(
            &app,
            Method::POST,
            "/v3/projects",
            Some(&admin),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, 400, "{bad} -> {body}");
        assert_eq!(body["error"]["code"], 400);
    }
    let (s, _, body) = call(
        &app,
        Method::POST,
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "x", "domain_id": "nope"}})),
    )
    .await;
    assert_eq!((s, message(&body)), (400, "Could not find domain: nope."));
    assert_eq!(
        list_ids(&app, &admin, "").await.len(),
        before,
        "rejected creates wrote nothing"
    );
    // PATCH
    let path = format!("/v3/projects/{id}");
    let (s, _, body) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"project": {"name": "p1b", "description": "new", "size": 3}})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (
            body["project"]["name"].as_str(),
            body["project"]["description"].as_str(),
            body["project"]["size"].as_i64(),
            body["project"]["color"].as_str()
        ),
        (Some("p1b"), Some("new"), Some(3), Some("red"))
    );
    let (_, _, got) = call(&app, Method::GET, &path, Some(&admin), None).await;
    assert_eq!(got["project"], body["project"], "the update was stored");
    for (patch, code, text) in [
        (json!({"id": "other"}), 400, "Cannot change ID"),
        (json!({"domain_id": d2}), 400, "Cannot change Domain ID"),
        (
            json!({"parent_id": d2}),
            403,
            "Update of `parent_id` is not allowed.",
        ),
        (
            json!({"is_domain": true}),
            400,
            "Update of `is_domain` is not allowed.",
        ),
    ] {
        let (s, _, body) = call(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"project": patch})),
        )
        .await;
        assert_eq!((s, message(&body)), (code, text), "{patch}");
    }
    // Unchanged immutable values are accepted, as Keystone compares them.
    let (s, _, _) = call(&app, Method::PATCH, &path, Some(&admin), Some(json!({"project": {"id": id, "domain_id": "default", "parent_id": "default", "is_domain": false}}))).await;
    assert_eq!(s, 200);
    let (s, _, body) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"project": {"name": "p2"}})),
    )
    .await;
    assert_eq!(s, 409, "{body}");
    assert!(
        message(&body).contains(&format!("name is p2, project id {id}.")),
        "{body}"
    );
    let (s, _, _) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"project": {"name": ""}})),
    )
    .await;
    assert_eq!(s, 400);
    // Unsupported method on the collection and on an entity.
    assert_eq!(
        status(&app, Method::PUT, "/v3/projects", Some(&admin), None).await,
        405
    );
    assert_eq!(
        status(&app, Method::POST, &path, Some(&admin), None).await,
        405
    );
    // DELETE
    assert_eq!(
        status(&app, Method::DELETE, &path, Some(&admin), None).await,
        204
    );
    let (s, _, body) = call(&app, Method::GET, &path, Some(&admin), None).await;
    assert_eq!(
        (s, message(&body).to_string()),
        (404, format!("Could not find project: {id}."))
    );
    assert_eq!(
        status(&app, Method::DELETE, &path, Some(&admin), None).await,
        404
    );
    assert_eq!(
        status(
            &app,
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"project": {"name": "z"}}))
        )
        .await,
        404
    );
}

async fn hierarchy_rules(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (_, _, d2) = call(
        &app,
        Method::POST,
        "/v3/domains",
        Some(&admin),
        Some(json!({"domain": {"name": "d2"}})),
    )
    .await;
    let d2 = id_of(&d2["domain"]);
    // A chain of Keystone's default maximum: five levels below the domain.
    let a = create(&app, &admin, json!({"name": "a", "domain_id": "default"})).await;
    let mut chain = vec![id_of(&a)];
    for name in ["b", "c", "d", "e"] {
        let parent = chain.last().expect("parent").clone();
        // domain_id omitted: the parent's domain is the default one anyway.
        let p = create(&app, &admin, json!({"name": name, "parent_id": parent})).await;
        assert_eq!(p["parent_id"], parent.as_str());
        assert_eq!(p["domain_id"], "default");
        chain.push(id_of(&p));
    }
    let (a, b, c, d, e) = (&chain[0], &chain[1], &chain[2], &chain[3], &chain[4]);
    let (s, _, body) = call(
        &app,
        Method::POST,
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "f", "parent_id": e}})),
    )
    .await;
    assert_eq!(
        (s, message(&body).to_string()),
        (403, format!("Max hierarchy depth reached for {e} branch."))
    );
    // parent_id equal to the domain makes a top-level project.
    let top = create(
        &app,
        &admin,
        json!({"name": "top", "domain_id": "default", "parent_id": "default"}),
    )
    .await;
    assert_eq!(top["parent_id"], "default");
    // Parents must agree with the domain.
    let x = create(&app, &admin, json!({"name": "x", "domain_id": d2})).await;
    let x = id_of(&x);
    let (s, _, body) = call(
        &app,
        Method::POST,
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "y", "domain_id": "default", "parent_id": x}})),
    )
    .await;
    assert_eq!((s, message(&body).to_string()), (400, format!("Cannot create project, since it specifies its domain_id default, but specifies a parent in a different domain ({d2}).")));
    let (s, _, body) = call(
        &app,
        Method::POST,
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "y", "domain_id": "default", "parent_id": d2}})),
    )
    .await;
    assert_eq!((s, message(&body).to_string()), (400, format!("Cannot create project, the parent ({d2}) is acting as a domain, but this project's domain id (default) does not match the parent's id.")));
    let (s, _, body) = call(
        &app,
        Method::POST,
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "y", "parent_id": "nope"}})),
    )
    .await;
    assert_eq!((s, message(&body)), (400, "Could not find project: nope."));
    // Filters on the hierarchy.
    assert_eq!(
        list_ids(&app, &admin, &format!("?parent_id={a}")).await,
        vec![b.clone()]
    );
    let top_level = list_ids(&app, &admin, "?parent_id=default").await;
    assert!(
        top_level.contains(a) && !top_level.contains(b),
        "{top_level:?}"
    );
    assert_eq!(
        list_ids(&app, &admin, &format!("?domain_id={d2}")).await,
        vec![x.clone()]
    );
    // Expansions.
    let (_, _, body) = call(
        &app,
        Method::GET,
        &format!("/v3/projects/{a}?subtree_as_ids"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        body["project"]["subtree"],
        json!({ b.clone(): { c.clone(): { d.clone(): { e.clone(): null } } } })
    );
    let (_, _, body) = call(
        &app,
        Method::GET,
        &format!("/v3/projects/{c}?parents_as_ids"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        body["project"]["parents"],
        json!({ b.clone(): { a.clone(): { "default": null } } })
    );
    let (s, _, body) = call(
        &app,
        Method::GET,
        &format!("/v3/projects/{c}?parents_as_ids&parents_as_list"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, message(&body)),
        (
            400,
            "Cannot use parents_as_list and parents_as_ids query params at the same time."
        )
    );
    // parents_as_list shows only parents the caller has a role on.
    let reader_on_a = project_token(&app, "reader", a).await;
    let (s, _, body) = call(
        &app,
        Method::GET,
        &format!("/v3/projects/{a}?subtree_as_list"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, body["project"]["subtree"].as_array().map(Vec::len)),
        (200, Some(0)),
        "the system admin has no role on the subtree"
    );
    let admin_user = app.admin_user_id.clone();
    app.grant(&admin_user, TargetKind::Project, b, "member")
        .await;
    let (_, _, body) = call(
        &app,
        Method::GET,
        &format!("/v3/projects/{c}?parents_as_list"),
        Some(&admin),
        None,
    )
    .await;
    let parents: Vec<String> = body["project"]["parents"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| id_of(&p["project"]))
        .collect();
    assert_eq!(parents, vec![b.clone()]);
    // A project with children cannot be deleted (Keystone has no cascade on the API).
    let (s, _, body) = call(
        &app,
        Method::DELETE,
        &format!("/v3/projects/{a}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((s, message(&body).to_string()), (403, format!("Cannot delete the project {a} since it is not a leaf in the hierarchy. Use the cascade option if you want to delete a whole subtree.")));
    assert_eq!(
        status(
            &app,
            Method::GET,
            &format!("/v3/projects/{a}"),
            Some(&reader_on_a),
            None
        )
        .await,
        200,
        "the refused delete changed nothing"
    );
    // Disable only above a disabled subtree; enable only below enabled parents.
    let (s, _, body) = call(
        &app,
        Method::PATCH,
        &format!("/v3/projects/{d}"),
        Some(&admin),
        Some(json!({"project": {"enabled": false}})),
    )
    .await;
    assert_eq!(
        (s, message(&body).to_string()),
        (
            403,
            format!("Cannot disable project {d} since its subtree contains enabled projects.")
        )
    );
    for id in [e, d] {
        assert_eq!(
            status(
                &app,
                Method::PATCH,
                &format!("/v3/projects/{id}"),
                Some(&admin),
                Some(json!({"project": {"enabled": false}}))
            )
            .await,
            200
        );
    }
    let (s, _, body) = call(
        &app,
        Method::PATCH,
        &format!("/v3/projects/{e}"),
        Some(&admin),
        Some(json!({"project": {"enabled": true}})),
    )
    .await;
    assert_eq!(
        (s, message(&body).to_string()),
        (
            403,
            format!("Cannot enable project {e} since it has disabled parents")
        )
    );
    // No new project in a disabled branch (checked before the depth).
    let (s, _, body) = call(
        &app,
        Method::POST,
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "under-e", "parent_id": e}})),
    )
    .await;
    assert_eq!(
        (s, message(&body).to_string()),
        (
            400,
            format!("cannot create a project in a branch containing a disabled project: {d}")
        )
    );
    // Leaves can be deleted, bottom-up.
    for id in [e, d, c] {
        assert_eq!(
            status(
                &app,
                Method::DELETE,
                &format!("/v3/projects/{id}"),
                Some(&admin),
                None
            )
            .await,
            204
        );
    }
    assert_eq!(
        list_ids(&app, &admin, &format!("?parent_id={b}")).await,
        Vec::<String>::new()
    );
    // A disabled domain is a disabled parent.
    let (s, _, _) = call(
        &app,
        Method::PATCH,
        &format!("/v3/domains/{d2}"),
        Some(&admin),
        Some(json!({"domain": {"enabled": false}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, body) = call(
        &app,
        Method::POST,
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "z", "domain_id": d2}})),
    )
    .await;
    assert_eq!(
        (s, message(&body).to_string()),
        (
            400,
            format!("cannot create a project in a branch containing a disabled project: {d2}")
        )
    );
}

async fn projects_acting_as_domains(app: TestApp) {
    let admin = app.system_admin_token().await;
    let dom = create(
        &app,
        &admin,
        json!({"name": "dom1", "is_domain": true, "description": "as a project"}),
    )
    .await;
    let id = id_of(&dom);
    assert_eq!(
        (
            dom["is_domain"].as_bool(),
            dom["domain_id"].clone(),
            dom["parent_id"].clone()
        ),
        (Some(true), Value::Null, Value::Null)
    );
    // It is a domain.
    let (s, _, body) = call(
        &app,
        Method::GET,
        &format!("/v3/domains/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (
            s,
            body["domain"]["name"].as_str(),
            body["domain"]["description"].as_str()
        ),
        (200, Some("dom1"), Some("as a project"))
    );
    // Listed with is_domain=true only.
    let domains = list_ids(&app, &admin, "?is_domain=true").await;
    assert!(
        domains.contains(&id) && domains.contains(&"default".to_string()),
        "{domains:?}"
    );
    let projects = list_ids(&app, &admin, "").await;
    assert!(
        !projects.contains(&id) && projects.contains(&app.admin_project_id),
        "{projects:?}"
    );
    assert_eq!(list_ids(&app, &admin, "?is_domain=false").await, projects);
    assert_eq!(
        list_ids(&app, &admin, "?is_domain=true&name=dom1").await,
        vec![id.clone()]
    );
    let (_, _, got) = call(
        &app,
        Method::GET,
        &format!("/v3/projects/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(got["project"], dom);
    // Keystone's rules for projects acting as domains.
    let (s, _, body) = call(
        &app,
        Method::POST,
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "dom1", "is_domain": true}})),
    )
    .await;
    assert_eq!((s, message(&body)), (409, "Conflict occurred attempting to store project - it is not permitted to have two projects acting as domains with the same name: dom1."));
    let (s, _, body) = call(
        &app,
        Method::POST,
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "dom2", "is_domain": true, "parent_id": "default"}})),
    )
    .await;
    assert_eq!(
        (s, message(&body)),
        (400, "only root projects are allowed to act as domains.")
    );
    let (s, _, body) = call(
        &app,
        Method::PATCH,
        &format!("/v3/projects/{id}"),
        Some(&admin),
        Some(json!({"project": {"is_domain": false}})),
    )
    .await;
    assert_eq!(
        (s, message(&body)),
        (400, "Update of `is_domain` is not allowed.")
    );
    assert_eq!(
        list_ids(&app, &admin, "?is_domain=true&name=dom2").await,
        Vec::<String>::new(),
        "refused creates wrote nothing"
    );
    // An enabled domain cannot be deleted; PATCH disables it through the projects API.
    assert_eq!(
        status(
            &app,
            Method::DELETE,
            &format!("/v3/projects/{id}"),
            Some(&admin),
            None
        )
        .await,
        403
    );
    let (s, _, body) = call(
        &app,
        Method::PATCH,
        &format!("/v3/projects/{id}"),
        Some(&admin),
        Some(json!({"project": {"enabled": false, "name": "dom1b"}})),
    )
    .await;
    assert_eq!(
        (
            s,
            body["project"]["enabled"].as_bool(),
            body["project"]["is_domain"].as_bool()
        ),
        (200, Some(false), Some(true))
    );
    let (_, _, body) = call(
        &app,
        Method::GET,
        &format!("/v3/domains/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (
            body["domain"]["enabled"].as_bool(),
            body["domain"]["name"].as_str()
        ),
        (Some(false), Some("dom1b"))
    );
    assert_eq!(
        status(
            &app,
            Method::DELETE,
            &format!("/v3/projects/{id}"),
            Some(&admin),
            None
        )
        .await,
        204
    );
    assert_eq!(
        status(
            &app,
            Method::GET,
            &format!("/v3/domains/{id}"),
            Some(&admin),
            None
        )
        .await,
        404
    );
    // Domains carry no tags here, and the tag routes take real projects only.
    let (s, _, body) = call(
        &app,
        Method::GET,
        "/v3/projects/default/tags",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, message(&body)),
        (404, "Could not find project: default.")
    );
}

async fn project_tags(app: TestApp) {
    let admin = app.system_admin_token().await;
    let p = create(&app, &admin, json!({"name": "tagged", "tags": ["b", "a"]})).await;
    let id = id_of(&p);
    let mut tags: Vec<String> = serde_json::from_value(p["tags"].clone()).expect("tags");
    tags.sort();
    assert_eq!(tags, ["a", "b"]);
    let tags_path = format!("/v3/projects/{id}/tags");
    let (s, _, body) = call(&app, Method::GET, &tags_path, Some(&admin), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!({"links": {"self": app.url(&tags_path)}, "tags": ["a", "b"]})
    );
    // One tag: add (201 + Location), check (204), refuse duplicates and bad values.
    let (s, headers, _) = call(
        &app,
        Method::PUT,
        &format!("{tags_path}/c"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(
        headers.get("location").and_then(|v| v.to_str().ok()),
        Some(app.url(&format!("{tags_path}/c")).as_str())
    );
    assert_eq!(
        status(
            &app,
            Method::GET,
            &format!("{tags_path}/c"),
            Some(&admin),
            None
        )
        .await,
        204
    );
    assert_eq!(
        status(
            &app,
            Method::HEAD,
            &format!("{tags_path}/c"),
            Some(&admin),
            None
        )
        .await,
        204
    );
    let (s, _, body) = call(
        &app,
        Method::GET,
        &format!("{tags_path}/zz"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, message(&body)),
        (404, "Could not find project tag: zz.")
    );
    assert_eq!(
        status(
            &app,
            Method::PUT,
            &format!("{tags_path}/c"),
            Some(&admin),
            None
        )
        .await,
        400,
        "already present"
    );
    assert_eq!(
        status(
            &app,
            Method::PUT,
            &format!("{tags_path}/x%2Cy"),
            Some(&admin),
            None
        )
        .await,
        400,
        "comma"
    );
    assert_eq!(
        status(
            &app,
            Method::PUT,
            &format!("{tags_path}/{}", "t".repeat(256)),
            Some(&admin),
            None
        )
        .await,
        400,
        "too long"
    );
    let (_, _, got) = call(
        &app,
        Method::GET,
        &format!("/v3/projects/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(got["project"]["tags"], json!(["a", "b", "c"]));
    // Replace all.
    let (s, _, body) = call(
        &app,
        Method::PUT,
        &tags_path,
        Some(&admin),
        Some(json!({"tags": ["x", "y"]})),
    )
    .await;
    assert_eq!((s, body["tags"].clone()), (200, json!(["x", "y"])));
    for bad in [
        json!({"tags": "x"}),
        json!({}),
        json!({"tags": ["x", "x"]}),
        json!({"tags": ["a/b"]}),
        json!({"tags": (0..81).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
    ] {
        let (s, _, body) = call(
            &app,
            Method::PUT,
            &tags_path,
            Some(&admin),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, 400, "{bad} -> {body}");
    }
    let (_, _, body) = call(&app, Method::GET, &tags_path, Some(&admin), None).await;
    assert_eq!(
        body["tags"],
        json!(["x", "y"]),
        "refused replacements changed nothing"
    );
    // PATCH replaces tags too.
    let (s, _, body) = call(
        &app,
        Method::PATCH,
        &format!("/v3/projects/{id}"),
        Some(&admin),
        Some(json!({"project": {"tags": ["p"]}})),
    )
    .await;
    assert_eq!((s, body["project"]["tags"].clone()), (200, json!(["p"])));
    // Delete one, then all.
    assert_eq!(
        status(
            &app,
            Method::DELETE,
            &format!("{tags_path}/p"),
            Some(&admin),
            None
        )
        .await,
        204
    );
    let (s, _, body) = call(
        &app,
        Method::DELETE,
        &format!("{tags_path}/p"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((s, message(&body)), (404, "Could not find project tag: p."));
    call(
        &app,
        Method::PUT,
        &tags_path,
        Some(&admin),
        Some(json!({"tags": ["k", "l"]})),
    )
    .await;
    assert_eq!(
        status(&app, Method::DELETE, &tags_path, Some(&admin), None).await,
        204
    );
    let (_, _, body) = call(&app, Method::GET, &tags_path, Some(&admin), None).await;
    assert_eq!(body["tags"], json!([]));
    // At most 80 tags, also one at a time.
    let eighty: Vec<String> = (0..80).map(|i| format!("t{i:02}")).collect();
    assert_eq!(
        status(
            &app,
            Method::PUT,
            &tags_path,
            Some(&admin),
            Some(json!({"tags": eighty}))
        )
        .await,
        200
    );
    assert_eq!(
        status(
            &app,
            Method::PUT,
            &format!("{tags_path}/one-more"),
            Some(&admin),
            None
        )
        .await,
        400
    );
    let (_, _, body) = call(&app, Method::GET, &tags_path, Some(&admin), None).await;
    assert_eq!(body["tags"].as_array().map(Vec::len), Some(80));
    // Unknown project.
    let (s, _, body) = call(
        &app,
        Method::GET,
        "/v3/projects/nope/tags",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((s, message(&body)), (404, "Could not find project: nope."));
    assert_eq!(
        status(
            &app,
            Method::PUT,
            "/v3/projects/nope/tags/a",
            Some(&admin),
            None
        )
        .await,
        404
    );
    // GET /v3/auth/projects shows the same representation, tags included.
    let member = project_token(&app, "member", &id).await;
    let (_, _, mine) = call(&app, Method::GET, "/v3/auth/projects", Some(&member), None).await;
    let (_, _, got) = call(
        &app,
        Method::GET,
        &format!("/v3/projects/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(mine["projects"], json!([got["project"]]));
    assert_eq!(
        mine["projects"][0]["tags"].as_array().map(Vec::len),
        Some(80)
    );
    // Tag filters on the list.
    let p1 = id_of(&create(&app, &admin, json!({"name": "f1", "tags": ["a", "b"]})).await);
    let p2 = id_of(&create(&app, &admin, json!({"name": "f2", "tags": ["b", "c"]})).await);
    let p3 = id_of(&create(&app, &admin, json!({"name": "f3"})).await);
    assert_eq!(list_ids(&app, &admin, "?tags=a,b").await, vec![p1.clone()]);
    let mut any = list_ids(&app, &admin, "?tags-any=a,c").await;
    any.sort();
    let mut want = vec![p1.clone(), p2.clone()];
    want.sort();
    assert_eq!(any, want);
    let not_all = list_ids(&app, &admin, "?not-tags=b,c").await;
    assert!(
        not_all.contains(&p1) && !not_all.contains(&p2) && not_all.contains(&p3),
        "{not_all:?}"
    );
    let not_any = list_ids(&app, &admin, "?not-tags-any=a").await;
    assert!(
        !not_any.contains(&p1) && not_any.contains(&p2) && not_any.contains(&p3),
        "{not_any:?}"
    );
    assert_eq!(
        list_ids(&app, &admin, "?tags=b&name=f2").await,
        vec![p2.clone()]
    );
    // Deleting a project deletes its tags.
    assert_eq!(
        status(
            &app,
            Method::DELETE,
            &format!("/v3/projects/{p1}"),
            Some(&admin),
            None
        )
        .await,
        204
    );
    assert!(app
        .store
        .list_project_tags(&p1)
        .await
        .expect("tags")
        .is_empty());
    assert_eq!(
        list_ids(&app, &admin, "?tags-any=a").await,
        Vec::<String>::new()
    );
}

async fn delete_revokes_tokens_and_disable_fails_them_live(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (member, token, project_id) = app.member_with_token("member").await;
    let path = format!("/v3/projects/{project_id}");
    assert_eq!(app.validate(&admin, &token, "").await.0, 200);
    // Disabling fails the token at once, without a revocation event...
    let (s, _, _) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"project": {"enabled": false}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, body) = app.validate(&admin, &token, "").await;
    assert_eq!(
        (s, message(&body).to_string()),
        (
            404,
            format!("Unable to validate token because project {project_id} is disabled")
        )
    );
    assert_eq!(
        status(&app, Method::GET, "/v3/auth/projects", Some(&token), None).await,
        401,
        "as a caller"
    );
    // ... so enabling again restores it, as in Keystone.
    let (s, _, _) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"project": {"enabled": true}})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(app.validate(&admin, &token, "").await.0, 200);
    // Deleting records a project_id event and removes the assignments.
    assert_eq!(
        status(&app, Method::DELETE, &path, Some(&admin), None).await,
        204
    );
    assert_eq!(app.validate(&admin, &token, "").await.0, 404);
    assert_eq!(
        status(&app, Method::GET, "/v3/auth/projects", Some(&token), None).await,
        401
    );
    let (_, _, events) = call(
        &app,
        Method::GET,
        "/v3/OS-REVOKE/events",
        Some(&admin),
        None,
    )
    .await;
    let events = events["events"].as_array().expect("events").clone();
    assert!(
        events
            .iter()
            .any(|e| e["project_id"] == project_id.as_str()),
        "{events:?}"
    );
    let targets = app
        .store
        .list_target_ids_for_user(&member.user_id, TargetKind::Project)
        .await
        .expect("assignments");
    assert!(
        !targets.contains(&project_id),
        "the project's assignments are gone"
    );
}

async fn protection_matrix(app: TestApp) {
    let sys_admin = app.system_admin_token().await;
    let (_, sys_reader) = system_token(&app, "reader").await;
    let (_, other_member, _) = app.member_with_token("member").await;
    let target = create(
        &app,
        &sys_admin,
        json!({"name": "target", "domain_id": "default"}),
    )
    .await;
    let t = id_of(&target);
    let own_member = project_token(&app, "member", &t).await;
    let (_, dom_reader) = domain_token(&app, "default", "reader").await;
    let (_, dom_manager) = domain_token(&app, "default", "manager").await;
    let (_, _, d2) = call(
        &app,
        Method::POST,
        "/v3/domains",
        Some(&sys_admin),
        Some(json!({"domain": {"name": "d2"}})),
    )
    .await;
    let d2 = id_of(&d2["domain"]);
    let in_d2 = id_of(&create(&app, &sys_admin, json!({"name": "in-d2", "domain_id": d2})).await);
    call(
        &app,
        Method::PUT,
        &format!("/v3/projects/{t}/tags/seen"),
        Some(&sys_admin),
        None,
    )
    .await;

    let p = format!("/v3/projects/{t}");
    let tags = format!("{p}/tags");
    let tag = format!("{tags}/seen");
    let patch = || Some(json!({"project": {"description": "x"}}));
    let tag_body = || Some(json!({"tags": ["seen"]}));
    // (method, path, body, [sys admin, sys reader, other project member, own project member, domain reader, domain manager, no token])
    type Body = Option<Value>;
    let cases: Vec<(Method, String, Body, [u16; 7])> = vec![
        (
            Method::GET,
            "/v3/projects".into(),
            None,
            [200, 200, 403, 403, 200, 200, 401],
        ),
        (
            Method::GET,
            p.clone(),
            None,
            [200, 200, 403, 200, 200, 200, 401],
        ),
        (
            Method::HEAD,
            p.clone(),
            None,
            [200, 200, 403, 200, 200, 200, 401],
        ),
        (
            Method::GET,
            "/v3/projects/unknown".into(),
            None,
            [404, 404, 403, 403, 403, 403, 401],
        ),
        (
            Method::PATCH,
            p.clone(),
            patch(),
            [200, 403, 403, 403, 403, 200, 401],
        ),
        (
            Method::GET,
            tags.clone(),
            None,
            [200, 200, 403, 200, 200, 200, 401],
        ),
        (
            Method::PUT,
            tags.clone(),
            tag_body(),
            [200, 403, 403, 403, 403, 200, 401],
        ),
        (
            Method::GET,
            tag.clone(),
            None,
            [204, 204, 403, 204, 204, 204, 401],
        ),
        (
            Method::PUT,
            format!("{tags}/new"),
            None,
            [201, 403, 403, 403, 403, 400, 401],
        ),
        (
            Method::DELETE,
            format!("{tags}/new"),
            None,
            [204, 403, 403, 403, 403, 404, 401],
        ),
        (
            Method::DELETE,
            tags.clone(),
            None,
            [204, 403, 403, 403, 403, 204, 401],
        ),
    ];
    let callers: [Option<&str>; 7] = [
        Some(&sys_admin),
        Some(&sys_reader),
        Some(&other_member),
        Some(&own_member),
        Some(&dom_reader),
        Some(&dom_manager),
        None,
    ];
    for (method, path, body, want) in &cases {
        for (i, caller) in callers.iter().enumerate() {
            let got = status(&app, method.clone(), path, *caller, body.clone()).await;
            assert_eq!(got, want[i], "{method} {path} as caller #{i}");
            // Restore the tag the sequence expects after each successful change.
            if *method == Method::DELETE && got == 204 {
                call(&app, Method::PUT, &tags, Some(&sys_admin), tag_body()).await;
            }
        }
    }
    // Domain-scoped readers see only their domain's projects, whatever they ask for.
    let seen = list_ids(&app, &dom_reader, "").await;
    assert!(seen.contains(&t) && !seen.contains(&in_d2), "{seen:?}");
    assert_eq!(
        list_ids(&app, &dom_reader, &format!("?domain_id={d2}")).await,
        Vec::<String>::new()
    );
    assert!(list_ids(&app, &sys_reader, "").await.contains(&in_d2));
    assert_eq!(
        status(
            &app,
            Method::GET,
            &format!("/v3/projects/{in_d2}"),
            Some(&dom_reader),
            None
        )
        .await,
        403
    );
    // Create: the target is the request body (Keystone), so a domain manager must name its domain.
    let create_as = |token: Option<String>, body: Value| {
        let app = &app;
        async move {
            status(
                app,
                Method::POST,
                "/v3/projects",
                token.as_deref(),
                Some(json!({"project": body})),
            )
            .await
        }
    };
    assert_eq!(
        create_as(
            Some(sys_reader.clone()),
            json!({"name": "c1", "domain_id": "default"})
        )
        .await,
        403
    );
    assert_eq!(
        create_as(
            Some(other_member.clone()),
            json!({"name": "c1", "domain_id": "default"})
        )
        .await,
        403
    );
    assert_eq!(
        create_as(None, json!({"name": "c1", "domain_id": "default"})).await,
        401
    );
    assert_eq!(
        create_as(Some(dom_manager.clone()), json!({"name": "c1"})).await,
        403
    );
    assert_eq!(
        create_as(
            Some(dom_manager.clone()),
            json!({"name": "c1", "domain_id": d2})
        )
        .await,
        403
    );
    assert_eq!(
        create_as(
            Some(dom_manager.clone()),
            json!({"name": "c1", "domain_id": "default"})
        )
        .await,
        201
    );
    assert_eq!(
        create_as(
            Some(dom_reader.clone()),
            json!({"name": "c2", "domain_id": "default"})
        )
        .await,
        403
    );
    // Delete: management roles only; the domain manager may delete in its domain only.
    let c1 = list_ids(&app, &sys_admin, "?name=c1")
        .await
        .pop()
        .expect("c1");
    for (token, want) in [
        (Some(&sys_reader), 403),
        (Some(&other_member), 403),
        (Some(&dom_reader), 403),
        (None, 401),
    ] {
        assert_eq!(
            status(
                &app,
                Method::DELETE,
                &format!("/v3/projects/{c1}"),
                token.map(String::as_str),
                None
            )
            .await,
            want
        );
    }
    assert_eq!(
        status(
            &app,
            Method::DELETE,
            &format!("/v3/projects/{in_d2}"),
            Some(&dom_manager),
            None
        )
        .await,
        403
    );
    assert_eq!(
        status(
            &app,
            Method::DELETE,
            &format!("/v3/projects/{c1}"),
            Some(&dom_manager),
            None
        )
        .await,
        204
    );
    assert_eq!(
        status(
            &app,
            Method::DELETE,
            &format!("/v3/projects/{in_d2}"),
            Some(&sys_admin),
            None
        )
        .await,
        204
    );
    // Only administrators may create or see projects acting as domains.
    assert_eq!(
        create_as(
            Some(dom_manager.clone()),
            json!({"name": "dd", "is_domain": true})
        )
        .await,
        403
    );
    assert_eq!(
        status(
            &app,
            Method::GET,
            "/v3/projects/default",
            Some(&dom_reader),
            None
        )
        .await,
        403
    );
    assert_eq!(
        status(
            &app,
            Method::GET,
            "/v3/projects/default",
            Some(&sys_reader),
            None
        )
        .await,
        200
    );
}

both_backends!(
    project_crud_shape_and_validation,
    hierarchy_rules,
    projects_acting_as_domains,
    project_tags,
    delete_revokes_tokens_and_disable_fails_them_live,
    protection_matrix,
);
/// `[DEFAULT] max_project_tree_depth` is honoured (SQLite is enough: no SQL involved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_project_tree_depth_is_configurable() {
    let app = spawn_app_with(Db::Sqlite, |s| s.default.max_project_tree_depth = 2)
        .await
        .expect("sqlite app");
    let admin = app.system_admin_token().await;
    let a = id_of(&create(&app, &admin, json!({"name": "a"})).await);
    let b = id_of(&create(&app, &admin, json!({"name": "b", "parent_id": a})).await);
    let (s, _, body) = call(
        &app,
        Method::POST,
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "c", "parent_id": b}})),
    )
    .await;
    assert_eq!(
        (s, message(&body).to_string()),
        (403, format!("Max hierarchy depth reached for {b} branch."))
    );
}
