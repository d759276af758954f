//! GET /v3/role_assignments over HTTP: filters, effective mode, names, subtree, policy.

use keystone_rs::model::TargetKind;
use serde_json::{json, Value};

use crate::assign_support::{
    add_member, call, create_domain, create_group, create_project_under, create_user_in, get,
    new_role,
};
use crate::both_backends;
#[allow(unused_imports)]
use crate::helpers::{domain_token, message, sorted_ids, system_token, TestApp};

fn entries(body: &Value) -> Vec<Value> {
    body["role_assignments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// (actor id, role id, scope id or "system") per entry, sorted.
fn summary(body: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = entries(body)
        .iter()
        .map(|e| {
            let actor = e["user"]["id"]
                .as_str()
                .or(e["group"]["id"].as_str())
                .unwrap_or("?");
            let scope = e["scope"]["project"]["id"]
                .as_str()
                .or(e["scope"]["domain"]["id"].as_str())
                .unwrap_or(if e["scope"]["system"]["all"] == true {
                    "system"
                } else {
                    "?"
                });
            (
                actor.to_string(),
                e["role"]["id"].as_str().unwrap_or("?").to_string(),
                scope.to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn t(a: &str, r: &str, s: &str) -> (String, String, String) {
    (a.to_string(), r.to_string(), s.to_string())
}

fn sorted(mut v: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    v.sort();
    v
}

async fn direct_listing_and_filters(app: TestApp) {
    let admin = app.system_admin_token().await;
    let d = create_domain(&app, "ra").await;
    let p = create_project_under(&app, "rap", &d, None).await;
    let u = create_user_in(&app, "rau", &d).await;
    let g = create_group(&app, "rag", &d).await;
    let member = app.role_id("member").await;
    let reader = app.role_id("reader").await;
    for path in [
        format!("/v3/projects/{p}/users/{u}/roles/{member}"),
        format!("/v3/domains/{d}/groups/{g}/roles/{reader}"),
        format!("/v3/system/users/{u}/roles/{reader}"),
        format!("/v3/OS-INHERIT/domains/{d}/users/{u}/roles/{reader}/inherited_to_projects"),
    ] {
        let (s, b) = call(&app, "PUT", &path, Some(&admin), None).await;
        assert_eq!(s, 204, "{path}: {b}");
    }
    let base = format!("{}/v3", app.address);
    // by user: project, inherited domain and system entries
    let (s, b) = get(&app, &format!("/v3/role_assignments?user.id={u}"), &admin).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        summary(&b),
        sorted(vec![
            t(&u, &member, &p),
            t(&u, &reader, &d),
            t(&u, &reader, "system")
        ])
    );
    assert_eq!(
        b["links"]["self"],
        format!("{base}/role_assignments?user.id={u}")
    );
    let all = entries(&b);
    let proj = all
        .iter()
        .find(|e| e["scope"]["project"]["id"] == p.as_str())
        .expect("project entry");
    assert_eq!(
        proj,
        &json!({
            "role": {"id": member},
            "user": {"id": u},
            "scope": {"project": {"id": p}},
            "links": {"assignment": format!("{base}/projects/{p}/users/{u}/roles/{member}")},
        })
    );
    let inh = all
        .iter()
        .find(|e| e["scope"]["domain"]["id"] == d.as_str())
        .expect("inherited entry");
    assert_eq!(inh["scope"]["OS-INHERIT:inherited_to"], "projects");
    assert_eq!(
        inh["links"]["assignment"],
        format!("{base}/OS-INHERIT/domains/{d}/users/{u}/roles/{reader}/inherited_to_projects")
    );
    let sys = all
        .iter()
        .find(|e| e["scope"]["system"].is_object())
        .expect("system entry");
    assert_eq!(sys["scope"], json!({"system": {"all": true}}));
    assert_eq!(
        sys["links"]["assignment"],
        format!("{base}/system/users/{u}/roles/{reader}")
    );
    // other filters
    let cases = [
        (format!("group.id={g}"), vec![t(&g, &reader, &d)]),
        (format!("scope.project.id={p}"), vec![t(&u, &member, &p)]),
        (
            format!("scope.domain.id={d}"),
            vec![t(&g, &reader, &d), t(&u, &reader, &d)],
        ),
        (
            format!("scope.domain.id={d}&scope.OS-INHERIT:inherited_to=projects"),
            vec![t(&u, &reader, &d)],
        ),
        (
            format!("user.id={u}&role.id={member}"),
            vec![t(&u, &member, &p)],
        ),
        (
            format!("scope.system=all&user.id={u}"),
            vec![t(&u, &reader, "system")],
        ),
    ];
    for (q, want) in cases {
        let (s, b) = get(&app, &format!("/v3/role_assignments?{q}"), &admin).await;
        assert_eq!(s, 200, "{q}");
        assert_eq!(summary(&b), sorted(want), "{q}");
    }
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?scope.system=all&role.id={reader}"),
        &admin,
    )
    .await;
    assert!(summary(&b)
        .iter()
        .all(|(_, r, s)| r == &reader && s == "system"));
    let (s, _) = call(&app, "HEAD", "/v3/role_assignments", Some(&admin), None).await;
    assert_eq!(s, 200);
    // include_names
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?scope.project.id={p}&include_names"),
        &admin,
    )
    .await;
    assert_eq!(
        entries(&b)[0],
        json!({
            "role": {"id": member, "name": "member"},
            "user": {"id": u, "name": "rau", "domain": {"id": d, "name": "ra"}},
            "scope": {"project": {"id": p, "name": "rap", "domain": {"id": d, "name": "ra"}}},
            "links": {"assignment": format!("{base}/projects/{p}/users/{u}/roles/{member}")},
        })
    );
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?group.id={g}&include_names=1"),
        &admin,
    )
    .await;
    assert_eq!(
        entries(&b)[0]["group"],
        json!({"id": g, "name": "rag", "domain": {"id": d, "name": "ra"}})
    );
    assert_eq!(
        entries(&b)[0]["scope"]["domain"],
        json!({"id": d, "name": "ra"})
    );
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?group.id={g}&include_names=0"),
        &admin,
    )
    .await;
    assert_eq!(entries(&b)[0]["group"], json!({"id": g}));
}

// Effective mode: a group grant of a role with an implied chain becomes
// per-user entries for every role of the chain, with Keystone's links.
async fn effective_through_group_and_implied_chain(app: TestApp) {
    let admin = app.system_admin_token().await;
    let d = create_domain(&app, "eff").await;
    let p = create_project_under(&app, "effp", &d, None).await;
    let u = create_user_in(&app, "effu", &d).await;
    let u2 = create_user_in(&app, "effu2", &d).await;
    let g = create_group(&app, "effg", &d).await;
    add_member(&app, &u, &g).await;
    add_member(&app, &u2, &g).await;
    let r0 = new_role(&app, &admin, json!({"name": "r0"})).await;
    let r1 = new_role(&app, &admin, json!({"name": "r1"})).await;
    let r2 = new_role(&app, &admin, json!({"name": "r2"})).await;
    for (a, b) in [(&r0, &r1), (&r1, &r2)] {
        let (s, _) = call(
            &app,
            "PUT",
            &format!("/v3/roles/{a}/implies/{b}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, 201);
    }
    let (s, _) = call(
        &app,
        "PUT",
        &format!("/v3/projects/{p}/groups/{g}/roles/{r0}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    // direct: one group entry
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?scope.project.id={p}"),
        &admin,
    )
    .await;
    assert_eq!(summary(&b), sorted(vec![t(&g, &r0, &p)]));
    // effective for the user: three entries, no group entry
    let (s, b) = get(
        &app,
        &format!("/v3/role_assignments?effective&user.id={u}"),
        &admin,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        summary(&b),
        sorted(vec![t(&u, &r0, &p), t(&u, &r1, &p), t(&u, &r2, &p)])
    );
    let base = format!("{}/v3", app.address);
    for e in entries(&b) {
        assert!(e.get("group").is_none());
        assert_eq!(
            e["links"]["membership"],
            format!("{base}/groups/{g}/users/{u}")
        );
    }
    let implied = entries(&b)
        .into_iter()
        .find(|e| e["role"]["id"] == r2.as_str())
        .expect("r2");
    assert_eq!(
        implied["links"]["assignment"],
        format!("{base}/projects/{p}/groups/{g}/roles/{r1}")
    );
    assert_eq!(
        implied["links"]["prior_role"],
        format!("{base}/prior_role/{r2}/implies/{r1}")
    );
    // effective over the project: every member
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?effective&scope.project.id={p}&role.id={r2}"),
        &admin,
    )
    .await;
    let mut want = vec![t(&u, &r2, &p), t(&u2, &r2, &p)];
    want.sort();
    assert_eq!(summary(&b), want);
    // the token agrees with the listing
    let token = crate::assign_support::must_token(&app, &u, json!({"project": {"id": p}})).await;
    let (_, v) = app.validate(&admin, &token, "").await;
    let mut roles = crate::helpers::sorted_ids(&v["token"]["roles"]);
    roles.sort();
    let mut expect = vec![r0.clone(), r1.clone(), r2.clone()];
    expect.sort();
    assert_eq!(roles, expect);
    // effective never lists system grants (as Keystone)
    app.grant(&u, TargetKind::System, "", "reader").await;
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?effective&user.id={u}"),
        &admin,
    )
    .await;
    assert!(summary(&b).iter().all(|(_, _, s)| s != "system"));
    let (_, b) = get(&app, &format!("/v3/role_assignments?user.id={u}"), &admin).await;
    assert!(summary(&b).iter().any(|(_, _, s)| s == "system"));
}

async fn effective_inheritance_and_subtree(app: TestApp) {
    let admin = app.system_admin_token().await;
    let d = create_domain(&app, "tree").await;
    let parent = create_project_under(&app, "parent", &d, None).await;
    let child = create_project_under(&app, "child", &d, Some(&parent)).await;
    let leaf = create_project_under(&app, "leaf", &d, Some(&child)).await;
    let u = create_user_in(&app, "treeu", &d).await;
    // a role outside bootstrap's chain, so no direct grant implies it
    let member = new_role(&app, &admin, json!({"name": "inheritable"})).await;
    let reader = app.role_id("reader").await;
    let manager = app.role_id("manager").await;
    let (s, _) = call(
        &app,
        "PUT",
        &format!("/v3/projects/{child}/users/{u}/roles/{manager}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &app,
        "PUT",
        &format!("/v3/projects/{parent}/users/{u}/roles/{reader}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    // include_subtree: the child's assignment is listed under the parent
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?scope.project.id={parent}"),
        &admin,
    )
    .await;
    assert_eq!(summary(&b), sorted(vec![t(&u, &reader, &parent)]));
    let (s, b) = get(
        &app,
        &format!("/v3/role_assignments?scope.project.id={parent}&include_subtree=true"),
        &admin,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let mut want = vec![t(&u, &reader, &parent), t(&u, &manager, &child)];
    want.sort();
    assert_eq!(summary(&b), want);
    // inherited on the parent: effective entries on child and leaf, linked to the parent
    let path =
        format!("/v3/OS-INHERIT/projects/{parent}/users/{u}/roles/{member}/inherited_to_projects");
    let (s, _) = call(&app, "PUT", &path, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?effective&user.id={u}&role.id={member}"),
        &admin,
    )
    .await;
    let mut want = vec![t(&u, &member, &child), t(&u, &member, &leaf)];
    want.sort();
    assert_eq!(summary(&b), want);
    for e in entries(&b) {
        assert_eq!(e["scope"]["OS-INHERIT:inherited_to"], "projects");
        assert_eq!(
            e["links"]["assignment"],
            format!("{}/v3{}", app.address, path.trim_start_matches("/v3"))
        );
    }
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?effective&scope.project.id={leaf}&role.id={member}"),
        &admin,
    )
    .await;
    assert_eq!(summary(&b), sorted(vec![t(&u, &member, &leaf)]));
    // direct listing shows the inherited assignment where it was made
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?scope.OS-INHERIT:inherited_to=projects&user.id={u}"),
        &admin,
    )
    .await;
    let inherited: Vec<_> = summary(&b)
        .into_iter()
        .filter(|(_, _, s)| s != "system")
        .collect();
    assert_eq!(inherited, vec![t(&u, &member, &parent)]);
    // a domain-wide inherited grant reaches all three projects in effective mode
    let (s, _) = call(
        &app,
        "PUT",
        &format!("/v3/OS-INHERIT/domains/{d}/users/{u}/roles/{reader}/inherited_to_projects"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?effective&user.id={u}&role.id={reader}"),
        &admin,
    )
    .await;
    let projects: Vec<String> = summary(&b).into_iter().map(|(_, _, s)| s).collect();
    for p in [&parent, &child, &leaf] {
        assert!(projects.contains(p), "{p} in {projects:?}");
    }
    let (s, b) = get(&app, "/v3/role_assignments?include_subtree", &admin).await;
    assert_eq!(
        (s, message(&b)),
        (
            400,
            "scope.project.id must be specified if include_subtree is also specified"
        )
    );
    let (s, b) = get(
        &app,
        "/v3/role_assignments?include_subtree&scope.project.id=nope",
        &admin,
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find project: nope."));
}

async fn invalid_filter_combinations(app: TestApp) {
    let admin = app.system_admin_token().await;
    for (q, msg) in [
        ("scope.domain.id=a&scope.project.id=b", "Specify a domain or project, not both"),
        ("scope.domain.id=a&scope.system=all", "Specify system or domain, not both"),
        ("scope.project.id=a&scope.system=all", "Specify system or project, not both"),
        ("user.id=a&group.id=b", "Specify a user or group, not both"),
        ("effective&group.id=b", "Combining effective and group filter will always result in an empty list."),
        ("effective&scope.domain.id=a&scope.OS-INHERIT:inherited_to=projects", "Combining effective, domain and inherited filters will always result in an empty list."),
    ] {
        let (s, b) = get(&app, &format!("/v3/role_assignments?{q}"), &admin).await;
        assert_eq!((s, message(&b)), (400, msg), "{q}");
    }
    let (s, b) = get(&app, "/v3/role_assignments?role.id=bad%20id", &admin).await;
    assert_eq!(s, 400, "{b}");
    let (s, _) = get(&app, "/v3/role_assignments?role.id=unknown", &admin).await;
    assert_eq!(s, 200, "an unknown role id filters everything out, no 404");
}

async fn role_assignment_protection(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (_, reader) = system_token(&app, "reader").await;
    let (member_user, member, member_project) = app.member_with_token("member").await;
    let (s, _) = call(&app, "GET", "/v3/role_assignments", None, None).await;
    assert_eq!(s, 401);
    let (s, b) = get(&app, "/v3/role_assignments", &member).await;
    assert_eq!((s, message(&b)), (403, "You are not authorized to perform the requested action: identity:list_role_assignments."));
    let (s, b) = get(&app, "/v3/role_assignments", &reader).await;
    assert_eq!(s, 200);
    assert!(summary(&b).contains(&t(
        &member_user.user_id,
        &app.role_id("member").await,
        &member_project
    )));
    let (s, b) = get(
        &app,
        &format!("/v3/role_assignments?scope.project.id={member_project}&include_subtree"),
        &member,
    )
    .await;
    assert_eq!((s, message(&b)), (403, "You are not authorized to perform the requested action: identity:list_role_assignments_for_tree."));
    let (s, _) = get(
        &app,
        &format!("/v3/role_assignments?scope.project.id={member_project}&include_subtree"),
        &admin,
    )
    .await;
    assert_eq!(s, 200);
    // a domain reader sees its own domain only
    let d = create_domain(&app, "dread").await;
    let p = create_project_under(&app, "drp", &d, None).await;
    let u = create_user_in(&app, "dru", &d).await;
    app.grant(&u, TargetKind::Project, &p, "member").await;
    let (reader, dtoken) = domain_token(&app, &d, "reader").await;
    let reader_user = reader.user_id;
    let (s, b) = get(&app, "/v3/role_assignments", &dtoken).await;
    assert_eq!(s, 200, "{b}");
    let seen = summary(&b);
    let reader_role = app.role_id("reader").await;
    let member_role = app.role_id("member").await;
    let mut want = vec![t(&u, &member_role, &p), t(&reader_user, &reader_role, &d)];
    want.sort();
    assert_eq!(
        seen, want,
        "nothing outside the domain (not the admin's grants)"
    );
    // ... and its subtree listing is checked against the project's domain
    let (s, _) = get(
        &app,
        &format!("/v3/role_assignments?scope.project.id={p}&include_subtree"),
        &dtoken,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = get(
        &app,
        &format!("/v3/role_assignments?scope.project.id={member_project}&include_subtree"),
        &dtoken,
    )
    .await;
    assert_eq!(s, 403);
}

both_backends!(
    direct_listing_and_filters,
    effective_through_group_and_implied_chain,
    effective_inheritance_and_subtree,
    invalid_filter_combinations,
    role_assignment_protection,
);
