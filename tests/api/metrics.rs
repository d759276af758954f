//! `/metrics`: what a scrape shows after real traffic, who may scrape it, the
//! separate `[metrics] bind` listener, and the Grafana dashboard's metrics all exist.

use keystone_rs::config::{KeyStoreKind, Settings};
use keystone_rs::telemetry::metrics::METRICS;
use std::collections::BTreeSet;

use crate::both_backends;
use crate::helpers::{spawn_configured, Db, TestApp};

/// Database keys with auto-rotation, so every key gauge has a value.
fn rotating(s: &mut Settings) {
    s.fernet_tokens.key_store = KeyStoreKind::Database;
    s.fernet_tokens.auto_rotate = true;
    s.fernet_tokens.rotation_interval = Some(600);
    s.fernet_tokens.max_active_keys = 6;
    s.token.expiration = 600;
    s.token.allow_expired_window = 600;
    s.metrics.bind = Some("127.0.0.1:0".into());
}

async fn scrape(app: &TestApp, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = app.client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("scrape");
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

/// The value of the sample line starting with `series` (name and labels), summed.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Metric names a PromQL expression uses, histogram suffixes removed.
fn names_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("keystone_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.push(base.to_string());
        rest = &tail[end..];
    }
    names
}

async fn metrics_after_traffic(db: Db) {
    let Some(app) = spawn_configured(db, rotating).await else {
        return;
    };
    let admin = app.admin_token().await;
    let local = app.url("/metrics");
    let (_, before) = scrape(&app, &local, &[]).await;
    let revoked_before = value(
        &before,
        "keystone_token_validations_total{outcome=\"revoked\"}",
    );
    let ok_before = value(&before, "keystone_token_validations_total{outcome=\"ok\"}");

    // Traffic: validations (ok), a revoked token validated, a password change.
    let (_, victim, _) = app.member_with_token("member").await;
    assert_eq!(app.validate(&admin, &victim, "").await.0, 200);
    let res = app
        .client
        .delete(app.url("/v3/auth/tokens"))
        .header("X-Auth-Token", &admin)
        .header("X-Subject-Token", &victim)
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(app.validate(&admin, &victim, "").await.0, 404);

    let (status, text) = scrape(&app, &local, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        value(
            &text,
            "keystone_token_validations_total{outcome=\"revoked\"}"
        ) >= revoked_before + 1.0,
        "{text}"
    );
    assert!(value(&text, "keystone_token_validations_total{outcome=\"ok\"}") >= ok_before + 1.0);
    assert!(
        text.contains("route=\"/v3/auth/tokens\"") && text.contains("method=\"DELETE\""),
        "requests are labelled by route template"
    );
    assert!(
        !text.contains(&victim) && !text.contains(&admin),
        "a token in the metrics"
    );
    assert!(value(&text, "keystone_fernet_keys") >= 2.0);
    let next = value(&text, "keystone_fernet_next_rotation_seconds");
    assert!(next > 0.0 && next <= 600.0, "next rotation in {next} s");

    // Every metric the server declares, and every one the dashboard uses, is there.
    let exported: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(names_in)
        .collect();
    for (name, _) in METRICS {
        assert!(exported.contains(*name), "{name} missing from /metrics");
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/etc/grafana/keystone-rs.json"
        ))
        .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut used = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            for name in names_in(target["expr"].as_str().expect("expr")) {
                used += 1;
                assert!(
                    exported.contains(&name),
                    "the dashboard uses {name}, not exported"
                );
            }
        }
    }
    assert!(used >= METRICS.len(), "the dashboard uses {used} metrics");

    // Through a proxy: only an admin token may scrape the API listener.
    let proxied = ("X-Forwarded-For", "198.51.100.7");
    assert_eq!(scrape(&app, &local, &[proxied]).await.0, 403);
    let (_, member, _) = app.member_with_token("member").await;
    assert_eq!(
        scrape(&app, &local, &[proxied, ("X-Auth-Token", &member)])
            .await
            .0,
        403
    );
    assert_eq!(
        scrape(&app, &local, &[proxied, ("X-Auth-Token", &admin)])
            .await
            .0,
        200
    );
    // [metrics] bind: anyone who reaches it.
    let port = app.metrics_port.expect("metrics listener");
    let (status, text) = scrape(
        &app,
        &format!("http://127.0.0.1:{port}/metrics"),
        &[proxied],
    )
    .await;
    assert_eq!(status, 200);
    assert!(text.contains("keystone_http_requests_total"));
}

async fn metrics_can_be_turned_off(db: Db) {
    let Some(app) = spawn_configured(db, |s: &mut Settings| s.metrics.enabled = false).await else {
        return;
    };
    assert_eq!(scrape(&app, &app.url("/metrics"), &[]).await.0, 404);
}

both_backends!(@db metrics_after_traffic, metrics_can_be_turned_off);
