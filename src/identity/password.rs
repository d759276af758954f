//! argon2id password hashing off the async runtime.
//!
//! Hashing is deliberately slow and memory-hungry (OWASP: m=19 MiB, t=2, p=1), so it
//! runs on tokio's blocking pool behind a semaphore: logins queue up instead of
//! exhausting memory. The blocking threads that hash run at a lower CPU priority
//! (`[server] hash_nice`), so the kernel gives a core to request handling the moment
//! it has work: hashing may use every core without ever starving token validation.
//! Hashing is the only user of the blocking pool. An unknown user is verified
//! against a dummy hash so it costs exactly what a wrong password costs.

use std::sync::Arc;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// OWASP's argon2id recommendation.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    dummy_hash: Arc<String>,
    params: Params,
    /// Nice value for the threads that hash (0: leave them alone).
    nice: i32,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

/// glibc raises its mmap threshold after a large block is freed, so the next 19 MiB
/// argon2 blocks come from malloc arenas and are never returned to the system: RSS
/// climbs to gigabytes under steady logins. A fixed threshold keeps every hash's
/// memory in its own mapping, released as soon as the hash is done.
pub fn pin_malloc_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD: libc::c_int = 1024 * 1024;
        // SAFETY: mallopt only adjusts allocator tuning; it is called before hashing starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

thread_local! {
    /// The nice value this blocking thread was lowered to, if any. Raising priority
    /// back needs privileges, so a thread is lowered once and stays lowered.
    static LOWERED_TO: std::cell::Cell<Option<i32>> = const { std::cell::Cell::new(None) };
}

/// Lowers the calling thread's CPU priority to `nice` (Linux: the nice value is per
/// thread). Failure only costs fairness, so it is ignored.
fn lower_this_thread(nice: i32) {
    if nice <= 0 || LOWERED_TO.get() == Some(nice) {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority on the calling thread (who = 0) has no memory effects.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, nice);
        }
    }
    LOWERED_TO.set(Some(nice));
}

impl PasswordHasher {
    pub fn new(max_concurrent: usize) -> Result<Self> {
        Self::with_params(max_concurrent, MEMORY_KIB, ITERATIONS)
    }

    /// Runs hashes at nice value `nice` (`[server] hash_nice`; 0 leaves priority alone).
    pub fn with_nice(mut self, nice: i32) -> Self {
        self.nice = nice.clamp(0, 19);
        self
    }

    /// Runs `work` on the blocking pool, at most `max_concurrent` at a time, at low priority.
    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let waiting = std::time::Instant::now();
        crate::telemetry::metrics::hash_queue(1.0);
        let permit = self.permits.acquire().await;
        crate::telemetry::metrics::hash_queue(-1.0);
        crate::telemetry::metrics::hash_wait(waiting.elapsed());
        let _permit = permit.map_err(Error::internal)?;
        let nice = self.nice;
        tokio::task::spawn_blocking(move || {
            lower_this_thread(nice);
            work()
        })
        .await
        .map_err(Error::internal)
    }

    /// Cheaper parameters exist only so unit tests stay fast; the server uses `new`.
    pub fn with_params(max_concurrent: usize, memory_kib: u32, iterations: u32) -> Result<Self> {
        pin_malloc_mmap_threshold();
        let params = Params::new(memory_kib, iterations, PARALLELISM, None)
            .map_err(|e| Error::internal(anyhow::anyhow!("argon2 parameters: {e}")))?;
        let dummy = hash_blocking(&params, "keystone-rs dummy password for unknown users")?;
        Ok(PasswordHasher {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: Arc::new(dummy),
            params,
            nice: 0,
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        let params = self.params.clone();
        self.run_blocking(move || hash_blocking(&params, &password))
            .await?
    }

    /// Verifies against `stored`, or against the dummy hash when there is no user
    /// or no password, so the caller's timing does not reveal which case it was.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool> {
        let real = stored.is_some();
        let hash = stored
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy_hash.as_str().to_owned());
        let password = password.to_owned();
        let default_blocks = self.params.block_count();
        let ok = self
            .run_blocking(move || verify_blocking(default_blocks, password.as_bytes(), &hash))
            .await?;
        Ok(ok && real)
    }
}

