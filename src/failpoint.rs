//! Pause points for crash tests. When `LETHE_FAILPOINT` is set to
//! `<phase>:<batch>` (e.g. `deleting_objects:2`), the worker stops in the
//! middle of that batch, after its side effects and before its checkpoint
//! commits, prints `lethe: failpoint <spec> reached` on stderr and waits
//! forever, so a test can kill it there with SIGKILL. Set to
//! `panic:<phase>:<batch>`, the worker panics there instead (a stand-in for
//! a bug, to test that a panic is caught, recorded and its lease released).
//! Unset (always, in production), it costs one comparison per batch.

use std::sync::OnceLock;
use std::time::Duration;

use crate::workflow::state::Phase;

fn configured() -> Option<&'static str> {
    static SPEC: OnceLock<Option<String>> = OnceLock::new();
    SPEC.get_or_init(|| {
        std::env::var("LETHE_FAILPOINT")
            .ok()
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// Pauses forever if the failpoint names this phase and (1-based) batch,
/// or panics if it says `panic:` before them.
pub async fn pause_if_armed(phase: Phase, batch: i32) {
    let Some(spec) = configured() else { return };
    let here = format!("{phase}:{batch}");
    if spec.strip_prefix("panic:") == Some(here.as_str()) {
        panic!("failpoint {spec} reached");
    }
    if spec != here {
        return;
    }
    eprintln!("lethe: failpoint {spec} reached");
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
