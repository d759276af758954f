//! Keystone's `consumer`, `request_token` and `access_token` tables (OS-OAUTH1).

use sqlx::any::AnyRow;

use super::revoke::insert_events;
use super::{json_extra, opt_int, opt_text, text, DbContext, Store, StoreResult};
use crate::model::{AccessToken, Consumer, RequestToken, RevocationEventRow};

const CONSUMER_COLS: &str = "id, description, secret, extra";
const REQUEST_COLS: &str = "id, request_secret, verifier, authorizing_user_id, \
                            requested_project_id, role_ids, consumer_id, expires_at_us";
const ACCESS_COLS: &str = "id, access_secret, authorizing_user_id, project_id, role_ids, \
                           consumer_id, expires_at_us";

fn role_ids(raw: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(raw).map_err(|e| super::StoreError::Corrupt {
        context: "reading OAuth1 role ids",
        detail: e.to_string(),
    })
}

fn role_ids_text(ids: &[String]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

fn consumer_from(row: &AnyRow) -> StoreResult<Consumer> {
    Ok(Consumer {
        id: text(row, "id")?,
        description: opt_text(row, "description")?,
        secret: text(row, "secret")?,
        extra: json_extra(row)?,
    })
}

fn request_from(row: &AnyRow) -> StoreResult<RequestToken> {
    Ok(RequestToken {
        id: text(row, "id")?,
        request_secret: text(row, "request_secret")?,
        verifier: opt_text(row, "verifier")?,
        authorizing_user_id: opt_text(row, "authorizing_user_id")?,
        requested_project_id: text(row, "requested_project_id")?,
        role_ids: opt_text(row, "role_ids")?
            .map(|r| role_ids(&r))
            .transpose()?,
        consumer_id: text(row, "consumer_id")?,
        expires_at: opt_int(row, "expires_at_us")?,
    })
}

fn access_from(row: &AnyRow) -> StoreResult<AccessToken> {
    Ok(AccessToken {
        id: text(row, "id")?,
        access_secret: text(row, "access_secret")?,
        authorizing_user_id: text(row, "authorizing_user_id")?,
        project_id: text(row, "project_id")?,
        role_ids: role_ids(&text(row, "role_ids")?)?,
        consumer_id: text(row, "consumer_id")?,
        expires_at: opt_int(row, "expires_at_us")?,
    })
}

impl Store {
    pub async fn insert_consumer(&self, c: &Consumer) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a consumer").await?;
        sqlx::query(&format!(
            "INSERT INTO consumer ({CONSUMER_COLS}) VALUES ($1, $2, $3, $4)"
        ))
        .bind(&c.id)
        .bind(&c.description)
        .bind(&c.secret)
        .bind(serde_json::Value::Object(c.extra.clone()).to_string())
        .execute(tx.conn())
        .await
        .ctx("consumer")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_consumer(&self, id: &str) -> StoreResult<Option<Consumer>> {
        let row = sqlx::query(&format!(
            "SELECT {CONSUMER_COLS} FROM consumer WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .ctx("reading a consumer")?;
        row.as_ref().map(consumer_from).transpose()
    }

    pub async fn list_consumers(&self) -> StoreResult<Vec<Consumer>> {
        let rows = sqlx::query(&format!("SELECT {CONSUMER_COLS} FROM consumer ORDER BY id"))
            .fetch_all(self.reader())
            .await
            .ctx("listing consumers")?;
        rows.iter().map(consumer_from).collect()
    }

    /// Replaces the description and extra attributes (never the secret). False when
    /// the consumer does not exist.
    pub async fn update_consumer(&self, c: &Consumer) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating a consumer").await?;
        let done = sqlx::query("UPDATE consumer SET description = $1, extra = $2 WHERE id = $3")
            .bind(&c.description)
            .bind(serde_json::Value::Object(c.extra.clone()).to_string())
            .bind(&c.id)
            .execute(tx.conn())
            .await
            .ctx("updating a consumer")?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes the consumer with its request and access tokens and records
    /// `revocations`, in one transaction. False when it did not exist.
    pub async fn delete_consumer(
        &self,
        id: &str,
        revocations: &[RevocationEventRow],
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting a consumer").await?;
        sqlx::query("DELETE FROM request_token WHERE consumer_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a consumer's request tokens")?;
        sqlx::query("DELETE FROM access_token WHERE consumer_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a consumer's access tokens")?;
        let done = sqlx::query("DELETE FROM consumer WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a consumer")?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_events(tx.conn(), revocations).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn insert_request_token(&self, t: &RequestToken) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a request token").await?;
        sqlx::query(&format!(
            "INSERT INTO request_token ({REQUEST_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&t.id)
        .bind(&t.request_secret)
        .bind(&t.verifier)
        .bind(&t.authorizing_user_id)
        .bind(&t.requested_project_id)
        .bind(t.role_ids.as_deref().map(role_ids_text))
        .bind(&t.consumer_id)
        .bind(t.expires_at)
        .execute(tx.conn())
        .await
        .ctx("request_token")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_request_token(&self, id: &str) -> StoreResult<Option<RequestToken>> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLS} FROM request_token WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .ctx("reading a request token")?;
        row.as_ref().map(request_from).transpose()
    }

    /// Records the authorizing user, the roles and the verifier. False when the
    /// request token is gone.
    pub async fn authorize_request_token(
        &self,
        id: &str,
        user_id: &str,
        role_ids: &[String],
        verifier: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write("authorizing a request token").await?;
        let done = sqlx::query(
            "UPDATE request_token SET authorizing_user_id = $1, role_ids = $2, verifier = $3 \
             WHERE id = $4",
        )
        .bind(user_id)
        .bind(role_ids_text(role_ids))
        .bind(verifier)
        .bind(id)
        .execute(tx.conn())
        .await
        .ctx("authorizing a request token")?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Consumes the request token and stores the access token made from it, in one
    /// transaction: of two concurrent exchanges of one request token, one wins.
    /// False when the request token was already used or is gone.
    pub async fn exchange_request_token(
        &self,
        request_token_id: &str,
        access: &AccessToken,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write("creating an access token").await?;
        let done = sqlx::query("DELETE FROM request_token WHERE id = $1")
            .bind(request_token_id)
            .execute(tx.conn())
            .await
            .ctx("consuming a request token")?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(&format!(
            "INSERT INTO access_token ({ACCESS_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&access.id)
        .bind(&access.access_secret)
        .bind(&access.authorizing_user_id)
        .bind(&access.project_id)
        .bind(role_ids_text(&access.role_ids))
        .bind(&access.consumer_id)
        .bind(access.expires_at)
        .execute(tx.conn())
        .await
        .ctx("access_token")?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn get_access_token(&self, id: &str) -> StoreResult<Option<AccessToken>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCESS_COLS} FROM access_token WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .ctx("reading an access token")?;
        row.as_ref().map(access_from).transpose()
    }

    pub async fn list_access_tokens(&self, user_id: &str) -> StoreResult<Vec<AccessToken>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCESS_COLS} FROM access_token WHERE authorizing_user_id = $1 ORDER BY id"
        ))
        .bind(user_id)
        .fetch_all(self.reader())
        .await
        .ctx("listing access tokens")?;
        rows.iter().map(access_from).collect()
    }

    /// False when the access token did not exist.
    pub async fn delete_access_token(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting an access token").await?;
        let done = sqlx::query("DELETE FROM access_token WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting an access token")?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }
}
