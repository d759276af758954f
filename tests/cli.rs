//! The operator's commands, run as the real binary against a temporary
//! keystone.conf, database and key repository.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{text, Sandbox};

/// Keystone's defaults: expiration 3600 + allow_expired_window 172800 = 176400 s.
/// Rotating daily needs 2 + ceil(176400 / 86400) = 5 keys.
const DAILY: &str = "86400";
const NEEDED_FOR_DAILY: usize = 2 + 176_400_usize.div_ceil(86_400);

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

/// Key file name -> content.
fn key_files(dir: &Path) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .expect("read key dir")
        .map(|e| {
            let e = e.expect("dir entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read_to_string(e.path()).expect("read key"),
            )
        })
        .collect()
}

fn names(keys: &BTreeMap<String, String>) -> Vec<&str> {
    let mut v: Vec<&str> = keys.keys().map(String::as_str).collect();
    v.sort_by_key(|n| n.parse::<u64>().unwrap_or(u64::MAX));
    v
}

#[test]
fn db_sync_twice_is_fine() {
    let s = Sandbox::new(&[]);
    let first = s.run_ok(&["db", "sync"]);
    assert!(
        text(&first.stdout).contains("database schema is up to date"),
        "{}",
        text(&first.stdout)
    );
    assert!(s.path().join("keystone.db").exists());
    let second = s.run_ok(&["db", "sync"]);
    assert!(text(&second.stdout).contains("database schema is up to date"));
}

#[test]
fn fernet_setup_creates_private_keys_and_is_idempotent() {
    let s = Sandbox::new(&[]);
    assert!(!s.keys().exists());
    s.run_ok(&["fernet", "setup"]);
    assert_eq!(mode(&s.keys()), 0o700, "key directory mode");
    let keys = key_files(&s.keys());
    assert_eq!(names(&keys), ["0", "1"]);
    for (name, content) in &keys {
        assert_eq!(mode(&s.keys().join(name)), 0o600, "mode of key {name}");
        assert_eq!(content.len(), 44, "key {name} is a Fernet key");
    }
    assert_ne!(keys["0"], keys["1"]);

    let again = s.run_ok(&["fernet", "setup"]);
    assert!(
        text(&again.stdout).contains("already initialized"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(key_files(&s.keys()), keys, "second setup changed the keys");
}

#[test]
fn fernet_rotate_refuses_unsafe_settings_unless_forced() {
    let s = Sandbox::new(&[]); // Keystone defaults: max_active_keys = 3
    s.run_ok(&["fernet", "setup"]);
    let before = key_files(&s.keys());

    let refused = s.run(&["fernet", "rotate", "--rotation-interval", DAILY]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = text(&refused.stderr);
    assert_eq!(NEEDED_FOR_DAILY, 5);
    assert!(
        stderr.contains(&format!("max_active_keys = {NEEDED_FOR_DAILY}")),
        "the refusal names the value to set: {stderr}"
    );
    assert_eq!(
        key_files(&s.keys()),
        before,
        "a refused rotation touched the keys"
    );

    // No interval anywhere: unknown, so also refused.
    let unknown = s.run(&["fernet", "rotate"]);
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    assert!(text(&unknown.stderr).contains("rotation interval is unknown"));
    assert_eq!(key_files(&s.keys()), before);

    let forced = s.run_ok(&["fernet", "rotate", "--rotation-interval", DAILY, "--force"]);
    assert!(text(&forced.stderr).contains("--force"), "{forced:?}");
    let after = key_files(&s.keys());
    assert_eq!(names(&after), ["0", "1", "2"]);
    assert_eq!(after["2"], before["0"], "the staged key became the primary");
    assert_eq!(after["1"], before["1"]);
    assert_ne!(after["0"], before["0"], "a new staged key");
}

#[test]
fn fernet_rotate_with_enough_keys_needs_no_force() {
    let s = Sandbox::new(&[("fernet_tokens", "max_active_keys", "5")]);
    s.run_ok(&["fernet", "setup"]);
    for _ in 0..5 {
        let out = s.run_ok(&["fernet", "rotate", "--rotation-interval", DAILY]);
        assert!(text(&out.stdout).starts_with("rotated:"), "{out:?}");
    }
    // Setup made {0,1}; five rotations promote 2..=6 and keep 5 keys in all.
    assert_eq!(names(&key_files(&s.keys())), ["0", "3", "4", "5", "6"]);
}

#[test]
fn fernet_check_reports_ok_and_unsafe() {
    let safe = Sandbox::new(&[
        ("fernet_tokens", "max_active_keys", "5"),
        ("fernet_tokens", "rotation_interval", DAILY),
    ]);
    safe.run_ok(&["fernet", "setup"]);
    let out = safe.run(&["fernet", "check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.starts_with("OK:")),
        "no line starting OK: in\n{stdout}"
    );

    let unsafe_ = Sandbox::new(&[]); // max_active_keys = 3
    unsafe_.run_ok(&["fernet", "setup"]);
    let out = unsafe_.run(&["fernet", "check", "--rotation-interval", DAILY]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.starts_with("UNSAFE:")),
        "no line starting UNSAFE: in\n{stdout}"
    );
    assert!(!stdout.lines().any(|l| l.starts_with("OK:")));
}

#[test]
fn bootstrap_is_idempotent_and_updates_the_password() {
    let s = Sandbox::new(&[]);
    s.run_ok(&["db", "sync"]);
    s.run_ok(&["fernet", "setup"]);
    let args = [
        "bootstrap",
        "--bootstrap-region-id",
        "RegionOne",
        "--bootstrap-public-url",
        "http://127.0.0.1:5000/v3",
    ];

    let mut first = s.command(&args);
    first.env("OS_BOOTSTRAP_PASSWORD", "first-secret");
    let out = common::run_with_timeout(first, std::time::Duration::from_secs(120));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for created in [
        "created user admin",
        "created project admin",
        "created public endpoint",
    ] {
        assert!(
            stdout.contains(created),
            "{created:?} missing from\n{stdout}"
        );
    }

    let mut second = s.command(&args);
    second.env("OS_BOOTSTRAP_PASSWORD", "first-secret");
    let out = common::run_with_timeout(second, std::time::Duration::from_secs(120));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.trim(), "nothing to do: already bootstrapped");

    let mut third_args = args.to_vec();
    third_args.extend(["--bootstrap-password", "second-secret"]);
    let out = s.run_ok(&third_args);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("updated password of user admin"),
        "{stdout}"
    );
    assert!(!stdout.contains("created"), "{stdout}");
}

#[test]
fn bad_option_value_stops_serve_naming_the_option() {
    let s = Sandbox::new(&[("token", "expiration", "soon")]);
    let out = s.run(&["serve", "--bind", "127.0.0.1:0"]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("[token] expiration"), "{stderr}");
    assert!(stderr.contains("soon"), "{stderr}");
}

#[test]
fn unknown_option_is_warned_about() {
    let s = Sandbox::new(&[("token", "expiraton", "600")]);
    let out = s.run_ok(&["db", "sync"]);
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains("[token] expiraton")),
        "{stderr}"
    );
}

