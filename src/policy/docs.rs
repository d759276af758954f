//! Renders the default rule table for `docs/policy.md`, so the document is
//! generated from the same data the enforcer uses (a test keeps it current).

use std::fmt::Write;

use super::defaults::DEFAULT_RULES;
use super::ScopeType;

/// The default policy as a Markdown table: rule, check string, scope
/// types and the API operations each rule protects.
pub fn defaults_markdown_table() -> String {
    let mut out =
        String::from("| Rule | Check string | Scope types | Operations |\n|---|---|---|---|\n");
    for rule in DEFAULT_RULES {
        let check = if rule.check_str.is_empty() {
            "`\"\"` (anyone)".to_owned()
        } else {
            format!("`{}`", rule.check_str.replace('|', "\\|"))
        };
        let mut name = format!("`{}`", rule.name);
        if rule.deprecated_for_removal {
            name.push_str(" (deprecated for removal: always 403)");
        }
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {name} | {check} | {} | {} |",
            scopes(rule.scope_types),
            operations(rule.operations),
        );
    }
    out
}

fn scopes(scope_types: &[ScopeType]) -> String {
    if scope_types.is_empty() {
        return "any".to_owned();
    }
    scope_types
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /x` and `HEAD /x` are listed as `GET, HEAD /x`.
fn operations(ops: &[&str]) -> String {
    let mut merged: Vec<(Vec<&str>, &str)> = Vec::new();
    for op in ops {
        let (method, path) = op.split_once(' ').unwrap_or((op, ""));
        match merged.iter_mut().find(|(_, p)| *p == path) {
            Some((methods, _)) => methods.push(method),
            None => merged.push((vec![method], path)),
        }
    }
    merged
        .iter()
        .map(|(methods, path)| format!("`{} {}`", methods.join(", "), path))
        .collect::<Vec<_>>()
        .join("<br>")
}
