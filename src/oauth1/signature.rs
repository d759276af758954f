//! OAuth 1.0a request verification (RFC 5849) with oauthlib's server semantics, as
//! Keystone runs it: the parameters come from the `Authorization: OAuth ...` header,
//! the query string and (for an `application/x-www-form-urlencoded` request) the
//! form parameters; the signature base string is the method, the base string URI of
//! the URL the client used and the normalized parameters (every one but
//! `oauth_signature`); HMAC-SHA1, HMAC-SHA256 and PLAINTEXT are accepted.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// oauthlib's `timestamp_lifetime`: a signed request is good for ten minutes.
pub const TIMESTAMP_LIFETIME_SECS: i64 = 600;

/// The request as the client sent it.
#[derive(Clone, Debug, Default)]
pub struct SignedRequest {
    pub method: String,
    /// `scheme://host[:port]/path` as the client used it (a query is ignored).
    pub url: String,
    pub authorization: Option<String>,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// Form parameters, decoded (only for a form-encoded body).
    pub form: Vec<(String, String)>,
}

/// Why a request is refused, in oauthlib's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// oauthlib's `InvalidRequestError` (`error=invalid_request`): the description.
    Invalid(&'static str),
    /// Not an OAuth request at all: no `Authorization` header.
    NoHeader,
    /// A well-formed request whose signature or credentials do not verify.
    Unauthorized,
}

/// The protocol parameters of a request (from the Authorization header).
#[derive(Clone, Debug, Default)]
pub struct OAuthParams {
    pub consumer_key: Option<String>,
    pub token: Option<String>,
    pub verifier: Option<String>,
    pub signature: Option<String>,
    pub signature_method: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub callback: Option<String>,
    pub version: Option<String>,
}

/// A parsed request, ready to verify once the secrets are known.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub oauth: OAuthParams,
    method: String,
    url: String,
    /// Every parameter but `oauth_signature` (and `realm`).
    params: Vec<(String, String)>,
}

/// Everything but RFC 3986's unreserved characters is %XX-encoded.
const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Upper-case %XX over the UTF-8 bytes: oauthlib's `utils.escape`.
pub fn escape(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, RESERVED).to_string()
}

/// Percent-decoding (no `+` to space; a malformed escape stays as it is): oauthlib's
/// `utils.unescape`.
pub fn unescape(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `parse_http_list` + `parse_keqv_list` after the `OAuth ` scheme: comma-separated
/// `key="value"` pairs (quotes optional), values percent-decoded.
pub fn parse_authorization_header(header: &str) -> Option<Vec<(String, String)>> {
    let scheme = "oauth ";
    if header.len() < scheme.len() || !header[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return None;
    }
    let rest = &header[scheme.len()..];
    // Split on commas outside quotes.
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in rest.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                escaped = true;
                cur.push(c);
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => {
                items.push(std::mem::take(&mut cur));
            }
            _ => cur.push(c),
        }
    }
    items.push(cur);
    let mut out = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (k, v) = item.split_once('=')?;
        let mut v = v.to_string();
        if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            v = v[1..v.len() - 1]
                .replace("\\\"", "\"")
                .replace("\\\\", "\\");
        }
        out.push((unescape(k.trim()), unescape(&v)));
    }
    Some(out)
}

/// oauthlib's `base_string_uri`: scheme and host lower case, the default port
/// dropped, no query or fragment, an empty path is `/`.
pub fn base_string_uri(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let scheme = parsed.scheme().to_ascii_lowercase();
    let host = parsed.host_str()?.to_ascii_lowercase();
    let path = if parsed.path().is_empty() {
        "/"
    } else {
        parsed.path()
    };
    // `Url` already drops a port that is the scheme's default.
    Some(match parsed.port() {
        Some(p) => format!("{scheme}://{host}:{p}{path}"),
        None => format!("{scheme}://{host}{path}"),
    })
}

