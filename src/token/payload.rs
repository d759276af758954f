//! The msgpack payload inside a Keystone Fernet token (SPEC §2.2–§2.5).
//!
//! Encoding writes exactly the msgpack types Python Keystone writes, so that
//! tokens are byte-identical; decoding is as lenient as Keystone's
//! `validate_token` under Python 3.11 and msgpack 1.x (str or bin wherever
//! bytes or text are expected, any number for the expiry and the method
//! bitmask, extra trailing elements ignored), and where Keystone reports an
//! unknown version it produces the same message. A payload that cannot be
//! read becomes an error, never a panic. The one deliberate difference:
//! UUID bytes sent as str are accepted even when they happen to be valid
//! UTF-8 (Keystone fails on those; they only come from msgpack < 1.0).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Datelike, Utc};
use rmpv::Value;

use super::codec::urlsafe_b64decode_lenient;

pub use crate::config::KEYSTONE_DEFAULT_METHODS;

/// Highest payload version Keystone knows.
pub const MAX_PAYLOAD_VERSION: u8 = 10;

/// Errors from building or reading a payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Element 0 is not a known version. Holds Python's `str()` of the value.
    #[error("This is not a recognized Fernet payload version: {0}")]
    UnknownVersion(String),
    /// The payload does not have the shape its version requires. Keystone
    /// would fail somewhere inside `disassemble`; we report it as an
    /// unrecognizable token. The field only helps logging.
    #[error("Could not recognize Fernet token")]
    Malformed(&'static str),
    /// A value that Keystone refuses to put in a token (it raises and answers
    /// 500), e.g. a non-UUID trust id or a non-UUID, non-default v1 domain.
    #[error("invalid token payload value: {0}")]
    InvalidValue(String),
}

/// The `[auth] methods` list, which defines the method bitmask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMethods {
    names: Vec<String>,
}

impl Default for AuthMethods {
    fn default() -> Self {
        Self::new(
            KEYSTONE_DEFAULT_METHODS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    }
}

impl AuthMethods {
    /// Methods past the 64th cannot be represented in a msgpack uint and get
    /// no bit (Keystone would fail to pack such a token anyway).
    pub fn new(names: Vec<String>) -> Self {
        Self { names }
    }

    /// The configured names, in bit order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn bits(&self) -> impl DoubleEndedIterator<Item = (u64, &String)> {
        self.names
            .iter()
            .take(64)
            .enumerate()
            .map(|(i, n)| (1u64 << i, n))
    }

    /// `convert_method_list_to_integer`: the sum, over the given names, of
    /// the bit of every configured entry with that name. Unknown names add 0.
    /// Like Python it is a plain sum, so a name listed twice adds its bit
    /// twice; callers pass a de-duplicated list.
    pub fn encode(&self, methods: &[String]) -> u64 {
        let mut sum = 0u64;
        for m in methods {
            for (bit, name) in self.bits() {
                if name == m {
                    sum = sum.wrapping_add(bit);
                }
            }
        }
        sum
    }

    /// `convert_integer_to_method_list`: walk the bits from the highest
    /// configured one down, taking a bit when `int(n / bit) == 1`. The
    /// result is in descending bit order, and a bit above the highest
    /// configured one makes every quotient >= 2, so the result is `[]`
    /// (Keystone's quirk).
    pub fn decode(&self, bits: u64) -> Vec<String> {
        let mut n = bits;
        let mut out = Vec::new();
        if n == 0 {
            return out;
        }
        for (bit, name) in self.bits().rev() {
            // Python's `n / bit` is a float division; with a power-of-two
            // divisor it equals this, even past 2^53.
            if (n as f64 / bit as f64).trunc() == 1.0 {
                out.push(name.clone());
                n -= bit;
            }
        }
        out
    }

    /// The same walk for a float bitmask, which Python accepts as well.
    /// `None` where Python's `int()` raises (NaN or infinite quotient).
    fn decode_float(&self, mut x: f64) -> Option<Vec<String>> {
        let mut out = Vec::new();
        if x == 0.0 {
            return Some(out);
        }
        for (bit, name) in self.bits().rev() {
            let q = x / bit as f64;
            if !q.is_finite() {
                return None;
            }
            if q.trunc() == 1.0 {
                out.push(name.clone());
                x -= bit as f64;
            }
        }
        Some(out)
    }
}

/// Keystone's decoded token tuple, minus `issued_at` (the Fernet timestamp).
/// Fields a payload version does not carry are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPayload {
    pub user_id: String,
    pub methods: Vec<String>,
    /// `[audit_id]` or `[audit_id, parent_audit_id]`.
    pub audit_ids: Vec<String>,
    pub system: Option<String>,
    pub domain_id: Option<String>,
    pub project_id: Option<String>,
    pub trust_id: Option<String>,
    /// `Some` (possibly empty) exactly for federated tokens (v4–v6).
    pub federated_group_ids: Option<Vec<String>>,
    pub identity_provider_id: Option<String>,
    pub protocol_id: Option<String>,
    pub access_token_id: Option<String>,
    pub app_cred_id: Option<String>,
    pub thumbprint: Option<String>,
    /// Whole seconds; sub-second parts are dropped on encode, as Keystone's
    /// `isotime` does before the value reaches the payload.
    pub expires_at: DateTime<Utc>,
}

impl TokenPayload {
    /// An unscoped payload; set the other fields to scope it.
    pub fn new(
        user_id: impl Into<String>,
        methods: Vec<String>,
        audit_ids: Vec<String>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            user_id: user_id.into(),
            methods,
            audit_ids,
            system: None,
            domain_id: None,
            project_id: None,
            trust_id: None,
            federated_group_ids: None,
            identity_provider_id: None,
            protocol_id: None,
            access_token_id: None,
            app_cred_id: None,
            thumbprint: None,
            expires_at,
        }
    }

    /// Whether this is a federated token. Keystone keeps a separate flag;
    /// any federated field stands in for it here.
    pub fn is_federated(&self) -> bool {
        self.federated_group_ids.is_some()
            || self.identity_provider_id.is_some()
            || self.protocol_id.is_some()
    }
}

/// `_determine_payload_class_from_token`: oauth1, trust, federated
/// (project, domain, unscoped), app-cred, oauth2, project, domain, system,
/// unscoped. "Set" means `Some` except for the app-cred id and thumbprint,
/// which Python tests for truthiness (an empty string does not count).
pub fn payload_version(p: &TokenPayload) -> Result<u8, PayloadError> {
    let truthy = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    Ok(if p.access_token_id.is_some() {
        7
    } else if p.trust_id.is_some() {
        3
    } else if p.is_federated() {
        if p.project_id.is_some() {
            5
        } else if p.domain_id.is_some() {
            6
        } else if p.system.is_none() {
            4
        } else {
            // Keystone returns no payload class here and fails with 500.
            return Err(PayloadError::InvalidValue(
                "a federated token cannot be system scoped".into(),
            ));
        }
    } else if truthy(&p.app_cred_id) {
        9
    } else if truthy(&p.thumbprint) {
        10
    } else if p.project_id.is_some() {
        2
    } else if p.domain_id.is_some() {
        1
    } else if p.system.is_some() {
        8
    } else {
        0
    })
}

