//! Faults, races and hostile input: a write is acknowledged only when it is durable,
//! an outage is a 503 (never a 2xx for a lost write, never a 401 or a 500), and the
//! server recovers without a restart.
//!
//! The SQLite disk faults need a small filesystem of their own: a tmpfs mounted for
//! the test (root only). Without root they fail when KEYSTONE_TEST_REQUIRE_FAULTS is
//! set (as `.ci/run` sets it) and are reported as not run otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use keystone_rs::config::DatabaseUrl;
use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{call, message, spawn_configured, Db, TestApp, ADMIN_PASSWORD};

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = std::env::temp_dir().join(format!("ks-fault-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Some(Tmpfs { dir })
        } else {
            let _ = std::fs::remove_dir(&dir);
            assert!(
                std::env::var("KEYSTONE_TEST_REQUIRE_FAULTS").is_err(),
                "KEYSTONE_TEST_REQUIRE_FAULTS is set but a tmpfs cannot be mounted (needs root)"
            );
            eprintln!("faults: cannot mount a tmpfs (needs root); disk-fault test not run");
            None
        }
    }

    /// Fills the filesystem (all but nothing) with a file; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let chunk = vec![0u8; 64 * 1024];
        let mut f = std::fs::File::create(&path).expect("filler");
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
        let _ = std::io::Write::flush(&mut f);
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn sqlite_on(dir: &Path) -> Option<TestApp> {
    let path = dir.join("keystone.db");
    spawn_configured(Db::Sqlite, move |s| {
        s.database.connection = DatabaseUrl::Sqlite { path };
    })
    .await
}

/// Creates a group named `name`; (status, body).
async fn create_group(app: &TestApp, token: &str, name: &str) -> (u16, Value) {
    call(
        app,
        Method::POST,
        "/v3/groups",
        Some(token),
        Some(json!({"group": {"name": name}})),
    )
    .await
}

async fn group_names(app: &TestApp, token: &str) -> Vec<String> {
    let (status, body) = call(app, Method::GET, "/v3/groups", Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    body["groups"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_unavailable(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 503, "{what}: {body}");
    assert_eq!(body["error"]["code"], 503, "{what}: {body}");
    assert_eq!(body["error"]["title"], "Service Unavailable", "{what}");
}

/// The disk fills: every write is a 503 and none is half-done or silently kept;
/// reads go on; once space is back, writes succeed again without a restart, and
/// nothing acknowledged before was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full() {
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let Some(app) = sqlite_on(&fs.dir).await else {
        return;
    };
    let admin = app.system_admin_token().await;
    let (status, body) = create_group(&app, &admin, "before-the-fault").await;
    assert_eq!(status, 201, "{body}");

    let filler = fs.fill();
    for i in 0..5 {
        let (status, body) = create_group(&app, &admin, &format!("while-full-{i}")).await;
        assert_unavailable(status, &body, "a write on a full disk");
    }
    // Reads still work, and show nothing of the refused writes.
    let names = group_names(&app, &admin).await;
    assert!(names.contains(&"before-the-fault".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("while-full")),
        "{names:?}"
    );
    std::fs::remove_file(&filler).expect("free the disk");
    let (status, body) = create_group(&app, &admin, "after-the-fault").await;
    assert_eq!(status, 201, "writes work again once space is back: {body}");
    let names = group_names(&app, &admin).await;
    for n in ["before-the-fault", "after-the-fault"] {
        assert!(names.contains(&n.to_string()), "{n} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("while-")), "{names:?}");
}

/// `chattr` on the database and its WAL (root, ext4): `+i` makes them read-only to
/// every process; false when that is not possible here.
fn immutable(dir: &Path, on: bool) -> bool {
    let flag = if on { "+i" } else { "-i" };
    Command::new("chattr")
        .arg(flag)
        .arg(dir.join("keystone.db"))
        .arg(dir.join("keystone.db-wal"))
        .status()
        .is_ok_and(|s| s.success())
}

/// The database files turn read-only under the running server: writes are 503 and
/// kept nowhere; once writable again, writes work without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_only_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(app) = sqlite_on(dir.path()).await else {
        return;
    };
    let admin = app.system_admin_token().await;
    let (status, body) = create_group(&app, &admin, "before-read-only").await;
    assert_eq!(status, 201, "{body}");
    if !immutable(dir.path(), true) {
        assert!(
            std::env::var("KEYSTONE_TEST_REQUIRE_FAULTS").is_err(),
            "KEYSTONE_TEST_REQUIRE_FAULTS is set but chattr +i failed (needs root on ext4)"
        );
        eprintln!("faults: chattr +i not possible here; read-only test not run");
        return;
    }
    let (status, body) = create_group(&app, &admin, "while-read-only").await;
    let cleared = immutable(dir.path(), false);
    assert!(cleared, "chattr -i");
    assert_unavailable(status, &body, "a write on read-only files");
    let (status, body) = create_group(&app, &admin, "after-read-only").await;
    assert_eq!(status, 201, "{body}");
    let names = group_names(&app, &admin).await;
    assert!(names.contains(&"before-read-only".to_string()), "{names:?}");
    assert!(names.contains(&"after-read-only".to_string()), "{names:?}");
    assert!(!names.contains(&"while-read-only".to_string()), "{names:?}");
}

/// Another process holds SQLite's write lock longer than busy_timeout: 503, then fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_database_is_503() {
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(app) = sqlite_on(dir.path()).await else {
        return;
    };
    let admin = app.system_admin_token().await;
    let url = format!("sqlite://{}", dir.path().join("keystone.db").display());
    let mut other = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    other.execute("BEGIN EXCLUSIVE").await.expect("lock");
    let (status, body) = create_group(&app, &admin, "while-locked").await;
    assert_unavailable(status, &body, "a write while locked");
    other.execute("ROLLBACK").await.expect("unlock");
    let (status, body) = create_group(&app, &admin, "after-the-lock").await;
    assert_eq!(status, 201, "{body}");
}

