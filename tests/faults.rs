//! trailvault under failing dependencies: the fault proxy (`infra/local/faultproxy.py`) sits
//! between the real worker binary and the emulator and injects, per AWS operation, what the
//! emulator never does by itself (a role that refuses to be assumed, an archive that denies
//! writes), with its seed printed.

mod common;

use std::time::{Duration, Instant};

use common::{http_get, FaultProxy, RunningWorker, TestStack};
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

/// The archive bucket refuses every write (a bucket policy, a KMS key denied or disabled):
/// the deployment's fault, not the messages'. The worker stops taking work, answers 503 on
/// `/healthz` with the reason, parks nothing, probes with growing pauses, and once the
/// archive answers again resumes by itself and archives everything. Before, every message
/// was parked within seconds and reached the dead-letter queue.
#[tokio::test]
async fn an_archive_that_refuses_writes_pauses_the_worker_which_resumes_by_itself() {
    let mut ts = TestStack::up("fault-archive", 1, &[Delivery::S3]).await;
    // Messages that failed at the outage come back after this.
    ts.edit_config(|c| {
        c.replace(
            "visibility_timeout_secs = 60",
            "visibility_timeout_secs = 10",
        )
    });
    ts.deliver(1, 2).await;
    let sources = ts.sources().await;
    let proxy = FaultProxy::start(&ts.stack.endpoint);
    proxy.set(
        json!([{"op": "PutObject", "bucket": ts.stack.security.archive_bucket,
                      "fault": "status", "status": 403, "code": "AccessDenied"}]),
    );
    through(&ts, &proxy);

    let worker = RunningWorker::start(ts.trailvault());
    let started = Instant::now();
    let health = loop {
        let (status, body) = http_get(&worker.address, "/healthz");
        if status == 503 && body.contains("the archive does not answer") {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(health.contains("AccessDenied"), "{health}");
    // Paused: a few probes fail, nothing is archived, nothing is parked.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(ts.archive_versions().await.is_empty());
    for region in &ts.stack.regions {
        assert_eq!(
            ts.depth(region).await.2,
            0,
            "{region}: nothing dead-lettered"
        );
    }

    proxy.set(json!([]));
    let started = Instant::now();
    while ts.archive_versions().await.len() < sources.len() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not resumed: {} of {} archived",
            ts.archive_versions().await.len(),
            sources.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (status, body) = http_get(&worker.address, "/healthz");
    assert_eq!(status, 200, "{body}");
    let (exit, log) = worker.stop();
    assert!(exit.success());
    let log = log.join("\n");
    assert!(
        log.contains("taking no more work until it answers again"),
        "{log}"
    );
    assert!(
        log.contains("the archive answers again; taking work"),
        "{log}"
    );
    assert_eq!(ts.archive_versions().await.len(), sources.len());
    for region in &ts.stack.regions {
        assert_eq!(ts.depth(region).await, (0, 0, 0), "{region}");
    }
    assert!(proxy.injected()["PutObject:status:AccessDenied"] >= 2);
    // Every copy is listed in a manifest; the probe's object is not evidence.
    let out = ts.verify();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
}

/// `--until-empty` against an archive that keeps refusing: it gives up after a visibility
/// timeout with the reason and exit 1, and parks nothing.
#[tokio::test]
async fn a_drain_that_cannot_finish_for_the_archive_exits_1_with_the_reason() {
    let mut ts = TestStack::up("fault-drain", 1, &[Delivery::S3]).await;
    ts.edit_config(|c| {
        c.replace(
            "visibility_timeout_secs = 60",
            "visibility_timeout_secs = 10",
        )
    });
    ts.deliver(1, 1).await;
    let proxy = FaultProxy::start(&ts.stack.endpoint);
    proxy.set(
        json!([{"op": "PutObject", "bucket": ts.stack.security.archive_bucket,
                      "fault": "status", "status": 403, "code": "AccessDenied"}]),
    );
    through(&ts, &proxy);
    let out = ts
        .trailvault()
        .args(["run", "--until-empty"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("stopped before the queues were empty: the archive did not answer for")
            && stderr.contains("AccessDenied")
            && stderr.contains("no message was parked for it"),
        "{stderr}"
    );
    assert!(ts.archive_versions().await.is_empty());
    for region in &ts.stack.regions {
        assert_eq!(
            ts.depth(region).await.2,
            0,
            "{region}: nothing dead-lettered"
        );
    }
}

/// Everything on one worker's path answering wrongly, once or twice each: writes that took
/// effect but whose answer was lost (a copy, a multipart completion, a manifest, a delete, a
/// signature), batch deletes that fail for some of their entries, credentials that expire in
/// the middle of a multipart upload and of a read, a KMS key that refuses to sign, and answers
/// slower than half and than the whole visibility timeout. Nothing lost, one version per
/// file, nothing parked, every version listed.
#[tokio::test]
async fn ambiguous_partial_and_slow_answers_lose_nothing_and_archive_each_file_once() {
    let mut ts = TestStack::up("fault-ambig", 1, &[Delivery::S3]).await;
    ts.edit_config(|c| {
        c.replace(
            "visibility_timeout_secs = 60",
            "visibility_timeout_secs = 10",
        ) + "\n[manifest]\nperiod_secs = 5\n"
    });
    ts.deliver(1, 2).await;
    let member = ts.stack.members[0].clone();
    let account = &member.account;
    let bucket = member
        .buckets
        .iter()
        .find(|b| b.region == "us-east-1")
        .unwrap()
        .name
        .clone();
    // Large enough for a multipart upload.
    let large: Vec<u8> = (0..9u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    ts.admin(account)
        .await
        .s3("us-east-1")
        .put_object()
        .bucket(&bucket)
        .key(format!("AWSLogs/{account}/CloudTrail-Insight/us-east-1/2026/11/02/{account}_CloudTrail-Insight_us-east-1_20261102T0100Z_Large00000000001.json.gz"))
        .body(aws_sdk_s3::primitives::ByteStream::from(large))
        .send()
        .await
        .unwrap();
    ts.relay().await;
    let sources = ts.sources().await;

    let archive = &ts.stack.security.archive_bucket;
    let proxy = FaultProxy::start(&ts.stack.endpoint);
    // The first rule that matches a request applies; each stops after its limit.
    proxy.set(json!([
        {"op": "PutObject", "bucket": archive, "contains": "_trailvault/manifests/",
         "fault": "reset_after", "limit": 1},
        {"op": "PutObject", "bucket": archive, "fault": "reset_after", "limit": 2},
        {"op": "CompleteMultipartUpload", "fault": "reset_after", "limit": 1},
        {"op": "UploadPart", "fault": "status", "status": 400, "code": "ExpiredToken",
         "limit": 1},
        {"op": "GetObject", "bucket": bucket, "fault": "status", "status": 400,
         "code": "ExpiredToken", "limit": 1},
        {"op": "GetObject", "bucket": bucket, "fault": "delay", "delay_ms": 6000, "limit": 1},
        {"op": "HeadObject", "fault": "delay", "delay_ms": 12000, "limit": 1},
        {"op": "DeleteMessageBatch", "fault": "partial", "limit": 2},
        {"op": "DeleteMessageBatch", "fault": "reset_after", "limit": 1},
        {"op": "Sign", "fault": "reset_after", "limit": 1},
        {"op": "Sign", "fault": "status", "status": 400, "code": "AccessDeniedException",
         "limit": 2},
    ]));
    through(&ts, &proxy);

    let (summary, log) = ts.drain();
    let injected = proxy.injected();
    println!("{summary}\ninjected: {injected:?}");
    let expected: std::collections::BTreeMap<String, u64> = [
        ("PutObject:reset_after", 3),
        ("CompleteMultipartUpload:reset_after", 1),
        ("UploadPart:status:ExpiredToken", 1),
        ("GetObject:status:ExpiredToken", 1),
        ("GetObject:delay", 1),
        ("HeadObject:delay", 1),
        ("DeleteMessageBatch:partial", 2),
        ("DeleteMessageBatch:reset_after", 1),
        ("Sign:reset_after", 1),
        ("Sign:status:AccessDeniedException", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(injected, expected, "{log}");

    let versions = ts.archive_versions().await;
    let keys: std::collections::BTreeSet<&String> = versions.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys.len(),
        versions.len(),
        "one version per file: {versions:?}"
    );
    for (bucket, key, _, _) in &sources {
        assert!(keys.contains(&format!("{bucket}/{key}")), "lost: {key}");
    }
    assert_eq!(versions.len(), sources.len());
    for region in &ts.stack.regions {
        assert_eq!(ts.depth(region).await, (0, 0, 0), "{region}");
    }
    let out = ts.verify();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
}

/// A bug that panics in a message's task (here a failpoint that panics, as the hostile key
/// did before it was fixed): caught, logged as an error naming the message, counted in
/// `trailvault_panics`, and the message returned; the next delivery archives its file, and
/// the worker goes on with the rest.
#[tokio::test]
async fn a_panicking_message_task_is_caught_logged_counted_and_its_message_returned() {
    let mut ts = TestStack::up("fault-panic", 1, &[Delivery::S3]).await;
    ts.deliver(1, 2).await;
    let sources = ts.sources().await;
    let mut cmd = ts.trailvault();
    cmd.env("TRAILVAULT_FAILPOINT", "after_check:1:panic");
    let worker = RunningWorker::start(cmd);
    let started = Instant::now();
    while ts.archive_versions().await.len() < sources.len() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not all archived"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Its listing comes with the next manifest; then its message is deleted.
    let started = Instant::now();
    loop {
        let mut depth = (0, 0, 0);
        for region in &ts.stack.regions {
            let (v, f, d) = ts.depth(region).await;
            depth = (depth.0 + v, depth.1 + f, depth.2 + d);
        }
        if depth == (0, 0, 0) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "{depth:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let metrics = worker.metrics();
    assert_eq!(
        common::metric(&metrics, "trailvault_panics_total", &["task=\"message\""]),
        1.0,
        "{metrics}"
    );
    let (exit, log) = worker.stop();
    assert!(exit.success());
    let events: Vec<serde_json::Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let caught: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("the message's task panicked"))
        })
        .collect();
    assert_eq!(caught.len(), 1, "{log:?}");
    assert_eq!(caught[0]["level"], "ERROR");
    assert!(caught[0]["message_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert!(
        caught[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("failpoint after_check (hit 1): panicking")),
        "{:?}",
        caught[0]
    );
    // The hook's line says where.
    assert!(
        events.iter().any(|e| e["location"]
            .as_str()
            .is_some_and(|l| l.starts_with("src/failpoint.rs"))),
        "{log:?}"
    );
    let versions = ts.archive_versions().await;
    assert_eq!(versions.len(), sources.len(), "one version per file");
    let out = ts.verify();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
