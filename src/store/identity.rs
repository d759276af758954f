//! Users, their local passwords, groups and membership.

use sqlx::any::AnyRow;

use super::revoke::insert_events;
use super::select::{Bind, Select};
use super::{
    assignment_type, boolean, int, json_extra, opt_int, opt_text, text, DbContext, Store,
    StoreError, StoreResult,
};
use crate::model::*;

const USER_COLS: &str = "id, name, domain_id, enabled, default_project_id, extra, password_hash, password_expires_at, created_at, options, failed_auth_count, failed_auth_at, last_active_at, password_created_at, password_self_service";

const GROUP_COLS: &str = "id, name, domain_id, description, extra";

fn add_user_filter(c: &mut Select, f: &UserFilter, prefix: &str) {
    c.eq_opt_text(&format!("{prefix}domain_id"), &f.domain_id)
        .eq_opt_text(&format!("{prefix}domain_id"), &f.within_domain)
        .eq_opt_text(&format!("{prefix}name"), &f.name);
    if let Some(e) = f.enabled {
        c.eq(&format!("{prefix}enabled"), Bind::Bool(e));
    }
    for m in &f.name_matches {
        c.text_match(&format!("{prefix}name"), m);
    }
    if let Some((op, micros)) = f.password_expires {
        let col = format!("{prefix}password_expires_at");
        c.and(
            &format!("{col} IS NOT NULL AND {col} * 1000000 {} {{}}", op.sql()),
            vec![Bind::Int(micros)],
        );
    }
}

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
        options: json_object(row, "options")?,
        login: LoginState {
            failed_auth_count: int(row, "failed_auth_count")?,
            failed_auth_at: opt_int(row, "failed_auth_at")?,
            last_active_at: opt_int(row, "last_active_at")?,
            password_created_at: opt_int(row, "password_created_at")?,
            password_self_service: boolean(row, "password_self_service")?,
        },
    })
}

/// A JSON object column (user options).
fn json_object(
    row: &AnyRow,
    col: &'static str,
) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str::<serde_json::Value>(&text(row, col)?) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(super::StoreError::Corrupt {
            context: "reading user options",
            detail: format!("{col} is not a JSON object"),
        }),
    }
}

