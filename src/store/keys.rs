//! Fernet keys kept in the database (`[fernet_tokens] key_store = database`), the key
//! set's version, and the replicas reading it. The material is always encrypted under
//! the key-encryption key; the store never sees a usable key.
//!
//! Key changes are compare-and-set on the version, so two replicas rotating at once
//! cannot both win. Replica heartbeats are not announced: no cache depends on them.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::{boolean, int, text, Backend, DbContext, Store, StoreResult};
use crate::model::{KeySetState, Replica, StoredKey};

/// Advisory lock id held by the replica that rotates ("ksrs-key" in ASCII).
const ROTATION_LOCK_KEY: i64 = 0x6b73_7273_2d6b_6579;

fn key_from(row: &AnyRow) -> StoreResult<StoredKey> {
    Ok(StoredKey {
        idx: u64::try_from(int(row, "idx")?).unwrap_or(0),
        material: text(row, "material")?,
        created_at: int(row, "created_at")?,
        retired_at: int(row, "retired_at")?,
    })
}

fn state_from(row: &AnyRow) -> StoreResult<KeySetState> {
    Ok(KeySetState {
        version: int(row, "version")?,
        rotated_at: int(row, "rotated_at")?,
        rotated_by: text(row, "rotated_by")?,
    })
}

impl Store {
    /// The key set's version and last rotation: one row, read every refresh.
    pub async fn fernet_key_state(&self) -> StoreResult<KeySetState> {
        let row = sqlx::query(
            "SELECT version, rotated_at, rotated_by FROM fernet_key_state WHERE id = 1",
        )
        .fetch_one(self.reader())
        .await
        .ctx("reading the Fernet key set version")?;
        state_from(&row)
    }

    /// The keys with the version they belong to, read in one statement (one snapshot),
    /// ascending by index.
    pub async fn fernet_keys(&self) -> StoreResult<(KeySetState, Vec<StoredKey>)> {
        let rows = sqlx::query(
            "SELECT k.idx, k.material, k.created_at, k.retired_at, s.version, s.rotated_at, s.rotated_by \
             FROM fernet_key k CROSS JOIN fernet_key_state s WHERE s.id = 1 ORDER BY k.idx",
        )
        .fetch_all(self.reader())
        .await
        .ctx("reading the Fernet keys")?;
        let Some(first) = rows.first() else {
            return Ok((self.fernet_key_state().await?, Vec::new()));
        };
        let state = state_from(first)?;
        let keys = rows.iter().map(key_from).collect::<StoreResult<_>>()?;
        Ok((state, keys))
    }

