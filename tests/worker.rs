//! The archive worker (`trailvault run`) end to end against the emulator: several member
//! accounts, real notifications of every shape, the real binary.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::{get, http_get, metric, PrivateEmulator, RunningWorker, TestStack};
use rand::{RngCore, SeedableRng};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use trailvault_devstack::state::Delivery;

/// Every archived version, with its bytes and what HeadObject says of it.
async fn archived(
    ts: &TestStack,
) -> BTreeMap<
    String,
    Vec<(
        Vec<u8>,
        aws_sdk_s3::operation::head_object::HeadObjectOutput,
    )>,
> {
    let s3 = ts.security().await.s3(&ts.stack.security.archive_region);
    let bucket = &ts.stack.security.archive_bucket;
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (key, version) in ts.archive_versions().await {
        let head = s3
            .head_object()
            .bucket(bucket)
            .key(&key)
            .version_id(&version)
            .send()
            .await
            .unwrap();
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .version_id(&version)
            .send()
            .await
            .unwrap();
        let bytes = body.body.collect().await.unwrap().into_bytes().to_vec();
        out.entry(key).or_default().push((bytes, head));
    }
    out
}

/// The objects count on the summary's total line.
fn total_archived(summary: &str) -> usize {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .expect("a total line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn s3_event(region: &str, bucket: &str, key: &str) -> String {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
        "eventTime": "2026-11-21T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key, "size": 100, "eTag": "0123456789abcdef0123456789abcdef"}}
    }]})
    .to_string()
}

fn log_key(account: &str, region: &str, unique: &str) -> String {
    format!("AWSLogs/{account}/CloudTrail/{region}/2026/11/01/{account}_CloudTrail_{region}_20261101T0005Z_{unique}.json.gz")
}

