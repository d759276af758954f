//! Tests of the repository, the ring and the check.

use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use fernet::Fernet;
use std::collections::BTreeSet;
use std::fs::Permissions;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn repo_in(tmp: &tempfile::TempDir, max: usize) -> KeyRepository {
    KeyRepository::new(tmp.path().join("keys"), max)
}

fn indexes(repo: &KeyRepository) -> Vec<u64> {
    let mut v: Vec<u64> = repo.list().unwrap().iter().map(|k| k.index).collect();
    v.sort_unstable();
    v
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn read(repo: &KeyRepository, name: &str) -> String {
    fs::read_to_string(repo.dir().join(name)).unwrap()
}

fn write_file(repo: &KeyRepository, name: &str, content: &[u8]) {
    fs::write(repo.dir().join(name), content).unwrap();
}

fn dir_names(repo: &KeyRepository) -> BTreeSet<String> {
    fs::read_dir(repo.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn setup_creates_staged_and_primary_with_modes_and_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = KeyRepository::new(tmp.path().join("etc/keystone/fernet-keys"), 3);
    let outcome = repo.setup().unwrap();
    let SetupOutcome::Initialized {
        created_directory,
        rotation,
    } = outcome
    else {
        panic!("expected Initialized, got {outcome:?}");
    };
    assert!(created_directory);
    assert_eq!(rotation.previous_primary, 0);
    assert_eq!(rotation.new_primary, 1);
    assert!(rotation.removed.is_empty());
    assert_eq!(rotation.remaining, vec![0, 1]);
    assert_eq!(
        dir_names(&repo),
        BTreeSet::from(["0".to_string(), "1".to_string()])
    );
    assert_eq!(mode_of(repo.dir()), 0o700);
    for name in ["0", "1"] {
        assert_eq!(mode_of(&repo.dir().join(name)), 0o600);
        let key = read(&repo, name);
        assert_eq!(key.len(), 44, "{key:?}");
        assert!(key.ends_with('='));
        assert!(key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b)));
    }
    let list = repo.list().unwrap();
    assert_eq!(list[0].index, 1);
    assert_eq!(list[0].role, KeyRole::Primary);
    assert_eq!(list[1].index, 0);
    assert_eq!(list[1].role, KeyRole::Staged);
    assert!(list.iter().all(|k| k.valid && k.mode == 0o600));

    let before = (read(&repo, "0"), read(&repo, "1"));
    assert_eq!(repo.setup().unwrap(), SetupOutcome::AlreadyInitialized);
    assert_eq!(before, (read(&repo, "0"), read(&repo, "1")));
}

#[test]
fn setup_leaves_an_existing_directory_mode_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    fs::create_dir(repo.dir()).unwrap();
    fs::set_permissions(repo.dir(), Permissions::from_mode(0o750)).unwrap();
    let outcome = repo.setup().unwrap();
    assert!(matches!(
        outcome,
        SetupOutcome::Initialized {
            created_directory: false,
            ..
        }
    ));
    assert_eq!(mode_of(repo.dir()), 0o750);
    assert_eq!(indexes(&repo), vec![0, 1]);
}

#[test]
fn setup_on_a_file_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("keys");
    fs::write(&path, b"x").unwrap();
    let err = KeyRepository::new(&path, 3).setup().unwrap_err();
    assert!(matches!(err, KeyError::NotADirectory { ref path } if path.ends_with("keys")));
}

#[test]
fn rotate_sequence_matches_keystone_with_max_three() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    assert_eq!(indexes(&repo), vec![0, 1]);

    let staged = read(&repo, "0");
    let out = repo.rotate().unwrap();
    assert_eq!(
        out,
        RotateOutcome {
            previous_primary: 1,
            new_primary: 2,
            removed: vec![],
            remaining: vec![0, 1, 2]
        }
    );
    // The staged key is promoted, not regenerated.
    assert_eq!(read(&repo, "2"), staged);
    assert_ne!(read(&repo, "0"), staged);

    let staged = read(&repo, "0");
    let out = repo.rotate().unwrap();
    assert_eq!(out.new_primary, 3);
    assert_eq!(out.removed, vec![1]);
    assert_eq!(out.remaining, vec![0, 2, 3]);
    assert_eq!(indexes(&repo), vec![0, 2, 3]);
    assert_eq!(read(&repo, "3"), staged);
    assert!(!repo.dir().join(TMP_NAME).exists());
    for name in ["0", "2", "3"] {
        assert_eq!(mode_of(&repo.dir().join(name)), 0o600);
    }

    let out = repo.rotate().unwrap();
    assert_eq!(out.removed, vec![2]);
    assert_eq!(indexes(&repo), vec![0, 3, 4]);
}

