//! EC2 and S3 request signatures, computed as Keystone computes them:
//! `keystoneclient.contrib.ec2.utils.Ec2Signer` for `/v3/ec2tokens` (versions 0, 1,
//! 2 and 4) and `keystone/api/s3tokens.py` for `/v3/s3tokens` (S3 v2 string-to-sign
//! and AWS SigV4). Crypto from `hmac`/`sha1`/`sha2`; the canonical requests are ours.
//! Every failure is `None`: the caller answers 401 without saying why.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <HmacSha1 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_mac());
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_mac256());
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

// HMAC takes keys of any length; these exist only to avoid `expect`.
fn unreachable_mac() -> HmacSha1 {
    <HmacSha1 as Mac>::new_from_slice(&[0u8; 64]).unwrap_or_else(|_| unreachable_mac())
}
fn unreachable_mac256() -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(&[0u8; 64]).unwrap_or_else(|_| unreachable_mac256())
}

/// `utils.auth_str_equal`: constant time for equal lengths.
pub fn equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Python's `str(value)` of a JSON value.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// `urllib.parse.quote(s, safe='-_~')`: unreserved characters kept, the rest %XX.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Ec2Signer._canonical_qs`.
fn canonical_qs(params: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = params.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| format!("{}={}", quote(k), quote(&py_str(&params[k.as_str()]))))
        .collect::<Vec<_>>()
        .join("&")
}

fn str_field<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

/// `Ec2Signer(secret).generate(credentials)`; None where the signer would raise.
pub fn ec2_signature(secret: &str, credentials: &Map<String, Value>) -> Option<String> {
    let empty = Map::new();
    let mut params = match credentials.get("params") {
        Some(Value::Object(m)) => m.clone(),
        None => empty.clone(),
        Some(_) => return None,
    };
    let headers = match credentials.get("headers") {
        Some(Value::Object(m)) => m,
        _ => &empty,
    };
    let key = secret.as_bytes();
    match params.get("SignatureVersion").map(py_str).as_deref() {
        Some("0") => {
            let s = format!(
                "{}{}",
                str_field(&params, "Action")?,
                str_field(&params, "Timestamp")?
            );
            return Some(STANDARD.encode(hmac_sha1(key, s.as_bytes())));
        }
        Some("1") => {
            let mut keys: Vec<&String> = params.keys().collect();
            keys.sort_by_key(|k| k.to_lowercase());
            let mut msg = Vec::new();
            for k in keys {
                msg.extend_from_slice(k.as_bytes());
                msg.extend_from_slice(py_str(&params[k.as_str()]).as_bytes());
            }
            return Some(STANDARD.encode(hmac_sha1(key, &msg)));
        }
        Some("2") => {
            let verb = str_field(credentials, "verb")?;
            let host = str_field(credentials, "host")?;
            let path = str_field(credentials, "path")?;
            params.insert("SignatureMethod".into(), Value::String("HmacSHA256".into()));
            let s = format!("{verb}\n{host}\n{path}\n{}", canonical_qs(&params));
            return Some(STANDARD.encode(hmac_sha256(key, s.as_bytes())));
        }
        _ => {}
    }
    let is_v4 = match headers.get("Authorization") {
        Some(a) => py_str(a).starts_with("AWS4-HMAC-SHA256"),
        None => str_field(&params, "X-Amz-Algorithm") == Some("AWS4-HMAC-SHA256"),
    };
    if !is_v4 {
        return None;
    }
    ec2_v4(secret, credentials, &params, headers)
}

fn ec2_v4(
    secret: &str,
    credentials: &Map<String, Value>,
    params: &Map<String, Value>,
    headers: &Map<String, Value>,
) -> Option<String> {
    let verb = str_field(credentials, "verb")?;
    let path = str_field(credentials, "path")?;
    let body_hash = str_field(credentials, "body_hash")?;
    let auth_param = |name: &str| -> Option<String> {
        match headers.get("Authorization") {
            Some(a) => {
                let a = py_str(a);
                let marker = format!("{name}=");
                let rest = a.split_once(&marker).map(|(_, r)| r).unwrap_or("");
                Some(rest.split(',').next().unwrap_or("").to_string())
            }
            None => str_field(params, &format!("X-Amz-{name}")).map(str::to_string),
        }
    };
    let date = match headers.get("X-Amz-Date") {
        Some(d) => py_str(d),
        None => str_field(params, "X-Amz-Date")?.to_string(),
    };
    let lower: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.trim().to_lowercase(), py_str(v).trim().to_string()))
        .collect();
    let header = |name: &str| lower.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
    let strip_port = header("user-agent").is_some_and(|ua| is_old_boto(ua));
    let signed_headers = auth_param("SignedHeaders")?;
    let mut canonical_headers = String::new();
    for h in signed_headers.split(';') {
        let Some(v) = header(h) else { continue };
        if h == "host" && strip_port {
            canonical_headers.push_str(&format!("{h}:{}\n", v.split(':').next().unwrap_or("")));
        } else {
            canonical_headers.push_str(&format!("{h}:{v}\n"));
        }
    }
    let qs = if verb.to_uppercase() != "POST" {
        canonical_qs(params)
    } else {
        String::new()
    };
    let canonical_request = [
        verb.to_uppercase(),
        path.to_string(),
        qs,
        canonical_headers,
        signed_headers.clone(),
        body_hash.to_string(),
    ]
    .join("\n");
    let credential = auth_param("Credential")?;
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() < 4 {
        return None;
    }
    let scope = parts[1..].join("/");
    if !date.starts_with(parts[1]) {
        return None;
    }
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k = signing_key(secret, parts[1], parts[2], parts[3]);
    Some(hex::encode(hmac_sha256(&k, string_to_sign.as_bytes())))
}

