//! Named points on the paths that must survive a crash, where a test can make the process die
//! outright, as SIGKILL or a lost host would: no unwinding, no destructor, no flush. Off
//! unless `TRAILVAULT_FAILPOINT=NAME[:N][:panic]` is set (die at the Nth time NAME is
//! reached, default the first; with `:panic`, panic there instead, as a bug would); the crash
//! matrix (`tests/crash.rs`) and the panic test (`tests/faults.rs`) set it. The points, in the order
//! an object meets them: `after_write` (a single-part version written, not yet checked),
//! `between_parts`, `after_complete` (a multipart upload completed, not yet locked),
//! `after_check` (checked, not yet listed), `manifest_signed` (signed, not yet written),
//! `after_manifest` (written, its listings not yet resolved), `before_delete`,
//! `after_delete` (a batch deleted, not yet counted).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

struct Armed {
    point: String,
    nth: u64,
    panic: bool,
}

static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

/// Dies (or panics) here if this is the armed point's Nth hit.
pub fn hit(name: &str) {
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var("TRAILVAULT_FAILPOINT").ok()?;
        let mut parts = spec.split(':');
        let point = parts.next()?.to_owned();
        let nth = parts.next().and_then(|n| n.parse().ok()).unwrap_or(1u64);
        let panic = parts.next() == Some("panic");
        Some(Armed {
            point,
            nth: nth.max(1),
            panic,
        })
    });
    if let Some(armed) = armed {
        if armed.point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == armed.nth {
            if armed.panic {
                panic!(
                    "failpoint {name} (hit {}): panicking as a bug would",
                    armed.nth
                );
            }
            eprintln!("failpoint {name} (hit {}): dying outright", armed.nth);
            std::process::abort();
        }
    }
}
