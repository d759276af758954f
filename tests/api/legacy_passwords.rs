//! Users imported from Python Keystone keep their passwords: every hash format
//! Keystone writes logs in with the right password and only with it.

use serde_json::json;

use crate::both_backends;
use crate::helpers::TestApp;
use keystone_rs::model::NewPassword;

const PASSWORD: &str = "correct horse battery staple é";

/// Made by Keystone 30.0.0's own hashers (see src/identity/legacy_hash.rs).
const HASHES: &[&str] = &[
    "$2b$04$KD4Jv0qX/U3y4dp5Jrza7OIvGKocoxHg0Ix6lgcyMzqxPQMcfB0DO",
    "$bcrypt-sha256$v=2,t=2b,r=10$tcdSDPzeSbnDpdqvzMwBe.$9n1xc6Ow6floAvILNsTFuCrnR3U7RbK",
    "$scrypt$ln=10,r=8,p=1$IKsOSY4fKxAmUwJ6rEqv7A$ELWzbamdfpYQ+I6E1KZ7ECxVNUSU+usMQJl7pybIoP0",
    "$pbkdf2-sha512$1000$WIbs9AlK39wfdqW09psfhg$ouOhkrsBSDlvUPq9T/UtFk7ME1TdtG6fIj3TIpbIKwPm4PZBFG187B2Z1iw/GKYg.oBXd0abNUHNfNOj7SibMg",
];

async fn keystone_password_hashes_log_in(app: TestApp) {
    for (i, hash) in HASHES.iter().enumerate() {
        let name = format!("imported-{i}");
        let user = app.create_user(&name, "placeholder-pw").await;
        let stored = app
            .store
            .set_user_password(
                &user.user_id,
                &NewPassword {
                    hash: hash.to_string(),
                    created_at: 0,
                    expires_at: None,
                    self_service: false,
                    keep_history: 0,
                },
                &[],
                None,
            )
            .await
            .expect("set hash");
        assert!(stored);
        let (s, token, b) = app.password_token(&name, PASSWORD, json!(null)).await;
        assert_eq!(s, 201, "{hash}: {b}");
        assert!(token.is_some());
        let (s, _, _) = app.password_token(&name, "wrong", json!(null)).await;
        assert_eq!(s, 401, "{hash}");
        let (s, _, _) = app
            .password_token(&name, "placeholder-pw", json!(null))
            .await;
        assert_eq!(s, 401, "{hash}");
        // The first login rehashed it with argon2id; the password still works.
        let row = app
            .store
            .get_user(&user.user_id)
            .await
            .expect("read")
            .expect("user");
        let now = row.password_hash.as_deref().unwrap_or("");
        assert!(now.starts_with("$argon2id$"), "{hash} -> {now}");
        let (s, _, b) = app.password_token(&name, PASSWORD, json!(null)).await;
        assert_eq!(s, 201, "{hash} after the rehash: {b}");
    }
}

both_backends!(keystone_password_hashes_log_in);
