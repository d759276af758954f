//! Behaviour tests for the enforcer: Keystone's defaults, scope types,
//! policy files, cycles and the generated documentation.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

use super::parser::{Check, RuleTarget};
use super::*;

// ---------------------------------------------------------------- personas

fn roles(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// `admin` on project `admin`; admin implies manager, member, reader.
fn project_admin() -> Credentials {
    Credentials {
        user_id: Some("admin".into()),
        user_domain_id: Some("default".into()),
        project_id: Some("p-admin".into()),
        project_domain_id: Some("default".into()),
        roles: roles(&["admin", "manager", "member", "reader"]),
        ..Default::default()
    }
}

fn system_admin() -> Credentials {
    Credentials {
        user_id: Some("admin".into()),
        user_domain_id: Some("default".into()),
        system_scope: Some("all".into()),
        roles: roles(&["admin", "manager", "member", "reader"]),
        ..Default::default()
    }
}

fn system_reader() -> Credentials {
    Credentials {
        user_id: Some("sysreader".into()),
        user_domain_id: Some("default".into()),
        system_scope: Some("all".into()),
        roles: roles(&["reader"]),
        ..Default::default()
    }
}

/// nova: `service` on project `service`.
fn service_user() -> Credentials {
    Credentials {
        user_id: Some("nova".into()),
        user_domain_id: Some("default".into()),
        project_id: Some("p-service".into()),
        project_domain_id: Some("default".into()),
        roles: roles(&["service"]),
        ..Default::default()
    }
}

/// demo: `member` on project `demo`.
fn member(user: &str) -> Credentials {
    Credentials {
        user_id: Some(user.into()),
        user_domain_id: Some("default".into()),
        project_id: Some("p-demo".into()),
        project_domain_id: Some("default".into()),
        roles: roles(&["member", "reader"]),
        ..Default::default()
    }
}

fn unscoped(user: &str) -> Credentials {
    Credentials {
        user_id: Some(user.into()),
        user_domain_id: Some("default".into()),
        ..Default::default()
    }
}

fn domain_user(domain: &str, role_names: &[&str]) -> Credentials {
    Credentials {
        user_id: Some(format!("{domain}-user")),
        user_domain_id: Some(domain.into()),
        domain_id: Some(domain.into()),
        roles: roles(role_names),
        ..Default::default()
    }
}

fn token_target(subject_user: &str) -> Value {
    json!({"target": {"token": {"user_id": subject_user, "user": {"domain": {"id": "default"}}}}})
}

fn allowed(e: &Enforcer, action: &str, creds: &Credentials, target: &Value) -> bool {
    match e.enforce(action, creds, target) {
        Ok(()) => true,
        Err(PolicyError::Forbidden { action: a }) => {
            assert_eq!(a, action);
            false
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

// ---------------------------------------------------------------- defaults

#[test]
fn defaults_are_complete_and_consistent() {
    assert_eq!(DEFAULT_RULES.len(), 203);
    let names: HashSet<_> = DEFAULT_RULES.iter().map(|r| r.name).collect();
    assert_eq!(names.len(), DEFAULT_RULES.len(), "duplicate rule names");
    let sources: HashSet<_> = DEFAULT_RULES.iter().map(|r| r.source).collect();
    assert_eq!(
        sources.len(),
        36,
        "one source per keystone/common/policies module"
    );

    let e = Enforcer::with_defaults();
    assert_eq!(e.rules().count(), DEFAULT_RULES.len());
    for (view, d) in e.rules().zip(DEFAULT_RULES) {
        assert_eq!(view.name, d.name);
        assert_eq!(view.check_str, d.check_str);
        assert!(view.registered && !view.overridden);
    }
    // Every default parses, and links without dangling or cyclic references.
    for rule in &e.rules {
        assert!(
            super::parser::parse(&rule.check_str).is_ok(),
            "{}",
            rule.name
        );
        assert_no_bad_refs(&rule.check, &rule.name);
    }
}

fn assert_no_bad_refs(check: &Check, owner: &str) {
    match check {
        Check::Rule(r) => assert!(
            matches!(r.target, RuleTarget::Index(_)),
            "{owner}: bad reference to {}",
            r.name
        ),
        Check::Generic {
            left: super::parser::Left::Cred(super::parser::CredAttr::Unknown(a)),
            ..
        } => panic!("{owner}: unknown credential attribute {a}"),
        Check::Not(inner) => assert_no_bad_refs(inner, owner),
        Check::And(items) | Check::Or(items) => {
            items.iter().for_each(|c| assert_no_bad_refs(c, owner))
        }
        _ => {}
    }
}

#[test]
fn token_rules_match_spec_5_3() {
    let e = Enforcer::with_defaults();
    let sdp = [ScopeType::System, ScopeType::Domain, ScopeType::Project];
    for (name, check) in [
        (
            "identity:validate_token",
            "rule:admin_required or (role:reader and system_scope:all) or rule:service_role or rule:token_subject",
        ),
        (
            "identity:check_token",
            "rule:admin_required or (role:reader and system_scope:all) or rule:token_subject",
        ),
        ("identity:revoke_token", "rule:admin_required or rule:token_subject"),
    ] {
        let rule = e.rule(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(rule.check_str, check, "{name}");
        assert_eq!(rule.scope_types, &sdp, "{name}");
    }
    assert_eq!(
        e.rule("admin_required").map(|r| r.check_str),
        Some("role:admin or is_admin:1")
    );
    assert_eq!(
        e.rule("service_role").map(|r| r.check_str),
        Some("role:service")
    );
    assert_eq!(
        e.rule("token_subject").map(|r| r.check_str),
        Some("user_id:%(target.token.user_id)s")
    );
    let revoke_events = e
        .rule("identity:list_revoke_events")
        .map(|r| (r.check_str, r.scope_types));
    // Keystone writes `rule:service_or_admin`; SPEC 5.3 shows its expansion.
    assert_eq!(
        revoke_events,
        Some((
            "rule:service_or_admin",
            &[ScopeType::System, ScopeType::Project][..]
        ))
    );
    assert_eq!(
        e.rule("service_or_admin").map(|r| r.check_str),
        Some("rule:admin_required or rule:service_role")
    );
}

#[test]
fn list_revoke_events_behaves_like_the_spec_string() {
    let keystone = Enforcer::with_defaults();
    let spec = Enforcer::from_policy_text(
        "identity:list_revoke_events: rule:admin_required or rule:service_role\n",
    )
    .unwrap();
    let t = json!({});
    for creds in [
        project_admin(),
        system_admin(),
        system_reader(),
        service_user(),
        member("demo"),
        unscoped("demo"),
        domain_user("d1", &["admin"]),
    ] {
        let a = "identity:list_revoke_events";
        assert_eq!(
            allowed(&keystone, a, &creds, &t),
            allowed(&spec, a, &creds, &t),
            "{creds:?}"
        );
    }
    let a = "identity:list_revoke_events";
    assert!(allowed(&keystone, a, &project_admin(), &t));
    assert!(allowed(&keystone, a, &service_user(), &t));
    assert!(!allowed(&keystone, a, &system_reader(), &t));
    assert!(!allowed(&keystone, a, &member("demo"), &t));
    // role:admin passes, but domain scope is not in [system, project].
    assert!(!allowed(&keystone, a, &domain_user("d1", &["admin"]), &t));
}

#[test]
fn token_rule_matrix() {
    let e = Enforcer::with_defaults();
    let demo_token = token_target("demo");
    // (who, creds, [validate, check, revoke])
    let cases: Vec<(&str, Credentials, [bool; 3])> = vec![
        ("project admin", project_admin(), [true, true, true]),
        ("system admin", system_admin(), [true, true, true]),
        (
            "domain admin",
            domain_user("d1", &["admin", "reader"]),
            [true, true, true],
        ),
        ("system reader", system_reader(), [true, true, false]),
        ("service user", service_user(), [true, false, false]),
        ("token subject", member("demo"), [true, true, true]),
        (
            "token subject, unscoped",
            unscoped("demo"),
            [true, true, true],
        ),
        ("other member", member("other"), [false, false, false]),
        ("other, unscoped", unscoped("other"), [false, false, false]),
        (
            "project reader",
            {
                let mut c = member("other");
                c.roles = roles(&["reader"]);
                c
            },
            [false, false, false],
        ),
        (
            "domain reader",
            domain_user("d1", &["reader"]),
            [false, false, false],
        ),
    ];
    for (who, creds, expected) in cases {
        for (action, want) in [
            "identity:validate_token",
            "identity:check_token",
            "identity:revoke_token",
        ]
        .into_iter()
        .zip(expected)
        {
            assert_eq!(
                allowed(&e, action, &creds, &demo_token),
                want,
                "{who} on {action}"
            );
        }
    }
}

#[test]
fn token_subject_needs_the_target() {
    let e = Enforcer::with_defaults();
    // No subject in the target: only the role-based clauses can pass.
    assert!(!allowed(
        &e,
        "identity:validate_token",
        &member("demo"),
        &json!({})
    ));
    assert!(allowed(
        &e,
        "identity:validate_token",
        &service_user(),
        &json!({})
    ));
}

#[test]
fn forbidden_message_is_keystones() {
    let e = Enforcer::with_defaults();
    let err = e
        .enforce(
            "identity:validate_token",
            &member("other"),
            &token_target("demo"),
        )
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("You are not authorized to perform the requested action: identity:validate_token.")
    );
}

#[test]
fn unknown_and_retired_actions_fail_closed() {
    let e = Enforcer::with_defaults();
    let t = json!({});
    assert!(!allowed(&e, "identity:no_such_action", &system_admin(), &t));
    assert!(!allowed(&e, "", &system_admin(), &t));
    // Deprecated for removal: Keystone answers 403 to everyone.
    assert!(!allowed(
        &e,
        "identity:revocation_list",
        &system_admin(),
        &t
    ));
    let admin_token = Credentials {
        is_admin: true,
        ..Default::default()
    };
    assert!(!allowed(&e, "identity:no_such_action", &admin_token, &t));
    assert!(!allowed(&e, "identity:revocation_list", &admin_token, &t));
}

#[test]
fn admin_token_bypasses_rbac() {
    let e = Enforcer::with_defaults();
    let creds = Credentials {
        is_admin: true,
        ..Default::default()
    };
    assert!(allowed(&e, "identity:create_domain", &creds, &json!({})));
    assert!(allowed(
        &e,
        "identity:revoke_token",
        &creds,
        &token_target("demo")
    ));
}

#[test]
fn enforcer_is_shareable_and_defaults_by_default() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Enforcer>();
    let e = Enforcer::default();
    assert_eq!(e.rules().count(), DEFAULT_RULES.len());
}

// ---------------------------------------------------------------- scope types

#[test]
fn scope_type_derivation() {
    assert_eq!(system_reader().scope_type(), ScopeType::System);
    assert_eq!(domain_user("d", &[]).scope_type(), ScopeType::Domain);
    assert_eq!(member("x").scope_type(), ScopeType::Project);
    assert_eq!(unscoped("x").scope_type(), ScopeType::Project);
    let mut both = domain_user("d", &[]);
    both.system_scope = Some("all".into());
    assert_eq!(both.scope_type(), ScopeType::System);
    let mut empty = domain_user("d", &[]);
    empty.domain_id = Some(String::new());
    assert_eq!(empty.scope_type(), ScopeType::Project);
}

#[test]
fn scope_types_are_enforced() {
    let e = Enforcer::with_defaults();
    let t = json!({});
    // create_domain: rule:admin_required, scope [system, project].
    assert!(allowed(&e, "identity:create_domain", &system_admin(), &t));
    assert!(allowed(&e, "identity:create_domain", &project_admin(), &t));
    assert!(!allowed(
        &e,
        "identity:create_domain",
        &domain_user("d1", &["admin"]),
        &t
    ));
    // create_application_credential: user_id:%(user_id)s, scope [project].
    let mut sys = system_reader();
    sys.user_id = Some("u1".into());
    let t = json!({"user_id": "u1"});
    assert!(!allowed(
        &e,
        "identity:create_application_credential",
        &sys,
        &t
    ));
    assert!(allowed(
        &e,
        "identity:create_application_credential",
        &member("u1"),
        &t
    ));
    assert!(allowed(
        &e,
        "identity:create_application_credential",
        &unscoped("u1"),
        &t
    ));
    // A rule without scope_types accepts every scope.
    assert!(allowed(
        &e,
        "identity:get_auth_catalog",
        &domain_user("d1", &[]),
        &t
    ));
}

#[test]
fn a_policy_file_cannot_widen_scope_types() {
    let e = Enforcer::from_policy_text("identity:create_domain: '@'\n").unwrap();
    assert!(allowed(
        &e,
        "identity:create_domain",
        &member("x"),
        &json!({})
    ));
    assert!(!allowed(
        &e,
        "identity:create_domain",
        &domain_user("d1", &["admin"]),
        &json!({})
    ));
}

// ---------------------------------------------------------------- management rules

#[test]
fn user_management_spot_checks() {
    let e = Enforcer::with_defaults();
    let new_user = json!({"target": {"user": {"domain_id": "d1"}}});
    let a = "identity:create_user";
    assert!(allowed(&e, a, &system_admin(), &new_user));
    assert!(!allowed(&e, a, &system_reader(), &new_user));
    assert!(!allowed(&e, a, &member("demo"), &new_user));
    // Domain manager, only in their own domain.
    assert!(allowed(
        &e,
        a,
        &domain_user("d1", &["manager", "member", "reader"]),
        &new_user
    ));
    assert!(!allowed(
        &e,
        a,
        &domain_user("d2", &["manager", "member", "reader"]),
        &new_user
    ));
    assert!(!allowed(
        &e,
        a,
        &domain_user("d1", &["member", "reader"]),
        &new_user
    ));

    let a = "identity:get_user";
    let me = json!({"target": {"user": {"id": "demo", "domain_id": "default"}}});
    assert!(allowed(&e, a, &member("demo"), &me));
    assert!(allowed(&e, a, &unscoped("demo"), &me));
    assert!(!allowed(&e, a, &member("other"), &me));
    assert!(allowed(&e, a, &system_reader(), &me));
    assert!(allowed(&e, a, &domain_user("default", &["reader"]), &me));
    assert!(!allowed(&e, a, &domain_user("d1", &["reader"]), &me));

    let a = "identity:list_users";
    let in_d1 = json!({"target": {"domain_id": "d1"}});
    assert!(allowed(&e, a, &domain_user("d1", &["reader"]), &in_d1));
    assert!(!allowed(&e, a, &domain_user("d2", &["reader"]), &in_d1));
    assert!(!allowed(&e, a, &member("demo"), &in_d1));
}

#[test]
fn project_and_role_spot_checks() {
    let e = Enforcer::with_defaults();
    let demo = json!({"target": {"project": {"id": "p-demo", "domain_id": "default"}}});
    assert!(allowed(&e, "identity:get_project", &member("demo"), &demo));
    assert!(!allowed(&e, "identity:get_project", &service_user(), &demo));
    assert!(!allowed(
        &e,
        "identity:update_project",
        &member("demo"),
        &demo
    ));
    assert!(allowed(
        &e,
        "identity:update_project",
        &domain_user("default", &["manager"]),
        &demo
    ));
    // A project with a null domain is never managed by a domain manager.
    let orphan = json!({"target": {"project": {"id": "p", "domain_id": null}}});
    let mut null_domain = domain_user("x", &["manager"]);
    null_domain.domain_id = Some("None".into());
    assert!(!allowed(
        &e,
        "identity:update_project",
        &null_domain,
        &orphan
    ));

    // list_roles: `role:manager and not domain_id:None`.
    let t = json!({});
    assert!(allowed(
        &e,
        "identity:list_roles",
        &domain_user("d1", &["manager"]),
        &t
    ));
    let mut project_manager = member("pm");
    project_manager.roles = roles(&["manager", "member", "reader"]);
    assert!(!allowed(&e, "identity:list_roles", &project_manager, &t));
    assert!(!allowed(&e, "identity:create_role", &system_reader(), &t));
    assert!(allowed(&e, "identity:create_role", &system_admin(), &t));

    // Regions and the catalog: anyone with a token.
    assert!(allowed(&e, "identity:get_region", &member("demo"), &t));
    assert!(allowed(&e, "identity:list_endpoints", &system_reader(), &t));
    assert!(!allowed(&e, "identity:list_endpoints", &member("demo"), &t));
}

#[test]
fn domain_managers_grant_only_manager_member_reader() {
    let e = Enforcer::with_defaults();
    let grant = |role: &str, role_domain: Value| {
        json!({"target": {
            "user": {"id": "u", "domain_id": "d1"},
            "project": {"id": "p", "domain_id": "d1"},
            "role": {"id": "r", "name": role, "domain_id": role_domain},
        }})
    };
    let manager = domain_user("d1", &["manager", "member", "reader"]);
    assert!(allowed(
        &e,
        "identity:create_grant",
        &manager,
        &grant("member", Value::Null)
    ));
    assert!(allowed(
        &e,
        "identity:create_grant",
        &manager,
        &grant("reader", Value::Null)
    ));
    assert!(!allowed(
        &e,
        "identity:create_grant",
        &manager,
        &grant("admin", Value::Null)
    ));
    assert!(!allowed(
        &e,
        "identity:create_grant",
        &domain_user("d2", &["manager"]),
        &grant("member", Value::Null)
    ));
    // A domain admin may grant any global role or a role of their domain.
    let domain_admin = domain_user("d1", &["admin", "manager", "member", "reader"]);
    assert!(allowed(
        &e,
        "identity:create_grant",
        &domain_admin,
        &grant("admin", Value::Null)
    ));
    assert!(allowed(
        &e,
        "identity:create_grant",
        &domain_admin,
        &grant("custom", json!("d1"))
    ));
    // check_grant for a domain reader needs the role to be global or theirs.
    let reader = domain_user("d1", &["reader"]);
    assert!(allowed(
        &e,
        "identity:check_grant",
        &reader,
        &grant("x", Value::Null)
    ));
    assert!(allowed(
        &e,
        "identity:check_grant",
        &reader,
        &grant("x", json!("d1"))
    ));
    assert!(!allowed(
        &e,
        "identity:check_grant",
        &reader,
        &grant("x", json!("d2"))
    ));
    assert!(!allowed(
        &e,
        "identity:create_grant",
        &reader,
        &grant("member", Value::Null)
    ));
}

// ---------------------------------------------------------------- policy files

static FILE_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A policy file in the temp dir, removed on drop.
struct TempPolicy(PathBuf);

impl TempPolicy {
    fn new(ext: &str, contents: &str) -> Self {
        let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "keystone-rs-policy-test-{}-{n}.{ext}",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempPolicy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn yaml_policy_file_overrides_defaults() {
    let file = TempPolicy::new(
        "yaml",
        "# operator overrides\n\
         \"identity:validate_token\": \"role:auditor or rule:my_admins\"\n\
         my_admins: \"role:Admin and system_scope:all\"\n\
         \"identity:get_region\": \"!\"\n",
    );
    let e = Enforcer::load_file(&file.0).unwrap();
    let t = token_target("demo");
    let mut auditor = member("aud");
    auditor.roles = roles(&["Auditor"]);
    assert!(allowed(&e, "identity:validate_token", &auditor, &t));
    assert!(allowed(&e, "identity:validate_token", &system_admin(), &t));
    // The override replaced the default: project admin and subject lose access.
    assert!(!allowed(
        &e,
        "identity:validate_token",
        &project_admin(),
        &t
    ));
    assert!(!allowed(&e, "identity:validate_token", &member("demo"), &t));
    // Untouched defaults still apply.
    assert!(allowed(&e, "identity:revoke_token", &member("demo"), &t));
    assert!(!allowed(
        &e,
        "identity:get_region",
        &system_admin(),
        &json!({})
    ));

    let view = e.rule("identity:validate_token").unwrap();
    assert!(view.overridden && view.registered);
    assert_eq!(view.check_str, "role:auditor or rule:my_admins");
    let helper = e.rule("my_admins").unwrap();
    assert!(!helper.registered && helper.scope_types.is_empty());
    // Operator-only rules are not actions.
    assert!(!allowed(&e, "my_admins", &system_admin(), &t));
    assert_eq!(e.rules().count(), DEFAULT_RULES.len() + 1);
}

#[test]
fn json_policy_file_overrides_defaults() {
    let file = TempPolicy::new(
        "json",
        r#"{
            "identity:revoke_token": "rule:admin_required",
            "admin_required": "role:superuser",
            "identity:check_token": [["role:auditor", "system_scope:all"], ["rule:token_subject"]],
            "identity:get_auth_catalog": ""
        }"#,
    );
    let e = Enforcer::load_file(&file.0).unwrap();
    let t = token_target("demo");
    assert!(!allowed(&e, "identity:revoke_token", &member("demo"), &t));
    assert!(!allowed(&e, "identity:revoke_token", &project_admin(), &t));
    let mut superuser = member("root");
    superuser.roles = roles(&["superuser"]);
    assert!(allowed(&e, "identity:revoke_token", &superuser, &t));
    // admin_required changed, so every rule using it changed.
    assert!(allowed(
        &e,
        "identity:create_domain",
        &superuser,
        &json!({})
    ));
    assert!(!allowed(
        &e,
        "identity:create_domain",
        &system_admin(),
        &json!({})
    ));
    // Legacy list-of-lists form.
    let mut sys_auditor = system_reader();
    sys_auditor.roles = roles(&["auditor"]);
    assert!(allowed(&e, "identity:check_token", &sys_auditor, &t));
    assert!(allowed(&e, "identity:check_token", &member("demo"), &t));
    assert!(!allowed(&e, "identity:check_token", &system_reader(), &t));
    assert_eq!(
        e.rule("identity:check_token").map(|r| r.check_str),
        Some("(role:auditor and system_scope:all) or (rule:token_subject)")
    );
    assert!(allowed(
        &e,
        "identity:get_auth_catalog",
        &unscoped("x"),
        &json!({})
    ));
}

#[test]
fn yaml_reads_json_and_empty_files() {
    let e = Enforcer::from_policy_text(r#"{"identity:get_region": "role:x"}"#).unwrap();
    assert!(!allowed(
        &e,
        "identity:get_region",
        &member("demo"),
        &json!({})
    ));
    let commented = TempPolicy::new(
        "yaml",
        "# everything is default\n#\"identity:get_region\": \"\"\n",
    );
    let e = Enforcer::load_file(&commented.0).unwrap();
    assert!(e.rules().all(|r| !r.overridden));
    let empty = TempPolicy::new("json", "");
    assert!(Enforcer::load_file(&empty.0).is_ok());
}

#[test]
fn policy_file_errors_name_the_rule() {
    let file = TempPolicy::new(
        "yaml",
        "\"identity:get_user\": \"role:admin or\"\n\"identity:get_region\": \"\"\n",
    );
    match Enforcer::load_file(&file.0) {
        Err(PolicyError::Parse { rule, origin, .. }) => {
            assert_eq!(rule, "identity:get_user");
            assert!(origin.contains(&file.0.display().to_string()));
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    for (text, rule) in [
        ("a: \"(role:x\"\n", "a"),
        ("a: \"'quoted'\"\n", "a"),
        ("a:\n", "a"),
        ("a: 5\n", "a"),
        ("a: true\n", "a"),
        ("a: \"user_id:%(x)d\"\n", "a"),
        ("a: [[\"role:x\", 3]]\n", "a"),
    ] {
        match Enforcer::from_policy_text(text) {
            Err(PolicyError::Parse { rule: r, .. }) => assert_eq!(r, rule, "{text}"),
            other => panic!("{text:?}: expected a parse error, got {other:?}"),
        }
    }
    assert!(matches!(
        Enforcer::from_policy_text("- a\n- b\n"),
        Err(PolicyError::Format { .. })
    ));
    let broken_json = TempPolicy::new("json", "{\"a\": ");
    assert!(matches!(
        Enforcer::load_file(&broken_json.0),
        Err(PolicyError::Format { .. })
    ));
    let missing = std::env::temp_dir().join("keystone-rs-policy-test-does-not-exist.yaml");
    assert!(matches!(
        Enforcer::load_file(&missing),
        Err(PolicyError::Io { .. })
    ));
}

#[test]
fn rule_cycles_evaluate_false_without_overflowing() {
    let e = Enforcer::from_policy_text(
        "a: rule:b\n\
         b: rule:c or role:never\n\
         c: rule:a\n\
         \"identity:get_region\": \"rule:a or role:x\"\n\
         \"identity:list_regions\": \"rule:identity:list_regions or role:y\"\n\
         \"identity:get_service\": \"rule:nonexistent or role:z\"\n\
         \"identity:get_endpoint\": \"rule:d\"\n\
         d: rule:a\n",
    )
    .unwrap();
    let mut x = member("m");
    x.roles = roles(&["x", "y", "z"]);
    let t = json!({});
    assert!(allowed(&e, "identity:get_region", &x, &t));
    assert!(!allowed(&e, "identity:get_region", &member("m"), &t));
    assert!(allowed(&e, "identity:list_regions", &x, &t));
    assert!(!allowed(&e, "identity:list_regions", &member("m"), &t));
    assert!(allowed(&e, "identity:get_service", &x, &t));
    assert!(!allowed(&e, "identity:get_service", &system_admin(), &t));
    // d is not in the cycle but only leads into it.
    assert!(!allowed(&e, "identity:get_endpoint", &x, &t));
}

#[test]
fn deep_rule_chains_stop_at_the_depth_limit() {
    let mut text = String::from("\"identity:get_region\": rule:r0\n");
    for i in 0..200 {
        text.push_str(&format!("r{i}: rule:r{}\n", i + 1));
    }
    text.push_str("r200: '@'\n");
    let e = Enforcer::from_policy_text(&text).unwrap();
    assert!(!allowed(
        &e,
        "identity:get_region",
        &member("m"),
        &json!({})
    ));
    let shallow = Enforcer::from_policy_text(
        "\"identity:get_region\": rule:r0\nr0: rule:r1\nr1: rule:r2\nr2: '@'\n",
    )
    .unwrap();
    assert!(allowed(
        &shallow,
        "identity:get_region",
        &member("m"),
        &json!({})
    ));
}

// ---------------------------------------------------------------- docs

const TABLE_BEGIN: &str = "<!-- BEGIN GENERATED DEFAULT POLICY TABLE -->\n";
const TABLE_END: &str = "<!-- END GENERATED DEFAULT POLICY TABLE -->";

/// docs/policy.md must carry the table rendered from DEFAULT_RULES.
/// Run with `KEYSTONE_RS_UPDATE_DOCS=1` to regenerate it.
#[test]
fn docs_policy_md_has_the_current_default_table() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/policy.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let table = defaults_markdown_table();
    let start = doc.find(TABLE_BEGIN).expect("begin marker") + TABLE_BEGIN.len();
    let end = doc.find(TABLE_END).expect("end marker");
    if std::env::var_os("KEYSTONE_RS_UPDATE_DOCS").is_some() {
        let updated = format!("{}{table}{}", &doc[..start], &doc[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        doc[start..end] == table,
        "docs/policy.md is stale; rerun with KEYSTONE_RS_UPDATE_DOCS=1"
    );
    assert!(table.contains(
        "| `identity:revoke_token` | `rule:admin_required or rule:token_subject` | system, domain, project | `DELETE /v3/auth/tokens` |"
    ));
}
