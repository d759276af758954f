//! The rule table and the enforcement entry point.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;
use tracing::{debug, warn};

use super::defaults::DEFAULT_RULES;
use super::eval::Evaluator;
use super::parser::{self, Check, CredAttr, Left, RuleRef, RuleTarget};
use super::{Credentials, PolicyError, ScopeType};

/// A parsed rule. Scope types always come from Keystone's registered
/// default: an operator's file changes check strings, never scopes.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) name: String,
    pub(crate) check_str: Cow<'static, str>,
    pub(crate) check: Check,
    pub(crate) scope_types: &'static [ScopeType],
    /// One of Keystone's registered rules (as opposed to an operator's own
    /// helper rule).
    pub(crate) registered: bool,
    /// The check string comes from the policy file.
    pub(crate) overridden: bool,
    pub(crate) deprecated_for_removal: bool,
}

/// A read-only view of one rule, for documentation and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleView<'a> {
    pub name: &'a str,
    pub check_str: &'a str,
    /// Empty means any scope.
    pub scope_types: &'static [ScopeType],
    /// Keystone registers this rule (it is in [`super::DEFAULT_RULES`]).
    pub registered: bool,
    /// The policy file replaced the default check string.
    pub overridden: bool,
}

/// Keystone's policy, parsed: defaults plus an operator's overrides.
///
/// Build it once at startup and share it (it is `Send + Sync` and
/// read-only); [`Enforcer::enforce`] is called on every protected request.
#[derive(Debug, Clone)]
pub struct Enforcer {
    pub(crate) rules: Vec<Rule>,
    index: HashMap<String, usize>,
}

/// A rule value from a policy file: oslo accepts a check string or the
/// legacy list-of-lists form.
enum RawRule {
    Text(String),
    List(Vec<Vec<String>>),
}

const DEFAULTS_ORIGIN: &str = "built-in default policy";

impl Enforcer {
    /// Keystone's in-code defaults, with no policy file.
    pub fn with_defaults() -> Self {
        match Self::build(Vec::new(), DEFAULTS_ORIGIN) {
            Ok(enforcer) => enforcer,
            // The defaults are covered by tests; should one ever fail to
            // parse, deny that rule rather than take the server down.
            Err(e) => {
                tracing::error!(error = %e, "policy: built-in defaults do not parse");
                Self::build_lenient()
            }
        }
    }

