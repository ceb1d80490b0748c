//! Starting the throwaway PostgreSQL cluster behind [`super::postgres`]: initdb, a
//! server process that dies with the test process, and removal of its directory
//! afterwards. Runs the binaries as `postgres` via `setpriv` when we are root, because
//! PostgreSQL refuses to run as root.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::postgres::EXTERNAL_SERVER_ENV;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Name prefix of cluster directories, so a later run can find and remove stale ones.
const DIR_PREFIX: &str = "lethe-pg-";

/// Starts the cluster and returns the URL of its `postgres` database; panics with the
/// server log tail if it does not come up. It runs with fsync off: tests need a server
/// that is fast, not one that survives a power cut.
pub(super) fn start_cluster() -> String {
    start_cluster_with(Durability::FsyncOff)
}

/// Whether the cluster's commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// `fsync`, `synchronous_commit` and `full_page_writes` off: the tests' cluster.
    FsyncOff,
    /// PostgreSQL's defaults (all three on), as a production server runs: a commit
    /// waits for its WAL flush. For the benchmarks that count commits.
    FsyncOn,
}

/// [`start_cluster`] with the durability given.
pub(super) fn start_cluster_with(durability: Durability) -> String {
    let started = Instant::now();
    let bin = find_bin_dir();
    let as_root = running_as_root();
    remove_stale_clusters();

    let base = make_cluster_dir(as_root);
    spawn_reaper(&base);
    let data = base.join("data");
    let socket_dir = base.join("sock");
    fs::create_dir(&socket_dir)
        .expect("creating the socket directory inside our own fresh directory");
    if as_root {
        // PostgreSQL refuses to run as root, so the cluster belongs to `postgres`.
        run_checked(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&base),
        );
    }

    let mut initdb = postgres_command(&bin.join("initdb"), as_root, false);
    initdb
        .arg("-D")
        .arg(&data)
        .args([
            "-N",
            "--auth=trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
        ])
        .current_dir(&base);
    run_checked(&mut initdb);

    // Retry on a fresh port: another process may grab the probed port before we bind it.
    for attempt in 1..=3 {
        let port = free_port();
        let log_path = base.join("server.log");
        let mut server = postgres_command(&bin.join("postgres"), as_root, true);
        server
            .arg("-D")
            .arg(&data)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-p",
                &port.to_string(),
                "-k",
            ])
            .arg(&socket_dir)
            .args(["-c", "max_connections=300"])
            .current_dir(&base);
        if durability == Durability::FsyncOff {
            server.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        let exited = spawn_and_keep(server, &log_path);
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        match wait_until_ready(&url, port, &exited) {
            Ok(()) => {
                eprintln!(
                    "lethe test harness: PostgreSQL ready at {url} (data in {}, {durability:?}) after {:?}",
                    base.display(),
                    started.elapsed()
                );
                return url;
            }
            Err(why) => {
                let log = log_tail(&log_path);
                let port_taken = log.contains("could not bind") || log.contains("already in use");
                if !(port_taken && attempt < 3) {
                    panic!(
                        "the test PostgreSQL server did not start: {why}\n--- server log tail ---\n{log}"
                    );
                }
            }
        }
    }
    unreachable!("the start loop either returns or panics")
}

/// Highest-numbered installed server version, e.g. `/usr/lib/postgresql/15/bin`.
fn find_bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let entries = fs::read_dir(root).unwrap_or_else(|e| {
        panic!(
            "no PostgreSQL under {} ({e}); install it or set {EXTERNAL_SERVER_ENV}",
            root.display()
        )
    });
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| panic!("no <version>/bin/postgres under {}", root.display()))
}

fn running_as_root() -> bool {
    // /proc avoids a libc dependency; the effective uid is what PostgreSQL checks.
    if let Ok(status) = fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("Uid:"))
    {
        return line.split_whitespace().nth(2) == Some("0");
    }
    let out = Command::new("id")
        .arg("-u")
        .output()
        .expect("`id -u` is available");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Builds the command for a PostgreSQL binary, switching to the `postgres` user when we
/// are root and, for the server, asking for SIGQUIT when our spawning thread dies.
fn postgres_command(binary: &Path, as_root: bool, die_with_parent: bool) -> Command {
    if !as_root && !die_with_parent {
        return Command::new(binary);
    }
    let mut cmd = Command::new("setpriv");
    if die_with_parent {
        cmd.args(["--pdeathsig", "SIGQUIT"]);
    }
    if as_root {
        cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    }
    cmd.arg("--").arg(binary);
    cmd
}

