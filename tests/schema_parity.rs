//! Both migration sets must yield the same tables, columns, column families and
//! nullability (SQLite has no boolean type, so BOOLEAN counts as integer).

use std::time::Duration;

use keystone_rs::config::DatabaseUrl;
use keystone_rs::store::Store;

#[tokio::test]
async fn sqlite_and_postgres_schemas_match() {
    let Some(base) = std::env::var("KEYSTONE_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        assert!(
            std::env::var("KEYSTONE_TEST_REQUIRE_POSTGRES").is_err(),
            "KEYSTONE_TEST_REQUIRE_POSTGRES is set but KEYSTONE_TEST_POSTGRES_URL is not"
        );
        eprintln!("schema parity needs KEYSTONE_TEST_POSTGRES_URL; not run");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Store::connect(
        &DatabaseUrl::Sqlite {
            path: dir.path().join("k.db"),
        },
        2,
        Duration::from_secs(5),
    )
    .await
    .expect("sqlite");
    sqlite.migrate().await.expect("migrate sqlite");

    use sqlx::Connection;
    let name = format!("ks_schema_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("pg");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create db");
    let mut url = url::Url::parse(&base).expect("url");
    url.set_path(&format!("/{name}"));
    let pg = Store::connect(
        &DatabaseUrl::parse(url.as_str()).expect("pg url"),
        2,
        Duration::from_secs(5),
    )
    .await
    .expect("pg");
    pg.migrate().await.expect("migrate pg");

    let a = sqlite.schema_summary().await.expect("sqlite schema");
    let b = pg.schema_summary().await.expect("pg schema");
    drop(pg);
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    assert!(a.len() > 50, "the summary must see the schema: {a:?}");
    let only_sqlite: Vec<_> = a.iter().filter(|c| !b.contains(c)).collect();
    let only_pg: Vec<_> = b.iter().filter(|c| !a.contains(c)).collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "schemas differ\nonly in SQLite: {only_sqlite:#?}\nonly in PostgreSQL: {only_pg:#?}"
    );
}
