//! etc/keystone.conf.sample must document every option keystone-rs reads, and
//! nothing it does not: uncommented, it loads without a single warning.

use keystone_rs::config::{known_options, Settings};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/etc/keystone.conf.sample");

#[test]
fn sample_documents_every_known_option() {
    let text = std::fs::read_to_string(SAMPLE).expect("sample");
    let mut section = String::new();
    let mut documented = std::collections::BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_ascii_lowercase();
        } else if let Some((key, _)) = line.trim_start_matches('#').split_once('=') {
            let key = key.trim();
            if !key.is_empty() && !key.contains(' ') {
                documented.insert((section.clone(), key.to_string()));
            }
        }
    }
    let mut missing = Vec::new();
    for (section, options) in known_options() {
        for option in *options {
            if !documented.contains(&(section.to_string(), option.to_string())) {
                missing.push(format!("[{section}] {option}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "options missing from the sample: {missing:?}"
    );
}

#[test]
fn sample_uncommented_loads_without_warnings() {
    let text = std::fs::read_to_string(SAMPLE).expect("sample");
    // Uncomment `#option = value` lines (comments have a space after '#').
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest)
                if !rest.starts_with(' ')
                    && rest.contains('=')
                    && !rest.trim_end().ends_with('=') =>
            {
                rest.to_string()
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keystone.conf");
    std::fs::write(&path, uncommented).expect("write");
    let settings = Settings::load_with_env(Some(&path), &[]).expect("the sample's defaults load");
    assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
    assert_eq!(settings.token.expiration, 3600);
}
