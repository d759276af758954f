//! `[security_compliance]` over HTTP: user options, lockout (counted atomically),
//! password expiry, history, minimum age, complexity, change upon first use and
//! inactivity. Time moves with the injectable clock, never by sleeping.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{call, message, spawn_configured, Db, TestApp, ADMIN_PASSWORD};
use keystone_rs::config::Settings;

const DAY: i64 = 86_400;

async fn app_with(db: Db, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    spawn_configured(db, tweak).await
}

/// POST /v3/users/{id}/password, no token: (status, body).
async fn self_change(app: &TestApp, user_id: &str, original: &str, new: &str) -> (u16, Value) {
    call(
        app,
        Method::POST,
        &format!("/v3/users/{user_id}/password"),
        None,
        Some(json!({"user": {"original_password": original, "password": new}})),
    )
    .await
}

async fn login(app: &TestApp, name: &str, password: &str) -> (u16, Value) {
    let (status, _, body) = app.password_token(name, password, json!("unscoped")).await;
    (status, body)
}

/// POST /v3/users as the admin: (status, body).
async fn create_user(app: &TestApp, admin: &str, user: Value) -> (u16, Value) {
    call(
        app,
        Method::POST,
        "/v3/users",
        Some(admin),
        Some(json!({ "user": user })),
    )
    .await
}

async fn failed_count(app: &TestApp, user_id: &str) -> i64 {
    app.store
        .get_user(user_id)
        .await
        .expect("db")
        .expect("user")
        .login
        .failed_auth_count
}

/// Sets a user option on the bootstrapped administrator (through the service).
async fn exempt_admin(app: &TestApp, option: &str) {
    let mut u = app
        .store
        .get_user(&app.admin_user_id)
        .await
        .expect("db")
        .expect("admin");
    u.options.insert(option.into(), json!(true));
    app.state.identity.update_user(&u).await.expect("exempt");
}

/// Keystone's naive UTC time with microseconds.
fn keystone_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

