//! Keystone's `trust` and `trust_role` tables (OS-TRUST).

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::AnyRow;

use super::{boolean, json_extra, opt_int, opt_text, text, DbContext, Store, StoreResult};
use crate::model::{Trust, TrustFilter, TrustUse};

const COLS: &str = "id, trustor_user_id, trustee_user_id, project_id, impersonation, \
                    expires_at_us, remaining_uses, redelegated_trust_id, redelegation_count, extra";

fn micros(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_micros())
}

fn trust_from(row: &AnyRow) -> StoreResult<Trust> {
    Ok(Trust {
        id: text(row, "id")?,
        trustor_user_id: text(row, "trustor_user_id")?,
        trustee_user_id: text(row, "trustee_user_id")?,
        project_id: opt_text(row, "project_id")?,
        impersonation: boolean(row, "impersonation")?,
        expires_at: opt_int(row, "expires_at_us")?.and_then(|us| Utc.timestamp_micros(us).single()),
        remaining_uses: opt_int(row, "remaining_uses")?,
        redelegated_trust_id: opt_text(row, "redelegated_trust_id")?,
        redelegation_count: opt_int(row, "redelegation_count")?,
        role_ids: Vec::new(),
        extra: json_extra(row)?,
    })
}

impl Store {
    /// Inserts the trust and its roles; a duplicate (same trustor, trustee, project,
    /// impersonation and expiry) is a `Conflict`, as Keystone's unique constraint.
    pub async fn create_trust(&self, t: &Trust) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a trust").await?;
        sqlx::query(&format!(
            "INSERT INTO trust ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&t.id)
        .bind(&t.trustor_user_id)
        .bind(&t.trustee_user_id)
        .bind(&t.project_id)
        .bind(t.impersonation)
        .bind(micros(t.expires_at))
        .bind(t.remaining_uses)
        .bind(&t.redelegated_trust_id)
        .bind(t.redelegation_count)
        .bind(serde_json::Value::Object(t.extra.clone()).to_string())
        .execute(tx.conn())
        .await
        .ctx("trust")?;
        for role in &t.role_ids {
            sqlx::query("INSERT INTO trust_role (trust_id, role_id) VALUES ($1, $2)")
                .bind(&t.id)
                .bind(role)
                .execute(tx.conn())
                .await
                .ctx("trust")?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The trust with its role ids, whatever its expiry or remaining uses.
    pub async fn get_trust(&self, id: &str) -> StoreResult<Option<Trust>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM trust WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a trust")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut trust = trust_from(&row)?;
        let roles =
            sqlx::query("SELECT role_id FROM trust_role WHERE trust_id = $1 ORDER BY role_id")
                .bind(id)
                .fetch_all(self.reader())
                .await
                .ctx("reading a trust's roles")?;
        trust.role_ids = roles
            .iter()
            .map(|r| text(r, "role_id"))
            .collect::<StoreResult<_>>()?;
        Ok(Some(trust))
    }

    /// Trusts without their roles (Keystone's list does not return them), by id.
    pub async fn list_trusts(&self, filter: &TrustFilter) -> StoreResult<Vec<Trust>> {
        let rows = match filter {
            TrustFilter::All => {
                sqlx::query(&format!("SELECT {COLS} FROM trust ORDER BY id"))
                    .fetch_all(self.reader())
                    .await
            }
            TrustFilter::Trustor(u) => {
                sqlx::query(&format!(
                    "SELECT {COLS} FROM trust WHERE trustor_user_id = $1 ORDER BY id"
                ))
                .bind(u)
                .fetch_all(self.reader())
                .await
            }
            TrustFilter::Trustee(u) => {
                sqlx::query(&format!(
                    "SELECT {COLS} FROM trust WHERE trustee_user_id = $1 ORDER BY id"
                ))
                .bind(u)
                .fetch_all(self.reader())
                .await
            }
        }
        .ctx("listing trusts")?;
        rows.iter().map(trust_from).collect()
    }

    /// Deletes the trust and every trust redelegated from it, down the chain, in
    /// one transaction. False when the trust did not exist.
    pub async fn delete_trust(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting a trust").await?;
        let mut pending = vec![id.to_string()];
        let mut found = false;
        let mut seen = std::collections::HashSet::new();
        while let Some(next) = pending.pop() {
            if !seen.insert(next.clone()) {
                continue;
            }
            let children = sqlx::query("SELECT id FROM trust WHERE redelegated_trust_id = $1")
                .bind(&next)
                .fetch_all(tx.conn())
                .await
                .ctx("listing redelegated trusts")?;
            for c in &children {
                pending.push(text(c, "id")?);
            }
            sqlx::query("DELETE FROM trust_role WHERE trust_id = $1")
                .bind(&next)
                .execute(tx.conn())
                .await
                .ctx("deleting a trust's roles")?;
            let done = sqlx::query("DELETE FROM trust WHERE id = $1")
                .bind(&next)
                .execute(tx.conn())
                .await
                .ctx("deleting a trust")?;
            if next == id {
                found = done.rows_affected() > 0;
            }
        }
        if !found {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Takes one use of a limited trust, compare-and-set: of two concurrent callers
    /// for the last use, exactly one gets `Taken`. An unlimited trust writes nothing.
    pub async fn consume_trust_use(&self, id: &str) -> StoreResult<TrustUse> {
        let row = sqlx::query("SELECT remaining_uses FROM trust WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a trust's uses")?;
        let Some(row) = row else {
            return Ok(TrustUse::Missing);
        };
        if opt_int(&row, "remaining_uses")?.is_none() {
            return Ok(TrustUse::Unlimited);
        }
        let mut tx = self.begin_write("consuming a trust use").await?;
        let done = sqlx::query(
            "UPDATE trust SET remaining_uses = remaining_uses - 1 \
             WHERE id = $1 AND remaining_uses IS NOT NULL AND remaining_uses > 0",
        )
        .bind(id)
        .execute(tx.conn())
        .await
        .ctx("consuming a trust use")?;
        if done.rows_affected() == 0 {
            return Ok(TrustUse::Exhausted);
        }
        tx.commit().await?;
        Ok(TrustUse::Taken)
    }
}
