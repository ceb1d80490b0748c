//! A request's checkpoint writes, each under its lease's fence: a phase's
//! start (its own fenced statement or transaction), and inside a batch's
//! transaction, after [`Lease::fence`], the batch's commit and an advance.

use super::*;

/// Counter increments a batch contributes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub rows_found: i64,
    pub objects_found: i64,
    pub objects_retained: i64,
    pub objects_deleted: i64,
    /// Tagged for expiry (tag-and-expire buckets).
    pub objects_scheduled: i64,
    /// Retained because S3 refused them for good.
    pub objects_locked: i64,
    pub rows_masked: i64,
    pub anomalies: i32,
    /// Objects read back, and survivors found, by verification.
    pub objects_verified: i64,
    pub survivors_found: i64,
}

/// What a batch adds to the request's counters, as SQL assignments on
/// parameters `$3` to `$12` (bound by [`bind_progress`], both backends).
macro_rules! progress_increments {
    () => {
        "rows_found = rows_found + $3, objects_found = objects_found + $4, \
         objects_retained = objects_retained + $5, objects_deleted = objects_deleted + $6, \
         rows_masked = rows_masked + $7, anomaly_count = anomaly_count + $8, \
         objects_scheduled = objects_scheduled + $9, objects_locked = objects_locked + $10, \
         objects_verified = objects_verified + $11, survivors_found = survivors_found + $12"
    };
}
pub(crate) use progress_increments;

/// Binds a batch's [`Progress`] as [`progress_increments`]'
/// `$3` to `$12`, after `$1` and `$2`.
macro_rules! bind_progress {
    ($query:expr, $progress:expr) => {{
        let progress = $progress;
        $query
            .bind(progress.rows_found)
            .bind(progress.objects_found)
            .bind(progress.objects_retained)
            .bind(progress.objects_deleted)
            .bind(progress.rows_masked)
            .bind(progress.anomalies)
            .bind(progress.objects_scheduled)
            .bind(progress.objects_locked)
            .bind(progress.objects_verified)
            .bind(progress.survivors_found)
    }};
}
pub(crate) use bind_progress;

/// The event a batch's commit appends (`batch_committed`, or the second
/// sweep's).
#[derive(Debug, Clone, Copy)]
pub struct CommitEvent<'a> {
    pub kind: EventKind,
    pub phase: Phase,
    pub batch: Option<i32>,
    /// Counts, never keys.
    pub detail: &'a str,
}

/// Records one completed batch: cursor, batch count, counters, a reset
/// of the consecutive-failure count, and its event (on PostgreSQL in
/// the same statement). Returns the counters as they
/// now stand (the worker's progress report, without a read of its own).
pub async fn batch_done(
    tx: &mut Tx,
    lease: &Lease,
    cursor: &serde_json::Value,
    progress: Progress,
    event: CommitEvent<'_>,
) -> Result<Counters, Error> {
    let id = lease.request_id;
    let counters = match tx.conn() {
        Backed::Postgres(conn) => {
            let end = postgres::requests::BatchEnd::GoesOn(cursor);
            return postgres::requests::batch_done(conn, lease, end, progress, event).await;
        }
        Backed::Sqlite(conn) => sqlite::requests::batch_done(conn, id, cursor, progress).await?,
    };
    events::record(
        tx,
        lease,
        event.kind,
        Some(event.phase),
        event.batch,
        Some(event.detail),
    )
    .await?;
    Ok(counters)
}

/// Records a phase's last batch and moves to the next milestone: what
/// [`batch_done`] and [`advance`] write, on PostgreSQL in one statement.
/// Returns the counters and the milestone reached.
pub async fn last_batch_done(
    tx: &mut Tx,
    lease: &Lease,
    progress: Progress,
    event: CommitEvent<'_>,
    from: State,
) -> Result<(Counters, State), Error> {
    let to = from
        .next()
        .ok_or_else(|| Error::Invariant(format!("state {from} has no next milestone")))?;
    from.check_transition(to)?;
    if let Backed::Postgres(conn) = tx.conn() {
        let stamp = milestone_column(to)?;
        let end = postgres::requests::BatchEnd::Advances { from, to, stamp };
        let counters = postgres::requests::batch_done(conn, lease, end, progress, event).await?;
        return Ok((counters, to));
    }
    let counters = batch_done(tx, lease, &serde_json::Value::Null, progress, event).await?;
    advance(tx, lease, from, to).await?;
    Ok((counters, to))
}

/// Verification's last figures, written at Done.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    /// The step that finishes: its `batch_started` is recorded with Done.
    pub batch: i32,
    /// Manifest rows read back.
    pub rows: i64,
    /// Client tables checked for the member's key, and those that could
    /// not be (their erasure keeps the key).
    pub checked_tables: Vec<String>,
    pub unchecked_tables: Vec<String>,
}

