//! Domain configuration (Keystone's `domain_config_api`, `/v3/domains/{id}/config`):
//! the `identity` and `ldap` options a domain may override, stored and served as
//! Keystone does. keystone-rs has no LDAP driver and serves every domain from SQL, so
//! an `identity.driver` other than `sql` is refused (403) unless
//! `[domain_config] allow_unsupported_drivers` says to store it anyway.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::model::ConfigOption;
use crate::store::Store;

/// Keystone's `whitelisted_options['ldap']`, in its order.
pub const LDAP_OPTIONS: &[&str] = &[
    "url",
    "user",
    "suffix",
    "query_scope",
    "page_size",
    "alias_dereferencing",
    "debug_level",
    "chase_referrals",
    "user_tree_dn",
    "user_filter",
    "user_objectclass",
    "user_id_attribute",
    "user_name_attribute",
    "user_mail_attribute",
    "user_description_attribute",
    "user_pass_attribute",
    "user_enabled_attribute",
    "user_enabled_invert",
    "user_enabled_mask",
    "user_enabled_default",
    "user_attribute_ignore",
    "user_default_project_id_attribute",
    "user_enabled_emulation",
    "user_enabled_emulation_dn",
    "user_enabled_emulation_use_group_config",
    "user_additional_attribute_mapping",
    "group_tree_dn",
    "group_filter",
    "group_objectclass",
    "group_id_attribute",
    "group_name_attribute",
    "group_members_are_ids",
    "group_member_attribute",
    "group_desc_attribute",
    "group_attribute_ignore",
    "group_additional_attribute_mapping",
    "tls_cacertfile",
    "tls_cacertdir",
    "use_tls",
    "tls_req_cert",
    "use_pool",
    "pool_size",
    "pool_retry_max",
    "pool_retry_delay",
    "pool_connection_timeout",
    "pool_connection_lifetime",
    "use_auth_pool",
    "auth_pool_size",
    "auth_pool_connection_lifetime",
];

/// Keystone's `whitelisted_options['identity']`.
pub const IDENTITY_OPTIONS: &[&str] = &["driver", "list_limit"];

/// The `[ldap]` defaults of Keystone 30 (`keystone/conf/ldap.py`), what
/// `/v3/domains/config/default` shows for the ldap group.
fn ldap_defaults() -> Vec<(&'static str, Value)> {
    vec![
        ("url", json!("ldap://localhost")),
        ("user", json!(null)),
        ("suffix", json!("cn=example,cn=com")),
        ("query_scope", json!("one")),
        ("page_size", json!(0)),
        ("alias_dereferencing", json!("default")),
        ("debug_level", json!(null)),
        ("chase_referrals", json!(null)),
        ("user_tree_dn", json!(null)),
        ("user_filter", json!(null)),
        ("user_objectclass", json!("inetOrgPerson")),
        ("user_id_attribute", json!("cn")),
        ("user_name_attribute", json!("sn")),
        ("user_mail_attribute", json!("mail")),
        ("user_description_attribute", json!("description")),
        ("user_pass_attribute", json!("userPassword")),
        ("user_enabled_attribute", json!("enabled")),
        ("user_enabled_invert", json!(false)),
        ("user_enabled_mask", json!(0)),
        ("user_enabled_default", json!("True")),
        ("user_attribute_ignore", json!(["default_project_id"])),
        ("user_default_project_id_attribute", json!(null)),
        ("user_enabled_emulation", json!(false)),
        ("user_enabled_emulation_dn", json!(null)),
        ("user_enabled_emulation_use_group_config", json!(false)),
        ("user_additional_attribute_mapping", json!([])),
        ("group_tree_dn", json!(null)),
        ("group_filter", json!(null)),
        ("group_objectclass", json!("groupOfNames")),
        ("group_id_attribute", json!("cn")),
        ("group_name_attribute", json!("ou")),
        ("group_members_are_ids", json!(false)),
        ("group_member_attribute", json!("member")),
        ("group_desc_attribute", json!("description")),
        ("group_attribute_ignore", json!([])),
        ("group_additional_attribute_mapping", json!([])),
        ("tls_cacertfile", json!(null)),
        ("tls_cacertdir", json!(null)),
        ("use_tls", json!(false)),
        ("tls_req_cert", json!("demand")),
        ("use_pool", json!(true)),
        ("pool_size", json!(10)),
        ("pool_retry_max", json!(3)),
        ("pool_retry_delay", json!(0.1)),
        ("pool_connection_timeout", json!(-1)),
        ("pool_connection_lifetime", json!(600)),
        ("use_auth_pool", json!(true)),
        ("auth_pool_size", json!(100)),
        ("auth_pool_connection_lifetime", json!(60)),
    ]
}

/// The group's whitelisted options, if the group is supported.
fn whitelisted(group: &str) -> Option<&'static [&'static str]> {
    match group {
        "identity" => Some(IDENTITY_OPTIONS),
        "ldap" => Some(LDAP_OPTIONS),
        _ => None,
    }
}

fn is_sensitive(group: &str, option: &str) -> bool {
    group == "ldap" && option == "password"
}

