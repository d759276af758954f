//! In-process read caches that are never wrong for longer than a revocation refresh.
//!
//! Every entry is tagged with the store's state generation read *before* the value
//! was loaded. Any committed write that could change an answer bumps the generation
//! (on this process at once, on others at their next poll), and an entry from an older
//! generation is a miss. A write that lands while a value is being loaded therefore
//! makes that value stale the moment it is inserted.

use crate::telemetry::metrics;
use std::borrow::Borrow;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

/// Counts writes that can change a validation's answer, so caches know when to drop.
/// Bumped locally after every such write, and in the `state_generation` row so other
/// servers notice on their next poll.
#[derive(Clone, Debug, Default)]
pub struct Generation {
    pub(crate) local: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub(crate) last_db_value: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Generation {
    pub fn current(&self) -> u64 {
        self.local.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn bump(&self) {
        self.local.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    #[cfg(test)]
    pub(crate) fn bump_for_test(&self) {
        self.bump();
    }
}

#[derive(Clone)]
pub struct GenerationCache<K, V> {
    entries: moka::sync::Cache<K, (u64, V)>,
    generation: Generation,
    /// `keystone_cache_requests_total` for this cache.
    counters: metrics::CacheCounters,
}

impl<K, V> std::fmt::Debug for GenerationCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerationCache").finish_non_exhaustive()
    }
}

impl<K, V> GenerationCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// `ttl` bounds how long an entry that no write touches can live (memory, and
    /// anything the generation cannot see, such as time).
    pub fn new(generation: Generation, capacity: u64, ttl: Duration) -> Self {
        GenerationCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            generation,
            counters: metrics::CacheCounters::noop(),
        }
    }

    /// Bounded by total weight (e.g. bytes) instead of entry count.
    pub fn weighted(
        generation: Generation,
        max_weight: u64,
        ttl: Duration,
        weigh: impl Fn(&K, &V) -> u32 + Send + Sync + 'static,
    ) -> Self {
        GenerationCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_weight)
                .weigher(move |k: &K, (_, v): &(u64, V)| weigh(k, v))
                .time_to_live(ttl)
                .build(),
            generation,
            counters: metrics::CacheCounters::noop(),
        }
    }

    /// Names the cache in the metrics.
    pub fn named(mut self, name: &'static str) -> Self {
        self.counters = metrics::CacheCounters::new(name);
        self
    }

    /// The generation to tag a value with: read it before loading the value.
    pub fn current_generation(&self) -> u64 {
        self.generation.current()
    }

    /// The cached value, if it was loaded at the current generation.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let current = self.generation.current();
        let found = match self.entries.get(key) {
            Some((loaded_at, value)) if loaded_at == current => Some(value),
            _ => None,
        };
        self.counters.record(found.is_some());
        found
    }

    /// Stores a value loaded at generation `loaded_at` (from [`Self::current_generation`]).
    pub fn insert(&self, key: K, loaded_at: u64, value: V) {
        self.entries.insert(key, (loaded_at, value));
    }

    /// The cached value, or `load()`'s, which is then cached. Errors are not cached.
    pub async fn get_or_load<E, Fut>(&self, key: K, load: impl FnOnce() -> Fut) -> Result<V, E>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        let generation = self.generation.current();
        if let Some((loaded_at, value)) = self.entries.get(&key) {
            if loaded_at == generation {
                self.counters.record(true);
                return Ok(value);
            }
        }
        self.counters.record(false);
        let value = load().await?;
        self.entries.insert(key, (generation, value.clone()));
        Ok(value)
    }
}

/// Through `cache` when caching is on, straight to `load()` when it is off.
pub async fn read_through<K, V, E, Fut>(
    cache: Option<&GenerationCache<K, V>>,
    key: K,
    load: impl FnOnce() -> Fut,
) -> Result<V, E>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<V, E>>,
{
    match cache {
        Some(cache) => cache.get_or_load(key, load).await,
        None => load().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_between_read_and_insert_leaves_the_entry_stale() {
        let generation = Generation::default();
        let cache: GenerationCache<String, u32> =
            GenerationCache::new(generation.clone(), 10, Duration::from_secs(60));
        let loaded_at = cache.current_generation();
        generation.bump_for_test();
        cache.insert("k".into(), loaded_at, 1);
        assert_eq!(cache.get("k"), None);
        cache.insert("k".into(), cache.current_generation(), 2);
        assert_eq!(cache.get("k"), Some(2));
    }

    #[test]
    fn a_weighted_cache_stays_within_its_weight() {
        let cache: GenerationCache<u32, Vec<u8>> = GenerationCache::weighted(
            Generation::default(),
            100,
            Duration::from_secs(60),
            |_, v: &Vec<u8>| v.len() as u32,
        );
        for k in 0..5 {
            cache.insert(k, cache.current_generation(), vec![0; 60]);
            cache.entries.run_pending_tasks();
        }
        assert!(cache.entries.weighted_size() <= 100);
        assert!(cache.entries.entry_count() <= 1);
    }

    #[tokio::test]
    async fn get_or_load_loads_once_per_generation_and_does_not_cache_errors() {
        let generation = Generation::default();
        let cache: GenerationCache<&'static str, u32> =
            GenerationCache::new(generation.clone(), 10, Duration::from_secs(60));
        let failed: Result<u32, &str> = cache.get_or_load("k", || async { Err("boom") }).await;
        assert_eq!(failed, Err("boom"));
        let first: Result<u32, ()> = cache.get_or_load("k", || async { Ok(1) }).await;
        let again: Result<u32, ()> = cache.get_or_load("k", || async { Ok(2) }).await;
        assert_eq!((first, again), (Ok(1), Ok(1)));
        generation.bump_for_test();
        let after_write: Result<u32, ()> = cache.get_or_load("k", || async { Ok(3) }).await;
        assert_eq!(after_write, Ok(3));
    }
}