    /// Defaults overlaid with the rules of an oslo.policy file (YAML, or
    /// JSON when the name ends in `.json`; YAML also reads JSON).
    ///
    /// Keystone treats a missing `[oslo_policy] policy_file` as "defaults
    /// only"; callers that want that should check for the file first.
    pub fn load_file(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_owned(),
            source,
        })?;
        let json = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
        let origin = format!("policy file {}", path.display());
        Self::load_text(&text, json, &origin)
    }

    /// Defaults overlaid with policy-file text (YAML, which includes JSON).
    pub fn from_policy_text(text: &str) -> Result<Self, PolicyError> {
        Self::load_text(text, false, "policy text")
    }

    fn load_text(text: &str, json: bool, origin: &str) -> Result<Self, PolicyError> {
        let format_err = |message: String| PolicyError::Format {
            origin: origin.to_owned(),
            message,
        };
        let doc: Option<BTreeMap<String, Value>> = if text.trim().is_empty() {
            None
        } else if json {
            serde_json::from_str(text)
                .map_err(|e| format_err(format!("invalid JSON policy: {e}")))?
        } else {
            serde_yaml_ng::from_str(text)
                .map_err(|e| format_err(format!("invalid YAML policy: {e}")))?
        };
        let mut overrides = Vec::new();
        for (name, value) in doc.unwrap_or_default() {
            let raw = raw_rule(value).map_err(|message| PolicyError::Parse {
                origin: origin.to_owned(),
                rule: name.clone(),
                message,
            })?;
            overrides.push((name, raw));
        }
        Self::build(overrides, origin)
    }

    /// Applies the rule `action` (e.g. `identity:validate_token`) to the
    /// caller's credentials and the target of the request.
    ///
    /// The order is Keystone's: an unknown (or deprecated-for-removal)
    /// action is forbidden, the `admin_token` bypasses RBAC, then the
    /// rule's `scope_types` and its check string must both pass.
    pub fn enforce(
        &self,
        action: &str,
        creds: &Credentials,
        target: &Value,
    ) -> Result<(), PolicyError> {
        let forbidden = || PolicyError::Forbidden {
            action: action.to_owned(),
        };
        let Some(rule) = self.index.get(action).and_then(|&i| self.rules.get(i)) else {
            warn!(%action, "RBAC: unknown enforcement action; rejecting as forbidden");
            return Err(forbidden());
        };
        if !rule.registered || rule.deprecated_for_removal {
            warn!(%action, "RBAC: not an enforceable Keystone action; rejecting as forbidden");
            return Err(forbidden());
        }
        if creds.is_admin {
            warn!(%action, "RBAC: Bypassing authorization");
            return Ok(());
        }
        let scope = creds.scope_type();
        if !rule.scope_types.is_empty() && !rule.scope_types.contains(&scope) {
            debug!(%action, %scope, "RBAC: token scope not allowed by scope_types");
            return Err(forbidden());
        }
        let evaluator = Evaluator {
            rules: &self.rules,
            creds,
            target,
        };
        if evaluator.eval(&rule.check, 0) {
            debug!(%action, "RBAC: Authorization granted");
            Ok(())
        } else {
            debug!(%action, "RBAC: check string denied");
            Err(forbidden())
        }
    }

    /// Every rule: Keystone's defaults in registration order, then the
    /// policy file's own extra rules.
    pub fn rules(&self) -> impl Iterator<Item = RuleView<'_>> + '_ {
        self.rules.iter().map(|r| RuleView {
            name: &r.name,
            check_str: &r.check_str,
            scope_types: r.scope_types,
            registered: r.registered,
            overridden: r.overridden,
        })
    }

    /// Looks one rule up by name.
    pub fn rule(&self, name: &str) -> Option<RuleView<'_>> {
        let r = self.rules.get(*self.index.get(name)?)?;
        Some(RuleView {
            name: &r.name,
            check_str: &r.check_str,
            scope_types: r.scope_types,
            registered: r.registered,
            overridden: r.overridden,
        })
    }

    fn build(overrides: Vec<(String, RawRule)>, origin: &str) -> Result<Self, PolicyError> {
        let mut rules = Vec::with_capacity(DEFAULT_RULES.len() + overrides.len());
        for d in DEFAULT_RULES {
            let check = parser::parse(d.check_str).map_err(|message| PolicyError::Parse {
                origin: DEFAULTS_ORIGIN.to_owned(),
                rule: d.name.to_owned(),
                message,
            })?;
            rules.push(Rule {
                name: d.name.to_owned(),
                check_str: Cow::Borrowed(d.check_str),
                check,
                scope_types: d.scope_types,
                registered: true,
                overridden: false,
                deprecated_for_removal: d.deprecated_for_removal,
            });
        }
        let mut index: HashMap<String, usize> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        for (name, raw) in overrides {
            let parse_err = |message| PolicyError::Parse {
                origin: origin.to_owned(),
                rule: name.clone(),
                message,
            };
            let (check, check_str) = match raw {
                RawRule::Text(text) => (parser::parse(&text).map_err(parse_err)?, text),
                RawRule::List(list) => (
                    parser::parse_list(&list).map_err(parse_err)?,
                    list_to_text(&list),
                ),
            };
            if let Some(&i) = index.get(&name) {
                let rule = &mut rules[i];
                rule.check = check;
                rule.check_str = Cow::Owned(check_str);
                rule.overridden = true;
            } else {
                warn!(rule = %name, %origin, "policy: rule is not one of Keystone's; loaded, but no API enforces it directly");
                index.insert(name.clone(), rules.len());
                rules.push(Rule {
                    name,
                    check_str: Cow::Owned(check_str),
                    check,
                    scope_types: &[],
                    registered: false,
                    overridden: true,
                    deprecated_for_removal: false,
                });
            }
        }
        link(&mut rules, &index, origin);
        Ok(Self { rules, index })
    }

    /// Defaults with any unparsable rule replaced by "deny"; only reached
    /// if a built-in rule is broken.
    fn build_lenient() -> Self {
        let rules: Vec<Rule> = DEFAULT_RULES
            .iter()
            .map(|d| Rule {
                name: d.name.to_owned(),
                check_str: Cow::Borrowed(d.check_str),
                check: parser::parse(d.check_str).unwrap_or(Check::False),
                scope_types: d.scope_types,
                registered: true,
                overridden: false,
                deprecated_for_removal: d.deprecated_for_removal,
            })
            .collect();
        let index = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        let mut enforcer = Self { rules, index };
        link(&mut enforcer.rules, &enforcer.index, DEFAULTS_ORIGIN);
        enforcer
    }
}

