//! Access-rule matching as keystonemiddleware's `auth_token` does it
//! (`validate_allowed_request` and `_path_matches`), for Keystone's own API:
//! Keystone runs that middleware in front of itself with `service_type = identity`.

use crate::model::AccessRule;

/// keystonemiddleware's translation of a rule path to a regular expression: `{tag}`
/// and `*` match one path segment, `**` anything; every other character is copied
/// into the expression as it is (so `.` matches any character, as there).
fn pattern_regex(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::from("^");
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' => {
                // A lone brace matches no token: Python's finditer skips it.
                if let Some(close) = chars[i + 1..].iter().position(|c| *c == '}') {
                    out.push_str(r"[^\/]+");
                    i += close + 2;
                    continue;
                }
            }
            '}' => {}
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push_str(".*");
                i += 2;
                continue;
            }
            '*' => out.push_str(r"[^\/]+"),
            c => out.push(c),
        }
        i += 1;
    }
    out.push('$');
    out
}

/// Whether `path` matches the rule path `pattern` (an invalid pattern matches nothing).
pub fn path_matches(path: &str, pattern: &str) -> bool {
    fancy_regex::Regex::new(&pattern_regex(pattern))
        .ok()
        .and_then(|re| re.is_match(path).ok())
        .unwrap_or(false)
}

/// Whether one of `rules` allows `method` on `path` of the service `service_type`.
pub fn allows(rules: &[AccessRule], service_type: &str, method: &str, path: &str) -> bool {
    rules
        .iter()
        .any(|r| r.method == method && r.service == service_type && path_matches(path, &r.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_as_keystonemiddleware() {
        assert!(path_matches("/v2.1/servers/abc/ips", "/v2.1/servers/*/ips"));
        assert!(!path_matches(
            "/v2.1/servers/a/b/ips",
            "/v2.1/servers/*/ips"
        ));
        assert!(path_matches("/v2.1/servers/a/b/ips", "/v2.1/servers/**"));
        assert!(path_matches("/v2.1/servers/x", "/v2.1/servers/{server_id}"));
        assert!(!path_matches("/v2.1/servers", "/v2.1/servers/*"));
        assert!(path_matches("/v2x1/servers", "/v2.1/servers"));
        assert!(!path_matches("/v3/users", "/v3/user"));
        assert!(!path_matches("/v3/users", "(unclosed"));
    }
}