#[test]
fn purge_removes_several_lowest_when_max_shrinks() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 6);
    repo.setup().unwrap();
    for _ in 0..4 {
        repo.rotate().unwrap();
    }
    assert_eq!(indexes(&repo), vec![0, 1, 2, 3, 4, 5]);
    let out = KeyRepository::new(repo.dir(), 3).rotate().unwrap();
    assert_eq!(out.removed, vec![1, 2, 3, 4]);
    assert_eq!(indexes(&repo), vec![0, 5, 6]);
}

#[test]
fn max_active_keys_one_keeps_only_the_staged_key_as_primary() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 1);
    let SetupOutcome::Initialized { rotation, .. } = repo.setup().unwrap() else {
        panic!("expected Initialized");
    };
    assert_eq!(rotation.new_primary, 1);
    assert_eq!(rotation.removed, vec![1]);
    assert_eq!(rotation.remaining, vec![0]);
    let list = repo.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].index, 0);
    assert_eq!(list[0].role, KeyRole::Primary);
    assert_eq!(repo.load().unwrap().len(), 1);

    let before = read(&repo, "0");
    let out = repo.rotate().unwrap();
    assert_eq!((out.new_primary, out.removed), (1, vec![1]));
    assert_eq!(dir_names(&repo), BTreeSet::from(["0".to_string()]));
    assert_ne!(read(&repo, "0"), before);
}

#[test]
fn max_active_keys_zero_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 0);
    assert!(matches!(
        repo.setup(),
        Err(KeyError::InvalidMaxActiveKeys(0))
    ));
    assert!(!repo.dir().exists());
}

#[test]
fn rotate_refuses_missing_empty_or_unstaged_repositories() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    assert!(matches!(
        repo.rotate(),
        Err(KeyError::RepositoryMissing { .. })
    ));
    assert!(matches!(
        repo.load(),
        Err(KeyError::RepositoryMissing { .. })
    ));

    fs::create_dir(repo.dir()).unwrap();
    let err = repo.rotate().unwrap_err();
    assert!(matches!(err, KeyError::Empty { .. }), "{err}");
    assert!(err.to_string().contains(&repo.dir().display().to_string()));
    assert!(matches!(repo.load(), Err(KeyError::Empty { .. })));

    write_file(&repo, "1", Fernet::generate_key().as_bytes());
    write_file(&repo, "2", Fernet::generate_key().as_bytes());
    let err = repo.rotate().unwrap_err();
    assert!(matches!(err, KeyError::NoStagedKey { .. }), "{err}");
    assert_eq!(
        dir_names(&repo),
        BTreeSet::from(["1".to_string(), "2".to_string()])
    );

    // setup repairs it as in Keystone: new 0, one rotation.
    repo.setup().unwrap();
    assert_eq!(indexes(&repo), vec![0, 2, 3]);
}

#[test]
fn rotate_refuses_an_invalid_staged_key() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    write_file(&repo, "0", b"garbage");
    let err = repo.rotate().unwrap_err();
    assert!(matches!(err, KeyError::InvalidKey { ref path } if path.ends_with("0")));
    assert_eq!(indexes(&repo), vec![0, 1]);
}

#[test]
fn failed_rotation_removes_the_temporary_key_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    let before = (read(&repo, "0"), read(&repo, "1"));
    // A directory where the new primary must go makes the promotion fail.
    fs::create_dir(repo.dir().join("2")).unwrap();
    fs::write(repo.dir().join("2/x"), b"x").unwrap();
    let err = repo.rotate().unwrap_err();
    assert!(
        matches!(err, KeyError::Io { ref path, .. } if path.ends_with("2")),
        "{err}"
    );
    assert!(!repo.dir().join(TMP_NAME).exists());
    assert_eq!(before, (read(&repo, "0"), read(&repo, "1")));
}

