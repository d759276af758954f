//! Keystone 30's pagination of /v3/users, /v3/groups, /v3/projects and /v3/domains: id order,
//! `limit` and `marker`, `links.next` and `truncated`, `max_db_limit` and the
//! `list_limit` defaults, and MarkerNotFound.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{call, ids, message, spawn_configured, Db, TestApp};

/// Creates `n` entries of `collection` named `<prefix>-<i>` through the API.
async fn create_many(app: &TestApp, admin: &str, collection: &str, prefix: &str, n: usize) {
    let member = &collection[..collection.len() - 1];
    for i in 0..n {
        let mut entity = json!({"name": format!("{prefix}-{i}")});
        if collection != "domains" {
            entity["domain_id"] = json!("default");
        }
        let (status, body) = call(
            app,
            Method::POST,
            &format!("/v3/{collection}"),
            Some(admin),
            Some(json!({ member: entity })),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// Follows `links.next` from `first`; every page's ids, in order.
async fn walk(app: &TestApp, admin: &str, collection: &str, first: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut url = Some(app.url(first));
    while let Some(u) = url.take() {
        let r = app
            .client
            .get(&u)
            .header("X-Auth-Token", admin)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200, "{u}");
        let body: Value = r.json().await.expect("json");
        pages.push(ids(&body[collection]));
        match body["links"]["next"].as_str() {
            Some(next) => {
                assert_eq!(
                    body["truncated"], true,
                    "a page with a next link is truncated"
                );
                assert!(next.contains("marker="), "{next}");
                url = Some(next.to_string());
            }
            None => assert!(body.get("truncated").is_none(), "{body}"),
        }
        assert!(pages.len() < 50, "endless pagination");
    }
    pages
}

async fn check_collection(app: &TestApp, admin: &str, collection: &str) {
    let (_, all) = call(
        app,
        Method::GET,
        &format!("/v3/{collection}"),
        Some(admin),
        None,
    )
    .await;
    let all = ids(&all[collection]);
    assert!(all.len() >= 7, "{collection}: {all:?}");
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "{collection} are listed in id order");
    let pages = walk(app, admin, collection, &format!("/v3/{collection}?limit=3")).await;
    assert!(pages.iter().all(|p| p.len() <= 3), "{pages:?}");
    assert_eq!(pages.len(), all.len().div_ceil(3), "{pages:?}");
    assert_eq!(
        pages.concat(),
        all,
        "{collection}: every entry exactly once, in order"
    );
    // The next link names the last entry as marker, with the limit.
    let (_, first) = call(
        app,
        Method::GET,
        &format!("/v3/{collection}?limit=2&name=x"),
        Some(admin),
        None,
    )
    .await;
    assert_eq!(
        first["links"]["next"],
        Value::Null,
        "one match is no full page"
    );
    let (_, first) = call(
        app,
        Method::GET,
        &format!("/v3/{collection}?limit=2"),
        Some(admin),
        None,
    )
    .await;
    let next = first["links"]["next"].as_str().expect("next");
    let last = &ids(&first[collection])[1];
    assert!(
        next.ends_with(&format!("/v3/{collection}?limit=2&marker={last}")),
        "{next}"
    );
    // An unknown marker is Keystone's MarkerNotFound.
    let (status, body) = call(
        app,
        Method::GET,
        &format!("/v3/{collection}?marker=nope"),
        Some(admin),
        None,
    )
    .await;
    assert_eq!(
        (status, message(&body)),
        (404, "Marker nope could not be found.")
    );
    // A limit that is not a number is a 400, never a 500.
    let (status, body) = call(
        app,
        Method::GET,
        &format!("/v3/{collection}?limit=abc"),
        Some(admin),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // Repeated parameters: the first wins (Flask's request.args).
    let (_, body) = call(
        app,
        Method::GET,
        &format!("/v3/{collection}?limit=1&limit=5"),
        Some(admin),
        None,
    )
    .await;
    assert_eq!(ids(&body[collection]).len(), 1);
}

async fn users_groups_and_projects_page(app: TestApp) {
    let admin = app.system_admin_token().await;
    for i in 0..7 {
        app.create_user(&format!("pager-{i}"), "secret-pw").await;
    }
    create_many(&app, &admin, "groups", "pager", 7).await;
    create_many(&app, &admin, "projects", "pager", 7).await;
    create_many(&app, &admin, "domains", "pager", 7).await;
    for collection in ["users", "groups", "projects", "domains"] {
        check_collection(&app, &admin, collection).await;
    }
}

/// Filters apply before the page is cut, so every page is full while matches remain.
async fn filters_apply_before_paging(app: TestApp) {
    let admin = app.system_admin_token().await;
    create_many(&app, &admin, "groups", "alpha", 5).await;
    create_many(&app, &admin, "groups", "beta", 5).await;
    let pages = walk(
        &app,
        &admin,
        "groups",
        "/v3/groups?name__startswith=beta&limit=2",
    )
    .await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [2, 2, 1],
        "{pages:?}"
    );
    let (_, body) = call(
        &app,
        Method::GET,
        "/v3/groups?name__icontains=ALPHA",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(ids(&body["groups"]).len(), 5, "case-insensitive contains");
    let (_, body) = call(
        &app,
        Method::GET,
        "/v3/groups?name__contains=ALPHA",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(ids(&body["groups"]).len(), 0, "case-sensitive contains");
    let (_, body) = call(
        &app,
        Method::GET,
        "/v3/groups?name__endswith=-4",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(ids(&body["groups"]).len(), 2);
    // Tag filters in SQL too.
    let (_, body) = call(
        &app,
        Method::POST,
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "tagged", "tags": ["t1", "t2"]}})),
    )
    .await;
    let tagged = body["project"]["id"].as_str().expect("id").to_string();
    for (query, expect) in [
        ("tags=t1,t2", true),
        ("tags=t1,t3", false),
        ("tags-any=t3,t2", true),
        ("not-tags=t1,t2", false),
        ("not-tags-any=t3", true),
    ] {
        let (_, body) = call(
            &app,
            Method::GET,
            &format!("/v3/projects?{query}&limit=100"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(ids(&body["projects"]).contains(&tagged), expect, "{query}");
    }
}

/// `[DEFAULT] max_db_limit` caps any page; `[identity] list_limit` (else
/// `[DEFAULT] list_limit`) is the default page size.
async fn limits_come_from_the_configuration(db: Db) {
    let Some(app) = spawn_configured(db, |s| {
        s.default.max_db_limit = 4;
        s.identity.list_limit = Some(2);
        s.default.list_limit = Some(3);
    })
    .await
    else {
        return;
    };
    let admin = app.system_admin_token().await;
    create_many(&app, &admin, "groups", "cfg", 6).await;
    create_many(&app, &admin, "projects", "cfg", 6).await;
    let (_, body) = call(&app, Method::GET, "/v3/groups", Some(&admin), None).await;
    assert_eq!(ids(&body["groups"]).len(), 2, "[identity] list_limit");
    assert_eq!(body["truncated"], true);
    let (_, body) = call(&app, Method::GET, "/v3/projects", Some(&admin), None).await;
    assert_eq!(ids(&body["projects"]).len(), 3, "[DEFAULT] list_limit");
    let (_, body) = call(
        &app,
        Method::GET,
        "/v3/groups?limit=100",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(ids(&body["groups"]).len(), 4, "max_db_limit caps the page");
    let next = body["links"]["next"].as_str().expect("next");
    assert!(
        next.contains("limit=4"),
        "the next link carries the effective limit: {next}"
    );
    // Collections Keystone does not page ignore the limit.
    let (_, body) = call(&app, Method::GET, "/v3/roles?limit=1", Some(&admin), None).await;
    assert!(body["roles"].as_array().map_or(0, Vec::len) > 1, "{body}");
}

both_backends!(users_groups_and_projects_page, filters_apply_before_paging,);
pub mod configured {
    use super::*;
    both_backends!(@db limits_come_from_the_configuration);
}
