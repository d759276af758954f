//! `[rate_limit]`: token buckets (governor's GCRA) in front of password logins,
//! one keyed by client address and one by the user named, checked before any
//! password is hashed, so a flood cannot occupy the hashing pool. Per process:
//! with N replicas a client may make N times the configured attempts.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::{Quota, RateLimiter};

use crate::clock::Clock;
use crate::config::RateLimitSection;
use crate::identity::UserRef;

/// governor's view of the injectable clock, so tests move buckets forward without sleeping.
#[derive(Clone, Debug)]
pub struct LimiterClock(Clock);

impl GovernorClock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        let micros = self.0.now().timestamp_micros();
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    }
}

type Keyed<K> = RateLimiter<
    K,
    governor::state::keyed::DashMapStateStore<K>,
    LimiterClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

/// Longest user reference kept as a key: a client chooses it.
const MAX_KEY: usize = 320;

/// Checks made between two sweeps of idle buckets.
const SWEEP_EVERY: u64 = 4096;

/// Which bucket refused, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub limit: &'static str,
    pub retry_after_secs: u64,
}

#[derive(Clone)]
pub struct LoginLimiter {
    inner: Option<Arc<Limiters>>,
}

struct Limiters {
    by_address: Keyed<IpAddr>,
    by_user: Keyed<String>,
    clock: LimiterClock,
    checks: AtomicU64,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

/// The user as the request names it: by id, or by name within a domain.
fn user_key(user: &UserRef) -> String {
    let mut key = match user {
        UserRef::Id(id) => format!("id:{id}"),
        UserRef::Name {
            name,
            domain_id,
            domain_name,
        } => match (domain_id, domain_name) {
            (Some(d), _) => format!("name:id={d}:{name}"),
            (None, Some(d)) => format!("name:name={d}:{name}"),
            (None, None) => format!("name::{name}"),
        },
    };
    if key.len() > MAX_KEY {
        let mut cut = MAX_KEY;
        while !key.is_char_boundary(cut) {
            cut -= 1;
        }
        key.truncate(cut);
    }
    key
}

impl LoginLimiter {
    pub fn new(settings: &RateLimitSection, clock: Clock) -> Self {
        if !settings.enabled {
            return LoginLimiter { inner: None };
        }
        let clock = LimiterClock(clock);
        LoginLimiter {
            inner: Some(Arc::new(Limiters {
                by_address: RateLimiter::dashmap_with_clock(
                    quota(settings.per_address_per_minute, settings.per_address_burst),
                    clock.clone(),
                ),
                by_user: RateLimiter::dashmap_with_clock(
                    quota(settings.per_user_per_minute, settings.per_user_burst),
                    clock.clone(),
                ),
                clock,
                checks: AtomicU64::new(0),
            })),
        }
    }

    /// One password attempt from `source` naming `user`: Ok, or which limit refused.
    /// The address bucket is checked first: a refused address costs no user bucket.
    pub fn check(&self, source: Option<IpAddr>, user: &UserRef) -> Result<(), Refusal> {
        let Some(l) = &self.inner else {
            return Ok(());
        };
        if l.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            l.by_address.retain_recent();
            l.by_user.retain_recent();
        }
        let refusal = |limit: &'static str, wait: Duration| Refusal {
            limit,
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        };
        if let Some(ip) = source {
            if let Err(not_until) = l.by_address.check_key(&ip) {
                let wait = not_until.wait_time_from(l.clock.now());
                return Err(refusal("per_address", wait));
            }
        }
        if let Err(not_until) = l.by_user.check_key(&user_key(user)) {
            let wait = not_until.wait_time_from(l.clock.now());
            return Err(refusal("per_user", wait));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_minute: u32, burst: u32) -> RateLimitSection {
        RateLimitSection {
            enabled: true,
            per_address_per_minute: per_minute,
            per_address_burst: burst,
            per_user_per_minute: 1000,
            per_user_burst: 1000,
        }
    }

    #[test]
    fn a_burst_then_the_refill_rate() {
        let clock = Clock::system();
        clock.freeze();
        let l = LoginLimiter::new(&settings(60, 3), clock.clone());
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let u = UserRef::Id("u".into());
        for _ in 0..3 {
            assert_eq!(l.check(Some(ip), &u), Ok(()));
        }
        let refused = l.check(Some(ip), &u).expect_err("refused");
        assert_eq!(refused.limit, "per_address");
        assert_eq!(refused.retry_after_secs, 1);
        // another address is not affected
        assert_eq!(l.check("192.0.2.2".parse().ok(), &u), Ok(()));
        clock.advance(1);
        assert_eq!(l.check(Some(ip), &u), Ok(()));
        assert!(l.check(Some(ip), &u).is_err());
    }

    #[test]
    fn long_user_names_are_cut_on_a_character_boundary() {
        let key = user_key(&UserRef::Name {
            name: "é".repeat(400),
            domain_id: Some("default".into()),
            domain_name: None,
        });
        assert!(key.len() <= MAX_KEY);
    }
}