#[test]
fn stale_temporary_key_is_replaced_with_a_private_one() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    write_file(&repo, TMP_NAME, b"stale");
    fs::set_permissions(repo.dir().join(TMP_NAME), Permissions::from_mode(0o644)).unwrap();
    repo.rotate().unwrap();
    assert!(!repo.dir().join(TMP_NAME).exists());
    assert_eq!(mode_of(&repo.dir().join("0")), 0o600);
    assert_eq!(read(&repo, "0").len(), 44);
    assert_eq!(repo.load().unwrap().len(), 3);
}

#[test]
fn concurrent_rotations_are_serialised() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 30);
    repo.setup().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let repo = repo.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    repo.rotate().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(indexes(&repo), (0..=21).collect::<Vec<u64>>());
    assert!(!repo.dir().join(TMP_NAME).exists());
    assert_eq!(repo.load().unwrap().len(), 22);
}

#[test]
fn load_returns_keys_in_descending_index_order() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 5);
    repo.setup().unwrap();
    repo.rotate().unwrap();
    repo.rotate().unwrap();
    let list = repo.list().unwrap();
    let order: Vec<u64> = list.iter().map(|k| k.index).collect();
    assert_eq!(order, vec![3, 2, 1, 0]);
    let roles: Vec<KeyRole> = list.iter().map(|k| k.role).collect();
    assert_eq!(
        roles,
        vec![
            KeyRole::Primary,
            KeyRole::Secondary,
            KeyRole::Secondary,
            KeyRole::Staged
        ]
    );
    let keys = repo.load().unwrap();
    assert_eq!(keys.len(), 4);
    for (info, key) in list.iter().zip(keys.iter()) {
        let from_file = Fernet::new(&fs::read_to_string(&info.path).unwrap()).unwrap();
        let token = key.encrypt(b"payload");
        assert_eq!(from_file.decrypt(&token).unwrap(), b"payload");
    }
}

#[test]
fn only_integer_named_non_empty_regular_files_are_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    let key = Fernet::generate_key();
    for name in ["README", "1a", "+1", "-1", " 1", "1_0", "5.bak", TMP_NAME] {
        write_file(&repo, name, key.as_bytes());
    }
    write_file(&repo, "9", b"");
    fs::create_dir(repo.dir().join("7")).unwrap();
    std::os::unix::fs::symlink(repo.dir().join("missing"), repo.dir().join("8")).unwrap();
    assert_eq!(indexes(&repo), vec![0, 1]);
    assert_eq!(repo.load().unwrap().len(), 2);
    assert_eq!(repo.list().unwrap()[0].role, KeyRole::Primary);
    // A symlink to a real key counts, like os.path.isfile.
    std::os::unix::fs::symlink(repo.dir().join("1"), repo.dir().join("4")).unwrap();
    assert_eq!(indexes(&repo), vec![0, 1, 4]);
}

#[test]
fn python_tolerated_key_spellings_are_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    let key = Fernet::generate_key();
    write_file(&repo, "5", format!("{key}\n").as_bytes());
    let standard: String = key
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    write_file(&repo, "6", format!(" {standard}\r\n").as_bytes());
    let keys = repo.load().unwrap();
    assert_eq!(keys.len(), 4);
    let token = Fernet::new(&key).unwrap().encrypt(b"x");
    assert_eq!(keys[0].decrypt(&token).unwrap(), b"x");
    assert_eq!(keys[1].decrypt(&token).unwrap(), b"x");
}

#[test]
fn bad_key_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    let short = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ=="; // 31 bytes
    for content in [
        b"not a key".as_slice(),
        short.as_bytes(),
        &[0xff, 0xfe, 0x00],
        &[b'A'; 5000],
    ] {
        write_file(&repo, "4", content);
        let err = repo.load().err().unwrap();
        assert!(matches!(err, KeyError::InvalidKey { ref path } if path.ends_with("4")));
        assert!(err.to_string().contains("/4"), "{err}");
        let list = repo.list().unwrap();
        assert_eq!(list[0].index, 4);
        assert!(!list[0].valid);
    }
}

