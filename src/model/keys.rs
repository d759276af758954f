//! Fernet keys kept in the database, the state of that key set, and the replicas
//! reading it. The key material here is always encrypted under the key-encryption key.

/// One key as stored: Keystone's index (0 staged, the highest the primary) and the
/// key encrypted with the key-encryption key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub idx: u64,
    pub material: String,
    pub created_at: i64,
    /// When it stopped being the primary; 0 while staged or primary.
    pub retired_at: i64,
}

impl std::fmt::Debug for StoredKey {
    // The material is encrypted, but it still never goes to a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("idx", &self.idx)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// The key set's version (bumped by every change) and its last rotation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySetState {
    pub version: i64,
    pub rotated_at: i64,
    pub rotated_by: String,
}

/// A running server reading the key set, as it last reported itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub id: String,
    pub host: String,
    pub loaded_version: i64,
    pub started_at: i64,
    pub last_seen: i64,
    /// Holds the rotation lock.
    pub leading: bool,
}

/// Keystone's rotation (`fernet_utils.rotate_keys`) on a set of indexes: the staged
/// key `0` becomes primary `max + 1`, a new staged key is made, and the lowest indexes
/// go until `max_active_keys` remain. Returns (new primary, removed indexes).
pub fn rotation_plan(indexes: &[u64], max_active_keys: usize) -> (u64, Vec<u64>) {
    let new_primary = indexes.iter().copied().max().unwrap_or(0) + 1;
    let mut kept: Vec<u64> = indexes
        .iter()
        .copied()
        .filter(|i| *i != 0)
        .chain(std::iter::once(new_primary))
        .collect();
    kept.sort_unstable_by(|a, b| b.cmp(a));
    let mut removed = Vec::new();
    while kept.len() > max_active_keys.saturating_sub(1) {
        if let Some(lowest) = kept.pop() {
            removed.push(lowest);
        }
    }
    (new_primary, removed)
}

#[cfg(test)]
mod tests {
    use super::rotation_plan;

    #[test]
    fn rotation_plan_is_keystones() {
        // {0,1} with max 3: 0 -> 2, nothing purged: {0,1,2}.
        assert_eq!(rotation_plan(&[0, 1], 3), (2, vec![]));
        // {0,1,2} with max 3: 0 -> 3, 1 purged: {0,2,3} (SPEC 1.4).
        assert_eq!(rotation_plan(&[0, 1, 2], 3), (3, vec![1]));
        // Shrinking max_active_keys purges several, lowest first.
        assert_eq!(rotation_plan(&[0, 3, 4, 5], 2), (6, vec![3, 4, 5]));
    }
}
