//! trailvault under failing dependencies: the fault proxy (`infra/local/faultproxy.py`) sits
//! between the real worker binary and the emulator and injects, per AWS operation, what the
//! emulator never does by itself (a role that refuses to be assumed, an archive that denies
//! writes), with its seed printed.

mod common;

use std::time::{Duration, Instant};

use common::{FaultProxy, TestStack};
use serde_json::json;
use trailvault_devstack::state::Delivery;

/// Points the stack's worker at the proxy.
fn through(ts: &TestStack, proxy: &FaultProxy) {
    let emulator = ts.stack.endpoint.clone();
    ts.edit_config(|c| {
        assert!(c.contains(&emulator), "{c}");
        c.replace(&emulator, &proxy.url)
    });
}

/// A reader role whose trust policy (or ExternalId) refuses the worker: STS answers
/// AccessDenied while the SDK resolves credentials. That is the account's misconfiguration,
/// not a passing condition: its messages are parked at once (and reach the dead-letter queue
/// within seconds, not after five visibility timeouts), named, while the other account's
/// files are archived. Before, the failure was taken as passing and each message waited out
/// its visibility timeout five times.
#[tokio::test]
async fn a_reader_role_that_refuses_to_be_assumed_parks_its_accounts_messages_at_once() {
    let mut ts = TestStack::up("fault-assume", 2, &[Delivery::S3]).await;
    ts.deliver(1, 2).await;
    let proxy = FaultProxy::start(&ts.stack.endpoint);
    let denied = ts.stack.members[1].account.clone();
    proxy.set(
        json!([{"op": "AssumeRole", "contains": denied, "fault": "status",
                      "status": 403, "code": "AccessDenied"}]),
    );
    through(&ts, &proxy);

    let started = Instant::now();
    let out = ts
        .trailvault()
        .args(["run", "--until-empty"])
        .output()
        .unwrap();
    let (summary, log) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{summary}\n{log}");
    // Parked (returned after 2 s), so five receives take well under one visibility timeout
    // (60 s) each.
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        log.contains(&format!(
            "trailvault may not assume account {denied}'s reader role"
        )),
        "{log}"
    );
    let sources = ts.sources().await;
    let (theirs, ours): (Vec<_>, Vec<_>) = sources
        .iter()
        .partition(|(bucket, _, _, _)| bucket.contains(&denied));
    let archived: std::collections::BTreeSet<String> = ts
        .archive_versions()
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for (bucket, key, _, _) in &ours {
        assert!(archived.contains(&format!("{bucket}/{key}")), "{key}");
    }
    for (bucket, key, _, _) in &theirs {
        assert!(!archived.contains(&format!("{bucket}/{key}")), "{key}");
    }
    // Each of the six received five times (the queues' maxReceiveCount), refused each time.
    assert!(
        summary.contains("Failures: 30 reader_role_denied (see the log for each)."),
        "{summary}"
    );
    let parked: u64 = {
        let mut n = 0;
        for region in &ts.stack.regions {
            let (visible, in_flight, dead) = ts.depth(region).await;
            assert_eq!((visible, in_flight), (0, 0), "{region}");
            n += dead;
        }
        n
    };
    assert_eq!(
        parked,
        theirs.len() as u64,
        "each of its messages, dead-lettered"
    );
    assert!(proxy.injected()["AssumeRole:status:AccessDenied"] >= 1);
}
