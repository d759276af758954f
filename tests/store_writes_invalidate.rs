//! Every store write goes through a write transaction (`Store::begin_write`) whose
//! commit announces it (`WriteTx::commit` bumps the state generation inside the same
//! transaction); otherwise validation caches here or on other servers would serve
//! stale answers, or a failed write could leave a connection inside an open
//! transaction. This reads the store's source: a new write path that skips either
//! fails here.

use std::path::Path;

/// Writes that do not affect cached validations (revocation events are checked
/// outside the cache; Fernet key sets and replica heartbeats are versioned by their
/// own table; failed-login counts and last activity are read from the database by
/// authentication, never from a cache) commit with `commit_unannounced`; mod.rs holds
/// the plumbing.
const UNANNOUNCED_FILES: &[&str] = &["revoke.rs", "keys.rs", "login.rs"];

#[test]
fn every_store_write_is_a_transaction_that_announces_itself() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let mut problems = Vec::new();
    let mut writes = 0;
    for entry in std::fs::read_dir(&dir).expect("src/store") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if !name.ends_with(".rs") || name == "mod.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        if text.contains("self.writer()") || text.contains(".begin()") {
            problems.push(format!("{name}: writes outside begin_write"));
        }
        for function in text.split("\n    pub async fn ").skip(1) {
            // A function ends where the next item at impl level starts.
            let body = function.split("\n    }\n").next().unwrap_or(function);
            let fname = function.split('(').next().unwrap_or("?");
            if !body.contains("begin_write(") {
                continue;
            }
            writes += 1;
            let announced = body.contains("tx.commit()");
            if UNANNOUNCED_FILES.contains(&name.as_str()) {
                if !announced && !body.contains("tx.commit_unannounced()") {
                    problems.push(format!("{name}: {fname} never commits"));
                }
            } else if !announced {
                problems.push(format!("{name}: {fname} does not announce its write"));
            }
        }
    }
    assert!(
        writes >= 30,
        "the scan must find the store's writes (found {writes})"
    );
    assert!(problems.is_empty(), "{problems:#?}");
}
