//! Users, their local passwords, groups and membership.

use sqlx::any::AnyRow;

use super::{boolean, int, json_extra, opt_int, opt_text, text, DbContext, Store, StoreResult};

type Extra = serde_json::Map<String, serde_json::Value>;

#[derive(Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    pub extra: Extra,
    /// PHC string (argon2id); None for users that cannot log in with a password.
    pub password_hash: Option<String>,
    pub password_expires_at: Option<i64>,
    pub created_at: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("domain_id", &self.domain_id)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub extra: Extra,
}

const USER_COLS: &str = "id, name, domain_id, enabled, default_project_id, extra, password_hash, password_expires_at, created_at";

fn user_from(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: text(row, "id")?,
        name: text(row, "name")?,
        domain_id: text(row, "domain_id")?,
        enabled: boolean(row, "enabled")?,
        default_project_id: opt_text(row, "default_project_id")?,
        extra: json_extra(row)?,
        password_hash: opt_text(row, "password_hash")?,
        password_expires_at: opt_int(row, "password_expires_at")?,
        created_at: int(row, "created_at")?,
    })
}

fn group_from(row: &AnyRow) -> StoreResult<Group> {
    Ok(Group {
        id: text(row, "id")?,
        name: text(row, "name")?,
        domain_id: text(row, "domain_id")?,
        description: text(row, "description")?,
        extra: json_extra(row)?,
    })
}

impl Store {
    pub async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a user")?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    pub async fn get_user_by_name(&self, domain_id: &str, name: &str) -> StoreResult<Option<User>> {
        sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users WHERE domain_id = $1 AND name = $2"
        ))
        .bind(domain_id)
        .bind(name)
        .fetch_optional(self.reader())
        .await
        .ctx("reading a user by name")?
        .as_ref()
        .map(user_from)
        .transpose()
    }

    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        sqlx::query(&format!("SELECT {USER_COLS} FROM users ORDER BY name"))
            .fetch_all(self.reader())
            .await
            .ctx("listing users")?
            .iter()
            .map(user_from)
            .collect()
    }

    pub async fn create_user(&self, u: &User, password_created_at: Option<i64>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, name, domain_id, enabled, default_project_id, extra, password_hash, password_created_at, password_expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&u.id)
        .bind(&u.name)
        .bind(&u.domain_id)
        .bind(u.enabled)
        .bind(&u.default_project_id)
        .bind(serde_json::Value::Object(u.extra.clone()).to_string())
        .bind(&u.password_hash)
        .bind(password_created_at)
        .bind(u.password_expires_at)
        .bind(u.created_at)
        .execute(self.writer())
        .await
        .ctx("creating a user")?;
        self.changed().await?;
        Ok(())
    }

    /// Updates everything but the password.
    pub async fn update_user(&self, u: &User) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET name = $2, enabled = $3, default_project_id = $4, extra = $5 WHERE id = $1",
        )
        .bind(&u.id)
        .bind(&u.name)
        .bind(u.enabled)
        .bind(&u.default_project_id)
        .bind(serde_json::Value::Object(u.extra.clone()).to_string())
        .execute(self.writer())
        .await
        .ctx("updating a user")?;
        self.changed().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn set_user_password(
        &self,
        user_id: &str,
        password_hash: &str,
        created_at: i64,
        expires_at: Option<i64>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $2, password_created_at = $3, password_expires_at = $4 WHERE id = $1",
        )
        .bind(user_id)
        .bind(password_hash)
        .bind(created_at)
        .bind(expires_at)
        .execute(self.writer())
        .await
        .ctx("setting a password")?;
        self.changed().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the user with its memberships and assignments in one transaction.
    pub async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.writer().begin().await.ctx("deleting a user")?;
        sqlx::query("DELETE FROM assignment WHERE actor_id = $1 AND type IN ('UserProject', 'UserDomain', 'UserSystem')")
            .bind(id)
            .execute(&mut *tx)
            .await
            .ctx("deleting a user's assignments")?;
        sqlx::query("DELETE FROM group_membership WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .ctx("deleting a user's memberships")?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .ctx("deleting a user")?;
        tx.commit().await.ctx("deleting a user")?;
        self.changed().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn get_group(&self, id: &str) -> StoreResult<Option<Group>> {
        sqlx::query("SELECT id, name, domain_id, description, extra FROM user_group WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a group")?
            .as_ref()
            .map(group_from)
            .transpose()
    }

    pub async fn create_group(&self, g: &Group) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO user_group (id, name, domain_id, description, extra) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&g.id)
        .bind(&g.name)
        .bind(&g.domain_id)
        .bind(&g.description)
        .bind(serde_json::Value::Object(g.extra.clone()).to_string())
        .execute(self.writer())
        .await
        .ctx("creating a group")?;
        self.changed().await?;
        Ok(())
    }

    pub async fn add_user_to_group(&self, user_id: &str, group_id: &str) -> StoreResult<()> {
        let result =
            sqlx::query("INSERT INTO group_membership (user_id, group_id) VALUES ($1, $2)")
                .bind(user_id)
                .bind(group_id)
                .execute(self.writer())
                .await
                .ctx("adding a user to a group");
        match result {
            Ok(_) | Err(super::StoreError::Conflict { .. }) => self.changed().await,
            Err(e) => Err(e),
        }
    }

    pub async fn remove_user_from_group(&self, user_id: &str, group_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM group_membership WHERE user_id = $1 AND group_id = $2")
            .bind(user_id)
            .bind(group_id)
            .execute(self.writer())
            .await
            .ctx("removing a user from a group")?;
        self.changed().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn list_group_ids_for_user(&self, user_id: &str) -> StoreResult<Vec<String>> {
        sqlx::query("SELECT group_id FROM group_membership WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(self.reader())
            .await
            .ctx("listing a user's groups")?
            .iter()
            .map(|r| text(r, "group_id"))
            .collect()
    }
}
