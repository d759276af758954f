//! The Fernet layer of a Keystone token (SPEC §2.1).
//!
//! This module only turns plaintext bytes into a token string and back. It
//! knows nothing about the msgpack payload inside, nor about key files on
//! disk: callers hand it ready `fernet::Fernet` keys in Keystone's load order
//! (primary first, then secondaries, staged key `0` last).
//!
//! Python Keystone is more lenient than the `fernet` crate in three ways, all
//! reproduced here: it restores stripped `=` padding, its base64 decoder skips
//! junk and accepts `+`/`/` in place of `-`/`_`, and it applies no TTL and no
//! future-timestamp check (expiry comes only from the payload).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// Tokens longer than this are rejected before any decoding. Keystone has no
/// such limit, but real tokens stay far below it (a federated token with many
/// groups is a few hundred characters) and it bounds the work per request.
pub const MAX_TOKEN_LEN: usize = 8192;

/// The `fernet` crate refuses tokens whose timestamp is more than this many
/// seconds ahead of the "current time" we hand it (its private constant).
const CRATE_MAX_CLOCK_SKEW: u64 = 60;

/// Fernet version byte.
const FERNET_VERSION: u8 = 0x80;

/// Decoder used after the Python-style clean-up: it ignores non-zero trailing
/// bits (binascii does) and wants no padding (the clean-up removed it).
const LENIENT_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// A successfully verified and decrypted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The msgpack payload bytes.
    pub plaintext: Vec<u8>,
    /// The Fernet timestamp (seconds since the epoch): Keystone's `issued_at`.
    pub timestamp: u64,
}

/// Why a token was refused. Every variant except `NoKeys` displays as
/// Keystone's `ValidationError` text; the variant only helps logging.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("Could not recognize Fernet token")]
    TooLong,
    /// Not decodable as (lenient, URL-safe) base64.
    #[error("Could not recognize Fernet token")]
    BadEncoding,
    /// Decoded, but does not start with 0x80 or is shorter than the header.
    #[error("Could not recognize Fernet token")]
    BadFormat,
    /// No key verified the HMAC and decrypted the ciphertext.
    #[error("Could not recognize Fernet token")]
    NoMatchingKey,
    /// The key list was empty. Keystone raises `KeysNotFound` (HTTP 500)
    /// here, before looking at the token, so callers should map this to 500.
    #[error("No Fernet keys are available")]
    NoKeys,
}

/// Encrypt `plaintext` with the primary key at time `now_unix`, returning the
/// token without its trailing `=` padding, as `TokenFormatter.pack` does.
pub fn encrypt(primary: &fernet::Fernet, plaintext: &[u8], now_unix: u64) -> String {
    let mut token = primary.encrypt_at_time(plaintext, now_unix);
    let unpadded = token.trim_end_matches('=').len();
    token.truncate(unpadded);
    token
}

/// Verify and decrypt `token`, trying `keys` in order (Keystone's
/// `MultiFernet.decrypt`), with no TTL and no clock-skew check.
pub fn decrypt(keys: &[fernet::Fernet], token: &str) -> Result<Decrypted, CodecError> {
    // Keystone fails on an empty repository before it parses anything.
    if keys.is_empty() {
        return Err(CodecError::NoKeys);
    }
    let raw = decode_token_bytes(token).inspect_err(|e| {
        tracing::debug!(error = ?e, len = token.len(), "fernet token not decodable");
    })?;
    let timestamp = header_timestamp(&raw).ok_or(CodecError::BadFormat)?;

    // The crate only accepts its own canonical encoding (no junk, no
    // non-zero trailing bits), so hand it the bytes re-encoded. The HMAC
    // covers the bytes, not the text, so this changes nothing for security.
    let canonical = URL_SAFE_NO_PAD.encode(&raw);
    // With ttl = None the crate's only time check is
    // `current + 60 < timestamp`; this value always passes it and cannot
    // overflow, which gives Python's "no time check at all".
    let current = timestamp.saturating_sub(CRATE_MAX_CLOCK_SKEW);
    for key in keys {
        if let Ok(plaintext) = key.decrypt_at_time(&canonical, None, current) {
            return Ok(Decrypted {
                plaintext,
                timestamp,
            });
        }
    }
    tracing::debug!("fernet token did not verify with any key");
    Err(CodecError::NoMatchingKey)
}

