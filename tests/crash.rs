//! The crash matrix: three worker replicas consume the same queues while the fault proxy
//! injects errors, resets and delays, and each replica dies outright at a failpoint on the
//! per-object path (`trailvault::failpoint`) or is SIGKILLed. Run after run, over mixed
//! objects (log files, digests, multipart-sized files, quarantined files, unprocessable
//! messages). After each run a clean drain, and the archive must hold: every notified object
//! archived, one version per distinct content, every version SSE-KMS under the archive key
//! and locked, the queues empty, the dead-letter queues holding exactly the unprocessable
//! messages, and `trailvault verify` exiting 0. After the last: no unfinished multipart
//! upload, and a version planted by hand is reported.
//!
//! Size: `TRAILVAULT_CRASH_RUNS` (default 10 in the test command); the full matrix:
//! `TRAILVAULT_CRASH_RUNS=50 infra/test --test crash -- --nocapture`. Replay with
//! `TRAILVAULT_CRASH_SEED` (and the proxy's `TRAILVAULT_FAULT_SEED`), both printed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::{FaultProxy, TestStack};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use trailvault_devstack::state::Delivery;

const POINTS: &[&str] = &[
    "after_write",
    "between_parts",
    "after_complete",
    "after_check",
    "manifest_signed",
    "after_manifest",
    "before_delete",
    "after_delete",
];