/// Build the msgpack plaintext Keystone would build for `p`.
pub fn encode_payload(
    p: &TokenPayload,
    methods: &AuthMethods,
    default_domain_id: &str,
) -> Result<Vec<u8>, PayloadError> {
    let version = payload_version(p)?;
    let user = id_pair(Some(&p.user_id));
    let meth = Value::from(methods.encode(&p.methods));
    let exp = Value::F64(p.expires_at.timestamp() as f64);
    let aud = Value::Array(
        p.audit_ids
            .iter()
            .map(|a| audit_id_to_bytes(a).map(Value::Binary))
            .collect::<Result<_, _>>()?,
    );
    let opt_id = |v: &Option<String>| id_pair(v.as_deref());

    let mut items = vec![Value::from(version), user, meth];
    match version {
        0 => items.extend([exp, aud]),
        1 => {
            let domain = p.domain_id.as_deref().unwrap_or_default();
            items.extend([v1_domain(domain, default_domain_id)?, exp, aud]);
        }
        2 => items.extend([opt_id(&p.project_id), exp, aud]),
        3 => {
            let trust = p.trust_id.as_deref().unwrap_or_default();
            let trust = uuid_bytes(trust).ok_or_else(|| {
                PayloadError::InvalidValue(format!("trust id {trust:?} is not a UUID"))
            })?;
            items.extend([
                opt_id(&p.project_id),
                exp,
                aud,
                Value::Binary(trust.to_vec()),
            ]);
        }
        4 => items.extend([
            groups(p)?,
            opt_id(&p.identity_provider_id),
            opt_text(&p.protocol_id),
            exp,
            aud,
        ]),
        5 | 6 => {
            // Python: `project_id or domain_id`.
            let scope = p
                .project_id
                .as_deref()
                .filter(|s| !s.is_empty())
                .or(p.domain_id.as_deref());
            items.extend([
                id_pair(scope),
                groups(p)?,
                opt_id(&p.identity_provider_id),
                opt_text(&p.protocol_id),
                exp,
                aud,
            ]);
        }
        7 => items.extend([opt_id(&p.project_id), opt_id(&p.access_token_id), exp, aud]),
        8 => items.extend([opt_text(&p.system), exp, aud]),
        9 => items.extend([opt_id(&p.project_id), exp, aud, opt_id(&p.app_cred_id)]),
        _ => items.extend([
            opt_id(&p.project_id),
            opt_id(&p.domain_id),
            exp,
            aud,
            // Always `(False, thumbprint)`, never UUID-compressed.
            Value::Array(vec![Value::Boolean(false), opt_text(&p.thumbprint)]),
        ]),
    }

    let mut out = Vec::with_capacity(128);
    rmpv::encode::write_value(&mut out, &Value::Array(items))
        .map_err(|e| PayloadError::InvalidValue(format!("msgpack encoding failed: {e}")))?;
    Ok(out)
}

/// `attempt_convert_uuid_hex_to_bytes`: `[true, bin16]` for anything Python's
/// `uuid.UUID()` accepts, else `[false, str]`, or `[false, nil]` for `None`.
fn id_pair(value: Option<&str>) -> Value {
    match value {
        Some(s) => match uuid_bytes(s) {
            Some(b) => Value::Array(vec![Value::Boolean(true), Value::Binary(b.to_vec())]),
            None => Value::Array(vec![Value::Boolean(false), Value::from(s)]),
        },
        None => Value::Array(vec![Value::Boolean(false), Value::Nil]),
    }
}

fn opt_text(value: &Option<String>) -> Value {
    value.as_deref().map_or(Value::Nil, Value::from)
}

/// v1 keeps the domain bare: 16 UUID bytes, or the configured default domain
/// id as a str when it is not a UUID. Anything else makes Keystone raise.
fn v1_domain(domain: &str, default_domain_id: &str) -> Result<Value, PayloadError> {
    if let Some(b) = uuid_bytes(domain) {
        Ok(Value::Binary(b.to_vec()))
    } else if domain == default_domain_id {
        Ok(Value::from(domain))
    } else {
        Err(PayloadError::InvalidValue(format!(
            "domain id {domain:?} is neither a UUID nor the default domain"
        )))
    }
}

fn groups(p: &TokenPayload) -> Result<Value, PayloadError> {
    // Python maps over the list and fails on None.
    let g = p.federated_group_ids.as_ref().ok_or_else(|| {
        PayloadError::InvalidValue("a federated token needs a group id list".into())
    })?;
    Ok(Value::Array(g.iter().map(|id| id_pair(Some(id))).collect()))
}

/// Read a msgpack plaintext back into the token fields.
pub fn decode_payload(
    bytes: &[u8],
    methods: &AuthMethods,
    default_domain_id: &str,
) -> Result<TokenPayload, PayloadError> {
    let mut rd = bytes;
    let value = rmpv::decode::read_value(&mut rd).map_err(|_| malformed("msgpack"))?;
    // `msgpack.unpackb` refuses trailing bytes (ExtraData).
    if !rd.is_empty() {
        return Err(malformed("trailing bytes after msgpack value"));
    }
    if msgpack_python_rejects(&value) {
        return Err(malformed("msgpack"));
    }
    let Value::Array(items) = &value else {
        return Err(non_array_payload(&value));
    };
    let first = items.first().ok_or(malformed("empty payload"))?;
    let version = version_of(first, &value)?;
    // Python reads fixed indexes, so extra trailing elements are ignored.
    let f = Fields(&items[1..]);

    let user_id = f.id(0, "user_id")?.ok_or(malformed("user_id is nil"))?;
    let methods = f.methods(1, methods)?;
    let mut p = TokenPayload::new(user_id, methods, Vec::new(), DateTime::UNIX_EPOCH);
    match version {
        0 => {
            p.expires_at = f.exp(2)?;
            p.audit_ids = f.audit_ids(3)?;
        }
        1 => {
            p.domain_id = Some(v1_domain_decode(f.get(2, "domain_id")?, default_domain_id)?);
            p.expires_at = f.exp(3)?;
            p.audit_ids = f.audit_ids(4)?;
        }
        2 => {
            p.project_id = f.id(2, "project_id")?;
            p.expires_at = f.exp(3)?;
            p.audit_ids = f.audit_ids(4)?;
        }
        3 => {
            p.project_id = f.id(2, "project_id")?;
            p.expires_at = f.exp(3)?;
            p.audit_ids = f.audit_ids(4)?;
            p.trust_id = Some(uuid_hex_from_value(f.get(5, "trust_id")?, "trust_id")?);
        }
        4 => {
            p.federated_group_ids = Some(f.groups(2)?);
            p.identity_provider_id = f.id(3, "identity_provider_id")?;
            p.protocol_id = f.text(4, "protocol_id")?;
            p.expires_at = f.exp(5)?;
            p.audit_ids = f.audit_ids(6)?;
        }
        5 | 6 => {
            let scope = f.id(2, "scope_id")?;
            if version == 5 {
                p.project_id = scope;
            } else {
                p.domain_id = scope;
            }
            p.federated_group_ids = Some(f.groups(3)?);
            p.identity_provider_id = f.id(4, "identity_provider_id")?;
            p.protocol_id = f.text(5, "protocol_id")?;
            p.expires_at = f.exp(6)?;
            p.audit_ids = f.audit_ids(7)?;
        }
        7 => {
            p.project_id = f.id(2, "project_id")?;
            p.access_token_id = f.id(3, "access_token_id")?;
            p.expires_at = f.exp(4)?;
            p.audit_ids = f.audit_ids(5)?;
        }
        8 => {
            p.system = f.text(2, "system")?;
            p.expires_at = f.exp(3)?;
            p.audit_ids = f.audit_ids(4)?;
        }
        9 => {
            p.project_id = f.id(2, "project_id")?;
            p.expires_at = f.exp(3)?;
            p.audit_ids = f.audit_ids(4)?;
            p.app_cred_id = f.id(5, "app_cred_id")?;
        }
        _ => {
            p.project_id = f.id(2, "project_id")?;
            p.domain_id = f.id(3, "domain_id")?;
            p.expires_at = f.exp(4)?;
            p.audit_ids = f.audit_ids(5)?;
            p.thumbprint = f.id(6, "thumbprint")?;
        }
    }
    Ok(p)
}

