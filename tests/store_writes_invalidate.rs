//! Every store write that can change a token validation or a catalog must bump the
//! state generation (`self.changed()`), or validation caches would serve stale
//! answers. This reads the store's source: a new write path without the bump fails here.

use std::path::Path;

/// Writes that do not affect cached validations: revocation events are checked
/// outside the cache, and schema/generation plumbing lives in mod.rs.
const EXEMPT_FILES: &[&str] = &["mod.rs", "revoke.rs"];

#[test]
fn every_store_write_bumps_the_generation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let mut missing = Vec::new();
    let mut writes = 0;
    for entry in std::fs::read_dir(&dir).expect("src/store") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if !name.ends_with(".rs") || EXEMPT_FILES.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for function in text.split("\n    pub async fn ").skip(1) {
            // A function ends where the next item at impl level starts.
            let body = function.split("\n    }\n").next().unwrap_or(function);
            if body.contains("self.writer()") {
                writes += 1;
                if !body.contains("self.changed()") {
                    let fname = function.split('(').next().unwrap_or("?");
                    missing.push(format!("{name}: {fname}"));
                }
            }
        }
    }
    assert!(
        writes >= 15,
        "the scan must find the store's writes (found {writes})"
    );
    assert!(
        missing.is_empty(),
        "store writes without self.changed(): {missing:#?}"
    );
}