/// If announcing a write fails, the write itself is not kept: the announcement is
/// part of the same transaction, so no server can miss a committed change.
async fn failed_announcement_keeps_nothing(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (trigger, drop_trigger) = match app.store.backend() {
        keystone_rs::store::Backend::Sqlite => (
            "CREATE TRIGGER no_gen BEFORE UPDATE ON state_generation BEGIN SELECT RAISE(ABORT, 'announcement refused'); END",
            "DROP TRIGGER no_gen",
        ),
        keystone_rs::store::Backend::Postgres => (
            "CREATE OR REPLACE FUNCTION no_gen() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'announcement refused'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER no_gen BEFORE UPDATE ON state_generation FOR EACH ROW EXECUTE FUNCTION no_gen()",
            "DROP TRIGGER no_gen ON state_generation",
        ),
    };
    app.store
        .execute_raw_for_test(trigger)
        .await
        .expect("trigger");
    let (status, body) = create_group(&app, &admin, "unannounced").await;
    assert!(status >= 500, "{status} {body}");
    app.store
        .execute_raw_for_test(drop_trigger)
        .await
        .expect("drop trigger");
    let names = group_names(&app, &admin).await;
    assert!(!names.contains(&"unannounced".to_string()), "{names:?}");
    let (status, body) = create_group(&app, &admin, "announced").await;
    assert_eq!(status, 201, "{body}");
}

/// 50 concurrent changes presenting the same original password: exactly one wins;
/// the others find that password no longer current.
async fn concurrent_password_changes_one_wins(app: TestApp) {
    let m = app.create_user("racer", "original-pw").await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let client = app.client.clone();
        let url = app.url(&format!("/v3/users/{}/password", m.user_id));
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"user": {"original_password": "original-pw", "password": format!("new-pw-{i}")}}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    let won = statuses.iter().filter(|s| **s == 204).count();
    let refused = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!((won, refused), (1, 49), "{statuses:?}");
    let (status, _, _) = app
        .password_token("racer", "original-pw", json!("unscoped"))
        .await;
    assert_eq!(status, 401, "the original password is gone");
}