/// Decode a token string to its raw Fernet bytes the way Keystone does:
/// `restore_padding` followed by Python's lenient `urlsafe_b64decode`.
/// Also used to read the timestamp without verifying the HMAC.
pub fn decode_token_bytes(token: &str) -> Result<Vec<u8>, CodecError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(CodecError::TooLong);
    }
    // `TokenFormatter.restore_padding`: pad to a multiple of 4 counted over
    // the whole string, junk included, so `len % 4 == 1` can never decode.
    let mut padded = Vec::with_capacity(token.len() + 3);
    padded.extend_from_slice(token.as_bytes());
    let rem = token.len() % 4;
    if rem != 0 {
        padded.resize(token.len() + 4 - rem, b'=');
    }
    urlsafe_b64decode_lenient(&padded).ok_or(CodecError::BadEncoding)
}

/// Fernet header check (`0x80`, at least 9 bytes) and the big-endian
/// timestamp from bytes 1..9.
fn header_timestamp(raw: &[u8]) -> Option<u64> {
    if raw.first() != Some(&FERNET_VERSION) {
        return None;
    }
    let ts: [u8; 8] = raw.get(1..9)?.try_into().ok()?;
    Some(u64::from_be_bytes(ts))
}

/// Python 3.11's `base64.urlsafe_b64decode` (binascii `a2b_base64` in
/// non-strict mode after mapping `-_` to `+/`): characters outside the
/// alphabet are skipped, both `-_` and `+/` are accepted, a `=` sequence that
/// completes a quad ends the input (anything after it is ignored), stray `=`
/// are skipped, and leftover bits are dropped. Returns `None` where Python
/// raises `binascii.Error` (an incomplete final quad).
///
/// Only the selection of characters is done here; the decoding itself is the
/// `base64` crate's.
pub fn urlsafe_b64decode_lenient(input: &[u8]) -> Option<Vec<u8>> {
    let mut clean = Vec::with_capacity(input.len());
    let mut quad_pos = 0usize;
    let mut pads = 0usize;
    let mut terminated = false;
    for &c in input {
        let mapped = match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => c,
            b'+' => b'-',
            b'/' => b'_',
            b'=' => {
                if quad_pos >= 2 {
                    pads += 1;
                    if quad_pos + pads >= 4 {
                        terminated = true;
                        break;
                    }
                }
                continue;
            }
            _ => continue,
        };
        pads = 0;
        clean.push(mapped);
        quad_pos = (quad_pos + 1) % 4;
    }
    if !terminated && quad_pos != 0 {
        return None;
    }
    LENIENT_URL_SAFE.decode(&clean).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> fernet::Fernet {
        let raw: Vec<u8> = (0..32).map(|i| byte.wrapping_add(i)).collect();
        fernet::Fernet::new(&base64::engine::general_purpose::URL_SAFE.encode(raw)).unwrap()
    }

    #[test]
    fn round_trip_strips_padding_and_keeps_timestamp() {
        let k = key(0);
        for (pt, ts) in [
            (&b""[..], 0u64),
            (&b"x"[..], 1_700_000_000),
            (&[7u8; 100][..], 59),
        ] {
            let token = encrypt(&k, pt, ts);
            assert!(!token.ends_with('='));
            assert!(token.starts_with("gAAAAA"));
            let d = decrypt(std::slice::from_ref(&k), &token).unwrap();
            assert_eq!(d.plaintext, pt);
            assert_eq!(d.timestamp, ts);
        }
    }

    #[test]
    fn no_ttl_and_no_future_check() {
        let k = key(0);
        // Far future and far past: Python Keystone checks neither.
        for ts in [u64::MAX, u64::MAX - 30, 4_000_000_000, 1] {
            let token = encrypt(&k, b"payload", ts);
            let d = decrypt(std::slice::from_ref(&k), &token).unwrap();
            assert_eq!(d.timestamp, ts);
        }
    }

    #[test]
    fn tries_every_key_in_order() {
        let (a, b, c) = (key(0), key(0x20), key(0x40));
        let token = encrypt(&c, b"hello", 1_700_000_000);
        let d = decrypt(&[a.clone(), b.clone(), c], &token).unwrap();
        assert_eq!(d.plaintext, b"hello");
        assert_eq!(
            decrypt(&[a, b], &token).unwrap_err(),
            CodecError::NoMatchingKey
        );
    }

    #[test]
    fn empty_key_list() {
        let token = encrypt(&key(0), b"x", 1);
        assert_eq!(decrypt(&[], &token).unwrap_err(), CodecError::NoKeys);
    }

    #[test]
    fn accepts_padding_and_standard_alphabet() {
        let k = key(0);
        let keys = std::slice::from_ref(&k);
        // Find a token that has both '-' and '_' so the mapping is exercised.
        let mut ts = 1_700_000_000;
        let token = loop {
            let t = encrypt(&k, b"some plaintext", ts);
            if t.contains('-') && t.contains('_') && !t.len().is_multiple_of(4) {
                break t;
            }
            ts += 1;
        };
        let padded = format!("{token}{}", "=".repeat(4 - token.len() % 4));
        assert_eq!(decrypt(keys, &padded).unwrap().timestamp, ts);
        let std_alpha = token.replace('-', "+").replace('_', "/");
        assert_eq!(decrypt(keys, &std_alpha).unwrap().timestamp, ts);
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        let k = key(0);
        let keys = std::slice::from_ref(&k);
        let good = encrypt(&k, b"abc", 1_700_000_000);
        let cases: Vec<String> = vec![
            String::new(),
            "=".into(),
            "====".into(),
            "gA".into(),
            "gAAAAAB".into(),
            "gAAAAABlU_EA".into(),
            "AAAAAAAAAAAA".into(),
            format!("{good}A"),
            format!("{good}AA"),
            good[..good.len() - 1].to_string(),
            good[..60].to_string(),
            "ü".repeat(50),
            "g".repeat(MAX_TOKEN_LEN + 1),
        ];
        for c in cases {
            let err = decrypt(keys, &c).unwrap_err();
            assert_eq!(err.to_string(), "Could not recognize Fernet token", "{c:?}");
        }
        assert_eq!(
            decrypt(keys, &"g".repeat(MAX_TOKEN_LEN + 1)).unwrap_err(),
            CodecError::TooLong
        );
    }

    #[test]
    fn authentic_but_broken_ciphertext_is_an_error() {
        use aes::cipher::{BlockEncryptMut, KeyIvInit};
        use hmac::Mac;
        let raw_key: Vec<u8> = (0..32).collect();
        let k = key(0);
        // Correct HMAC over ciphertexts of bad length or with bad padding.
        let no_pad = {
            let mut block = aes::cipher::generic_array::GenericArray::clone_from_slice(&[0u8; 16]);
            cbc::Encryptor::<aes::Aes128>::new_from_slices(&raw_key[16..], &[0u8; 16])
                .unwrap()
                .encrypt_block_mut(&mut block);
            block.to_vec()
        };
        for ct in [vec![], vec![1u8; 15], vec![1u8; 17], no_pad] {
            let mut raw = vec![0x80];
            raw.extend_from_slice(&1_700_000_000u64.to_be_bytes());
            raw.extend_from_slice(&[0u8; 16]);
            raw.extend_from_slice(&ct);
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&raw_key[..16]).unwrap();
            mac.update(&raw);
            raw.extend_from_slice(&mac.finalize().into_bytes());
            let token = URL_SAFE_NO_PAD.encode(&raw);
            assert_eq!(
                decrypt(std::slice::from_ref(&k), &token).unwrap_err(),
                CodecError::NoMatchingKey
            );
        }
    }

    #[test]
    fn len_mod_4_eq_1_never_decodes() {
        for n in [1usize, 5, 9, 161] {
            assert!(decode_token_bytes(&"A".repeat(n)).is_err());
        }
    }

    #[test]
    fn lenient_decoder_matches_python_311() {
        let d = |s: &str| urlsafe_b64decode_lenient(s.as_bytes());
        assert_eq!(d("YQ==").unwrap(), b"a");
        assert_eq!(d("YQ").as_deref(), None); // "Incorrect padding"
        assert_eq!(d("YQ=").as_deref(), None);
        assert_eq!(d("YWI=").unwrap(), b"ab");
        assert_eq!(d("YWJj").unwrap(), b"abc");
        assert_eq!(d("Y W\nJ j").unwrap(), b"abc");
        assert_eq!(d("AA==AA==").unwrap(), [0u8]);
        assert_eq!(d("====").unwrap(), b"");
        assert_eq!(d("Y===").as_deref(), None);
        assert_eq!(d("YR==").unwrap(), b"a"); // trailing bits ignored
        assert_eq!(d("-_+/").unwrap(), d("+/-_").unwrap());
        assert_eq!(d("").unwrap(), b"");
    }
}