#[tokio::test]
async fn every_object_is_archived_byte_exact_encrypted_locked_and_acknowledged() {
    let mut ts = TestStack::up("worker", 3, &Delivery::ALL).await;
    ts.deliver(2, 5).await;
    let sources = ts.sources().await;
    assert_eq!(sources.len(), 3 * 2 * (5 + 2));

    let (summary, _) = ts.drain();
    assert_eq!(total_archived(&summary), sources.len(), "{summary}");
    // Every notification shape was understood: test events and CloudTrail's greeting were
    // acknowledged, and every object came through S3, SNS, EventBridge or CloudTrail's message.
    assert!(
        summary.contains("s3_test_event") && summary.contains("cloudtrail_validation"),
        "{summary}"
    );
    assert!(summary.contains("Failures: none."), "{summary}");

    let archive = archived(&ts).await;
    let kms_key = &ts.stack.security.kms_key_arn;
    let seven_years = time::OffsetDateTime::now_utc() + time::Duration::days(7 * 365);
    for (bucket, key, bytes, metadata) in &sources {
        let archive_key = format!("{bucket}/{key}");
        let versions = archive
            .get(&archive_key)
            .unwrap_or_else(|| panic!("{archive_key} not archived"));
        assert_eq!(versions.len(), 1, "{archive_key}: one version");
        let (copy, head) = &versions[0];
        assert_eq!(sha256(copy), sha256(bytes), "{archive_key}: bytes differ");
        assert_eq!(head.content_type(), Some("application/json"));
        assert_eq!(head.content_encoding(), Some("gzip"));
        let archived_meta = head.metadata().unwrap();
        for (k, v) in metadata {
            assert_eq!(
                archived_meta.get(k),
                Some(v),
                "{archive_key}: source metadata {k} lost"
            );
        }
        if key.contains("CloudTrail-Digest") {
            assert!(
                archived_meta.contains_key("signature"),
                "{archive_key}: digest signature lost"
            );
        } else {
            assert!(archived_meta["trailvault-records"].parse::<u64>().unwrap() > 0);
        }
        assert_eq!(archived_meta["trailvault-sha256"], sha256(bytes));
        assert_eq!(archived_meta["trailvault-source-bucket"], *bucket);
        assert_eq!(archived_meta["trailvault-source-key"], *key);
        assert!(!archived_meta.contains_key("trailvault-quarantine"));
        assert_eq!(
            head.server_side_encryption().map(|s| s.as_str()),
            Some("aws:kms")
        );
        assert_eq!(head.ssekms_key_id(), Some(kms_key.as_str()));
        assert_eq!(head.bucket_key_enabled(), Some(true));
        assert_eq!(
            head.object_lock_mode().map(|m| m.as_str()),
            Some("COMPLIANCE")
        );
        let until = head.object_lock_retain_until_date().unwrap().secs();
        assert!(
            until > seven_years.unix_timestamp(),
            "{archive_key}: locked only until {until}"
        );
    }
    assert_eq!(archive.len(), sources.len(), "nothing else in the archive");
    for region in &ts.stack.regions {
        assert_eq!(
            ts.depth(region).await,
            (0, 0, 0),
            "{region}: every message deleted"
        );
    }

    // A notification delivered twice archives nothing new.
    let (bucket, key, _, _) = &sources[0];
    let region = ts
        .stack
        .members
        .iter()
        .flat_map(|m| &m.buckets)
        .find(|b| &b.name == bucket)
        .unwrap()
        .region
        .clone();
    ts.send(&region, &s3_event(&region, bucket, key)).await;
    let (summary, _) = ts.drain();
    assert!(summary.contains("Duplicates 1, conflicts 0"), "{summary}");
    assert_eq!(
        archived(&ts).await[&format!("{bucket}/{key}")].len(),
        1,
        "no second version"
    );
    assert_eq!(ts.depth(&region).await, (0, 0, 0));

    // The owner rewrites a file it delivered: its archive key keeps the first bytes, what every
    // reader gets; the new ones are kept apart, locked, and reported as a conflict. Replays
    // (A, B, A, B) add nothing.
    let owner = ts
        .stack
        .members
        .iter()
        .find(|m| m.buckets.iter().any(|b| &b.name == bucket))
        .unwrap();
    let original = sources[0].2.clone();
    let rewritten = b"rewritten after archiving".to_vec();
    let archive_key = format!("{bucket}/{key}");
    let kept_at = trailvault::archive::layout::conflict_key(&archive_key, &sha256(&rewritten));
    let write_source = |bytes: Vec<u8>| {
        let ts = &ts;
        let region = region.clone();
        async move {
            ts.admin(&owner.account)
                .await
                .s3(&region)
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .unwrap();
            ts.send(&region, &s3_event(&region, bucket, key)).await;
        }
    };
    write_source(rewritten.clone()).await;
    let (summary, stderr) = ts.drain();
    assert!(summary.contains("Duplicates 0, conflicts 1"), "{summary}");
    assert!(
        stderr.contains("the source was rewritten after it was archived"),
        "the conflict is logged: {stderr}"
    );
    let s3 = ts.security().await.s3(&ts.stack.security.archive_region);
    let archive_bucket = &ts.stack.security.archive_bucket;
    let check = |expect_kept: usize| {
        let ts = &ts;
        let (s3, archive_key, kept_at, original, rewritten) =
            (&s3, &archive_key, &kept_at, &original, &rewritten);
        async move {
            let versions = &archived(ts).await[archive_key];
            assert_eq!(versions.len(), 1, "the archive key is never rewritten");
            assert_eq!(&versions[0].0, original);
            let all = ts.archive_versions_all().await;
            let kept: Vec<_> = all.iter().filter(|(k, _)| k == kept_at).collect();
            assert_eq!(kept.len(), expect_kept, "{all:?}");
            let (bytes, head) = get(s3, archive_bucket, kept_at).await;
            assert_eq!(&bytes, rewritten);
            assert_eq!(
                head.ssekms_key_id(),
                Some(ts.stack.security.kms_key_arn.as_str())
            );
            assert_eq!(
                head.object_lock_mode(),
                Some(&aws_sdk_s3::types::ObjectLockMode::Compliance)
            );
        }
    };
    check(1).await;
    for (bytes, duplicates) in [(original.clone(), 1), (rewritten.clone(), 1)] {
        write_source(bytes).await;
        let (summary, _) = ts.drain();
        assert!(
            summary.contains(&format!("Duplicates {duplicates}, conflicts 0")),
            "{summary}"
        );
        check(1).await;
    }
    // The manifests list the kept bytes, and verify names the conflict.
    let out = ts.verify();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "Note (conflict): s3://{archive_bucket}/{kept_at}: other bytes delivered for s3://{archive_bucket}/{archive_key}"
        )),
        "{stdout}"
    );
}