async fn user_options_are_stored_and_returned(app: TestApp) {
    let admin = app.admin_token().await;
    let a = Some(admin.as_str());
    let (status, body) = create_user(
        &app,
        &admin,
        json!({"name": "opt", "password": "pw-opt-1", "options": {"ignore_password_expiry": true, "lock_password": false}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["user"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        body["user"]["options"],
        json!({"ignore_password_expiry": true, "lock_password": false})
    );
    let (_, body) = call(&app, Method::GET, &format!("/v3/users/{id}"), a, None).await;
    assert_eq!(
        body["user"]["options"],
        json!({"ignore_password_expiry": true, "lock_password": false})
    );
    // null removes an option, a value sets it, others are kept
    let (status, body) = call(
        &app,
        Method::PATCH,
        &format!("/v3/users/{id}"),
        a,
        Some(json!({"user": {"options": {"ignore_password_expiry": null, "ignore_user_inactivity": true}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["user"]["options"],
        json!({"lock_password": false, "ignore_user_inactivity": true})
    );
    let (_, body) = call(&app, Method::GET, "/v3/users?name=opt", a, None).await;
    assert_eq!(
        body["users"][0]["options"],
        json!({"lock_password": false, "ignore_user_inactivity": true})
    );
    for bad in [
        json!({"options": {"lock_password": "yes"}}),
        json!({"options": {"unknown": true}}),
        json!({"options": "x"}),
    ] {
        let (status, body) = call(
            &app,
            Method::PATCH,
            &format!("/v3/users/{id}"),
            a,
            Some(json!({ "user": bad })),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // lock_password: the owner may not change it, an administrator may
    call(
        &app,
        Method::PATCH,
        &format!("/v3/users/{id}"),
        a,
        Some(json!({"user": {"options": {"lock_password": true}}})),
    )
    .await;
    let (status, body) = self_change(&app, &id, "pw-opt-1", "pw-opt-2").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        message(&body),
        "You cannot change your password at this time due to password policy disallowing password changes. Please contact your administrator to reset your password."
    );
    let (status, _) = call(
        &app,
        Method::PATCH,
        &format!("/v3/users/{id}"),
        a,
        Some(json!({"user": {"password": "pw-opt-3"}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(login(&app, "opt", "pw-opt-3").await.0, 201);
}

async fn lockout_locks_then_expires_and_hides_itself(db: Db) {
    let Some(app) = app_with(db, |s| {
        s.security_compliance.lockout_failure_attempts = Some(2);
        s.security_compliance.lockout_duration = 5;
    })
    .await
    else {
        return;
    };
    let admin = app.admin_token().await;
    let m = app.create_user("locky", "right-pass").await;
    let (status, wrong) = login(&app, "locky", "wrong-pass").await;
    assert_eq!(status, 401);
    let (status, _) = login(&app, "locky", "wrong-pass").await;
    assert_eq!(status, 401);
    assert_eq!(failed_count(&app, &m.user_id).await, 2);
    // locked: the right password is refused with exactly a wrong password's answer,
    // which is also what an unknown user gets (CVE-2021-38155)
    let (status, locked) = login(&app, "locky", "right-pass").await;
    assert_eq!(status, 401);
    assert_eq!(locked, wrong);
    let (_, unknown) = login(&app, "nobody-here", "right-pass").await;
    assert_eq!(unknown, wrong);
    // refusals while locked do not extend the lockout
    assert_eq!(failed_count(&app, &m.user_id).await, 2);
    app.clock.advance(6);
    let (status, body) = login(&app, "locky", "right-pass").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(failed_count(&app, &m.user_id).await, 0);
    // an expired lockout starts counting again from one
    login(&app, "locky", "wrong-pass").await;
    login(&app, "locky", "wrong-pass").await;
    assert_eq!(login(&app, "locky", "right-pass").await.0, 401);
    app.clock.advance(6);
    login(&app, "locky", "wrong-pass").await;
    assert_eq!(failed_count(&app, &m.user_id).await, 1);
    login(&app, "locky", "wrong-pass").await;
    assert_eq!(login(&app, "locky", "right-pass").await.0, 401);
    // an administrator's update of the enabled user unlocks it (Keystone's enabled setter)
    let (status, _) = call(
        &app,
        Method::PATCH,
        &format!("/v3/users/{}", m.user_id),
        Some(&admin),
        Some(json!({"user": {"enabled": true}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(login(&app, "locky", "right-pass").await.0, 201);
    // ignore_lockout_failure_attempts: never locked
    let (status, body) = create_user(
        &app,
        &admin,
        json!({"name": "svc", "password": "svc-pass", "options": {"ignore_lockout_failure_attempts": true}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    for _ in 0..3 {
        login(&app, "svc", "bad").await;
    }
    assert_eq!(login(&app, "svc", "svc-pass").await.0, 201);
    // a locked user cannot change its password either
    login(&app, "locky", "wrong-pass").await;
    login(&app, "locky", "wrong-pass").await;
    let (status, _) = self_change(&app, &m.user_id, "right-pass", "new-pass-1").await;
    assert_eq!(status, 401);
}

async fn concurrent_failures_are_all_counted(app: TestApp) {
    let m = app.create_user("sprayed", "right-pass").await;
    let app = std::sync::Arc::new(app);
    let attempts: Vec<_> = (0..50)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move { login(&app, "sprayed", &format!("wrong-{i}")).await.0 })
        })
        .collect();
    for a in attempts {
        assert_eq!(a.await.expect("task"), 401);
    }
    assert_eq!(failed_count(&app, &m.user_id).await, 50);
    assert_eq!(login(&app, "sprayed", "right-pass").await.0, 201);
    assert_eq!(failed_count(&app, &m.user_id).await, 0);
}

async fn passwords_expire_and_can_still_be_changed(db: Db) {
    let Some(app) = app_with(db, |s| {
        s.security_compliance.password_expires_days = Some(90);
    })
    .await
    else {
        return;
    };
    exempt_admin(&app, "ignore_password_expiry").await;
    app.clock.freeze();
    let admin = app.admin_token().await;
    let now = app.clock.now_secs();
    let (status, body) = create_user(
        &app,
        &admin,
        json!({"name": "exp", "password": "old-pass-1"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["user"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        body["user"]["password_expires_at"],
        keystone_time(now + 90 * DAY)
    );
    let (status, body) = login(&app, "exp", "old-pass-1").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["token"]["user"]["password_expires_at"],
        keystone_time(now + 90 * DAY)
    );
    app.clock.advance(90 * DAY);
    assert_eq!(login(&app, "exp", "old-pass-1").await.0, 401);
    // the expired password still proves who is changing it
    let (status, body) = self_change(&app, &id, "old-pass-1", "new-pass-2").await;
    assert_eq!(status, 204, "{body}");
    // tokens issued in the second of a password change are revoked with it
    app.clock.advance(1);
    let (status, body) = login(&app, "exp", "new-pass-2").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["token"]["user"]["password_expires_at"],
        keystone_time(now + 180 * DAY)
    );
    // exempt users' passwords never expire
    let admin = app.admin_token().await;
    let (status, body) = create_user(
        &app,
        &admin,
        json!({"name": "exempt", "password": "pass-3", "options": {"ignore_password_expiry": true}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["password_expires_at"], Value::Null);
}

async fn history_and_minimum_age_bind_the_owner_only(db: Db) {
    let Some(app) = app_with(db, |s| {
        s.security_compliance.unique_last_password_count = 3;
        s.security_compliance.minimum_password_age = 1;
    })
    .await
    else {
        return;
    };
    let m = app.create_user("hist", "pass-a1").await;
    let id = m.user_id.as_str();
    // the current password counts as used
    let (status, body) = self_change(&app, id, "pass-a1", "pass-a1").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        message(&body),
        "The new password cannot be identical to a previous password. The total number which includes the new password must be unique is 3."
    );
    // an administrator's password is not subject to the minimum age
    assert_eq!(self_change(&app, id, "pass-a1", "pass-b2").await.0, 204);
    let (status, body) = self_change(&app, id, "pass-b2", "pass-c3").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        message(&body),
        "You cannot change your password at this time due to the minimum password age. Once you change your password, it must be used for 1 day(s) before it can be changed. Please try again in 0 day(s) or contact your administrator to reset your password."
    );
    app.clock.advance(DAY);
    // last three: pass-b2 (current), pass-a1
    assert_eq!(self_change(&app, id, "pass-b2", "pass-a1").await.0, 400);
    assert_eq!(self_change(&app, id, "pass-b2", "pass-c3").await.0, 204);
    app.clock.advance(DAY);
    assert_eq!(self_change(&app, id, "pass-c3", "pass-a1").await.0, 400);
    assert_eq!(self_change(&app, id, "pass-c3", "pass-d4").await.0, 204);
    app.clock.advance(DAY);
    // pass-a1 is now the fourth most recent: allowed again
    assert_eq!(self_change(&app, id, "pass-d4", "pass-a1").await.0, 204);
    let admin = app.admin_token().await;
    // administrators reset to anything, any time, and their reset lifts the age rule
    for pw in ["pass-a1", "pass-d4"] {
        let (status, body) = call(
            &app,
            Method::PATCH,
            &format!("/v3/users/{id}"),
            Some(&admin),
            Some(json!({"user": {"password": pw}})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(self_change(&app, id, "pass-d4", "pass-e5").await.0, 204);
    assert_eq!(login(&app, "hist", "pass-e5").await.0, 201);
}

async fn password_regex_is_enforced_everywhere(db: Db) {
    let Some(app) = app_with(db, |s| {
        s.security_compliance.password_regex = Some(
            keystone_rs::config::PasswordRegex::new(r"^(?=.*\d)(?=.*[a-zA-Z]).{7,}$")
                .expect("regex"),
        );
        s.security_compliance.password_regex_description =
            Some("at least 7 characters, one letter and one digit".into());
    })
    .await
    else {
        return;
    };
    let admin = app.admin_token().await;
    let refused = "The password does not match the requirements: at least 7 characters, one letter and one digit.";
    let (status, body) =
        create_user(&app, &admin, json!({"name": "rx", "password": "short"})).await;
    assert_eq!((status, message(&body)), (400, refused));
    let (status, body) =
        create_user(&app, &admin, json!({"name": "rx", "password": "longer1x"})).await;
    assert_eq!(status, 201, "{body}");
    let id = body["user"]["id"].as_str().expect("id").to_string();
    let (status, body) = call(
        &app,
        Method::PATCH,
        &format!("/v3/users/{id}"),
        Some(&admin),
        Some(json!({"user": {"password": "nodigits"}})),
    )
    .await;
    assert_eq!((status, message(&body)), (400, refused));
    let (status, body) = self_change(&app, &id, "longer1x", "1234567").await;
    assert_eq!((status, message(&body)), (400, refused));
    assert_eq!(self_change(&app, &id, "longer1x", "better2y").await.0, 204);
}

async fn first_use_requires_a_change(db: Db) {
    let Some(app) = app_with(db, |s| {
        s.security_compliance.change_password_upon_first_use = true;
    })
    .await
    else {
        return;
    };
    app.clock.freeze();
    // as in Keystone, the bootstrapped administrator's password is born expired too
    let (status, _, _) = app
        .password_token("admin", ADMIN_PASSWORD, json!("unscoped"))
        .await;
    assert_eq!(status, 401);
    let (status, body) =
        self_change(&app, &app.admin_user_id, ADMIN_PASSWORD, ADMIN_PASSWORD).await;
    assert_eq!(status, 204, "{body}");
    app.clock.advance(1);
    let admin = app.admin_token().await;
    let (status, body) = create_user(
        &app,
        &admin,
        json!({"name": "fresh", "password": "given-1"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["user"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        body["user"]["password_expires_at"],
        keystone_time(app.clock.now_secs())
    );
    assert_eq!(login(&app, "fresh", "given-1").await.0, 401);
    assert_eq!(self_change(&app, &id, "given-1", "mine-2").await.0, 204);
    app.clock.advance(1);
    let (status, body) = login(&app, "fresh", "mine-2").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["token"]["user"]["password_expires_at"], Value::Null);
    // an administrator's reset expires it again
    call(
        &app,
        Method::PATCH,
        &format!("/v3/users/{id}"),
        Some(&admin),
        Some(json!({"user": {"password": "given-3"}})),
    )
    .await;
    assert_eq!(login(&app, "fresh", "given-3").await.0, 401);
    let (status, body) = create_user(
        &app,
        &admin,
        json!({"name": "robot", "password": "given-4", "options": {"ignore_change_password_upon_first_use": true}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(login(&app, "robot", "given-4").await.0, 201);
}

async fn inactive_users_read_as_disabled(db: Db) {
    let Some(app) = app_with(db, |s| {
        s.security_compliance.disable_user_account_days_inactive = Some(10);
    })
    .await
    else {
        return;
    };
    // the administrator must outlive the test's weeks of idleness
    exempt_admin(&app, "ignore_user_inactivity").await;
    let m = app.create_user("idle", "idle-pass").await;
    let last_active = |app: &TestApp, id: String| {
        let store = app.store.clone();
        async move {
            store
                .get_user(&id)
                .await
                .expect("db")
                .expect("user")
                .login
                .last_active_at
        }
    };
    assert_eq!(last_active(&app, m.user_id.clone()).await, None);
    assert_eq!(login(&app, "idle", "idle-pass").await.0, 201);
    let today = app.clock.now_secs().div_euclid(DAY);
    assert_eq!(last_active(&app, m.user_id.clone()).await, Some(today));
    app.clock.advance(9 * DAY);
    assert_eq!(login(&app, "idle", "idle-pass").await.0, 201);
    assert_eq!(last_active(&app, m.user_id.clone()).await, Some(today + 9));
    app.clock.advance(10 * DAY);
    let admin = app.admin_token().await;
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/v3/users/{}", m.user_id),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(body["user"]["enabled"], false, "{body}");
    assert_eq!(login(&app, "idle", "idle-pass").await.0, 401);
    let (status, _) = call(
        &app,
        Method::PATCH,
        &format!("/v3/users/{}", m.user_id),
        Some(&admin),
        Some(json!({"user": {"enabled": true}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(login(&app, "idle", "idle-pass").await.0, 201);
}

both_backends!(
    user_options_are_stored_and_returned,
    concurrent_failures_are_all_counted
);
/// POST /v3/auth/tokens with a password, as if forwarded for `client`.
async fn login_from(
    app: &TestApp,
    client: &str,
    name: &str,
    password: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": name, "domain": {"id": "default"}, "password": password}}}}});
    let r = app
        .client
        .post(app.url("/v3/auth/tokens"))
        .header("X-Forwarded-For", client)
        .json(&body)
        .send()
        .await
        .expect("request");
    crate::helpers::response_parts(r).await
}

async fn rate_limits_refuse_before_hashing(db: Db) {
    let Some(app) = app_with(db, |s| {
        s.server.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
        s.rate_limit.per_address_per_minute = 6;
        s.rate_limit.per_address_burst = 3;
        s.rate_limit.per_user_per_minute = 6;
        s.rate_limit.per_user_burst = 5;
    })
    .await
    else {
        return;
    };
    app.clock.freeze();
    let victim = app.create_user("victim", "victim-pass").await;
    app.create_user("legit", "legit-pass").await;
    let spray = "198.51.100.7";
    for _ in 0..3 {
        assert_eq!(login_from(&app, spray, "victim", "guess").await.0, 401);
    }
    let (status, headers, body) = login_from(&app, spray, "victim", "guess").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], 429);
    assert_eq!(body["error"]["title"], "Too Many Requests");
    // one attempt per 10 s (rounded up to whole seconds)
    let retry: u64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((10..=11).contains(&retry), "{retry}");
    // refused before hashing: only the admitted attempts were verified (and counted)
    for _ in 0..20 {
        assert_eq!(login_from(&app, spray, "victim", "guess").await.0, 429);
    }
    assert_eq!(failed_count(&app, &victim.user_id).await, 3);
    // another client logs in meanwhile
    assert_eq!(
        login_from(&app, "198.51.100.8", "legit", "legit-pass")
            .await
            .0,
        201
    );
    // the user bucket: attempts on one user from many addresses
    assert_eq!(
        login_from(&app, "203.0.113.1", "victim", "guess").await.0,
        401
    );
    assert_eq!(
        login_from(&app, "203.0.113.2", "victim", "guess").await.0,
        401
    );
    let (status, _, _) = login_from(&app, "203.0.113.3", "victim", "guess").await;
    assert_eq!(status, 429);
    // the buckets refill with time
    app.clock.advance(11);
    assert_eq!(
        login_from(&app, spray, "victim", "victim-pass").await.0,
        201
    );
}

async fn rate_limits_can_be_off_and_ignore_untrusted_forwarding(db: Db) {
    for enabled in [false, true] {
        let Some(app) = app_with(db, |s| {
            s.rate_limit.enabled = enabled;
            s.rate_limit.per_address_burst = 2;
            s.rate_limit.per_address_per_minute = 1;
        })
        .await
        else {
            return;
        };
        app.create_user("someone", "right-pass").await;
        // the peer is not a trusted proxy: its X-Forwarded-For proves nothing
        let mut statuses = Vec::new();
        for i in 0..4 {
            let client = format!("198.51.100.{i}");
            statuses.push(login_from(&app, &client, "someone", "wrong").await.0);
        }
        let expected = if enabled {
            vec![401, 401, 429, 429]
        } else {
            vec![401; 4]
        };
        assert_eq!(statuses, expected, "enabled = {enabled}");
    }
}

mod configured {
    use super::*;
    both_backends!(
        @db lockout_locks_then_expires_and_hides_itself,
        passwords_expire_and_can_still_be_changed,
        history_and_minimum_age_bind_the_owner_only,
        password_regex_is_enforced_everywhere,
        first_use_requires_a_change,
        inactive_users_read_as_disabled,
    rate_limits_refuse_before_hashing,
    rate_limits_can_be_off_and_ignore_untrusted_forwarding,
    );
}