/// An operation, a fault, for an error its status and code, for a delay its length.
type Fault = (&'static str, &'static str, Option<(u16, &'static str)>, u64);

/// With the visibility timeout of 10 s: 6 s is past half of it (a heartbeat is due), 12 s past
/// the whole (another replica may receive the message meanwhile).
const FAULTS: &[Fault] = &[
    ("PutObject", "status", Some((503, "SlowDown")), 0),
    ("PutObject", "reset_after", None, 0),
    ("UploadPart", "status", Some((500, "InternalError")), 0),
    ("UploadPart", "status", Some((400, "ExpiredToken")), 0),
    ("CompleteMultipartUpload", "reset_after", None, 0),
    ("HeadObject", "status", Some((503, "SlowDown")), 0),
    ("GetObject", "reset_mid_body", None, 0),
    ("GetObject", "delay", None, 6_000),
    ("ReceiveMessage", "status", Some((500, "InternalError")), 0),
    ("DeleteMessageBatch", "reset_after", None, 0),
    ("DeleteMessageBatch", "partial", None, 0),
    ("ChangeMessageVisibilityBatch", "partial", None, 0),
    ("Sign", "status", Some((400, "ThrottlingException")), 0),
    ("Sign", "status", Some((400, "AccessDeniedException")), 0),
    ("Sign", "reset_after", None, 0),
    ("ChangeMessageVisibility", "delay", None, 12_000),
];

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn killed_replicas_under_faults_lose_nothing_and_leave_the_archive_provable() {
    let runs: u32 = std::env::var("TRAILVAULT_CRASH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("TRAILVAULT_CRASH_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash matrix: {runs} runs, TRAILVAULT_CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    let mut ts = TestStack::up("crash", 2, &[Delivery::S3]).await;
    ts.edit_config(|c| {
        c.replace(
            "visibility_timeout_secs = 60",
            "visibility_timeout_secs = 10",
        ) + "\n[manifest]\nperiod_secs = 5\n"
    });
    // Every replica dies every run, so a message can be in flight at many kills: each one
    // is a receive. The dead-letter threshold must exceed the kills a message can witness,
    // or a good message is dead-lettered (found with 5, the devstack's and Terraform's
    // default: 13 good messages of 112 in 8 runs). Here: 25.
    let sqs_admin = ts.security().await;
    for queue in &ts.stack.security.queues {
        let sqs = sqs_admin.sqs(&queue.region);
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .unwrap();
        let mut policy: serde_json::Value = serde_json::from_str(
            &attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy],
        )
        .unwrap();
        policy["maxReceiveCount"] = json!(25);
        sqs.set_queue_attributes()
            .queue_url(&queue.url)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                policy.to_string(),
            )
            .send()
            .await
            .unwrap();
    }
    let proxy = FaultProxy::start(&ts.stack.endpoint);
    let emulator = ts.stack.endpoint.clone();
    ts.edit_config(|c| c.replace(&emulator, &proxy.url));

    let member = ts.stack.members[0].clone();
    let bucket = member
        .buckets
        .iter()
        .find(|b| b.region == "us-east-1")
        .unwrap()
        .name
        .clone();
    let mut unprocessable = 0u64;
    let mut kills = 0u32;
    let mut verified = 0u32;
    let mut checked: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut died_at: BTreeMap<String, u32> = BTreeMap::new();
    for run in 0..runs {
        // New files every run: CloudTrail's, a multipart-sized one, a corrupt log
        // (quarantined); and a message nothing can process.
        ts.deliver(1, 2).await;
        let s3 = ts.admin(&member.account).await.s3("us-east-1");
        let account = &member.account;
        let mut large = vec![0u8; 9 << 20];
        rng.fill_bytes(&mut large);
        // Dated after every hour the devstack delivers: a corrupt file in a validated trail is
        // never one CloudTrail wrote, so once a digest covers its hour `verify` rightly calls
        // it planted (found at run 24 of the first full matrix, when the delivered hours
        // reached these names). Until then it is pending.
        let stamp = format!("20300101T{:02}{:02}Z", run / 60 % 24, run % 60);
        for (key, body) in [
            (
                format!("AWSLogs/{account}/CloudTrail-Insight/us-east-1/2030/01/01/{account}_CloudTrail-Insight_us-east-1_{stamp}_Large{run:011}.json.gz"),
                large,
            ),
            (
                format!("AWSLogs/{account}/CloudTrail/us-east-1/2030/01/01/{account}_CloudTrail_us-east-1_{stamp}_Corrupt{run:09}.json.gz"),
                b"not gzip at all".to_vec(),
            ),
        ] {
            s3.put_object()
                .bucket(&bucket)
                .key(key)
                .body(ByteStream::from(body))
                .send()
                .await
                .unwrap();
        }
        ts.relay().await;
        // Every fifth run: each parked receive of one takes 2 s, and the drain waits for its
        // 25th.
        if run % 5 == 0 {
            ts.send("us-east-1", &format!("not a notification {run}"))
                .await;
            unprocessable += 1;
        }

        // Faults, drawn for this run: six rules, each at probability 0.5.
        let rules: Vec<serde_json::Value> = (0..6)
            .map(|_| {
                let (op, fault, status, delay_ms) = FAULTS[rng.gen_range(0..FAULTS.len())];
                let mut rule =
                    json!({"op": op, "fault": fault, "probability": 0.5, "delay_ms": delay_ms});
                if let Some((status, code)) = status {
                    rule["status"] = json!(status);
                    rule["code"] = json!(code);
                }
                rule
            })
            .collect();
        proxy.set(json!(rules));

        // Three replicas; each dies at a failpoint, or is killed at the end of the run.
        let mut replicas: Vec<(Child, Option<String>)> = (0..3)
            .map(|_| {
                let point = POINTS[rng.gen_range(0..POINTS.len())];
                let spec = format!("{point}:{}", rng.gen_range(1..=3));
                let child = ts
                    .trailvault()
                    .arg("run")
                    .env("TRAILVAULT_FAILPOINT", &spec)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                (child, Some(spec))
            })
            .collect();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15)
            && replicas
                .iter_mut()
                .any(|(c, _)| c.try_wait().unwrap().is_none())
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for (child, spec) in &mut replicas {
            match child.try_wait().unwrap() {
                Some(_) => {
                    *died_at.entry(spec.take().unwrap()).or_default() += 1;
                }
                None => {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    *died_at.entry("sigkill".to_owned()).or_default() += 1;
                }
            }
            kills += 1;
        }
        // Then a clean drain, and the archive must hold.
        proxy.set(json!([]));
        ts.drain();
        let figures = settled(&ts, &mut checked, unprocessable).await;
        verified += 1;
        println!(
            "run {run}: {figures}; faults injected so far {:?}",
            proxy.injected()
        );
    }

    // The last replicas' uploads are aborted by the next replica to start once they are older
    // than two visibility timeouts.
    tokio::time::sleep(Duration::from_secs(21)).await;
    ts.drain();
    let figures = settled(&ts, &mut checked, unprocessable).await;
    let archive = ts.security().await.s3(&ts.stack.security.archive_region);
    let archive_bucket = &ts.stack.security.archive_bucket;
    let uploads = archive
        .list_multipart_uploads()
        .bucket(archive_bucket)
        .send()
        .await
        .unwrap();
    let injected = proxy.injected();
    println!(
        "crash matrix figures: runs {runs}, kills {kills} ({died_at:?}), faults injected \
         {injected:?} ({} in all), {figures}, runs after which verify exited 0: {verified}",
        injected.values().sum::<u64>(),
    );
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());

    // Provable: verify exits 0, and still sees a version planted by hand.
    let versions = ts.archive_versions().await;
    let (planted_key, _) = &versions[0];
    archive
        .put_object()
        .bucket(archive_bucket)
        .key(planted_key)
        .body(ByteStream::from_static(b"planted"))
        .send()
        .await
        .unwrap();
    let out = ts.verify();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    // Newer than the newest manifest, it is not yet "listed by none" (it may be pending), but
    // it is not CloudTrail's file: named INVALID all the same.
    assert!(
        report
            .lines()
            .any(|l| l.contains(planted_key.as_str()) && l.contains("INVALID")),
        "{report}"
    );
}

