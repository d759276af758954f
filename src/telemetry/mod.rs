//! Logging setup shared by the binary and the tests (`KEYSTONE_TEST_LOG=1`).

pub mod audit;
pub mod metrics;

use tracing_subscriber::{fmt, EnvFilter};

/// Bridges the `log` records of our dependencies into tracing, demoting what
/// actix's HTTP/1 dispatcher says about a client's broken request (malformed HTTP,
/// a peer gone mid-request) from error to debug: that is the client's fault, and
/// one ERROR line per junk connection would bury real errors.
struct Demote(tracing_log::LogTracer);

impl log::Log for Demote {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.target().starts_with("actix_http::h1") && record.level() <= log::Level::Warn {
            self.0.log(
                &log::Record::builder()
                    .args(*record.args())
                    .level(log::Level::Debug)
                    .target(record.target())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            );
        } else {
            self.0.log(record);
        }
    }

    fn flush(&self) {}
}

/// Installs a global subscriber once; later calls are no-ops.
pub fn init(default_filter: &str, json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let max =
        filter
            .max_level_hint()
            .and_then(|l| l.into_level())
            .map_or(log::LevelFilter::Trace, |l| match l {
                tracing::Level::ERROR => log::LevelFilter::Error,
                tracing::Level::WARN => log::LevelFilter::Warn,
                tracing::Level::INFO => log::LevelFilter::Info,
                tracing::Level::DEBUG => log::LevelFilter::Debug,
                tracing::Level::TRACE => log::LevelFilter::Trace,
            });
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if json {
        tracing::subscriber::set_global_default(builder.json().finish())
    } else {
        // Colour only for a terminal: journald, docker logs and CI get plain text.
        tracing::subscriber::set_global_default(
            builder
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .finish(),
        )
    };
    // Already installed (tests call this repeatedly): keep the first.
    if result.is_ok()
        && log::set_boxed_logger(Box::new(Demote(tracing_log::LogTracer::new()))).is_ok()
    {
        log::set_max_level(max);
    }
}
