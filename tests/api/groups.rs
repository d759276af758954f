//! /v3/groups and membership over HTTP: shapes, validation, the default policy per
//! route, and the revocations Keystone ties to membership and group deletion.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
#[allow(unused_imports)]
use crate::helpers::{domain_token, ids, message, system_token, TestApp};
#[allow(unused_imports)]
use crate::users::{assert_revoked, assert_valid, call, create_domain, unscoped_token};
use keystone_rs::model::{ActorKind, Assignment, TargetKind};

async fn create_group(app: &TestApp, token: &str, body: Value) -> String {
    let (status, body) = call(app, Method::POST, "/v3/groups", Some(token), Some(body)).await;
    assert_eq!(status, 201, "{body}");
    body["group"]["id"].as_str().expect("id").to_string()
}

/// Gives the group a role on a fresh project, so its deletion must revoke members.
async fn grant_group(app: &TestApp, group_id: &str) -> String {
    let project_id = app
        .create_project(&format!("gp-{}", &crate::helpers::id()[..8]), "default")
        .await;
    let role_id = app.role_id("member").await;
    app.store
        .add_assignment(&Assignment {
            actor: ActorKind::Group,
            actor_id: group_id.into(),
            target: TargetKind::Project,
            target_id: project_id.clone(),
            role_id,
            inherited: false,
        })
        .await
        .expect("grant");
    project_id
}

