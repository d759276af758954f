//! Fernet keys in the database (`[fernet_tokens] key_store = database`): serving,
//! encryption at rest, rotation rules (live replicas, retention), the rotation lock,
//! and refusals at start-up.

use keystone_rs::clock::Clock;
use keystone_rs::config::{KeyStoreKind, Settings};
use keystone_rs::model::Replica;
use keystone_rs::startup::{database_keys, Application};
use keystone_rs::token::keys::{
    ReplicaIdentity, RotateResult, RotateRules, SharedKeyRing, TokenKeys,
};
use std::sync::Arc;

use crate::both_backends;
use crate::helpers::{spawn_configured, Db, TestApp};

/// expiration + allow_expired_window = 300 s: a retired key is kept that long.
fn database_keys_settings(s: &mut Settings) {
    s.fernet_tokens.key_store = KeyStoreKind::Database;
    s.fernet_tokens.max_active_keys = 3;
    s.fernet_tokens.replica_timeout = 60;
    s.token.expiration = 100;
    s.token.allow_expired_window = 200;
}

fn ring(app: &TestApp) -> Arc<SharedKeyRing> {
    match app.state.tokens.keys() {
        TokenKeys::Database(ring) => Arc::clone(ring),
        TokenKeys::File(_) => panic!("the server reads its keys from files"),
    }
}

fn replica_rules() -> RotateRules {
    RotateRules {
        due_every: None,
        replica_timeout: Some(60),
        force: false,
    }
}

async fn database_key_store_serves_and_rotates(db: Db) {
    let Some(app) = spawn_configured(db, database_keys_settings).await else {
        return;
    };
    // Nothing on disk: the keys are the database's.
    assert!(!app.keys.dir().exists(), "a key repository was created");
    let ring = ring(&app);
    let keys = ring.database_keys().clone();

    // At rest, every key is sealed under the key-encryption key.
    let set = keys.open_set().await.expect("open set");
    assert_eq!(
        set.keys.iter().map(|k| k.idx).collect::<Vec<_>>(),
        vec![0, 1]
    );
    let (_, stored) = app.store.fernet_keys().await.expect("stored keys");
    for (open, sealed) in set.keys.iter().zip(&stored) {
        assert!(
            !sealed.material.contains(open.text()),
            "key {} stored in clear",
            open.idx
        );
    }

    let admin = app.admin_token().await;
    let peer = app.spawn_peer().await;
    let on_peer = |token: String| {
        let client = app.client.clone();
        let url = format!("{peer}/v3/auth/tokens");
        let admin = admin.clone();
        async move {
            client
                .get(&url)
                .header("X-Auth-Token", &admin)
                .header("X-Subject-Token", &token)
                .send()
                .await
                .expect("validate on peer")
                .status()
                .as_u16()
        }
    };
    assert_eq!(on_peer(admin.clone()).await, 200);

    // Both servers have loaded the current version: the staged key is promoted.
    let RotateResult::Rotated {
        new_primary,
        removed,
        ..
    } = keys.rotate("test", &replica_rules()).await.expect("rotate")
    else {
        panic!("rotation did not happen");
    };
    assert_eq!((new_primary, removed), (2, vec![]));
    ring.refresh().await.expect("refresh");
    // A token from the new primary validates on the peer without it reloading: the
    // peer already held that key as its staged key.
    let fresh = app.admin_token().await;
    assert_eq!(on_peer(fresh.clone()).await, 200);
    assert_eq!(on_peer(admin.clone()).await, 200);

    // A live replica that has not loaded the current version holds promotion back
    // (once the peer has caught up, it is the only one)...
    wait_until_all_loaded(&app).await;
    let now = app.clock.now_secs();
    app.store
        .record_fernet_replica(&Replica {
            id: "lagging".into(),
            host: "elsewhere".into(),
            loaded_version: 0,
            started_at: now,
            last_seen: now,
            leading: false,
        })
        .await
        .expect("record replica");
    assert_eq!(
        keys.rotate("test", &replica_rules()).await.expect("rotate"),
        RotateResult::Waiting {
            replicas: vec!["lagging".into()]
        }
    );
    // ...until it has been silent for replica_timeout.
    app.clock.advance(61);
    let rotated = keys.rotate("test", &replica_rules()).await.expect("rotate");
    assert!(
        matches!(rotated, RotateResult::Rotated { new_primary: 3, .. }),
        "{rotated:?}"
    );
}

