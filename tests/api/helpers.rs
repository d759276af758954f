//! Boots the real application on port 0 against a fresh database and keys.
//! SQLite always; PostgreSQL when KEYSTONE_TEST_POSTGRES_URL is set (then each
//! test gets its own database, dropped afterwards).

use keystone_rs::api::AppState;
use keystone_rs::bootstrap::{bootstrap, BootstrapOptions};
use keystone_rs::clock::Clock;
use keystone_rs::config::{DatabaseUrl, KeyStoreKind, Settings};
use keystone_rs::model::{ActorKind, Assignment, Project, Role, TargetKind, User, SYSTEM_TARGET};
use keystone_rs::startup::{database_keys, Application};
use keystone_rs::store::Store;
use keystone_rs::token::keys::{KeyEncryptionKey, KeyRepository};
use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "s3cr3t-admin";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Clock,
    pub state: AppState,
    /// The server's own store (same generation counter), for setup the API cannot do.
    pub store: Store,
    pub keys: KeyRepository,
    pub admin_user_id: String,
    pub admin_project_id: String,
    /// What the server was built from, for a second server on the same database.
    pub settings: Settings,
    /// `[metrics] bind`'s port, when the test set one.
    pub metrics_port: Option<u16>,
    _dir: tempfile::TempDir,
    pg_db: Option<(String, String)>,
}

/// (status, headers, JSON body): Null when the body is empty, the raw text when it
/// is not JSON.
pub async fn response_parts(r: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, headers, body)
}

/// One request with an optional `X-Auth-Token` and JSON body; (status, headers, body).
pub async fn call_with_headers(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut rb = app.client.request(method, app.url(path));
    if let Some(t) = token {
        rb = rb.header("X-Auth-Token", t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    response_parts(rb.send().await.expect("request")).await
}

/// [`call_with_headers`] without the headers.
pub async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, _, body) = call_with_headers(app, method, path, token, body).await;
    (status, body)
}

/// A domain created through the store; its id.
pub async fn create_domain(app: &TestApp, name: &str) -> String {
    let d = keystone_rs::model::Domain {
        id: id(),
        name: name.into(),
        description: String::new(),
        enabled: true,
        extra: Default::default(),
    };
    app.store.create_domain(&d).await.expect("domain");
    d.id
}

