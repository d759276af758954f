//! Keystone's `policy` and `policy_association` tables (`/v3/policies` and
//! OS-ENDPOINT-POLICY).

use sqlx::any::AnyRow;

use super::{json_extra, opt_text, text, DbContext, Store, StoreResult};
use crate::model::{PolicyAssociation, PolicyTarget, StoredPolicy};

const COLS: &str = "id, type, blob, extra";

fn policy_from(row: &AnyRow) -> StoreResult<StoredPolicy> {
    Ok(StoredPolicy {
        id: text(row, "id")?,
        policy_type: text(row, "type")?,
        blob: text(row, "blob")?,
        extra: json_extra(row)?,
    })
}

fn association_from(row: &AnyRow) -> StoreResult<PolicyAssociation> {
    Ok(PolicyAssociation {
        policy_id: text(row, "policy_id")?,
        endpoint_id: opt_text(row, "endpoint_id")?,
        service_id: opt_text(row, "service_id")?,
        region_id: opt_text(row, "region_id")?,
    })
}

/// `endpoint_id = $n AND service_id IS NULL ...` for `target`, numbered after
/// `offset` binds, and the values to bind in order.
fn target_condition(target: &PolicyTarget, offset: usize) -> (String, Vec<String>) {
    let (e, s, r) = target.columns();
    let mut parts = Vec::new();
    let mut binds = Vec::new();
    for (col, value) in [("endpoint_id", e), ("service_id", s), ("region_id", r)] {
        match value {
            Some(v) => {
                binds.push(v.to_string());
                parts.push(format!("{col} = ${}", offset + binds.len()));
            }
            None => parts.push(format!("{col} IS NULL")),
        }
    }
    (parts.join(" AND "), binds)
}

impl Store {
    pub async fn get_policy(&self, id: &str) -> StoreResult<Option<StoredPolicy>> {
        sqlx::query(&format!("SELECT {COLS} FROM policy WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a policy")?
            .as_ref()
            .map(policy_from)
            .transpose()
    }

    /// Ordered by id; `policy_type` is an exact match.
    pub async fn list_policies(&self, policy_type: Option<&str>) -> StoreResult<Vec<StoredPolicy>> {
        let rows = match policy_type {
            Some(t) => {
                sqlx::query(&format!(
                    "SELECT {COLS} FROM policy WHERE type = $1 ORDER BY id"
                ))
                .bind(t)
                .fetch_all(self.reader())
                .await
            }
            None => {
                sqlx::query(&format!("SELECT {COLS} FROM policy ORDER BY id"))
                    .fetch_all(self.reader())
                    .await
            }
        }
        .ctx("listing policies")?;
        rows.iter().map(policy_from).collect()
    }

    /// Inserts a policy; an existing id is a `Conflict`.
    pub async fn create_policy(&self, p: &StoredPolicy) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a policy").await?;
        sqlx::query("INSERT INTO policy (id, type, blob, extra) VALUES ($1, $2, $3, $4)")
            .bind(&p.id)
            .bind(&p.policy_type)
            .bind(&p.blob)
            .bind(serde_json::Value::Object(p.extra.clone()).to_string())
            .execute(tx.conn())
            .await
            .ctx("creating a policy")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_policy(&self, p: &StoredPolicy) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating a policy").await?;
        let done = sqlx::query("UPDATE policy SET type = $2, blob = $3, extra = $4 WHERE id = $1")
            .bind(&p.id)
            .bind(&p.policy_type)
            .bind(&p.blob)
            .bind(serde_json::Value::Object(p.extra.clone()).to_string())
            .execute(tx.conn())
            .await
            .ctx("updating a policy")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a policy and its OS-ENDPOINT-POLICY associations in one transaction.
    pub async fn delete_policy(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting a policy").await?;
        sqlx::query("DELETE FROM policy_association WHERE policy_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a policy's associations")?;
        let done = sqlx::query("DELETE FROM policy WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a policy")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ties `policy_id` to `target`, replacing the policy an existing association of
    /// that target named (Keystone keeps one policy per target). The lookup and the
    /// write are one transaction.
    pub async fn associate_policy(
        &self,
        policy_id: &str,
        target: &PolicyTarget,
        row_id: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a policy association").await?;
        let (cond, binds) = target_condition(target, 1);
        let sql = format!("UPDATE policy_association SET policy_id = $1 WHERE {cond}");
        let mut q = sqlx::query(&sql).bind(policy_id);
        for b in &binds {
            q = q.bind(b);
        }
        let done = q
            .execute(tx.conn())
            .await
            .ctx("updating a policy association")?;
        if done.rows_affected() == 0 {
            let (e, s, r) = target.columns();
            sqlx::query(
                "INSERT INTO policy_association (id, policy_id, endpoint_id, service_id, region_id) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(row_id)
            .bind(policy_id)
            .bind(e)
            .bind(s)
            .bind(r)
            .execute(tx.conn())
            .await
            .ctx("creating a policy association")?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether `policy_id` is associated with exactly `target`.
    pub async fn policy_association_exists(
        &self,
        policy_id: &str,
        target: &PolicyTarget,
    ) -> StoreResult<bool> {
        let (cond, binds) = target_condition(target, 1);
        let sql =
            format!("SELECT policy_id FROM policy_association WHERE policy_id = $1 AND {cond}");
        let mut q = sqlx::query(&sql).bind(policy_id);
        for b in &binds {
            q = q.bind(b);
        }
        Ok(q.fetch_optional(self.reader())
            .await
            .ctx("checking a policy association")?
            .is_some())
    }

    /// The policy associated with exactly `target`, if any.
    pub async fn policy_for_target(&self, target: &PolicyTarget) -> StoreResult<Option<String>> {
        let (cond, binds) = target_condition(target, 0);
        let sql = format!("SELECT policy_id FROM policy_association WHERE {cond}");
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        q.fetch_optional(self.reader())
            .await
            .ctx("reading a policy association")?
            .as_ref()
            .map(|row| text(row, "policy_id"))
            .transpose()
    }

    pub async fn unassociate_policy(
        &self,
        policy_id: &str,
        target: &PolicyTarget,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write("deleting a policy association").await?;
        let (cond, binds) = target_condition(target, 1);
        let sql = format!("DELETE FROM policy_association WHERE policy_id = $1 AND {cond}");
        let mut q = sqlx::query(&sql).bind(policy_id);
        for b in &binds {
            q = q.bind(b);
        }
        q.execute(tx.conn())
            .await
            .ctx("deleting a policy association")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn policy_associations(
        &self,
        policy_id: &str,
    ) -> StoreResult<Vec<PolicyAssociation>> {
        sqlx::query(
            "SELECT policy_id, endpoint_id, service_id, region_id FROM policy_association WHERE policy_id = $1 ORDER BY id",
        )
        .bind(policy_id)
        .fetch_all(self.reader())
        .await
        .ctx("listing a policy's associations")?
        .iter()
        .map(association_from)
        .collect()
    }
}
