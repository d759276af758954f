//! One `SELECT` builder for the listings whose filters vary: conditions numbered as
//! they are added, Keystone's inexact name filters, and keyset pagination by id.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

use super::Backend;
use crate::model::{PageRequest, TextMatch, TextOp};

#[derive(Clone, Debug)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// `<base> WHERE 1 = 1 AND ...`, then optionally `ORDER BY`/`LIMIT`.
pub(crate) struct Select {
    sql: String,
    binds: Vec<Bind>,
    backend: Backend,
}

impl Select {
    /// `base` is everything up to the conditions, e.g. `SELECT ... FROM users u`.
    pub(crate) fn new(base: impl Into<String>, backend: Backend) -> Self {
        let mut sql = base.into();
        sql.push_str(" WHERE 1 = 1");
        Select {
            sql,
            binds: Vec::new(),
            backend,
        }
    }

    /// The next placeholder, bound to `value`.
    pub(crate) fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// ` AND <condition>`; `{}` placeholders in `condition` are filled by `values`.
    pub(crate) fn and(&mut self, condition: &str, values: Vec<Bind>) -> &mut Self {
        let mut out = String::new();
        let mut parts = condition.split("{}");
        out.push_str(parts.next().unwrap_or_default());
        let mut values = values.into_iter();
        for part in parts {
            if let Some(v) = values.next() {
                let p = self.bind(v);
                out.push_str(&p);
            }
            out.push_str(part);
        }
        self.sql.push_str(" AND ");
        self.sql.push_str(&out);
        self
    }

    pub(crate) fn eq(&mut self, column: &str, value: Bind) -> &mut Self {
        self.and(&format!("{column} = {{}}"), vec![value])
    }

    pub(crate) fn eq_opt_text(&mut self, column: &str, value: &Option<String>) -> &mut Self {
        if let Some(v) = value {
            self.eq(column, Bind::Text(v.clone()));
        }
        self
    }

    /// Keystone's `name__contains=x` and friends. Case-sensitive matching needs a
    /// function each backend spells differently (SQLite's LIKE folds ASCII case).
    pub(crate) fn text_match(&mut self, column: &str, m: &TextMatch) -> &mut Self {
        let (col, value) = if m.case_insensitive {
            (format!("lower({column})"), m.value.to_lowercase())
        } else {
            (column.to_string(), m.value.clone())
        };
        let p = self.bind(Bind::Text(value));
        let find = match self.backend {
            Backend::Sqlite => format!("instr({col}, {p})"),
            Backend::Postgres => format!("strpos({col}, {p})"),
        };
        let cond = match m.op {
            TextOp::Contains => format!("{find} > 0"),
            TextOp::StartsWith => format!("substr({col}, 1, length({p})) = {p}"),
            TextOp::EndsWith => format!(
                "length({col}) >= length({p}) AND substr({col}, length({col}) - length({p}) + 1) = {p}"
            ),
        };
        self.sql.push_str(&format!(" AND ({cond})"));
        self
    }

    /// Keystone's pagination: ordered by id, strictly after the marker, at most
    /// `limit` entries (one more is read to know whether another page follows).
    pub(crate) fn page(&mut self, id_column: &str, page: &PageRequest) -> &mut Self {
        if let Some(marker) = &page.marker {
            let p = self.bind(Bind::Text(marker.clone()));
            self.sql.push_str(&format!(" AND {id_column} > {p}"));
        }
        self.sql.push_str(&format!(" ORDER BY {id_column}"));
        if let Some(limit) = page.limit {
            self.sql
                .push_str(&format!(" LIMIT {}", limit.saturating_add(1)));
        }
        self
    }

    pub(crate) fn order_by(&mut self, order: &str) -> &mut Self {
        self.sql.push_str(&format!(" ORDER BY {order}"));
        self
    }

    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.sql);
        for b in &self.binds {
            q = match b {
                Bind::Text(t) => q.bind(t.as_str()),
                Bind::Int(v) => q.bind(*v),
                Bind::Bool(v) => q.bind(*v),
            };
        }
        q
    }
}
