//! Keystone's `application_credential`, `application_credential_role`, `access_rule`
//! and `application_credential_access_rule` tables.

use sqlx::any::AnyRow;

use super::{boolean, int, opt_int, opt_text, placeholders, text, DbContext, Store, StoreResult};
use crate::model::{
    AccessRule, AccessRuleDeletion, AccessRuleFilter, AccessRuleSpec, ApplicationCredential,
};

const COLS: &str =
    "id, name, secret_hash, description, user_id, project_id, system, expires_at, unrestricted, created_at";

fn credential_from(row: &AnyRow) -> StoreResult<ApplicationCredential> {
    Ok(ApplicationCredential {
        id: text(row, "id")?,
        name: text(row, "name")?,
        secret_hash: text(row, "secret_hash")?,
        description: opt_text(row, "description")?,
        user_id: text(row, "user_id")?,
        project_id: opt_text(row, "project_id")?,
        system: opt_text(row, "system")?,
        expires_at: opt_int(row, "expires_at")?,
        unrestricted: boolean(row, "unrestricted")?,
        created_at: int(row, "created_at")?,
        role_ids: Vec::new(),
        access_rules: None,
    })
}

fn rule_from(row: &AnyRow) -> StoreResult<AccessRule> {
    Ok(AccessRule {
        id: text(row, "id")?,
        service: text(row, "service")?,
        path: text(row, "path")?,
        method: text(row, "method")?,
    })
}

/// Why a create could not link an access rule.
#[derive(Debug, PartialEq, Eq)]
pub enum AccessRuleRefusal {
    /// Keystone's AccessRuleNotFound: an id of no rule of this user.
    NotFound(String),
    /// The user already owns `[application_credential] user_limit` credentials.
    LimitExceeded,
}

impl Store {
    /// Fills in roles and access rules (one query each for the whole list).
    async fn complete(
        &self,
        mut creds: Vec<ApplicationCredential>,
    ) -> StoreResult<Vec<ApplicationCredential>> {
        for chunk in creds.chunks_mut(super::IN_CHUNK) {
            let ids: Vec<String> = chunk.iter().map(|c| c.id.clone()).collect();
            let marks = placeholders(0, ids.len());
            let sql = format!(
                "SELECT application_credential_id, role_id FROM application_credential_role WHERE application_credential_id IN ({marks}) ORDER BY role_id"
            );
            let mut q = sqlx::query(&sql);
            for id in &ids {
                q = q.bind(id);
            }
            let roles = q
                .fetch_all(self.reader())
                .await
                .ctx("reading application credential roles")?;
            let sql = format!(
                "SELECT l.application_credential_id AS cred_id, r.id, r.service, r.path, r.method FROM application_credential_access_rule l JOIN access_rule r ON r.id = l.access_rule_id WHERE l.application_credential_id IN ({marks}) ORDER BY r.service, r.method, r.path"
            );
            let mut q = sqlx::query(&sql);
            for id in &ids {
                q = q.bind(id);
            }
            let rules = q
                .fetch_all(self.reader())
                .await
                .ctx("reading application credential access rules")?;
            for c in chunk.iter_mut() {
                for row in &roles {
                    if text(row, "application_credential_id")? == c.id {
                        c.role_ids.push(text(row, "role_id")?);
                    }
                }
                for row in &rules {
                    if text(row, "cred_id")? == c.id {
                        c.access_rules
                            .get_or_insert_with(Vec::new)
                            .push(rule_from(row)?);
                    }
                }
            }
        }
        Ok(creds)
    }

    pub async fn get_application_credential(
        &self,
        id: &str,
    ) -> StoreResult<Option<ApplicationCredential>> {
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM application_credential WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .ctx("reading an application credential")?;
        match row {
            Some(row) => Ok(self
                .complete(vec![credential_from(&row)?])
                .await?
                .into_iter()
                .next()),
            None => Ok(None),
        }
    }

