//! A moto S3 server for the tests that need what s3s-fs lacks: versioning,
//! tagging and object lock. One server per test-binary process, started on
//! first use on a free loopback port and killed with the process (PDEATHSIG);
//! each test makes its own buckets ([`Moto::bucket`]), so tests never share
//! objects.
//!
//! moto comes from PyPI (`pip install "moto[server]"`; `.ci/run` installs it).
//! It is found as `moto_server` on PATH, else as `python3 -m moto.server`.
//! moto 5.x leaks memory on every ListObjectVersions call in proportion to
//! the bucket's size: keep these buckets small.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::Credentials;

use super::s3::test_client;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const REGION: &str = "us-east-1";

/// The running server.
pub struct Moto {
    port: u16,
    log: PathBuf,
}

static MOTO: OnceLock<Moto> = OnceLock::new();
static BUCKETS: AtomicU64 = AtomicU64::new(0);

/// The process's moto server, started on first use.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(start)
}

impl Moto {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn region(&self) -> &'static str {
        REGION
    }

    /// moto accepts any credentials.
    pub fn credentials(&self) -> Credentials {
        Credentials::new("lethe-moto", "lethe-moto-secret", None, None, "lethe-tests")
    }

    /// A bucket name no other test of this run uses, e.g. `lethe-t7-1234-inputs`.
    pub fn bucket(&self, role: &str) -> String {
        let n = BUCKETS.fetch_add(1, Ordering::SeqCst);
        format!("lethe-t{n}-{}-{role}", std::process::id() % 10_000)
    }

    /// A client for test setup and assertions.
    pub fn client(&self) -> aws_sdk_s3::Client {
        test_client(self.endpoint(), self.credentials())
    }

    /// The server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let start = bytes.len().saturating_sub(3000);
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }
}

fn start() -> Moto {
    let started = Instant::now();
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("probing a free loopback port")
        .port();
    let log = std::env::temp_dir().join(format!("lethe-moto-{}.log", std::process::id()));
    let program = find_moto();
    let log_file = std::fs::File::create(&log).expect("creating the moto log");
    let log_err = log_file.try_clone().expect("duplicating the log handle");
    // setpriv --pdeathsig: the server dies with the keeper thread, which
    // lives as long as this process.
    let mut command = Command::new("setpriv");
    command
        .args(["--pdeathsig", "SIGKILL", "--"])
        .args(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("lethe-test-moto".into())
        .spawn(move || match command.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(()));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(format!("could not run {command:?}: {e}")));
            }
        })
        .expect("spawning the moto keeper thread");
    rx.recv()
        .expect("the keeper reports the spawn")
        .unwrap_or_else(|e| panic!("{e}"));
    let moto = Moto { port, log };
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while !answers_http(port) {
        if Instant::now() > deadline {
            panic!(
                "moto did not answer on port {port} within {STARTUP_TIMEOUT:?}\n--- its log ---\n{}",
                moto.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "lethe test harness: moto ready at {} after {:?}",
        moto.endpoint(),
        started.elapsed()
    );
    moto
}

/// `moto_server` on PATH, else `python3 -m moto.server` when moto imports.
fn find_moto() -> Vec<String> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths).any(|dir| is_executable(&dir.join("moto_server")))
        })
        .unwrap_or(false);
    if on_path {
        return vec!["moto_server".to_owned()];
    }
    let importable = Command::new("python3")
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if importable {
        return vec!["python3".into(), "-m".into(), "moto.server".into()];
    }
    panic!(
        "moto is not installed: run `pip install \"moto[server]\"` (the tests of versioned, \
         tagged and locked buckets run against it; `.ci/run` installs it)"
    );
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether something answers HTTP on the port (moto answers `GET /`).
fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
