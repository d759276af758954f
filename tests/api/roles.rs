//! /v3/roles, implied roles and /v3/role_inferences over HTTP.

use keystone_rs::model::TargetKind;
use serde_json::{json, Value};

use crate::assign_support::{call, create_domain, create_user_in, get, must_token, new_role};
use crate::both_backends;
#[allow(unused_imports)]
use crate::helpers::{message, sorted_ids, system_token, TestApp};

async fn role_crud_shapes_and_errors(app: TestApp) {
    let admin = app.system_admin_token().await;
    // create: Keystone's shape, extras kept, a client id ignored
    let (s, b) = call(
        &app,
        "POST",
        "/v3/roles",
        Some(&admin),
        Some(json!({"role": {"name": "observer", "id": "mine", "color": "blue"}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let role = &b["role"];
    let id = role["id"].as_str().expect("id").to_string();
    assert_ne!(id, "mine");
    assert_eq!(role["name"], "observer");
    assert_eq!(role["domain_id"], Value::Null);
    assert_eq!(role["description"], Value::Null);
    assert_eq!(role["options"], json!({}));
    assert_eq!(role["color"], "blue");
    assert_eq!(
        role["links"]["self"],
        format!("{}/v3/roles/{id}", app.address)
    );
    // duplicate name: Keystone's 409 text
    let (s, b) = call(
        &app,
        "POST",
        "/v3/roles",
        Some(&admin),
        Some(json!({"role": {"name": "observer"}})),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(
        message(&b),
        "Conflict occurred attempting to store role - Duplicate entry found with name observer."
    );
    // bad input, nothing written
    for bad in [
        json!({"role": {}}),
        json!({"role": {"name": " "}}),
        json!({"role": {"name": "x".repeat(256)}}),
        json!({"role": {"name": "ok", "description": 5}}),
        json!({"role": {"name": "ok", "options": {"sticky": true}}}),
        json!({"role": {"name": "ok", "options": {"immutable": "maybe"}}}),
        json!({"role": {"name": "ok", "domain_id": "bad id!"}}),
        json!({"norole": {}}),
    ] {
        let (s, b) = call(&app, "POST", "/v3/roles", Some(&admin), Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad} -> {b}");
        assert_eq!(b["error"]["code"], 400);
    }
    let (_, b) = get(&app, "/v3/roles?name=ok", &admin).await;
    assert_eq!(b["roles"], json!([]), "rejected bodies wrote nothing");
    // 255 characters is the limit
    new_role(&app, &admin, json!({"name": "n".repeat(255)})).await;
    // get, head
    let (s, b) = get(&app, &format!("/v3/roles/{id}"), &admin).await;
    assert_eq!(s, 200);
    assert_eq!(b["role"]["name"], "observer");
    let (s, b) = call(&app, "HEAD", &format!("/v3/roles/{id}"), Some(&admin), None).await;
    assert_eq!((s, b), (200, Value::Null));
    let (s, b) = get(&app, "/v3/roles/nope", &admin).await;
    assert_eq!(s, 404);
    assert_eq!(message(&b), "Could not find role: nope.");
    // list with a name filter
    let (s, b) = get(&app, "/v3/roles?name=observer", &admin).await;
    assert_eq!(s, 200);
    assert_eq!(sorted_ids(&b["roles"]), vec![id.clone()]);
    assert_eq!(
        b["links"]["self"],
        format!("{}/v3/roles?name=observer", app.address)
    );
    let (_, b) = get(&app, "/v3/roles", &admin).await;
    let names: Vec<&str> = b["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for n in ["admin", "member", "reader", "observer"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    // update
    let (s, b) = call(
        &app,
        "PATCH",
        &format!("/v3/roles/{id}"),
        Some(&admin),
        Some(json!({"role": {"name": "watcher", "description": "looks"}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["role"]["name"], "watcher");
    assert_eq!(b["role"]["description"], "looks");
    assert_eq!(b["role"]["color"], "blue");
    let (s, b) = call(
        &app,
        "PATCH",
        &format!("/v3/roles/{id}"),
        Some(&admin),
        Some(json!({"role": {"id": "other"}})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "Cannot change ID"));
    let (s, b) = call(
        &app,
        "PATCH",
        &format!("/v3/roles/{id}"),
        Some(&admin),
        Some(json!({"role": {"domain_id": "default"}})),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (400, "Update of `domain_id` is not allowed.")
    );
    let (s, _) = call(
        &app,
        "PATCH",
        &format!("/v3/roles/{id}"),
        Some(&admin),
        Some(json!({"role": {}})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, b) = call(
        &app,
        "PATCH",
        &format!("/v3/roles/{id}"),
        Some(&admin),
        Some(json!({"role": {"name": "member"}})),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(
        message(&b),
        "Conflict occurred attempting to store role - Duplicate entry found with name member."
    );
    let (s, b) = call(
        &app,
        "PATCH",
        "/v3/roles/nope",
        Some(&admin),
        Some(json!({"role": {"name": "z"}})),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find role: nope."));
    // delete
    let (s, _) = call(
        &app,
        "DELETE",
        &format!("/v3/roles/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = get(&app, &format!("/v3/roles/{id}"), &admin).await;
    assert_eq!(s, 404);
    let (s, b) = call(
        &app,
        "DELETE",
        &format!("/v3/roles/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (404, format!("Could not find role: {id}.").as_str())
    );
}

async fn domain_specific_roles(app: TestApp) {
    let admin = app.system_admin_token().await;
    let d1 = create_domain(&app, "d1").await;
    let (s, b) = call(
        &app,
        "POST",
        "/v3/roles",
        Some(&admin),
        Some(json!({"role": {"name": "member", "domain_id": d1}})),
    )
    .await;
    assert_eq!(s, 201, "a domain role may share a global role's name: {b}");
    assert_eq!(b["role"]["domain_id"], d1.as_str());
    let drole = b["role"]["id"].as_str().expect("id").to_string();
    let (s, b) = call(
        &app,
        "POST",
        "/v3/roles",
        Some(&admin),
        Some(json!({"role": {"name": "member", "domain_id": d1}})),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(message(&b), format!("Conflict occurred attempting to store role - Duplicate entry found with name member at domain ID {d1}."));
    let (s, b) = call(
        &app,
        "POST",
        "/v3/roles",
        Some(&admin),
        Some(json!({"role": {"name": "x", "domain_id": "nodomain"}})),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find domain: nodomain."));
    // global listing hides domain roles; the domain filter shows only them
    let (_, b) = get(&app, "/v3/roles", &admin).await;
    assert!(!sorted_ids(&b["roles"]).contains(&drole));
    let (s, b) = get(&app, &format!("/v3/roles?domain_id={d1}"), &admin).await;
    assert_eq!(s, 200);
    assert_eq!(sorted_ids(&b["roles"]), vec![drole.clone()]);
    let (s, b) = get(&app, &format!("/v3/roles/{drole}"), &admin).await;
    assert_eq!((s, b["role"]["domain_id"].clone()), (200, json!(d1)));
    // a project member cannot read a domain role (identity:get_domain_role)
    let (_, member, _) = app.member_with_token("member").await;
    let (s, b) = get(&app, &format!("/v3/roles/{drole}"), &member).await;
    assert_eq!(
        (s, message(&b)),
        (
            403,
            "You are not authorized to perform the requested action: identity:get_domain_role."
        )
    );
    let (s, _) = call(
        &app,
        "DELETE",
        &format!("/v3/roles/{drole}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
}

async fn immutable_roles(app: TestApp) {
    let admin = app.system_admin_token().await;
    let id = new_role(
        &app,
        &admin,
        json!({"name": "locked", "options": {"immutable": true}}),
    )
    .await;
    let (_, b) = get(&app, &format!("/v3/roles/{id}"), &admin).await;
    assert_eq!(b["role"]["options"], json!({"immutable": true}));
    let (s, b) = call(
        &app,
        "PATCH",
        &format!("/v3/roles/{id}"),
        Some(&admin),
        Some(json!({"role": {"name": "unlocked"}})),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(message(&b), format!("Unable to update immutable role resource: `{id}. Set resource option \"immutable\" to false first."));
    let (s, b) = call(
        &app,
        "DELETE",
        &format!("/v3/roles/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(message(&b), format!("Unable to delete immutable role resource: `{id}. Set resource option \"immutable\" to false first."));
    let (s, b) = call(
        &app,
        "PATCH",
        &format!("/v3/roles/{id}"),
        Some(&admin),
        Some(json!({"role": {"options": {"immutable": false}}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["role"]["options"], json!({"immutable": false}));
    let (s, _) = call(
        &app,
        "DELETE",
        &format!("/v3/roles/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
}

async fn implied_role_rules(app: TestApp) {
    let admin = app.system_admin_token().await;
    let prior = new_role(&app, &admin, json!({"name": "prior"})).await;
    let implied = new_role(&app, &admin, json!({"name": "implied"})).await;
    let base = &app.address;
    let path = format!("/v3/roles/{prior}/implies/{implied}");
    let (s, b) = call(&app, "PUT", &path, Some(&admin), None).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b,
        json!({
            "role_inference": {
                "prior_role": {"id": prior, "links": {"self": format!("{base}/v3/roles/{prior}")}, "name": "prior"},
                "implies": {"id": implied, "links": {"self": format!("{base}/v3/roles/{implied}")}, "name": "implied"},
            },
            "links": {"self": format!("{base}{path}")},
        })
    );
    let (s, b) = call(&app, "PUT", &path, Some(&admin), None).await;
    assert_eq!(
        (s, message(&b)),
        (
            409,
            "Conflict occurred attempting to store implied_role - Duplicate entry."
        )
    );
    let (s, b) = get(&app, &path, &admin).await;
    assert_eq!(s, 200);
    assert_eq!(b["role_inference"]["implies"]["id"], implied.as_str());
    let (s, b) = call(&app, "HEAD", &path, Some(&admin), None).await;
    assert_eq!((s, b), (204, Value::Null));
    // list for one prior role
    let (s, b) = get(&app, &format!("/v3/roles/{prior}/implies"), &admin).await;
    assert_eq!(s, 200);
    assert_eq!(b["role_inference"]["prior_role"]["id"], prior.as_str());
    assert_eq!(
        sorted_ids(&b["role_inference"]["implies"]),
        vec![implied.clone()]
    );
    assert_eq!(
        b["links"]["self"],
        format!("{base}/v3/roles/{prior}/implies")
    );
    let (s, _) = call(
        &app,
        "HEAD",
        &format!("/v3/roles/{prior}/implies"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200);
    // all rules, bootstrap's chain included
    let (s, b) = get(&app, "/v3/role_inferences", &admin).await;
    assert_eq!(s, 200);
    let rules = b["role_inferences"].as_array().expect("rules");
    let ours = rules
        .iter()
        .find(|r| r["prior_role"]["id"] == prior.as_str())
        .expect("our rule");
    assert_eq!(ours["implies"][0]["name"], "implied");
    assert!(rules.iter().any(|r| r["prior_role"]["name"] == "admin"));
    // unknown roles, missing rules
    let (s, b) = call(
        &app,
        "PUT",
        &format!("/v3/roles/nope/implies/{implied}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Could not find role: nope."));
    let (s, b) = get(
        &app,
        &format!("/v3/roles/{implied}/implies/{prior}"),
        &admin,
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (404, format!("{implied} does not imply {prior}.").as_str())
    );
    // a root role can never be implied ([assignment] prohibited_implied_role)
    let admin_role = app.role_id("admin").await;
    let (s, b) = call(
        &app,
        "PUT",
        &format!("/v3/roles/{prior}/implies/{admin_role}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (
            403,
            format!("{admin_role} cannot be an implied roles.").as_str()
        )
    );
    // a global role cannot imply a domain-specific one
    let d = create_domain(&app, "dr").await;
    let droles = new_role(&app, &admin, json!({"name": "dr", "domain_id": d})).await;
    let (s, b) = call(
        &app,
        "PUT",
        &format!("/v3/roles/{prior}/implies/{droles}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (
            403,
            format!("{droles} cannot be an implied roles.").as_str()
        )
    );
    // ... but a domain-specific role may imply a global one
    let (s, _) = call(
        &app,
        "PUT",
        &format!("/v3/roles/{droles}/implies/{prior}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 201);
    // delete
    let (s, _) = call(&app, "DELETE", &path, Some(&admin), None).await;
    assert_eq!(s, 204);
    let (s, b) = call(&app, "DELETE", &path, Some(&admin), None).await;
    assert_eq!(
        (s, message(&b)),
        (404, format!("{prior} does not imply {implied}.").as_str())
    );
    let (_, b) = get(&app, &format!("/v3/roles/{prior}/implies"), &admin).await;
    assert_eq!(b["role_inference"]["implies"], json!([]));
}

// Keystone accepts cyclic rules (its test_circular_inferences); tokens still
// validate and carry every role on the cycle.
async fn cyclic_rules_are_accepted_and_terminate(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = new_role(&app, &admin, json!({"name": "cyc-a"})).await;
    let b = new_role(&app, &admin, json!({"name": "cyc-b"})).await;
    for (p, i) in [(&a, &b), (&b, &a)] {
        let (s, body) = call(
            &app,
            "PUT",
            &format!("/v3/roles/{p}/implies/{i}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, 201, "{body}");
    }
    let (_, token, _) = app.member_with_token("cyc-a").await;
    let (s, body) = app.validate(&admin, &token, "").await;
    assert_eq!(s, 200, "{body}");
    let mut names: Vec<&str> = body["token"]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, vec!["cyc-a", "cyc-b"]);
}

// Deleting a role removes its grants and rules at once: a token whose only role
// it was stops validating, and nothing refers to the role any more.
async fn deleting_a_role_removes_its_grants_and_rules(app: TestApp) {
    let admin = app.system_admin_token().await;
    let temp = new_role(&app, &admin, json!({"name": "temp"})).await;
    let reader = app.role_id("reader").await;
    let (s, _) = call(
        &app,
        "PUT",
        &format!("/v3/roles/{temp}/implies/{reader}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 201);
    let (member, token, project) = app.member_with_token("temp").await;
    let (s, body) = app.validate(&admin, &token, "").await;
    assert_eq!(s, 200);
    let roles = sorted_ids(&body["token"]["roles"]);
    assert!(
        roles.contains(&reader) && roles.contains(&temp),
        "implied role in the token: {roles:?}"
    );
    let (s, _) = call(
        &app,
        "DELETE",
        &format!("/v3/roles/{temp}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, body) = app.validate(&admin, &token, "").await;
    assert_eq!(s, 404);
    assert_eq!(message(&body), format!("Could not find token: {token}."));
    let (_, b) = get(
        &app,
        &format!("/v3/role_assignments?user.id={}", member.user_id),
        &admin,
    )
    .await;
    assert_eq!(b["role_assignments"], json!([]));
    let (_, b) = get(&app, "/v3/role_inferences", &admin).await;
    assert!(!b.to_string().contains(&temp));
    let (s, _) = call(
        &app,
        "HEAD",
        &format!(
            "/v3/projects/{project}/users/{}/roles/{temp}",
            member.user_id
        ),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

async fn role_protection_matrix(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (_, reader) = system_token(&app, "reader").await;
    let (_, member, _) = app.member_with_token("member").await;
    let r1 = new_role(&app, &admin, json!({"name": "r1"})).await;
    let r2 = new_role(&app, &admin, json!({"name": "r2"})).await;
    let rule = format!("/v3/roles/{r1}/implies/{r2}");
    let (s, _) = call(&app, "PUT", &rule, Some(&admin), None).await;
    assert_eq!(s, 201);
    let reads = [
        ("GET", "/v3/roles".to_string()),
        ("GET", format!("/v3/roles/{r1}")),
        ("GET", format!("/v3/roles/{r1}/implies")),
        ("GET", rule.clone()),
        ("HEAD", rule.clone()),
        ("GET", "/v3/role_inferences".to_string()),
    ];
    let writes = [
        (
            "POST",
            "/v3/roles".to_string(),
            Some(json!({"role": {"name": "new"}})),
        ),
        (
            "PATCH",
            format!("/v3/roles/{r1}"),
            Some(json!({"role": {"description": "d"}})),
        ),
        ("PUT", format!("/v3/roles/{r2}/implies/{r1}"), None),
        ("DELETE", rule.clone(), None),
        ("DELETE", format!("/v3/roles/{r2}"), None),
    ];
    for (m, p) in &reads {
        let (s, _) = call(&app, m, p, None, None).await;
        assert_eq!(s, 401, "anonymous {m} {p}");
        let (s, _) = call(&app, m, p, Some(&reader), None).await;
        assert!(s == 200 || s == 204, "system reader {m} {p}: {s}");
        let (s, b) = call(&app, m, p, Some(&member), None).await;
        assert_eq!(s, 403, "project member {m} {p}: {b}");
    }
    for (m, p, body) in &writes {
        let (s, _) = call(&app, m, p, None, body.clone()).await;
        assert_eq!(s, 401, "anonymous {m} {p}");
        let (s, b) = call(&app, m, p, Some(&reader), body.clone()).await;
        assert_eq!(s, 403, "system reader {m} {p}: {b}");
        let (s, b) = call(&app, m, p, Some(&member), body.clone()).await;
        assert_eq!(s, 403, "project member {m} {p}: {b}");
    }
    assert_eq!(
        message(
            &call(
                &app,
                "POST",
                "/v3/roles",
                Some(&member),
                Some(json!({"role": {"name": "n"}}))
            )
            .await
            .1
        ),
        "You are not authorized to perform the requested action: identity:create_role."
    );
    for (m, p, body) in &writes {
        let (s, b) = call(&app, m, p, Some(&admin), body.clone()).await;
        assert!(
            s == 200 || s == 201 || s == 204,
            "system admin {m} {p}: {s} {b}"
        );
    }
    // a domain manager lists roles but cannot create them
    let d = create_domain(&app, "mgr").await;
    let mgr = create_user_in(&app, "mgr", &d).await;
    app.grant(&mgr, TargetKind::Domain, &d, "manager").await;
    let mgr_token = must_token(&app, &mgr, json!({"domain": {"id": d}})).await;
    let (s, _) = get(&app, "/v3/roles", &mgr_token).await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        "POST",
        "/v3/roles",
        Some(&mgr_token),
        Some(json!({"role": {"name": "nope"}})),
    )
    .await;
    assert_eq!(s, 403);
    // ... and reads only the roles it may hand out (rule:domain_managed_target_role)
    let (s, _) = get(
        &app,
        &format!("/v3/roles/{}", app.role_id("member").await),
        &mgr_token,
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = get(
        &app,
        &format!("/v3/roles/{}", app.role_id("admin").await),
        &mgr_token,
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (
            403,
            "You are not authorized to perform the requested action: identity:get_role."
        )
    );
}

both_backends!(
    role_crud_shapes_and_errors,
    domain_specific_roles,
    immutable_roles,
    implied_role_rules,
    cyclic_rules_are_accepted_and_terminate,
    deleting_a_role_removes_its_grants_and_rules,
    role_protection_matrix,
);
