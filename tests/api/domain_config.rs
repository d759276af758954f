//! /v3/domains/{id}/config and /v3/domains/config/default: Keystone's whitelisted and
//! sensitive options (sensitive ones stored, never returned), its validation errors and
//! statuses, and keystone-rs's refusal of an `identity.driver` it cannot load.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{call, create_domain, message, spawn_configured, Db, TestApp};

async fn put(app: &TestApp, token: &str, domain: &str, config: Value) -> (u16, Value) {
    call(
        app,
        Method::PUT,
        &format!("/v3/domains/{domain}/config"),
        Some(token),
        Some(json!({ "config": config })),
    )
    .await
}

async fn domain_config_crud(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, "cfg-domain").await;
    let base = format!("/v3/domains/{d}/config");

    let (s, b) = call(&app, Method::GET, &base, Some(&admin), None).await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(
        message(&b),
        format!("Could not find any options in domain configuration for domain {d}.")
    );

    let generation = app.store.generation().current();
    let config = json!({
        "identity": {"driver": "sql", "list_limit": 20},
        "ldap": {"url": "ldap://example.org", "user_tree_dn": "ou=Users", "password": "s3cret"},
    });
    let (s, b) = put(&app, &admin, &d, config.clone()).await;
    assert_eq!(s, 201, "{b}");
    assert!(app.store.generation().current() > generation);
    // The sensitive option is stored but never returned.
    let shown = json!({
        "identity": {"driver": "sql", "list_limit": 20},
        "ldap": {"url": "ldap://example.org", "user_tree_dn": "ou=Users"},
    });
    assert_eq!(b["config"], shown);
    assert!(!b.to_string().contains("s3cret"));
    let stored = app
        .store
        .domain_config_options(&d, Some("ldap"), Some("password"), true)
        .await
        .expect("read");
    assert_eq!(stored.len(), 1);
    assert!(stored[0].sensitive);

    // A second PUT replaces and answers 200.
    let (s, b) = put(&app, &admin, &d, config.clone()).await;
    assert_eq!(s, 200, "{b}");

    let (s, b) = call(&app, Method::GET, &base, Some(&admin), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["config"], shown);
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("{base}/ldap"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["config"], json!({"ldap": shown["ldap"]}));
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("{base}/ldap/url"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["config"], json!({"url": "ldap://example.org"}));
    let (s, b) = call(
        &app,
        Method::GET,
        &format!("{base}/ldap/password"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(
        message(&b),
        format!(
            "Could not find option password in group ldap in domain configuration for domain {d}."
        )
    );

    // PATCH the whole config merges; a group; an option.
    let (s, b) = call(
        &app,
        Method::PATCH,
        &base,
        Some(&admin),
        Some(json!({"config": {"ldap": {"suffix": "dc=x"}}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["config"]["ldap"]["suffix"], "dc=x");
    assert_eq!(b["config"]["ldap"]["url"], "ldap://example.org");
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("{base}/identity"),
        Some(&admin),
        Some(json!({"config": {"identity": {"list_limit": 5}}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["config"]["identity"],
        json!({"driver": "sql", "list_limit": 5})
    );
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("{base}/ldap/url"),
        Some(&admin),
        Some(json!({"config": {"url": "ldap://new"}})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["config"]["ldap"]["url"], "ldap://new");
    // The group in the path must be the one in the body.
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("{base}/identity"),
        Some(&admin),
        Some(json!({"config": {"ldap": {"url": "x"}}})),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(
        message(&b),
        "Invalid domain specific configuration: request to update group identity, but config provided contains group ldap instead."
    );
    // An option not yet stored cannot be PATCHed by its path.
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("{base}/ldap/user_filter"),
        Some(&admin),
        Some(json!({"config": {"user_filter": "x"}})),
    )
    .await;
    assert_eq!(s, 404, "{b}");

    // Delete an option, a group, everything.
    let (s, b) = call(
        &app,
        Method::DELETE,
        &format!("{base}/ldap/url"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("{base}/ldap/url"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, b) = call(
        &app,
        Method::DELETE,
        &format!("{base}/ldap/url"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 404, "{b}");
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("{base}/identity"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = call(
        &app,
        Method::DELETE,
        &format!("{base}/identity"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(
        message(&b),
        format!("Could not find group identity in domain configuration for domain {d}.")
    );
    let (s, _) = call(&app, Method::DELETE, &base, Some(&admin), None).await;
    assert_eq!(s, 204);
    assert!(app
        .store
        .domain_config_options(&d, None, None, true)
        .await
        .expect("read")
        .is_empty());

    // Deleting the domain deletes its configuration.
    let (s, b) = put(&app, &admin, &d, json!({"ldap": {"url": "u"}})).await;
    assert_eq!(s, 201, "{b}");
    let (s, _) = call(
        &app,
        Method::PATCH,
        &format!("/v3/domains/{d}"),
        Some(&admin),
        Some(json!({"domain": {"enabled": false}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v3/domains/{d}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert!(app
        .store
        .domain_config_options(&d, None, None, true)
        .await
        .expect("read")
        .is_empty());
}

async fn domain_config_validation(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, "cfg-invalid").await;
    let prefix = "Invalid domain specific configuration: ";
    for (config, reason) in [
        (json!({}), "No options specified.".to_string()),
        (
            json!({"ldap": {}}),
            "The value of group ldap specified in the config should be a dictionary of options.".into(),
        ),
        (
            json!({"ldap": "x"}),
            "The value of group ldap specified in the config should be a dictionary of options.".into(),
        ),
        (
            json!({"token": {"expiration": 1}}),
            "Group token is not supported for domain specific configurations.".into(),
        ),
        (
            json!({"ldap": {"nope": 1}}),
            "Option nope in group ldap is not supported for domain specific configurations.".into(),
        ),
        (
            json!({"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://x"}}),
            "identity driver ldap is not supported by keystone-rs, which serves every domain from SQL (it has no LDAP driver).".into(),
        ),
    ] {
        let (s, b) = put(&app, &admin, &d, config.clone()).await;
        assert_eq!(s, 403, "{config}: {b}");
        assert_eq!(message(&b), format!("{prefix}{reason}"), "{config}");
    }
    // Nothing was stored by the refused requests.
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("/v3/domains/{d}/config"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // Nor can PATCH switch the driver.
    let (s, b) = put(&app, &admin, &d, json!({"identity": {"driver": "sql"}})).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = call(
        &app,
        Method::PATCH,
        &format!("/v3/domains/{d}/config/identity/driver"),
        Some(&admin),
        Some(json!({"config": {"driver": "ldap"}})),
    )
    .await;
    assert_eq!(s, 403, "{b}");

    // Unknown domain: 404 after the policy check.
    let (s, b) = put(&app, &admin, "nope", json!({"ldap": {"url": "u"}})).await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(message(&b), "Could not find domain: nope.");
    let (_, member, _) = app.member_with_token("member").await;
    for (method, path) in [
        (Method::GET, format!("/v3/domains/{d}/config")),
        (Method::GET, "/v3/domains/nope/config".to_string()),
        (Method::PUT, format!("/v3/domains/{d}/config")),
        (Method::PATCH, format!("/v3/domains/{d}/config")),
        (Method::DELETE, format!("/v3/domains/{d}/config")),
        (Method::GET, "/v3/domains/config/default".to_string()),
    ] {
        let (s, b) = call(
            &app,
            method.clone(),
            &path,
            Some(&member),
            Some(json!({"config": {}})),
        )
        .await;
        assert_eq!(s, 403, "{method} {path}: {b}");
    }
}

async fn domain_config_defaults(app: TestApp) {
    let admin = app.admin_token().await;
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/domains/config/default",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["config"]["identity"],
        json!({"driver": "sql", "list_limit": null})
    );
    assert_eq!(b["config"]["ldap"]["url"], "ldap://localhost");
    assert_eq!(b["config"]["ldap"]["user_objectclass"], "inetOrgPerson");
    assert!(b["config"]["ldap"].get("password").is_none());
    let ldap_count = b["config"]["ldap"].as_object().map(|m| m.len());
    assert_eq!(ldap_count, Some(49));
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/domains/config/identity/default",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["config"],
        json!({"identity": {"driver": "sql", "list_limit": null}})
    );
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/domains/config/ldap/page_size/default",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["config"], json!({"page_size": 0}));
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/domains/config/ldap/password/default",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(
        message(&b),
        "Invalid domain specific configuration: Reading the default for option password in group ldap is not supported."
    );
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/domains/config/token/default",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 403, "{b}");

    // security_compliance: readable by anyone for the default domain only.
    let (_, member, _) = app.member_with_token("member").await;
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/domains/default/config/security_compliance",
        Some(&member),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["config"],
        json!({"security_compliance": {"password_regex": null, "password_regex_description": null}})
    );
    let (s, b) = call(
        &app,
        Method::GET,
        "/v3/domains/default/config/security_compliance/lockout_duration",
        Some(&member),
        None,
    )
    .await;
    assert_eq!(s, 403, "{b}");
}

/// `[domain_config] allow_unsupported_drivers = true` stores any driver, as Keystone.
async fn domain_config_unsupported_drivers_allowed(db: Db) {
    let Some(app) = spawn_configured(db, |s| {
        s.domain_config.allow_unsupported_drivers = true;
    })
    .await
    else {
        return;
    };
    let admin = app.admin_token().await;
    let d = create_domain(&app, "cfg-ldap").await;
    let config = json!({"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://x"}});
    let (s, b) = put(&app, &admin, &d, config.clone()).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["config"], config);
}

both_backends!(
    domain_config_crud,
    domain_config_validation,
    domain_config_defaults
);

mod configured {
    crate::both_backends!(@db domain_config_unsupported_drivers_allowed);
    use super::domain_config_unsupported_drivers_allowed;
}
