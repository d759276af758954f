//! argon2id password hashing off the async runtime.
//!
//! Hashing is deliberately slow and memory-hungry (OWASP: m=19 MiB, t=2, p=1), so it
//! runs on tokio's blocking pool behind a semaphore: logins queue up instead of
//! starving token validation or exhausting memory. An unknown user is verified
//! against a dummy hash so it costs exactly what a wrong password costs.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
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

impl PasswordHasher {
    pub fn new(max_concurrent: usize) -> Result<Self> {
        Self::with_params(max_concurrent, MEMORY_KIB, ITERATIONS)
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
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let password = password.to_owned();
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_blocking(&params, &password))
            .await
            .map_err(Error::internal)?
    }

    /// Verifies against `stored`, or against the dummy hash when there is no user
    /// or no password, so the caller's timing does not reveal which case it was.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let real = stored.is_some();
        let hash = stored
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy_hash.as_str().to_owned());
        let password = password.to_owned();
        let params = self.params.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let parsed = match PasswordHash::new(&hash) {
                Ok(p) => p,
                Err(_) => return false,
            };
            argon2(&params)
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .await
        .map_err(Error::internal)?;
        Ok(ok && real)
    }
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