async fn group_crud_shapes_and_validation(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = Some(admin.as_str());
    let (status, body) = call(
        &app,
        Method::POST,
        "/v3/groups",
        a,
        Some(json!({"group": {"name": "devs", "description": "developers", "team": "blue"}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let gid = body["group"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        body["group"],
        json!({"team": "blue", "id": gid, "name": "devs", "domain_id": "default", "description": "developers", "links": {"self": format!("{}/v3/groups/{gid}", app.address)}})
    );
    let (status, body) = call(
        &app,
        Method::POST,
        "/v3/groups",
        a,
        Some(json!({"group": {"name": "devs", "domain_id": "default"}})),
    )
    .await;
    assert_eq!((status, message(&body)), (409, "Conflict occurred attempting to store group - Duplicate entry found with name devs at domain ID default."));
    for bad in [
        json!({"group": {}}),
        json!({"group": {"name": ""}}),
        json!({"group": {"name": " "}}),
        json!({"group": {"name": "g".repeat(256)}}),
        json!({"group": {"name": ["x"]}}),
        json!({"group": {"name": "x", "description": 3}}),
        json!({"group": {"name": "x", "domain_id": "not/an/id"}}),
        json!({"group": []}),
        json!({"group": {"name": "x"}, "user": {}}),
    ] {
        let (status, body) = call(&app, Method::POST, "/v3/groups", a, Some(bad.clone())).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (400, json!(400)),
            "{bad}"
        );
    }
    let (status, body) = call(
        &app,
        Method::POST,
        "/v3/groups",
        a,
        Some(json!({"group": {"name": "x", "domain_id": "nosuch"}})),
    )
    .await;
    assert_eq!(
        (status, message(&body)),
        (404, "Could not find domain: nosuch.")
    );
    let (_, body) = call(&app, Method::GET, "/v3/groups?name=x", a, None).await;
    assert_eq!(body["groups"], json!([]), "nothing half-written");
    // description defaults to "" as Keystone's create_group
    let d2 = create_domain(&app, "d2").await;
    let other = create_group(
        &app,
        &admin,
        json!({"group": {"name": "devs", "domain_id": d2}}),
    )
    .await;
    let (status, body) = call(&app, Method::GET, &format!("/v3/groups/{other}"), a, None).await;
    assert_eq!(
        (
            status,
            body["group"]["description"].clone(),
            body["group"]["domain_id"].clone()
        ),
        (200, json!(""), json!(d2))
    );
    let r = app
        .client
        .head(app.url(&format!("/v3/groups/{gid}")))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("head");
    assert_eq!(r.status().as_u16(), 200);
    let (status, body) = call(&app, Method::GET, "/v3/groups/nope", a, None).await;
    assert_eq!(
        (status, message(&body)),
        (404, "Could not find group: nope.")
    );
    // list and filters
    let (status, body) = call(&app, Method::GET, "/v3/groups", a, None).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body["groups"]).len(), 2);
    assert_eq!(body["links"]["self"], format!("{}/v3/groups", app.address));
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/v3/groups?domain_id={d2}"),
        a,
        None,
    )
    .await;
    assert_eq!(ids(&body["groups"]), vec![other.clone()]);
    let (_, body) = call(
        &app,
        Method::GET,
        "/v3/groups?name=devs&domain_id=default",
        a,
        None,
    )
    .await;
    assert_eq!(ids(&body["groups"]), vec![gid.clone()]);
    let (_, body) = call(&app, Method::GET, "/v3/groups?name__contains=ev", a, None).await;
    assert_eq!(ids(&body["groups"]).len(), 2);
    // PATCH
    let path = format!("/v3/groups/{gid}");
    for (bad, msg) in [
        (json!({"group": {}}), None),
        (json!({"group": {"id": "x"}}), Some("Cannot change ID")),
        (
            json!({"group": {"domain_id": d2}}),
            Some("Cannot change Domain ID"),
        ),
        (json!({"group": {"name": ""}}), None),
    ] {
        let (status, body) = call(&app, Method::PATCH, &path, a, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
        if let Some(m) = msg {
            assert_eq!(message(&body), m);
        }
    }
    let (status, body) = call(
        &app,
        Method::PATCH,
        &path,
        a,
        Some(json!({"group": {"name": "developers", "description": "all of them", "team": "red"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["group"]["name"].clone(),
            body["group"]["description"].clone(),
            body["group"]["team"].clone()
        ),
        (json!("developers"), json!("all of them"), json!("red"))
    );
    let (_, body) = call(&app, Method::GET, &path, a, None).await;
    assert_eq!(body["group"]["name"], "developers", "persisted");
    call(
        &app,
        Method::POST,
        "/v3/groups",
        a,
        Some(json!({"group": {"name": "ops"}})),
    )
    .await;
    let (status, body) = call(
        &app,
        Method::PATCH,
        &path,
        a,
        Some(json!({"group": {"name": "ops"}})),
    )
    .await;
    assert_eq!(
        (status, message(&body)),
        (
            409,
            "Conflict occurred attempting to store group - Duplicate entry found with name ops."
        )
    );
    assert_eq!(
        call(
            &app,
            Method::PATCH,
            "/v3/groups/nope",
            a,
            Some(json!({"group": {"name": "z"}}))
        )
        .await
        .0,
        404
    );
    // DELETE
    assert_eq!(
        call(&app, Method::DELETE, &path, a, None).await,
        (204, Value::Null)
    );
    assert_eq!(call(&app, Method::GET, &path, a, None).await.0, 404);
    let (status, body) = call(&app, Method::DELETE, &path, a, None).await;
    assert_eq!(
        (status, message(&body).to_string()),
        (404, format!("Could not find group: {gid}."))
    );
}

async fn membership_routes(app: TestApp) {
    let admin = app.system_admin_token().await;
    let a = Some(admin.as_str());
    let gid = create_group(&app, &admin, json!({"group": {"name": "crew"}})).await;
    let user = app.create_user("sailor", "pa55word").await;
    let member_path = format!("/v3/groups/{gid}/users/{}", user.user_id);
    // not yet a member: Keystone's 404 text
    let (status, body) = call(&app, Method::GET, &member_path, a, None).await;
    assert_eq!(
        (status, message(&body).to_string()),
        (
            404,
            format!("User '{}' not found in group '{gid}'", user.user_id)
        )
    );
    let r = app
        .client
        .head(app.url(&member_path))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("head");
    assert_eq!(r.status().as_u16(), 404);
    let (status, body) = call(&app, Method::DELETE, &member_path, a, None).await;
    assert_eq!(
        (status, message(&body).to_string()),
        (
            404,
            format!("User '{}' not found in group '{gid}'", user.user_id)
        )
    );
    // add (idempotent), check with HEAD and GET
    assert_eq!(
        call(&app, Method::PUT, &member_path, a, None).await,
        (204, Value::Null)
    );
    assert_eq!(call(&app, Method::PUT, &member_path, a, None).await.0, 204);
    let r = app
        .client
        .head(app.url(&member_path))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("head");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        call(&app, Method::GET, &member_path, a, None).await,
        (204, Value::Null)
    );
    // listings both ways
    let (status, body) = call(
        &app,
        Method::GET,
        &format!("/v3/groups/{gid}/users"),
        a,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body["users"]), vec![user.user_id.clone()]);
    assert_eq!(
        body["users"][0]["links"]["self"],
        format!("{}/v3/users/{}", app.address, user.user_id)
    );
    assert!(body["users"][0].get("password").is_none());
    assert_eq!(
        body["links"]["self"],
        format!("{}/v3/groups/{gid}/users", app.address)
    );
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/v3/groups/{gid}/users?enabled=false"),
        a,
        None,
    )
    .await;
    assert_eq!(body["users"], json!([]));
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/v3/groups/{gid}/users?name=sailor"),
        a,
        None,
    )
    .await;
    assert_eq!(ids(&body["users"]).len(), 1);
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/v3/users/{}/groups", user.user_id),
        a,
        None,
    )
    .await;
    assert_eq!(ids(&body["groups"]), vec![gid.clone()]);
    // unknown group or user: the group is named first, as Keystone
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("/v3/groups/{gid}/users/nobody"),
        a,
        None,
    )
    .await;
    assert_eq!(
        (status, message(&body)),
        (404, "Could not find user: nobody.")
    );
    let (status, body) = call(
        &app,
        Method::PUT,
        "/v3/groups/nogroup/users/nobody",
        a,
        None,
    )
    .await;
    assert_eq!(
        (status, message(&body)),
        (404, "Could not find group: nogroup.")
    );
    assert_eq!(
        call(&app, Method::GET, "/v3/groups/nogroup/users", a, None)
            .await
            .0,
        404
    );
    // remove
    assert_eq!(
        call(&app, Method::DELETE, &member_path, a, None).await,
        (204, Value::Null)
    );
    assert_eq!(call(&app, Method::GET, &member_path, a, None).await.0, 404);
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/v3/groups/{gid}/users"),
        a,
        None,
    )
    .await;
    assert_eq!(body["users"], json!([]));
}

