//! Crash points for the crash tests: `COUPA_BRIDGE_FAILPOINTS=record-created=3` makes the
//! process abort (no destructors, no flushing, like a SIGKILL) the third time the flow passes
//! the point named `record-created`. Random SIGKILLs rarely land in the narrow windows that
//! matter (between Coupa creating a record and the journal noting it); these make every window
//! testable. Unset, a point costs one relaxed atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable: `name=n[,name=n...]`.
pub const ENV: &str = "COUPA_BRIDGE_FAILPOINTS";

struct Armed {
    name: String,
    at: u64,
    seen: AtomicU64,
}

fn armed() -> &'static [Armed] {
    static ARMED: OnceLock<Vec<Armed>> = OnceLock::new();
    ARMED.get_or_init(|| {
        std::env::var(ENV)
            .unwrap_or_default()
            .split(',')
            .filter_map(|spec| {
                let (name, at) = spec.trim().split_once('=')?;
                Some(Armed {
                    name: name.trim().to_owned(),
                    at: at.trim().parse().ok()?,
                    seen: AtomicU64::new(0),
                })
            })
            .collect()
    })
}

/// Passes the point `name`; aborts the process if it is armed for this pass.
pub fn hit(name: &str) {
    for a in armed() {
        if a.name == name && a.seen.fetch_add(1, Ordering::Relaxed) + 1 == a.at {
            eprintln!("failpoint {name} reached: aborting");
            std::process::abort();
        }
    }
}
