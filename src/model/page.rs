//! Paged listings (Keystone's `limit` and `marker`) and the inexact text filters.

/// What page a paged listing wants: entries with an id after `marker`, at most
/// `limit` of them (`None`: all). The limit arrives already capped by
/// `[DEFAULT] max_db_limit` and defaulted from the `list_limit` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub marker: Option<String>,
    pub limit: Option<usize>,
}

/// One page: the entries, and whether more follow the last one.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

impl<T> Page<T> {
    /// Trims a result read with one entry more than `limit` (see `Select::page`).
    pub fn from_overfetch(mut items: Vec<T>, limit: Option<usize>) -> Self {
        let more = limit.is_some_and(|l| items.len() > l);
        if let Some(l) = limit {
            items.truncate(l);
        }
        Page { items, more }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

/// `name__contains=x`, `name__istartswith=x`, ...
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextMatch {
    pub op: TextOp,
    pub value: String,
    pub case_insensitive: bool,
}

impl TextMatch {
    /// The same test as the SQL filter, for listings filtered in memory.
    pub fn matches(&self, value: &str) -> bool {
        let (hay, needle) = if self.case_insensitive {
            (value.to_lowercase(), self.value.to_lowercase())
        } else {
            (value.to_string(), self.value.clone())
        };
        match self.op {
            TextOp::Contains => hay.contains(&needle),
            TextOp::StartsWith => hay.starts_with(&needle),
            TextOp::EndsWith => hay.ends_with(&needle),
        }
    }
}

/// Keystone's comparison operators for `password_expires_at` filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Lt,
    Lte,
    Gt,
    Gte,
    Eq,
    Neq,
}

impl Comparison {
    /// Keystone's spelling (`lt`, `lte`, ...).
    pub fn parse(op: &str) -> Option<Self> {
        Some(match op {
            "lt" => Comparison::Lt,
            "lte" => Comparison::Lte,
            "gt" => Comparison::Gt,
            "gte" => Comparison::Gte,
            "eq" => Comparison::Eq,
            "neq" => Comparison::Neq,
            _ => return None,
        })
    }

    pub fn sql(self) -> &'static str {
        match self {
            Comparison::Lt => "<",
            Comparison::Lte => "<=",
            Comparison::Gt => ">",
            Comparison::Gte => ">=",
            Comparison::Eq => "=",
            Comparison::Neq => "<>",
        }
    }
}