thread_local! {
    /// argon2's working memory, kept by each hashing thread between verifications.
    /// With the pinned mmap threshold a fresh 19 MiB block is a new mapping whose
    /// pages the kernel faults in and zeroes on every hash: reusing it makes a
    /// verification about 40% cheaper. It is freed when the blocking thread exits.
    static SCRATCH: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `Argon2::verify_password`, with this thread's reused working memory: the
/// algorithm, version, parameters and salt come from the stored PHC string, and the
/// result is compared in constant time. Anything unparsable is a mismatch.
fn verify_blocking(default_blocks: usize, password: &[u8], stored: &str) -> bool {
    // A hash imported from Python Keystone (bcrypt, scrypt, pbkdf2).
    if super::legacy_hash::is_legacy(stored) {
        return super::legacy_hash::verify(password, stored);
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut computed = vec![0u8; expected.len()];
    let hashed = SCRATCH.with_borrow_mut(|memory| {
        memory.resize(params.block_count(), Block::default());
        let hashed = Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt, &mut computed, &mut memory[..])
            .is_ok();
        // An old hash with more memory than today's parameters: do not keep it.
        if memory.len() > default_blocks {
            *memory = Vec::new();
        }
        hashed
    });
    // Output's equality is constant-time.
    hashed && Output::new(&computed).is_ok_and(|computed| computed == expected)
}

fn hash_blocking(params: &Params, password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(anyhow::anyhow!("hashing a password: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_reads_everything_from_the_stored_phc_string() {
        use argon2::password_hash::PasswordHasher as _;
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        // Other algorithms and parameters than today's, as an older hash could have.
        for (algorithm, m, t) in [
            (Algorithm::Argon2id, 1024, 1),
            (Algorithm::Argon2i, 2048, 3),
            (Algorithm::Argon2d, 512, 2),
        ] {
            let params = Params::new(m, t, 1, None).expect("params");
            let stored = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"s3cret", &salt)
                .expect("hash")
                .to_string();
            assert!(verify_blocking(1024, b"s3cret", &stored), "{stored}");
            assert!(!verify_blocking(1024, b"s3cret!", &stored), "{stored}");
            SCRATCH.with_borrow(|memory| assert!(memory.len() <= 1024));
        }
        let stored = Argon2::default()
            .hash_password(b"pw", &salt)
            .expect("hash")
            .to_string();
        assert!(verify_blocking(19 * 1024, b"pw", &stored));
        for broken in [
            "",
            "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA",
            "$bcrypt$x",
            &stored[..stored.len() - 4],
        ] {
            assert!(!verify_blocking(1024, b"pw", broken), "{broken}");
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_the_configured_nice_value() {
        let h = PasswordHasher::with_params(1, 1024, 1)
            .expect("hasher")
            .with_nice(19);
        // SAFETY: getpriority on the calling thread reads its nice value only.
        let read_nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let before = read_nice();
        let on_pool = h.run_blocking(read_nice).await.expect("run");
        assert_eq!(on_pool, 19);
        assert_eq!(
            read_nice(),
            before,
            "the runtime's own threads keep their priority"
        );
        let hashed = h.hash("pw").await.expect("hash");
        assert!(h.verify("pw", Some(&hashed)).await.expect("verify"));
    }

    #[tokio::test]
    async fn verify_accepts_right_and_rejects_wrong_and_missing() {
        let h = PasswordHasher::with_params(2, 1024, 1).expect("hasher");
        let stored = h.hash("correct horse").await.expect("hash");
        assert!(stored.starts_with("$argon2id$"));
        assert!(h
            .verify("correct horse", Some(&stored))
            .await
            .expect("verify"));
        assert!(!h.verify("wrong", Some(&stored)).await.expect("verify"));
        // The dummy hash never authenticates, even with its own password.
        assert!(!h
            .verify("keystone-rs dummy password for unknown users", None)
            .await
            .expect("verify"));
        assert!(!h
            .verify("x", Some("not a phc string"))
            .await
            .expect("verify"));
    }

    #[test]
    fn production_parameters_are_owasp() {
        let h = PasswordHasher::new(1).expect("hasher");
        assert_eq!(h.params.m_cost(), 19 * 1024);
        assert_eq!(h.params.t_cost(), 2);
        assert_eq!(h.params.p_cost(), 1);
    }
}
