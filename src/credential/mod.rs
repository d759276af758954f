//! The credential store (Keystone's `credential_api`): `/v3/credentials` and the EC2
//! credentials under `/v3/users/{user_id}/credentials/OS-EC2`, every blob encrypted at
//! rest (`crypto`), plus the key repository's setup, rotation and migration.

pub mod crypto;
pub mod signature;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::{CredentialFilter, StoredCredential};
use crate::store::{Store, StoreError};
use crate::token::keys::{RotateOutcome, SetupOutcome};

pub use crypto::CredentialKeys;

/// A credential with its blob in the clear (never logged).
#[derive(Clone)]
pub struct Credential {
    pub id: String,
    pub user_id: String,
    pub project_id: Option<String>,
    pub cred_type: String,
    pub blob: String,
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("type", &self.cred_type)
            .finish_non_exhaustive()
    }
}

/// What `credential rotate` did, or why it refused.
#[derive(Debug)]
pub enum KeyRotation {
    Rotated(RotateOutcome),
    /// Rows encrypted with keys the rotation would purge (count): run `migrate`.
    Refused {
        rows: i64,
    },
}

/// What `credential migrate` did.
#[derive(Debug, Default)]
pub struct Migration {
    pub migrated: usize,
    pub already_primary: usize,
    /// Rows changed meanwhile (updated by someone else): left as they are.
    pub skipped: usize,
}

#[derive(Clone)]
pub struct CredentialService {
    store: Store,
    keys: CredentialKeys,
    user_limit: i64,
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find credential: {id}."))
}

/// The plaintext Keystone encrypts: for `ec2`, `json.dumps(blob)`.
fn to_plaintext(cred_type: &str, blob: &str) -> String {
    if cred_type == "ec2" {
        let mut out = String::new();
        crypto::py_json_string(blob, &mut out);
        out
    } else {
        blob.to_string()
    }
}

/// The blob as the API shows it: for `ec2`, `json.loads` of the plaintext (a legacy
/// object blob is shown serialised, as Keystone's `_blob_to_json`).
fn from_plaintext(cred_type: &str, plain: String) -> String {
    if cred_type != "ec2" {
        return plain;
    }
    match serde_json::from_str::<Value>(&plain) {
        Ok(Value::String(s)) => s,
        Ok(other) => crypto::py_json_dumps(&other),
        Err(_) => plain,
    }
}

impl CredentialService {
    pub fn new(store: Store, keys: CredentialKeys, user_limit: i64) -> Self {
        CredentialService {
            store,
            keys,
            user_limit,
        }
    }

    pub fn keys(&self) -> &CredentialKeys {
        &self.keys
    }

    fn decrypt(&self, keys: &[crypto::CredentialKey], row: StoredCredential) -> Result<Credential> {
        let plain = crypto::decrypt_with(keys, &row.encrypted_blob)?;
        Ok(Credential {
            blob: from_plaintext(&row.cred_type, plain),
            id: row.id,
            user_id: row.user_id,
            project_id: row.project_id,
            cred_type: row.cred_type,
            extra: row.extra,
        })
    }

    pub async fn find(&self, id: &str) -> Result<Option<Credential>> {
        match self.store.get_credential(id).await? {
            Some(row) => {
                let keys = self.keys.load()?;
                Ok(Some(self.decrypt(&keys, row)?))
            }
            None => Ok(None),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Credential> {
        self.find(id).await?.ok_or_else(|| not_found(id))
    }

    pub async fn list(&self, filter: &CredentialFilter) -> Result<Vec<Credential>> {
        let rows = self.store.list_credentials(filter).await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys.load()?;
        rows.into_iter().map(|r| self.decrypt(&keys, r)).collect()
    }

    pub async fn create(&self, c: Credential) -> Result<Credential> {
        let (encrypted_blob, key_hash) = self.keys.encrypt(&to_plaintext(&c.cred_type, &c.blob))?;
        let row = StoredCredential {
            id: c.id.clone(),
            user_id: c.user_id.clone(),
            project_id: c.project_id.clone(),
            cred_type: c.cred_type.clone(),
            encrypted_blob,
            key_hash,
            extra: c.extra.clone(),
        };
        let limit = (self.user_limit >= 0).then_some(self.user_limit);
        match self.store.insert_credential(&row, limit).await {
            Ok(true) => Ok(c),
            Ok(false) => Err(Error::ForbiddenAction(format!(
                "Unable to create additional credentials, maximum of {} already exceeded for user.",
                self.user_limit
            ))),
            Err(StoreError::Conflict { .. }) => Err(Error::Conflict {
                what: format!("credential - Duplicate entry found with ID {}.", c.id),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the blob (the only mutable attribute).
    pub async fn update_blob(&self, id: &str, blob: String) -> Result<Credential> {
        let mut current = self.get(id).await?;
        let (encrypted, hash) = self
            .keys
            .encrypt(&to_plaintext(&current.cred_type, &blob))?;
        if !self
            .store
            .update_credential_blob(id, &encrypted, &hash, None)
            .await?
        {
            return Err(not_found(id));
        }
        current.blob = blob;
        Ok(current)
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        if self.store.delete_credential(id).await? {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }

    /// `credential setup`: Keystone's `credential_setup`.
    pub fn setup_keys(&self) -> Result<SetupOutcome> {
        self.keys.repository().setup().map_err(Error::internal)
    }

    /// `credential rotate`: refuses while any row is encrypted with a key the
    /// rotation would purge (Keystone refuses unless every row is on the primary).
    pub async fn rotate_keys(&self) -> Result<KeyRotation> {
        let repo = self.keys.repository();
        let texts = repo.read_keys().map_err(Error::internal)?;
        // After rotation: the staged key (new primary), the highest max - 2 others, a
        // fresh staged key, and the null key Keystone always tries.
        let mut surviving = vec![crypto::key_hash(crypto::NULL_KEY)];
        if let Some(staged) = texts.iter().find(|t| t.index == 0) {
            surviving.push(crypto::key_hash(&staged.key));
        }
        let keep = repo.max_active_keys().saturating_sub(2);
        surviving.extend(
            texts
                .iter()
                .rev()
                .filter(|t| t.index != 0)
                .take(keep)
                .map(|t| crypto::key_hash(&t.key)),
        );
        let stranded: i64 = self
            .store
            .credential_key_hashes()
            .await?
            .into_iter()
            .filter(|(hash, _)| !surviving.contains(hash))
            .map(|(_, n)| n)
            .sum();
        if stranded > 0 {
            return Ok(KeyRotation::Refused { rows: stranded });
        }
        Ok(KeyRotation::Rotated(
            repo.rotate().map_err(Error::internal)?,
        ))
    }

    /// `credential migrate`: re-encrypts every row not on the primary key, each by a
    /// compare-and-set on its old `key_hash`.
    pub async fn migrate(&self) -> Result<Migration> {
        let keys = self.keys.load()?;
        let primary = keys[0].hash();
        let mut report = Migration::default();
        for row in self
            .store
            .list_credentials(&CredentialFilter::default())
            .await?
        {
            if row.key_hash == primary {
                report.already_primary += 1;
                continue;
            }
            let plain = crypto::decrypt_with(&keys, &row.encrypted_blob)?;
            let (encrypted, hash) = self.keys.encrypt(&plain)?;
            if self
                .store
                .update_credential_blob(&row.id, &encrypted, &hash, Some(&row.key_hash))
                .await?
            {
                report.migrated += 1;
            } else {
                report.skipped += 1;
            }
        }
        Ok(report)
    }
}