    /// A user's credentials in id order, optionally only the one with `name`.
    pub async fn list_application_credentials(
        &self,
        user_id: &str,
        name: Option<&str>,
    ) -> StoreResult<Vec<ApplicationCredential>> {
        let rows = match name {
            Some(name) => sqlx::query(&format!(
                "SELECT {COLS} FROM application_credential WHERE user_id = $1 AND name = $2 ORDER BY id"
            ))
            .bind(user_id)
            .bind(name)
            .fetch_all(self.reader())
            .await,
            None => sqlx::query(&format!(
                "SELECT {COLS} FROM application_credential WHERE user_id = $1 ORDER BY id"
            ))
            .bind(user_id)
            .fetch_all(self.reader())
            .await,
        }
        .ctx("listing application credentials")?;
        let creds = rows
            .iter()
            .map(credential_from)
            .collect::<StoreResult<Vec<_>>>()?;
        self.complete(creds).await
    }

    /// Inserts the credential, its roles and its access rules in one transaction. A
    /// rule named by id must be one of the user's; a rule given by its fields reuses
    /// the user's identical rule if there is one. A duplicate name is a `Conflict`.
    /// Returns the rules as linked.
    pub async fn insert_application_credential(
        &self,
        c: &ApplicationCredential,
        rules: &[AccessRuleSpec],
        user_limit: Option<i64>,
    ) -> StoreResult<Result<Vec<AccessRule>, AccessRuleRefusal>> {
        let mut tx = self
            .begin_write("creating an application credential")
            .await?;
        if let Some(limit) = user_limit {
            let row =
                sqlx::query("SELECT COUNT(*) AS n FROM application_credential WHERE user_id = $1")
                    .bind(&c.user_id)
                    .fetch_one(tx.conn())
                    .await
                    .ctx("counting a user's application credentials")?;
            if int(&row, "n")? >= limit {
                return Ok(Err(AccessRuleRefusal::LimitExceeded));
            }
        }
        sqlx::query(&format!(
            "INSERT INTO application_credential ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.secret_hash)
        .bind(&c.description)
        .bind(&c.user_id)
        .bind(&c.project_id)
        .bind(&c.system)
        .bind(c.expires_at)
        .bind(c.unrestricted)
        .bind(c.created_at)
        .execute(tx.conn())
        .await
        .ctx("creating an application credential")?;
        for role_id in &c.role_ids {
            sqlx::query(
                "INSERT INTO application_credential_role (application_credential_id, role_id) VALUES ($1, $2)",
            )
            .bind(&c.id)
            .bind(role_id)
            .execute(tx.conn())
            .await
            .ctx("creating an application credential")?;
        }
        let mut linked: Vec<AccessRule> = Vec::new();
        for spec in rules {
            let by_id = sqlx::query(
                "SELECT id, user_id, service, path, method FROM access_rule WHERE id = $1",
            )
            .bind(&spec.id)
            .fetch_optional(tx.conn())
            .await
            .ctx("reading an access rule")?;
            let mut rule = match by_id {
                Some(row) if text(&row, "user_id")? != c.user_id => {
                    return Ok(Err(AccessRuleRefusal::NotFound(spec.id.clone())));
                }
                Some(row) => Some(rule_from(&row)?),
                None => None,
            };
            let (service, path, method) = match (&spec.service, &spec.path, &spec.method) {
                (Some(s), Some(p), Some(m)) => (s, p, m),
                _ if rule.is_some() => (&String::new(), &String::new(), &String::new()),
                _ => return Ok(Err(AccessRuleRefusal::NotFound(spec.id.clone()))),
            };
            if rule.is_none() {
                let same = sqlx::query(
                    "SELECT id, service, path, method FROM access_rule WHERE user_id = $1 AND service = $2 AND path = $3 AND method = $4",
                )
                .bind(&c.user_id)
                .bind(service)
                .bind(path)
                .bind(method)
                .fetch_optional(tx.conn())
                .await
                .ctx("reading an access rule")?;
                rule = same.as_ref().map(rule_from).transpose()?;
            }
            let rule = match rule {
                Some(r) => r,
                None => {
                    sqlx::query(
                        "INSERT INTO access_rule (id, user_id, service, path, method) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&spec.id)
                    .bind(&c.user_id)
                    .bind(service)
                    .bind(path)
                    .bind(method)
                    .execute(tx.conn())
                    .await
                    .ctx("creating an access rule")?;
                    AccessRule {
                        id: spec.id.clone(),
                        service: service.clone(),
                        path: path.clone(),
                        method: method.clone(),
                    }
                }
            };
            if linked.iter().any(|r| r.id == rule.id) {
                continue;
            }
            sqlx::query(
                "INSERT INTO application_credential_access_rule (application_credential_id, access_rule_id) VALUES ($1, $2)",
            )
            .bind(&c.id)
            .bind(&rule.id)
            .execute(tx.conn())
            .await
            .ctx("creating an application credential")?;
            linked.push(rule);
        }
        tx.commit().await?;
        Ok(Ok(linked))
    }

    /// Replaces a secret hash imported from Python Keystone by its argon2id rehash,
    /// only while the stored hash is still `old` (compare and swap). Announced like any
    /// write (once per imported credential): a cached copy would keep the old hash.
    pub async fn rehash_application_credential(
        &self,
        id: &str,
        new: &str,
        old: &str,
    ) -> StoreResult<()> {
        let mut tx = self
            .begin_write("rehashing an application credential secret")
            .await?;
        sqlx::query(
            "UPDATE application_credential SET secret_hash = $2 WHERE id = $1 AND secret_hash = $3",
        )
        .bind(id)
        .bind(new)
        .bind(old)
        .execute(tx.conn())
        .await
        .ctx("rehashing an application credential secret")?;
        tx.commit().await
    }

    /// Deletes the credential and its role and rule links (the rules stay).
    pub async fn delete_application_credential(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self
            .begin_write("deleting an application credential")
            .await?;
        for sql in [
            "DELETE FROM application_credential_role WHERE application_credential_id = $1",
            "DELETE FROM application_credential_access_rule WHERE application_credential_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(tx.conn())
                .await
                .ctx("deleting an application credential")?;
        }
        let done = sqlx::query("DELETE FROM application_credential WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting an application credential")?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// A user's access rules in id order, every filter an exact match.
    pub async fn list_access_rules(
        &self,
        user_id: &str,
        filter: &AccessRuleFilter,
    ) -> StoreResult<Vec<AccessRule>> {
        let mut sql =
            "SELECT id, service, path, method FROM access_rule WHERE user_id = $1".to_string();
        let mut binds: Vec<&str> = vec![user_id];
        for (col, value) in [
            ("service", &filter.service),
            ("path", &filter.path),
            ("method", &filter.method),
        ] {
            if let Some(v) = value {
                binds.push(v);
                sql.push_str(&format!(" AND {col} = ${}", binds.len()));
            }
        }
        sql.push_str(" ORDER BY id");
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        q.fetch_all(self.reader())
            .await
            .ctx("listing access rules")?
            .iter()
            .map(rule_from)
            .collect()
    }

    pub async fn get_access_rule(
        &self,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<AccessRule>> {
        sqlx::query(
            "SELECT id, service, path, method FROM access_rule WHERE id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(self.reader())
        .await
        .ctx("reading an access rule")?
        .as_ref()
        .map(rule_from)
        .transpose()
    }

    /// Deletes one of the user's rules unless a credential still uses it.
    pub async fn delete_access_rule(
        &self,
        user_id: &str,
        id: &str,
    ) -> StoreResult<AccessRuleDeletion> {
        let mut tx = self.begin_write("deleting an access rule").await?;
        let found = sqlx::query("SELECT id FROM access_rule WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .fetch_optional(tx.conn())
            .await
            .ctx("reading an access rule")?;
        if found.is_none() {
            return Ok(AccessRuleDeletion::NotFound);
        }
        let used = sqlx::query(
            "SELECT application_credential_id FROM application_credential_access_rule WHERE access_rule_id = $1",
        )
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .ctx("reading an access rule")?;
        if used.is_some() {
            return Ok(AccessRuleDeletion::InUse);
        }
        sqlx::query("DELETE FROM access_rule WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .ctx("deleting an access rule")?;
        tx.commit().await?;
        Ok(AccessRuleDeletion::Deleted)
    }
}

/// Statements that remove every application credential and access rule of a user,
/// run inside the user's deletion (Keystone's callback on user deletion).
pub(crate) const DELETE_FOR_USER: &[&str] = &[
    "DELETE FROM application_credential_role WHERE application_credential_id IN (SELECT id FROM application_credential WHERE user_id = $1)",
    "DELETE FROM application_credential_access_rule WHERE application_credential_id IN (SELECT id FROM application_credential WHERE user_id = $1)",
    "DELETE FROM application_credential WHERE user_id = $1",
    "DELETE FROM access_rule WHERE user_id = $1",
];