#[tokio::test]
async fn bad_input_is_parked_in_the_dead_letter_queue_or_archived_as_quarantined() {
    let mut ts = TestStack::up("refuse", 2, &[Delivery::S3]).await;
    ts.deliver(1, 1).await;
    let region = "us-east-1";
    let (m1, m2) = (&ts.stack.members[0], &ts.stack.members[1]);
    let bucket1 = ts.member_bucket(0, region);

    // Evidence that is not a CloudTrail log file is archived byte-exact, but quarantined.
    let corrupt = b"\x1f\x8b\x08\x00 this is not a deflate stream".to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"hello": "world"}"#).unwrap();
    let not_cloudtrail = gz.finish().unwrap();
    let corrupt_key = log_key(&m1.account, region, "CorruptGzip00000");
    let json_key = log_key(&m1.account, region, "NotCloudTrail000");
    let admin = ts.admin(&m1.account).await.s3(region);
    for (key, bytes) in [(&corrupt_key, &corrupt), (&json_key, &not_cloudtrail)] {
        admin
            .put_object()
            .bucket(&bucket1)
            .key(key)
            .body(ByteStream::from(bytes.clone()))
            .send()
            .await
            .unwrap();
    }
    ts.relay().await;

    // Messages that must never be deleted nor archived.
    let refused = [
        "this is not JSON".to_owned(),
        r#"{"message": "JSON, but no notification"}"#.to_owned(),
        s3_event(
            region,
            "a-bucket-nobody-configured",
            &log_key(&m1.account, region, "UnknownBucket000"),
        ),
        // Member 1's bucket, naming member 2's account: a planted file.
        s3_event(
            region,
            &bucket1,
            &log_key(&m2.account, region, "PlantedElsewhere"),
        ),
        s3_event(
            region,
            &bucket1,
            &log_key(&m1.account, region, "MissingObject000"),
        ),
    ];
    for body in &refused {
        ts.send(region, body).await;
    }

    let (summary, stderr) = ts.drain();
    assert!(summary.contains("quarantined 2"), "{summary}");
    for reason in [
        "not_json",
        "unknown_shape",
        "unknown_bucket",
        "account_mismatch",
        "source_missing",
    ] {
        assert!(summary.contains(reason), "no {reason} in {summary}");
    }
    assert!(
        stderr.contains("names account"),
        "the mismatch is explained in the log"
    );

    // Exactly the refused messages wait in the dead-letter queue; nothing was deleted.
    let security = ts.security().await.sqs(region);
    let dlq = ts.stack.queue(region).unwrap().dlq_url.clone();
    let mut parked = BTreeSet::new();
    loop {
        let out = security
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .send()
            .await
            .unwrap();
        if out.messages().is_empty() {
            break;
        }
        parked.extend(out.messages().iter().map(|m| m.body().unwrap().to_owned()));
    }
    assert_eq!(parked, refused.iter().cloned().collect::<BTreeSet<_>>());

    let archive = archived(&ts).await;
    for unique in ["UnknownBucket000", "PlantedElsewhere", "MissingObject000"] {
        assert!(
            !archive.keys().any(|k| k.contains(unique)),
            "{unique} was archived"
        );
    }
    for (key, bytes) in [(&corrupt_key, &corrupt), (&json_key, &not_cloudtrail)] {
        let (copy, head) = &archive[&format!("{bucket1}/{key}")][0];
        assert_eq!(copy, bytes, "quarantined evidence is kept byte-exact");
        let reason = &head.metadata().unwrap()["trailvault-quarantine"];
        assert!(
            reason.starts_with("not valid gzip") || reason.starts_with("not a CloudTrail log file"),
            "{reason}"
        );
    }
    // The genuine files are archived and not quarantined.
    assert!(summary.contains("Duplicates 0"), "{summary}");
}

#[tokio::test]
async fn a_reader_role_without_read_access_parks_only_its_accounts_messages() {
    let emulator = PrivateEmulator::start();
    let mut ts = TestStack::up_at(&emulator.endpoint, "denied", 3, &[Delivery::S3]).await;
    ts.deliver(1, 2).await;
    let denied = ts.stack.members[1].clone();
    ts.admin(&denied.account)
        .await
        .iam()
        .delete_role_policy()
        .role_name("trailvault-reader")
        .policy_name("read-cloudtrail")
        .send()
        .await
        .unwrap();

    // With IAM enforced, the worker's own identity must be allowed everything it does: the
    // local user may only assume the worker role, whose policy is the one Terraform will deploy.
    emulator.enforce_iam();
    let (summary, stderr) = ts.drain();
    emulator.relax_iam();

    assert!(summary.contains("source_denied"), "{summary}\n{stderr}");
    // The worker's policy also covers keeping the bucket equal to the retention policy, and
    // signing and writing its manifest.
    assert!(
        stderr.contains("the archive bucket was made equal to the retention policy"),
        "{stderr}"
    );
    assert!(stderr.contains("manifest written"), "{stderr}");
    let archive = archived(&ts).await;
    for member in &ts.stack.members {
        let mine = archive
            .keys()
            .filter(|k| k.contains(&format!("/{}_CloudTrail", member.account)))
            .count();
        if member.account == denied.account {
            assert_eq!(mine, 0, "the denied account's files were archived");
        } else {
            assert_eq!(
                mine,
                2 * (2 + 1),
                "account {} archived {mine}",
                member.account
            );
        }
    }
    let parked: u64 = {
        let mut n = 0;
        for region in &ts.stack.regions {
            let (visible, in_flight, dead) = ts.depth(region).await;
            assert_eq!((visible, in_flight), (0, 0));
            n += dead;
        }
        n
    };
    assert_eq!(
        parked,
        2 * (2 + 1),
        "the denied account's notifications are in the dead-letter queues"
    );
}

