//! The token API over HTTP, against the real server, on SQLite and on PostgreSQL
//! (when KEYSTONE_TEST_POSTGRES_URL is set).

mod application_credentials;
mod assign_support;
mod catalog;
mod credentials;
mod domain_config;
mod domains;
mod endpoint_filter;
mod endpoint_policy;
mod faults;
mod grants;
mod groups;
mod health;
mod helpers;
mod keystore;
mod legacy_passwords;
mod limits;
mod metrics;
mod oauth1;
mod pagination;
mod policies;
mod projects;
mod random_input;
mod revocation;
mod role_assignments;
mod roles;
mod routes;
mod security_compliance;
mod tokens;
mod trusts;
mod users;

/// Defines `$name` twice: `sqlite::$name` and `postgres::$name`.
/// The PostgreSQL variant fails (not skips) when KEYSTONE_TEST_REQUIRE_POSTGRES is set
/// and no URL is given, so CI cannot silently lose the second backend.
#[macro_export]
macro_rules! both_backends {
    // Tests that configure their own server: `async fn name(db: Db)`, using
    // `helpers::spawn_configured`.
    (@db $($name:ident),* $(,)?) => {
        pub mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Db::Sqlite).await;
                }
            )*
        }
        pub mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Db::Postgres).await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        pub mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::helpers::spawn_app($crate::helpers::Db::Sqlite)
                        .await
                        .expect("sqlite app");
                    super::$name(app).await;
                }
            )*
        }
        pub mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::helpers::spawn_app($crate::helpers::Db::Postgres).await else {
                        assert!(
                            std::env::var("KEYSTONE_TEST_REQUIRE_POSTGRES").is_err(),
                            "KEYSTONE_TEST_REQUIRE_POSTGRES is set but KEYSTONE_TEST_POSTGRES_URL is not"
                        );
                        eprintln!("postgres: KEYSTONE_TEST_POSTGRES_URL not set; not run");
                        return;
                    };
                    super::$name(app).await;
                }
            )*
        }
    };
}