/// Values no database here can store never reach SQL: a NUL in a path id is a 404,
/// in a body a 400, in a list filter it simply matches nothing; an out-of-range
/// Fernet timestamp is an unrecognized token.
async fn hostile_values_are_4xx(app: TestApp) {
    let admin = app.system_admin_token().await;
    let (status, body) = call(&app, Method::GET, "/v3/users/ab%00cd", Some(&admin), None).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(
        &app,
        Method::GET,
        "/v3/users?name=a%00b",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users"], json!([]));
    let (status, body) = call(
        &app,
        Method::GET,
        "/v3/projects?tags=a%00b&limit=5",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = create_group(&app, &admin, "nul\u{0}name").await;
    assert_eq!(status, 400, "{body}");
    let nul_login = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "ad\u{0}min", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}}}});
    let (status, _, body) = app.post_auth(nul_login, "").await;
    assert_eq!(status, 400, "{body}");
    // A correctly signed token whose timestamp is 2^40 seconds: 404, not 500.
    let key = app.keys.load().expect("keys").remove(0);
    let token = key
        .encrypt_at_time(b"\x92\x00\x00", 1u64 << 40)
        .trim_end_matches('=')
        .to_string();
    let (status, body) = app.validate(&admin, &token, "").await;
    assert_eq!(
        (status, message(&body)),
        (404, "Could not recognize Fernet token")
    );
}

/// A body that stalls after the headers is answered 408 within `[server]
/// body_timeout` and does not hold other clients up.
async fn stalled_bodies_time_out(db: Db) {
    use tokio::io::AsyncWriteExt;
    let Some(app) = spawn_configured(db, |s| s.server.body_timeout = 1).await else {
        return;
    };
    let addr = app.address.trim_start_matches("http://").to_string();
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        s.write_all(b"POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"auth\"")
            .await
            .expect("write");
        stalled.push(s);
    }
    let started = Instant::now();
    let (status, _) = call(&app, Method::GET, "/v3", None, None).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut first = stalled.remove(0);
    let mut response = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut first, &mut response),
    )
    .await;
    assert!(read.is_ok(), "the stalled connection was not closed");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

/// Junk on the wire is a 400, and the server goes on serving.
async fn malformed_http_is_a_400(app: TestApp) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.address.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    s.write_all(b"NOT HTTP AT ALL\r\n\r\n")
        .await
        .expect("write");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut response)).await;
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 400"));
    let (status, _) = call(&app, Method::GET, "/v3", None, None).await;
    assert_eq!(status, 200);
}