/// A redelivered (or second) notification is checked as a first delivery is: a version at the
/// archive key that only carries the right `trailvault-sha256` (other bytes, or the right
/// bytes unencrypted by the archive key) is not taken as the archived copy: the genuine bytes
/// are kept beside it (the archive key is never rewritten), and verify names the planted
/// versions.
#[tokio::test]
async fn a_version_with_the_right_metadata_but_not_the_bytes_or_encryption_is_no_duplicate() {
    let mut ts = TestStack::up("forged-dup", 1, &[Delivery::S3]).await;
    ts.deliver(1, 2).await;
    let sources = ts.sources().await;
    let logs: Vec<_> = sources
        .iter()
        .filter(|(_, key, _, _)| key.contains("/CloudTrail/"))
        .take(2)
        .collect();
    let archive = ts.security().await.s3(&ts.stack.security.archive_region);
    let bucket = &ts.stack.security.archive_bucket;
    for (i, (source_bucket, key, bytes, _)) in logs.iter().enumerate() {
        let sha = sha256(bytes);
        let put = archive
            .put_object()
            .bucket(bucket)
            .key(format!("{source_bucket}/{key}"))
            .metadata("trailvault-sha256", &sha);
        let put = if i == 0 {
            // Other bytes, encrypted like a copy.
            put.body(ByteStream::from(b"forged".to_vec()))
                .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                .ssekms_key_id(&ts.stack.security.kms_key_arn)
        } else {
            // The very bytes, but not under the archive key.
            put.body(ByteStream::from(bytes.clone()))
                .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        };
        put.send().await.unwrap();
    }
    let (summary, _) = ts.drain();
    assert!(summary.contains("Duplicates 0, conflicts 2"), "{summary}");
    // The archive key is never rewritten: the genuine bytes are kept beside it, under the
    // archive key's encryption, and verify names what was planted.
    let mut expected = Vec::new();
    for (i, (source_bucket, key, bytes, _)) in logs.into_iter().enumerate() {
        let archive_key = format!("{source_bucket}/{key}");
        let kept_at = trailvault::archive::layout::conflict_key(&archive_key, &sha256(bytes));
        let (copy, head) = get(&archive, bucket, &kept_at).await;
        assert_eq!(&copy, bytes, "{key}: the genuine bytes are kept");
        assert_eq!(
            head.ssekms_key_id(),
            Some(ts.stack.security.kms_key_arn.as_str())
        );
        let (_, planted) = get(&archive, bucket, &archive_key).await;
        let location = format!("s3://{bucket}/{archive_key}");
        expected.push(format!(
            "Archive object\t{location}?versionId={}\tINVALID: no manifest lists this version",
            planted.version_id().unwrap()
        ));
        // The forged bytes of the first are not even gzip.
        if i == 0 {
            expected.push(format!("Log file\t{location}\tINVALID: invalid format"));
        }
    }
    expected.sort();
    let out = ts.verify();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut found: Vec<String> = stdout
        .lines()
        .filter(|l| l.contains("\tINVALID: "))
        .map(str::to_owned)
        .collect();
    found.sort();
    assert_eq!(found, expected, "{stdout}");
    assert_eq!(out.status.code(), Some(1));
}