#[test]
fn keyring_picks_up_a_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    let ring = KeyRing::open(repo.clone(), Duration::ZERO).unwrap();
    let before = ring.keys().unwrap();
    assert_eq!(before.len(), 2);
    // Unchanged directory: the very same Arc, no reload.
    assert!(Arc::ptr_eq(&before, &ring.keys().unwrap()));
    let token = before[0].encrypt(b"issued before rotation");

    repo.rotate().unwrap();
    let after = ring.keys().unwrap();
    assert_eq!(after.len(), 3);
    assert!(after[0].decrypt(&token).is_err(), "new primary must differ");
    assert!(after.iter().any(|k| k.decrypt(&token).is_ok()));
    assert!(Arc::ptr_eq(&after, &ring.keys().unwrap()));
}

#[test]
fn keyring_sees_a_rotation_at_the_next_call_whatever_the_recheck_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    let ring = KeyRing::new(repo.clone(), Duration::from_secs(3600)).stamp_every_call();
    let before = ring.keys().unwrap();
    assert!(
        Arc::ptr_eq(&before, &ring.keys().unwrap()),
        "unchanged: no reload"
    );
    for _ in 0..3 {
        repo.rotate().unwrap();
        let after = ring.keys().unwrap();
        assert_eq!(after[0].encrypt(b"x").len(), before[0].encrypt(b"x").len());
        let probe = repo.load().unwrap()[0].encrypt(b"primary on disk");
        assert!(
            after[0].decrypt(&probe).is_ok(),
            "encrypts with the new primary at once"
        );
    }
    // max_active_keys = 3: the first primary is purged, and stops decrypting at once.
    let old = before[0].encrypt(b"issued before the rotations");
    assert!(ring
        .keys()
        .unwrap()
        .iter()
        .all(|k| k.decrypt(&old).is_err()));
}

#[test]
fn keyring_reading_its_own_keys_does_not_count_as_a_change() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    let ring = KeyRing::open(repo, Duration::from_secs(3600)).unwrap();
    let after_open = ring.checks();
    for _ in 0..50 {
        ring.keys().unwrap();
        // Time for the watcher to report the opens and reads of the last load.
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        ring.checks() <= after_open + 1,
        "{} directory checks for an unchanged repository",
        ring.checks() - after_open
    );
}

#[test]
fn keyring_watcher_sees_a_key_rewritten_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    let ring = KeyRing::open(repo.clone(), Duration::from_secs(3600)).unwrap();
    let before = ring.keys().unwrap();
    // Same name, same length, no rename: the directory's metadata does not change,
    // only the watcher can tell. Bounded wait for its event, not a fixed sleep.
    let path = repo.dir().join("1");
    let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, Fernet::generate_key().as_bytes()).unwrap();
    drop(f);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while Arc::ptr_eq(&before, &ring.keys().unwrap()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload after an in-place rewrite"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn keyring_keeps_serving_the_last_good_keys_when_a_file_is_corrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    let ring = KeyRing::new(repo.clone(), Duration::ZERO);
    let good = ring.keys().unwrap();
    let token = good[0].encrypt(b"t");

    // Half-written new primary and a truncated staged key.
    write_file(&repo, "2", b"gAAAAAB");
    write_file(&repo, "0", b"abc");
    assert!(repo.load().is_err());
    let served = ring.keys().unwrap();
    assert!(Arc::ptr_eq(&good, &served));
    assert_eq!(served[0].decrypt(&token).unwrap(), b"t");
    assert!(Arc::ptr_eq(&good, &ring.keys().unwrap()));

    // Once fixed, the new state is picked up.
    write_file(&repo, "2", Fernet::generate_key().as_bytes());
    write_file(&repo, "0", Fernet::generate_key().as_bytes());
    let fixed = ring.keys().unwrap();
    assert!(!Arc::ptr_eq(&good, &fixed));
    assert_eq!(fixed.len(), 3);

    // Directory removed: still the last good keys.
    fs::remove_dir_all(repo.dir()).unwrap();
    assert!(Arc::ptr_eq(&fixed, &ring.keys().unwrap()));
}

