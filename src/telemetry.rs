//! Logging setup shared by the binary and the tests (`KEYSTONE_TEST_LOG=1`).

use tracing_subscriber::{fmt, EnvFilter};

/// Installs a global subscriber once; later calls are no-ops.
pub fn init(default_filter: &str, json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let result = if json {
        fmt()
            .with_env_filter(filter)
            .json()
            .with_writer(std::io::stderr)
            .try_init()
    } else {
        // Colour only for a terminal: journald, docker logs and CI get plain text.
        fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init()
    };
    // Already installed (tests call this repeatedly): keep the first.
    let _ = result;
}
