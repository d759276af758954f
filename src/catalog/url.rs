//! Endpoint URL templates, as Keystone reads them: `$(` becomes `%(` and the
//! URL goes through Python's `%` operator with a mapping of whitelisted keys.
//!
//! Keystone refuses an endpoint at creation when that formatting would fail
//! (`check_endpoint_url`), and leaves an endpoint out of a token's catalog when
//! formatting fails at token time (`format_url`). Python's rules decide what
//! fails, including for a stray `%` (a percent-encoded `%20` is a bad format
//! character to Python), so they are reproduced here rather than a simpler
//! `$(name)s` search and replace.

/// Keystone's `WHITELISTED_PROPERTIES`: the only keys a template may use.
pub const WHITELISTED: &[&str] = &[
    "tenant_id",
    "project_id",
    "user_id",
    "compute_host",
    "public_endpoint",
];

/// Why Python's formatting failed (Keystone's KeyError / TypeError / ValueError).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// `%(key)s` with a key the mapping lacks.
    MissingKey(String),
    /// A conversion that needs a number, `%c`, `*` widths, a second unkeyed argument.
    Type,
    /// Incomplete format or an unsupported format character.
    Value,
}

/// Python's `template.replace('$(', '%(') % mapping` where `lookup` is the mapping.
/// An unkeyed conversion (`%s`) receives the mapping itself; Keystone would print
/// the mapping object's repr there, which no client can use, so at token time
/// (`strict_unkeyed`) such an endpoint is left out instead.
pub fn python_format(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    strict_unkeyed: bool,
) -> Result<String, FormatError> {
    // Most endpoint URLs hold no template at all: every token's catalog formats them.
    if !template.contains(['%', '$']) {
        return Ok(template.to_string());
    }
    let src = template.replace("$(", "%(");
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let mut unkeyed_used = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut key: Option<String> = None;
        if chars.get(i) == Some(&'(') {
            // Python allows nested parentheses inside the key.
            let mut depth = 1;
            let start = i + 1;
            let mut j = start;
            while j < chars.len() && depth > 0 {
                match chars[j] {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                j += 1;
            }
            if depth > 0 {
                return Err(FormatError::Value);
            }
            key = Some(chars[start..j - 1].iter().collect());
            i = j;
        }
        // The key is looked up while parsing, before the conversion is known.
        let value = match &key {
            Some(k) => Some(lookup(k).ok_or_else(|| FormatError::MissingKey(k.clone()))?),
            None => None,
        };
        let mut left = false;
        while let Some(&f) = chars.get(i) {
            match f {
                '-' => left = true,
                '+' | ' ' | '#' | '0' => {}
                _ => break,
            }
            i += 1;
        }
        if chars.get(i) == Some(&'*') {
            return Err(FormatError::Type);
        }
        let mut width = 0usize;
        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
            width = width.saturating_mul(10).saturating_add(d as usize);
            i += 1;
        }
        let mut precision: Option<usize> = None;
        if chars.get(i) == Some(&'.') {
            i += 1;
            if chars.get(i) == Some(&'*') {
                return Err(FormatError::Type);
            }
            let mut p = 0usize;
            while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                p = p.saturating_mul(10).saturating_add(d as usize);
                i += 1;
            }
            precision = Some(p);
        }
        while matches!(chars.get(i), Some('h' | 'l' | 'L')) {
            i += 1;
        }
        let Some(&conv) = chars.get(i) else {
            return Err(FormatError::Value);
        };
        i += 1;
        if conv == '%' {
            out.push('%');
            continue;
        }
        if !"sradiouxXeEfFgGc".contains(conv) {
            return Err(FormatError::Value);
        }
        let text = match value {
            Some(v) => v,
            None => {
                // The mapping is the single positional argument: usable once.
                if unkeyed_used {
                    return Err(FormatError::Type);
                }
                unkeyed_used = true;
                if strict_unkeyed && matches!(conv, 's' | 'r' | 'a') {
                    return Err(FormatError::Type);
                }
                String::new()
            }
        };
        let mut text = match conv {
            's' => text,
            'r' | 'a' => python_repr(&text),
            // Every value is a string: numeric conversions and %c fail.
            _ => return Err(FormatError::Type),
        };
        if let Some(p) = precision {
            text = text.chars().take(p).collect();
        }
        let len = text.chars().count();
        if len < width {
            let pad = " ".repeat(width - len);
            text = if left { text + &pad } else { pad + &text };
        }
        out.push_str(&text);
    }
    Ok(out)
}