async fn group_protection_matrix(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (_, reader) = system_token(&app, "reader").await;
    let (member, member_token, _) = app.member_with_token("member").await;
    let gid = create_group(&app, &admin, json!({"group": {"name": "crew"}})).await;
    let other = app.create_user("other", "pa55word").await;
    let (a, r, m) = (
        Some(admin.as_str()),
        Some(reader.as_str()),
        Some(member_token.as_str()),
    );
    call(
        &app,
        Method::PUT,
        &format!("/v3/groups/{gid}/users/{}", member.user_id),
        a,
        None,
    )
    .await;
    let member_path = format!("/v3/groups/{gid}/users/{}", member.user_id);
    // reads
    for (path, ok) in [
        ("/v3/groups".to_string(), 200),
        (format!("/v3/groups/{gid}"), 200),
        (format!("/v3/groups/{gid}/users"), 200),
        (member_path.clone(), 204),
    ] {
        assert_eq!(
            call(&app, Method::GET, &path, a, None).await.0,
            ok,
            "admin {path}"
        );
        assert_eq!(
            call(&app, Method::GET, &path, r, None).await.0,
            ok,
            "reader {path}"
        );
        let (status, body) = call(&app, Method::GET, &path, m, None).await;
        assert_eq!(status, 403, "member {path}");
        assert!(message(&body)
            .starts_with("You are not authorized to perform the requested action: identity:"));
        assert_eq!(
            call(&app, Method::GET, &path, None, None).await.0,
            401,
            "anonymous {path}"
        );
    }
    // the owner may list its own groups
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/v3/users/{}/groups", member.user_id),
            m,
            None
        )
        .await
        .0,
        200
    );
    // GET/PATCH of an unknown group: 403 without rights, 404 with; DELETE loads first (404)
    assert_eq!(
        call(&app, Method::GET, "/v3/groups/nope", m, None).await.0,
        403
    );
    assert_eq!(
        call(&app, Method::GET, "/v3/groups/nope", r, None).await.0,
        404
    );
    assert_eq!(
        call(&app, Method::DELETE, "/v3/groups/nope", m, None)
            .await
            .0,
        404
    );
    // writes: neither the system reader nor a member, nor anonymous
    let other_path = format!("/v3/groups/{gid}/users/{}", other.user_id);
    for tok in [r, m] {
        assert_eq!(
            call(
                &app,
                Method::POST,
                "/v3/groups",
                tok,
                Some(json!({"group": {"name": "x"}}))
            )
            .await
            .0,
            403
        );
        assert_eq!(
            call(
                &app,
                Method::PATCH,
                &format!("/v3/groups/{gid}"),
                tok,
                Some(json!({"group": {"name": "y"}}))
            )
            .await
            .0,
            403
        );
        assert_eq!(call(&app, Method::PUT, &other_path, tok, None).await.0, 403);
        assert_eq!(
            call(&app, Method::DELETE, &member_path, tok, None).await.0,
            403
        );
        assert_eq!(
            call(
                &app,
                Method::DELETE,
                &format!("/v3/groups/{gid}"),
                tok,
                None
            )
            .await
            .0,
            403
        );
    }
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/v3/groups",
            None,
            Some(json!({"group": {"name": "x"}}))
        )
        .await
        .0,
        401
    );
    assert_eq!(
        call(
            &app,
            Method::PATCH,
            &format!("/v3/groups/{gid}"),
            None,
            Some(json!({"group": {"name": "y"}}))
        )
        .await
        .0,
        401
    );
    assert_eq!(
        call(&app, Method::PUT, &other_path, None, None).await.0,
        401
    );
    assert_eq!(
        call(&app, Method::DELETE, &member_path, None, None).await.0,
        401
    );
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &format!("/v3/groups/{gid}"),
            None,
            None
        )
        .await
        .0,
        401
    );
    // nothing changed
    assert_eq!(call(&app, Method::GET, &other_path, a, None).await.0, 404);
    assert_eq!(call(&app, Method::GET, &member_path, a, None).await.0, 204);
    assert_eq!(
        call(&app, Method::GET, &format!("/v3/groups/{gid}"), a, None)
            .await
            .1["group"]["name"],
        "crew"
    );
    // the admin may
    assert_eq!(
        call(
            &app,
            Method::PATCH,
            &format!("/v3/groups/{gid}"),
            a,
            Some(json!({"group": {"name": "y"}}))
        )
        .await
        .0,
        200
    );
    assert_eq!(call(&app, Method::PUT, &other_path, a, None).await.0, 204);
    assert_eq!(
        call(&app, Method::DELETE, &format!("/v3/groups/{gid}"), a, None)
            .await
            .0,
        204
    );
}

