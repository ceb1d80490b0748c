//! Writes fenced in their own statement: on PostgreSQL a claim, a phase's
//! start and a release are each one statement whose `WHERE` is the lease
//! (no `SELECT ... FOR UPDATE` first), on SQLite a fenced transaction. A
//! lease that has been taken over, or a request that has left the state the
//! lease expects, writes nothing (no checkpoint, no event) and gets the
//! fence's own error; the holder's writes land with its epoch. On both
//! backends.

use std::time::Duration;

use lethe::State;
use lethe::error::Error;
use lethe::store::Backend;
use lethe::store::requests::checkpoint;
use lethe::workflow::state::Phase;

use crate::app::TestApp;

async fn a_lease_taken_over_writes_nothing_and_is_told_so(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let loaded = app.load("member", 1, 2).await;
    let id = app.submit(&loaded.members[0].key).await;
    let store = app.store();

    // Worker a's lease runs out; worker b takes the request over.
    let a = store
        .claim("worker-a", Duration::from_millis(1))
        .await
        .unwrap()
        .expect("a claims the request");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = store
        .claim("worker-b", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("b takes the expired lease over");
    assert_eq!(b.lease.request_id, id);
    assert_eq!(b.took_over_from.as_deref(), Some("worker-a"));
    assert!(b.lease.epoch > a.lease.epoch);

    // a's start of a phase: fenced, and nothing of it written.
    let started = checkpoint::start_phase(
        store,
        &a.lease,
        State::Requested,
        Phase::FindingTargets,
        1,
        3,
    )
    .await;
    assert!(
        matches!(started, Err(Error::Fenced(fenced)) if fenced == id),
        "{started:?}"
    );
    // a's release leaves b's lease in place and records nothing.
    a.lease.release(store).await.unwrap();
    let record = app.engine.status(id).await.unwrap().record;
    assert_eq!(record.lease_owner.as_deref(), Some("worker-b"));
    assert_eq!(record.batch_total, None);

    // b, expecting a state the request is not in: told which, nothing written.
    let wrong = checkpoint::start_phase(
        store,
        &b.lease,
        State::TargetsFound,
        Phase::DeletingObjects,
        1,
        3,
    )
    .await;
    assert!(
        matches!(&wrong, Err(Error::StateChanged { id: changed, expected: State::TargetsFound, found })
            if *changed == id && found == "requested"),
        "{wrong:?}"
    );
    let record = app.engine.status(id).await.unwrap().record;
    assert_eq!(record.batch_total, None);
    assert!(record.s3_started_at.is_none(), "deletion never started");

    // b's own start and release land, under b's epoch.
    checkpoint::start_phase(
        store,
        &b.lease,
        State::Requested,
        Phase::FindingTargets,
        1,
        3,
    )
    .await
    .unwrap();
    assert_eq!(
        app.engine.status(id).await.unwrap().record.batch_total,
        Some(3)
    );
    b.lease.release(store).await.unwrap();
    assert_eq!(
        app.engine.status(id).await.unwrap().record.lease_owner,
        None
    );

    let events = app.events(id).await;
    let of = |epoch: i64| -> Vec<&str> {
        events
            .iter()
            .filter(|e| e.lease_epoch == Some(epoch))
            .map(|e| e.kind.as_str())
            .collect()
    };
    assert_eq!(of(a.lease.epoch), ["claimed"], "{events:?}");
    assert_eq!(
        of(b.lease.epoch),
        ["taken_over", "batch_started", "released"],
        "{events:?}"
    );
    let start = events
        .iter()
        .find(|e| e.kind == "batch_started")
        .expect("b's start");
    assert_eq!(start.worker.as_deref(), Some("worker-b"));
    assert_eq!(start.phase.as_deref(), Some("finding_targets"));
    assert_eq!(start.batch_no, Some(1));
    let taken = events.iter().find(|e| e.kind == "taken_over").unwrap();
    assert_eq!(taken.detail.as_deref(), Some("worker-a"));
}

/// Done releases the lease in its own commit. The worker's heartbeat may
/// still fire after it (the worker prunes old manifests after Done): its
/// renewal then finds the lease gone, and the lease says it finished the
/// request, so nothing is reported lost. A lease of another epoch, or one
/// whose request is still active, did not.
async fn a_lease_that_reached_done_was_released_by_it_not_lost(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let loaded = app.load("member", 1, 2).await;
    let id = app.submit(&loaded.members[0].key).await;
    let store = app.store();
    let claimed = store
        .claim("worker-a", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("a claims the request");
    let active = claimed.lease.clone();
    assert!(!active.finished(store).await, "still requested");

    active.release(store).await.unwrap();
    let summary = app.run_worker_once().await;
    assert_eq!(summary.done, 1, "{summary:?}");
    let events = app.events(id).await;
    let released = events.last().expect("events");
    assert_eq!(released.kind, "released", "{events:?}");
    let done_by = lethe::store::Lease {
        request_id: id,
        epoch: released.lease_epoch.unwrap(),
        owner: released.worker.clone().unwrap(),
        ttl: Duration::from_secs(60),
    };
    assert!(!done_by.renew(store).await.unwrap(), "Done released it");
    assert!(done_by.finished(store).await);
    assert!(
        !active.finished(store).await,
        "an earlier epoch did not finish it"
    );
}

on_both_backends!(
    a_lease_taken_over_writes_nothing_and_is_told_so,
    a_lease_that_reached_done_was_released_by_it_not_lost,
);
