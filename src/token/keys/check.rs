//! `keystone-rs fernet check`: the rotation-safety arithmetic and the report.

use std::fmt;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::repository::*;

/// Other-access is an error (anyone on the host could forge tokens);
/// group-access only a warning, as some deployments share a service group.
pub(super) fn mode_problem(
    what: &str,
    path: &Path,
    mode: u32,
    wanted: u32,
) -> Option<(Severity, String)> {
    let (severity, who) = if mode & 0o007 != 0 {
        (Severity::Error, "other users")
    } else if mode & 0o070 != 0 {
        (Severity::Warning, "its group")
    } else {
        return None;
    };
    Some((
        severity,
        format!(
            "{what} {} is mode {mode:04o}, accessible by {who}; run `chmod {wanted:04o} {}`",
            path.display(),
            path.display()
        ),
    ))
}

pub(super) fn age(now: SystemTime, then: SystemTime) -> u64 {
    now.duration_since(then).map_or(0, |d| d.as_secs())
}

/// "2d 3h", "1h 30m", "45s": the two largest units, for reading, not parsing.
pub(super) fn human_duration(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    for (i, &(size, unit)) in UNITS.iter().enumerate() {
        if secs >= size {
            let mut out = format!("{}{unit}", secs / size);
            if let Some(&(next, next_unit)) = UNITS.get(i + 1) {
                let rest = (secs % size) / next;
                if rest > 0 {
                    out.push_str(&format!(" {rest}{next_unit}"));
                }
            }
            return out;
        }
    }
    "0s".to_string()
}

impl KeyRepository {
    /// Inspects the repository for `keystone-rs fernet check`. Times are in
    /// seconds: `[token] expiration`, `[token] allow_expired_window`, and the
    /// interval at which the operator runs `fernet rotate`.
    pub fn check_report(
        &self,
        expiration: u64,
        window: u64,
        rotation_interval: u64,
        now: SystemTime,
    ) -> Result<CheckReport, KeyError> {
        let scan = self.scan()?;
        let keys = infos(&scan);
        let safety = SafetyCheck::new(self.max_active_keys, expiration, window, rotation_interval);
        let mut problems = Vec::new();
        let mut problem = |severity, message: String| problems.push(Problem { severity, message });

        if let Some(p) = mode_problem("directory", &self.dir, scan.dir_mode, 0o700) {
            problem(p.0, p.1);
        }
        for key in &keys {
            if let Some(p) = mode_problem("key file", &key.path, key.mode, 0o600) {
                problem(p.0, p.1);
            }
            if !key.valid {
                problem(
                    Severity::Error,
                    format!(
                        "key file {} is not a valid Fernet key (URL-safe base64 of 32 bytes); \
                         token validation fails until it is fixed or removed",
                        key.path.display()
                    ),
                );
            }
        }
        for path in &scan.empty {
            problem(
                Severity::Warning,
                format!("key file {} is empty and is ignored", path.display()),
            );
        }
        if keys.is_empty() {
            problem(
                Severity::Error,
                "the repository holds no keys; run `keystone-rs fernet setup`".to_string(),
            );
        } else if !scan.keys.contains_key(&0) {
            problem(
                Severity::Error,
                "there is no staged key 0, so the next rotation will fail; \
                 run `keystone-rs fernet setup` to create one"
                    .to_string(),
            );
        }
        if scan.tmp_present {
            problem(
                Severity::Warning,
                format!(
                    "leftover {} (an interrupted rotation?); the next rotation replaces it",
                    self.dir.join(TMP_NAME).display()
                ),
            );
        }
        if keys.len() > self.max_active_keys {
            problem(
                Severity::Warning,
                format!(
                    "the repository holds {} keys but max_active_keys = {}: the next rotation \
                     deletes the {} oldest",
                    keys.len(),
                    self.max_active_keys,
                    keys.len() + 1 - self.max_active_keys.max(1)
                ),
            );
        }
        if let Some(staged) = scan.keys.get(&0) {
            let since = age(now, staged.modified);
            if rotation_interval > 0 && since > rotation_interval.saturating_mul(3) / 2 {
                problem(
                    Severity::Warning,
                    format!(
                        "the last rotation was {} ago but the rotation interval is {}; \
                         is `keystone-rs fernet rotate` being run?",
                        human_duration(since),
                        human_duration(rotation_interval)
                    ),
                );
            }
        }

        Ok(CheckReport {
            dir: self.dir.clone(),
            dir_mode: scan.dir_mode,
            keys,
            now,
            safety,
            problems,
        })
    }
}

// ---------------------------------------------------------------------------
// Rotation safety
// ---------------------------------------------------------------------------

