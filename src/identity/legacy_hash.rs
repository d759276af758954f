//! The password hashes Python Keystone writes (`keystone/common/password_hashers`:
//! bcrypt, bcrypt_sha256, scrypt, pbkdf2_sha512, in passlib's encodings), verified so
//! users imported from a Keystone database keep their passwords. keystone-rs never
//! writes these: a successful login is the moment to rehash with argon2id.
//!
//! Parameters come from the stored string; absurd ones (which only a damaged or
//! hostile database holds) are a mismatch rather than minutes of work.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine as _};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// bcrypt reads at most 72 bytes: Keystone truncates there too (its default
/// `password_hash_algorithm` is bcrypt).
const BCRYPT_MAX: usize = 72;
const MAX_SCRYPT_LOG_N: u8 = 20;
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

/// Standard base64 with or without padding, as Keystone's `b64s_decode` reads it
/// (after passlib's `.` is mapped back to `+`).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn b64(s: &str) -> Option<Vec<u8>> {
    B64.decode(s.replace('.', "+")).ok()
}

/// Whether `stored` is one of Keystone's formats (by its ident, as Keystone picks the
/// hasher).
pub fn is_legacy(stored: &str) -> bool {
    ident(stored).is_some()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bcrypt,
    BcryptSha256,
    Scrypt,
    Pbkdf2Sha512,
}

fn ident(stored: &str) -> Option<Kind> {
    let end = stored.get(1..)?.find('$')? + 2;
    match &stored[..end] {
        "$2$" | "$2a$" | "$2b$" | "$2x$" | "$2y$" => Some(Kind::Bcrypt),
        "$bcrypt-sha256$" => Some(Kind::BcryptSha256),
        "$scrypt$" => Some(Kind::Scrypt),
        "$pbkdf2-sha512$" => Some(Kind::Pbkdf2Sha512),
        _ => None,
    }
}

/// `password` against a Keystone hash; anything malformed is a mismatch.
pub fn verify(password: &[u8], stored: &str) -> bool {
    match ident(stored) {
        Some(Kind::Bcrypt) => bcrypt_ok(password, stored),
        Some(Kind::BcryptSha256) => bcrypt_sha256_ok(password, stored),
        Some(Kind::Scrypt) => scrypt_ok(password, stored),
        Some(Kind::Pbkdf2Sha512) => pbkdf2_ok(password, stored),
        None => false,
    }
}

fn bcrypt_ok(password: &[u8], stored: &str) -> bool {
    let password = &password[..password.len().min(BCRYPT_MAX)];
    bcrypt::verify(password, stored).unwrap_or(false)
}

/// passlib's bcrypt_sha256 v2 as Keystone writes it:
/// `$bcrypt-sha256$v=2,t=2b,r=<cost>$<salt>$<digest>`, the bcrypt input being
/// base64(HMAC-SHA256(key = salt, message = password)).
fn bcrypt_sha256_ok(password: &[u8], stored: &str) -> bool {
    let Some(rest) = stored.strip_prefix("$bcrypt-sha256$") else {
        return false;
    };
    let [params, salt, digest] = rest.split('$').collect::<Vec<_>>()[..] else {
        return false;
    };
    let (mut rounds, mut variant) = (None, None);
    for p in params.split(',') {
        if let Some(r) = p.strip_prefix("r=") {
            rounds = r.parse::<u32>().ok();
        } else if let Some(t) = p.strip_prefix("t=") {
            variant = Some(t);
        }
    }
    let (Some(rounds), Some(variant)) = (rounds, variant) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(salt.as_bytes()) else {
        return false;
    };
    mac.update(password);
    let input = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    bcrypt::verify(input, &format!("${variant}${rounds:02}${salt}{digest}")).unwrap_or(false)
}

/// `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<32-byte digest>`.
fn scrypt_ok(password: &[u8], stored: &str) -> bool {
    let [_, "scrypt", params, salt, digest] = stored.split('$').collect::<Vec<_>>()[..] else {
        return false;
    };
    let (mut log_n, mut r, mut p) = (None, None, None);
    for part in params.split(',') {
        if let Some(v) = part.strip_prefix("ln=") {
            log_n = v.parse::<u8>().ok();
        } else if let Some(v) = part.strip_prefix("r=") {
            r = v.parse::<u32>().ok();
        } else if let Some(v) = part.strip_prefix("p=") {
            p = v.parse::<u32>().ok();
        }
    }
    let (Some(log_n), Some(r), Some(p)) = (log_n, r, p) else {
        return false;
    };
    let memory = 128u64 * u64::from(r) * (1u64 << log_n.min(63));
    if log_n > MAX_SCRYPT_LOG_N || memory > MAX_SCRYPT_MEMORY || p > 16 {
        return false;
    }
    let (Some(salt), Some(expected)) = (b64(salt), b64(digest)) else {
        return false;
    };
    let Ok(params) = scrypt::Params::new(log_n, r, p, expected.len().max(10)) else {
        return false;
    };
    let mut computed = vec![0u8; expected.len()];
    scrypt::scrypt(password, &salt, &params, &mut computed).is_ok()
        && !expected.is_empty()
        && bool::from(computed.ct_eq(&expected))
}