/// With two servers on one database, removing a user's only grant on one stops the
/// other from validating the user's token within a few refresh intervals.
async fn a_removed_grant_reaches_the_other_server(app: TestApp) {
    use keystone_rs::model::TargetKind;
    let admin = app.admin_token().await;
    let m = app.create_user("grantee", "grantee-pw").await;
    app.grant(
        &m.user_id,
        TargetKind::Project,
        &app.admin_project_id,
        "member",
    )
    .await;
    let scope = json!({"project": {"id": app.admin_project_id}});
    let (status, token, body) = app.password_token("grantee", "grantee-pw", scope).await;
    assert_eq!(status, 201, "{body}");
    let token = token.expect("token");
    let peer = app.spawn_peer().await;
    let validate_on_peer = || {
        let client = app.client.clone();
        let (peer, admin, token) = (peer.clone(), admin.clone(), token.clone());
        async move {
            client
                .get(format!("{peer}/v3/auth/tokens"))
                .header("X-Auth-Token", admin)
                .header("X-Subject-Token", token)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    assert_eq!(validate_on_peer().await, 200);
    app.ungrant(
        &m.user_id,
        TargetKind::Project,
        &app.admin_project_id,
        "member",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = validate_on_peer().await;
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "the peer still answers {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A PostgreSQL server of the test's own (initdb + pg_ctl on a spare port, run as the
/// `postgres` user), never the machine's shared one: it is stopped mid-load.
struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn run(args: &[&str]) -> bool {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn start_new() -> Option<PrivatePostgres> {
        let dir = std::env::temp_dir().join(format!("ks-pg-{}", uuid::Uuid::new_v4().simple()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        std::fs::create_dir_all(&dir).ok()?;
        let owned = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        let d = dir.to_string_lossy().to_string();
        let pg = PrivatePostgres { dir, port };
        if !(owned
            && Self::run(&[
                "initdb",
                "-D",
                &format!("{d}/data"),
                "-A",
                "trust",
                "-U",
                "postgres",
            ])
            && pg.start())
        {
            assert!(
                std::env::var("KEYSTONE_TEST_REQUIRE_FAULTS").is_err(),
                "KEYSTONE_TEST_REQUIRE_FAULTS is set but a private PostgreSQL cannot be started"
            );
            eprintln!(
                "faults: no private PostgreSQL (initdb/pg_ctl as postgres); outage test not run"
            );
            return None;
        }
        Some(pg)
    }

    fn start(&self) -> bool {
        let d = self.dir.to_string_lossy().to_string();
        let opts = format!("-p {} -k {d} -c listen_addresses=127.0.0.1", self.port);
        Self::run(&[
            "pg_ctl",
            "-D",
            &format!("{d}/data"),
            "-o",
            &opts,
            "-l",
            &format!("{d}/log"),
            "-w",
            "start",
        ])
    }

    fn stop(&self) -> bool {
        let d = self.dir.to_string_lossy().to_string();
        Self::run(&[
            "pg_ctl",
            "-D",
            &format!("{d}/data"),
            "-m",
            "fast",
            "-w",
            "stop",
        ])
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The database stops under load: writes and logins are 503 (never 401, never 500,
/// never a 2xx for a write that was not kept); once it is back, everything works
/// again without a restart, and every acknowledged write is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_load() {
    let Some(pg) = PrivatePostgres::start_new() else {
        return;
    };
    let url = pg.url();
    let Some(app) = spawn_configured(Db::Sqlite, move |s| {
        s.database.connection = DatabaseUrl::parse(&url).expect("url");
        s.database.pool_timeout = 2;
    })
    .await
    else {
        return;
    };
    let admin = app.system_admin_token().await;
    let mut acknowledged = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    let mut stopped = false;
    let mut restarted = false;
    let started = Instant::now();
    for i in 0.. {
        if i == 10 {
            assert!(pg.stop(), "stop the database");
            stopped = true;
        }
        if i == 14 {
            assert!(pg.start(), "restart the database");
            restarted = true;
        }
        let name = format!("load-{i}");
        let (status, body) = create_group(&app, &admin, &name).await;
        *statuses.entry(status).or_insert(0) += 1;
        match status {
            201 => acknowledged.push(name),
            503 => assert!(stopped, "503 before the outage: {body}"),
            other => panic!("a write answered {other}: {body}"),
        }
        if stopped && !restarted {
            let (status, _, body) = app
                .password_token("admin", ADMIN_PASSWORD, json!("unscoped"))
                .await;
            assert_eq!(status, 503, "a login during the outage: {body}");
        }
        if restarted && status == 201 && i > 18 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no recovery: {statuses:?}"
        );
        if restarted {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let names = group_names(&app, &admin).await;
    for n in &acknowledged {
        assert!(names.contains(n), "acknowledged {n} was lost");
    }
    assert!(
        statuses.get(&503).copied().unwrap_or(0) >= 3,
        "{statuses:?}"
    );
}

/// A client's `X-Forwarded-*` / `Forwarded` headers do not rewrite our links unless
/// the peer is a trusted proxy (Keystone's default).
async fn forwarded_headers_need_a_trusted_proxy(db: Db) {
    for trusted in [false, true] {
        let Some(app) = spawn_configured(db, |s| {
            if trusted {
                s.server.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
            }
        })
        .await
        else {
            return;
        };
        let r = app
            .client
            .get(app.url("/v3/users"))
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Forwarded-Proto", "https")
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 401);
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .to_string();
        let (_, body) = call(&app, Method::GET, "/v3", None, None).await;
        let r = app
            .client
            .get(app.url("/v3"))
            .header("Forwarded", "host=evil.example;proto=https")
            .send()
            .await
            .expect("get");
        let forwarded: Value = r.json().await.expect("json");
        if trusted {
            assert_eq!(challenge, "Keystone uri=\"https://evil.example/v3\"");
            assert_eq!(
                forwarded["version"]["links"][0]["href"],
                "https://evil.example/v3/"
            );
        } else {
            assert_eq!(challenge, format!("Keystone uri=\"{}/v3\"", app.address));
            assert_eq!(forwarded, body, "links ignore the client's headers");
        }
    }
}

both_backends!(
    failed_announcement_keeps_nothing,
    concurrent_password_changes_one_wins,
    hostile_values_are_4xx,
    malformed_http_is_a_400,
    a_removed_grant_reaches_the_other_server,
);

pub mod configured {
    use super::*;
    both_backends!(@db stalled_bodies_time_out, forwarded_headers_need_a_trusted_proxy);
}
