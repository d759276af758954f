//! Evaluation of parsed checks against credentials and a target.
//!
//! The semantics are oslo.policy's `_checks` module:
//!
//! - `%(key)s` is looked up in the target; a missing key makes the check
//!   false (never an error). Keystone flattens the target dict, so only
//!   leaves can be substituted; we accept both nested JSON
//!   (`{"target": {"user": {"id": ..}}}`) and flat dotted keys
//!   (`{"target.user.id": ..}`).
//! - Values compare as Python's `str()` renders them: `null` is `None`,
//!   booleans are `True` / `False`, numbers are decimal.
//! - `role:` compares case-insensitively; everything else compares exactly.
//!
//! Comparisons stream the rendered value into a comparing [`fmt::Write`]
//! sink, so a check never builds a `String`.

use std::fmt::{self, Write};

use serde_json::Value;
use tracing::{debug, warn};

use super::enforcer::Rule;
use super::parser::{Check, CredAttr, Left, Piece, RuleTarget, Template};
use super::Credentials;

/// How many `rule:` references deep evaluation may go. Keystone's deepest
/// chain is 3; the limit bounds stack use even for a hostile policy file.
pub(crate) const MAX_RULE_DEPTH: usize = 16;

/// One evaluation: the rule table plus the request's credentials and target.
pub(crate) struct Evaluator<'a> {
    pub(crate) rules: &'a [Rule],
    pub(crate) creds: &'a Credentials,
    pub(crate) target: &'a Value,
}

impl Evaluator<'_> {
    pub(crate) fn eval(&self, check: &Check, depth: usize) -> bool {
        match check {
            Check::True => true,
            Check::False => false,
            Check::Not(inner) => !self.eval(inner, depth),
            Check::And(items) => items.iter().all(|c| self.eval(c, depth)),
            Check::Or(items) => items.iter().any(|c| self.eval(c, depth)),
            Check::Rule(r) => match r.target {
                RuleTarget::Index(i) => match self.rules.get(i) {
                    Some(rule) if depth < MAX_RULE_DEPTH => self.eval(&rule.check, depth + 1),
                    Some(_) => {
                        warn!(rule = %r.name, "policy: rule references nested too deeply; treating as false");
                        false
                    }
                    None => false,
                },
                // Both were reported as warnings when the policy was loaded.
                RuleTarget::Unknown => {
                    debug!(rule = %r.name, "policy: reference to unknown rule is false");
                    false
                }
                RuleTarget::Cycle => {
                    debug!(rule = %r.name, "policy: reference into a rule cycle is false");
                    false
                }
            },
            Check::Role(t) => self
                .creds
                .roles
                .iter()
                .any(|role| template_eq(t, self.target, role, true)),
            Check::Generic { left, right } => match left {
                Left::Literal(lit) => template_eq(right, self.target, lit, false),
                Left::Cred(attr) => match cred_value(self.creds, attr) {
                    CredValue::Missing => false,
                    CredValue::Null => template_eq(right, self.target, "None", false),
                    CredValue::Str(s) => template_eq(right, self.target, s, false),
                    CredValue::Bool(b) => {
                        let (py, num) = if b { ("True", "1") } else { ("False", "0") };
                        template_eq(right, self.target, py, false)
                            || template_eq(right, self.target, num, false)
                    }
                    CredValue::List(items) => items
                        .iter()
                        .any(|s| template_eq(right, self.target, s, false)),
                },
            },
        }
    }
}