/// After a clean drain: every notified object archived byte-exact, one version per distinct
/// content, each SSE-KMS under the archive key and COMPLIANCE-locked; the queues empty and the
/// dead-letter queues holding exactly the `unprocessable` messages; `verify` exit 0. Versions
/// already read (in `checked`, key and version to SHA-256) are not read again.
async fn settled(
    ts: &TestStack,
    checked: &mut BTreeMap<(String, String), String>,
    unprocessable: u64,
) -> String {
    let archive = ts.security().await.s3(&ts.stack.security.archive_region);
    let archive_bucket = &ts.stack.security.archive_bucket;
    for (key, version) in ts.archive_versions().await {
        if checked.contains_key(&(key.clone(), version.clone())) {
            continue;
        }
        let out = archive
            .get_object()
            .bucket(archive_bucket)
            .key(&key)
            .version_id(&version)
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.ssekms_key_id(),
            Some(ts.stack.security.kms_key_arn.as_str()),
            "{key}"
        );
        assert_eq!(
            out.object_lock_mode().map(|m| m.as_str()),
            Some("COMPLIANCE"),
            "{key}"
        );
        let bytes = out.body.collect().await.unwrap().into_bytes();
        checked.insert((key, version), sha256(&bytes));
    }
    let mut contents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for ((key, _), sha) in checked.iter() {
        contents.entry(key).or_default().push(sha);
    }
    let sources = ts.sources().await;
    let mut lost = 0;
    for (bucket, key, bytes, _) in &sources {
        let found = contents
            .get(format!("{bucket}/{key}").as_str())
            .is_some_and(|shas| shas.contains(&sha256(bytes).as_str()));
        if !found {
            lost += 1;
            eprintln!("lost: {bucket}/{key}");
        }
    }
    let duplicates: usize = contents
        .values()
        .map(|shas| shas.len() - shas.iter().collect::<BTreeSet<_>>().len())
        .sum();
    assert_eq!(lost, 0, "objects lost");
    assert_eq!(duplicates, 0, "duplicate versions");
    let mut dead = 0;
    for region in &ts.stack.regions {
        let (visible, in_flight, d) = ts.depth(region).await;
        assert_eq!((visible, in_flight), (0, 0), "{region}");
        dead += d;
    }
    assert_eq!(dead, unprocessable, "exactly the unprocessable messages");
    let out = ts.verify();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    format!(
        "objects {}, lost {lost}, duplicate versions {duplicates}, dead-lettered {dead}, verify 0",
        sources.len()
    )
}
