//! Two `keystone-rs serve` processes on one PostgreSQL database: a token revoked
//! through one is rejected by the other within 2 seconds (the revocation index
//! refresh), and a write on one drops the other's validation cache.

mod common;

use std::time::{Duration, Instant};

use common::{Sandbox, Server};
use serde_json::{json, Value};

const PASSWORD: &str = "two-process-secret";

async fn status_of_validation(
    client: &reqwest::Client,
    base: &str,
    caller: &str,
    subject: &str,
) -> u16 {
    client
        .get(format!("{base}/v3/auth/tokens"))
        .header("X-Auth-Token", caller)
        .header("X-Subject-Token", subject)
        .send()
        .await
        .expect("validate")
        .status()
        .as_u16()
}

/// Polls until the other process answers 404; fails if it still answers 200 after 2 s.
async fn rejected_within_two_seconds<F, Fut>(what: &str, status: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let since = Instant::now();
    loop {
        match status().await {
            404 => return,
            200 => assert!(
                since.elapsed() < Duration::from_secs(2),
                "the other process still accepts {what} after 2 s"
            ),
            other => panic!("unexpected status {other}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_and_grant_removals_reach_the_other_process_within_two_seconds() {
    let Some(base) = common::postgres_base("two processes on one PostgreSQL") else {
        return;
    };
    let (mut admin_conn, url, name) = common::scratch_database(&base, "ks_two").await;

    let sandbox = Sandbox::new(&[]);
    std::fs::write(
        sandbox.conf(),
        format!(
            "[database]\nconnection = {url}\n[fernet_tokens]\nkey_repository = {}\n[revoke]\nrefresh_interval = 1\n",
            sandbox.keys().display()
        ),
    )
    .expect("write keystone.conf");
    sandbox.run_ok(&["db", "sync"]);
    sandbox.run_ok(&["fernet", "setup"]);
    sandbox.run_ok(&["bootstrap", "--bootstrap-password", PASSWORD]);
    let one = Server::start(&sandbox);
    let two = Server::start(&sandbox);
    let client = reqwest::Client::new();

    let issue = |base: String, scope: Value| {
        let client = client.clone();
        async move {
            let r = client
                .post(format!("{base}/v3/auth/tokens"))
                .json(&json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": PASSWORD}}}, "scope": scope}}))
                .send()
                .await
                .expect("issue");
            assert_eq!(r.status().as_u16(), 201);
            r.headers()["X-Subject-Token"]
                .to_str()
                .expect("token")
                .to_string()
        }
    };
    let admin = issue(
        one.base_url(),
        json!({"project": {"name": "admin", "domain": {"id": "default"}}}),
    )
    .await;
    let subject = issue(one.base_url(), json!("unscoped")).await;
    let two_url = two.base_url();
    // Validated (and cached) on the second process first.
    assert_eq!(
        status_of_validation(&client, &two_url, &admin, &subject).await,
        200
    );
    assert_eq!(
        status_of_validation(&client, &two_url, &admin, &subject).await,
        200
    );

    let r = client
        .delete(format!("{}/v3/auth/tokens", one.base_url()))
        .header("X-Auth-Token", &admin)
        .header("X-Subject-Token", &subject)
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status().as_u16(), 204);
    rejected_within_two_seconds("the revoked token", || {
        status_of_validation(&client, &two_url, &admin, &subject)
    })
    .await;

    // A grant removed through one process: no revocation event, only the live
    // re-check of roles, which the other process serves from its read caches
    // until the state generation it polls moves.
    let get = |path: String| {
        let client = client.clone();
        let admin = admin.clone();
        let base = one.base_url();
        async move {
            let r = client
                .get(format!("{base}{path}"))
                .header("X-Auth-Token", &admin)
                .send()
                .await
                .expect("get");
            assert_eq!(r.status().as_u16(), 200, "GET {path}");
            r.json::<Value>().await.expect("json")
        }
    };
    let project_id = get("/v3/projects?name=admin".into()).await["projects"][0]["id"]
        .as_str()
        .expect("admin project")
        .to_string();
    let role_id = get("/v3/roles?name=member".into()).await["roles"][0]["id"]
        .as_str()
        .expect("member role")
        .to_string();
    let r = client
        .post(format!("{}/v3/users", one.base_url()))
        .header("X-Auth-Token", &admin)
        .json(&json!({"user": {"name": "cached-member", "domain_id": "default", "password": "member-secret"}}))
        .send()
        .await
        .expect("create user");
    assert_eq!(r.status().as_u16(), 201);
    let user_id = r.json::<Value>().await.expect("json")["user"]["id"]
        .as_str()
        .expect("user id")
        .to_string();
    let grant = format!(
        "{}/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
        one.base_url()
    );
    let r = client
        .put(&grant)
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("grant");
    assert_eq!(r.status().as_u16(), 204);
    let r = client
        .post(format!("{}/v3/auth/tokens", one.base_url()))
        .json(&json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": user_id, "password": "member-secret"}}}, "scope": {"project": {"id": project_id}}}}))
        .send()
        .await
        .expect("member token");
    assert_eq!(r.status().as_u16(), 201);
    let member_token = r.headers()["X-Subject-Token"]
        .to_str()
        .expect("token")
        .to_string();
    assert_eq!(
        status_of_validation(&client, &two_url, &admin, &member_token).await,
        200
    );
    assert_eq!(
        status_of_validation(&client, &two_url, &admin, &member_token).await,
        200
    );
    let r = client
        .delete(&grant)
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .expect("remove grant");
    assert_eq!(r.status().as_u16(), 204);
    rejected_within_two_seconds("a token whose only grant was removed", || {
        status_of_validation(&client, &two_url, &admin, &member_token)
    })
    .await;

    drop(one);
    drop(two);
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin_conn)
        .await;
}
