//! The load test of `lethe serve`, on both backends: 1,000 submissions over
//! HTTP from 50 concurrent clients, some sent twice (after the answer, and
//! two at once), each with an idempotency key: none lost, none duplicated,
//! every key one request, and the database holding exactly one request per
//! member. Latencies are printed; `benches/http_load.rs` measures them.

use std::collections::BTreeSet;

use crate::app::TestApp;
use crate::harness::http::{SUBMIT_TOKEN, TestServer, with_tokens};
use crate::harness::http_load::submit_over_http;
use lethe::ListFilter;
use lethe::store::Backend;

const SUBMISSIONS: usize = 1_000;
const CLIENTS: usize = 50;

async fn a_thousand_submissions_from_fifty_clients_are_each_kept_once(backend: Backend) {
    let app = TestApp::start_on_with(backend, with_tokens).await;
    let server = TestServer::start(app.engine.clone()).await;
    let report = submit_over_http(&server.base, SUBMIT_TOKEN, SUBMISSIONS, CLIENTS, "load").await;
    eprintln!("{backend:?}: {}", report.describe());
    report.assert_none_lost_none_duplicated();
    assert!(
        report.sent > SUBMISSIONS,
        "some submissions were sent twice"
    );

    let stored = app
        .engine
        .list(&ListFilter {
            limit: Some(10 * SUBMISSIONS as i64),
            submitted_by: Some("withdrawal-flow".into()),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        SUBMISSIONS,
        "one row per submission, repeats folded"
    );
    let keys: BTreeSet<_> = stored
        .iter()
        .filter_map(|r| r.idempotency_key.clone())
        .collect();
    assert_eq!(keys.len(), SUBMISSIONS);
    let ids: BTreeSet<String> = stored.iter().map(|r| r.id.to_string()).collect();
    let answered: BTreeSet<String> = report.answers.values().map(|ids| ids[0].clone()).collect();
    assert_eq!(
        ids, answered,
        "every answered id is a stored request, and the reverse"
    );
    assert!(
        stored.iter().all(|r| r.coalesced_into.is_none()),
        "distinct members never fold"
    );
    server.stop().await;
}

on_both_backends!(a_thousand_submissions_from_fifty_clients_are_each_kept_once);
