//! Revocation events in Keystone's model, matched from an in-memory index.
//!
//! Validation never scans the table: every event is filed under one of its own
//! non-null fields, and a token only looks in the buckets named by its own values,
//! so a check costs a handful of hash lookups however many events exist. The index
//! is refreshed incrementally from the database (so other server processes see a
//! revocation within `refresh_interval`), and right after local writes. If refreshes
//! keep failing for longer than `max_staleness`, checks fail closed (503) rather than
//! risk accepting a revoked token.
//!
//! Retention: an event is kept until no token it could revoke can still be accepted,
//! i.e. `revoked_at + expiration + allow_expired_window + expiration_buffer`.
//! (Python Keystone forgets after `expiration + expiration_buffer`, which lets a
//! revoked token come back through `allow_expired`.)

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::model::RevocationEventRow;
use crate::store::Store;

/// What a revocation check needs to know about a token (Keystone's `build_token_values`).
#[derive(Clone, Debug, Default)]
pub struct TokenValues {
    pub issued_at: i64,
    pub expires_at: i64,
    pub audit_id: Option<String>,
    /// The chain root (`parent_audit_id`), None for a token that was not rescoped.
    pub audit_chain_id: Option<String>,
    pub user_id: String,
    pub identity_domain_id: Option<String>,
    pub project_id: Option<String>,
    pub assignment_domain_id: Option<String>,
    pub roles: Vec<String>,
    pub trust_id: Option<String>,
    pub trustor_id: Option<String>,
    pub trustee_id: Option<String>,
    pub consumer_id: Option<String>,
}

/// A revocation event with Keystone's derived `domain_scope_id`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevokeEvent {
    pub row: RevocationEventRow,
    /// Set when the stored event has both domain_id and expires_at: it revokes
    /// domain-scoped tokens of that domain, not every token touching the domain.
    pub domain_scope_id: Option<String>,
}

impl RevokeEvent {
    fn from_row(mut row: RevocationEventRow) -> Self {
        let domain_scope_id = if row.domain_id.is_some() && row.expires_at.is_some() {
            row.domain_id.take()
        } else {
            None
        };
        RevokeEvent {
            row,
            domain_scope_id,
        }
    }

    /// Keystone's `matches()` plus its SQL pre-filter, on one event.
    pub fn matches(&self, t: &TokenValues) -> bool {
        let e = &self.row;
        if e.issued_before < t.issued_at {
            return false;
        }
        let eq = |ev: &Option<String>, tv: &Option<String>| match ev {
            None => true,
            Some(v) => tv.as_deref() == Some(v.as_str()),
        };
        if let Some(user) = &e.user_id {
            let candidates = [
                Some(&t.user_id),
                t.trustor_id.as_ref(),
                t.trustee_id.as_ref(),
            ];
            if !candidates.contains(&Some(user)) {
                return false;
            }
        }
        if !eq(&e.project_id, &t.project_id)
            || !eq(&e.audit_id, &t.audit_id)
            || !eq(&e.trust_id, &t.trust_id)
            || !eq(&e.consumer_id, &t.consumer_id)
            || !eq(&e.audit_chain_id, &t.audit_chain_id)
        {
            return false;
        }
        if let Some(domain) = &e.domain_id {
            let d = Some(domain);
            if t.identity_domain_id.as_ref() != d && t.assignment_domain_id.as_ref() != d {
                return false;
            }
        }
        if let Some(scope) = &self.domain_scope_id {
            if t.assignment_domain_id.as_ref() != Some(scope) {
                return false;
            }
        }
        if let Some(expires) = e.expires_at {
            if expires != t.expires_at {
                return false;
            }
        }
        if let Some(role) = &e.role_id {
            if !t.roles.iter().any(|r| r == role) {
                return false;
            }
        }
        true
    }
}

/// Which field an event is filed under: its most selective non-null one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Field {
    Audit,
    Chain,
    User,
    Project,
    Trust,
    Domain,
    Role,
    Consumer,
    /// Matches on time alone (e.g. "everything issued before X").
    Any,
}

/// A bucket: the field and a hash of its value. Keys hold no strings (less memory
/// per event, no allocation per lookup); a hash collision only puts an unrelated
/// event in front of `matches()`, which compares every field itself.
type Key = (Field, u64);

