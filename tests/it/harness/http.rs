//! `lethe serve` for tests: the server started in-process on a free
//! loopback port (the same router and listener code as the command), API
//! tokens of each role, and a small HTTP client (hyper) that sends exactly
//! what a test says: any method, header and body, no retries.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use lethe::config::{Role, TokenSpec, token_sha256};
use lethe::{Config, Engine};

/// A `submit` token (the member-withdrawal flow).
pub const SUBMIT_TOKEN: &str = "lethe_test_submit_withdrawal_flow_0001";
/// A second `submit` token (the customer-support tool).
pub const SUPPORT_TOKEN: &str = "lethe_test_submit_support_tool_0002";
pub const OPERATE_TOKEN: &str = "lethe_test_operate_0003";
pub const AUDIT_TOKEN: &str = "lethe_test_audit_0004";

/// Adds the four test tokens to `[[server.token]]`.
pub fn with_tokens(config: &mut Config) {
    let tokens = [
        ("withdrawal-flow", Role::Submit, SUBMIT_TOKEN),
        ("support-tool", Role::Submit, SUPPORT_TOKEN),
        ("operator", Role::Operate, OPERATE_TOKEN),
        ("auditor", Role::Audit, AUDIT_TOKEN),
    ];
    config.server.tokens = tokens
        .into_iter()
        .map(|(name, role, token)| TokenSpec {
            name: name.to_owned(),
            role,
            sha256: token_sha256(token),
        })
        .collect();
}

/// A running server; stopped when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), lethe::Error>>>,
}

impl TestServer {
    pub async fn start(engine: Engine) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(lethe::server::serve(engine, listener, shutdown.clone()));
        TestServer {
            base,
            shutdown,
            task: Some(task),
        }
    }

    pub fn client(&self) -> Http {
        Http::new(&self.base)
    }

    /// Stops the server and waits for it to finish its requests.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().expect("started");
        task.await
            .expect("server task")
            .expect("server stops cleanly");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem's `code`, after checking the body is problem+json.
    pub fn problem_code(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{} {}",
            self.status,
            self.body
        );
        let problem = self.json();
        assert_eq!(problem["status"], self.status, "{}", self.body);
        problem["code"].as_str().expect("a code").to_owned()
    }
}

/// A plain HTTP/1.1 client for one server.
#[derive(Clone)]
pub struct Http {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new(base: &str) -> Http {
        Http {
            base: base.to_owned(),
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(10))
                .build_http(),
        }
    }

    /// Sends one request: `headers` as given, `body` as given.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("a request");
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .expect("the server answers within 30 s")
            .expect("an HTTP answer");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("the body")
            .to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// GET with a bearer token (or none).
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        self.send("GET", path, &headers, "").await
    }

    /// POST a JSON body with a bearer token (or none).
    pub async fn post(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = auth.as_deref() {
            headers.push(("authorization", auth));
        }
        self.send("POST", path, &headers, &body.to_string()).await
    }
}
