//! Minimisation after Done: lethe's own tables stop holding what they no
//! longer need.
//!
//! - The member's raw key is replaced by a keyed hash, HMAC-SHA256 with a
//!   secret from the configuration (never stored in the database), in the
//!   transaction that makes the request Done — for that request and every
//!   finished row of the same member (coalesced duplicates, cancelled
//!   requests). The hash is stable, so a later submission for the same
//!   member is still matched to their earlier erasures (`status --subject`);
//!   without the secret it cannot be reversed by trying likely keys.
//! - The per-object and per-row manifest (object keys embed member ids) is
//!   pruned to counts `manifest_retention_days` after Done; the destruction
//!   record is built from counts written at Done, so it survives pruning.
//!
//! Active requests keep the raw key: a worker needs it to find the member's
//! rows, and coalescing matches duplicates on it.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::config::MinimisationSettings;
use crate::error::Error;
use crate::store::record::MemberLock;
use crate::store::{Store, Tx, record};

/// Prefix of stored hashes: the algorithm, so that a later change of
/// scheme is recognisable.
const HASH_SCHEME: &str = "hmac-sha256:";

/// Requests pruned per call, so a long backlog is worked off in slices.
const PRUNE_SLICE: i64 = 100;

/// Keyed hashes of subject keys.
#[derive(Clone)]
pub struct SubjectHasher {
    key: Vec<u8>,
}

impl SubjectHasher {
    pub fn new(secret: &str) -> SubjectHasher {
        SubjectHasher {
            key: secret.as_bytes().to_vec(),
        }
    }

    /// `hmac-sha256:<64 hex digits>`.
    pub fn hash(&self, subject: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(subject.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(HASH_SCHEME.len() + 64);
        out.push_str(HASH_SCHEME);
        for byte in digest.iter() {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }
}

impl fmt::Debug for SubjectHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectHasher(<redacted>)")
    }
}

/// How often a worker looks for done requests that kept a raw key (left by
/// a lethe that did not minimise yet): at its first Done, then at most this
/// often, instead of after every Done.
const BACKFILL_EVERY: Duration = Duration::from_secs(600);

/// How often a worker looks for manifests past their retention: at its
/// first Done, then at most this often while a look finds less than a
/// slice (retention is counted in days; a backlog is worked off a slice a
/// Done).
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// The hasher and the retention, as a worker uses them.
#[derive(Debug, Clone)]
pub struct Minimiser {
    pub hasher: SubjectHasher,
    pub retention_days: u32,
    /// When this process last backfilled (shared by its clones).
    last_backfill: Arc<Mutex<Option<Instant>>>,
    /// When this process last pruned (shared by its clones); None when the
    /// last look found a full slice.
    last_prune: Arc<Mutex<Option<Instant>>>,
}

/// Whether a periodic job last run at `*last` is due again after `every`;
/// if so, it counts as run now.
fn due(last: &Mutex<Option<Instant>>, every: Duration) -> bool {
    let mut last = last.lock().expect("never poisoned");
    if last.is_some_and(|at| at.elapsed() < every) {
        return false;
    }
    *last = Some(Instant::now());
    true
}

impl Minimiser {
    /// Needs the secret: a worker that could not minimise must not start.
    pub fn from_settings(settings: &MinimisationSettings) -> Result<Minimiser, Error> {
        let secret = settings.subject_hash_secret.as_deref().ok_or_else(|| {
            Error::Misconfigured(
                "no subject hash secret: set LETHE_SUBJECT_HASH_SECRET (or minimisation.subject_hash_secret \
                 in lethe.toml) to a long random value, e.g. `openssl rand -hex 32`, and keep it: when an \
                 erasure is done lethe replaces the member's key by its keyed hash"
                    .into(),
            )
        })?;
        Ok(Minimiser {
            hasher: SubjectHasher::new(secret),
            retention_days: settings.manifest_retention_days,
            last_backfill: Arc::default(),
            last_prune: Arc::default(),
        })
    }

    /// Replaces the raw subject key by its hash on the request (just made
    /// Done, in the caller's transaction) and on every finished request of
    /// the same member. Returns how many rows changed.
    pub async fn minimise(
        &self,
        tx: &mut Tx,
        request_id: Uuid,
        subject: &str,
        lock: MemberLock,
    ) -> Result<u64, Error> {
        record::replace_subject(tx, request_id, subject, &self.hasher.hash(subject), lock).await
    }

    /// Prunes the manifests whose retention has passed, a slice at a time;
    /// returns the requests pruned.
    pub async fn prune(&self, store: &Store) -> Result<Vec<Uuid>, Error> {
        prune(store, self.retention_days).await
    }

    /// [`Minimiser::prune`] when this process has not looked for
    /// [`PRUNE_EVERY`], or its last look left more to prune; what a worker
    /// calls after each Done.
    pub async fn prune_if_due(&self, store: &Store) -> Result<Vec<Uuid>, Error> {
        if !due(&self.last_prune, PRUNE_EVERY) {
            return Ok(Vec::new());
        }
        let pruned = self.prune(store).await?;
        if pruned.len() as i64 >= PRUNE_SLICE {
            *self.last_prune.lock().expect("never poisoned") = None;
        }
        Ok(pruned)
    }

    /// [`Minimiser::backfill`] when this process has not run it for
    /// [`BACKFILL_EVERY`]; what a worker calls after each Done.
    pub async fn backfill_if_due(&self, store: &Store) -> Result<u64, Error> {
        if !due(&self.last_backfill, BACKFILL_EVERY) {
            return Ok(0);
        }
        self.backfill(store).await
    }

    /// Minimises done requests that still hold a raw key (finished by a
    /// lethe that did not yet minimise), a slice at a time; returns how
    /// many request rows changed.
    pub async fn backfill(&self, store: &Store) -> Result<u64, Error> {
        let mut changed = 0;
        for (id, subject) in record::unminimised(store, PRUNE_SLICE).await? {
            let mut tx = store.begin().await?;
            changed += self
                .minimise(&mut tx, id, &subject, MemberLock::Take)
                .await?;
            tx.commit().await?;
        }
        Ok(changed)
    }
}

/// Prunes manifests of requests done more than `retention_days` ago, up to
/// a slice of them, each in its own transaction.
pub async fn prune(store: &Store, retention_days: u32) -> Result<Vec<Uuid>, Error> {
    let due = record::due_for_pruning(store, retention_days, PRUNE_SLICE).await?;
    let mut pruned = Vec::new();
    for id in due {
        let mut tx = store.begin().await?;
        if record::prune_manifest(&mut tx, id).await? {
            pruned.push(id);
        }
        tx.commit().await?;
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_stable_and_say_their_scheme() {
        let a = SubjectHasher::new("0123456789abcdef-secret");
        let b = SubjectHasher::new("another-secret-0123456789");
        let hash = a.hash("member-00002");
        assert!(hash.starts_with("hmac-sha256:"));
        assert_eq!(hash.len(), "hmac-sha256:".len() + 64);
        assert_eq!(hash, a.hash("member-00002"));
        assert_ne!(hash, a.hash("member-00003"));
        assert_ne!(hash, b.hash("member-00002"));
        assert!(!hash.contains("member"));
        assert_eq!(format!("{a:?}"), "SubjectHasher(<redacted>)");
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_test_case_2() {
        let hasher = SubjectHasher::new("Jefe");
        assert_eq!(
            hasher.hash("what do ya want for nothing?"),
            "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