/// Sets the password inside `tx`: the replaced hash joins the history (trimmed to
/// `keep_history` entries), all in the write's transaction.
async fn write_password(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    p: &NewPassword,
    replacing: Option<&str>,
) -> StoreResult<bool> {
    // Optimistic: the UPDATE applies only while the hash is still the one read. Under
    // PostgreSQL's READ COMMITTED two writers can both read the old hash; the second
    // UPDATE then waits for the first and re-checks its WHERE, so it changes nothing.
    // A change that must replace a given hash then fails; an unconditional one (an
    // admin's reset) reads again and keeps the winner's hash in the history.
    for _ in 0..8 {
        let Some(row) =
            sqlx::query("SELECT password_hash, password_history FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *conn)
                .await
                .ctx("reading a password history")?
        else {
            return Ok(false);
        };
        let current = opt_text(&row, "password_hash")?;
        if let Some(expected) = replacing {
            if current.as_deref() != Some(expected) {
                return Ok(false);
            }
        }
        let mut history: Vec<String> =
            serde_json::from_str(&text(&row, "password_history")?).unwrap_or_default();
        if let Some(c) = &current {
            history.push(c.clone());
        }
        let drop = history.len().saturating_sub(p.keep_history);
        history.drain(..drop);
        let history = serde_json::Value::from(history).to_string();
        let done = sqlx::query(
            "UPDATE users SET password_hash = $2, password_created_at = $3, password_expires_at = $4, password_self_service = $5, password_history = $6 WHERE id = $1 AND password_hash IS NOT DISTINCT FROM $7",
        )
        .bind(user_id)
        .bind(&p.hash)
        .bind(p.created_at)
        .bind(p.expires_at)
        .bind(p.self_service)
        .bind(history)
        .bind(current)
        .execute(&mut *conn)
        .await
        .ctx("setting a password")?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        if replacing.is_some() {
            return Ok(false);
        }
    }
    Err(StoreError::Conflict {
        what: format!("a concurrent password change of user {user_id}"),
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

    /// One page in id order, read with one row more than the limit (`Page::from_overfetch`).
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        page: &PageRequest,
    ) -> StoreResult<Vec<User>> {
        let mut c = Select::new(format!("SELECT {USER_COLS} FROM users"), self.backend());
        add_user_filter(&mut c, filter, "");
        c.page("id", page);
        c.query()
            .fetch_all(self.reader())
            .await
            .ctx("listing users")?
            .iter()
            .map(user_from)
            .collect()
    }

    pub async fn create_user(&self, u: &User, password_created_at: Option<i64>) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a user").await?;
        sqlx::query(
            "INSERT INTO users (id, name, domain_id, enabled, default_project_id, extra, password_hash, password_created_at, password_expires_at, created_at, options) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        .bind(serde_json::Value::Object(u.options.clone()).to_string())
        .execute(tx.conn())
        .await
        .ctx("creating a user")?;
        tx.commit().await?;
        Ok(())
    }

    /// Updates the user's attributes and options and, as asked, its password;
    /// `revocations` are recorded in the same transaction so a password change never
    /// outlives its event. `enabled_reset` (an enabled user, as Keystone's `enabled`
    /// setter) clears the failed attempts and, when given, sets `last_active_at`.
    pub async fn update_user(
        &self,
        u: &User,
        password: &PasswordUpdate,
        revocations: &[RevocationEventRow],
        enabled_reset: Option<Option<i64>>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating a user").await?;
        let done = sqlx::query(
            "UPDATE users SET name = $2, enabled = $3, default_project_id = $4, extra = $5, options = $6 WHERE id = $1",
        )
        .bind(&u.id)
        .bind(&u.name)
        .bind(u.enabled)
        .bind(&u.default_project_id)
        .bind(serde_json::Value::Object(u.extra.clone()).to_string())
        .bind(serde_json::Value::Object(u.options.clone()).to_string())
        .execute(tx.conn())
        .await
        .ctx("updating a user")?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(last_active) = enabled_reset {
            sqlx::query(
                "UPDATE users SET failed_auth_count = 0, failed_auth_at = NULL, last_active_at = COALESCE($2, last_active_at) WHERE id = $1",
            )
            .bind(&u.id)
            .bind(last_active)
            .execute(tx.conn())
            .await
            .ctx("resetting failed logins")?;
        }
        match password {
            PasswordUpdate::Keep => {}
            PasswordUpdate::Clear => {
                sqlx::query(
                    "UPDATE users SET password_hash = NULL, password_created_at = NULL, password_expires_at = NULL, password_self_service = $2 WHERE id = $1",
                )
                .bind(&u.id)
                .bind(false)
                .execute(tx.conn())
                .await
                .ctx("clearing a password")?;
            }
            PasswordUpdate::Set(p) => {
                write_password(tx.conn(), &u.id, p, None).await?;
            }
        }
        insert_events(tx.conn(), revocations).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets the password and records `revocations` in one transaction. With
    /// `replacing`, only if the stored hash is still that one (a compare-and-set):
    /// false when it is not, or when the user is gone.
    pub async fn set_user_password(
        &self,
        user_id: &str,
        password: &NewPassword,
        revocations: &[RevocationEventRow],
        replacing: Option<&str>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write("setting a password").await?;
        if !write_password(tx.conn(), user_id, password, replacing).await? {
            return Ok(false);
        }
        insert_events(tx.conn(), revocations).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The user's earlier password hashes, oldest first.
    pub async fn password_history(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let row = sqlx::query("SELECT password_history FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.reader())
            .await
            .ctx("reading a password history")?;
        match row {
            None => Ok(Vec::new()),
            Some(r) => Ok(serde_json::from_str(&text(&r, "password_history")?).unwrap_or_default()),
        }
    }

    /// Deletes the user with its memberships and assignments, and records
    /// `revocations`, in one transaction.
    pub async fn delete_user(
        &self,
        id: &str,
        revocations: &[RevocationEventRow],
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting a user").await?;
        sqlx::query("DELETE FROM assignment WHERE actor_id = $1 AND type IN ('UserProject', 'UserDomain', 'UserSystem')")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a user's assignments")?;
        sqlx::query("DELETE FROM group_membership WHERE user_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a user's memberships")?;
        // Keystone's credential_api.delete_credentials_for_user callback.
        sqlx::query("DELETE FROM credential WHERE user_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a user's credentials")?;
        // Keystone's trust_api._on_user_delete: the user's trusts, as trustor or trustee.
        sqlx::query("DELETE FROM trust_role WHERE trust_id IN (SELECT id FROM trust WHERE trustor_user_id = $1 OR trustee_user_id = $1)")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a user's trust roles")?;
        sqlx::query("DELETE FROM trust WHERE trustor_user_id = $1 OR trustee_user_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a user's trusts")?;
        // ... and application_credential_api's: the user's credentials and access rules.
        for sql in super::application_credential::DELETE_FOR_USER {
            sqlx::query(sql)
                .bind(id)
                .execute(tx.conn())
                .await
                .ctx("deleting a user's application credentials")?;
        }
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a user")?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_events(tx.conn(), revocations).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn get_group(&self, id: &str) -> StoreResult<Option<Group>> {
        sqlx::query(&format!(
            "SELECT {GROUP_COLS} FROM user_group WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .ctx("reading a group")?
        .as_ref()
        .map(group_from)
        .transpose()
    }

    pub async fn create_group(&self, g: &Group) -> StoreResult<()> {
        let mut tx = self.begin_write("creating a group").await?;
        sqlx::query(
            "INSERT INTO user_group (id, name, domain_id, description, extra) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&g.id)
        .bind(&g.name)
        .bind(&g.domain_id)
        .bind(&g.description)
        .bind(serde_json::Value::Object(g.extra.clone()).to_string())
        .execute(tx.conn())
        .await
        .ctx("creating a group")?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn add_user_to_group(&self, user_id: &str, group_id: &str) -> StoreResult<()> {
        let mut tx = self.begin_write("adding a user to a group").await?;
        let result =
            sqlx::query("INSERT INTO group_membership (user_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(user_id)
                .bind(group_id)
                .execute(tx.conn())
                .await
                .ctx("adding a user to a group");
        match result {
            Ok(_) | Err(super::StoreError::Conflict { .. }) => tx.commit().await,
            Err(e) => Err(e),
        }
    }

    /// One page in id order, read with one row more than the limit.
    pub async fn list_groups(
        &self,
        f: &GroupFilter,
        page: &PageRequest,
    ) -> StoreResult<Vec<Group>> {
        let mut c = Select::new(
            format!("SELECT {GROUP_COLS} FROM user_group"),
            self.backend(),
        );
        c.eq_opt_text("domain_id", &f.domain_id)
            .eq_opt_text("domain_id", &f.within_domain)
            .eq_opt_text("name", &f.name);
        for m in &f.name_matches {
            c.text_match("name", m);
        }
        c.page("id", page);
        c.query()
            .fetch_all(self.reader())
            .await
            .ctx("listing groups")?
            .iter()
            .map(group_from)
            .collect()
    }

    pub async fn update_group(&self, g: &Group) -> StoreResult<bool> {
        let mut tx = self.begin_write("updating a group").await?;
        let done = sqlx::query(
            "UPDATE user_group SET name = $2, description = $3, extra = $4 WHERE id = $1",
        )
        .bind(&g.id)
        .bind(&g.name)
        .bind(&g.description)
        .bind(serde_json::Value::Object(g.extra.clone()).to_string())
        .execute(tx.conn())
        .await
        .ctx("updating a group")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the group with its memberships and assignments in one transaction.
    /// `revocations` is called inside it with the member ids and whether the group
    /// held any role assignment, and what it returns is recorded before the commit,
    /// so no member can slip in between deciding and deleting.
    pub async fn delete_group(
        &self,
        id: &str,
        revocations: impl FnOnce(&[String], bool) -> Vec<RevocationEventRow>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write("deleting a group").await?;
        let members: Vec<String> = sqlx::query(
            "SELECT user_id FROM group_membership WHERE group_id = $1 ORDER BY user_id",
        )
        .bind(id)
        .fetch_all(tx.conn())
        .await
        .ctx("listing a group's members")?
        .iter()
        .map(|r| text(r, "user_id"))
        .collect::<StoreResult<_>>()?;
        let assigned = sqlx::query(
            "SELECT COUNT(*) AS n FROM assignment WHERE actor_id = $1 AND type IN ($2, $3, $4)",
        )
        .bind(id)
        .bind(assignment_type(ActorKind::Group, TargetKind::Project))
        .bind(assignment_type(ActorKind::Group, TargetKind::Domain))
        .bind(assignment_type(ActorKind::Group, TargetKind::System))
        .fetch_one(tx.conn())
        .await
        .ctx("counting a group's assignments")?;
        let has_assignments = int(&assigned, "n")? > 0;
        sqlx::query("DELETE FROM assignment WHERE actor_id = $1 AND type IN ($2, $3, $4)")
            .bind(id)
            .bind(assignment_type(ActorKind::Group, TargetKind::Project))
            .bind(assignment_type(ActorKind::Group, TargetKind::Domain))
            .bind(assignment_type(ActorKind::Group, TargetKind::System))
            .execute(tx.conn())
            .await
            .ctx("deleting a group's assignments")?;
        sqlx::query("DELETE FROM group_membership WHERE group_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a group's memberships")?;
        let done = sqlx::query("DELETE FROM user_group WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting a group")?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_events(tx.conn(), &revocations(&members, has_assignments)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes the membership and records `revocations` in one transaction;
    /// false (and nothing recorded) when the user was not a member.
    pub async fn remove_user_from_group(
        &self,
        user_id: &str,
        group_id: &str,
        revocations: &[RevocationEventRow],
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write("removing a user from a group").await?;
        let done = sqlx::query("DELETE FROM group_membership WHERE user_id = $1 AND group_id = $2")
            .bind(user_id)
            .bind(group_id)
            .execute(tx.conn())
            .await
            .ctx("removing a user from a group")?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_events(tx.conn(), revocations).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn is_user_in_group(&self, user_id: &str, group_id: &str) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM group_membership WHERE user_id = $1 AND group_id = $2",
        )
        .bind(user_id)
        .bind(group_id)
        .fetch_one(self.reader())
        .await
        .ctx("checking a group membership")?;
        Ok(int(&row, "n")? > 0)
    }

    pub async fn list_users_in_group(
        &self,
        group_id: &str,
        filter: &UserFilter,
    ) -> StoreResult<Vec<User>> {
        let cols = USER_COLS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut c = Select::new(
            format!("SELECT {cols} FROM users u JOIN group_membership m ON m.user_id = u.id"),
            self.backend(),
        );
        c.eq("m.group_id", Bind::Text(group_id.to_string()));
        add_user_filter(&mut c, filter, "u.");
        c.order_by("u.name, u.id");
        c.query()
            .fetch_all(self.reader())
            .await
            .ctx("listing a group's users")?
            .iter()
            .map(user_from)
            .collect()
    }

    pub async fn list_groups_for_user(&self, user_id: &str) -> StoreResult<Vec<Group>> {
        sqlx::query(
            "SELECT g.id, g.name, g.domain_id, g.description, g.extra FROM user_group g \
             JOIN group_membership m ON m.group_id = g.id WHERE m.user_id = $1 ORDER BY g.name, g.id",
        )
        .bind(user_id)
        .fetch_all(self.reader())
        .await
        .ctx("listing a user's groups")?
        .iter()
        .map(group_from)
        .collect()
    }

    /// Ids of the projects the user holds a role on, directly or through a group:
    /// project assignments, plus every project of a domain where the user holds an
    /// inherited (OS-INHERIT) domain assignment, which is what token scoping honours.
    pub async fn list_project_ids_for_user(&self, user_id: &str) -> StoreResult<Vec<String>> {
        sqlx::query(
            "SELECT target_id AS id FROM assignment WHERE inherited = $1 AND \
               ((type = $2 AND actor_id = $3) OR \
                (type = $4 AND actor_id IN (SELECT group_id FROM group_membership WHERE user_id = $3))) \
             UNION \
             SELECT p.id AS id FROM project p WHERE p.domain_id IN \
               (SELECT target_id FROM assignment WHERE inherited = $5 AND \
                 ((type = $6 AND actor_id = $3) OR \
                  (type = $7 AND actor_id IN (SELECT group_id FROM group_membership WHERE user_id = $3))))",
        )
        .bind(false)
        .bind(assignment_type(ActorKind::User, TargetKind::Project))
        .bind(user_id)
        .bind(assignment_type(ActorKind::Group, TargetKind::Project))
        .bind(true)
        .bind(assignment_type(ActorKind::User, TargetKind::Domain))
        .bind(assignment_type(ActorKind::Group, TargetKind::Domain))
        .fetch_all(self.reader())
        .await
        .ctx("listing a user's projects")?
        .iter()
        .map(|r| text(r, "id"))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    fn new(hash: &str) -> NewPassword {
        NewPassword {
            hash: hash.into(),
            created_at: 1,
            expires_at: None,
            self_service: true,
            keep_history: 5,
        }
    }

    /// Two changes presenting the same current hash on PostgreSQL, interleaved: both
    /// read it before either commits; only the first may replace it (the flake
    /// `faults::postgres::concurrent_password_changes_one_wins` once saw two winners).
    #[tokio::test]
    async fn concurrent_replacements_on_postgres_one_wins() {
        let Some(base) = std::env::var("KEYSTONE_TEST_POSTGRES_URL")
            .ok()
            .filter(|s| !s.is_empty())
        else {
            eprintln!("needs KEYSTONE_TEST_POSTGRES_URL; not run");
            return;
        };
        sqlx::any::install_default_drivers();
        let name = format!("pwrace_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::AnyConnection::connect(&base).await.expect("postgres");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        let mut url = url::Url::parse(&base).expect("url");
        url.set_path(&format!("/{name}"));
        let mut a = sqlx::AnyConnection::connect(url.as_str()).await.expect("a");
        let mut b = sqlx::AnyConnection::connect(url.as_str()).await.expect("b");
        for sql in [
            "CREATE TABLE users (id TEXT PRIMARY KEY, password_hash TEXT, password_history TEXT NOT NULL, password_created_at BIGINT, password_expires_at BIGINT, password_self_service BOOLEAN)",
            "INSERT INTO users (id, password_hash, password_history) VALUES ('u', 'old', '[]')",
        ] {
            sqlx::query(sql).execute(&mut a).await.expect("setup");
        }
        sqlx::query("BEGIN").execute(&mut a).await.expect("begin a");
        sqlx::query("BEGIN").execute(&mut b).await.expect("begin b");
        // b reads 'old' now, before a's change is committed.
        let seen: (Option<String>,) =
            sqlx::query_as("SELECT password_hash FROM users WHERE id = 'u'")
                .fetch_one(&mut b)
                .await
                .expect("read b");
        assert_eq!(seen.0.as_deref(), Some("old"));
        assert!(write_password(&mut a, "u", &new("from-a"), Some("old"))
            .await
            .expect("a"));
        let racer = tokio::spawn(async move {
            let won = write_password(&mut b, "u", &new("from-b"), Some("old"))
                .await
                .expect("b");
            sqlx::query("COMMIT")
                .execute(&mut b)
                .await
                .expect("commit b");
            won
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        sqlx::query("COMMIT")
            .execute(&mut a)
            .await
            .expect("commit a");
        assert!(!racer.await.expect("racer"), "the second change must lose");
        let hash: (Option<String>, String) =
            sqlx::query_as("SELECT password_hash, password_history FROM users WHERE id = 'u'")
                .fetch_one(&mut a)
                .await
                .expect("read");
        assert_eq!(hash.0.as_deref(), Some("from-a"));
        assert_eq!(hash.1, r#"["old"]"#);
        drop(a);
        let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await;
    }
}
