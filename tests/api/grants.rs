//! Grants on projects, domains and the system, and OS-INHERIT, over HTTP.

use keystone_rs::model::TargetKind;
use serde_json::{json, Value};

use crate::assign_support::{
    add_member, call, create_domain, create_group, create_project_under, create_user_in, get,
    must_token, new_role, token_for,
};
use crate::both_backends;
#[allow(unused_imports)]
use crate::helpers::{domain_token, message, sorted_ids, system_token, TestApp};

async fn project_user_grant_lifecycle(app: TestApp) {
    let admin = app.system_admin_token().await;
    let project = app.create_project("gp", "default").await;
    let user = create_user_in(&app, "gu", "default").await;
    let member = app.role_id("member").await;
    let path = format!("/v3/projects/{project}/users/{user}/roles/{member}");
    // not granted yet: Keystone's RoleAssignmentNotFound
    let (s, b) = get(&app, &path, &admin).await;
    assert_eq!(s, 404);
    assert_eq!(message(&b), format!("Could not find role assignment with role: {member}, user or group: {user}, project, domain, or system: {project}."));
    let (s, b) = token_for(&app, &user, json!({"project": {"id": project}})).await;
    assert_eq!(s, 401, "no role, no token: {b:?}");
    // grant: 204, idempotent
    for _ in 0..2 {
        let (s, b) = call(&app, "PUT", &path, Some(&admin), None).await;
        assert_eq!((s, b), (204, Value::Null));
    }
    let (s, _) = get(&app, &path, &admin).await;
    assert_eq!(s, 204);
    let (s, _) = call(&app, "HEAD", &path, Some(&admin), None).await;
    assert_eq!(s, 204);
    let token = must_token(&app, &user, json!({"project": {"id": project}})).await;
    // list
    let list = format!("/v3/projects/{project}/users/{user}/roles");
    let (s, b) = get(&app, &list, &admin).await;
    assert_eq!(s, 200);
    assert_eq!(sorted_ids(&b["roles"]), vec![member.clone()]);
    assert_eq!(
        b["roles"][0]["links"]["self"],
        format!("{}/v3/roles/{member}", app.address)
    );
    assert_eq!(b["links"]["self"], format!("{}{list}", app.address));
    let (s, b) = call(&app, "HEAD", &list, Some(&admin), None).await;
    assert_eq!((s, b), (200, Value::Null));
    // unknown ids: 404 with Keystone's messages
    for (p, msg) in [
        (
            format!("/v3/projects/{project}/users/{user}/roles/nope"),
            "Could not find role: nope.".to_string(),
        ),
        (
            format!("/v3/projects/{project}/users/nope/roles/{member}"),
            "Could not find user: nope.".to_string(),
        ),
        (
            format!("/v3/projects/nope/users/{user}/roles/{member}"),
            "Could not find project: nope.".to_string(),
        ),
        (
            format!("/v3/projects/{project}/groups/nope/roles/{member}"),
            "Could not find group: nope.".to_string(),
        ),
    ] {
        let (s, b) = call(&app, "PUT", &p, Some(&admin), None).await;
        assert_eq!((s, message(&b).to_string()), (404, msg), "{p}");
    }
    // revoke: the token fails at once, a second revoke is 404
    let (s, _) = call(&app, "DELETE", &path, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (s, b) = app.validate(&admin, &token, "").await;
    assert_eq!(s, 404);
    assert_eq!(message(&b), format!("Could not find token: {token}."));
    let (s, _) = get(&app, "/v3/roles", &token).await;
    assert_eq!(s, 401, "a token without roles no longer authenticates");
    let (s, b) = call(&app, "DELETE", &path, Some(&admin), None).await;
    assert_eq!(s, 404);
    assert!(message(&b).starts_with("Could not find role assignment with role:"));
    let (_, b) = get(&app, &list, &admin).await;
    assert_eq!(b["roles"], json!([]));
}

// A grant left behind by a deleted user can still be revoked.
async fn revoke_for_a_deleted_user(app: TestApp) {
    let admin = app.system_admin_token().await;
    let project = app.create_project("gone", "default").await;
    // A grant whose user no longer exists (as when an identity backend loses a user).
    let user = "ghost-user".to_string();
    let reader = app.role_id("reader").await;
    app.grant(&user, TargetKind::Project, &project, "reader")
        .await;
    let path = format!("/v3/projects/{project}/users/{user}/roles/{reader}");
    let (s, b) = get(&app, &path, &admin).await;
    assert_eq!(
        (s, message(&b)),
        (404, format!("Could not find user: {user}.").as_str())
    );
    let (s, b) = call(&app, "DELETE", &path, Some(&admin), None).await;
    assert_eq!(s, 204, "{b}");
}

async fn group_and_domain_grants(app: TestApp) {
    let admin = app.system_admin_token().await;
    let d = create_domain(&app, "gd").await;
    let project = create_project_under(&app, "gdp", &d, None).await;
    let user = create_user_in(&app, "gdu", &d).await;
    let group = create_group(&app, "gdg", &d).await;
    add_member(&app, &user, &group).await;
    let member = app.role_id("member").await;
    let reader = app.role_id("reader").await;
    // group on project: members get project tokens
    let gp = format!("/v3/projects/{project}/groups/{group}/roles/{member}");
    let (s, _) = call(&app, "PUT", &gp, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (s, _) = call(&app, "HEAD", &gp, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (_, b) = get(
        &app,
        &format!("/v3/projects/{project}/groups/{group}/roles"),
        &admin,
    )
    .await;
    assert_eq!(sorted_ids(&b["roles"]), vec![member.clone()]);
    must_token(&app, &user, json!({"project": {"id": project}})).await;
    // user and group on the domain
    let du = format!("/v3/domains/{d}/users/{user}/roles/{reader}");
    let dg = format!("/v3/domains/{d}/groups/{group}/roles/{member}");
    for p in [&du, &dg] {
        let (s, b) = call(&app, "PUT", p, Some(&admin), None).await;
        assert_eq!(s, 204, "{p}: {b}");
        let (s, _) = get(&app, p, &admin).await;
        assert_eq!(s, 204, "{p}");
    }
    let dtoken = must_token(&app, &user, json!({"domain": {"id": d}})).await;
    let (_, v) = app.validate(&admin, &dtoken, "").await;
    let names: Vec<&str> = v["token"]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"member") && names.contains(&"reader"),
        "{names:?}"
    );
    let (_, b) = get(&app, &format!("/v3/domains/{d}/users/{user}/roles"), &admin).await;
    assert_eq!(sorted_ids(&b["roles"]), vec![reader.clone()]);
    let (s, b) = get(
        &app,
        &format!("/v3/domains/nope/users/{user}/roles/{reader}"),
        &admin,
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find domain: nope."));
    // revoking the group grant leaves the direct one
    let (s, _) = call(&app, "DELETE", &dg, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (s, v) = app.validate(&admin, &dtoken, "").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = v["token"]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, vec!["reader"]);
}

async fn domain_specific_role_grants(app: TestApp) {
    let admin = app.system_admin_token().await;
    let d1 = create_domain(&app, "ds1").await;
    let d2 = create_domain(&app, "ds2").await;
    let p1 = create_project_under(&app, "p1", &d1, None).await;
    let p2 = create_project_under(&app, "p2", &d2, None).await;
    let user = create_user_in(&app, "dsu", &d1).await;
    let drole = new_role(&app, &admin, json!({"name": "dsr", "domain_id": d1})).await;
    let reader = app.role_id("reader").await;
    let (s, b) = call(
        &app,
        "PUT",
        &format!("/v3/projects/{p2}/users/{user}/roles/{drole}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (
            403,
            format!("Project {p2} must be in the same domain as the role {drole} being assigned.")
                .as_str()
        )
    );
    let (s, b) = call(
        &app,
        "PUT",
        &format!("/v3/system/users/{user}/roles/{drole}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((s, message(&b)), (400, format!("Role {drole} is a domain-specific role. Unable to use a domain-specific role in a system assignment.").as_str()));
    // in its own domain it is granted, and only the global role it implies reaches the token
    let (s, _) = call(
        &app,
        "PUT",
        &format!("/v3/roles/{drole}/implies/{reader}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = call(
        &app,
        "PUT",
        &format!("/v3/projects/{p1}/users/{user}/roles/{drole}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let token = must_token(&app, &user, json!({"project": {"id": p1}})).await;
    let (_, v) = app.validate(&admin, &token, "").await;
    assert_eq!(sorted_ids(&v["token"]["roles"]), vec![reader.clone()]);
}

async fn system_grants(app: TestApp) {
    let admin = app.system_admin_token().await;
    let user = create_user_in(&app, "su", "default").await;
    let group = create_group(&app, "sg", "default").await;
    let reader = app.role_id("reader").await;
    let member = app.role_id("member").await;
    let (s, _) = token_for(&app, &user, json!({"system": {"all": true}})).await;
    assert_eq!(s, 401);
    let path = format!("/v3/system/users/{user}/roles/{reader}");
    let (s, b) = get(&app, &path, &admin).await;
    assert_eq!((s, message(&b)), (404, format!("Could not find role assignment with role: {reader}, user or group: {user}, project, domain, or system: system.").as_str()));
    let (s, _) = call(&app, "PUT", &path, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (s, _) = call(&app, "HEAD", &path, Some(&admin), None).await;
    assert_eq!(s, 204);
    let token = must_token(&app, &user, json!({"system": {"all": true}})).await;
    let (_, b) = get(&app, &format!("/v3/system/users/{user}/roles"), &admin).await;
    assert_eq!(sorted_ids(&b["roles"]), vec![reader.clone()]);
    // groups
    let gpath = format!("/v3/system/groups/{group}/roles/{member}");
    let (s, _) = call(&app, "PUT", &gpath, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (s, _) = get(&app, &gpath, &admin).await;
    assert_eq!(s, 204);
    let (_, b) = get(&app, &format!("/v3/system/groups/{group}/roles"), &admin).await;
    assert_eq!(sorted_ids(&b["roles"]), vec![member.clone()]);
    add_member(&app, &user, &group).await;
    let (_, v) = app.validate(&admin, &token, "").await;
    let names: Vec<&str> = v["token"]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"member"),
        "group system grant reaches the token: {names:?}"
    );
    let (s, b) = call(
        &app,
        "PUT",
        &format!("/v3/system/users/nope/roles/{reader}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find user: nope."));
    // revoke both: the system token fails at once
    for p in [&path, &gpath] {
        let (s, _) = call(&app, "DELETE", p, Some(&admin), None).await;
        assert_eq!(s, 204);
    }
    let (s, b) = app.validate(&admin, &token, "").await;
    assert_eq!(
        (s, message(&b)),
        (404, format!("Could not find token: {token}.").as_str())
    );
}

async fn os_inherit_grants(app: TestApp) {
    let admin = app.system_admin_token().await;
    let d = create_domain(&app, "inh").await;
    let parent = create_project_under(&app, "parent", &d, None).await;
    let child = create_project_under(&app, "child", &d, Some(&parent)).await;
    let user = create_user_in(&app, "iu", &d).await;
    let member = app.role_id("member").await;
    // inherited on the domain: every project of it, not the domain itself
    let dpath =
        format!("/v3/OS-INHERIT/domains/{d}/users/{user}/roles/{member}/inherited_to_projects");
    let (s, b) = call(&app, "PUT", &dpath, Some(&admin), None).await;
    assert_eq!(s, 204, "{b}");
    let (s, _) = get(&app, &dpath, &admin).await;
    assert_eq!(s, 204);
    let (_, b) = get(
        &app,
        &format!("/v3/OS-INHERIT/domains/{d}/users/{user}/roles/inherited_to_projects"),
        &admin,
    )
    .await;
    assert_eq!(sorted_ids(&b["roles"]), vec![member.clone()]);
    let (_, b) = get(&app, &format!("/v3/domains/{d}/users/{user}/roles"), &admin).await;
    assert_eq!(
        b["roles"],
        json!([]),
        "inherited grants are not direct ones"
    );
    must_token(&app, &user, json!({"project": {"id": child}})).await;
    let (s, _) = token_for(&app, &user, json!({"domain": {"id": d}})).await;
    assert_eq!(s, 401);
    let (s, _) = call(&app, "DELETE", &dpath, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (s, _) = token_for(&app, &user, json!({"project": {"id": child}})).await;
    assert_eq!(s, 401);
    // inherited on a project: its subtree, not the project itself
    let ppath = format!(
        "/v3/OS-INHERIT/projects/{parent}/users/{user}/roles/{member}/inherited_to_projects"
    );
    let (s, _) = call(&app, "PUT", &ppath, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (s, _) = call(&app, "HEAD", &ppath, Some(&admin), None).await;
    assert_eq!(s, 204);
    must_token(&app, &user, json!({"project": {"id": child}})).await;
    let (s, _) = token_for(&app, &user, json!({"project": {"id": parent}})).await;
    assert_eq!(s, 401);
    // unknown ids still answer 404 (after the policy check)
    let (s, b) = call(
        &app,
        "PUT",
        &format!(
            "/v3/OS-INHERIT/projects/{parent}/users/nope/roles/{member}/inherited_to_projects"
        ),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find user: nope."));
    let (s, b) = call(
        &app,
        "PUT",
        &format!("/v3/OS-INHERIT/domains/nope/users/{user}/roles/{member}/inherited_to_projects"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find domain: nope."));
    let (_, member_token, _) = app.member_with_token("member").await;
    let (s, _) = call(
        &app,
        "PUT",
        &format!("/v3/OS-INHERIT/domains/nope/users/{user}/roles/{member}/inherited_to_projects"),
        Some(&member_token),
        None,
    )
    .await;
    assert_eq!(s, 403, "OS-INHERIT enforces before revealing what exists");
}

async fn grant_protection_matrix(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (_, reader) = system_token(&app, "reader").await;
    let (_, member, _) = app.member_with_token("member").await;
    let project = app.create_project("pm", "default").await;
    let user = create_user_in(&app, "pmu", "default").await;
    let group = create_group(&app, "pmg", "default").await;
    let role = app.role_id("reader").await;
    let grants = [
        format!("/v3/projects/{project}/users/{user}/roles/{role}"),
        format!("/v3/projects/{project}/groups/{group}/roles/{role}"),
        format!("/v3/domains/default/users/{user}/roles/{role}"),
        format!("/v3/domains/default/groups/{group}/roles/{role}"),
        format!("/v3/system/users/{user}/roles/{role}"),
        format!("/v3/system/groups/{group}/roles/{role}"),
        format!("/v3/OS-INHERIT/domains/default/users/{user}/roles/{role}/inherited_to_projects"),
        format!(
            "/v3/OS-INHERIT/projects/{project}/groups/{group}/roles/{role}/inherited_to_projects"
        ),
    ];
    for p in &grants {
        for m in ["PUT", "GET", "DELETE"] {
            let (s, _) = call(&app, m, p, None, None).await;
            assert_eq!(s, 401, "anonymous {m} {p}");
            let (s, b) = call(&app, m, p, Some(&member), None).await;
            assert_eq!(s, 403, "project member {m} {p}: {b}");
        }
        let (s, b) = call(&app, "PUT", p, Some(&reader), None).await;
        assert_eq!(s, 403, "system reader PUT {p}: {b}");
        let (s, b) = call(&app, "PUT", p, Some(&admin), None).await;
        assert_eq!(s, 204, "system admin PUT {p}: {b}");
        let (s, _) = call(&app, "GET", p, Some(&reader), None).await;
        assert_eq!(s, 204, "system reader GET {p}");
        let (s, _) = call(&app, "DELETE", p, Some(&reader), None).await;
        assert_eq!(s, 403, "system reader DELETE {p}");
        let (s, _) = call(&app, "DELETE", p, Some(&admin), None).await;
        assert_eq!(s, 204, "system admin DELETE {p}");
    }
    let lists = [
        format!("/v3/projects/{project}/users/{user}/roles"),
        format!("/v3/domains/default/groups/{group}/roles"),
        format!("/v3/system/users/{user}/roles"),
        format!("/v3/system/groups/{group}/roles"),
        format!("/v3/OS-INHERIT/domains/default/users/{user}/roles/inherited_to_projects"),
    ];
    for p in &lists {
        assert_eq!(call(&app, "GET", p, None, None).await.0, 401, "{p}");
        assert_eq!(
            call(&app, "GET", p, Some(&member), None).await.0,
            403,
            "{p}"
        );
        assert_eq!(
            call(&app, "GET", p, Some(&reader), None).await.0,
            200,
            "{p}"
        );
    }
}

// A domain manager hands out member/reader/manager inside its own domain only.
async fn domain_manager_grants(app: TestApp) {
    let d = create_domain(&app, "dm").await;
    let other = create_domain(&app, "dm-other").await;
    let (_, mgr) = crate::helpers::domain_token(&app, &d, "manager").await;
    let project = create_project_under(&app, "dmp", &d, None).await;
    let user = create_user_in(&app, "dmu", &d).await;
    let outsider = create_user_in(&app, "dmo", &other).await;
    let member = app.role_id("member").await;
    let admin_role = app.role_id("admin").await;
    let (s, b) = call(
        &app,
        "PUT",
        &format!("/v3/projects/{project}/users/{user}/roles/{member}"),
        Some(&mgr),
        None,
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let (s, _) = call(
        &app,
        "PUT",
        &format!("/v3/projects/{project}/users/{user}/roles/{admin_role}"),
        Some(&mgr),
        None,
    )
    .await;
    assert_eq!(s, 403, "admin is not a domain-managed role");
    let (s, _) = call(
        &app,
        "PUT",
        &format!("/v3/projects/{project}/users/{outsider}/roles/{member}"),
        Some(&mgr),
        None,
    )
    .await;
    assert_eq!(s, 403, "users of other domains are out of reach");
    let (s, _) = get(
        &app,
        &format!("/v3/projects/{project}/users/{user}/roles"),
        &mgr,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        "DELETE",
        &format!("/v3/projects/{project}/users/{user}/roles/{member}"),
        Some(&mgr),
        None,
    )
    .await;
    assert_eq!(s, 204);
}

both_backends!(
    project_user_grant_lifecycle,
    revoke_for_a_deleted_user,
    group_and_domain_grants,
    domain_specific_role_grants,
    system_grants,
    os_inherit_grants,
    grant_protection_matrix,
    domain_manager_grants,
);