/// RFC 5849 3.4.1.3.2: each name and value escaped, sorted, `k=v` joined with `&`.
pub fn normalize_parameters(params: &[(String, String)]) -> String {
    let mut escaped: Vec<(String, String)> =
        params.iter().map(|(k, v)| (escape(k), escape(v))).collect();
    escaped.sort();
    escaped
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn signature_base_string(method: &str, base_uri: &str, normalized: &str) -> String {
    format!(
        "{}&{}&{}",
        escape(&method.to_ascii_uppercase()),
        escape(base_uri),
        escape(normalized)
    )
}

/// The signature of `base` for `method` (HMAC-SHA1, HMAC-SHA256 or PLAINTEXT) with
/// the client and token secrets.
pub fn sign(method: &str, base: &str, client_secret: &str, token_secret: &str) -> Option<String> {
    use base64::Engine;
    let key = format!("{}&{}", escape(client_secret), escape(token_secret));
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match method {
        "HMAC-SHA1" => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).ok()?;
            mac.update(base.as_bytes());
            Some(b64(&mac.finalize().into_bytes()))
        }
        "HMAC-SHA256" => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok()?;
            mac.update(base.as_bytes());
            Some(b64(&mac.finalize().into_bytes()))
        }
        "PLAINTEXT" => Some(key),
        _ => None,
    }
}

const SIGNATURE_METHODS: &[&str] = &["HMAC-SHA1", "HMAC-SHA256", "PLAINTEXT"];

