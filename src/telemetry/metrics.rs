//! Prometheus metrics (`[metrics] enabled`), through the `metrics` facade: code that
//! measures calls the facade's macros, which cost one atomic load while no recorder
//! is installed. Gauges that describe state (revocations, keys, pools) are read when
//! scraped, so nothing is computed per request for them.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Every metric the server exports, with its help text: `/metrics` describes them
/// and the dashboard test checks the dashboard against this list.
pub const METRICS: &[(&str, &str)] = &[
    (
        "keystone_http_requests_total",
        "HTTP requests by route template, method and status",
    ),
    (
        "keystone_http_request_duration_seconds",
        "HTTP request latency by route template and method",
    ),
    (
        "keystone_token_issues_total",
        "Tokens issued, by outcome (ok, error)",
    ),
    (
        "keystone_token_validations_total",
        "Token validations by outcome (ok, allow_expired, expired, revoked, invalid, unavailable)",
    ),
    (
        "keystone_cache_requests_total",
        "Cache lookups by cache and result (hit, miss)",
    ),
    (
        "keystone_hash_queue_depth",
        "Password and secret hashes waiting for the bounded hashing pool",
    ),
    (
        "keystone_hash_wait_seconds",
        "How long a hash waited for the hashing pool",
    ),
    (
        "keystone_revocation_events",
        "Revocation events in this server's index",
    ),
    (
        "keystone_revocation_age_seconds",
        "Since the revocation index last refreshed",
    ),
    (
        "keystone_fernet_keys",
        "Fernet keys loaded (staged, primary, secondary)",
    ),
    (
        "keystone_fernet_primary_age_seconds",
        "Since the last rotation made the current primary key",
    ),
    (
        "keystone_fernet_next_rotation_seconds",
        "Until the next automatic rotation is due (auto_rotate only)",
    ),
    (
        "keystone_db_connections",
        "Database connections by pool (read, write) and state (in_use, idle)",
    ),
    (
        "keystone_db_acquire_seconds",
        "How long a write waited for a writer connection",
    ),
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (later calls return the same handle);
/// None when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0,
                    ],
                )
                .ok()?
                .install_recorder()
                .ok()?;
            for (name, help) in METRICS {
                if name.ends_with("_total") {
                    metrics::describe_counter!(*name, *help);
                } else if name.ends_with("_seconds")
                    && !name.contains("age")
                    && !name.contains("next")
                {
                    metrics::describe_histogram!(*name, metrics::Unit::Seconds, *help);
                } else {
                    metrics::describe_gauge!(*name, *help);
                }
            }
            Some(handle)
        })
        .as_ref()
}

/// Drains histogram samples into their buckets; `install_recorder` leaves this to
/// us, and without it samples pile up between scrapes.
pub fn spawn_upkeep() {
    static STARTED: OnceLock<()> = OnceLock::new();
    if let Some(handle) = handle() {
        STARTED.get_or_init(|| {
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    handle.run_upkeep();
                }
            });
        });
    }
}

/// The handle, if metrics are on in this process.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get().and_then(Option::as_ref)
}

/// State read at scrape time, set as gauges just before rendering.
#[derive(Clone, Debug, Default)]
pub struct Readings {
    pub revocation_events: usize,
    pub revocation_age: Option<Duration>,
    pub keys: usize,
    pub primary_age: Option<Duration>,
    /// Negative when overdue.
    pub next_rotation_secs: Option<i64>,
    /// (pool, size, idle)
    pub pools: Vec<(&'static str, u32, usize)>,
}

/// The exposition text, with `readings` as the state gauges.
pub fn render(handle: &PrometheusHandle, r: &Readings) -> String {
    metrics::gauge!("keystone_revocation_events").set(r.revocation_events as f64);
    if let Some(age) = r.revocation_age {
        metrics::gauge!("keystone_revocation_age_seconds").set(age.as_secs_f64());
    }
    metrics::gauge!("keystone_fernet_keys").set(r.keys as f64);
    if let Some(age) = r.primary_age {
        metrics::gauge!("keystone_fernet_primary_age_seconds").set(age.as_secs_f64());
    }
    if let Some(next) = r.next_rotation_secs {
        metrics::gauge!("keystone_fernet_next_rotation_seconds").set(next as f64);
    }
    for (pool, size, idle) in &r.pools {
        let in_use = (*size as usize).saturating_sub(*idle);
        metrics::gauge!("keystone_db_connections", "pool" => *pool, "state" => "in_use")
            .set(in_use as f64);
        metrics::gauge!("keystone_db_connections", "pool" => *pool, "state" => "idle")
            .set(*idle as f64);
    }
    handle.render()
}

/// Validation outcomes, in the order of [`VALIDATION_OUTCOMES`].
const VALIDATION_OUTCOMES: [&str; 6] = [
    "ok",
    "allow_expired",
    "expired",
    "revoked",
    "invalid",
    "unavailable",
];

/// Handles registered once: an increment is then one atomic add, no key building or
/// registry lookup on the hot path. Registered on first use, which in the server is
/// after [`install`].
fn validation_counters() -> &'static [Counter; 6] {
    static COUNTERS: OnceLock<[Counter; 6]> = OnceLock::new();
    COUNTERS.get_or_init(|| {
        VALIDATION_OUTCOMES
            .map(|o| metrics::counter!("keystone_token_validations_total", "outcome" => o))
    })
}

