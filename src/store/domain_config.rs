//! Keystone's `whitelisted_config` and `sensitive_config` tables: a domain's
//! configuration, one row per option, values as JSON.

use sqlx::any::AnyRow;

use super::{text, DbContext, Store, StoreError, StoreResult};
use crate::model::ConfigOption;

const TABLES: [(&str, bool); 2] = [("whitelisted_config", false), ("sensitive_config", true)];

fn option_from(row: &AnyRow, sensitive: bool) -> StoreResult<ConfigOption> {
    let raw = text(row, "value")?;
    let value = serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt {
        context: "reading a domain configuration option",
        detail: e.to_string(),
    })?;
    Ok(ConfigOption {
        group: text(row, "group_name")?,
        option: text(row, "option_name")?,
        value,
        sensitive,
    })
}

fn table(sensitive: bool) -> &'static str {
    if sensitive {
        "sensitive_config"
    } else {
        "whitelisted_config"
    }
}

/// `AND group_name = $2 [AND option_name = $3]` for the optional filters.
fn scope_condition(group: Option<&str>, option: Option<&str>) -> String {
    match (group, option) {
        (Some(_), Some(_)) => " AND group_name = $2 AND option_name = $3".into(),
        (Some(_), None) => " AND group_name = $2".into(),
        _ => String::new(),
    }
}

async fn insert(
    conn: &mut sqlx::AnyConnection,
    domain_id: &str,
    o: &ConfigOption,
) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO {} (domain_id, group_name, option_name, value) VALUES ($1, $2, $3, $4)",
        table(o.sensitive)
    ))
    .bind(domain_id)
    .bind(&o.group)
    .bind(&o.option)
    .bind(o.value.to_string())
    .execute(&mut *conn)
    .await
    .ctx("storing a domain configuration option")?;
    Ok(())
}

impl Store {
    /// The domain's options (sensitive ones only with `sensitive`), optionally only
    /// one group or one option, ordered by group and option.
    pub async fn domain_config_options(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
        sensitive: bool,
    ) -> StoreResult<Vec<ConfigOption>> {
        let mut out = Vec::new();
        for (name, is_sensitive) in TABLES {
            if is_sensitive && !sensitive {
                continue;
            }
            let sql = format!(
                "SELECT group_name, option_name, value FROM {name} WHERE domain_id = $1{} ORDER BY group_name, option_name",
                scope_condition(group, option)
            );
            let mut q = sqlx::query(&sql).bind(domain_id);
            if let Some(g) = group {
                q = q.bind(g);
                if let Some(o) = option {
                    q = q.bind(o);
                }
            }
            for row in q
                .fetch_all(self.reader())
                .await
                .ctx("reading a domain configuration")?
            {
                out.push(option_from(&row, is_sensitive)?);
            }
        }
        Ok(out)
    }

    /// Replaces the domain's whole configuration (Keystone's `create_config_options`).
    pub async fn replace_domain_config(
        &self,
        domain_id: &str,
        options: &[ConfigOption],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write("replacing a domain configuration").await?;
        for (name, _) in TABLES {
            sqlx::query(&format!("DELETE FROM {name} WHERE domain_id = $1"))
                .bind(domain_id)
                .execute(tx.conn())
                .await
                .ctx("replacing a domain configuration")?;
        }
        for o in options {
            insert(tx.conn(), domain_id, o).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets each option, replacing its old value in either table.
    pub async fn update_domain_config(
        &self,
        domain_id: &str,
        options: &[ConfigOption],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write("updating a domain configuration").await?;
        for o in options {
            for (name, _) in TABLES {
                sqlx::query(&format!(
                    "DELETE FROM {name} WHERE domain_id = $1 AND group_name = $2 AND option_name = $3"
                ))
                .bind(domain_id)
                .bind(&o.group)
                .bind(&o.option)
                .execute(tx.conn())
                .await
                .ctx("updating a domain configuration")?;
            }
            insert(tx.conn(), domain_id, o).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the whole configuration, a group, or one option.
    pub async fn delete_domain_config(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write("deleting a domain configuration").await?;
        for (name, _) in TABLES {
            let sql = format!(
                "DELETE FROM {name} WHERE domain_id = $1{}",
                scope_condition(group, option)
            );
            let mut q = sqlx::query(&sql).bind(domain_id);
            if let Some(g) = group {
                q = q.bind(g);
                if let Some(o) = option {
                    q = q.bind(o);
                }
            }
            q.execute(tx.conn())
                .await
                .ctx("deleting a domain configuration")?;
        }
        tx.commit().await?;
        Ok(())
    }
}