#[test]
fn keyring_without_good_keys_reports_the_error_until_setup() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    assert!(matches!(
        KeyRing::open(repo.clone(), Duration::ZERO),
        Err(KeyError::RepositoryMissing { .. })
    ));
    let ring = KeyRing::new(repo.clone(), Duration::from_secs(3600));
    assert!(ring.keys().is_err());
    repo.setup().unwrap();
    assert_eq!(ring.keys().unwrap().len(), 2);
    assert!(format!("{ring:?}").contains("KeyRing"));
}

#[test]
fn required_max_active_keys_examples() {
    // Keystone defaults: 1 h tokens, 48 h window.
    assert_eq!(required_max_active_keys(3600, 172_800, 176_400), 3);
    assert_eq!(required_max_active_keys(3600, 172_800, 176_399), 4);
    assert_eq!(required_max_active_keys(3600, 172_800, 86_400), 5);
    assert_eq!(required_max_active_keys(3600, 172_800, 3600), 51);
    assert_eq!(required_max_active_keys(3600, 0, 3600), 3);
    assert_eq!(required_max_active_keys(3601, 0, 3600), 4);
    assert_eq!(required_max_active_keys(0, 0, 3600), 2);
    assert_eq!(required_max_active_keys(3600, 0, 0), usize::MAX);
    assert_eq!(required_max_active_keys(u64::MAX, u64::MAX, 1), usize::MAX);
}

/// Runs rotations every `r` seconds against a real repository with
/// `max_active` keys, issuing tokens with the primary at the start and at
/// the last millisecond of every interval, and checks each token still
/// decrypts with the loaded keys at every rotation before
/// `expires_at + window`. Returns false as soon as one loses its key.
fn simulate(e: u64, w: u64, r: u64, max_active: usize) -> bool {
    let tmp = tempfile::tempdir().unwrap();
    let repo = KeyRepository::new(tmp.path().join("keys"), max_active);
    repo.setup().unwrap();
    let (e, w, r) = (e * 1000, w * 1000, r * 1000); // milliseconds
    let issuing_intervals = max_active as u64 + 2;
    let total = issuing_intervals + (e + w).div_ceil(r) + 2;
    // (token, key index, must decrypt while now < needed_until)
    let mut tokens: Vec<(String, u64, u64)> = Vec::new();
    for k in 0..total {
        let start = k * r;
        if k < issuing_intervals {
            let list = repo.list().unwrap();
            let primary = repo.load().unwrap();
            for at in [start, start + r - 1] {
                tokens.push((primary[0].encrypt(b"tok"), list[0].index, at + e + w));
            }
        }
        let now = start + r; // rotation time
        repo.rotate().unwrap();
        let list = repo.list().unwrap();
        let keys = repo.load().unwrap();
        for (token, index, needed_until) in &tokens {
            if now >= *needed_until {
                continue;
            }
            let key = list
                .iter()
                .zip(keys.iter())
                .find(|(i, _)| i.index == *index);
            match key {
                Some((_, key)) => assert_eq!(key.decrypt(token).unwrap(), b"tok"),
                None => return false,
            }
        }
    }
    true
}

#[test]
fn safety_formula_is_exactly_the_minimum() {
    for (e, w, r) in [
        (3600, 0, 3600),
        (3601, 0, 3600),
        (3600, 7200, 3600),
        (100, 50, 40),
        (3600, 172_800, 86_400),
        (3600, 172_800, 3600),
    ] {
        let n = required_max_active_keys(e, w, r);
        assert!(simulate(e, w, r, n), "N={n} must be safe for {e}/{w}/{r}");
        assert!(
            !simulate(e, w, r, n - 1),
            "N-1={} must lose a key for {e}/{w}/{r}",
            n - 1
        );
    }
}