/// A token validation's outcome (one of `VALIDATION_OUTCOMES`; anything else counts as
/// `invalid`).
pub fn validation(outcome: &'static str) {
    let i = VALIDATION_OUTCOMES
        .iter()
        .position(|o| *o == outcome)
        .unwrap_or(4);
    validation_counters()[i].increment(1);
}

/// A token issue's outcome.
pub fn issue(ok: bool) {
    static COUNTERS: OnceLock<[Counter; 2]> = OnceLock::new();
    let c = COUNTERS.get_or_init(|| {
        ["ok", "error"].map(|o| metrics::counter!("keystone_token_issues_total", "outcome" => o))
    });
    c[usize::from(!ok)].increment(1);
}

/// One cache's hit and miss counters (`GenerationCache` holds them).
#[derive(Clone)]
pub struct CacheCounters {
    hit: Counter,
    miss: Counter,
}

impl CacheCounters {
    pub fn new(name: &'static str) -> Self {
        CacheCounters {
            hit: metrics::counter!("keystone_cache_requests_total", "cache" => name, "result" => "hit"),
            miss: metrics::counter!("keystone_cache_requests_total", "cache" => name, "result" => "miss"),
        }
    }

    /// Counts nothing: a cache nobody named.
    pub fn noop() -> Self {
        CacheCounters {
            hit: Counter::noop(),
            miss: Counter::noop(),
        }
    }

    pub fn record(&self, hit: bool) {
        if hit {
            self.hit.increment(1);
        } else {
            self.miss.increment(1);
        }
    }
}

impl std::fmt::Debug for CacheCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheCounters").finish_non_exhaustive()
    }
}

type RequestKey = (&'static str, &'static str, String);

/// The request counters and histograms, by (method, status, route template).
fn request_handles() -> &'static RwLock<HashMap<RequestKey, (Counter, Histogram)>> {
    static HANDLES: OnceLock<RwLock<HashMap<RequestKey, (Counter, Histogram)>>> = OnceLock::new();
    HANDLES.get_or_init(Default::default)
}

/// A finished HTTP request; `route` is the matched template (`/v3/users/{user_id}`),
/// never the concrete path, so ids do not explode the label set. Labels are static
/// strings where they can be, so the hot path allocates only the route.
pub fn request(method: &actix_web::http::Method, route: String, status: u16, elapsed: Duration) {
    let method = static_method(method);
    let status = static_status(status);
    let key = (method, status, route);
    let seconds = elapsed.as_secs_f64();
    {
        let handles = request_handles()
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((count, latency)) = handles.get(&key) {
            count.increment(1);
            latency.record(seconds);
            return;
        }
    }
    let (method, status, route) = key;
    let count = metrics::counter!(
        "keystone_http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status
    );
    let latency = metrics::histogram!(
        "keystone_http_request_duration_seconds",
        "method" => method,
        "route" => route.clone()
    );
    count.increment(1);
    latency.record(seconds);
    request_handles()
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert((method, status, route), (count, latency));
}

fn static_method(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn static_status(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        204 => "204",
        300 => "300",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => match status / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        },
    }
}

/// Hashes waiting for a permit: +1 when one starts waiting, -1 when it gets one.
pub fn hash_queue(delta: f64) {
    metrics::gauge!("keystone_hash_queue_depth").increment(delta);
}

pub fn hash_wait(waited: Duration) {
    metrics::histogram!("keystone_hash_wait_seconds").record(waited.as_secs_f64());
}

pub fn db_acquire(waited: Duration) {
    metrics::histogram!("keystone_db_acquire_seconds", "pool" => "write")
        .record(waited.as_secs_f64());
}