/// A credential attribute's value as oslo.policy would see it.
enum CredValue<'a> {
    /// Not in the credentials at all: the check is false.
    Missing,
    /// Present but `None` (oslo.context always sets its keys): renders `None`.
    Null,
    Str(&'a str),
    /// Renders `True` / `False`; `1` / `0` also match, so Keystone's
    /// `is_admin:1` means what it says.
    Bool(bool),
    /// Matches if any element matches, as oslo walks lists.
    List(&'a [String]),
}

fn cred_value<'a>(c: &'a Credentials, attr: &CredAttr) -> CredValue<'a> {
    // Top-level oslo.context keys are always present (possibly None); the
    // `token.*` paths come from the rendered token, which omits what the
    // token does not have.
    fn top(v: &Option<String>) -> CredValue<'_> {
        // Keystone turns an empty domain_id into None; empty ids are never
        // real, so do the same for all of them.
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map_or(CredValue::Null, CredValue::Str)
    }
    fn token(v: &Option<String>) -> CredValue<'_> {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map_or(CredValue::Missing, CredValue::Str)
    }
    let system_all = c.system_scope.as_deref() == Some("all");
    match attr {
        CredAttr::UserId => top(&c.user_id),
        CredAttr::UserDomainId => top(&c.user_domain_id),
        CredAttr::ProjectId => top(&c.project_id),
        CredAttr::ProjectDomainId => top(&c.project_domain_id),
        CredAttr::DomainId => top(&c.domain_id),
        CredAttr::SystemScope => top(&c.system_scope),
        CredAttr::System => token(&c.system_scope),
        CredAttr::IsAdmin => CredValue::Bool(c.is_admin),
        CredAttr::Roles | CredAttr::TokenRolesName => CredValue::List(&c.roles),
        CredAttr::TokenUserId => token(&c.user_id),
        CredAttr::TokenUserDomainId => token(&c.user_domain_id),
        CredAttr::TokenProjectId => token(&c.project_id),
        CredAttr::TokenProjectDomainId if token_has(&c.project_id) => token(&c.project_domain_id),
        CredAttr::TokenDomainId => token(&c.domain_id),
        CredAttr::TokenSystemAll if system_all => CredValue::Bool(true),
        CredAttr::TokenProjectDomainId | CredAttr::TokenSystemAll | CredAttr::Unknown(_) => {
            CredValue::Missing
        }
    }
}

fn token_has(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.is_empty())
}

/// Does the template, rendered against `target`, equal `expected`?
/// False if a substituted key is missing (oslo's `KeyError` -> False).
fn template_eq(t: &Template, target: &Value, expected: &str, fold: bool) -> bool {
    if let Some(lit) = t.as_literal() {
        return if fold {
            eq_fold(lit, expected)
        } else {
            lit == expected
        };
    }
    if fold {
        let mut sink = FoldSink {
            expected: expected.chars().flat_map(char::to_lowercase),
        };
        render(t, target, &mut sink) && sink.expected.next().is_none()
    } else {
        let mut sink = ExactSink { rest: expected };
        render(t, target, &mut sink) && sink.rest.is_empty()
    }
}

/// Python's `a.lower() == b.lower()` without allocating.
fn eq_fold(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// Writes the template into `sink`; false if a key is missing or the sink
/// already saw a mismatch.
fn render<W: Write>(t: &Template, target: &Value, sink: &mut W) -> bool {
    t.pieces.iter().all(|piece| match piece {
        Piece::Text(text) => sink.write_str(text).is_ok(),
        Piece::Var(path) => match lookup(target, path) {
            Some(value) => write_python_str(sink, value),
            None => false,
        },
    })
}

/// Writes `str(value)` as Python would; false for values that cannot
/// match (arrays, which Keystone never substitutes) or on mismatch.
fn write_python_str<W: Write>(sink: &mut W, value: &Value) -> bool {
    match value {
        Value::String(s) => sink.write_str(s).is_ok(),
        Value::Bool(true) => sink.write_str("True").is_ok(),
        Value::Bool(false) => sink.write_str("False").is_ok(),
        Value::Null => sink.write_str("None").is_ok(),
        Value::Number(n) => write!(sink, "{n}").is_ok(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// Finds a leaf for the dotted `path`, trying the whole path as a key
/// first (flattened targets) and then every split point (nested targets).
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let obj = value.as_object()?;
    if let Some(found) = obj.get(path).filter(|v| !v.is_object()) {
        return Some(found);
    }
    path.match_indices('.').find_map(|(at, _)| {
        obj.get(&path[..at])
            .and_then(|child| lookup(child, &path[at + 1..]))
    })
}

/// Compares what is written against a string, exactly.
struct ExactSink<'a> {
    rest: &'a str,
}

impl Write for ExactSink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.rest = self.rest.strip_prefix(s).ok_or(fmt::Error)?;
        Ok(())
    }
}

