//! Writing what `db import` read, in one transaction: all or nothing.

use super::{DbContext, Store, StoreError, StoreResult};
use crate::model::{Cell, ImportProgress, ImportTable};

/// Tables an import fills, children first (the order `--replace` empties them in).
const CLEARED: &[&str] = &[
    "access_token",
    "request_token",
    "consumer",
    "application_credential_access_rule",
    "access_rule",
    "application_credential_role",
    "application_credential",
    "trust_role",
    "trust",
    "sensitive_config",
    "whitelisted_config",
    "policy_association",
    "policy",
    "unified_limit",
    "registered_limit",
    "credential",
    "revocation_event",
    "project_endpoint_group",
    "endpoint_group",
    "project_endpoint",
    "endpoint",
    "service",
    "region",
    "assignment",
    "implied_role",
    "role",
    "group_membership",
    "user_group",
    "users",
    "project_tag",
    "project",
    "domain",
];

/// What the target held before: a non-empty target needs `--replace`.
#[derive(Debug)]
pub enum ImportWrite {
    Written,
    TargetNotEmpty { rows: i64 },
}

impl Store {
    /// Writes every table in one transaction. Without `replace`, refuses a target
    /// that holds anything; with it, empties those tables first. A broken reference or
    /// a duplicate in the source aborts the whole import (nothing is written).
    pub async fn import_tables(
        &self,
        tables: &[ImportTable],
        replace: bool,
        progress: &dyn ImportProgress,
    ) -> StoreResult<ImportWrite> {
        let mut tx = self.begin_write("importing a Keystone database").await?;
        let mut existing = 0;
        for t in CLEARED {
            let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {t}"))
                .fetch_one(tx.conn())
                .await
                .ctx("counting the target's rows")?;
            existing += super::int(&row, "n")?;
        }
        if existing > 0 && !replace {
            return Ok(ImportWrite::TargetNotEmpty { rows: existing });
        }
        if existing > 0 {
            for t in CLEARED {
                sqlx::query(&format!("DELETE FROM {t}"))
                    .execute(tx.conn())
                    .await
                    .ctx("emptying the target")?;
            }
        }
        progress.writing(tables.iter().map(|t| t.rows.len() as u64).sum());
        for t in tables.iter().filter(|t| !t.table.is_empty()) {
            let placeholders: Vec<String> =
                (1..=t.columns.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                t.table,
                t.columns.join(", "),
                placeholders.join(", ")
            );
            for row in &t.rows {
                let mut q = sqlx::query(&sql);
                for cell in row {
                    q = match cell {
                        Cell::Null => q.bind(None::<String>),
                        Cell::NullInt => q.bind(None::<i64>),
                        Cell::Text(s) => q.bind(s.as_str()),
                        Cell::Int(v) => q.bind(*v),
                        Cell::Bool(v) => q.bind(*v),
                    };
                }
                q.execute(tx.conn())
                    .await
                    .map_err(|e| StoreError::Corrupt {
                        context: "importing a Keystone database",
                        detail: format!("{} ({}): {e}", t.family, t.table),
                    })?;
                progress.wrote_row();
            }
        }
        tx.commit().await?;
        Ok(ImportWrite::Written)
    }
}