/// Smallest `max_active_keys` that keeps every key on disk until the last
/// token it encrypted can no longer be validated, even with `allow_expired`:
///
/// `N = 2 + ceil((expiration + allow_expired_window) / rotation_interval)`
///
/// Why: rotations happen every `R` seconds. A key becomes primary at some
/// rotation `t0` and encrypts until the next one, so its last token is issued
/// just before `t0 + R` and must stay decryptable until
/// `t0 + R + expiration + window`. After each rotation the repository holds
/// the staged key plus `N - 1` others, newest first, and the oldest are
/// purged; the key is the newest non-staged key at `t0`, the `(j+1)`-th after
/// `j` more rotations, so it is purged by rotation `N - 1` after `t0`, at
/// `t0 + (N - 1)·R`. We need `(N - 1)·R >= R + expiration + window`, i.e.
/// `(N - 2)·R >= expiration + window`: the primary interval and the staged
/// key each take one slot, and the remaining `N - 2` slots must span
/// `expiration + window`. The simulation test checks it is exactly minimal.
///
/// Keystone's defaults (1 h + 48 h, max_active_keys = 3) are therefore only
/// safe when rotating at most every 49 h; daily rotation needs 5.
/// `rotation_interval_secs = 0` (rotate at any moment) has no safe value and
/// yields `usize::MAX`. The interval is the shortest time between two
/// rotations, including manual ones.
pub fn required_max_active_keys(
    expiration_secs: u64,
    allow_expired_window_secs: u64,
    rotation_interval_secs: u64,
) -> usize {
    if rotation_interval_secs == 0 {
        return usize::MAX;
    }
    let span = expiration_secs.saturating_add(allow_expired_window_secs);
    let rotations = span.div_ceil(rotation_interval_secs);
    usize::try_from(rotations)
        .unwrap_or(usize::MAX)
        .saturating_add(2)
}

/// Configured `max_active_keys` against [`required_max_active_keys`].
/// All durations are in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyCheck {
    pub required: usize,
    pub configured: usize,
    pub rotation_interval: u64,
    pub expiration: u64,
    pub window: u64,
}

impl SafetyCheck {
    pub fn new(configured: usize, expiration: u64, window: u64, rotation_interval: u64) -> Self {
        Self {
            required: required_max_active_keys(expiration, window, rotation_interval),
            configured,
            rotation_interval,
            expiration,
            window,
        }
    }

    pub fn is_safe(&self) -> bool {
        self.rotation_interval > 0 && self.configured >= self.required
    }
}

impl fmt::Display for SafetyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rotation_interval == 0 {
            return f.write_str(
                "the rotation interval must be greater than zero: if keys can be rotated at any \
                 moment, no max_active_keys value keeps them long enough",
            );
        }
        let span = self.expiration.saturating_add(self.window);
        let (e, w, r) = (
            human_duration(self.expiration),
            human_duration(self.window),
            human_duration(self.rotation_interval),
        );
        if self.is_safe() {
            let kept =
                (self.configured.saturating_sub(2) as u64).saturating_mul(self.rotation_interval);
            write!(
                f,
                "max_active_keys = {} is enough (at least {} needed): rotating every {r}, a key \
                 stays {} after it stops being primary, covering token expiration {e} + \
                 allow_expired_window {w}.",
                self.configured,
                self.required,
                human_duration(kept),
            )
        } else {
            write!(
                f,
                "set max_active_keys to at least {} (it is {}): a key must stay for expiration \
                 {e} + allow_expired_window {w} = {} after it stops being primary, which is \
                 {} rotations every {r}, plus one slot for the primary and one for the staged \
                 key; otherwise services validating expired tokens with allow_expired get 404s.",
                self.required,
                self.configured,
                human_duration(span),
                self.required.saturating_sub(2),
            )
        }
    }
}

/// How serious a [`Problem`] is: errors make the report unsafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Error,
}

/// Something `fernet check` found wrong besides the key count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub message: String,
}