fn malformed(what: &'static str) -> PayloadError {
    PayloadError::Malformed(what)
}

/// Python compares `version == payload_class.version`, so `2.0` and `True`
/// match too. Anything else is reported with Python's `str()` of the value,
/// e.g. an auth receipt (whose first element is the user pair) gives
/// "... version: [True, b'\\xf2...']".
fn version_of(v: &Value, whole: &Value) -> Result<u8, PayloadError> {
    match v {
        Value::Integer(i) => {
            if let Some(n) = i.as_u64().filter(|n| *n <= u64::from(MAX_PAYLOAD_VERSION)) {
                return Ok(n as u8);
            }
        }
        Value::Boolean(b) => return Ok(u8::from(*b)),
        Value::F32(_) | Value::F64(_) => {
            let x = v.as_f64().unwrap_or(f64::NAN);
            if x.fract() == 0.0 && (0.0..=f64::from(MAX_PAYLOAD_VERSION)).contains(&x) {
                return Ok(x as u8);
            }
        }
        _ => {}
    }
    // `'...%s' % version` with a tuple (an ExtType) raises TypeError.
    if matches!(v, Value::Ext(..)) {
        return Err(malformed("version"));
    }
    // Keystone unpacks with raw=True (every str becomes bytes) when any str
    // in the payload is not valid UTF-8.
    let raw = has_invalid_utf8(whole);
    let text = match v {
        Value::String(s) if !raw => s.as_str().map(str::to_string),
        _ => python_repr(v, raw),
    };
    Err(text.map_or(malformed("version"), PayloadError::UnknownVersion))
}

/// Python indexes `versioned_payload[0]` on whatever was unpacked, and str,
/// bytes and `ExtType` (a named tuple) are indexable too. Only a version
/// that matches no payload class gives a message; a match fails later.
fn non_array_payload(v: &Value) -> PayloadError {
    let unknown = |n: i64| {
        if (0..=i64::from(MAX_PAYLOAD_VERSION)).contains(&n) {
            malformed("payload is not an array")
        } else {
            PayloadError::UnknownVersion(n.to_string())
        }
    };
    match v {
        Value::String(s) if s.is_str() => match s.as_str().and_then(|t| t.chars().next()) {
            Some(c) => PayloadError::UnknownVersion(c.to_string()),
            None => malformed("empty payload"),
        },
        // Bytes (bin, or str unpacked with raw=True): element 0 is an int.
        Value::String(_) | Value::Binary(_) => match value_bytes(v).and_then(|b| b.first()) {
            Some(&n) => unknown(i64::from(n)),
            None => malformed("empty payload"),
        },
        // Ext type -1 is a msgpack Timestamp, which is not indexable.
        Value::Ext(code, _) if *code >= 0 => unknown(i64::from(*code)),
        _ => malformed("payload is not an array"),
    }
}

/// Values msgpack-python >= 1.0 refuses to unpack at all: maps keyed by
/// anything but str or bin (`strict_map_key`), ext codes below -1, and
/// timestamps (ext -1) of a length other than 4, 8 or 12.
fn msgpack_python_rejects(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.iter().any(msgpack_python_rejects),
        Value::Map(m) => m.iter().any(|(k, x)| {
            !matches!(k, Value::String(_) | Value::Binary(_)) || msgpack_python_rejects(x)
        }),
        Value::Ext(code, data) => *code < -1 || (*code == -1 && ![4, 8, 12].contains(&data.len())),
        _ => false,
    }
}

fn has_invalid_utf8(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_err(),
        Value::Array(a) => a.iter().any(has_invalid_utf8),
        Value::Map(m) => m
            .iter()
            .any(|(k, x)| has_invalid_utf8(k) || has_invalid_utf8(x)),
        _ => false,
    }
}

/// Python's `repr()` of an unpacked msgpack value (`None` for timestamps).
/// Non-ASCII text is escaped only for control and space characters, an
/// approximation of `str.isprintable` that covers realistic ids.
fn python_repr(v: &Value, raw: bool) -> Option<String> {
    Some(match v {
        Value::Nil => "None".into(),
        Value::Boolean(b) => if *b { "True" } else { "False" }.into(),
        Value::Integer(i) => i.to_string(),
        Value::F32(_) | Value::F64(_) => python_float_repr(v.as_f64()?),
        Value::String(s) => match s.as_str() {
            Some(t) if !raw => python_str_repr(t),
            _ => python_bytes_repr(s.as_bytes()),
        },
        Value::Binary(b) => python_bytes_repr(b),
        Value::Array(a) => {
            let items: Option<Vec<String>> = a.iter().map(|x| python_repr(x, raw)).collect();
            format!("[{}]", items?.join(", "))
        }
        Value::Map(m) => {
            let items: Option<Vec<String>> = m
                .iter()
                .map(|(k, x)| {
                    Some(format!(
                        "{}: {}",
                        python_repr(k, raw)?,
                        python_repr(x, raw)?
                    ))
                })
                .collect();
            format!("{{{}}}", items?.join(", "))
        }
        Value::Ext(code, data) if *code >= 0 => {
            format!("ExtType(code={code}, data={})", python_bytes_repr(data))
        }
        // A msgpack Timestamp; its repr is not reproduced.
        Value::Ext(..) => return None,
    })
}

/// Python picks double quotes only when the text has `'` and no `"`.
fn python_quote(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double {
        '"'
    } else {
        '\''
    }
}