    /// Replaces the whole key set if its version is still `expected`; false (nothing
    /// written) if another writer changed it first. The state row is updated first,
    /// so a concurrent writer waits on it and then finds the version moved.
    pub async fn replace_fernet_keys(
        &self,
        expected: i64,
        keys: &[StoredKey],
        rotated_at: i64,
        rotated_by: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write("replacing the Fernet keys").await?;
        if self.backend() == Backend::Postgres {
            // A writer stopped in the middle of this (SIGSTOP) must not hold the row
            // for ever: the server ends such a session.
            sqlx::query("SET LOCAL idle_in_transaction_session_timeout = '10s'")
                .execute(tx.conn())
                .await
                .ctx("replacing the Fernet keys")?;
        }
        let moved = sqlx::query(
            "UPDATE fernet_key_state SET version = version + 1, rotated_at = $1, rotated_by = $2 \
             WHERE id = 1 AND version = $3",
        )
        .bind(rotated_at)
        .bind(rotated_by)
        .bind(expected)
        .execute(tx.conn())
        .await
        .ctx("replacing the Fernet keys")?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM fernet_key")
            .execute(tx.conn())
            .await
            .ctx("replacing the Fernet keys")?;
        for key in keys {
            insert_key(tx.conn(), key).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records what a replica has loaded (and that it is alive).
    pub async fn record_fernet_replica(&self, replica: &Replica) -> StoreResult<()> {
        let mut tx = self.begin_write("recording a replica").await?;
        sqlx::query(
            "INSERT INTO fernet_replica (id, host, loaded_version, started_at, last_seen, is_leader) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET host = excluded.host, loaded_version = excluded.loaded_version, \
             last_seen = excluded.last_seen, is_leader = excluded.is_leader",
        )
        .bind(&replica.id)
        .bind(&replica.host)
        .bind(replica.loaded_version)
        .bind(replica.started_at)
        .bind(replica.last_seen)
        .bind(i64::from(replica.leading))
        .execute(tx.conn())
        .await
        .ctx("recording a replica")?;
        tx.commit_unannounced().await?;
        Ok(())
    }

    /// Every replica that reported since `seen_since` (epoch seconds), by id.
    pub async fn fernet_replicas(&self, seen_since: i64) -> StoreResult<Vec<Replica>> {
        sqlx::query(
            "SELECT id, host, loaded_version, started_at, last_seen, is_leader FROM fernet_replica \
             WHERE last_seen >= $1 ORDER BY id",
        )
        .bind(seen_since)
        .fetch_all(self.reader())
        .await
        .ctx("reading the replicas")?
        .iter()
        .map(|row| {
            Ok(Replica {
                id: text(row, "id")?,
                host: text(row, "host")?,
                loaded_version: int(row, "loaded_version")?,
                started_at: int(row, "started_at")?,
                last_seen: int(row, "last_seen")?,
                leading: boolean(row, "is_leader")?,
            })
        })
        .collect()
    }

    /// Forgets replicas silent since before `cutoff`, so the table does not grow
    /// with every restart.
    pub async fn forget_fernet_replicas(&self, cutoff: i64) -> StoreResult<u64> {
        let mut tx = self.begin_write("forgetting old replicas").await?;
        let done = sqlx::query("DELETE FROM fernet_replica WHERE last_seen < $1")
            .bind(cutoff)
            .execute(tx.conn())
            .await
            .ctx("forgetting old replicas")?;
        tx.commit_unannounced().await?;
        Ok(done.rows_affected())
    }

    /// Tries to become the replica that rotates: a session-level advisory lock on a
    /// connection of its own, held until that connection closes (the process exits or
    /// is killed), or until the server ends the session because it stayed idle for
    /// `idle_timeout_secs` (a stopped process). SQLite has one process: always granted.
    pub async fn try_rotation_lock(
        &self,
        idle_timeout_secs: u64,
    ) -> StoreResult<Option<RotationLock>> {
        let Some(url) = self.postgres_url() else {
            return Ok(Some(RotationLock { conn: None }));
        };
        use sqlx::Connection;
        let mut conn = AnyConnection::connect(url)
            .await
            .ctx("opening the rotation lock connection")?;
        // PostgreSQL 14 and later; older servers keep the lock until the connection
        // drops (a stopped leader then delays rotation until it resumes).
        let timeout = format!("SET idle_session_timeout = '{}s'", idle_timeout_secs.max(1));
        if sqlx::query(&timeout).execute(&mut conn).await.is_err() {
            tracing::warn!("this PostgreSQL has no idle_session_timeout (before 14): a paused rotating replica keeps the rotation lock until it resumes");
        }
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind(ROTATION_LOCK_KEY)
            .fetch_one(&mut conn)
            .await
            .ctx("taking the rotation lock")?;
        if boolean(&row, "locked")? {
            Ok(Some(RotationLock { conn: Some(conn) }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }
}

async fn insert_key(conn: &mut AnyConnection, key: &StoredKey) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO fernet_key (idx, material, created_at, retired_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(i64::try_from(key.idx).unwrap_or(i64::MAX))
    .bind(&key.material)
    .bind(key.created_at)
    .bind(key.retired_at)
    .execute(conn)
    .await
    .ctx("writing a Fernet key")?;
    Ok(())
}

/// The rotation lock, held for as long as this lives and [`RotationLock::held`]
/// says so.
pub struct RotationLock {
    conn: Option<AnyConnection>,
}

impl std::fmt::Debug for RotationLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationLock")
            .field("session", &self.conn.is_some())
            .finish()
    }
}

impl RotationLock {
    /// Whether the lock's session is still alive (and so the lock still ours); also
    /// keeps the session from counting as idle.
    pub async fn held(&mut self) -> bool {
        match self.conn.as_mut() {
            None => true,
            Some(conn) => sqlx::query("SELECT 1").execute(conn).await.is_ok(),
        }
    }
}