/// Keystone's `InvalidDomainConfig` (403, message shown).
fn invalid(reason: impl std::fmt::Display) -> Error {
    Error::validation_forbidden(format!("Invalid domain specific configuration: {reason}."))
}

/// Keystone's `DomainConfigNotFound`.
fn not_found(domain_id: &str, what: &str) -> Error {
    Error::not_found(format!(
        "Could not find {what} in domain configuration for domain {domain_id}."
    ))
}

fn what(group: Option<&str>, option: Option<&str>) -> String {
    match (group, option) {
        (Some(g), Some(o)) => format!("option {o} in group {g}"),
        (Some(g), None) => format!("group {g}"),
        _ => "any options".into(),
    }
}

/// Python's truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// A configuration as the API shows it: `{group: {option: value}}`, or, for one
/// requested option, `{option: value}`.
fn to_config(options: &[ConfigOption], req_option: Option<&str>) -> Result<Map<String, Value>> {
    let mut config = Map::new();
    if let Some(req) = req_option {
        return match options {
            [] => Ok(config),
            [one] if one.option == req => {
                config.insert(one.option.clone(), one.value.clone());
                Ok(config)
            }
            _ => Err(Error::internal(anyhow::anyhow!(
                "An unexpected error occurred when retrieving domain configs"
            ))),
        };
    }
    for o in options {
        let group = config
            .entry(o.group.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(g) = group {
            g.insert(o.option.clone(), o.value.clone());
        }
    }
    Ok(config)
}

#[derive(Clone)]
pub struct DomainConfigService {
    store: Store,
    /// The `[identity]` values the default configuration shows.
    identity_list_limit: Option<usize>,
    /// The only domain whose `security_compliance` group is readable.
    default_domain_id: String,
    allow_unsupported_drivers: bool,
}

impl DomainConfigService {
    pub fn new(
        store: Store,
        identity_list_limit: Option<usize>,
        default_domain_id: String,
        allow_unsupported_drivers: bool,
    ) -> Self {
        DomainConfigService {
            store,
            identity_list_limit,
            default_domain_id,
            allow_unsupported_drivers,
        }
    }

    /// `_assert_valid_group_and_option`.
    fn check_group_and_option(&self, group: Option<&str>, option: Option<&str>) -> Result<()> {
        let Some(group) = group else {
            return Ok(());
        };
        let Some(allowed) = whitelisted(group) else {
            return Err(invalid(format!(
                "Group {group} is not supported for domain specific configurations"
            )));
        };
        if let Some(option) = option {
            if !allowed.contains(&option) && !is_sensitive(group, option) {
                return Err(invalid(format!(
                    "Option {option} in group {group} is not supported for domain specific configurations"
                )));
            }
        }
        Ok(())
    }

    /// `_assert_valid_config`, then keystone-rs's refusal of drivers it cannot load;
    /// returns the options to store.
    fn check_config(&self, config: &Value) -> Result<Vec<ConfigOption>> {
        let groups = match config {
            Value::Object(m) if !m.is_empty() => m,
            _ => return Err(invalid("No options specified")),
        };
        let mut out = Vec::new();
        for (group, options) in groups {
            let options = match options {
                Value::Object(m) if !m.is_empty() => m,
                _ => {
                    return Err(invalid(format!(
                        "The value of group {group} specified in the config should be a dictionary of options"
                    )))
                }
            };
            for (option, value) in options {
                self.check_group_and_option(Some(group), Some(option))?;
                out.push(ConfigOption {
                    group: group.clone(),
                    option: option.clone(),
                    value: value.clone(),
                    sensitive: is_sensitive(group, option),
                });
            }
        }
        Ok(out)
    }

    fn check_driver(&self, options: &[ConfigOption]) -> Result<()> {
        if self.allow_unsupported_drivers {
            return Ok(());
        }
        for o in options {
            if o.group == "identity" && o.option == "driver" && o.value != json!("sql") {
                return Err(invalid(format!(
                    "identity driver {} is not supported by keystone-rs, which serves every domain from SQL (it has no LDAP driver)",
                    match &o.value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }
                )));
            }
        }
        Ok(())
    }

    async fn whitelisted_config(&self, domain_id: &str) -> Result<Map<String, Value>> {
        let options = self
            .store
            .domain_config_options(domain_id, None, None, false)
            .await?;
        to_config(&options, None)
    }

    /// Whether the domain has any option stored, sensitive ones included.
    pub async fn has_config(&self, domain_id: &str) -> Result<bool> {
        Ok(!self
            .store
            .domain_config_options(domain_id, None, None, true)
            .await?
            .is_empty())
    }

    /// `create_config`: replaces the whole configuration; returns what is shown.
    pub async fn create(&self, domain_id: &str, config: &Value) -> Result<Map<String, Value>> {
        let options = self.check_config(config)?;
        self.check_driver(&options)?;
        self.store
            .replace_domain_config(domain_id, &options)
            .await?;
        self.whitelisted_config(domain_id).await
    }

    /// `get_config`: whitelisted options only; nothing stored is a 404.
    pub async fn get(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
    ) -> Result<Map<String, Value>> {
        self.check_group_and_option(group, option)?;
        let options = self
            .store
            .domain_config_options(domain_id, group, option, false)
            .await?;
        if options.is_empty() {
            return Err(not_found(domain_id, &what(group, option)));
        }
        to_config(&options, option)
    }

    /// `get_security_compliance_config`: the default domain's password rules.
    pub fn security_compliance(
        &self,
        domain_id: &str,
        option: Option<&str>,
        password_regex: Option<&str>,
        password_regex_description: Option<&str>,
    ) -> Result<Map<String, Value>> {
        if domain_id != self.default_domain_id {
            return Err(invalid(
                "Reading security compliance information for any domain other than the default domain is not allowed or supported.",
            ));
        }
        let readable = [
            ("password_regex", password_regex),
            ("password_regex_description", password_regex_description),
        ];
        let mut group = Map::new();
        for (name, value) in readable {
            if option.is_none_or(|o| o == name) {
                group.insert(name.to_string(), json!(value));
            }
        }
        if option.is_some() {
            if group.is_empty() {
                return Err(invalid(
                    "Reading security compliance values other than password_regex and password_regex_description is not allowed.",
                ));
            }
            return Ok(group);
        }
        let mut config = Map::new();
        config.insert("security_compliance".into(), Value::Object(group));
        Ok(config)
    }

    /// `update_config`: merges options into the configuration; with a group (and an
    /// option), only that group (option), which must already exist.
    pub async fn update(
        &self,
        domain_id: &str,
        config: &Value,
        group: Option<&str>,
        option: Option<&str>,
    ) -> Result<Map<String, Value>> {
        let update = match (group, option) {
            (Some(g), Some(_)) => json!({ g: config }),
            _ => config.clone(),
        };
        let options = self.check_config(&update)?;
        self.check_group_and_option(group, option)?;
        if let Some(g) = group {
            let groups = update.as_object().cloned().unwrap_or_default();
            let in_group = groups.get(g).and_then(Value::as_object);
            let group_len = groups
                .values()
                .next()
                .and_then(Value::as_object)
                .map_or(0, Map::len);
            if groups.len() != 1 || (option.is_some() && group_len != 1) {
                return Err(invalid(match option {
                    Some(o) => format!("Trying to update option {o} in group {g}, so that, and only that, option must be specified  in the config"),
                    None => format!("Trying to update group {g}, so that, and only that, group must be specified in the config"),
                }));
            }
            let Some(in_group) = in_group else {
                let other = groups.keys().next().cloned().unwrap_or_default();
                return Err(invalid(format!(
                    "request to update group {g}, but config provided contains group {other} instead"
                )));
            };
            if let Some(o) = option {
                if !in_group.contains_key(o) {
                    let other = in_group.keys().next().cloned().unwrap_or_default();
                    return Err(invalid(format!(
                        "Trying to update option {o} in group {g}, but config provided contains option {other} instead"
                    )));
                }
            }
            if self
                .store
                .domain_config_options(domain_id, Some(g), option, true)
                .await?
                .is_empty()
            {
                return Err(not_found(domain_id, &what(Some(g), option)));
            }
        }
        self.check_driver(&options)?;
        self.store.update_domain_config(domain_id, &options).await?;
        self.get(domain_id, None, None).await
    }

    /// `delete_config`: the whole configuration, a group or an option; a group or
    /// option that is not stored is a 404.
    pub async fn delete(
        &self,
        domain_id: &str,
        group: Option<&str>,
        option: Option<&str>,
    ) -> Result<()> {
        self.check_group_and_option(group, option)?;
        if let Some(g) = group {
            let current = self
                .store
                .domain_config_options(domain_id, Some(g), None, true)
                .await?;
            if current.is_empty() {
                return Err(not_found(domain_id, &what(Some(g), None)));
            }
            if let Some(o) = option {
                if !current.iter().any(|c| c.option == o && truthy(&c.value)) {
                    return Err(not_found(domain_id, &what(Some(g), Some(o))));
                }
            }
        }
        self.store
            .delete_domain_config(domain_id, group, option)
            .await?;
        Ok(())
    }

    /// `get_config_default`: the defaults of the whitelisted options.
    pub fn defaults(
        &self,
        group: Option<&str>,
        option: Option<&str>,
    ) -> Result<Map<String, Value>> {
        self.check_group_and_option(group, option)?;
        let identity = vec![
            ("driver", json!("sql")),
            ("list_limit", json!(self.identity_list_limit)),
        ];
        let all = [("identity", identity), ("ldap", ldap_defaults())];
        let mut list = Vec::new();
        for (g, options) in all {
            if group.is_some_and(|want| want != g) {
                continue;
            }
            if let (Some(o), Some(allowed)) = (option, whitelisted(g)) {
                if !allowed.contains(&o) {
                    return Err(invalid(format!(
                        "Reading the default for option {o} in group {g} is not supported"
                    )));
                }
            }
            for (name, value) in options {
                if option.is_none_or(|o| o == name) {
                    list.push(ConfigOption {
                        group: g.to_string(),
                        option: name.to_string(),
                        value,
                        sensitive: false,
                    });
                }
            }
        }
        to_config(&list, option)
    }
}
