//! The last step of DbMasked -> Done, once the read-back is clean: in one
//! transaction, the destruction record's counts are written (per table and
//! per bucket, each with its method), the request becomes Done, and the
//! member's raw key is replaced by its keyed hash. So a Done request always
//! has its record, and never keeps the raw key. Then, outside that
//! transaction, manifests whose retention has passed are pruned to counts
//! (at most every ten seconds per worker process, unless a backlog is
//! being worked off), and (at most every ten minutes) requests done before
//! lethe minimised get their keys hashed (best effort: `lethe prune` does
//! the same on demand).

use super::state::State;
use super::{Context, Step};
use crate::error::Error;
use crate::store::Lease;
use crate::store::record::{self, MemberLock};
use crate::store::requests;
use crate::store::requests::checkpoint::{self, Verified};

/// `batch` is the step's number: its `batch_started` is recorded in this
/// commit, first.
pub async fn finish(
    ctx: &Context,
    lease: &Lease,
    subject: &str,
    rows_verified: i64,
    batch: i32,
) -> Result<Step, Error> {
    // Only the dry run builds a context without one, and it never gets here.
    let minimiser = ctx.minimiser.as_deref().ok_or_else(|| {
        Error::Misconfigured("finishing a request needs minimisation.subject_hash_secret".into())
    })?;
    let mut tx = ctx.store.begin().await?;
    // The member's lock before the request row's (the fence): the order the
    // insert trigger takes them in. The other order deadlocks with a
    // duplicate submission arriving now.
    requests::lock_subject(&mut tx, subject).await?;
    lease.fence(&mut tx, State::DbMasked).await?;
    let (checked, unchecked): (Vec<_>, Vec<_>) = ctx
        .plan
        .clients
        .iter()
        .partition(|client| client.erases_subject);
    let names = |clients: Vec<&crate::catalog::plan::ClientPlan>| -> Vec<String> {
        clients.into_iter().map(|c| c.table.clone()).collect()
    };
    record::write_counts(&mut tx, lease.request_id).await?;
    let minimised = minimiser
        .minimise(&mut tx, lease.request_id, subject, MemberLock::Held)
        .await?;
    let detail = format!("{minimised} request row(s) now hold only the member's keyed hash");
    let verified = Verified {
        batch,
        rows: rows_verified,
        checked_tables: names(checked),
        unchecked_tables: names(unchecked),
    };
    checkpoint::finish_done(&mut tx, lease, &verified, &detail).await?;
    tx.commit().await?;

    match minimiser.prune_if_due(&ctx.store).await {
        Ok(pruned) if !pruned.is_empty() => {
            tracing::info!(
                requests = pruned.len(),
                "pruned manifests past their retention to counts"
            )
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(
            "pruning manifests past their retention: {err}; `lethe prune` or the next Done retries"
        ),
    }
    if let Err(err) = minimiser.backfill_if_due(&ctx.store).await {
        tracing::warn!(
            "hashing the keys of requests done before minimisation: {err}; `lethe prune` retries"
        );
    }
    Ok(Step::Advanced(State::Done))
}
