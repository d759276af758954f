//! The body of POST /v3/auth/tokens, the one unauthenticated parser: any JSON object
//! must parse into a request or a Keystone-shaped error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(serde_json::Value::Object(body)) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = keystone_rs::api::auth_tokens::parse_auth_request(&body);
    }
});
