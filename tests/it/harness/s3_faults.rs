//! The test S3 server's fault switches: what to fail, how, and how often. They take
//! effect on the next request; `S3Access::check` (s3_backend.rs) and the HTTP layer
//! (s3.rs, for dropped connections) consult them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

/// Fault switches shared with the running server; they take effect on the next request.
#[derive(Default)]
pub struct Faults {
    state: Mutex<FaultState>,
    injected: AtomicU64,
}

#[derive(Default)]
struct FaultState {
    rules: Vec<OpRule>,
    slow_down_every: u64,
    seen: u64,
    delete_key_errors: BTreeMap<String, String>,
    pretend_deletes: std::collections::BTreeSet<String>,
    /// `op` requests fail where the cycle says `true`, in order, round and round.
    cycles: Vec<(String, S3ErrorCode, http::StatusCode, Vec<bool>, usize)>,
    /// `(op, every)`: of the distinct keys `op` is asked about, every `every`-th
    /// fails the first time it is asked, with 503 SlowDown.
    once_per_key: Option<(String, u64, u64, std::collections::BTreeSet<String>)>,
    /// `(op, code, status)`: fail the SDK's first attempt of every such call.
    first_attempts: Vec<(String, S3ErrorCode, http::StatusCode)>,
    random: Option<RandomFaults>,
    deny_missing_keys: bool,
    stray_delete_errors: Vec<StrayDeleteError>,
}

/// Faults drawn at random, from a seed, on a share of all requests.
struct RandomFaults {
    /// Out of 1,000,000.
    per_million: u64,
    rng: SplitMix64,
    drawn: RandomCounts,
}

/// What random fault injection did, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RandomCounts {
    pub requests: u64,
    pub slow_down: u64,
    pub internal_error: u64,
    pub dropped_before: u64,
    pub dropped_after: u64,
}

impl RandomCounts {
    pub fn faults(&self) -> u64 {
        self.slow_down + self.internal_error + self.dropped_before + self.dropped_after
    }
}

/// A fault decided for one HTTP request, before it reaches s3s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    SlowDown,
    InternalError,
    /// The connection is closed without an answer, before the request is
    /// handled.
    DropBefore,
    /// The request is handled (a delete happens), then the connection is
    /// closed without an answer.
    DropAfter,
}