/// Done: verification's last figures, the finishing step's
/// `batch_started`, the move from DbMasked, its `advanced` event and the
/// `subject_minimised` event (`minimised`, its detail) after it, then the
/// lease's release and its `released` event (a
/// Done request needs no holder, and its worker writes nothing after this
/// commit); on PostgreSQL one statement. The caller has fenced the
/// transaction and minimised the member's key in it.
pub async fn finish_done(
    tx: &mut Tx,
    lease: &Lease,
    verified: &Verified,
    minimised: &str,
) -> Result<(), Error> {
    State::DbMasked.check_transition(State::Done)?;
    if let Backed::Postgres(conn) = tx.conn() {
        return postgres::requests::finish_done(conn, lease, verified, minimised).await;
    }
    events::record(
        tx,
        lease,
        EventKind::BatchStarted,
        Some(Phase::Verifying),
        Some(verified.batch),
        None,
    )
    .await?;
    crate::store::record::finish_verification(
        tx,
        lease.request_id,
        verified.rows,
        &verified.checked_tables,
        &verified.unchecked_tables,
    )
    .await?;
    advance(tx, lease, State::DbMasked, State::Done).await?;
    events::record(
        tx,
        lease,
        EventKind::SubjectMinimised,
        Some(Phase::Verifying),
        None,
        Some(minimised),
    )
    .await?;
    match tx.conn() {
        // Fenced above, so the lease is this worker's to release.
        Backed::Sqlite(conn) => {
            sqlite::lease::release(conn, lease).await?;
        }
        Backed::Postgres(_) => {
            return Err(Error::Invariant(
                "a PostgreSQL Done is one statement (postgres::requests::finish_done)".into(),
            ));
        }
    }
    events::record(tx, lease, EventKind::Released, None, None, None).await
}

/// Starts a phase with its first batch, committed together under the
/// lease's fence: the phase's batch total (starting deletion also stamps
/// `s3_started_at`, the point after which the request can no longer be
/// cancelled) and the batch's `batch_started` event. On PostgreSQL one
/// statement whose `WHERE` is the fence; on SQLite a fenced transaction.
pub async fn start_phase(
    store: &Store,
    lease: &Lease,
    state: State,
    phase: Phase,
    batch: i32,
    total: i32,
) -> Result<(), Error> {
    let (id, s3) = (lease.request_id, state == State::TargetsFound);
    if let Backed::Postgres(pool) = store.db() {
        let start = postgres::requests::PhaseStart {
            state,
            phase,
            batch,
            total,
            s3_starts: s3,
        };
        if postgres::requests::start_phase(pool, lease, start).await? {
            return Ok(());
        }
        // Nothing was written: the fence says why.
        return Err(lease.why_fenced(store, state).await);
    }
    let mut tx = store.begin().await?;
    lease.fence(&mut tx, state).await?;
    match tx.conn() {
        Backed::Sqlite(conn) => sqlite::requests::phase_started(conn, id, total, s3).await?,
        Backed::Postgres(_) => {
            return Err(Error::Invariant(
                "a PostgreSQL phase start is one statement (postgres::requests::start_phase)"
                    .into(),
            ));
        }
    }
    events::record(
        &mut tx,
        lease,
        EventKind::BatchStarted,
        Some(phase),
        Some(batch),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Moves to the next milestone and resets the phase checkpoint. Reaching
/// S3Cleared stamps `s3_started_at` if deletion had nothing to start
/// (a member without objects): past it, no request can be cancelled.
pub async fn advance(tx: &mut Tx, lease: &Lease, from: State, to: State) -> Result<(), Error> {
    from.check_transition(to)?;
    let stamp = milestone_column(to)?;
    let id = lease.request_id;
    match tx.conn() {
        // The update and its `advanced` event in one statement.
        Backed::Postgres(conn) => {
            return postgres::requests::advance(conn, lease, from, to, stamp).await;
        }
        Backed::Sqlite(conn) => sqlite::requests::advance(conn, id, to, stamp).await?,
    }
    events::record(
        tx,
        lease,
        EventKind::Advanced,
        from.phase(),
        None,
        Some(to.as_str()),
    )
    .await?;
    Ok(())
}

/// The column that stamps when a request reached a milestone.
fn milestone_column(to: State) -> Result<&'static str, Error> {
    Ok(match to {
        State::TargetsFound => "targets_found_at",
        State::S3Cleared => "s3_cleared_at",
        State::DbMasked => "db_masked_at",
        State::Done => "finished_at",
        other => {
            return Err(Error::Invariant(format!(
                "advance to {other} is not a milestone"
            )));
        }
    })
}
