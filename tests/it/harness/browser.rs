//! A real browser for the pages' tests: headless Chromium (Debian's
//! `chromium` package, or `LETHE_CHROMIUM`), driven over the DevTools
//! protocol on a WebSocket: navigate, run a line of JavaScript in the page,
//! wait for the next page load, take a screenshot.
//!
//! Chromium runs with a fresh profile and without background networking
//! (the machine's network is closed; it would otherwise retry Google's
//! hosts at every start). It is killed when the [`Browser`] is dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Where Chromium is: `LETHE_CHROMIUM`, else the first of Debian's names
/// found on the PATH.
pub fn chromium_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LETHE_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser", "google-chrome"].map(|n| dir.join(n)))
        .find(|candidate| candidate.is_file())
}

/// Where the tests write screenshots: `target/tmp/browser/`.
pub fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    dir
}

/// One headless Chromium with one page.
pub struct Browser {
    child: Child,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    /// Events received and not yet waited for.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

const STEP_TIMEOUT: Duration = Duration::from_secs(30);

impl Browser {
    /// Starts Chromium and opens a blank page.
    pub async fn launch() -> Browser {
        let chromium = chromium_path().expect(
            "Chromium is needed by the browser tests: `apt-get install chromium` (as .ci/run does), \
             or set LETHE_CHROMIUM to a Chromium binary",
        );
        let profile = tempfile::tempdir().expect("a profile folder");
        let mut child = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", chromium.display()));
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let endpoint = tokio::time::timeout(STEP_TIMEOUT, async {
            while let Some(line) = lines.next_line().await.expect("reading Chromium's stderr") {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("Chromium exited before it listened for DevTools");
        })
        .await
        .expect("Chromium starts within 30 s");
        // Keep draining its stderr, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(endpoint.as_str())
            .await
            .expect("connecting to Chromium's DevTools");
        let mut browser = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        };
        let target = browser
            .send(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = browser
            .send(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session")
            .to_owned();
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        browser
    }

    /// Sends one command (to the page's session, or the browser's) and
    /// returns its result; events that arrive meanwhile are kept.
    async fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .expect("sending to Chromium");
        let reply = tokio::time::timeout(STEP_TIMEOUT, async {
            loop {
                if let Some(reply) = self.receive().await
                    && reply["id"] == id
                {
                    return reply;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{method}: no answer within 30 s"));
        if let Some(error) = reply.get("error") {
            panic!("{method}: {error}");
        }
        reply["result"].clone()
    }

    /// Reads one message: an event is kept in `events` (None), a command's
    /// reply is returned.
    async fn receive(&mut self) -> Option<Value> {
        let message = self
            .ws
            .next()
            .await
            .expect("Chromium closed the connection")
            .expect("reading from Chromium");
        let text = message.to_text().ok()?;
        let value: Value = serde_json::from_str(text).expect("DevTools speaks JSON");
        if value.get("method").is_some() {
            self.events.push(value);
            return None;
        }
        Some(value)
    }

    /// A command to the page.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params).await
    }

    /// Waits for the next `Page.loadEventFired` (forgetting older events).
    async fn wait_for_load(&mut self) {
        self.wait_for_event(|event| event["method"] == "Page.loadEventFired")
            .await;
    }

    /// Waits for an event `wanted` accepts, forgetting the events before it.
    async fn wait_for_event(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let found = tokio::time::timeout(STEP_TIMEOUT, async {
            loop {
                if let Some(index) = self.events.iter().position(&wanted) {
                    let event = self.events[index].clone();
                    self.events.drain(..=index);
                    return event;
                }
                self.receive().await;
            }
        })
        .await;
        found.expect("the awaited event within 30 s")
    }

    /// Runs `script` (a click on a download link) and waits for the file
    /// it downloads; the file's path (named as the server suggested).
    pub async fn download(&mut self, script: &str) -> PathBuf {
        let dir = output_dir().join("downloads");
        std::fs::create_dir_all(&dir).expect("the downloads folder");
        self.send(
            None,
            "Browser.setDownloadBehavior",
            json!({"behavior": "allow", "downloadPath": dir, "eventsEnabled": true}),
        )
        .await;
        self.events.clear();
        self.eval(script).await;
        let begun = self
            .wait_for_event(|event| event["method"] == "Browser.downloadWillBegin")
            .await;
        let guid = begun["params"]["guid"].clone();
        let name = begun["params"]["suggestedFilename"]
            .as_str()
            .expect("a suggested file name")
            .to_owned();
        let done = self
            .wait_for_event(|event| {
                event["method"] == "Browser.downloadProgress"
                    && event["params"]["guid"] == guid
                    && event["params"]["state"] != "inProgress"
            })
            .await;
        assert_eq!(done["params"]["state"], "completed", "{done}");
        dir.join(name)
    }

    /// Sends `Accept-Language: <languages>` from now on, as a browser set
    /// to those languages does.
    pub async fn set_accept_language(&mut self, languages: &str) {
        let version = self.send(None, "Browser.getVersion", json!({})).await;
        self.call(
            "Emulation.setUserAgentOverride",
            json!({"userAgent": version["userAgent"], "acceptLanguage": languages}),
        )
        .await;
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&mut self, url: &str) {
        self.events.clear();
        let navigated = self.call("Page.navigate", json!({"url": url})).await;
        assert!(
            navigated.get("errorText").is_none(),
            "navigating to {url}: {navigated}"
        );
        self.wait_for_load().await;
    }

    /// Runs `script` (which navigates: a click, a form's submit) and waits
    /// for the page it leads to.
    pub async fn navigate_by(&mut self, script: &str) {
        self.events.clear();
        self.call(
            "Runtime.evaluate",
            json!({"expression": format!("setTimeout(() => {{ {script} }}, 0)")}),
        )
        .await;
        self.wait_for_load().await;
    }

    /// Evaluates an expression in the page (awaiting a promise) and returns
    /// its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// The text of the first element matching `selector`, or null.
    pub async fn text(&mut self, selector: &str) -> Option<String> {
        let selector = serde_json::to_string(selector).unwrap();
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector}); return e ? e.textContent : null; }})()"
        ))
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// The page's address now.
    pub async fn location(&mut self) -> String {
        self.eval("location.pathname + location.search")
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Saves a PNG of the page under [`output_dir`]; its path.
    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("image data"))
            .expect("base64");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = output_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("writing the screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