async fn domain_manager_manages_its_domain_groups(app: TestApp) {
    let admin = app.system_admin_token().await;
    let d2 = create_domain(&app, "d2").await;
    let (_, mtoken) = domain_token(&app, &d2, "manager").await;
    let (_, rtoken) = domain_token(&app, &d2, "reader").await;
    let (m, r) = (Some(mtoken.as_str()), Some(rtoken.as_str()));
    let in_default = create_group(&app, &admin, json!({"group": {"name": "default-crew"}})).await;
    let gid = create_group(
        &app,
        &mtoken,
        json!({"group": {"name": "d2-crew", "domain_id": d2}}),
    )
    .await;
    // without domain_id the body names no domain: Keystone's create_group check fails
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/v3/groups",
            m,
            Some(json!({"group": {"name": "x"}}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/v3/groups",
            m,
            Some(json!({"group": {"name": "x", "domain_id": "default"}}))
        )
        .await
        .0,
        403
    );
    // listing is limited to the domain for both
    for tok in [m, r] {
        let (status, body) = call(&app, Method::GET, "/v3/groups", tok, None).await;
        assert_eq!(status, 200);
        assert_eq!(ids(&body["groups"]), vec![gid.clone()]);
        let (_, body) = call(&app, Method::GET, "/v3/groups?domain_id=default", tok, None).await;
        assert_eq!(body["groups"], json!([]));
    }
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/v3/groups/{in_default}"),
            r,
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &app,
            Method::PATCH,
            &format!("/v3/groups/{in_default}"),
            m,
            Some(json!({"group": {"name": "z"}}))
        )
        .await
        .0,
        403
    );
    // membership: both group and user must be in the manager's domain
    let (status, body) = call(
        &app,
        Method::POST,
        "/v3/users",
        Some(&admin),
        Some(json!({"user": {"name": "d2-user", "domain_id": d2}})),
    )
    .await;
    assert_eq!(status, 201);
    let d2_user = body["user"]["id"].as_str().expect("id").to_string();
    let outsider = app.create_user("outsider", "pa55word").await;
    assert_eq!(
        call(
            &app,
            Method::PUT,
            &format!("/v3/groups/{gid}/users/{d2_user}"),
            m,
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(
            &app,
            Method::PUT,
            &format!("/v3/groups/{gid}/users/{}", outsider.user_id),
            m,
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &app,
            Method::PUT,
            &format!("/v3/groups/{gid}/users/{d2_user}"),
            r,
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/v3/groups/{gid}/users/{d2_user}"),
            r,
            None
        )
        .await
        .0,
        204
    );
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/v3/groups/{gid}/users"),
        r,
        None,
    )
    .await;
    assert_eq!(ids(&body["users"]), vec![d2_user.clone()]);
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &format!("/v3/groups/{gid}/users/{d2_user}"),
            m,
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(&app, Method::DELETE, &format!("/v3/groups/{gid}"), r, None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(&app, Method::DELETE, &format!("/v3/groups/{gid}"), m, None)
            .await
            .0,
        204
    );
}