/// Output of `keystone-rs fernet check`; `Display` renders it for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub dir: PathBuf,
    pub dir_mode: u32,
    /// In load order, as [`KeyRepository::list`].
    pub keys: Vec<KeyInfo>,
    pub now: SystemTime,
    pub safety: SafetyCheck,
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// False if max_active_keys is too low or any problem is an error; the
    /// CLI should exit non-zero then.
    pub fn is_safe(&self) -> bool {
        self.safety.is_safe() && !self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Fernet key repository {} (mode {:04o})",
            self.dir.display(),
            self.dir_mode
        )?;
        writeln!(
            f,
            "{:>8}  {:<9}  {:>8}  {:<4}  created",
            "key", "role", "age", "mode"
        )?;
        for key in &self.keys {
            let created =
                chrono::DateTime::<chrono::Utc>::from(key.modified).format("%Y-%m-%dT%H:%M:%SZ");
            writeln!(
                f,
                "{:>8}  {:<9}  {:>8}  {:04o}  {created}{}",
                key.index,
                key.role.to_string(),
                human_duration(age(self.now, key.modified)),
                key.mode,
                if key.valid { "" } else { "  INVALID" },
            )?;
        }
        let s = &self.safety;
        let required = if s.required == usize::MAX {
            "none is enough".to_string()
        } else {
            s.required.to_string()
        };
        writeln!(
            f,
            "max_active_keys: configured {}, required {required} (rotation every {})",
            s.configured,
            human_duration(s.rotation_interval)
        )?;
        writeln!(
            f,
            "Each key must outlive the last token it encrypted by {}: token expiration {} + \
             allow_expired_window {}.",
            human_duration(s.expiration.saturating_add(s.window)),
            human_duration(s.expiration),
            human_duration(s.window)
        )?;
        let mut errors = 0;
        let mut warnings = 0;
        for p in &self.problems {
            match p.severity {
                Severity::Error => {
                    errors += 1;
                    writeln!(f, "ERROR: {}", p.message)?;
                }
                Severity::Warning => {
                    warnings += 1;
                    writeln!(f, "WARNING: {}", p.message)?;
                }
            }
        }
        if !s.is_safe() {
            write!(f, "UNSAFE: {s}")?;
            if errors > 0 {
                write!(f, " Also fix the {errors} ERROR line(s) above.")?;
            }
        } else if errors > 0 {
            write!(
                f,
                "UNSAFE: fix the {errors} ERROR line(s) above (max_active_keys itself is enough)."
            )?;
        } else {
            write!(f, "OK: {s}")?;
            if warnings > 0 {
                write!(f, " ({warnings} warning(s) above)")?;
            }
        }
        writeln!(f)
    }
}

/// `keystone-rs fernet check` with `key_store = database`: the key set, who has
/// loaded what, and when the next rotation is due.
#[derive(Debug, Clone)]
pub struct ClusterReport {
    pub set: super::OpenSet,
    pub replicas: Vec<crate::model::Replica>,
    /// Epoch seconds.
    pub now: i64,
    pub replica_timeout: u64,
    /// With `auto_rotate`: when the next rotation is due (epoch seconds).
    pub next_rotation: Option<i64>,
    pub safety: SafetyCheck,
}

impl ClusterReport {
    pub fn live(&self) -> impl Iterator<Item = &crate::model::Replica> {
        self.replicas
            .iter()
            .filter(|r| self.now - r.last_seen <= self.replica_timeout as i64)
    }

    /// Unsafe settings or no key set at all.
    pub fn is_safe(&self) -> bool {
        self.safety.is_safe() && !self.set.keys.is_empty()
    }
}

fn secs_ago(now: i64, then: i64) -> String {
    human_duration(u64::try_from(now - then).unwrap_or(0))
}

impl fmt::Display for ClusterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.set.state;
        writeln!(
            f,
            "Fernet keys in the database: version {}, last changed {} ago by {}",
            s.version,
            secs_ago(self.now, s.rotated_at),
            if s.rotated_by.is_empty() {
                "-"
            } else {
                &s.rotated_by
            }
        )?;
        writeln!(f, "{:>8}  {:<9}  {:>8}  retired", "key", "role", "age")?;
        let highest = self.set.primary().unwrap_or(0);
        for key in self.set.keys.iter().rev() {
            let role = role_of(key.idx, highest);
            let retired = if key.retired_at > 0 {
                format!("{} ago", secs_ago(self.now, key.retired_at))
            } else {
                "-".to_string()
            };
            writeln!(
                f,
                "{:>8}  {:<9}  {:>8}  {retired}",
                key.idx,
                role.to_string(),
                secs_ago(self.now, key.created_at)
            )?;
        }
        match self.next_rotation {
            Some(at) if at <= self.now => writeln!(f, "next rotation: due now")?,
            Some(at) => writeln!(
                f,
                "next rotation: in {}",
                human_duration(u64::try_from(at - self.now).unwrap_or(0))
            )?,
            None => writeln!(f, "next rotation: manual (auto_rotate is off)")?,
        }
        writeln!(
            f,
            "replicas (live = seen within {}):",
            human_duration(self.replica_timeout)
        )?;
        if self.replicas.is_empty() {
            writeln!(f, "  none")?;
        }
        for r in &self.replicas {
            let live = self.now - r.last_seen <= self.replica_timeout as i64;
            writeln!(
                f,
                "  {}  {}  loaded version {}{}  seen {} ago{}",
                r.id,
                if live { "live" } else { "gone" },
                r.loaded_version,
                if r.loaded_version < s.version {
                    " (behind)"
                } else {
                    ""
                },
                secs_ago(self.now, r.last_seen),
                if r.leading { "  rotates" } else { "" }
            )?;
        }
        if self.set.keys.is_empty() {
            writeln!(f, "ERROR: no keys; run `keystone-rs fernet setup`")?;
        }
        if self.safety.is_safe() {
            writeln!(f, "OK: {}", self.safety)
        } else {
            writeln!(f, "UNSAFE: {}", self.safety)
        }
    }
}