/// Waits until the archive holds at least `n` versions, while `worker` runs.
async fn wait_for_archived(
    ts: &TestStack,
    n: usize,
    limit: Duration,
    worker: &mut std::process::Child,
) {
    let started = Instant::now();
    while ts.archive_versions().await.len() < n {
        if let Some(exit) = worker.try_wait().unwrap() {
            panic!("the worker exited ({exit}) before archiving {n} objects");
        }
        assert!(
            started.elapsed() < limit,
            "fewer than {n} objects archived after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every source object is in the archive exactly once, and the queues are empty.
async fn assert_all_archived_once(ts: &TestStack) {
    let sources = ts.sources().await;
    let versions = ts.archive_versions().await;
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, _) in &versions {
        *per_key.entry(key).or_default() += 1;
    }
    for (bucket, key, _, _) in &sources {
        assert_eq!(
            per_key.get(format!("{bucket}/{key}").as_str()),
            Some(&1),
            "{bucket}/{key}"
        );
    }
    assert_eq!(versions.len(), sources.len());
    for region in &ts.stack.regions {
        assert_eq!(ts.depth(region).await, (0, 0, 0), "{region}");
    }
}

#[tokio::test]
async fn killed_again_and_again_nothing_is_lost_archived_twice_or_left_unlisted() {
    let mut ts = TestStack::up("sigkill", 2, &[Delivery::S3]).await;
    // A short visibility timeout, so that what a killed worker held comes back quickly.
    ts.edit_config(|c| {
        c.replace(
            "visibility_timeout_secs = 60",
            "visibility_timeout_secs = 10",
        )
    });
    ts.deliver(2, 25).await;
    let total = ts.sources().await.len();

    // Three SIGKILLs (no chance to clean up), each once a few more objects are archived.
    for (round, at_least) in [(1, 10), (2, 20), (3, 30)] {
        let mut worker = ts
            .trailvault()
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_archived(&ts, at_least, Duration::from_secs(120), &mut worker).await;
        worker.kill().unwrap();
        worker.wait().unwrap();
        let archived = ts.archive_versions().await.len();
        assert!(
            archived < total,
            "round {round}: the worker finished before it could be killed"
        );
    }

    ts.drain();
    assert_all_archived_once(&ts).await;
    // Every version the killed workers wrote is listed in a signed manifest: a message was
    // deleted only once its versions were.
    let out = ts.verify();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report.contains("Everything checked is valid."), "{report}");
    assert!(!report.contains("no manifest lists"), "{report}");
}

#[tokio::test]
async fn sigterm_lets_copies_finish_hands_the_rest_back_and_exits_zero() {
    let mut ts = TestStack::up("sigterm", 2, &[Delivery::S3]).await;
    ts.edit_config(|c| c.replace("max_in_flight = 16", "max_in_flight = 4"));
    ts.deliver(2, 25).await;

    let mut worker = ts
        .trailvault()
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_archived(&ts, 10, Duration::from_secs(120), &mut worker).await;
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = worker.wait().unwrap();
    let mut stderr = String::new();
    worker
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(exit.success(), "exit {exit:?}\n{stderr}");
    assert!(
        signalled.elapsed() < Duration::from_secs(35),
        "took {:?} to stop",
        signalled.elapsed()
    );
    assert!(stderr.contains("stopping: no new messages"), "{stderr}");

    // The stopping replica listed what it archived in a signed manifest.
    let manifests: Vec<String> = ts
        .archive_versions_all()
        .await
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.starts_with(trailvault::archive::layout::MANIFESTS))
        .collect();
    assert_eq!(manifests, [trailvault::archive::layout::manifest_key(1)]);
    assert!(
        stderr.contains("manifest written"),
        "the manifest is written before exit: {stderr}"
    );

    // Nothing is left invisible: what was not finished was handed back at once.
    for region in &ts.stack.regions {
        let (_, in_flight, dead) = ts.depth(region).await;
        assert_eq!((in_flight, dead), (0, 0), "{region}");
    }
    // Every version written before the stop is complete and locked.
    let s3 = ts.security().await.s3(&ts.stack.security.archive_region);
    for (key, version) in ts.archive_versions().await {
        let head = s3
            .head_object()
            .bucket(&ts.stack.security.archive_bucket)
            .key(&key)
            .version_id(&version)
            .send()
            .await
            .unwrap();
        assert!(
            head.metadata().unwrap().contains_key("trailvault-sha256"),
            "{key}"
        );
        assert_eq!(
            head.object_lock_mode().map(|m| m.as_str()),
            Some("COMPLIANCE"),
            "{key}"
        );
    }
    ts.drain();
    assert_all_archived_once(&ts).await;

    // A second signal does not wait for the grace period: with a long grace and a large copy
    // in flight, the first SIGTERM waits for the copy, the second exits at once.
    ts.edit_config(|c| c.replace("shutdown_grace_secs = 10", "shutdown_grace_secs = 600"));
    let member = &ts.stack.members[0];
    let bucket = &member.buckets[0];
    let key = format!(
        "AWSLogs/{0}/CloudTrail-Insight/{1}/2026/11/01/{0}_CloudTrail-Insight_{1}_20261101T0005Z_SecondSignal0000.json.gz",
        member.account, bucket.region
    );
    let mut bytes = vec![0u8; 128 * 1024 * 1024];
    rand::rngs::StdRng::seed_from_u64(11).fill_bytes(&mut bytes);
    ts.admin(&member.account)
        .await
        .s3(&bucket.region)
        .put_object()
        .bucket(&bucket.name)
        .key(&key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .unwrap();
    ts.relay().await;
    let mut worker = ts
        .trailvault()
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The one message is received: its copy has started.
    loop {
        if ts.depth(&bucket.region).await.1 > 0 {
            break;
        }
        assert!(worker.try_wait().unwrap().is_none(), "the worker ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = worker.id().to_string();
    let term = || {
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
    };
    assert!(term().success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        worker.try_wait().unwrap().is_none(),
        "after one SIGTERM the worker waits for its copy"
    );
    assert!(term().success());
    let exit = worker.wait().unwrap();
    assert_eq!(exit.code(), Some(130), "the second signal exits at once");
    // What it held comes back after its visibility timeout; nothing is lost.
    ts.drain();
    assert_all_archived_once(&ts).await;
}

/// The peak resident set of a process, from the kernel's high-water mark.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

/// `run --until-empty`, sampling its resident set every 50 ms: its exit status, its summary
/// and the peak in KiB.
async fn drain_measuring_peak_rss(ts: &TestStack) -> (std::process::ExitStatus, String, u64) {
    let mut worker = ts
        .trailvault()
        .args(["run", "--until-empty"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = worker.id();
    let mut peak = 0;
    let exit = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(exit) = worker.try_wait().unwrap() {
            break exit;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut summary = String::new();
    worker
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut summary)
        .unwrap();
    (exit, summary, peak)
}

#[tokio::test]
async fn a_256_mib_object_streams_through_in_bounded_memory() {
    const SIZE: usize = 256 * 1024 * 1024;
    let ts = TestStack::up("large", 1, &[Delivery::S3]).await;
    // The copy takes longer than this: only the heartbeat keeps the message from coming back.
    ts.edit_config(|c| {
        c.replace(
            "visibility_timeout_secs = 60",
            "visibility_timeout_secs = 10",
        )
    });
    let member = &ts.stack.members[0];
    let bucket = member
        .buckets
        .iter()
        .find(|b| b.region == "us-east-1")
        .unwrap()
        .name
        .clone();
    let key = format!(
        "AWSLogs/{0}/CloudTrail-Insight/us-east-1/2026/11/01/{0}_CloudTrail-Insight_us-east-1_20261101T0005Z_LargeInsight0000.json.gz",
        member.account
    );
    let mut bytes = vec![0u8; SIZE];
    rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut bytes);
    let expected = sha256(&bytes);
    ts.admin(&member.account)
        .await
        .s3("us-east-1")
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .unwrap();
    ts.relay().await;

    let (exit, summary, peak) = drain_measuring_peak_rss(&ts).await;
    assert!(exit.success());
    // The object and the two buckets' s3:TestEvents, each received once: no redelivery.
    assert!(
        summary.contains("Messages: 3 received, 3 deleted (1 archived, 2 s3_test_event)"),
        "{summary}"
    );
    let (copy, head) = {
        let s3 = ts.security().await.s3(&ts.stack.security.archive_region);
        let (bytes, out) = get(
            &s3,
            &ts.stack.security.archive_bucket,
            &format!("{bucket}/{key}"),
        )
        .await;
        (bytes, out)
    };
    assert_eq!(copy.len(), SIZE);
    assert_eq!(sha256(&copy), expected);
    assert_eq!(head.metadata().unwrap()["trailvault-sha256"], expected);
    assert_eq!(
        head.object_lock_mode().map(|m| m.as_str()),
        Some("COMPLIANCE"),
        "locked after the multipart upload"
    );
    eprintln!(
        "peak RSS of the worker archiving a 256 MiB object: {:.1} MiB",
        peak as f64 / 1024.0
    );
    assert!(
        peak > 0 && peak < 100 * 1024,
        "peak RSS {peak} KiB is not far below 256 MiB"
    );
}

/// A gzip of `prefix`, then `n` bytes of `fill`, then `suffix`: a small file that expands to
/// a large one.
fn bomb(prefix: &str, fill: u8, n: usize, suffix: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(prefix.as_bytes()).unwrap();
    let chunk = vec![fill; 1 << 20];
    for _ in 0..n / chunk.len() {
        gz.write_all(&chunk).unwrap();
    }
    gz.write_all(suffix.as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// Hostile files in one run: gzip bombs whose JSON holds one enormous string (a value, a
/// key) or number, and a 1,024-byte key. Each is archived byte-exact and quarantined, and the
/// worker's memory stays far below what the decompressed strings would need (it reached
/// 4.7 GiB on one of them before).
#[tokio::test]
async fn hostile_files_are_quarantined_in_bounded_memory() {
    const GIB: usize = 1 << 30;
    let ts = TestStack::up("hostile", 1, &[Delivery::S3]).await;
    let member = &ts.stack.members[0];
    let bucket = &member
        .buckets
        .iter()
        .find(|b| b.region == "us-east-1")
        .unwrap()
        .name;
    let account = &member.account;
    let log_key = |unique: &str| {
        format!(
            "AWSLogs/{account}/CloudTrail/us-east-1/2026/11/01/{account}_CloudTrail_us-east-1_20261101T0005Z_{unique}.json.gz"
        )
    };
    let long_key = format!("AWSLogs/{}/x.json.gz", "k".repeat(1024 - 18));
    assert_eq!(long_key.len(), 1024);
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            log_key("HugeStringValue0"),
            bomb(r#"{"Records":[{"eventTime":""#, b'a', GIB, r#""}]}"#),
        ),
        (
            log_key("HugeStringKey000"),
            bomb(r#"{"Records":[{""#, b'b', GIB, r#"":1}]}"#),
        ),
        (
            log_key("HugeNumber000000"),
            bomb(r#"{"Records":[{"n":"#, b'9', GIB, "}]}"),
        ),
        (long_key, bomb("", b' ', 1 << 20, "")),
    ];
    let s3 = ts.admin(account).await.s3("us-east-1");
    for (key, bytes) in &files {
        assert!(bytes.len() < 8 << 20, "{key}: {} bytes", bytes.len());
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(bytes.clone()))
            .send()
            .await
            .unwrap();
    }
    ts.relay().await;

    let (exit, summary, peak) = drain_measuring_peak_rss(&ts).await;
    assert!(exit.success(), "{summary}");
    let archive = ts.security().await.s3(&ts.stack.security.archive_region);
    for (key, bytes) in &files[..3] {
        let (copy, head) = get(
            &archive,
            &ts.stack.security.archive_bucket,
            &format!("{bucket}/{key}"),
        )
        .await;
        assert_eq!(&copy, bytes, "{key}: byte-exact");
        let reason = &head.metadata().unwrap()["trailvault-quarantine"];
        assert!(
            reason.contains("longer than 1048576 bytes"),
            "{key}: {reason}"
        );
    }
    // The 1,024-byte key is no CloudTrail key: refused each time it comes, then moved to the
    // dead-letter queue by the redrive policy (maxReceiveCount 5).
    assert!(
        summary.contains(
            "Messages: 10 received, 5 deleted (3 archived, 2 s3_test_event), 5 returned."
        ),
        "{summary}"
    );
    assert_eq!(ts.depth("us-east-1").await, (0, 0, 1));
    eprintln!(
        "peak RSS of the worker on three 1 GiB gzip bombs and a 1,024-byte key: {:.1} MiB",
        peak as f64 / 1024.0
    );
    assert!(peak > 0 && peak < 100 * 1024, "peak RSS {peak} KiB");
}

#[tokio::test]
async fn metrics_and_healthz_report_what_the_run_did() {
    let mut ts = TestStack::up("metrics", 2, &[Delivery::S3]).await;
    ts.deliver(1, 4).await;
    let sources = ts.sources().await;
    let bytes: usize = sources.iter().map(|(_, _, b, _)| b.len()).sum();
    // Every S3-notified bucket also sent one s3:TestEvent.
    let messages = sources.len() + 4;

    let worker = RunningWorker::start(ts.trailvault());
    let address = worker.address.clone();

    let started = Instant::now();
    while http_get(&address, "/healthz").0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "never healthy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = loop {
        let (status, text) = http_get(&address, "/metrics");
        assert_eq!(status, 200);
        if metric(&text, "trailvault_messages_deleted_total", &[]) as usize == messages {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not all messages deleted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        metric(&text, "trailvault_messages_received_total", &[]) as usize,
        messages
    );
    assert_eq!(
        metric(
            &text,
            "trailvault_messages_deleted_total",
            &["outcome=\"s3_test_event\""]
        ),
        4.0
    );
    assert_eq!(
        metric(&text, "trailvault_objects_total", &["outcome=\"archived\""]) as usize,
        sources.len()
    );
    assert_eq!(
        metric(&text, "trailvault_objects_total", &["kind=\"digest\""]) as usize,
        2 * 2
    );
    assert_eq!(
        metric(&text, "trailvault_archived_bytes_total", &[]) as usize,
        bytes
    );
    assert_eq!(
        metric(&text, "trailvault_copy_duration_seconds_count", &[]) as usize,
        sources.len()
    );
    assert_eq!(
        metric(&text, "trailvault_notification_lag_seconds_count", &[]) as usize,
        sources.len()
    );
    assert_eq!(metric(&text, "trailvault_failures_total", &[]), 0.0);
    for queue in ["trailvault-us-east-1", "trailvault-eu-west-1"] {
        assert!(
            text.contains(&format!(
                "trailvault_queue_messages{{queue=\"{queue}\",state=\"visible\"}}"
            )),
            "{text}"
        );
    }
    let (status, body) = http_get(&address, "/healthz");
    assert_eq!(status, 200);
    assert!(
        body.contains("2 queue(s) and the archive bucket answer"),
        "{body}"
    );
    // The container's health check says the same.
    let healthcheck = |address: &str| {
        ts.trailvault()
            .args(["healthcheck", "--address", address])
            .output()
            .unwrap()
    };
    assert!(healthcheck(&address).status.success());

    let (status, log) = worker.stop();
    assert!(status.success());
    let gone = healthcheck(&address);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("unhealthy: cannot ask /healthz"),
        "{gone:?}"
    );

    // Every line is a JSON event, and no credential ever appears in one.
    let credentials = std::fs::read_to_string(ts.path().join("aws/credentials")).unwrap();
    let secret = credentials
        .lines()
        .find_map(|l| l.strip_prefix("aws_secret_access_key = "))
        .unwrap();
    assert!(log.len() > 10);
    for line in &log {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(!line.contains(secret), "a secret in the log: {line}");
    }
}

/// An organization with CloudTrail in every region has a queue per region, most of them
/// quiet. Their receivers' long polls must hold no copy slot, or the busy queues' backlog
/// waits for slots the quiet ones sit on (it once took 60-100 s instead of 1.6).
#[tokio::test]
async fn quiet_queues_hold_no_copy_slot_while_they_wait() {
    const QUIET: usize = 15;
    let mut ts = TestStack::up("quiet-queues", 1, &[Delivery::S3]).await;
    let security = ts.security().await;
    let mut quiet = String::new();
    for i in 0..QUIET {
        let region = &ts.stack.regions[i % ts.stack.regions.len()];
        let url = security
            .sqs(region)
            .create_queue()
            .queue_name(format!("{}-quiet-{i}", ts.stack.namespace))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        quiet += &format!("\n[[queues]]\nurl = \"{url}\"\nregion = \"{region}\"\n");
    }
    let queues = QUIET + ts.stack.regions.len();
    ts.edit_config(|c| {
        // The queues go before the first section that is not a queue, where TOML keeps them.
        let at = c
            .find("\n[[queues]]")
            .expect("the devstack's config names its queues");
        format!("{}{quiet}{}", &c[..at], &c[at..])
            .replace("max_in_flight = 16", "max_in_flight = 4")
            + "\n[manifest]\nperiod_secs = 5\n"
    });
    assert_eq!(ts.config().queues.len(), queues);
    let worker = RunningWorker::start(ts.trailvault());

    // Every queue's receive is waiting on SQS, and no slot is taken.
    let started = Instant::now();
    loop {
        let text = worker.metrics();
        if metric(&text, "trailvault_receives_waiting", &[]) == queues as f64 {
            assert_eq!(metric(&text, "trailvault_slots_in_use", &[]), 0.0, "{text}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the receivers did not all start waiting:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And so it stays while they wait (a long poll lasts 20 s).
    for _ in 0..10 {
        let text = worker.metrics();
        assert_eq!(metric(&text, "trailvault_slots_in_use", &[]), 0.0, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A backlog on the busy queues is served while the quiet ones keep waiting.
    ts.deliver(1, 30).await;
    let sources = ts.sources().await.len();
    let started = Instant::now();
    while ts.archive_versions().await.len() < sources {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{} of {sources} archived after 180 s",
            ts.archive_versions().await.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Deleted once a manifest lists them (within a manifest period: the run is not draining).
    let started = Instant::now();
    loop {
        let text = worker.metrics();
        let deleted = metric(&text, "trailvault_messages_deleted_total", &[]);
        let received = metric(&text, "trailvault_messages_received_total", &[]);
        if deleted > 0.0 && deleted == received {
            assert_eq!(metric(&text, "trailvault_slots_in_use", &[]), 0.0, "{text}");
            assert_eq!(
                metric(&text, "trailvault_end_to_end_seconds_count", &[]),
                deleted,
                "every delete is timed from its SentTimestamp"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "messages not deleted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (status, log) = worker.stop();
    assert!(status.success(), "{}", log.join("\n"));
    assert_all_archived_once(&ts).await;
}

/// What archiving costs in requests, counted on the wire by the fault proxy: S3's answer to
/// a single-part write proves it (no `HeadObject`), a receive and a delete serve up to ten
/// messages, and a manifest serves every message of a drain.
#[tokio::test]
async fn every_request_earns_its_place() {
    let mut ts = TestStack::up("requests", 2, &[Delivery::S3]).await;
    ts.deliver(2, 15).await;
    let sources = ts.sources().await.len();
    let proxy = common::FaultProxy::start(&ts.stack.endpoint);
    let emulator = ts.stack.endpoint.clone();
    ts.edit_config(|c| c.replace(&emulator, &proxy.url));
    let (summary, log) = ts.drain();
    let requests = proxy.requests();
    let total: u64 = requests.values().sum();
    println!(
        "{summary}\n{sources} objects, {total} requests ({:.2} per object):",
        total as f64 / sources as f64
    );
    for (op, n) in &requests {
        println!("  {op:60} {n:6} {:6.2}", *n as f64 / sources as f64);
    }
    assert_all_archived_once(&ts).await;
    let archive = &ts.stack.security.archive_bucket;
    let manifests = ts
        .archive_versions_all()
        .await
        .iter()
        .filter(|(key, _)| key.starts_with(trailvault::archive::layout::MANIFESTS))
        .count() as u64;
    let of = |op: &str| -> u64 {
        requests
            .iter()
            .filter(|(name, _)| name.as_str() == op || name.starts_with(&format!("{op}:")))
            .map(|(_, n)| n)
            .sum()
    };
    let on_archive = |op: &str| {
        requests
            .get(&format!("{op}:{archive}"))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(
        on_archive("HeadObject"),
        0,
        "a write's answer proves it\n{log}"
    );
    assert_eq!(on_archive("PutObject"), sources as u64 + manifests, "{log}");
    assert_eq!(
        of("GetObject") - on_archive("GetObject"),
        sources as u64,
        "one read per source"
    );
    // The receives and deletes serve several messages each.
    assert!(
        of("ReceiveMessage") * 10 < sources as u64 * 4,
        "receives: {} for {sources}",
        of("ReceiveMessage")
    );
    assert!(
        of("DeleteMessageBatch") * 10 < sources as u64 * 3,
        "deletes: {} for {sources}",
        of("DeleteMessageBatch")
    );
    // What grows with the objects: at most 2.5 requests each. The rest is what any run costs
    // (start-up, the bucket's policy, the credentials, the end of the drain): bounded.
    let growing = on_archive("PutObject")
        + (of("GetObject") - on_archive("GetObject"))
        + of("ReceiveMessage")
        + of("DeleteMessageBatch")
        + of("ChangeMessageVisibility")
        + of("HeadObject");
    assert!(
        growing as f64 / sources as f64 <= 2.5,
        "{growing} requests for {sources} objects"
    );
    assert!(total - growing <= 40, "{} for the run", total - growing);
}