/// Python's `repr()` of a str, for `%r`.
fn python_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Keystone's `check_endpoint_url`: formatting with every whitelisted key set
/// to `''` must succeed. False means 400 "Cannot create an endpoint with an
/// invalid URL".
pub fn valid_endpoint_url(url: &str) -> bool {
    let lookup = |k: &str| WHITELISTED.contains(&k).then(String::new);
    python_format(url, &lookup, false).is_ok()
}

/// Keystone's `format_url` at token time. None leaves the endpoint out of the
/// catalog: a malformed template, a key Keystone has no value for, or
/// `$(project_id)s` / `$(tenant_id)s` in a token without a project. An empty
/// result is left out too, as in Keystone.
pub fn catalog_url(url: &str, project_id: Option<&str>, user_id: &str) -> Option<String> {
    let lookup = |k: &str| match k {
        "user_id" => Some(user_id.to_string()),
        "project_id" | "tenant_id" => project_id.map(str::to_string),
        _ => None,
    };
    python_format(url, &lookup, true)
        .ok()
        .filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_invalid_urls_are_refused() {
        // keystone/tests/unit/test_v3_catalog.py::test_endpoint_create_with_invalid_url
        for bad in [
            "http://127.0.0.1:8774/v1.1/$(nonexistent)s",
            "http://127.0.0.1:8774/v1.1/$(project_id)",
            "http://127.0.0.1:8774/v1.1/$(project_id)t",
            "http://127.0.0.1:8774/v1.1/$(project_id",
            "http://127.0.0.1:8774/v1.1/$(admin_url)d",
            "http://h/a%20b",
            "http://h/$(project_id)d",
            "http://h/%s/%s",
        ] {
            assert!(!valid_endpoint_url(bad), "{bad}");
        }
        for good in [
            "http://127.0.0.1:8774/v1.1/$(project_id)s",
            "http://h/$(tenant_id)s/$(user_id)s",
            "http://h/v3",
            "http://h/100%%",
            "http://h/$(public_endpoint)s",
            "http://h/%s",
        ] {
            assert!(valid_endpoint_url(good), "{good}");
        }
    }

    #[test]
    fn token_time_substitution() {
        assert_eq!(
            catalog_url("http://c/v2.1/$(project_id)s", Some("p1"), "u").as_deref(),
            Some("http://c/v2.1/p1")
        );
        assert_eq!(
            catalog_url("http://c/$(tenant_id)s/$(user_id)s", Some("p"), "u").as_deref(),
            Some("http://c/p/u")
        );
        assert_eq!(catalog_url("http://c/$(tenant_id)s", None, "u"), None);
        assert_eq!(catalog_url("http://c/$(unknown)s", Some("p"), "u"), None);
        assert_eq!(catalog_url("http://c/%s", Some("p"), "u"), None);
        assert_eq!(
            catalog_url("http://c/v3", None, "u").as_deref(),
            Some("http://c/v3")
        );
        assert_eq!(
            catalog_url("http://c/%(project_id)r", Some("p"), "u").as_deref(),
            Some("http://c/'p'")
        );
        assert_eq!(
            catalog_url("http://c/%(project_id).1s", Some("pq"), "u").as_deref(),
            Some("http://c/p")
        );
    }
}