/// Compares what is written against a (lower-cased) character stream.
struct FoldSink<I> {
    expected: I,
}

impl<I: Iterator<Item = char>> Write for FoldSink<I> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars().flat_map(char::to_lowercase) {
            if self.expected.next() != Some(c) {
                return Err(fmt::Error);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parser::parse;
    use serde_json::json;

    fn allows(rule: &str, creds: &Credentials, target: &Value) -> bool {
        let check = parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
        Evaluator {
            rules: &[],
            creds,
            target,
        }
        .eval(&check, 0)
    }

    fn member() -> Credentials {
        Credentials {
            user_id: Some("u1".into()),
            user_domain_id: Some("default".into()),
            project_id: Some("p1".into()),
            project_domain_id: Some("default".into()),
            roles: vec!["Member".into(), "reader".into()],
            ..Default::default()
        }
    }

    #[test]
    fn role_is_case_insensitive() {
        let c = member();
        let t = json!({});
        assert!(allows("role:member", &c, &t));
        assert!(allows("role:MEMBER", &c, &t));
        assert!(!allows("role:admin", &c, &t));
        assert!(allows(
            "role:%(target.role)s",
            &c,
            &json!({"target": {"role": "READER"}})
        ));
        assert!(!allows("role:%(target.role)s", &c, &t));
    }

    #[test]
    fn operators() {
        let c = member();
        let t = json!({});
        assert!(allows("role:admin or role:member", &c, &t));
        assert!(!allows("role:admin and role:member", &c, &t));
        assert!(allows("not role:admin", &c, &t));
        assert!(!allows("not (role:admin or role:member)", &c, &t));
        // or binds looser than and: true or (false and false)
        assert!(allows("role:member or role:admin and role:nope", &c, &t));
        // (true or false) and false
        assert!(!allows("(role:member or role:admin) and role:nope", &c, &t));
        assert!(allows("@", &c, &t));
        assert!(!allows("!", &c, &t));
        assert!(allows("", &c, &t));
        assert!(!allows("not @", &c, &t));
    }

    #[test]
    fn substitutions_compare_as_strings() {
        let c = member();
        let nested = json!({"target": {"user": {"id": "u1"}}, "user_id": "u1"});
        assert!(allows("user_id:%(target.user.id)s", &c, &nested));
        assert!(allows("user_id:%(user_id)s", &c, &nested));
        let flat = json!({"target.user.id": "u1"});
        assert!(allows("user_id:%(target.user.id)s", &c, &flat));
        let other = json!({"target": {"user": {"id": "u2"}}});
        assert!(!allows("user_id:%(target.user.id)s", &c, &other));
        // Text around the substitution.
        let t = json!({"x": "1"});
        assert!(allows("user_id:u%(x)s", &c, &t));
        assert!(!allows("user_id:u%(x)sx", &c, &t));
        // A substituted object is not a leaf.
        assert!(!allows("user_id:%(target.user)s", &c, &nested));
    }

    #[test]
    fn missing_target_key_is_false_even_under_not() {
        let c = member();
        let t = json!({"target": {}});
        assert!(!allows("user_id:%(target.user.id)s", &c, &t));
        assert!(allows("not user_id:%(target.user.id)s", &c, &t));
        assert!(!allows("'x':%(nothing)s", &c, &t));
    }

    #[test]
    fn literals_against_target() {
        let c = member();
        let t = json!({"target": {"role": {"name": "member", "domain_id": null}, "enabled": true, "n": 7}});
        assert!(allows("'member':%(target.role.name)s", &c, &t));
        assert!(allows("\"member\":%(target.role.name)s", &c, &t));
        assert!(!allows("'admin':%(target.role.name)s", &c, &t));
        assert!(allows("None:%(target.role.domain_id)s", &c, &t));
        assert!(allows("True:%(target.enabled)s", &c, &t));
        assert!(!allows("False:%(target.enabled)s", &c, &t));
        assert!(allows("7:%(target.n)s", &c, &t));
        // Missing key: oslo's KeyError, so false rather than "None".
        assert!(!allows("None:%(target.role.missing)s", &c, &t));
    }

    #[test]
    fn credential_attributes() {
        let mut c = member();
        let t = json!({});
        assert!(allows("project_id:p1", &c, &t));
        assert!(allows("user_domain_id:default", &c, &t));
        // Unset oslo.context keys render as None.
        assert!(allows("domain_id:None", &c, &t));
        assert!(allows("system_scope:None", &c, &t));
        assert!(!allows("system:None", &c, &t));
        assert!(allows("token.project.domain.id:default", &c, &t));
        assert!(!allows("token.domain.id:None", &c, &t));
        assert!(allows("roles:Member", &c, &t));
        assert!(
            !allows("roles:member", &c, &t),
            "generic checks are case-sensitive"
        );
        assert!(!allows("is_admin:1", &c, &t));
        assert!(allows("is_admin:False", &c, &t));
        assert!(!allows("token.project.name:x", &c, &t));
        c.is_admin = true;
        assert!(allows("is_admin:1", &c, &t));
        assert!(allows("is_admin:True", &c, &t));
        c.system_scope = Some("all".into());
        c.project_id = None;
        assert!(allows("system_scope:all", &c, &t));
        assert!(allows("system:all", &c, &t));
        assert!(allows("token.system.all:True", &c, &t));
        assert!(!allows("token.project.domain.id:default", &c, &t));
    }

    #[test]
    fn rule_references_follow_the_table() {
        use crate::policy::enforcer::Rule;
        use crate::policy::parser::{RuleRef, RuleTarget};
        use std::borrow::Cow;
        let rules = vec![Rule {
            name: "r".into(),
            check_str: Cow::Borrowed("role:member"),
            check: Check::Role(Template {
                pieces: vec![Piece::Text("member".into())],
            }),
            scope_types: &[],
            registered: false,
            overridden: false,
            deprecated_for_removal: false,
        }];
        let c = member();
        let t = json!({});
        let ev = Evaluator {
            rules: &rules,
            creds: &c,
            target: &t,
        };
        let reference = |target| {
            Check::Rule(RuleRef {
                name: "r".into(),
                target,
            })
        };
        assert!(ev.eval(&reference(RuleTarget::Index(0)), 0));
        assert!(!ev.eval(&reference(RuleTarget::Index(0)), MAX_RULE_DEPTH));
        assert!(!ev.eval(&reference(RuleTarget::Index(7)), 0));
        assert!(!ev.eval(&reference(RuleTarget::Unknown), 0));
        assert!(!ev.eval(&reference(RuleTarget::Cycle), 0));
    }

    #[test]
    fn fold_sink_handles_multichar_lowercase() {
        assert!(eq_fold("İ", "i\u{307}"));
        let t = Template {
            pieces: vec![Piece::Var("r".into())],
        };
        assert!(template_eq(&t, &json!({"r": "ADMIN"}), "Admin", true));
        assert!(!template_eq(&t, &json!({"r": "ADMIN"}), "Admins", true));
        assert!(!template_eq(&t, &json!({"r": "ADMINS"}), "Admin", true));
    }
}