fn python_str_repr(s: &str) -> String {
    let quote = python_quote(s.contains('\''), s.contains('"'));
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            ' ' => out.push(' '),
            c if c.is_control() || c.is_whitespace() => {
                let n = u32::from(c);
                let esc = if n < 0x100 {
                    format!("\\x{n:02x}")
                } else if n < 0x10000 {
                    format!("\\u{n:04x}")
                } else {
                    format!("\\U{n:08x}")
                };
                out.push_str(&esc);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn python_bytes_repr(b: &[u8]) -> String {
    let quote = python_quote(b.contains(&b'\''), b.contains(&b'"'));
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(quote);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            c if char::from(c) == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(char::from(c)),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr(float)`: shortest round-trip digits, scientific notation
/// below 1e-4 and from 1e16 on.
fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    // The fewest significant digits that read back as `x`; Rust rounds
    // these half-even like Python's dtoa (plain `{:e}` may not on ties).
    let sci = (0..17)
        .map(|p| format!("{:.p$e}", x.abs()))
        .find(|s| s.parse::<f64>() == Ok(x.abs()))
        .unwrap_or_else(|| format!("{:e}", x.abs()));
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let m = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            format!("{sign}{digits}{}.0", "0".repeat(int_len - digits.len()))
        } else {
            let (i, f) = digits.split_at(int_len);
            format!("{sign}{i}.{f}")
        }
    } else {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    }
}

/// The payload elements after the version, with checked access.
struct Fields<'a>(&'a [Value]);

impl<'a> Fields<'a> {
    fn get(&self, i: usize, what: &'static str) -> Result<&'a Value, PayloadError> {
        self.0.get(i).ok_or(PayloadError::Malformed(what))
    }

    /// An `[is_bytes, value]` pair (`_convert_or_decode`).
    fn id(&self, i: usize, what: &'static str) -> Result<Option<String>, PayloadError> {
        decode_id(self.get(i, what)?, what)
    }

    /// A bare text value (`protocol_id`, `system`); bytes are UTF-8 decoded.
    fn text(&self, i: usize, what: &'static str) -> Result<Option<String>, PayloadError> {
        value_text(self.get(i, what)?, what)
    }

    /// Python does arithmetic on whatever number is there, so bools and
    /// floats work as bitmasks too.
    fn methods(&self, i: usize, methods: &AuthMethods) -> Result<Vec<String>, PayloadError> {
        match self.get(i, "methods")? {
            Value::Integer(n) => Ok(match n.as_u64() {
                Some(bits) => methods.decode(bits),
                // Negative: no quotient is ever 1.
                None => Vec::new(),
            }),
            Value::Boolean(b) => Ok(methods.decode(u64::from(*b))),
            v @ (Value::F32(_) | Value::F64(_)) => v
                .as_f64()
                .and_then(|x| methods.decode_float(x))
                .ok_or(malformed("methods")),
            _ => Err(malformed("methods")),
        }
    }

    fn exp(&self, i: usize) -> Result<DateTime<Utc>, PayloadError> {
        let secs = match self.get(i, "expires_at")? {
            Value::Integer(n) => n.as_i64().ok_or(malformed("expires_at"))?,
            Value::Boolean(b) => i64::from(*b),
            v @ (Value::F32(_) | Value::F64(_)) => {
                float_timestamp_seconds(v.as_f64().ok_or(malformed("expires_at"))?)
                    .ok_or(malformed("expires_at"))?
            }
            _ => return Err(malformed("expires_at")),
        };
        datetime_from_secs(secs).ok_or(malformed("expires_at"))
    }

    fn audit_ids(&self, i: usize) -> Result<Vec<String>, PayloadError> {
        match self.get(i, "audit_ids")? {
            v if is_empty_iterable(v) => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .map(|v| value_bytes(v).map(audit_id_from_bytes))
                .collect::<Option<_>>()
                .ok_or(malformed("audit_ids")),
            _ => Err(malformed("audit_ids")),
        }
    }

    fn groups(&self, i: usize) -> Result<Vec<String>, PayloadError> {
        match self.get(i, "federated_group_ids")? {
            v if is_empty_iterable(v) => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .map(|v| decode_id(v, "federated_group_ids")?.ok_or(malformed("group id is nil")))
                .collect(),
            _ => Err(malformed("federated_group_ids")),
        }
    }
}

/// Python maps over these lists, so any empty iterable (str, bytes, dict)
/// gives `[]` just like an empty array.
fn is_empty_iterable(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.as_bytes().is_empty(),
        Value::Binary(b) => b.is_empty(),
        Value::Map(m) => m.is_empty(),
        _ => false,
    }
}

fn decode_id(v: &Value, what: &'static str) -> Result<Option<String>, PayloadError> {
    // Python unpacks exactly two elements.
    let Value::Array(pair) = v else {
        return Err(malformed(what));
    };
    let [flag, value] = pair.as_slice() else {
        return Err(malformed(what));
    };
    if python_truthy(flag) {
        uuid_hex_from_value(value, what).map(Some)
    } else {
        value_text(value, what)
    }
}

/// Python truthiness of the `is_bytes` flag (Keystone writes only bools).
fn python_truthy(v: &Value) -> bool {
    match v {
        Value::Nil => false,
        Value::Boolean(b) => *b,
        Value::Integer(i) => i.as_i64() != Some(0) && i.as_u64() != Some(0),
        Value::F32(_) | Value::F64(_) => v.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.as_bytes().is_empty(),
        Value::Binary(b) => !b.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Map(m) => !m.is_empty(),
        Value::Ext(..) => true,
    }
}

/// Raw bytes from bin, or from str as msgpack < 1.0 wrote them.
fn value_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Binary(b) => Some(b),
        Value::String(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// Text from str or bin (UTF-8); nil is `None`.
fn value_text(v: &Value, what: &'static str) -> Result<Option<String>, PayloadError> {
    match v {
        Value::Nil => Ok(None),
        _ => {
            let b = value_bytes(v).ok_or(malformed(what))?;
            let s = std::str::from_utf8(b).map_err(|_| malformed(what))?;
            Ok(Some(s.to_string()))
        }
    }
}

/// `uuid.UUID(bytes=v).hex`: exactly 16 bytes, to lower-case hex.
fn uuid_hex_from_value(v: &Value, what: &'static str) -> Result<String, PayloadError> {
    let b = value_bytes(v).ok_or(malformed(what))?;
    let b: [u8; 16] = b.try_into().map_err(|_| malformed(what))?;
    Ok(format!("{:032x}", u128::from_be_bytes(b)))
}

/// v1's bare domain: 16 bytes are a UUID, otherwise it must be the
/// configured default domain id.
fn v1_domain_decode(v: &Value, default_domain_id: &str) -> Result<String, PayloadError> {
    if let Value::Binary(b) = v {
        if b.len() == 16 {
            return uuid_hex_from_value(v, "domain_id");
        }
    }
    let b = value_bytes(v).ok_or(malformed("domain_id"))?;
    if b == default_domain_id.as_bytes() {
        return Ok(default_domain_id.to_string());
    }
    // A legacy (msgpack < 1.0) token has the UUID bytes as str.
    uuid_hex_from_value(v, "domain_id")
}

/// `datetime.fromtimestamp(x, UTC)` then `isotime`: the microseconds are
/// rounded half-even (which can carry into the next second) and then dropped.
fn float_timestamp_seconds(x: f64) -> Option<i64> {
    if !x.is_finite() {
        return None;
    }
    let int = x.trunc();
    let us = ((x - int) * 1e6).round_ties_even();
    let secs = if us >= 1e6 {
        int + 1.0
    } else if us < 0.0 {
        int - 1.0
    } else {
        int
    };
    // Anything outside +-2^62 is far beyond year 9999 anyway.
    (secs.abs() < 4.6e18).then_some(secs as i64)
}

/// Python datetimes only cover years 1..=9999 (fromtimestamp fails
/// outside), and an expiry before year 1000 fails too: `strftime('%Y')`
/// does not zero-pad it, so Keystone cannot parse its own `isotime` back.
fn datetime_from_secs(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0).filter(|d| (1000..=9999).contains(&d.year()))
}

/// `issued_at` from a Fernet timestamp (`TokenFormatter.creation_time`).
pub fn issued_at_from_timestamp(ts: u64) -> Result<DateTime<Utc>, PayloadError> {
    i64::try_from(ts)
        .ok()
        .and_then(datetime_from_secs)
        .ok_or(malformed("fernet timestamp"))
}

/// Keystone's `isotime(at, subsecond=True)`: microseconds are truncated, so
/// the fraction is always `.000000`.
pub fn isotime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S.000000Z").to_string()
}

/// A new audit id like Keystone's `random_urlsafe_str`: the bytes of a
/// random UUID4, URL-safe base64 without padding (22 characters).
pub fn new_audit_id() -> String {
    audit_id_from_bytes(uuid::Uuid::new_v4().as_bytes())
}

/// `random_urlsafe_str_to_bytes`: `urlsafe_b64decode(s + '==')` with
/// Python's lenient decoder. Fails (Keystone: 500) on non-ASCII input or
/// a length that cannot be base64.
pub fn audit_id_to_bytes(audit_id: &str) -> Result<Vec<u8>, PayloadError> {
    let invalid = || PayloadError::InvalidValue(format!("audit id {audit_id:?} is not base64"));
    if !audit_id.is_ascii() {
        return Err(invalid());
    }
    let mut s = Vec::with_capacity(audit_id.len() + 2);
    s.extend_from_slice(audit_id.as_bytes());
    s.extend_from_slice(b"==");
    urlsafe_b64decode_lenient(&s).ok_or_else(invalid)
}

/// `urlsafe_b64encode(b).rstrip('=')`.
pub fn audit_id_from_bytes(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Python's `uuid.UUID(value).hex`, or `None` where it raises ValueError.
pub fn uuid_hex(value: &str) -> Option<String> {
    python_uuid_int(value).map(|n| format!("{n:032x}"))
}

/// Python's `uuid.UUID(value).bytes` (RFC 4122 big-endian).
pub fn uuid_bytes(value: &str) -> Option<[u8; 16]> {
    python_uuid_int(value).map(u128::to_be_bytes)
}

/// `uuid.UUID(hex)`: drop every `urn:` and `uuid:`, strip `{`/`}` from both
/// ends, drop every `-`, require 32 characters, then `int(hex, 16)`.
fn python_uuid_int(value: &str) -> Option<u128> {
    let s = value.replace("urn:", "").replace("uuid:", "");
    let s = s.trim_matches(|c| c == '{' || c == '}').replace('-', "");
    if s.chars().count() != 32 {
        return None;
    }
    python_int_hex(&s)
}

/// Python's `int(s, 16)` for ASCII digits: surrounding whitespace, one `+`,
/// an optional `0x` prefix and single `_` between digits are allowed. (Python
/// also takes non-ASCII decimal digits; those are refused here, which only
/// matters for IDs that are not UUIDs in any practical sense.)
fn python_int_hex(s: &str) -> Option<u128> {
    // int() strips Unicode whitespace, but not \x1c..\x1f (which
    // `str.isspace` counts): exactly Rust's `is_whitespace`.
    let s = s.trim_matches(char::is_whitespace);
    let s = s.strip_prefix('+').unwrap_or(s);
    let (s, prefixed) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    // An underscore may follow the base prefix directly.
    let s = if prefixed {
        s.strip_prefix('_').unwrap_or(s)
    } else {
        s
    };
    let mut n: u128 = 0;
    let mut digits = 0usize;
    let mut prev_underscore = true; // no leading underscore
    for c in s.chars() {
        if c == '_' {
            if prev_underscore {
                return None;
            }
            prev_underscore = true;
            continue;
        }
        let d = c.to_digit(16)?;
        n = n.checked_mul(16)?.checked_add(u128::from(d))?;
        digits += 1;
        prev_underscore = false;
    }
    (digits > 0 && !prev_underscore).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "f2b5d6a3c1e84f0b9a7d3e2c1b0a9f8e";
    const PID: &str = "6f8e3c2a1b0d4e5f9a8b7c6d5e4f3a2b";
    const AUD: &str = "YWJjZGVmZ2hpamtsbW5vcA";
    const AUD2: &str = "cXJzdHV2d3h5ejAxMjM0NQ";

    fn mirror_methods() -> AuthMethods {
        AuthMethods::new(
            KEYSTONE_DEFAULT_METHODS[..6]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn exp() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_003_600, 0).unwrap()
    }

    fn base() -> TokenPayload {
        TokenPayload::new(UID, strings(&["password"]), strings(&[AUD]), exp())
    }

    fn pack(v: Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &v).unwrap();
        out
    }

    fn decode(bytes: &[u8]) -> Result<TokenPayload, PayloadError> {
        decode_payload(bytes, &mirror_methods(), "default")
    }

    fn round_trip(p: &TokenPayload) -> TokenPayload {
        decode(&encode_payload(p, &mirror_methods(), "default").unwrap()).unwrap()
    }

    fn bin(hex: &str) -> Value {
        let n = u128::from_str_radix(hex, 16).unwrap();
        Value::Binary(n.to_be_bytes().to_vec())
    }

    fn one_of_every_version() -> Vec<(u8, TokenPayload)> {
        let mut v = Vec::new();
        v.push((0, base()));
        let mut p = base();
        p.domain_id = Some("9d8c7b6a5f4e4d3c2b1a0f9e8d7c6b5a".into());
        v.push((1, p.clone()));
        p.domain_id = Some("default".into());
        v.push((1, p));
        let mut p = base();
        p.project_id = Some(PID.into());
        p.audit_ids = strings(&[AUD2, AUD]);
        p.methods = strings(&["token", "password"]);
        v.push((2, p.clone()));
        let mut t = p.clone();
        t.trust_id = Some("11112222333344445555666677778888".into());
        v.push((3, t));
        let mut f = base();
        f.user_id = "2b7f6e9c3d1a0b5e8f4c7a2d9e6b1f3c5a8d0e2b4f6a9c1e3d5b7f0a2c4e6b8d".into();
        f.methods = strings(&["mapped"]);
        f.federated_group_ids = Some(strings(&["c0ffee00c0ffee00c0ffee00c0ffee00", "admins"]));
        f.identity_provider_id = Some("myidp".into());
        f.protocol_id = Some("openid".into());
        v.push((4, f.clone()));
        let mut f5 = f.clone();
        f5.project_id = Some(PID.into());
        v.push((5, f5));
        let mut f6 = f.clone();
        f6.domain_id = Some("default".into());
        f6.federated_group_ids = Some(vec![]);
        v.push((6, f6));
        let mut o = p.clone();
        o.access_token_id = Some("aaaabbbbccccddddeeeeffff00001111".into());
        v.push((7, o));
        let mut s = base();
        s.system = Some("all".into());
        v.push((8, s));
        let mut a = p.clone();
        a.app_cred_id = Some("1234567890abcdef1234567890abcdef".into());
        v.push((9, a));
        let mut t10 = p.clone();
        t10.methods = vec![];
        t10.thumbprint = Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into());
        v.push((10, t10));
        v
    }

    #[test]
    fn round_trip_every_version() {
        for (version, p) in one_of_every_version() {
            assert_eq!(payload_version(&p).unwrap(), version);
            let bytes = encode_payload(&p, &mirror_methods(), "default").unwrap();
            assert_eq!(bytes[1], version, "{p:?}");
            assert_eq!(decode(&bytes).unwrap(), p, "version {version}");
        }
    }

    #[test]
    fn selection_order() {
        let mut p = base();
        p.project_id = Some(PID.into());
        p.domain_id = Some("default".into());
        p.system = Some("all".into());
        assert_eq!(payload_version(&p).unwrap(), 2);
        p.thumbprint = Some("t".into());
        assert_eq!(payload_version(&p).unwrap(), 10);
        p.app_cred_id = Some("a".into());
        assert_eq!(payload_version(&p).unwrap(), 9);
        p.protocol_id = Some("saml2".into());
        assert_eq!(payload_version(&p).unwrap(), 5);
        p.trust_id = Some(UID.into());
        assert_eq!(payload_version(&p).unwrap(), 3);
        p.access_token_id = Some(UID.into());
        assert_eq!(payload_version(&p).unwrap(), 7);
        // Empty app-cred id / thumbprint are falsy in Python.
        let mut q = base();
        q.app_cred_id = Some(String::new());
        q.thumbprint = Some(String::new());
        assert_eq!(payload_version(&q).unwrap(), 0);
        // Federated + system scope has no payload class.
        let mut fed = base();
        fed.federated_group_ids = Some(vec![]);
        fed.system = Some("all".into());
        assert!(matches!(
            payload_version(&fed),
            Err(PayloadError::InvalidValue(_))
        ));
        // Federated without groups: Python fails mapping over None.
        let mut fed = base();
        fed.identity_provider_id = Some("idp".into());
        assert!(matches!(
            encode_payload(&fed, &mirror_methods(), "default"),
            Err(PayloadError::InvalidValue(_))
        ));
    }

    #[test]
    fn uuid_normalisation() {
        let want = Some(UID.to_string());
        for s in [
            UID,
            "F2B5D6A3C1E84F0B9A7D3E2C1B0A9F8E",
            "f2b5d6a3-c1e8-4f0b-9a7d-3e2c1b0a9f8e",
            "{f2b5d6a3-c1e8-4f0b-9a7d-3e2c1b0a9f8e}",
            "{{f2b5d6a3c1e84f0b9a7d3e2c1b0a9f8e}",
            "urn:uuid:f2b5d6a3-c1e8-4f0b-9a7d-3e2c1b0a9f8e",
            "uuid:F2B5D6A3-C1E8-4F0B-9A7D-3E2C1B0A9F8E",
            "f2b5d6a3c1e84f0b9a7d3e2c1b0a9f8e----",
            "f2b5d6a3urn:c1e84f0b9a7d3e2c1b0a9f8e",
        ] {
            assert_eq!(uuid_hex(s), want, "{s}");
        }
        // Python int() quirks: sign, whitespace, 0x prefix, underscores.
        assert_eq!(
            uuid_hex("+2b5d6a3c1e84f0b9a7d3e2c1b0a9f8e"),
            Some("02b5d6a3c1e84f0b9a7d3e2c1b0a9f8e".into())
        );
        assert_eq!(
            uuid_hex(" 2b5d6a3c1e84f0b9a7d3e2c1b0a9f8e"),
            Some("02b5d6a3c1e84f0b9a7d3e2c1b0a9f8e".into())
        );
        assert_eq!(
            uuid_hex("0x00000000000000000000000000000a"),
            Some(format!("{:032x}", 10))
        );
        assert_eq!(
            uuid_hex("0x_0000000000000000000000000000a"),
            Some(format!("{:032x}", 10))
        );
        assert_eq!(
            uuid_hex("f_2b5d6a3c1e84f0b9a7d3e2c1b0a9f8e"[..32].as_ref()),
            Some("0f2b5d6a3c1e84f0b9a7d3e2c1b0a9f8".into())
        );
        for bad in [
            "",
            "default",
            "cn=alice,ou=users",
            "f2b5d6a3c1e84f0b9a7d3e2c1b0a9f8",
            "f2b5d6a3c1e84f0b9a7d3e2c1b0a9f8e0",
            "g2b5d6a3c1e84f0b9a7d3e2c1b0a9f8e",
            "URN:UUID:f2b5d6a3c1e84f0b9a7d3e2c1b0a9f8e",
            "_f2b5d6a3c1e84f0b9a7d3e2c1b0a9f8",
            "f2b5d6a3c1e84f0b9a7d3e2c1b0a9f8_",
            "f2b5__a3c1e84f0b9a7d3e2c1b0a9f8e",
            "0x",
            "++2b5d6a3c1e84f0b9a7d3e2c1b0a9f8",
            "                                ",
            "f2b5d6a3c1e84f0b9a7d3e2c1b0a9f8é",
            // int() does not strip \x1c..\x1f although isspace() is true.
            "\x1cf2b5d6a3c1e84f0b9a7d3e2c1b0a9f8",
            // 64-char federated user id (sha256) is not a UUID.
            "2b7f6e9c3d1a0b5e8f4c7a2d9e6b1f3c5a8d0e2b4f6a9c1e3d5b7f0a2c4e6b8d",
        ] {
            assert_eq!(uuid_hex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn normalised_ids_come_back_as_lower_hex() {
        let mut p = base();
        p.user_id = "F2B5D6A3-C1E8-4F0B-9A7D-3E2C1B0A9F8E".into();
        p.project_id = Some("{6f8e3c2a-1b0d-4e5f-9a8b-7c6d5e4f3a2b}".into());
        let d = round_trip(&p);
        assert_eq!(d.user_id, UID);
        assert_eq!(d.project_id.as_deref(), Some(PID));
    }

    #[test]
    fn v1_default_domain() {
        let mut p = base();
        p.domain_id = Some("default".into());
        let bytes = encode_payload(&p, &mirror_methods(), "default").unwrap();
        // Bare str, not a pair.
        let needle = [0xa7, b'd', b'e', b'f', b'a', b'u', b'l', b't'];
        assert!(bytes.windows(8).any(|w| w == needle));
        assert_eq!(
            decode(&bytes).unwrap().domain_id.as_deref(),
            Some("default")
        );
        // Another non-UUID domain cannot be encoded.
        p.domain_id = Some("other".into());
        assert!(matches!(
            encode_payload(&p, &mirror_methods(), "default"),
            Err(PayloadError::InvalidValue(_))
        ));
        // With a different configured default, "other" works, and a token
        // carrying "default" no longer decodes.
        let other = encode_payload(&p, &mirror_methods(), "other").unwrap();
        assert_eq!(
            decode_payload(&other, &mirror_methods(), "other")
                .unwrap()
                .domain_id
                .as_deref(),
            Some("other")
        );
        assert_eq!(
            decode_payload(&bytes, &mirror_methods(), "other"),
            Err(PayloadError::Malformed("domain_id"))
        );
        // Bin form of the default id is accepted too.
        let v = Value::Array(vec![
            1.into(),
            Value::Array(vec![true.into(), bin(UID)]),
            2.into(),
            Value::Binary(b"default".to_vec()),
            Value::F64(1_700_003_600.0),
            Value::Array(vec![]),
        ]);
        assert_eq!(
            decode(&pack(v)).unwrap().domain_id.as_deref(),
            Some("default")
        );
    }

    #[test]
    fn trust_id_must_be_uuid() {
        let mut p = base();
        p.project_id = Some(PID.into());
        p.trust_id = Some("not-a-uuid".into());
        assert!(matches!(
            encode_payload(&p, &mirror_methods(), "default"),
            Err(PayloadError::InvalidValue(_))
        ));
    }

    #[test]
    fn legacy_raw_strings() {
        // msgpack < 1.0 wrote bytes as str: raw UUID bytes and audit ids in
        // str-family values, which need not be valid UTF-8.
        let raw = |hex: &str| {
            let n = u128::from_str_radix(hex, 16).unwrap();
            let mut out = vec![0xb0];
            out.extend_from_slice(&n.to_be_bytes());
            out
        };
        let mut b = vec![0x96, 0x02, 0x92, 0xc3];
        b.extend(raw(UID));
        b.extend([0x06, 0x92, 0xc3]);
        b.extend(raw(PID));
        b.extend([0xcb, 0x41, 0xd9, 0x54, 0xff, 0xc4, 0, 0, 0, 0x91]);
        let mut a = vec![0xb0];
        a.extend_from_slice(b"abcdefghijklmnop");
        b.extend(a);
        let d = decode(&b).unwrap();
        assert_eq!(d.user_id, UID);
        assert_eq!(d.project_id.as_deref(), Some(PID));
        assert_eq!(d.methods, strings(&["token", "password"]));
        assert_eq!(d.audit_ids, strings(&[AUD]));
        assert_eq!(d.expires_at, exp());
        // Text fields given as bin are decoded as UTF-8.
        let v = Value::Array(vec![
            8.into(),
            Value::Array(vec![false.into(), Value::Binary(b"cn=bob".to_vec())]),
            2.into(),
            Value::Binary(b"all".to_vec()),
            Value::F64(1_700_003_600.0),
            Value::Array(vec![]),
        ]);
        let d = decode(&pack(v)).unwrap();
        assert_eq!(d.user_id, "cn=bob");
        assert_eq!(d.system.as_deref(), Some("all"));
    }

    #[test]
    fn method_bits() {
        let m = mirror_methods();
        assert_eq!(m.encode(&strings(&["password"])), 2);
        assert_eq!(m.encode(&strings(&["token", "password"])), 6);
        assert_eq!(m.encode(&strings(&["totp", "oauth2_credential"])), 0);
        assert_eq!(m.decode(6), strings(&["token", "password"]));
        assert_eq!(m.decode(63).len(), 6);
        assert_eq!(m.decode(0), Vec::<String>::new());
        // The high-bit quirk: any bit above 32 empties the result.
        for n in [64, 66, 96, 130, u64::MAX] {
            assert_eq!(m.decode(n), Vec::<String>::new(), "{n}");
        }
        // Keystone 30.0.0 default has ec2credential = 64.
        let d = AuthMethods::default();
        assert_eq!(d.encode(&strings(&["ec2credential"])), 64);
        assert_eq!(d.decode(66), strings(&["ec2credential", "password"]));
        assert_eq!(d.names().len(), 7);
        // No bits past the 64th method, and no overflow.
        let many = AuthMethods::new((0..70).map(|i| format!("m{i}")).collect());
        assert_eq!(many.encode(&strings(&["m63"])), 1 << 63);
        assert_eq!(many.encode(&strings(&["m64"])), 0);
        assert_eq!(many.decode(1 << 63), strings(&["m63"]));
        assert_eq!(AuthMethods::new(vec![]).decode(5), Vec::<String>::new());
    }

    #[test]
    fn negative_methods_decode_to_nothing() {
        let v = Value::Array(vec![
            0.into(),
            Value::Array(vec![false.into(), "u".into()]),
            (-2i64).into(),
            Value::F64(1_700_003_600.0),
            Value::Array(vec![]),
        ]);
        assert_eq!(decode(&pack(v)).unwrap().methods, Vec::<String>::new());
    }

    #[test]
    fn python_number_leniency() {
        // Python does arithmetic on any number in the methods and expiry
        // slots, and maps over any empty iterable for audit and group ids.
        let v0 = |meth: Value, exp: Value, aud: Value| {
            decode(&pack(Value::Array(vec![
                0.into(),
                Value::Array(vec![false.into(), "u".into()]),
                meth,
                exp,
                aud,
            ])))
        };
        let ok = |meth: Value| v0(meth, Value::F64(1.0e9), Value::Array(vec![])).map(|p| p.methods);
        assert_eq!(ok(Value::F64(6.0)), Ok(strings(&["token", "password"])));
        assert_eq!(ok(Value::F64(1.5)), Ok(strings(&["external"])));
        assert_eq!(ok(Value::F64(-1e300)), Ok(vec![]));
        assert_eq!(ok(Value::F64(-0.0)), Ok(vec![]));
        assert_eq!(ok(true.into()), Ok(strings(&["external"])));
        assert!(ok(Value::F64(f64::NAN)).is_err());
        assert!(ok(Value::F64(f64::INFINITY)).is_err());
        assert!(ok("2".into()).is_err());
        let p = v0(2.into(), true.into(), Value::Binary(vec![])).unwrap();
        assert_eq!(p.expires_at.timestamp(), 1);
        assert!(p.audit_ids.is_empty());
        for empty in ["".into(), Value::Map(vec![])] {
            assert!(v0(2.into(), Value::F64(1.0e9), empty).is_ok());
        }
        // Expiry before year 1000 cannot round-trip through Keystone's
        // isotime, so it is refused as Keystone fails on it.
        assert!(v0(
            2.into(),
            Value::F64(-40_000_000_000.0),
            Value::Array(vec![])
        )
        .is_err());
    }

    #[test]
    fn extra_trailing_elements_are_ignored() {
        for (_, p) in one_of_every_version() {
            let bytes = encode_payload(&p, &mirror_methods(), "default").unwrap();
            let Value::Array(mut items) = rmpv::decode::read_value(&mut &bytes[..]).unwrap() else {
                panic!()
            };
            items.push("extra".into());
            items.push(Value::Map(vec![]));
            assert_eq!(decode(&pack(Value::Array(items))).unwrap(), p);
        }
    }

    #[test]
    fn truncated_or_mangled_payloads_are_errors() {
        for (_, p) in one_of_every_version() {
            let bytes = encode_payload(&p, &mirror_methods(), "default").unwrap();
            // Every byte prefix, and the array with fewer elements.
            for n in 0..bytes.len() {
                assert!(decode(&bytes[..n]).is_err());
            }
            let Value::Array(items) = rmpv::decode::read_value(&mut &bytes[..]).unwrap() else {
                panic!()
            };
            for n in 0..items.len() {
                let e = decode(&pack(Value::Array(items[..n].to_vec()))).unwrap_err();
                assert!(matches!(e, PayloadError::Malformed(_)), "{e:?}");
            }
            // Each element replaced by a wrong type.
            for i in 1..items.len() {
                for bad in [
                    Value::Map(vec![("k".into(), 1.into())]),
                    Value::Array(vec![1.into()]),
                ] {
                    let mut m = items.clone();
                    m[i] = bad;
                    assert!(decode(&pack(Value::Array(m))).is_err());
                }
            }
            // Trailing bytes after the value.
            let mut extra = bytes.clone();
            extra.push(0xc0);
            assert!(decode(&extra).is_err());
        }
        for junk in [&[][..], &[0xc0], &[0x90], &[0x01], &[0xa1, b'x'], &[0xc1]] {
            assert!(decode(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn id_pair_shapes() {
        let with_user = |u: Value| {
            pack(Value::Array(vec![
                0.into(),
                u,
                2.into(),
                Value::F64(1.0),
                Value::Array(vec![]),
            ]))
        };
        // [true, non-16 bytes], 3-element pair, nil user, invalid UTF-8 text.
        for bad in [
            Value::Array(vec![true.into(), Value::Binary(vec![1, 2, 3])]),
            Value::Array(vec![false.into(), "a".into(), "b".into()]),
            Value::Array(vec![false.into(), Value::Nil]),
            Value::Array(vec![false.into(), Value::Binary(vec![0xff])]),
            Value::Array(vec![false.into(), 5.into()]),
        ] {
            assert!(decode(&with_user(bad.clone())).is_err(), "{bad:?}");
        }
        // Truthy flags other than bools, as Python would read them.
        let d = decode(&with_user(Value::Array(vec![1.into(), bin(UID)]))).unwrap();
        assert_eq!(d.user_id, UID);
        let d = decode(&with_user(Value::Array(vec![Value::Nil, "x".into()]))).unwrap();
        assert_eq!(d.user_id, "x");
    }

    #[test]
    fn unknown_versions() {
        let with_version = |v: Value| pack(Value::Array(vec![v]));
        let msg = |v: Value| decode(&with_version(v)).unwrap_err().to_string();
        assert_eq!(
            msg(99.into()),
            "This is not a recognized Fernet payload version: 99"
        );
        assert_eq!(
            msg((-1i64).into()),
            "This is not a recognized Fernet payload version: -1"
        );
        assert_eq!(
            msg(Value::F64(2.5)),
            "This is not a recognized Fernet payload version: 2.5"
        );
        assert_eq!(
            msg(Value::F64(11.0)),
            "This is not a recognized Fernet payload version: 11.0"
        );
        assert_eq!(
            msg(Value::Nil),
            "This is not a recognized Fernet payload version: None"
        );
        assert_eq!(
            msg("x".into()),
            "This is not a recognized Fernet payload version: x"
        );
        // Python's `2.0 == 2`: version matches, then the body is too short.
        assert_eq!(
            decode(&with_version(Value::F64(2.0))),
            Err(PayloadError::Malformed("user_id"))
        );
        // An auth receipt has no version: its first element is a pair.
        let receipt = pack(Value::Array(vec![
            Value::Array(vec![true.into(), bin(UID)]),
            2.into(),
            Value::F64(1.0),
        ]));
        assert_eq!(
            decode(&receipt).unwrap_err().to_string(),
            "This is not a recognized Fernet payload version: \
             [True, b'\\xf2\\xb5\\xd6\\xa3\\xc1\\xe8O\\x0b\\x9a}>,\\x1b\\n\\x9f\\x8e']"
        );
    }

    #[test]
    fn unknown_version_uses_python_str() {
        // Expected strings produced by CPython's `'%s' % value`.
        let msg_of =
            |items: Vec<Value>| decode(&pack(Value::Array(items))).unwrap_err().to_string();
        let prefix = "This is not a recognized Fernet payload version: ";
        assert_eq!(
            msg_of(vec![Value::Array(vec![
                false.into(),
                "cn=alice's \"x\"\n".into()
            ])]),
            format!("{prefix}[False, 'cn=alice\\'s \"x\"\\n']")
        );
        assert_eq!(
            msg_of(vec![Value::Array(vec![
                Value::Nil,
                Value::F64(1.5),
                (-3i64).into(),
                Value::Map(vec![(Value::Binary(b"k".to_vec()), "it's".into())]),
                Value::Array(vec![]),
                Value::F64(1e16),
                Value::F64(0.1),
            ])]),
            format!("{prefix}[None, 1.5, -3, {{b'k': \"it's\"}}, [], 1e+16, 0.1]")
        );
        assert_eq!(
            msg_of(vec![Value::Binary(b"a\x00'".to_vec())]),
            format!("{prefix}b\"a\\x00'\"")
        );
        // Top-level str is printed as is; inside a list it is repr'd.
        assert_eq!(
            msg_of(vec!["caf\u{e9}\u{a0}\t".into()]),
            format!("{prefix}caf\u{e9}\u{a0}\t")
        );
        assert_eq!(
            msg_of(vec![Value::Array(vec!["caf\u{e9}\u{a0}\t".into()])]),
            format!("{prefix}['caf\u{e9}\\xa0\\t']")
        );
        // raw=True retry: an invalid UTF-8 str anywhere turns every str
        // into bytes: ["v", <str 0xff>].
        let b = [0x92, 0xa1, b'v', 0xa1, 0xff];
        assert_eq!(decode(&b).unwrap_err().to_string(), format!("{prefix}b'v'"));
        // Top-level str, bytes and ext are indexable in Python too.
        let top = |v: Value| decode(&pack(v)).unwrap_err();
        assert_eq!(top("abc".into()).to_string(), format!("{prefix}a"));
        assert_eq!(
            top(Value::Binary(vec![50, 1])).to_string(),
            format!("{prefix}50")
        );
        assert_eq!(
            top(Value::Ext(42, vec![1])).to_string(),
            format!("{prefix}42")
        );
        for v in [
            Value::Binary(vec![2, 1]),
            Value::Binary(vec![]),
            "".into(),
            Value::Ext(-1, vec![0; 4]),
            Value::Ext(3, vec![0; 2]),
            Value::Map(vec![]),
        ] {
            assert!(matches!(top(v), PayloadError::Malformed(_)));
        }
        assert_eq!(
            msg_of(vec![Value::Array(vec![Value::Ext(5, b"x".to_vec())])]),
            format!("{prefix}[ExtType(code=5, data=b'x')]")
        );
        // Timestamps are not rendered; invalid ext values never unpack.
        for v in [
            Value::Ext(-1, vec![0; 4]),
            Value::Ext(-1, vec![0; 5]),
            Value::Ext(-2, vec![0; 4]),
        ] {
            assert!(matches!(
                decode(&pack(Value::Array(vec![v]))),
                Err(PayloadError::Malformed(_))
            ));
        }
        let mut p = pack(Value::Array(vec![
            0.into(),
            Value::Array(vec![false.into(), "u".into()]),
            2.into(),
            Value::F64(1_700_003_600.0),
            Value::Array(vec![]),
            Value::Map(vec![(1.into(), 2.into())]),
        ]));
        assert!(matches!(decode(&p), Err(PayloadError::Malformed(_))));
        // The same with a str key is fine (trailing element ignored).
        p.truncate(p.len() - 3);
        p.extend([0x81, 0xa1, b'k', 0x02]);
        assert!(decode(&p).is_ok());
    }

    #[test]
    fn python_float_repr_matches() {
        for (x, s) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (11.0, "11.0"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (f64::INFINITY, "inf"),
            // Exact tie between two 17-digit candidates: half-even.
            (f64::from_bits(0x42e8_2d8e_4e04_0cb4), "212671520579685.62"),
        ] {
            assert_eq!(python_float_repr(x), s);
        }
    }

    #[test]
    fn expiry_as_int_float_and_rounding() {
        let with_exp = |e: Value| {
            pack(Value::Array(vec![
                0.into(),
                Value::Array(vec![false.into(), "u".into()]),
                2.into(),
                e,
                Value::Array(vec![]),
            ]))
        };
        let at = |e: Value| decode(&with_exp(e)).map(|p| p.expires_at.timestamp());
        assert_eq!(at(1_700_003_600u64.into()), Ok(1_700_003_600));
        assert_eq!(at(Value::F64(1_700_003_600.7)), Ok(1_700_003_600));
        assert_eq!(at(Value::F32(1024.5)), Ok(1024));
        // Microseconds round half-even and may carry.
        assert_eq!(at(Value::F64(1_700_003_599.999_999_9)), Ok(1_700_003_600));
        assert_eq!(at(Value::F64(-1.5)), Ok(-2));
        assert_eq!(at(Value::F64(-0.000_000_1)), Ok(0));
        for bad in [
            Value::F64(f64::NAN),
            Value::F64(f64::INFINITY),
            Value::F64(1e300),
            Value::F64(253_402_300_800.0), // year 10000
            u64::MAX.into(),
            "1700003600".into(),
            Value::Nil,
        ] {
            assert!(at(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn isotime_truncates() {
        let t = DateTime::from_timestamp(1_700_000_000, 999_999_999).unwrap();
        assert_eq!(isotime(t), "2023-11-14T22:13:20.000000Z");
        assert_eq!(
            isotime(issued_at_from_timestamp(1_700_000_000).unwrap()),
            "2023-11-14T22:13:20.000000Z"
        );
        assert!(issued_at_from_timestamp(u64::MAX).is_err());
        // Sub-second expiry is dropped on encode.
        let mut p = base();
        p.expires_at = t;
        assert_eq!(round_trip(&p).expires_at.timestamp(), 1_700_000_000);
    }

    #[test]
    fn audit_ids() {
        let id = new_audit_id();
        assert_eq!(id.len(), 22);
        let b = audit_id_to_bytes(&id).unwrap();
        assert_eq!(b.len(), 16);
        assert_eq!(b[6] >> 4, 4, "uuid4 version nibble");
        assert_eq!(audit_id_from_bytes(&b), id);
        assert_eq!(audit_id_to_bytes(AUD).unwrap(), b"abcdefghijklmnop");
        // Already padded, and the standard alphabet, as Python accepts.
        assert_eq!(
            audit_id_to_bytes(&format!("{AUD}==")).unwrap(),
            b"abcdefghijklmnop"
        );
        assert_eq!(
            audit_id_to_bytes("-_-_").unwrap(),
            audit_id_to_bytes("+/+/").unwrap()
        );
        assert!(audit_id_to_bytes("abcde").is_err());
        assert!(audit_id_to_bytes("ébcd").is_err());
        let mut p = base();
        p.audit_ids = vec!["x".into()];
        assert!(encode_payload(&p, &mirror_methods(), "default").is_err());
        assert_ne!(new_audit_id(), new_audit_id());
    }

    #[test]
    fn v10_domain_and_thumbprint() {
        let mut p = base();
        p.project_id = Some(PID.into());
        p.domain_id = Some("default".into());
        p.thumbprint = Some(UID.into()); // never UUID-compressed
        let bytes = encode_payload(&p, &mirror_methods(), "default").unwrap();
        let d = decode(&bytes).unwrap();
        assert_eq!(d, p);
        let Value::Array(items) = rmpv::decode::read_value(&mut &bytes[..]).unwrap() else {
            panic!()
        };
        assert_eq!(items[7], Value::Array(vec![false.into(), Value::from(UID)]));
    }
}