#[test]
fn safety_check_display_explains_the_value() {
    let unsafe_ = SafetyCheck::new(3, 3600, 172_800, 3600);
    assert!(!unsafe_.is_safe());
    let text = unsafe_.to_string();
    assert!(text.contains("at least 51"), "{text}");
    assert!(text.contains("allow_expired_window"), "{text}");
    let safe = SafetyCheck::new(5, 3600, 172_800, 86_400);
    assert!(safe.is_safe());
    assert!(safe.to_string().contains("is enough"), "{safe}");
    assert!(!SafetyCheck::new(100, 1, 1, 0).is_safe());
}

#[test]
fn check_report_flags_an_unsafe_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 3);
    repo.setup().unwrap();
    let now = SystemTime::now();
    let report = repo.check_report(3600, 172_800, 3600, now).unwrap();
    assert!(!report.is_safe());
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let text = report.to_string();
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("UNSAFE:"), "{text}");
    assert!(last.contains("51"), "{text}");
    assert!(text.contains("configured 3, required 51"), "{text}");
    assert!(text.contains("primary"), "{text}");
    assert!(text.contains("staged"), "{text}");
    assert!(text.contains("0600"), "{text}");
    assert!(text.contains("2d 1h"), "{text}");

    let safe = KeyRepository::new(repo.dir(), 5)
        .check_report(3600, 172_800, 86_400, now)
        .unwrap();
    assert!(safe.is_safe(), "{safe}");
    assert!(safe.to_string().lines().last().unwrap().starts_with("OK:"));
}

#[test]
fn check_report_flags_permissions_and_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 5);
    repo.setup().unwrap();
    fs::set_permissions(repo.dir(), Permissions::from_mode(0o755)).unwrap();
    let now = SystemTime::now();
    let report = repo.check_report(3600, 172_800, 86_400, now).unwrap();
    assert!(report.safety.is_safe());
    assert!(!report.is_safe());
    let text = report.to_string();
    assert!(text.contains("ERROR: directory"), "{text}");
    assert!(text.contains("0755"), "{text}");
    assert!(
        text.lines().last().unwrap().starts_with("UNSAFE:"),
        "{text}"
    );

    fs::set_permissions(repo.dir(), Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(repo.dir().join("1"), Permissions::from_mode(0o640)).unwrap();
    let report = repo.check_report(3600, 172_800, 86_400, now).unwrap();
    assert!(report.is_safe(), "{report}");
    assert!(report.to_string().contains("WARNING: key file"));

    fs::remove_file(repo.dir().join("0")).unwrap();
    write_file(&repo, "3", b"junk");
    write_file(&repo, "4", b"");
    let report = repo.check_report(3600, 172_800, 86_400, now).unwrap();
    assert!(!report.is_safe());
    let text = report.to_string();
    assert!(text.contains("no staged key 0"), "{text}");
    assert!(text.contains("INVALID"), "{text}");
    assert!(text.contains("/3 is not a valid Fernet key"), "{text}");
    assert!(text.contains("/4 is empty"), "{text}");
}

#[test]
fn check_report_warns_when_rotation_seems_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_in(&tmp, 5);
    repo.setup().unwrap();
    let later = SystemTime::now() + Duration::from_secs(3 * 86_400);
    let report = repo.check_report(3600, 172_800, 86_400, later).unwrap();
    assert!(report.is_safe());
    let text = report.to_string();
    assert!(text.contains("the last rotation was 3d"), "{text}");
    assert!(text.lines().last().unwrap().contains("1 warning"), "{text}");
}

#[test]
fn small_helpers() {
    assert_eq!(parse_index("0"), Some(0));
    assert_eq!(parse_index("012"), Some(12));
    assert_eq!(parse_index("+1"), None);
    assert_eq!(parse_index(""), None);
    assert_eq!(parse_index("99999999999999999999999"), None);
    assert_eq!(human_duration(0), "0s");
    assert_eq!(human_duration(45), "45s");
    assert_eq!(human_duration(5400), "1h 30m");
    assert_eq!(human_duration(172_800), "2d");
    assert_eq!(human_duration(90_061), "1d 1h");
}