impl Default for Enforcer {
    /// Same as [`Enforcer::with_defaults`].
    fn default() -> Self {
        Self::with_defaults()
    }
}

fn raw_rule(value: Value) -> Result<RawRule, String> {
    match value {
        Value::String(s) => Ok(RawRule::Text(s)),
        Value::Array(outer) => outer
            .into_iter()
            .map(|inner| match inner {
                Value::String(s) => Ok(vec![s]),
                Value::Array(items) => items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s),
                        other => Err(format!("list items must be strings, got {other}")),
                    })
                    .collect(),
                other => Err(format!("list items must be strings or lists, got {other}")),
            })
            .collect::<Result<_, _>>()
            .map(RawRule::List),
        Value::Null => Err("no check string (write \"\" or \"@\" to allow everyone)".to_owned()),
        other => Err(format!("expected a check string, got {other}")),
    }
}

/// Renders the legacy list form as the equivalent check string, for
/// [`Enforcer::rules`].
fn list_to_text(list: &[Vec<String>]) -> String {
    list.iter()
        .filter(|inner| !inner.is_empty())
        .map(|inner| format!("({})", inner.join(" and ")))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Resolves `rule:` references to indices and cuts every reference into a
/// cycle, so evaluation always terminates. Problems are logged once here.
fn link(rules: &mut [Rule], index: &HashMap<String, usize>, origin: &str) {
    for rule in rules.iter_mut() {
        let owner = rule.name.as_str();
        for_each_ref(&mut rule.check, &mut |r| {
            r.target = match index.get(&r.name) {
                Some(&i) => RuleTarget::Index(i),
                None => {
                    warn!(rule = %owner, missing = %r.name, %origin, "policy: reference to an undefined rule is always false");
                    RuleTarget::Unknown
                }
            };
        });
        for_each_unknown_attr(&rule.check, &mut |attr| {
            warn!(rule = %owner, attribute = %attr, %origin, "policy: unknown credential attribute; that check is always false");
        });
    }
    let edges: Vec<Vec<usize>> = rules
        .iter_mut()
        .map(|rule| {
            let mut out = Vec::new();
            for_each_ref(&mut rule.check, &mut |r| {
                if let RuleTarget::Index(i) = r.target {
                    out.push(i);
                }
            });
            out
        })
        .collect();
    let cyclic: Vec<bool> = (0..rules.len()).map(|v| reaches(&edges, v)).collect();
    for (rule, _) in rules.iter().zip(&cyclic).filter(|(_, c)| **c) {
        warn!(rule = %rule.name, %origin, "policy: rule is part of a rule: cycle; references to it are always false");
    }
    for rule in rules.iter_mut() {
        for_each_ref(&mut rule.check, &mut |r| {
            if let RuleTarget::Index(i) = r.target {
                if cyclic.get(i).copied().unwrap_or(false) {
                    r.target = RuleTarget::Cycle;
                }
            }
        });
    }
}

/// Can `start` reach itself through `rule:` references?
fn reaches(edges: &[Vec<usize>], start: usize) -> bool {
    let mut seen = vec![false; edges.len()];
    let mut stack: Vec<usize> = edges.get(start).cloned().unwrap_or_default();
    while let Some(v) = stack.pop() {
        if v == start {
            return true;
        }
        if let Some(slot) = seen.get_mut(v) {
            if !*slot {
                *slot = true;
                stack.extend(edges.get(v).into_iter().flatten().copied());
            }
        }
    }
    false
}

fn for_each_ref(check: &mut Check, f: &mut impl FnMut(&mut RuleRef)) {
    match check {
        Check::Rule(r) => f(r),
        Check::Not(inner) => for_each_ref(inner, f),
        Check::And(items) | Check::Or(items) => {
            for item in items {
                for_each_ref(item, f);
            }
        }
        Check::True | Check::False | Check::Role(_) | Check::Generic { .. } => {}
    }
}

fn for_each_unknown_attr(check: &Check, f: &mut impl FnMut(&str)) {
    match check {
        Check::Generic {
            left: Left::Cred(CredAttr::Unknown(attr)),
            ..
        } => f(attr),
        Check::Not(inner) => for_each_unknown_attr(inner, f),
        Check::And(items) | Check::Or(items) => {
            for item in items {
                for_each_unknown_attr(item, f);
            }
        }
        _ => {}
    }
}