fn is_hex(s: &str) -> bool {
    s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

/// Keystone's `_check_token`: a uuid hex value.
pub fn check_key(s: &str) -> bool {
    s.len() == 32 && is_hex(s)
}

/// Reads the request's protocol parameters and checks what oauthlib's
/// `_check_mandatory_parameters` checks (with `now` in epoch seconds).
pub fn parse(req: &SignedRequest, now: i64) -> Result<Parsed, Refusal> {
    let header = req.authorization.as_deref().ok_or(Refusal::NoHeader)?;
    let header_params = parse_authorization_header(header)
        .ok_or(Refusal::Invalid("Malformed authorization header"))?;
    let mut oauth = OAuthParams::default();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in &header_params {
        if !k.starts_with("oauth_") {
            continue;
        }
        if !seen.insert(k.clone()) {
            return Err(Refusal::Invalid("Duplicate OAuth1 entries."));
        }
        let slot = match k.as_str() {
            "oauth_consumer_key" => &mut oauth.consumer_key,
            "oauth_token" => &mut oauth.token,
            "oauth_verifier" => &mut oauth.verifier,
            "oauth_signature" => &mut oauth.signature,
            "oauth_signature_method" => &mut oauth.signature_method,
            "oauth_timestamp" => &mut oauth.timestamp,
            "oauth_nonce" => &mut oauth.nonce,
            "oauth_callback" => &mut oauth.callback,
            "oauth_version" => &mut oauth.version,
            _ => continue,
        };
        *slot = Some(v.clone());
    }
    if req
        .query
        .iter()
        .chain(req.form.iter())
        .any(|(k, _)| k.starts_with("oauth_"))
    {
        return Err(Refusal::Invalid(
            "oauth_ params must come from only 1 signature type",
        ));
    }
    let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if !(present(&oauth.signature)
        && present(&oauth.consumer_key)
        && present(&oauth.nonce)
        && present(&oauth.timestamp)
        && present(&oauth.signature_method))
    {
        return Err(Refusal::Invalid("Missing mandatory OAuth parameters."));
    }
    let method = oauth.signature_method.clone().unwrap_or_default();
    if !SIGNATURE_METHODS.contains(&method.as_str()) {
        return Err(Refusal::Invalid("Invalid signature method."));
    }
    if oauth.version.as_deref().is_some_and(|v| v != "1.0") {
        return Err(Refusal::Invalid("Invalid OAuth version."));
    }
    let ts = oauth.timestamp.as_deref().unwrap_or_default();
    if ts.len() != 10 {
        return Err(Refusal::Invalid("Invalid timestamp size"));
    }
    let ts: i64 = ts
        .parse()
        .map_err(|_| Refusal::Invalid("Timestamp must be an integer."))?;
    if (now - ts).abs() > TIMESTAMP_LIFETIME_SECS {
        return Err(Refusal::Invalid(
            "Timestamp given is invalid, differ from allowed by over 600 seconds.",
        ));
    }
    if !check_key(oauth.consumer_key.as_deref().unwrap_or_default()) {
        return Err(Refusal::Invalid("Invalid client key format."));
    }
    if !is_hex(oauth.nonce.as_deref().unwrap_or_default()) {
        return Err(Refusal::Invalid("Invalid nonce format."));
    }
    let url = base_string_uri(&req.url).ok_or(Refusal::Invalid("Invalid request URI."))?;
    let mut params: Vec<(String, String)> = header_params
        .into_iter()
        .filter(|(k, _)| k != "oauth_signature" && k != "realm")
        .collect();
    params.extend(req.query.iter().cloned());
    params.extend(req.form.iter().cloned());
    Ok(Parsed {
        oauth,
        method: req.method.clone(),
        url,
        params,
    })
}

impl Parsed {
    /// The signature base string (RFC 5849 3.4.1).
    pub fn base_string(&self) -> String {
        signature_base_string(&self.method, &self.url, &normalize_parameters(&self.params))
    }

    /// Whether `oauth_signature` is right for these secrets (constant time).
    pub fn verify(&self, client_secret: &str, token_secret: &str) -> bool {
        let method = self.oauth.signature_method.as_deref().unwrap_or_default();
        let Some(expected) = sign(method, &self.base_string(), client_secret, token_secret) else {
            return false;
        };
        let given = self.oauth.signature.as_deref().unwrap_or_default();
        expected.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5849 section 1.2's example (the photos request), signed with HMAC-SHA1.
    #[test]
    fn rfc5849_example_verifies() {
        let req = SignedRequest {
            method: "GET".into(),
            url: "http://photos.example.net/photos".into(),
            authorization: Some(
                "OAuth realm=\"Photos\", oauth_consumer_key=\"dpf43f3p2l4k3l03\", oauth_token=\"nnch734d00sl2jdk\", oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"137131202\", oauth_nonce=\"chapoH\", oauth_signature=\"MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D\"".into(),
            ),
            query: vec![
                ("file".into(), "vacation.jpg".into()),
                ("size".into(), "original".into()),
            ],
            form: vec![],
        };
        let header = parse_authorization_header(req.authorization.as_deref().unwrap()).unwrap();
        let mut params: Vec<(String, String)> = header
            .into_iter()
            .filter(|(k, _)| k != "oauth_signature" && k != "realm")
            .collect();
        params.extend(req.query.clone());
        let base = signature_base_string(
            "GET",
            &base_string_uri(&req.url).unwrap(),
            &normalize_parameters(&params),
        );
        assert_eq!(
            sign("HMAC-SHA1", &base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00").unwrap(),
            "MdpQcU8iPSUjWoN/UDMsK2sui9I="
        );
    }

    #[test]
    fn escaping_and_base_uri_follow_rfc3986() {
        assert_eq!(escape("a b&c=d~é"), "a%20b%26c%3Dd~%C3%A9");
        assert_eq!(unescape("a%20b%2Fc%zz"), "a b/c%zz");
        assert_eq!(
            base_string_uri("HTTP://Example.COM:80/r%20v/X?id=123").unwrap(),
            "http://example.com/r%20v/X"
        );
        assert_eq!(
            base_string_uri("https://www.example.net:8080/?q=1").unwrap(),
            "https://www.example.net:8080/"
        );
    }

    #[test]
    fn missing_and_malformed_parameters_are_invalid_requests() {
        let mut req = SignedRequest {
            method: "POST".into(),
            url: "http://localhost:5000/v3/OS-OAUTH1/request_token".into(),
            authorization: None,
            ..Default::default()
        };
        assert_eq!(parse(&req, 0).err(), Some(Refusal::NoHeader));
        req.authorization = Some("Basic abc".into());
        assert!(matches!(parse(&req, 0), Err(Refusal::Invalid(_))));
        req.authorization = Some("OAuth oauth_consumer_key=\"abc\"".into());
        assert_eq!(
            parse(&req, 0).err(),
            Some(Refusal::Invalid("Missing mandatory OAuth parameters."))
        );
    }
}