fn field_of(e: &RevokeEvent) -> (Field, Option<&str>) {
    let r = &e.row;
    let candidates = [
        (Field::Audit, r.audit_id.as_deref()),
        (Field::Chain, r.audit_chain_id.as_deref()),
        (Field::User, r.user_id.as_deref()),
        (Field::Project, r.project_id.as_deref()),
        (Field::Trust, r.trust_id.as_deref()),
        (
            Field::Domain,
            r.domain_id.as_deref().or(e.domain_scope_id.as_deref()),
        ),
        (Field::Role, r.role_id.as_deref()),
        (Field::Consumer, r.consumer_id.as_deref()),
    ];
    candidates
        .into_iter()
        .find(|(_, v)| v.is_some())
        .unwrap_or((Field::Any, None))
}

#[derive(Default)]
struct Index {
    buckets: HashMap<Key, Vec<Arc<RevokeEvent>>>,
    /// Hashes field values into keys (randomly seeded, like HashMap's own).
    hasher: std::collections::hash_map::RandomState,
    seen: HashSet<i64>,
    /// Highest event id loaded: the next refresh starts a little below it.
    high_water: i64,
    /// When the last refresh succeeded, on the monotonic clock (the injectable
    /// clock jumps in tests; staleness is about real elapsed time).
    last_refresh: Option<std::time::Instant>,
    len: usize,
}

impl Index {
    fn key(&self, field: Field, value: Option<&str>) -> Key {
        use std::hash::BuildHasher;
        (field, value.map_or(0, |v| self.hasher.hash_one(v)))
    }

    fn insert(&mut self, row: RevocationEventRow) {
        if !self.seen.insert(row.id) {
            return;
        }
        self.high_water = self.high_water.max(row.id);
        let event = Arc::new(RevokeEvent::from_row(row));
        let (field, value) = field_of(&event);
        let key = self.key(field, value);
        self.buckets.entry(key).or_default().push(event);
        self.len += 1;
    }

    fn is_revoked(&self, t: &TokenValues) -> bool {
        let matches_in = |field: Field, value: Option<&str>| {
            self.buckets
                .get(&self.key(field, value))
                .is_some_and(|events| events.iter().any(|e| e.matches(t)))
        };
        let single = [
            (Field::Audit, t.audit_id.as_deref()),
            (Field::Chain, t.audit_chain_id.as_deref()),
            (Field::User, Some(t.user_id.as_str())),
            (Field::User, t.trustor_id.as_deref()),
            (Field::User, t.trustee_id.as_deref()),
            (Field::Project, t.project_id.as_deref()),
            (Field::Trust, t.trust_id.as_deref()),
            (Field::Domain, t.identity_domain_id.as_deref()),
            (Field::Domain, t.assignment_domain_id.as_deref()),
            (Field::Consumer, t.consumer_id.as_deref()),
        ];
        single
            .into_iter()
            .any(|(field, value)| value.is_some() && matches_in(field, value))
            || t.roles.iter().any(|r| matches_in(Field::Role, Some(r)))
            || matches_in(Field::Any, None)
    }
}

/// How many ids below the highest one each incremental refresh re-reads: ids are
/// assigned at insert but become visible at commit, so a concurrent transaction can
/// commit a lower id after a higher one was read. The seen-set drops the repeats.
/// (Re-reading by time instead made a burst of 100k events cost seconds per refresh.)
const REFRESH_OVERLAP_IDS: i64 = 1024;

#[derive(Clone, Debug)]
pub struct RevokeSettings {
    pub refresh_interval: Duration,
    pub max_staleness: Duration,
    /// `expiration + allow_expired_window + expiration_buffer`.
    pub retention_secs: i64,
    pub prune_interval: Duration,
}

#[derive(Clone)]
pub struct RevokeService {
    store: Store,
    clock: Clock,
    settings: RevokeSettings,
    index: Arc<RwLock<Index>>,
}

impl std::fmt::Debug for RevokeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RevokeService {
    /// Loads every stored event; the server does not start without them.
    pub async fn load(store: Store, clock: Clock, settings: RevokeSettings) -> Result<Self> {
        let service = RevokeService {
            store,
            clock,
            settings,
            index: Arc::new(RwLock::new(Index::default())),
        };
        service.rebuild().await?;
        Ok(service)
    }

