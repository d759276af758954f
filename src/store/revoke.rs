//! Revocation events: Keystone's `revocation_event` table.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::{int, opt_int, opt_text, DbContext, Store, StoreResult};
use crate::model::*;

/// Advisory lock id for pruning ("ksrs-rev" in ASCII); any constant unique to us works.
const PRUNE_LOCK_KEY: i64 = 0x6b73_7273_2d72_6576;

const EVENT_COLS: &str = "id, domain_id, project_id, user_id, role_id, trust_id, consumer_id, access_token_id, audit_id, audit_chain_id, expires_at, issued_before, revoked_at";

fn event_from(row: &AnyRow) -> StoreResult<RevocationEventRow> {
    Ok(RevocationEventRow {
        id: int(row, "id")?,
        domain_id: opt_text(row, "domain_id")?,
        project_id: opt_text(row, "project_id")?,
        user_id: opt_text(row, "user_id")?,
        role_id: opt_text(row, "role_id")?,
        trust_id: opt_text(row, "trust_id")?,
        consumer_id: opt_text(row, "consumer_id")?,
        access_token_id: opt_text(row, "access_token_id")?,
        audit_id: opt_text(row, "audit_id")?,
        audit_chain_id: opt_text(row, "audit_chain_id")?,
        expires_at: opt_int(row, "expires_at")?,
        issued_before: int(row, "issued_before")?,
        revoked_at: int(row, "revoked_at")?,
    })
}

/// Inserts events inside a caller's transaction, so a write and the revocation it
/// demands (a password change, a deletion) commit or fail together.
pub(crate) async fn insert_events(
    conn: &mut AnyConnection,
    events: &[RevocationEventRow],
) -> StoreResult<()> {
    for e in events {
        sqlx::query(
            "INSERT INTO revocation_event (domain_id, project_id, user_id, role_id, trust_id, consumer_id, access_token_id, audit_id, audit_chain_id, expires_at, issued_before, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&e.domain_id)
        .bind(&e.project_id)
        .bind(&e.user_id)
        .bind(&e.role_id)
        .bind(&e.trust_id)
        .bind(&e.consumer_id)
        .bind(&e.access_token_id)
        .bind(&e.audit_id)
        .bind(&e.audit_chain_id)
        .bind(e.expires_at)
        .bind(e.issued_before)
        .bind(e.revoked_at)
        .execute(&mut *conn)
        .await
        .ctx("recording a revocation")?;
    }
    Ok(())
}

impl Store {
    /// Inserts the events in one transaction; their ids are assigned by the database.
    pub async fn insert_revocation_events(&self, events: &[RevocationEventRow]) -> StoreResult<()> {
        let mut tx = self.begin_write("recording a revocation").await?;
        insert_events(tx.conn(), events).await?;
        tx.commit_unannounced().await?;
        Ok(())
    }

    /// Events revoked at or after `since` (epoch seconds), oldest first.
    pub async fn list_revocation_events_since(
        &self,
        since: i64,
    ) -> StoreResult<Vec<RevocationEventRow>> {
        sqlx::query(&format!(
            "SELECT {EVENT_COLS} FROM revocation_event WHERE revoked_at >= $1 ORDER BY revoked_at, id"
        ))
        .bind(since)
        .fetch_all(self.reader())
        .await
        .ctx("reading revocation events")?
        .iter()
        .map(event_from)
        .collect()
    }

    /// Events with an id above `after_id`, in id order: the incremental refresh.
    pub async fn list_revocation_events_after_id(
        &self,
        after_id: i64,
    ) -> StoreResult<Vec<RevocationEventRow>> {
        sqlx::query(&format!(
            "SELECT {EVENT_COLS} FROM revocation_event WHERE id > $1 ORDER BY id"
        ))
        .bind(after_id)
        .fetch_all(self.reader())
        .await
        .ctx("reading new revocation events")?
        .iter()
        .map(event_from)
        .collect()
    }

    /// Deletes events revoked before `cutoff`; returns how many went. On a shared
    /// PostgreSQL database only one server prunes at a time (a transaction-scoped
    /// advisory lock; the others skip this round). SQLite has a single writer anyway.
    pub async fn prune_revocation_events(&self, cutoff: i64) -> StoreResult<u64> {
        let mut tx = self.begin_write("pruning revocation events").await?;
        if self.backend() == super::Backend::Postgres {
            let row = sqlx::query("SELECT pg_try_advisory_xact_lock($1) AS locked")
                .bind(PRUNE_LOCK_KEY)
                .fetch_one(tx.conn())
                .await
                .ctx("locking revocation pruning")?;
            if !super::boolean(&row, "locked")? {
                return Ok(0);
            }
        }
        let done = sqlx::query("DELETE FROM revocation_event WHERE revoked_at < $1")
            .bind(cutoff)
            .execute(tx.conn())
            .await
            .ctx("pruning revocation events")?;
        tx.commit_unannounced().await?;
        Ok(done.rows_affected())
    }
}