#[test]
fn serve_without_db_sync_says_what_to_run() {
    let s = Sandbox::new(&[]);
    s.run_ok(&["fernet", "setup"]);
    let out = s.run(&["serve", "--bind", "127.0.0.1:0"]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("keystone-rs db sync"), "{stderr}");
}

/// `key_store = database`: a file repository imported, exported back byte for byte,
/// the keys sealed at rest, rotation and the cluster report, and a missing
/// key-encryption key refused clearly.
#[test]
fn fernet_keys_move_between_files_and_the_database() {
    let file_mode = [
        ("fernet_tokens", "max_active_keys", "6"),
        ("fernet_tokens", "rotation_interval", DAILY),
    ];
    let s = Sandbox::new(&file_mode);
    s.run_ok(&["db", "sync"]);
    s.run_ok(&["fernet", "setup"]);
    s.run_ok(&["fernet", "rotate"]);
    let original = key_files(&s.keys());
    assert_eq!(names(&original), ["0", "1", "2"]);

    let kek = s.path().join("fernet-kek");
    let kek_path = kek.display().to_string();
    let mut db_mode = file_mode.to_vec();
    db_mode.push(("fernet_tokens", "key_store", "database"));
    db_mode.push(("fernet_tokens", "key_encryption_key_file", &kek_path));
    s.write_conf(&db_mode);
    let setup = s.run_ok(&["fernet", "setup"]);
    assert!(text(&setup.stdout).contains("created the key-encryption key"));
    assert_eq!(mode(&kek), 0o600, "key-encryption key mode");

    // The database already holds a set: import needs --replace.
    let refused = s.run(&[
        "fernet",
        "import",
        "--from",
        &s.keys().display().to_string(),
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("--replace"));
    let imported = s.run_ok(&[
        "fernet",
        "import",
        "--from",
        &s.keys().display().to_string(),
        "--replace",
    ]);
    assert!(
        text(&imported.stdout).contains("imported 3 keys"),
        "{}",
        text(&imported.stdout)
    );

    // At rest, no key appears in the database file.
    let dump = fs::read(s.path().join("keystone.db")).expect("database file");
    let dump = String::from_utf8_lossy(&dump);
    for (name, key) in &original {
        assert!(!dump.contains(key.trim()), "key {name} stored in clear");
    }

    let out = s.path().join("exported");
    s.run_ok(&["fernet", "export", "--to", &out.display().to_string()]);
    assert_eq!(
        key_files(&out),
        original,
        "export differs from what was imported"
    );

    let rotated = s.run_ok(&["fernet", "rotate"]);
    assert!(
        text(&rotated.stdout).contains("key 3 is the new primary"),
        "{}",
        text(&rotated.stdout)
    );
    let check = s.run_ok(&["fernet", "check"]);
    let report = text(&check.stdout);
    assert!(
        report.contains('3') && report.to_lowercase().contains("primary"),
        "{report}"
    );

    // Without the key-encryption key the keys cannot be opened: said, not a panic.
    fs::remove_file(&kek).expect("remove kek");
    let blind = s.run(&["fernet", "check"]);
    assert_ne!(blind.status.code(), Some(0));
    let err = text(&blind.stderr);
    assert!(
        err.contains("key-encryption key") || err.contains("fernet-kek"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