    /// Replaces the index with what the database holds now.
    async fn rebuild(&self) -> Result<()> {
        let rows = self.store.list_revocation_events_since(i64::MIN).await?;
        let mut fresh = Index::default();
        for row in rows {
            fresh.insert(row);
        }
        fresh.last_refresh = Some(std::time::Instant::now());
        *self.write_index()? = fresh;
        Ok(())
    }

    fn write_index(&self) -> Result<std::sync::RwLockWriteGuard<'_, Index>> {
        self.index
            .write()
            .map_err(|_| Error::internal(anyhow::anyhow!("revocation index lock poisoned")))
    }

    fn read_index(&self) -> Result<std::sync::RwLockReadGuard<'_, Index>> {
        self.index
            .read()
            .map_err(|_| Error::internal(anyhow::anyhow!("revocation index lock poisoned")))
    }

    /// Pulls events newer than the ones already loaded, and notices writes made by
    /// other servers (the shared state generation) so their caches drop here too.
    pub async fn refresh(&self) -> Result<()> {
        self.store.poll_generation().await?;
        let after = self.read_index()?.high_water - REFRESH_OVERLAP_IDS;
        let rows = self.store.list_revocation_events_after_id(after).await?;
        let mut index = self.write_index()?;
        for row in rows {
            index.insert(row);
        }
        index.last_refresh = Some(std::time::Instant::now());
        Ok(())
    }

    /// True if some event revokes the token. Errors (503) when the index is stale.
    pub fn is_revoked(&self, t: &TokenValues) -> Result<bool> {
        let index = self.read_index()?;
        self.fresh(&index)?;
        Ok(index.is_revoked(t))
    }

    /// Since the last successful refresh (None: never refreshed).
    pub fn age(&self) -> Option<std::time::Duration> {
        let index = self.read_index().ok()?;
        index.last_refresh.map(|t| t.elapsed())
    }

    /// Ok while the index is fresh enough to answer (what `/healthcheck` reports).
    pub fn check_fresh(&self) -> Result<()> {
        self.fresh(&*self.read_index()?)
    }

    fn fresh(&self, index: &Index) -> Result<()> {
        let age = index
            .last_refresh
            .map_or(std::time::Duration::MAX, |t| t.elapsed());
        if age > self.settings.max_staleness {
            return Err(Error::Unavailable {
                detail: format!(
                    "revocation list not refreshed for {} s (limit {} s)",
                    age.as_secs(),
                    self.settings.max_staleness.as_secs()
                ),
            });
        }
        Ok(())
    }

    /// Records events, then refreshes so this process honours them at once.
    pub async fn revoke(&self, mut events: Vec<RevocationEventRow>) -> Result<()> {
        let now = self.clock.now_secs();
        for e in &mut events {
            if e.revoked_at == 0 {
                e.revoked_at = now;
            }
            if e.issued_before == 0 {
                e.issued_before = e.revoked_at;
            }
        }
        self.store.insert_revocation_events(&events).await?;
        self.refresh().await
    }

    /// `DELETE /v3/auth/tokens`: the token with this audit id and, with `cascade`
    /// (Keystone 30's default), every token rescoped from it (its audit chain).
    pub async fn revoke_token(&self, audit_id: &str, cascade: bool) -> Result<()> {
        let mut events = vec![RevocationEventRow {
            audit_id: Some(audit_id.to_string()),
            ..Default::default()
        }];
        if cascade {
            events.push(RevocationEventRow {
                audit_chain_id: Some(audit_id.to_string()),
                ..Default::default()
            });
        }
        self.revoke(events).await
    }

    /// Convenience for the common "everything this user holds" event.
    pub async fn revoke_user(&self, user_id: &str) -> Result<()> {
        self.revoke(vec![RevocationEventRow {
            user_id: Some(user_id.to_string()),
            ..Default::default()
        }])
        .await
    }

    /// A stamped "everything this user holds" event for a caller that stores it in
    /// its own transaction; call [`RevokeService::refresh`] after the commit.
    pub fn user_event(&self, user_id: &str) -> RevocationEventRow {
        self.now_event(RevocationEventRow {
            user_id: Some(user_id.to_string()),
            ..Default::default()
        })
    }

    /// Every token issued through the OAuth1 consumer (its deletion), for a caller
    /// that stores it in its own transaction.
    pub fn consumer_event(&self, consumer_id: &str) -> RevocationEventRow {
        self.now_event(RevocationEventRow {
            consumer_id: Some(consumer_id.to_string()),
            ..Default::default()
        })
    }

    /// `e`, revoked now, covering every token issued until now.
    fn now_event(&self, e: RevocationEventRow) -> RevocationEventRow {
        let now = self.clock.now_secs();
        RevocationEventRow {
            revoked_at: now,
            issued_before: now,
            ..e
        }
    }

    pub async fn revoke_project(&self, project_id: &str) -> Result<()> {
        self.revoke(vec![RevocationEventRow {
            project_id: Some(project_id.to_string()),
            ..Default::default()
        }])
        .await
    }

    pub async fn revoke_domain(&self, domain_id: &str) -> Result<()> {
        self.revoke(vec![RevocationEventRow {
            domain_id: Some(domain_id.to_string()),
            ..Default::default()
        }])
        .await
    }

    /// Events for the OS-REVOKE API, oldest first.
    pub async fn list_since(&self, since: Option<i64>) -> Result<Vec<RevokeEvent>> {
        // Keystone's `since` is exclusive.
        let rows = self
            .store
            .list_revocation_events_since(since.map_or(i64::MIN, |s| s + 1))
            .await?;
        Ok(rows.into_iter().map(RevokeEvent::from_row).collect())
    }

    /// Deletes events that can no longer revoke any acceptable token, then reloads.
    pub async fn prune(&self) -> Result<u64> {
        let cutoff = self.clock.now_secs() - self.settings.retention_secs;
        let removed = self.store.prune_revocation_events(cutoff).await?;
        if removed > 0 {
            self.rebuild().await?;
        }
        Ok(removed)
    }

    pub fn len(&self) -> usize {
        self.read_index().map(|i| i.len).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Background upkeep: incremental refresh every `refresh_interval`, prune every
    /// `prune_interval`. Runs until the process exits.
    pub fn spawn_upkeep(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut refresh = tokio::time::interval(service.settings.refresh_interval);
            refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut prune = tokio::time::interval(service.settings.prune_interval);
            prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = refresh.tick() => {
                        if let Err(e) = service.refresh().await {
                            tracing::warn!(error = %format!("{e:#}"), "revocation refresh failed");
                        }
                    }
                    _ = prune.tick() => {
                        match service.prune().await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(removed = n, "pruned revocation events"),
                            Err(e) => tracing::warn!(error = %format!("{e:#}"), "revocation prune failed"),
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite_service(max_staleness: Duration) -> (RevokeService, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::connect(
            &crate::config::DatabaseUrl::Sqlite {
                path: dir.path().join("k.db"),
            },
            2,
            Duration::from_secs(5),
        )
        .await
        .expect("store");
        store.migrate().await.expect("migrate");
        let service = RevokeService::load(
            store,
            Clock::system(),
            RevokeSettings {
                refresh_interval: Duration::from_secs(1),
                max_staleness,
                retention_secs: 100,
                prune_interval: Duration::from_secs(60),
            },
        )
        .await
        .expect("load");
        (service, dir)
    }

    #[tokio::test]
    async fn a_stale_index_fails_closed() {
        let (service, _dir) = sqlite_service(Duration::from_millis(50)).await;
        assert!(!service.is_revoked(&token()).expect("fresh index answers"));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(matches!(
            service.is_revoked(&token()),
            Err(Error::Unavailable { .. })
        ));
        service.refresh().await.expect("refresh");
        assert!(service.is_revoked(&token()).is_ok(), "a refresh heals it");
    }

    #[tokio::test]
    async fn revoke_is_visible_at_once_and_prune_keeps_recent_events() {
        let (service, _dir) = sqlite_service(Duration::from_secs(30)).await;
        let mut t = token();
        t.issued_at = service.clock.now_secs();
        service.revoke_user("u1").await.expect("revoke");
        assert!(service.is_revoked(&t).expect("check"));
        assert_eq!(service.len(), 1);
        assert_eq!(service.prune().await.expect("prune"), 0, "within retention");
        service.clock.advance(101);
        assert_eq!(service.prune().await.expect("prune"), 1);
        assert!(service.is_empty(), "pruning rebuilds the index");
    }

    fn token() -> TokenValues {
        TokenValues {
            issued_at: 1000,
            expires_at: 4600,
            audit_id: Some("A".into()),
            audit_chain_id: None,
            user_id: "u1".into(),
            identity_domain_id: Some("default".into()),
            project_id: Some("p1".into()),
            assignment_domain_id: Some("default".into()),
            roles: vec!["r-member".into(), "r-reader".into()],
            ..Default::default()
        }
    }

    fn event(f: impl FnOnce(&mut RevocationEventRow)) -> RevocationEventRow {
        let mut row = RevocationEventRow {
            id: 1,
            issued_before: 1000,
            revoked_at: 1000,
            ..Default::default()
        };
        f(&mut row);
        row
    }

    fn revoked_by(row: RevocationEventRow, t: &TokenValues) -> bool {
        let mut index = Index::default();
        index.insert(row);
        index.is_revoked(t)
    }

    #[test]
    fn same_second_is_revoked_next_second_is_not() {
        let e = event(|e| e.user_id = Some("u1".into()));
        assert!(revoked_by(e.clone(), &token()));
        let later = TokenValues {
            issued_at: 1001,
            ..token()
        };
        assert!(!revoked_by(e, &later));
    }

    #[test]
    fn each_field_narrows_the_match() {
        let t = token();
        assert!(revoked_by(event(|e| e.audit_id = Some("A".into())), &t));
        assert!(!revoked_by(event(|e| e.audit_id = Some("B".into())), &t));
        assert!(revoked_by(event(|e| e.project_id = Some("p1".into())), &t));
        assert!(!revoked_by(event(|e| e.project_id = Some("p2".into())), &t));
        assert!(revoked_by(
            event(|e| e.role_id = Some("r-reader".into())),
            &t
        ));
        assert!(!revoked_by(
            event(|e| e.role_id = Some("r-admin".into())),
            &t
        ));
        assert!(revoked_by(
            event(|e| e.domain_id = Some("default".into())),
            &t
        ));
        assert!(!revoked_by(
            event(|e| e.domain_id = Some("other".into())),
            &t
        ));
        // user AND project must both hold
        assert!(!revoked_by(
            event(|e| {
                e.user_id = Some("u1".into());
                e.project_id = Some("p2".into());
            }),
            &t
        ));
        // a time-only event revokes everything issued before it
        assert!(revoked_by(event(|_| {}), &t));
    }

    #[test]
    fn audit_chain_matches_rescoped_tokens_only() {
        let chain = event(|e| e.audit_chain_id = Some("ROOT".into()));
        let rescoped = TokenValues {
            audit_id: Some("B".into()),
            audit_chain_id: Some("ROOT".into()),
            ..token()
        };
        assert!(revoked_by(chain.clone(), &rescoped));
        assert!(!revoked_by(chain, &token()));
    }

    #[test]
    fn domain_with_expiry_is_a_domain_scope_event() {
        let e = event(|e| {
            e.domain_id = Some("d9".into());
            e.expires_at = Some(4600);
        });
        let domain_scoped = TokenValues {
            project_id: None,
            assignment_domain_id: Some("d9".into()),
            ..token()
        };
        assert!(revoked_by(e.clone(), &domain_scoped));
        // user in d9 but scoped elsewhere: a domain-scope event does not apply
        let user_in_d9 = TokenValues {
            identity_domain_id: Some("d9".into()),
            ..token()
        };
        assert!(!revoked_by(e, &user_in_d9));
    }

    #[test]
    fn trustor_and_trustee_are_users_too() {
        let e = event(|e| e.user_id = Some("trustor".into()));
        let trust_token = TokenValues {
            trustor_id: Some("trustor".into()),
            trust_id: Some("t".into()),
            ..token()
        };
        assert!(revoked_by(e, &trust_token));
    }

    #[test]
    fn a_bucket_collision_never_revokes_an_unrelated_token() {
        let t = token();
        let mut index = Index::default();
        // File another user's event under this token's user key, as a hash
        // collision would: matches() must still compare the value itself.
        let key = index.key(Field::User, Some(&t.user_id));
        let other = RevokeEvent::from_row(event(|e| e.user_id = Some("someone-else".into())));
        index.buckets.entry(key).or_default().push(Arc::new(other));
        assert!(!index.is_revoked(&t));
        index.insert(event(|e| e.user_id = Some(t.user_id.clone())));
        assert!(index.is_revoked(&t));
    }

    #[test]
    fn duplicate_ids_are_indexed_once() {
        let mut index = Index::default();
        index.insert(event(|e| e.user_id = Some("u1".into())));
        index.insert(event(|e| e.user_id = Some("u1".into())));
        assert_eq!(index.len, 1);
    }
}