/// Waits (real time, the peer refreshes every second) until every replica has
/// recorded the current key-set version.
async fn wait_until_all_loaded(app: &TestApp) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let version = app.store.fernet_key_state().await.expect("state").version;
        let replicas = app.store.fernet_replicas(0).await.expect("replicas");
        if replicas.iter().all(|r| r.loaded_version == version) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replicas never caught up: {replicas:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn retired_keys_outlive_max_active_keys_until_no_token_needs_them(db: Db) {
    let Some(app) = spawn_configured(db, database_keys_settings).await else {
        return;
    };
    let keys = ring(&app).database_keys().clone();
    let force_free = RotateRules::default();
    // Rotating every 10 s with max_active_keys = 3 would purge keys a token accepted
    // by allow_expired still needs (retained 300 s): they are kept instead.
    let mut last = None;
    for _ in 0..4 {
        app.clock.advance(10);
        last = Some(keys.rotate("test", &force_free).await.expect("rotate"));
    }
    let Some(RotateResult::Rotated { removed, kept, .. }) = last else {
        panic!("{last:?}");
    };
    assert!(removed.is_empty(), "purged a needed key: {removed:?}");
    assert_eq!(kept, vec![1, 2, 3]);
    let set = keys.open_set().await.expect("set");
    assert_eq!(
        set.keys.iter().map(|k| k.idx).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5]
    );
    // Once the oldest retirements are older than expiration + window, they go.
    app.clock.advance(285);
    let RotateResult::Rotated { removed, kept, .. } =
        keys.rotate("test", &force_free).await.expect("rotate")
    else {
        panic!("no rotation");
    };
    // Keys 1..4 retired 315, 305, 295 and 285 s ago: 1 and 2 are past 300 s.
    assert_eq!(removed, vec![1, 2]);
    assert_eq!(kept, vec![3, 4]);
    // --force purges to max_active_keys regardless.
    let forced = RotateRules {
        force: true,
        ..Default::default()
    };
    let RotateResult::Rotated { removed, .. } = keys.rotate("test", &forced).await.expect("rotate")
    else {
        panic!("no rotation");
    };
    assert_eq!(removed, vec![3, 4, 5]);
    let set = keys.open_set().await.expect("set");
    assert_eq!(
        set.keys.iter().map(|k| k.idx).collect::<Vec<_>>(),
        vec![0, 6, 7]
    );
}

async fn one_rotation_per_interval_among_racing_replicas(db: Db) {
    let Some(app) = spawn_configured(db, database_keys_settings).await else {
        return;
    };
    let a = ring(&app);
    let b = Arc::new(
        SharedKeyRing::open(
            database_keys(&app.settings, &app.store, &app.clock).expect("keys"),
            ReplicaIdentity::of_this_process(&app.clock, None),
            60,
        )
        .await
        .expect("second ring"),
    );
    b.announce().await.expect("announce");
    let (mut lock_a, mut lock_b) = (None, None);
    let mut rotations = 0;
    for _ in 0..5 {
        app.clock.advance(31);
        let (ra, rb) = tokio::join!(
            a.rotation_round(&mut lock_a, 30),
            b.rotation_round(&mut lock_b, 30)
        );
        let results = [ra.expect("round a"), rb.expect("round b")];
        rotations += results
            .iter()
            .filter(|r| matches!(r, Some(RotateResult::Rotated { .. })))
            .count();
        // Whoever did not rotate must not have rotated twice.
        a.refresh().await.expect("refresh a");
        b.refresh().await.expect("refresh b");
    }
    assert_eq!(rotations, 5, "exactly one rotation per due interval");
    let set = a.database_keys().open_set().await.expect("set");
    assert_eq!(set.primary(), Some(6));
    if db == Db::Postgres {
        // One of the two holds the session lock; the other does not.
        assert!(a.is_leading() != b.is_leading());
    }
}

async fn refusals_at_start_up(db: Db) {
    let Some(app) = spawn_configured(db, database_keys_settings).await else {
        return;
    };
    // Another key-encryption key cannot open the keys: the server does not start.
    let mut other = app.settings.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    other.fernet_tokens.key_encryption_key_file = dir.path().join("other-kek");
    keystone_rs::token::keys::KeyEncryptionKey::create_if_missing(
        &other.fernet_tokens.key_encryption_key_file,
    )
    .expect("kek");
    let err = Application::build(other.clone(), Clock::system())
        .await
        .err()
        .expect("must not start");
    assert!(
        format!("{err:#}").contains("cannot be decrypted with the key-encryption key"),
        "{err:#}"
    );
    // A missing one says how to make it.
    other.fernet_tokens.key_encryption_key_file = dir.path().join("missing");
    let err = Application::build(other, Clock::system())
        .await
        .err()
        .expect("must not start");
    assert!(format!("{err:#}").contains("fernet setup"), "{err:#}");
    // Automatic rotation with a max_active_keys that would drop needed keys.
    let mut unsafe_rotation = app.settings.clone();
    unsafe_rotation.fernet_tokens.auto_rotate = true;
    unsafe_rotation.fernet_tokens.rotation_interval = Some(60);
    let err = Application::build(unsafe_rotation, Clock::system())
        .await
        .err()
        .expect("must not start");
    // 2 + ceil((100 + 200) / 60) = 7.
    assert!(
        format!("{err:#}").contains("max_active_keys = 7"),
        "{err:#}"
    );
}

both_backends!(
    @db database_key_store_serves_and_rotates,
    retired_keys_outlive_max_active_keys_until_no_token_needs_them,
    one_rotation_per_interval_among_racing_replicas,
    refusals_at_start_up,
);