/// `re.match(r'Boto/2\.[0-9]\.[0-2]', user_agent)`.
fn is_old_boto(ua: &str) -> bool {
    let b = ua.as_bytes();
    b.len() >= 10
        && b.starts_with(b"Boto/2.")
        && b[7].is_ascii_digit()
        && b[8] == b'.'
        && (b'0'..=b'2').contains(&b[9])
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac_sha256(&k, region.as_bytes());
    let k = hmac_sha256(&k, service.as_bytes());
    hmac_sha256(&k, b"aws4_request")
}

/// `/v3/s3tokens`' signature of the base64 `token` (the string to sign); None when
/// the token is not decodable or not a valid SigV4 string to sign.
pub fn s3_signature(secret: &str, token: &str) -> Option<String> {
    let string_to_sign = crate::token::codec::urlsafe_b64decode_lenient(token.as_bytes())?;
    if !string_to_sign.starts_with(b"AWS4") {
        return Some(STANDARD.encode(hmac_sha1(secret.as_bytes(), &string_to_sign)));
    }
    let parts: Vec<&[u8]> = string_to_sign.split(|&b| b == b'\n').collect();
    if parts.len() != 4 || parts[0] != b"AWS4-HMAC-SHA256" {
        return None;
    }
    let scope: Vec<&[u8]> = parts[2].split(|&b| b == b'/').collect();
    if scope.len() != 4 || scope[3] != b"aws4_request" {
        return None;
    }
    if !matches!(scope[2], b"s3" | b"iam" | b"sts") {
        return None;
    }
    let k = hmac_sha256(format!("AWS4{secret}").as_bytes(), scope[0]);
    let k = hmac_sha256(&k, scope[1]);
    let k = hmac_sha256(&k, scope[2]);
    let k = hmac_sha256(&k, b"aws4_request");
    Some(hex::encode(hmac_sha256(&k, &string_to_sign)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// AWS's SigV4 test suite, `get-vanilla`.
    #[test]
    fn aws_sigv4_suite_get_vanilla() {
        let creds = obj(json!({
            "access": "AKIDEXAMPLE",
            "verb": "GET",
            "host": "example.amazonaws.com",
            "path": "/",
            "params": {},
            "headers": {
                "Host": "example.amazonaws.com",
                "X-Amz-Date": "20150830T123600Z",
                "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            },
            "body_hash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        }));
        assert_eq!(
            ec2_signature(AWS_SECRET, &creds).as_deref(),
            Some("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
    }

    /// Keystone's signer (keystoneclient 6.0.0) on a query string.
    #[test]
    fn aws_sigv4_suite_query_order() {
        let creds = obj(json!({
            "verb": "GET",
            "host": "example.amazon.com",
            "path": "/",
            "params": {"Param2": "value2", "Param1": "value1"},
            "headers": {
                "Host": "example.amazon.com",
                "X-Amz-Date": "20150830T123600Z",
                "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=x"
            },
            "body_hash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        }));
        assert_eq!(
            ec2_signature(AWS_SECRET, &creds).as_deref(),
            Some("ca0a842792a27475df455b2925aa79d50a98e27d1733a46b57c22810e6b1a7bc")
        );
    }

    /// Keystone's signer, version 2, with quoting and a port in the host.
    #[test]
    fn version_2_as_keystoneclient() {
        let creds = obj(json!({
            "verb": "GET", "host": "127.0.0.1:8773", "path": "/services/Cloud",
            "params": {"SignatureVersion": "2", "Action": "DescribeInstances", "AWSAccessKeyId": "ak", "Timestamp": "2026-12-06T20:00:00Z", "Name": "a b/\u{e9}"},
        }));
        assert_eq!(
            ec2_signature("secret", &creds).as_deref(),
            Some("VZwbcQGUoxrazF9TH3ogbdCePy2mLnpo1Ele9MhmAic=")
        );
    }

    #[test]
    fn date_mismatch_and_unknown_versions_fail() {
        let creds = obj(json!({
            "verb": "GET", "host": "h", "path": "/", "params": {},
            "headers": {"X-Amz-Date": "20150831T000000Z", "Authorization": "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=x"},
            "body_hash": "",
        }));
        assert!(ec2_signature("s", &creds).is_none());
        let creds = obj(json!({"params": {"SignatureVersion": "3"}}));
        assert!(ec2_signature("s", &creds).is_none());
        assert!(ec2_signature("s", &obj(json!({"params": {}}))).is_none());
    }

    #[test]
    fn quoting_as_python() {
        assert_eq!(quote("a b/é~._-"), "a%20b%2F%C3%A9~._-");
    }

    #[test]
    fn s3_v4_scope_rules() {
        use base64::engine::general_purpose::URL_SAFE;
        let bad = URL_SAFE.encode(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nabc",
        );
        assert!(s3_signature("s", &bad).is_none());
        let good = URL_SAFE
            .encode("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/s3/aws4_request\nabc");
        assert_eq!(s3_signature("s", &good).map(|s| s.len()), Some(64));
        let v2 = URL_SAFE
            .encode("GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg");
        assert_eq!(
            s3_signature("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &v2).as_deref(),
            Some("bWq2s1WEIj+Ydj0vQ697zp+IXMU=")
        );
    }
}