/// A DeleteObjects error entry, with this S3 error code, that names no key
/// the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrayDeleteError {
    /// An `<Error>` entry with no `<Key>`.
    WithoutKey(&'static str),
    /// An entry naming the first key sent with a combining accent appended
    /// (as a server that normalises Unicode might), so it is not
    /// byte-identical to any key sent.
    AlteredKey(&'static str),
}

/// A small seeded generator (SplitMix64), so a failing run can be replayed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

struct OpRule {
    op: String,
    code: S3ErrorCode,
    status: http::StatusCode,
    /// `None`: until cleared.
    remaining: Option<u64>,
}

impl Faults {
    /// Fails every `op` request (operation name as in the S3 API, e.g. "DeleteObjects")
    /// with error `code` (e.g. "AccessDenied") and HTTP `status` until [`Faults::clear`].
    pub fn fail_op(&self, op: &str, code: &str, status: u16) {
        self.add_rule(op, code, status, None);
    }

    /// Like [`Faults::fail_op`] but only for the next `times` matching requests.
    pub fn fail_op_times(&self, op: &str, code: &str, status: u16, times: u64) {
        self.add_rule(op, code, status, Some(times));
    }

    /// Answers every `n`-th request (of any kind) with 503 SlowDown; 0 turns it off.
    pub fn slow_down_every(&self, n: u64) {
        let mut state = self.lock();
        state.slow_down_every = n;
        state.seen = 0;
    }

    /// Makes DeleteObjects report a per-key error `code` for exactly `key` (HTTP 200
    /// with an `<Error>` entry, the object left in place), as S3 does on partial failure.
    pub fn fail_delete_of_key(&self, key: &str, code: &str) {
        self.lock()
            .delete_key_errors
            .insert(key.to_owned(), code.to_owned());
    }

    /// Makes DeleteObjects report `key` as deleted while leaving the object in place:
    /// a server whose delete response is not proof.
    pub fn pretend_delete_of_key(&self, key: &str) {
        self.lock().pretend_deletes.insert(key.to_owned());
    }

    /// Fails `op` requests by a repeating pattern: the n-th request fails when
    /// `pattern[n % len]` is true (e.g. `[false, true, true]`: one succeeds, two fail).
    pub fn fail_op_cycle(&self, op: &str, code: &str, status: u16, pattern: &[bool]) {
        let status = http::StatusCode::from_u16(status)
            .unwrap_or_else(|e| panic!("bad HTTP status {status}: {e}"));
        let code = code
            .parse::<S3ErrorCode>()
            .unwrap_or_else(|never| match never {});
        self.lock()
            .cycles
            .push((op.to_owned(), code, status, pattern.to_vec(), 0));
    }

    /// Of the distinct keys `op` requests name, fails every `every`-th the first time
    /// (503 SlowDown); asked again, it succeeds. Deterministic whatever the
    /// concurrency: a call sent again after its failure is not failed again.
    pub fn fail_first_request_of_every_nth_key(&self, op: &str, every: u64) {
        self.lock().once_per_key = Some((op.to_owned(), every, 0, Default::default()));
    }

    /// Fails the first attempt (the SDK's `amz-sdk-request: attempt=1`) of every `op`
    /// call with `code` and `status`; retries of the call succeed.
    pub fn fail_first_attempts(&self, op: &str, code: &str, status: u16) {
        let status = http::StatusCode::from_u16(status)
            .unwrap_or_else(|e| panic!("bad HTTP status {status}: {e}"));
        let code = code
            .parse::<S3ErrorCode>()
            .unwrap_or_else(|never| match never {});
        self.lock()
            .first_attempts
            .push((op.to_owned(), code, status));
    }

    /// Fails `percent` of all requests at random, drawn from `seed`: equally often
    /// 503 SlowDown, 500 InternalError, a connection closed before the request is
    /// handled, and one closed after it was handled (the answer is lost).
    pub fn random(&self, percent: f64, seed: u64) {
        self.lock().random = Some(RandomFaults {
            per_million: (percent * 10_000.0).round() as u64,
            rng: SplitMix64(seed),
            drawn: RandomCounts::default(),
        });
    }

    /// What random injection has done so far.
    pub fn random_counts(&self) -> RandomCounts {
        self.lock()
            .random
            .as_ref()
            .map(|r| r.drawn)
            .unwrap_or_default()
    }

    /// Answers HeadObject and GetObject on a missing key with 403 AccessDenied, as AWS
    /// does when the caller lacks `s3:ListBucket`.
    pub fn deny_missing_keys(&self) {
        self.lock().deny_missing_keys = true;
    }

    /// Adds an error entry of this kind to every DeleteObjects answer (the keys sent are
    /// still deleted).
    pub fn stray_delete_error(&self, kind: StrayDeleteError) {
        self.lock().stray_delete_errors.push(kind);
    }

    /// Decides, once per HTTP request, whether random injection fails it.
    pub(super) fn draw(&self) -> Option<Injected> {
        let mut state = self.lock();
        let random = state.random.as_mut()?;
        random.drawn.requests += 1;
        let roll = random.rng.next();
        if roll % 1_000_000 >= random.per_million {
            return None;
        }
        self.injected.fetch_add(1, Ordering::SeqCst);
        let kind = match (roll / 1_000_000) % 4 {
            0 => {
                random.drawn.slow_down += 1;
                Injected::SlowDown
            }
            1 => {
                random.drawn.internal_error += 1;
                Injected::InternalError
            }
            2 => {
                random.drawn.dropped_before += 1;
                Injected::DropBefore
            }
            _ => {
                random.drawn.dropped_after += 1;
                Injected::DropAfter
            }
        };
        Some(kind)
    }

    pub(super) fn denies_missing_keys(&self) -> bool {
        self.lock().deny_missing_keys
    }

    pub(super) fn stray_delete_errors(&self) -> Vec<StrayDeleteError> {
        self.lock().stray_delete_errors.clone()
    }

    /// Counts a fault injected elsewhere (a crafted answer).
    pub(super) fn count_injected(&self) {
        self.injected.fetch_add(1, Ordering::SeqCst);
    }

    /// Removes every fault.
    pub fn clear(&self) {
        *self.lock() = FaultState::default();
    }

    /// How many faults have been injected so far (requests failed plus per-key errors).
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    fn add_rule(&self, op: &str, code: &str, status: u16, remaining: Option<u64>) {
        let status = http::StatusCode::from_u16(status)
            .unwrap_or_else(|e| panic!("bad HTTP status {status}: {e}"));
        let code = code
            .parse::<S3ErrorCode>()
            .unwrap_or_else(|never| match never {});
        self.lock().rules.push(OpRule {
            op: op.to_owned(),
            code,
            status,
            remaining,
        });
    }

    /// Decides whether this request fails, consuming one use of a counted rule.
    pub(super) fn on_request(
        &self,
        op: &str,
        first_attempt: bool,
        key: Option<&str>,
    ) -> S3Result<()> {
        let mut state = self.lock();
        state.seen += 1;
        if let (Some((rule_op, every, distinct, seen_keys)), Some(key)) =
            (state.once_per_key.as_mut(), key)
            && rule_op == op
            && seen_keys.insert(key.to_owned())
        {
            *distinct += 1;
            if (*distinct).is_multiple_of(*every) {
                self.injected.fetch_add(1, Ordering::SeqCst);
                return Err(s3_error!(SlowDown, "injected by the lethe test harness"));
            }
        }
        if let Some((_, code, status, pattern, seen)) =
            state.cycles.iter_mut().find(|(o, ..)| o == op)
        {
            let fail = pattern[*seen % pattern.len()];
            *seen += 1;
            if fail {
                self.injected.fetch_add(1, Ordering::SeqCst);
                let mut err =
                    S3Error::with_message(code.clone(), "injected by the lethe test harness");
                err.set_status_code(*status);
                return Err(err);
            }
        }
        if first_attempt
            && let Some((_, code, status)) = state.first_attempts.iter().find(|(o, ..)| o == op)
        {
            self.injected.fetch_add(1, Ordering::SeqCst);
            let mut err = S3Error::with_message(code.clone(), "injected by the lethe test harness");
            err.set_status_code(*status);
            return Err(err);
        }
        if state.slow_down_every > 0 && state.seen.is_multiple_of(state.slow_down_every) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(s3_error!(SlowDown, "injected by the lethe test harness"));
        }
        let rule = state
            .rules
            .iter_mut()
            .find(|rule| rule.op == op && rule.remaining != Some(0));
        let Some(rule) = rule else { return Ok(()) };
        if let Some(remaining) = rule.remaining.as_mut() {
            *remaining -= 1;
        }
        self.injected.fetch_add(1, Ordering::SeqCst);
        let mut err =
            S3Error::with_message(rule.code.clone(), "injected by the lethe test harness");
        err.set_status_code(rule.status);
        Err(err)
    }

    pub(super) fn pretends_to_delete(&self, key: &str) -> bool {
        let pretend = self.lock().pretend_deletes.contains(key);
        if pretend {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        pretend
    }

    pub(super) fn delete_key_error(&self, key: &str) -> Option<String> {
        let code = self.lock().delete_key_errors.get(key).cloned();
        if code.is_some() {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        code
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.state.lock().expect("fault lock is never poisoned")
    }
}