/// `$pbkdf2-sha512$<rounds>$<salt>$<64-byte digest>`.
fn pbkdf2_ok(password: &[u8], stored: &str) -> bool {
    let [_, "pbkdf2-sha512", rounds, salt, digest] = stored.split('$').collect::<Vec<_>>()[..]
    else {
        return false;
    };
    let Ok(rounds) = rounds.parse::<u32>() else {
        return false;
    };
    if rounds == 0 || rounds > MAX_PBKDF2_ROUNDS {
        return false;
    }
    let (Some(salt), Some(expected)) = (b64(salt), b64(digest)) else {
        return false;
    };
    if expected.is_empty() {
        return false;
    }
    let mut computed = vec![0u8; expected.len()];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, &salt, rounds, &mut computed);
    bool::from(computed.ct_eq(&expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "correct horse battery staple é";

    /// Made by Keystone 30.0.0's own hashers (`keystone.common.password_hashers`),
    /// each checked there with the right and a wrong password.
    const KEYSTONE_HASHES: &[(&str, &str)] = &[
        ("bcrypt", "$2b$04$KD4Jv0qX/U3y4dp5Jrza7OIvGKocoxHg0Ix6lgcyMzqxPQMcfB0DO"),
        (
            "bcrypt_sha256",
            "$bcrypt-sha256$v=2,t=2b,r=10$tcdSDPzeSbnDpdqvzMwBe.$9n1xc6Ow6floAvILNsTFuCrnR3U7RbK",
        ),
        (
            "scrypt",
            "$scrypt$ln=10,r=8,p=1$IKsOSY4fKxAmUwJ6rEqv7A$ELWzbamdfpYQ+I6E1KZ7ECxVNUSU+usMQJl7pybIoP0",
        ),
        (
            "pbkdf2_sha512",
            "$pbkdf2-sha512$1000$WIbs9AlK39wfdqW09psfhg$ouOhkrsBSDlvUPq9T/UtFk7ME1TdtG6fIj3TIpbIKwPm4PZBFG187B2Z1iw/GKYg+oBXd0abNUHNfNOj7SibMg",
        ),
        // passlib's alphabet (`.` for `+`), as hashes written before Keystone dropped
        // passlib are stored.
        (
            "pbkdf2_sha512 (passlib)",
            "$pbkdf2-sha512$1000$WIbs9AlK39wfdqW09psfhg$ouOhkrsBSDlvUPq9T/UtFk7ME1TdtG6fIj3TIpbIKwPm4PZBFG187B2Z1iw/GKYg.oBXd0abNUHNfNOj7SibMg",
        ),
    ];

    #[test]
    fn keystone_hashes_verify_right_and_reject_wrong() {
        for (name, hash) in KEYSTONE_HASHES {
            assert!(is_legacy(hash), "{name}");
            assert!(verify(PASSWORD.as_bytes(), hash), "{name}: right password");
            assert!(!verify(b"wrong", hash), "{name}: wrong password");
            assert!(
                !verify(&PASSWORD.as_bytes()[1..], hash),
                "{name}: a near miss"
            );
        }
    }

    /// bcrypt reads 72 bytes: Keystone hashed (and checks) the first 72.
    #[test]
    fn bcrypt_compares_the_first_72_bytes() {
        let hash = "$2b$04$0fntz7fOsWEV4StvHDEkNuUsaam/oKg5lQA5PNJ.ZORbxnf/v//h6";
        assert!(verify(&[b'x'; 80], hash));
        assert!(verify(&[b'x'; 72], hash));
        assert!(!verify(&[b'x'; 71], hash));
    }

    #[test]
    fn malformed_or_absurd_hashes_are_mismatches() {
        for hash in [
            "",
            "$",
            "plain",
            "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA",
            "$2b$04$short",
            "$bcrypt-sha256$v=2,t=2b$salt$digest",
            "$scrypt$ln=40,r=8,p=1$IKsOSY4fKxAmUwJ6rEqv7A$ELWz",
            "$scrypt$ln=10,r=8,p=1$!!$ELWz",
            "$pbkdf2-sha512$0$WIbs9AlK39wfdqW09psfhg$ouOh",
            "$pbkdf2-sha512$99999999999$WIbs9AlK39wfdqW09psfhg$ouOh",
            "$pbkdf2-sha512$1000$WIbs9AlK39wfdqW09psfhg$",
        ] {
            assert!(!verify(PASSWORD.as_bytes(), hash), "{hash:?}");
        }
        assert!(!is_legacy("$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA"));
    }
}
