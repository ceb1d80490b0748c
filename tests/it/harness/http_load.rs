//! The HTTP load: `submissions` erasures submitted over HTTP by `clients`
//! concurrent clients (sharing a pool of keep-alive connections), every submission with
//! an idempotency key. Some are sent twice, as a client that lost the answer
//! would: every tenth again after its answer, every twenty-fifth twice at
//! once. The report has every answer's latency and which request each key
//! got, so a caller can check that none was lost and none duplicated.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;

use super::http::Http;

/// What the load did.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub submissions: usize,
    pub clients: usize,
    /// HTTP requests sent (more than `submissions`: the repeats).
    pub sent: usize,
    pub elapsed: Duration,
    /// Every answer's latency, sorted.
    pub latencies: Vec<Duration>,
    /// Idempotency key -> every request id answered for it.
    pub answers: BTreeMap<String, Vec<String>>,
    /// Answers that were not 202, with their bodies.
    pub failures: Vec<String>,
}

impl LoadReport {
    /// The latency at quantile `q` (0.5, 0.99, ...).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index =
            ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[index - 1]
    }

    /// Submissions per second.
    pub fn rate(&self) -> f64 {
        self.submissions as f64 / self.elapsed.as_secs_f64()
    }

    /// Every submission answered 202, each key with one request id however
    /// often it was sent, and no two keys with the same id.
    pub fn assert_none_lost_none_duplicated(&self) {
        assert!(self.failures.is_empty(), "refused: {:#?}", self.failures);
        assert_eq!(
            self.answers.len(),
            self.submissions,
            "a submission got no answer"
        );
        let mut ids = std::collections::BTreeSet::new();
        for (key, answered) in &self.answers {
            assert!(
                answered.windows(2).all(|pair| pair[0] == pair[1]),
                "{key} was answered with different requests: {answered:?}"
            );
            assert!(
                ids.insert(answered[0].clone()),
                "two keys share request {}",
                answered[0]
            );
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} submissions ({} HTTP requests) from {} clients in {:.2} s ({:.0}/s); latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.submissions,
            self.sent,
            self.clients,
            self.elapsed.as_secs_f64(),
            self.rate(),
            ms(self.quantile(0.5)),
            ms(self.quantile(0.95)),
            ms(self.quantile(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
        )
    }
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One submission's answers: for each time it was sent, how long the answer
/// took and the request id (or why there was none).
pub type Answers = Vec<(Duration, Result<String, String>)>;

/// Runs `submit(n)` for every n below `submissions`, from `clients`
/// concurrent clients (client c takes c, c + clients, ...), and reports every
/// answer under the submission's idempotency key.
pub async fn drive<F, Fut>(submissions: usize, clients: usize, submit: F) -> LoadReport
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (String, Answers)> + Send,
{
    let report = Arc::new(Mutex::new(LoadReport {
        submissions,
        clients,
        ..LoadReport::default()
    }));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let report = report.clone();
        let submit = submit.clone();
        tasks.push(tokio::spawn(async move {
            for n in (client..submissions).step_by(clients) {
                let (key, answers) = submit(n).await;
                let mut report = report.lock().await;
                for (latency, answer) in answers {
                    report.sent += 1;
                    report.latencies.push(latency);
                    match answer {
                        Ok(id) => report.answers.entry(key.clone()).or_default().push(id),
                        Err(why) => report.failures.push(format!("{key}: {why}")),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a load client");
    }
    let mut report = Arc::try_unwrap(report).expect("clients done").into_inner();
    report.elapsed = started.elapsed();
    report.latencies.sort();
    report
}

/// Submits `submissions` members `<prefix>-<n>` over HTTP from `clients`
/// concurrent clients.
pub async fn submit_over_http(
    base: &str,
    token: &str,
    submissions: usize,
    clients: usize,
    prefix: &str,
) -> LoadReport {
    let http = Http::new(base);
    let (token, prefix) = (Arc::<str>::from(token), Arc::<str>::from(prefix));
    drive(submissions, clients, move |n| {
        // One connection pool: with `clients` requests in flight it keeps
        // about as many keep-alive connections.
        let http = http.clone();
        let (token, prefix) = (token.clone(), prefix.clone());
        async move {
            let key = format!("{prefix}-key-{n:06}");
            let body = json!({
                "subject_key": format!("{prefix}-{n:06}"),
                "idempotency_key": key,
                "external_ref": format!("LOAD-{n}"),
            });
            let send = || async {
                let sent = Instant::now();
                let reply = http.post("/v1/erasures", Some(&token), &body).await;
                let answer = if reply.status == 202 {
                    Ok(reply.json()["id"].as_str().unwrap_or_default().to_owned())
                } else {
                    Err(format!("{} {}", reply.status, reply.body))
                };
                (sent.elapsed(), answer)
            };
            let mut answers = Vec::new();
            if n % 25 == 0 {
                let (a, b) = tokio::join!(send(), send());
                answers.extend([a, b]);
            } else {
                answers.push(send().await);
            }
            if n % 10 == 0 {
                answers.push(send().await);
            }
            (key, answers)
        }
    })
    .await
}
