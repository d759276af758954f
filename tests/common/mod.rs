//! Helpers for the tests that run the real `keystone-rs` binary as a child process.
#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_keystone-rs");

/// A temporary directory holding a keystone.conf, a SQLite database and a key repository.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    /// A sandbox whose keystone.conf points `[database] connection` and
    /// `[fernet_tokens] key_repository` into the temp dir, plus `options`
    /// as `(section, option, value)`.
    pub fn new(options: &[(&str, &str, &str)]) -> Self {
        let sandbox = Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        sandbox.write_conf(options);
        sandbox
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn conf(&self) -> PathBuf {
        self.path().join("keystone.conf")
    }

    pub fn keys(&self) -> PathBuf {
        self.path().join("fernet-keys")
    }

    /// Rewrites keystone.conf. Each section is written once: a repeated
    /// section header replaces the earlier one in keystone-rs's INI reader,
    /// which would silently drop the sandbox paths.
    pub fn write_conf(&self, options: &[(&str, &str, &str)]) {
        let db = format!(
            // An absolute path: sqlite:////abs/path.db, SQLAlchemy style.
            "sqlite:///{}",
            self.path().join("keystone.db").display()
        );
        let keys = self.keys().display().to_string();
        let mut sections: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        sections
            .entry("database")
            .or_default()
            .push(("connection", &db));
        sections
            .entry("fernet_tokens")
            .or_default()
            .push(("key_repository", &keys));
        for (section, option, value) in options {
            sections.entry(section).or_default().push((option, value));
        }
        let mut text = String::new();
        for (section, options) in sections {
            text.push_str(&format!("[{section}]\n"));
            for (option, value) in options {
                text.push_str(&format!("{option} = {value}\n"));
            }
            text.push('\n');
        }
        fs::write(self.conf(), text).expect("write keystone.conf");
    }

    /// `keystone-rs --config-file <conf> <args...>` with a clean environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = keystone_command();
        cmd.arg("--config-file").arg(self.conf()).args(args);
        cmd
    }

    /// Runs to completion (at most 120 s) and returns the output.
    pub fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(self.command(args), Duration::from_secs(120))
    }

    /// Runs and asserts success.
    pub fn run_ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "keystone-rs {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }
}

/// The binary with an environment that cannot change its behaviour: no
/// KEYSTONE_* overrides or OS_BOOTSTRAP_* defaults from the developer's shell,
/// plain (uncoloured) info-level logs.
pub fn keystone_command() -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("KEYSTONE_") || name.starts_with("OS_") {
            cmd.env_remove(&name);
        }
    }
    cmd.env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keystone-rs");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for keystone-rs"),
        Err(_) => {
            // The waiting thread owns the Child; kill by pid so it is not leaked.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("keystone-rs {cmd:?} did not finish within {limit:?}");
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    strip_ansi(&String::from_utf8_lossy(bytes))
}

/// Removes terminal colour sequences (ESC [ ... final byte), in case logs are coloured.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A running `keystone-rs serve`, killed when dropped (also when an assertion fails).
pub struct Server {
    child: Child,
    pub port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `serve --bind 127.0.0.1:0` and waits for the `keystone-rs listening` line.
    pub fn start(sandbox: &Sandbox) -> Server {
        let mut cmd = sandbox.command(&["serve", "--bind", "127.0.0.1:0"]);
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keystone-rs serve");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("lines").push(strip_ansi(&line));
            }
        });
        let mut server = Server {
            child,
            port: 0,
            lines,
        };
        let line = server
            .wait_for_line(Duration::from_secs(60), |l| {
                l.contains("keystone-rs listening")
            })
            .unwrap_or_else(|| {
                panic!(
                    "no `keystone-rs listening` line within 60 s; stderr:\n{}",
                    server.stderr()
                )
            });
        server.port = parse_port(&line).unwrap_or_else(|| panic!("no port=N in {line:?}"));
        server
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// Polls stderr until a line matches; fails fast if the server exits.
    pub fn wait_for_line(
        &mut self,
        limit: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let start = Instant::now();
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| matches(l)) {
                return Some(l);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100)); // let the reader drain
                panic!(
                    "keystone-rs serve exited with {status}; stderr:\n{}",
                    self.stderr()
                );
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `port=5000` in a log line.
pub fn parse_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("port=")? + "port=".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The value of `name=value` (quotes removed) in a tracing fmt line.
pub fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!(" {name}=");
    let start = line.find(&needle)? + needle.len();
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        quoted.split('"').next()
    } else {
        rest.split_whitespace().next()
    }
}

/// `KEYSTONE_TEST_POSTGRES_URL`, or None (the caller returns) when it is not set;
/// fails instead when `KEYSTONE_TEST_REQUIRE_POSTGRES` is set, so CI cannot lose it.
pub fn postgres_base(what: &str) -> Option<String> {
    let base = std::env::var("KEYSTONE_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty());
    if base.is_none() {
        assert!(
            std::env::var("KEYSTONE_TEST_REQUIRE_POSTGRES").is_err(),
            "KEYSTONE_TEST_REQUIRE_POSTGRES is set but KEYSTONE_TEST_POSTGRES_URL is not"
        );
        eprintln!("{what} need KEYSTONE_TEST_POSTGRES_URL; not run");
    }
    base
}

/// A fresh database named `<prefix>_<uuid>` on the server at `base`: the connection
/// that created it (to drop it afterwards), its URL and its name.
pub async fn scratch_database(base: &str, prefix: &str) -> (sqlx::PgConnection, url::Url, String) {
    use sqlx::Connection;
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(base).await.expect("postgres");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let mut url = url::Url::parse(base).expect("url");
    url.set_path(&format!("/{name}"));
    (admin, url, name)
}
