//! `/healthcheck` as oslo.middleware answers it: GET 200 `OK`, HEAD 204, 503 with
//! `DISABLED BY FILE` while the drain file exists, 503 when the database is gone; which
//! check failed only for an admin token or a local, unproxied client.

use keystone_rs::config::Settings;

use crate::both_backends;
use crate::helpers::{spawn_configured, Db, TestApp};

async fn get(app: &TestApp, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = app.client.get(app.url("/healthcheck"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("healthcheck");
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

async fn head(app: &TestApp) -> u16 {
    let res = app
        .client
        .head(app.url("/healthcheck"))
        .send()
        .await
        .expect("head");
    res.status().as_u16()
}

async fn healthcheck_answers_as_oslo_middleware(db: Db) {
    let drain = tempfile::tempdir().expect("tempdir");
    let drain_file = drain.path().join("healthcheck_disable");
    let path = drain_file.clone();
    let Some(app) = spawn_configured(db, move |s: &mut Settings| {
        s.healthcheck.disable_by_file_path = Some(path);
    })
    .await
    else {
        return;
    };
    assert_eq!(get(&app, &[]).await, (200, "OK".to_string()));
    assert_eq!(head(&app).await, 204);

    std::fs::write(&drain_file, b"").expect("drain file");
    assert_eq!(get(&app, &[]).await, (503, "DISABLED BY FILE".to_string()));
    assert_eq!(head(&app).await, 503);
    std::fs::remove_file(&drain_file).expect("remove drain file");
    assert_eq!(get(&app, &[]).await.0, 200);

    // The database goes away. The admin token was validated before, so it still
    // validates from the cache and may see why.
    let admin = app.admin_token().await;
    assert_eq!(app.validate(&admin, &admin, "").await.0, 200);
    app.store.close().await;
    let proxied = ("X-Forwarded-For", "198.51.100.7");
    let (status, body) = get(&app, &[proxied]).await;
    assert_eq!((status, body.as_str()), (503, "Service Unavailable"));
    let (status, body) = get(&app, &[proxied, ("X-Auth-Token", &admin)]).await;
    assert_eq!(status, 503);
    assert!(body.starts_with("database: database unreachable"), "{body}");
    let (status, body) = get(&app, &[]).await;
    assert_eq!(status, 503);
    assert!(body.starts_with("database:"), "{body}");
    assert_eq!(head(&app).await, 503);
}

both_backends!(@db healthcheck_answers_as_oslo_middleware);