async fn removing_a_member_revokes_its_tokens(app: TestApp) {
    let admin = app.system_admin_token().await;
    let gid = create_group(&app, &admin, json!({"group": {"name": "crew"}})).await;
    let project_id = grant_group(&app, &gid).await;
    let user = app.create_user("sailor", "pa55word").await;
    let stays = app.create_user("stays", "pa55word").await;
    for u in [&user, &stays] {
        assert_eq!(
            call(
                &app,
                Method::PUT,
                &format!("/v3/groups/{gid}/users/{}", u.user_id),
                Some(&admin),
                None
            )
            .await
            .0,
            204
        );
    }
    // a project token that holds its role only through the group, and an unscoped one
    let (status, scoped, body) = app
        .password_token("sailor", "pa55word", json!({"project": {"id": project_id}}))
        .await;
    assert_eq!(status, 201, "{body}");
    let scoped = scoped.expect("t");
    let unscoped = unscoped_token(&app, "sailor", "pa55word").await;
    let bystander = unscoped_token(&app, "stays", "pa55word").await;
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &format!("/v3/groups/{gid}/users/{}", user.user_id),
            Some(&admin),
            None
        )
        .await
        .0,
        204
    );
    assert_revoked(&app, &admin, &unscoped, &user.user_id).await;
    let (status, _) = app.validate(&admin, &scoped, "").await;
    assert_eq!(status, 404);
    assert_valid(&app, &admin, &bystander).await;
    // a token issued a second later works (and can no longer reach the group's project)
    app.clock.advance(1);
    let fresh = unscoped_token(&app, "sailor", "pa55word").await;
    assert_valid(&app, &admin, &fresh).await;
    let (status, _, _) = app
        .password_token("sailor", "pa55word", json!({"project": {"id": project_id}}))
        .await;
    assert_eq!(status, 401);
}

async fn deleting_a_group_revokes_members_when_it_carried_roles(app: TestApp) {
    let admin = app.system_admin_token().await;
    let with_roles = create_group(&app, &admin, json!({"group": {"name": "with-roles"}})).await;
    grant_group(&app, &with_roles).await;
    let without = create_group(&app, &admin, json!({"group": {"name": "without-roles"}})).await;
    let x = app.create_user("x-user", "pa55word").await;
    let y = app.create_user("y-user", "pa55word").await;
    call(
        &app,
        Method::PUT,
        &format!("/v3/groups/{with_roles}/users/{}", x.user_id),
        Some(&admin),
        None,
    )
    .await;
    call(
        &app,
        Method::PUT,
        &format!("/v3/groups/{without}/users/{}", y.user_id),
        Some(&admin),
        None,
    )
    .await;
    let x_token = unscoped_token(&app, "x-user", "pa55word").await;
    let y_token = unscoped_token(&app, "y-user", "pa55word").await;
    // Keystone's delete_group revokes members only if the group had role assignments
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &format!("/v3/groups/{without}"),
            Some(&admin),
            None
        )
        .await
        .0,
        204
    );
    assert_valid(&app, &admin, &y_token).await;
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &format!("/v3/groups/{with_roles}"),
            Some(&admin),
            None
        )
        .await
        .0,
        204
    );
    assert_revoked(&app, &admin, &x_token, &x.user_id).await;
    assert_valid(&app, &admin, &y_token).await;
    // memberships and the group's assignments are gone with it
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/v3/users/{}/groups", x.user_id),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(body["groups"], json!([]));
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/v3/users/{}/projects", x.user_id),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(body["projects"], json!([]));
    app.clock.advance(1);
    let fresh = unscoped_token(&app, "x-user", "pa55word").await;
    assert_valid(&app, &admin, &fresh).await;
}

both_backends!(
    group_crud_shapes_and_validation,
    membership_routes,
    group_protection_matrix,
    domain_manager_manages_its_domain_groups,
    removing_a_member_revokes_its_tokens,
    deleting_a_group_revokes_members_when_it_carried_roles,
);
