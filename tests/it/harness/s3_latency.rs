//! Modelled S3 latency for the test S3 server: a fixed cost per call, and a cost per key
//! for the calls whose work grows with their keys (the keys a DeleteObjects names, the
//! entries a listing returns). Off (zero) unless a benchmark or test turns it on, so the
//! integration suite runs at loopback speed.
//!
//! A loopback server answers in well under a millisecond, which hides what a round trip
//! costs on AWS, where an in-region call takes 10–30 ms. The cost is paid by sleeping on
//! the server's runtime (`tokio::time::sleep`), never by blocking a thread: calls in
//! flight at once wait at once, so a client that keeps several calls in flight gains on
//! this server as it would on AWS, and a client that waits for each answer pays for each.
//!
//! The server's own work is paid on top, on this machine's cores. For a DeleteObjects
//! that is one file removal per key, which s3s-fs does as one blocking-pool hop per key:
//! about 70 µs a key on an idle machine and several hundred on a busy one, more than the
//! modelled cost and varying with whatever else runs. [`Latency::set_batched_deletes`]
//! removes a call's files in one hop instead (off unless set), so that the modelled cost
//! is most of what a DeleteObjects costs, as on AWS, where S3's work is done on AWS's
//! machines. For the same reason [`Latency::set_indexed_listing`] answers a listing
//! from the prefix's directory instead of a walk of the whole bucket (`s3_listing`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The modelled cost of S3 calls, shared with the running server; a change takes effect
/// on the next call.
#[derive(Default)]
pub struct Latency {
    per_call_us: AtomicU64,
    per_key_us: AtomicU64,
    batched_deletes: AtomicBool,
    indexed_listing: AtomicBool,
}

impl Latency {
    /// Every call waits `per_call` before it is handled; a DeleteObjects waits
    /// `per_key` more per key it names, and a listing `per_key` more per entry it
    /// returns.
    pub fn set(&self, per_call: Duration, per_key: Duration) {
        self.per_call_us
            .store(per_call.as_micros() as u64, Ordering::SeqCst);
        self.per_key_us
            .store(per_key.as_micros() as u64, Ordering::SeqCst);
    }

    /// Back to loopback speed (batched deletes, if set, stay).
    pub fn off(&self) {
        self.set(Duration::ZERO, Duration::ZERO);
    }

    /// Whether a DeleteObjects removes its files in one blocking call (`true`) or one
    /// per key, as s3s-fs does (`false`, the default). Keys that are not plain relative
    /// paths (a trailing `/`, `.` or `..` segments) always go to s3s-fs.
    pub fn set_batched_deletes(&self, on: bool) {
        self.batched_deletes.store(on, Ordering::SeqCst);
    }

    pub(super) fn batched_deletes(&self) -> bool {
        self.batched_deletes.load(Ordering::SeqCst)
    }

    /// Whether a ListObjectsV2 walks only the directory its prefix names (`true`) or the
    /// whole bucket, as s3s-fs does (`false`, the default): see `s3_listing`.
    pub fn set_indexed_listing(&self, on: bool) {
        self.indexed_listing.store(on, Ordering::SeqCst);
    }

    pub(super) fn indexed_listing(&self) -> bool {
        self.indexed_listing.load(Ordering::SeqCst)
    }

    pub fn per_call(&self) -> Duration {
        Duration::from_micros(self.per_call_us.load(Ordering::SeqCst))
    }

    pub fn per_key(&self) -> Duration {
        Duration::from_micros(self.per_key_us.load(Ordering::SeqCst))
    }

    /// The fixed cost of one call (the HTTP layer pays it for every request).
    pub(super) async fn call(&self) {
        sleep(self.per_call()).await;
    }

    /// The cost of `keys` keys or listing entries.
    pub(super) async fn keys(&self, keys: usize) {
        sleep(self.per_key() * u32::try_from(keys).unwrap_or(u32::MAX)).await;
    }
}

async fn sleep(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}