fn run_checked(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates `<tmp>/lethe-pg-<pid>-<nanos>`, readable by everyone so that the `postgres`
/// user can traverse into it when we run as root.
fn make_cluster_dir(as_root: bool) -> PathBuf {
    // As root, TMPDIR might point somewhere `postgres` cannot reach; /tmp always works.
    let parent = if as_root {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = parent.join(format!("{DIR_PREFIX}{}-{nanos}", std::process::id()));
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {} failed: {e}", dir.display()));
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod 0755 {} failed: {e}", dir.display()));
    dir
}

/// Removes the cluster directory (~40 MB) once this process and then the server have
/// exited: nothing in this process runs at exit. It ignores Ctrl-C and SIGTERM, which hit
/// the whole process group; after a SIGKILL, `remove_stale_clusters` is the backstop.
fn spawn_reaper(dir: &Path) {
    const SCRIPT: &str = r#"trap '' INT TERM HUP
while kill -0 "$1" 2>/dev/null; do sleep 0.5; done
i=0
while [ -e "$2/data/postmaster.pid" ] && [ "$i" -lt 40 ]; do sleep 0.5; i=$((i + 1)); done
rm -rf "$2""#;
    // No inherited stdio: nextest reports a test as leaky while a child holds its output.
    let spawned = Command::new("sh")
        .args([
            "-c",
            SCRIPT,
            "lethe-test-reaper",
            &std::process::id().to_string(),
        ])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!(
            "lethe test harness: no reaper for {} ({e}); a later run removes it",
            dir.display()
        );
    }
}

/// The process exits without running destructors, so each run's cluster directory stays
/// behind; remove those whose owning process no longer exists.
fn remove_stale_clusters() {
    if !Path::new("/proc/self").exists() {
        return; // No cheap liveness check: leave them alone.
    }
    let parents = [PathBuf::from("/tmp"), std::env::temp_dir()];
    for entry in parents
        .iter()
        .filter_map(|p| fs::read_dir(p).ok())
        .flatten()
        .flatten()
    {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().filter(|p| p.parse::<u32>().is_ok()) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn free_port() -> u16 {
    let probe =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding an ephemeral loopback port");
    probe
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}

/// Spawns the server from a thread that lives exactly as long as the server: PDEATHSIG
/// fires when the spawning *thread* exits, and test threads end after each test.
/// The returned slot is filled with the exit status if the server stops.
fn spawn_and_keep(mut cmd: Command, log_path: &Path) -> Arc<Mutex<Option<String>>> {
    let log = fs::File::create(log_path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", log_path.display()));
    let log_err = log.try_clone().expect("duplicating the log file handle");
    cmd.stdin(Stdio::null()).stdout(log).stderr(log_err);

    let exited = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&exited);
    let (spawned_tx, spawned_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("lethe-test-postgres".into())
        .spawn(move || match cmd.spawn() {
            Err(e) => {
                let _ = spawned_tx.send(Err(format!("could not spawn {cmd:?}: {e}")));
            }
            Ok(mut child) => {
                let _ = spawned_tx.send(Ok(()));
                let status = child
                    .wait()
                    .map_or_else(|e| format!("wait failed: {e}"), |s| s.to_string());
                *slot.lock().expect("exit slot lock is never poisoned") = Some(status);
            }
        })
        .expect("spawning the PostgreSQL keeper thread");
    spawned_rx
        .recv()
        .expect("the keeper thread reports whether the spawn worked")
        .unwrap_or_else(|e| panic!("{e}"));
    exited
}

/// Polls until a real query succeeds. Runs its own runtime on a separate thread because
/// the caller may be inside a test's runtime, where blocking on another one is forbidden.
fn wait_until_ready(
    url: &str,
    port: u16,
    exited: &Arc<Mutex<Option<String>>>,
) -> Result<(), String> {
    let url = url.to_owned();
    let exited = Arc::clone(exited);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a readiness-probe runtime");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut last_error = String::from("never accepted a TCP connection");
        while Instant::now() < deadline {
            if let Some(status) = exited
                .lock()
                .expect("exit slot lock is never poisoned")
                .as_ref()
            {
                return Err(format!("the server exited ({status})"));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                let probe = rt.block_on(async {
                    let mut conn = PgConnection::connect(&url).await?;
                    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
                    let _ = conn.close().await;
                    Ok::<i32, sqlx::Error>(one)
                });
                match probe {
                    Ok(1) => return Ok(()),
                    Ok(other) => last_error = format!("SELECT 1 returned {other}"),
                    Err(e) => last_error = e.to_string(),
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "not ready after {STARTUP_TIMEOUT:?}; last error: {last_error}"
        ))
    })
    .join()
    .expect("the readiness probe thread does not panic")
}

fn log_tail(path: &Path) -> String {
    const TAIL_BYTES: u64 = 4096;
    let Ok(mut file) = fs::File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)));
    let mut tail = String::new();
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_ok() {
        tail = String::from_utf8_lossy(&bytes).into_owned();
    }
    tail
}
