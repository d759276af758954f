//! Keystone's `credential` table. Blobs arrive here already encrypted.

use sqlx::any::AnyRow;

use super::{json_extra, opt_text, text, DbContext, Store, StoreResult};
use crate::model::{CredentialFilter, StoredCredential};

const COLS: &str = "id, user_id, project_id, encrypted_blob, type, key_hash, extra";

fn credential_from(row: &AnyRow) -> StoreResult<StoredCredential> {
    Ok(StoredCredential {
        id: text(row, "id")?,
        user_id: text(row, "user_id")?,
        project_id: opt_text(row, "project_id")?,
        cred_type: text(row, "type")?,
        encrypted_blob: text(row, "encrypted_blob")?,
        key_hash: text(row, "key_hash")?,
        extra: json_extra(row)?,
    })
}

impl Store {
    pub async fn get_credential(&self, id: &str) -> StoreResult<Option<StoredCredential>> {
        sqlx::query(&format!("SELECT {COLS} FROM credential WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a credential")?
            .as_ref()
            .map(credential_from)
            .transpose()
    }

    /// Ordered by id; every filter is an exact match.
    pub async fn list_credentials(
        &self,
        filter: &CredentialFilter,
    ) -> StoreResult<Vec<StoredCredential>> {
        let mut sql = format!("SELECT {COLS} FROM credential WHERE 1 = 1");
        let mut binds: Vec<&str> = Vec::new();
        for (col, value) in [
            ("user_id", &filter.user_id),
            ("type", &filter.cred_type),
            ("project_id", &filter.project_id),
        ] {
            if let Some(v) = value {
                binds.push(v);
                sql.push_str(&format!(" AND {col} = ${}", binds.len()));
            }
        }
        sql.push_str(" ORDER BY id");
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = query.bind(b);
        }
        query
            .fetch_all(self.reader())
            .await
            .ctx("listing credentials")?
            .iter()
            .map(credential_from)
            .collect()
    }

    /// Inserts a credential; an existing id is a `Conflict`. With `user_limit`, the
    /// count and the insert are one transaction.
    pub async fn insert_credential(
        &self,
        c: &StoredCredential,
        user_limit: Option<i64>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write("creating a credential").await?;
        if let Some(limit) = user_limit {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM credential WHERE user_id = $1")
                .bind(&c.user_id)
                .fetch_one(tx.conn())
                .await
                .ctx("counting a user's credentials")?;
            if super::int(&row, "n")? >= limit {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO credential (id, user_id, project_id, encrypted_blob, type, key_hash, extra) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.id)
        .bind(&c.user_id)
        .bind(&c.project_id)
        .bind(&c.encrypted_blob)
        .bind(&c.cred_type)
        .bind(&c.key_hash)
        .bind(serde_json::Value::Object(c.extra.clone()).to_string())
        .execute(tx.conn())
        .await
        .ctx("creating a credential")?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces a credential's blob. With `expected_hash`, only while the row is still
    /// encrypted with that key (`credential migrate` racing an update keeps the update).
    pub async fn update_credential_blob(
        &self,
        id: &str,
        encrypted_blob: &str,
        key_hash: &str,
        expected_hash: Option<&str>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating a credential").await?;
        let done = match expected_hash {
            None => sqlx::query(
                "UPDATE credential SET encrypted_blob = $2, key_hash = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(encrypted_blob)
            .bind(key_hash)
            .execute(tx.conn())
            .await
            .ctx("updating a credential")?,
            Some(expected) => sqlx::query(
                "UPDATE credential SET encrypted_blob = $2, key_hash = $3 WHERE id = $1 AND key_hash = $4",
            )
            .bind(id)
            .bind(encrypted_blob)
            .bind(key_hash)
            .bind(expected)
            .execute(tx.conn())
            .await
            .ctx("updating a credential")?,
        };
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_credential(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting a credential").await?;
        let done = sqlx::query("DELETE FROM credential WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a credential")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The distinct key hashes rows are encrypted with (what `credential rotate` checks).
    pub async fn credential_key_hashes(&self) -> StoreResult<Vec<(String, i64)>> {
        sqlx::query(
            "SELECT key_hash, COUNT(*) AS n FROM credential GROUP BY key_hash ORDER BY key_hash",
        )
        .fetch_all(self.reader())
        .await
        .ctx("counting credentials by key")?
        .iter()
        .map(|row| Ok((text(row, "key_hash")?, super::int(row, "n")?)))
        .collect()
    }
}
