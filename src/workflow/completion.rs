//! The last step of DbMasked -> Done, once the read-back is clean: in one
//! transaction, the destruction record's counts are written (per table and
//! per bucket, each with its method), the request becomes Done, and the
//! member's raw key is replaced by its keyed hash. So a Done request always
//! has its record, and never keeps the raw key. Then, outside that
//! transaction, manifests whose retention has passed are pruned to counts,
//! and (at most every ten minutes per worker process) requests done before
//! lethe minimised get their keys hashed (best effort: `lethe prune` does
//! the same on demand).

use super::state::{Phase, State};
use super::{Context, Step};
use crate::error::Error;
use crate::store::events::EventKind;
use crate::store::requests::{self, checkpoint};
use crate::store::{Lease, events, record};

pub async fn finish(
    ctx: &Context,
    lease: &Lease,
    subject: &str,
    rows_verified: i64,
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
    record::finish_verification(
        &mut tx,
        lease.request_id,
        rows_verified,
        &names(checked),
        &names(unchecked),
    )
    .await?;
    record::write_counts(&mut tx, lease.request_id).await?;
    checkpoint::advance(&mut tx, lease, State::DbMasked, State::Done).await?;
    let minimised = minimiser
        .minimise(&mut tx, lease.request_id, subject)
        .await?;
    let detail = format!("{minimised} request row(s) now hold only the member's keyed hash");
    events::record(
        &mut tx,
        lease,
        EventKind::SubjectMinimised,
        Some(Phase::Verifying),
        None,
        Some(&detail),
    )
    .await?;
    tx.commit().await?;

    match minimiser.prune(&ctx.store).await {
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
