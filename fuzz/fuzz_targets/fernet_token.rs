//! A token string as a client sends it: the Fernet layer (base64, HMAC, AES) with a
//! known key, then the msgpack payload codec on whatever it decrypts to, and the
//! payload codec on the raw bytes too. Neither may panic.
#![no_main]

use keystone_rs::token::payload::{decode_payload, AuthMethods, KEYSTONE_DEFAULT_METHODS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = fernet::Fernet::new("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=").expect("key");
    let methods = AuthMethods::new(
        KEYSTONE_DEFAULT_METHODS
            .iter()
            .map(|m| m.to_string())
            .collect(),
    );
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(d) = keystone_rs::token::codec::decrypt(std::slice::from_ref(&key), text) {
            let _ = decode_payload(&d.plaintext, &methods, "default");
        }
    }
    let _ = decode_payload(data, &methods, "default");
    // A valid token around arbitrary plaintext: the payload codec behind real HMACs.
    let token = key.encrypt_at_time(data, 1_700_000_000);
    if let Ok(d) = keystone_rs::token::codec::decrypt(std::slice::from_ref(&key), &token) {
        let _ = decode_payload(&d.plaintext, &methods, "default");
    }
});
