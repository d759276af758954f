//! Login bookkeeping for `[security_compliance]`: failed attempts and last activity.
//!
//! These writes change nothing a cache serves (authentication reads the user from
//! the database, never from the read cache), so they commit unannounced: a password
//! spray must not flush every validation cache in the cluster.

use super::{DbContext, Store, StoreResult};

impl Store {
    /// One failed attempt, counted by a single atomic UPDATE so concurrent failures
    /// are never lost (Keystone's read-modify-write loses them). A lockout that has
    /// run out (`failed_auth_at + lockout_duration <= now` with at least `max`
    /// failures) starts over at 1, as Keystone's reset-then-count.
    pub async fn record_failed_auth(
        &self,
        user_id: &str,
        now: i64,
        max_attempts: Option<i64>,
        lockout_duration: i64,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write("recording a failed login").await?;
        sqlx::query(
            "UPDATE users SET failed_auth_count = CASE \
               WHEN $3 > 0 AND failed_auth_count >= $3 AND failed_auth_at IS NOT NULL \
                    AND failed_auth_at + $4 <= $2 THEN 1 \
               ELSE failed_auth_count + 1 END, \
             failed_auth_at = $2 WHERE id = $1",
        )
        .bind(user_id)
        .bind(now)
        .bind(max_attempts.unwrap_or(0))
        .bind(lockout_duration)
        .execute(tx.conn())
        .await
        .ctx("recording a failed login")?;
        tx.commit_unannounced().await
    }

    /// A successful login: failures forgotten, the day of activity recorded when it
    /// changed (at most one write a day per user), and a hash imported from Python
    /// Keystone replaced by its argon2id rehash (`(new, old)`: only while the stored
    /// hash is still the old one, so a concurrent password change wins).
    pub async fn record_login(
        &self,
        user_id: &str,
        reset_failures: bool,
        today: Option<i64>,
        rehash: Option<(&str, &str)>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write("recording a login").await?;
        if let Some((new, old)) = rehash {
            sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1 AND password_hash = $3")
                .bind(user_id)
                .bind(new)
                .bind(old)
                .execute(tx.conn())
                .await
                .ctx("rehashing a password")?;
        }
        if reset_failures {
            sqlx::query(
                "UPDATE users SET failed_auth_count = 0, failed_auth_at = NULL WHERE id = $1",
            )
            .bind(user_id)
            .execute(tx.conn())
            .await
            .ctx("resetting failed logins")?;
        }
        if let Some(day) = today {
            sqlx::query(
                "UPDATE users SET last_active_at = $2 WHERE id = $1 AND (last_active_at IS NULL OR last_active_at <> $2)",
            )
            .bind(user_id)
            .bind(day)
            .execute(tx.conn())
            .await
            .ctx("recording activity")?;
        }
        tx.commit_unannounced().await
    }
}