pub fn postgres_url() -> Option<String> {
    std::env::var("KEYSTONE_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

fn with_database(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).expect("postgres url");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

async fn fresh_postgres(base: &str) -> (String, String) {
    use sqlx::Connection;
    let name = format!("ks_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .expect("connect to KEYSTONE_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    (with_database(base, &name), name)
}

pub fn init_logs() {
    if std::env::var("KEYSTONE_TEST_LOG").is_ok() {
        keystone_rs::telemetry::init("debug", false);
    }
}

pub async fn spawn_app(db: Db) -> Option<TestApp> {
    spawn_app_with(db, |_| {}).await
}

/// `spawn_app_with` for tests that configure the server themselves: None (the test
/// returns) only when PostgreSQL is not configured and not required.
pub async fn spawn_configured(db: Db, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let app = spawn_app_with(db, tweak).await;
    if app.is_none() {
        assert!(
            std::env::var("KEYSTONE_TEST_REQUIRE_POSTGRES").is_err(),
            "KEYSTONE_TEST_REQUIRE_POSTGRES is set but KEYSTONE_TEST_POSTGRES_URL is not"
        );
        eprintln!("postgres: KEYSTONE_TEST_POSTGRES_URL not set; not run");
    }
    app
}

/// None when the backend is not available (PostgreSQL without a URL).
pub async fn spawn_app_with(db: Db, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    init_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings::defaults().expect("defaults");
    let mut pg_db = None;
    settings.database.connection = match db {
        Db::Sqlite => DatabaseUrl::Sqlite {
            path: dir.path().join("keystone.db"),
        },
        Db::Postgres => {
            let base = postgres_url()?;
            let (url, name) = fresh_postgres(&base).await;
            pg_db = Some((base, name));
            DatabaseUrl::parse(&url).expect("pg url")
        }
    };
    settings.fernet_tokens.key_repository = dir.path().join("fernet-keys");
    settings.fernet_tokens.key_encryption_key_file = dir.path().join("fernet-kek");
    settings.credential.key_repository = dir.path().join("credential-keys");
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.workers = 2;
    tweak(&mut settings);
    let settings_copy = settings.clone();

    let store = Store::connect(
        &settings.database.connection,
        4,
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    let keys = KeyRepository::new(
        settings.fernet_tokens.key_repository.clone(),
        settings.fernet_tokens.max_active_keys,
    );
    let clock = Clock::system();
    if settings.fernet_tokens.key_store == KeyStoreKind::Database {
        // `keystone-rs fernet setup` with key_store = database.
        KeyEncryptionKey::create_if_missing(&settings.fernet_tokens.key_encryption_key_file)
            .expect("key-encryption key");
        database_keys(&settings, &store, &clock)
            .expect("database keys")
            .setup("test")
            .await
            .expect("fernet setup in the database");
    } else {
        keys.setup().expect("fernet setup");
    }

    let app = Application::build(settings, clock.clone())
        .await
        .expect("build app");
    let port = app.port();
    let metrics_port = app.metrics_port();
    let state = app.state().clone();
    let store = app.store().clone();
    let report = bootstrap(
        &state.services,
        &BootstrapOptions {
            username: "admin".into(),
            password: ADMIN_PASSWORD.into(),
            project_name: "admin".into(),
            role_name: "admin".into(),
            service_name: "keystone".into(),
            region_id: Some("RegionOne".into()),
            admin_url: Some(format!("http://127.0.0.1:{port}/v3")),
            public_url: Some(format!("http://127.0.0.1:{port}/v3")),
            internal_url: Some(format!("http://127.0.0.1:{port}/v3")),
        },
    )
    .await
    .expect("bootstrap");
    tokio::spawn(app.run_until_stopped());
    Some(TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        clock,
        state,
        store,
        keys,
        admin_user_id: report.user_id,
        admin_project_id: report.project_id,
        settings: settings_copy,
        metrics_port,
        _dir: dir,
        pg_db,
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg_db.take() {
            // Best effort: a leftover test database is harmless, only untidy.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        use sqlx::Connection;
                        if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&mut c)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

pub fn id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A user with a password and the given role names on a project (created if needed).
pub struct Member {
    pub user_id: String,
    pub name: String,
    pub password: String,
}

impl TestApp {
    /// Another server process's worth of state (own pools, own revocation index, own
    /// key ring) on the same database and key repository; returns its base URL.
    pub async fn spawn_peer(&self) -> String {
        let app = Application::build(self.settings.clone(), Clock::system())
            .await
            .expect("build peer");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        address
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn role_id(&self, name: &str) -> String {
        match self
            .store
            .get_global_role_by_name(name)
            .await
            .expect("role")
        {
            Some(r) => r.id,
            None => {
                let r = Role {
                    id: id(),
                    name: name.into(),
                    domain_id: None,
                    description: String::new(),
                    extra: Default::default(),
                };
                self.store.create_role(&r).await.expect("create role");
                r.id
            }
        }
    }

    pub async fn create_project(&self, name: &str, domain_id: &str) -> String {
        let p = Project {
            id: id(),
            name: name.into(),
            domain_id: domain_id.into(),
            parent_id: None,
            description: String::new(),
            enabled: true,
            extra: Default::default(),
        };
        self.store.create_project(&p).await.expect("project");
        p.id
    }

    pub async fn create_user(&self, name: &str, password: &str) -> Member {
        let u = self
            .state
            .identity
            .create_user(
                User {
                    id: id(),
                    name: name.into(),
                    domain_id: "default".into(),
                    enabled: true,
                    default_project_id: None,
                    extra: Default::default(),
                    password_hash: None,
                    password_expires_at: None,
                    created_at: 0,
                    options: Default::default(),
                    login: Default::default(),
                },
                Some(password),
            )
            .await
            .expect("user");
        Member {
            user_id: u.id,
            name: name.into(),
            password: password.into(),
        }
    }

    pub async fn grant(&self, user_id: &str, target: TargetKind, target_id: &str, role: &str) {
        let role_id = self.role_id(role).await;
        self.store
            .add_assignment(&Assignment {
                actor: ActorKind::User,
                actor_id: user_id.into(),
                target,
                target_id: if target == TargetKind::System {
                    SYSTEM_TARGET.into()
                } else {
                    target_id.into()
                },
                role_id,
                inherited: false,
            })
            .await
            .expect("grant");
    }

    pub async fn ungrant(&self, user_id: &str, target: TargetKind, target_id: &str, role: &str) {
        let role_id = self.role_id(role).await;
        assert!(self
            .store
            .remove_assignment(&Assignment {
                actor: ActorKind::User,
                actor_id: user_id.into(),
                target,
                target_id: target_id.into(),
                role_id,
                inherited: false,
            })
            .await
            .expect("ungrant"));
    }

    /// POST /v3/auth/tokens with a password; returns (status, token, body).
    pub async fn password_token(
        &self,
        name: &str,
        password: &str,
        scope: Value,
    ) -> (u16, Option<String>, Value) {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {"name": name, "domain": {"id": "default"}, "password": password}}}});
        if !scope.is_null() {
            auth["scope"] = scope;
        }
        self.post_auth(json!({ "auth": auth }), "").await
    }

    pub async fn post_auth(&self, body: Value, query: &str) -> (u16, Option<String>, Value) {
        let r = self
            .client
            .post(self.url(&format!("/v3/auth/tokens{query}")))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let token = r
            .headers()
            .get("X-Subject-Token")
            .map(|v| v.to_str().expect("ascii").to_string());
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, token, body)
    }

    pub async fn admin_token(&self) -> String {
        let (status, token, body) = self
            .password_token(
                "admin",
                ADMIN_PASSWORD,
                json!({"project": {"name": "admin", "domain": {"id": "default"}}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        token.expect("token")
    }

    pub async fn system_admin_token(&self) -> String {
        let (status, token, body) = self
            .password_token("admin", ADMIN_PASSWORD, json!({"system": {"all": true}}))
            .await;
        assert_eq!(status, 201, "{body}");
        token.expect("token")
    }

    /// A fresh user with `role` on a fresh project, and a token scoped to it.
    pub async fn member_with_token(&self, role: &str) -> (Member, String, String) {
        let name = format!("user-{}", &id()[..8]);
        let member = self.create_user(&name, "pa55word").await;
        let project_id = self
            .create_project(&format!("proj-{}", &id()[..8]), "default")
            .await;
        self.grant(&member.user_id, TargetKind::Project, &project_id, role)
            .await;
        let (status, token, body) = self
            .password_token(&name, "pa55word", json!({"project": {"id": project_id}}))
            .await;
        assert_eq!(status, 201, "{body}");
        (member, token.expect("token"), project_id)
    }

    /// GET/HEAD/DELETE /v3/auth/tokens; returns (status, headers, body).
    pub async fn token_call(
        &self,
        method: reqwest::Method,
        caller: Option<&str>,
        subject: Option<&str>,
        query: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut rb = self
            .client
            .request(method, self.url(&format!("/v3/auth/tokens{query}")));
        if let Some(c) = caller {
            rb = rb.header("X-Auth-Token", c);
        }
        if let Some(s) = subject {
            rb = rb.header("X-Subject-Token", s);
        }
        response_parts(rb.send().await.expect("request")).await
    }

    pub async fn validate(&self, caller: &str, subject: &str, query: &str) -> (u16, Value) {
        let (s, _, b) = self
            .token_call(reqwest::Method::GET, Some(caller), Some(subject), query)
            .await;
        (s, b)
    }
}

pub fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

/// A fresh user (default domain) holding `role` on `target`, and its token with `scope`.
pub async fn role_token(
    app: &TestApp,
    role: &str,
    target: TargetKind,
    target_id: &str,
    scope: Value,
) -> (Member, String) {
    let name = format!("u-{role}-{}", &id()[..8]);
    let m = app.create_user(&name, "pa55word").await;
    app.grant(&m.user_id, target, target_id, role).await;
    let (status, token, body) = app.password_token(&name, "pa55word", scope).await;
    assert_eq!(status, 201, "{body}");
    (m, token.expect("token"))
}

/// A fresh user holding `role` on the system, with a system-scoped token.
pub async fn system_token(app: &TestApp, role: &str) -> (Member, String) {
    let scope = json!({"system": {"all": true}});
    role_token(app, role, TargetKind::System, "", scope).await
}

/// A fresh user holding `role` on `domain_id`, with a token scoped to it.
pub async fn domain_token(app: &TestApp, domain_id: &str, role: &str) -> (Member, String) {
    let scope = json!({"domain": {"id": domain_id}});
    role_token(app, role, TargetKind::Domain, domain_id, scope).await
}

/// The ids of the entities in `list` (a JSON array), in order.
pub fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `ids`, sorted: for comparing listings whose order does not matter.
pub fn sorted_ids(list: &Value) -> Vec<String> {
    let mut out = ids(list);
    out.sort();
    out
}
