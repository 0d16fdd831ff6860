//! Retention against the emulator: the archive bucket kept equal to the policy (plan, apply,
//! the worker's reconcile), every version's lock audited and fixed, legal holds, and source
//! cleanup that deletes only what the archive holds byte for byte.
//!
//! The emulator stores lifecycle rules but never runs them: these tests check the bucket's
//! configuration and trailvault's own decisions, not S3's expiry.

mod common;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, DefaultRetention, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockMode,
    ObjectLockRetentionMode, ObjectLockRule, Transition, TransitionStorageClass,
};
use common::TestStack;
use sha2::{Digest as _, Sha256};
use trailvault_devstack::state::Delivery;

/// Runs trailvault with `args`; returns (exit code, stdout, stderr).
fn cli(ts: &TestStack, args: &[&str]) -> (i32, String, String) {
    let out = ts
        .trailvault()
        .args(args)
        .output()
        .expect("running trailvault");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn archive_s3(ts: &TestStack) -> aws_sdk_s3::Client {
    ts.security().await.s3(&ts.stack.security.archive_region)
}

/// Sets the archive bucket's default retention by hand (`None`: no default at all).
async fn set_default_retention(
    ts: &TestStack,
    default: Option<(ObjectLockRetentionMode, i32, bool)>,
) {
    let mut conf =
        ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled);
    if let Some((mode, n, years)) = default {
        let d = DefaultRetention::builder().mode(mode);
        let d = if years { d.years(n) } else { d.days(n) };
        conf = conf.rule(
            ObjectLockRule::builder()
                .default_retention(d.build())
                .build(),
        );
    }
    archive_s3(ts)
        .await
        .put_object_lock_configuration()
        .bucket(&ts.stack.security.archive_bucket)
        .object_lock_configuration(conf.build())
        .send()
        .await
        .expect("PutObjectLockConfiguration by hand");
}

async fn default_retention(ts: &TestStack) -> Option<(String, i32, i32)> {
    let out = archive_s3(ts)
        .await
        .get_object_lock_configuration()
        .bucket(&ts.stack.security.archive_bucket)
        .send()
        .await
        .unwrap();
    let d = out
        .object_lock_configuration()?
        .rule()?
        .default_retention()?;
    Some((
        d.mode()?.as_str().to_owned(),
        d.days().unwrap_or(0),
        d.years().unwrap_or(0),
    ))
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn plan_apply_plan_and_the_worker_keep_the_bucket_equal_to_the_policy() {
    let ts = TestStack::up("retplan", 1, &[Delivery::S3]).await;
    let bucket = ts.stack.security.archive_bucket.clone();

    // A new archive bucket has the lock but none of the lifecycle rules.
    let (code, stdout, stderr) = cli(&ts, &["retention", "plan"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "+ lifecycle rule trailvault-retention: transition to DEEP_ARCHIVE: after 365 days"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "+ lifecycle rule trailvault-retention: expire current versions: after 2587 days"
        ),
        "{stdout}"
    );
    assert!(
        !stdout.contains("default retention"),
        "the lock is already right: {stdout}"
    );

    let (code, stdout, stderr) = cli(&ts, &["retention", "apply"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("The bucket now equals the policy"),
        "{stdout}"
    );
    let (code, stdout, _) = cli(&ts, &["retention", "plan"]);
    assert_eq!(
        (code, stdout.contains("The bucket is equal to the policy.")),
        (0, true),
        "{stdout}"
    );
    let (code, stdout, _) = cli(&ts, &["retention", "apply"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("already equals the policy; nothing changed"),
        "{stdout}"
    );

    // Drift by hand: a rule removed, a rule's days changed, a foreign rule, a weaker default.
    let s3 = archive_s3(&ts).await;
    let whole = || LifecycleRuleFilter::builder().prefix("").build();
    s3.put_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("trailvault-retention")
                        .status(ExpirationStatus::Enabled)
                        .filter(whole())
                        .transitions(
                            Transition::builder()
                                .days(30)
                                .storage_class(TransitionStorageClass::StandardIa)
                                .build(),
                        )
                        .transitions(
                            Transition::builder()
                                .days(90)
                                .storage_class(TransitionStorageClass::GlacierIr)
                                .build(),
                        )
                        .transitions(
                            Transition::builder()
                                .days(400)
                                .storage_class(TransitionStorageClass::DeepArchive)
                                .build(),
                        )
                        .expiration(LifecycleExpiration::builder().days(2587).build())
                        .noncurrent_version_expiration(
                            aws_sdk_s3::types::NoncurrentVersionExpiration::builder()
                                .noncurrent_days(30)
                                .build(),
                        )
                        .abort_incomplete_multipart_upload(
                            aws_sdk_s3::types::AbortIncompleteMultipartUpload::builder()
                                .days_after_initiation(7)
                                .build(),
                        )
                        .build()
                        .unwrap(),
                )
                .rules(
                    LifecycleRule::builder()
                        .id("someone-elses")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("tmp/").build())
                        .expiration(LifecycleExpiration::builder().days(1).build())
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    set_default_retention(&ts, Some((ObjectLockRetentionMode::Governance, 30, false))).await;

    let (code, stdout, _) = cli(&ts, &["retention", "plan"]);
    assert_eq!(code, 2, "{stdout}");
    let changes: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(['+', '-', '~']))
        .collect();
    assert_eq!(
        changes,
        [
            "- lifecycle rule someone-elses: applies to: prefix tmp/",
            "- lifecycle rule someone-elses: expire current versions: after 1 days",
            "- lifecycle rule someone-elses: status: Enabled",
            "+ lifecycle rule trailvault-delete-markers: applies to: whole bucket",
            "+ lifecycle rule trailvault-delete-markers: remove expired delete markers: yes",
            "+ lifecycle rule trailvault-delete-markers: status: Enabled",
            "~ lifecycle rule trailvault-retention: transition to DEEP_ARCHIVE: after 400 days -> after 365 days",
            "~ object lock default retention: GOVERNANCE 30 days -> COMPLIANCE 7 years",
        ],
        "{stdout}"
    );
    let (code, json, _) = cli(&ts, &["retention", "plan", "--json"]);
    assert_eq!(code, 2);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["equal"], false);
    assert_eq!(json["changes"].as_array().unwrap().len(), 8);
    assert_eq!(json["changes"][7]["bucket"], "GOVERNANCE 30 days");
    assert_eq!(json["changes"][7]["policy"], "COMPLIANCE 7 years");

    // The worker in report mode says so and changes nothing.
    ts.edit_config(|c| c.replace("years = 7\n", "years = 7\nreconcile = \"report\"\n"));
    let (summary, stderr) = ts.drain();
    assert!(summary.contains("Messages:"), "{summary}");
    assert!(
        stderr.contains("the archive bucket differs from the retention policy"),
        "{stderr}"
    );
    assert_eq!(
        cli(&ts, &["retention", "plan"]).0,
        2,
        "report mode changed the bucket"
    );

    // In enforce mode (the default) it makes the bucket equal before it archives anything.
    ts.edit_config(|c| c.replace("reconcile = \"report\"\n", ""));
    let (_, stderr) = ts.drain();
    assert!(
        stderr.contains("the archive bucket was made equal to the retention policy"),
        "{stderr}"
    );
    let (code, stdout, _) = cli(&ts, &["retention", "plan"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        default_retention(&ts).await,
        Some(("COMPLIANCE".to_owned(), 0, 7))
    );

    // A longer COMPLIANCE default on the bucket is never shortened to the policy.
    set_default_retention(&ts, Some((ObjectLockRetentionMode::Compliance, 10, true))).await;
    let (code, stdout, _) = cli(&ts, &["retention", "plan"]);
    assert_eq!(code, 2);
    assert!(
        stdout.contains(
            "~ object lock default retention: COMPLIANCE 10 years -> COMPLIANCE 7 years  \
             (apply refuses: 7 years is shorter than 10 years)"
        ),
        "{stdout}"
    );
    let (code, _, stderr) = cli(&ts, &["retention", "apply"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("refusing to change archive bucket")
            && stderr.contains("trailvault never weakens a COMPLIANCE default"),
        "{stderr}"
    );
    assert_eq!(
        default_retention(&ts).await,
        Some(("COMPLIANCE".to_owned(), 0, 10)),
        "the refusal changed nothing"
    );
}

#[tokio::test]
async fn audit_finds_locks_that_fall_short_and_fix_extends_them() {
    let mut ts = TestStack::up("retaudit", 1, &[Delivery::S3]).await;
    // Versions written past the worker will have no default retention to fall back on. (The
    // emulator changes a bucket's default retention only while the bucket is empty, so this
    // comes first; the worker only reports the drift.)
    set_default_retention(&ts, None).await;
    ts.edit_config(|c| c.replace("years = 7\n", "years = 7\nreconcile = \"report\"\n"));
    ts.deliver(1, 2).await;
    ts.drain();
    let archived = ts.archive_versions_all().await.len();
    assert!(archived >= 4);

    let (code, stdout, _) = cli(&ts, &["retention", "audit"]);
    assert_eq!(code, 0, "the worker's versions are all locked: {stdout}");
    assert!(
        stdout.contains(&format!("{archived} versions checked")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{archived} held, 0 without a lock")),
        "{stdout}"
    );

    // Versions written by hand, past the worker: one with no lock, one locked for a day, one
    // in GOVERNANCE mode.
    let s3 = archive_s3(&ts).await;
    let bucket = ts.stack.security.archive_bucket.clone();
    let put = |key: &'static str, lock: Option<(ObjectLockMode, i64)>| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let mut req = s3
                .put_object()
                .bucket(&bucket)
                .key(key)
                .body(ByteStream::from_static(b"written by hand"));
            if let Some((mode, secs)) = lock {
                req = req
                    .object_lock_mode(mode)
                    .object_lock_retain_until_date(DateTime::from_secs(now + secs));
            }
            req.send().await.unwrap().version_id().unwrap().to_owned()
        }
    };
    let unlocked = put("manual/unlocked", None).await;
    let short = put("manual/short", Some((ObjectLockMode::Compliance, 86_400))).await;
    let governance = put(
        "manual/governance",
        Some((ObjectLockMode::Governance, 20 * 365 * 86_400)),
    )
    .await;

    let (code, stdout, _) = cli(&ts, &["retention", "audit", "--prefix", "manual/"]);
    assert_eq!(code, 2, "{stdout}");
    let finding = |standing: &str, key: &str, version: &str| {
        stdout.lines().any(|l| {
            l.starts_with(&format!(
                "{standing}\ts3://{bucket}/{key}\tversion {version}\t"
            ))
        })
    };
    assert!(finding("missing", "manual/unlocked", &unlocked), "{stdout}");
    assert!(finding("short", "manual/short", &short), "{stdout}");
    assert!(
        finding("weaker_mode", "manual/governance", &governance),
        "{stdout}"
    );
    assert!(
        stdout.contains("3 versions checked")
            && stdout.contains("0 held, 1 without a lock, 1 short, 1 in GOVERNANCE"),
        "{stdout}"
    );
    // The whole archive: the worker's versions are still fine.
    let (code, json, _) = cli(&ts, &["retention", "audit", "--json"]);
    assert_eq!(code, 2);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["versions"], archived as u64 + 3);
    assert_eq!(report["standings"]["held"], archived as u64);
    assert_eq!(report["findings"].as_array().unwrap().len(), 3);

    let (code, stdout, _) = cli(&ts, &["retention", "audit", "--fix"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("Fixed 3, 0 fixes failed."), "{stdout}");
    let (code, stdout, _) = cli(&ts, &["retention", "audit"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{} held, 0 without a lock, 0 short, 0 in GOVERNANCE",
            archived + 3
        )),
        "{stdout}"
    );

    let seven_years = 7 * 365 * 86_400;
    for (key, version) in [
        ("manual/unlocked", &unlocked),
        ("manual/short", &short),
        ("manual/governance", &governance),
    ] {
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.object_lock_mode(),
            Some(&ObjectLockMode::Compliance),
            "{key}"
        );
        let until = head.object_lock_retain_until_date().unwrap().secs();
        let written = head.last_modified().unwrap().secs();
        assert!(until >= written + seven_years, "{key}: until {until}");
        // Never shortened: the GOVERNANCE version kept its 20 years.
        if key == "manual/governance" {
            assert!(until >= written + 20 * 365 * 86_400 - 60, "{key}");
        }
        // COMPLIANCE: nobody deletes it, not even the account's administrator.
        let refused = s3
            .delete_object()
            .bucket(&bucket)
            .key(key)
            .version_id(version)
            .send()
            .await;
        assert!(refused.is_err(), "{key} version {version} was deleted");
    }
    let after = ts.archive_versions_all().await;
    assert_eq!(after.len(), archived + 3, "nothing was deleted");
}

#[tokio::test]
async fn a_legal_hold_is_placed_listed_and_removed_and_blocks_deletion() {
    let ts = TestStack::up("rethold", 1, &[Delivery::S3]).await;
    // No default retention, so that only the hold stands between a version and its deletion.
    set_default_retention(&ts, None).await;
    let s3 = archive_s3(&ts).await;
    let bucket = ts.stack.security.archive_bucket.clone();
    let mut versions = Vec::new();
    for (key, body) in [
        ("case/a.json.gz", "a1"),
        ("case/a.json.gz", "a2"),
        ("case/b.json.gz", "b1"),
        ("other/c.json.gz", "c1"),
    ] {
        let out = s3
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
        versions.push((key, out.version_id().unwrap().to_owned()));
    }

    let (code, stdout, stderr) = cli(
        &ts,
        &[
            "hold",
            "put",
            "case/",
            "--reason",
            "INC-42: suspected key misuse",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("held\tcase/"))
            .count(),
        3,
        "{stdout}"
    );
    assert!(
        stderr.contains("legal hold placed"),
        "the audit log line: {stderr}"
    );
    assert!(stderr.contains("INC-42: suspected key misuse"), "{stderr}");

    let (code, json, _) = cli(&ts, &["hold", "list", "--json"]);
    assert_eq!(code, 0);
    let held: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(held.len(), 3, "{json}");
    for h in &held {
        assert!(h["key"].as_str().unwrap().starts_with("case/"));
        assert_eq!(h["reason"], "INC-42: suspected key misuse");
        assert!(
            h["by"]
                .as_str()
                .unwrap()
                .contains("assumed-role/trailvault-worker"),
            "who: {h}"
        );
        assert!(h["at"].as_str().unwrap().starts_with("20"), "when: {h}");
    }

    // Held: the version cannot be deleted, though nothing else locks it.
    let (key, version) = &versions[0];
    let refused = s3
        .delete_object()
        .bucket(&bucket)
        .key(*key)
        .version_id(version)
        .send()
        .await;
    assert!(refused.is_err(), "a held version was deleted");

    // A second hold keeps the first one's record.
    let (code, stdout, _) = cli(
        &ts,
        &["hold", "put", "case/b.json.gz", "--reason", "another case"],
    );
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("already held\tcase/b.json.gz"),
        "{stdout}"
    );
    assert!(stdout.contains("INC-42"), "{stdout}");

    // Released (a key, so only its two versions), the version can be deleted again.
    let (code, stdout, stderr) = cli(
        &ts,
        &[
            "hold",
            "remove",
            "case/a.json.gz",
            "--reason",
            "INC-42 closed",
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("released\tcase/a.json.gz"))
            .count(),
        2,
        "{stdout}"
    );
    assert!(
        stderr.contains("legal hold removed") && stderr.contains("INC-42 closed"),
        "{stderr}"
    );
    let (_, stdout, _) = cli(&ts, &["hold", "list"]);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("held\tcase/b.json.gz"), "{stdout}");
    s3.delete_object()
        .bucket(&bucket)
        .key(*key)
        .version_id(version)
        .send()
        .await
        .expect("released and unlocked, the version can be deleted");

    let (code, _, stderr) = cli(&ts, &["hold", "put", "nothing/here", "--reason", "x"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("nothing in archive bucket"), "{stderr}");
}

#[tokio::test]
async fn source_cleanup_deletes_only_what_the_archive_holds_byte_for_byte() {
    let mut ts = TestStack::up("retclean", 1, &[Delivery::S3]).await;
    ts.deliver(1, 3).await;
    ts.drain();
    let member = ts.stack.members[0].clone();
    let bucket = member.buckets[0].clone();
    let source = ts.admin(&member.account).await.s3(&bucket.region);

    // Without cleanup_after_days, the account is never cleaned.
    let (code, _, stderr) = cli(&ts, &["source-cleanup"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no account sets cleanup_after_days"),
        "{stderr}"
    );
    ts.edit_config(|c| {
        c.replace(
            &format!("name = \"{}\"\n", member.name),
            &format!("name = \"{}\"\ncleanup_after_days = 0\n", member.name),
        )
    });

    // Three files the archive cannot vouch for: one never archived (its notification never
    // relayed), one rewritten after archiving, one that is not CloudTrail's.
    let listed = common::list(&source, &bucket.name).await;
    let rewritten = listed
        .iter()
        .map(|(k, _)| k.clone())
        .find(|k| k.contains("/CloudTrail/"))
        .unwrap();
    // The same name with another 16-character unique suffix.
    let unarchived = format!(
        "{}NeverArchived000.json.gz",
        &rewritten[..rewritten.len() - 24]
    );
    for (key, body) in [
        (unarchived.as_str(), b"never archived".to_vec()),
        (rewritten.as_str(), b"rewritten after archiving".to_vec()),
        ("README.txt", b"not a CloudTrail file".to_vec()),
    ] {
        source
            .put_object()
            .bucket(&bucket.name)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }
    let versions_before = source_versions(&source, &bucket.name).await;

    // A dry run decides, deletes nothing.
    let (code, stdout, stderr) = cli(&ts, &["source-cleanup", "--account", &member.name]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("This was a dry run"), "{stdout}");
    assert_eq!(
        source_versions(&source, &bucket.name).await,
        versions_before
    );

    let (code, json, stderr) = cli(
        &ts,
        &[
            "source-cleanup",
            "--account",
            &member.account,
            "--execute",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let decisions = report["decisions"].as_array().unwrap();
    let kept: Vec<(String, String)> = decisions
        .iter()
        .filter(|d| d["outcome"] == "kept")
        .map(|d| {
            (
                d["key"].as_str().unwrap().to_owned(),
                d["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut kept_sorted = kept.clone();
    kept_sorted.sort();
    let mut expected = vec![
        (unarchived.clone(), "not_archived".to_owned()),
        (rewritten.clone(), "archive_differs".to_owned()),
        ("README.txt".to_owned(), "not_cloudtrail".to_owned()),
    ];
    expected.sort();
    assert_eq!(kept_sorted, expected, "{json}");
    let deleted = decisions
        .iter()
        .filter(|d| d["outcome"] == "deleted" && d["bucket"] == bucket.name.as_str())
        .count();
    assert_eq!(deleted, versions_before.len() - 3, "{json}");

    // What is left in the source is exactly what was kept; every deleted file's bytes are
    // in the archive.
    let left = source_versions(&source, &bucket.name).await;
    assert_eq!(left.len(), 3);
    let mut left_keys: Vec<String> = left.iter().map(|(k, _)| k.clone()).collect();
    left_keys.sort();
    let mut kept_keys: Vec<String> = kept.iter().map(|(k, _)| k.clone()).collect();
    kept_keys.sort();
    assert_eq!(left_keys, kept_keys);
    let archive = archive_s3(&ts).await;
    for d in decisions.iter().filter(|d| d["outcome"] == "deleted") {
        let key = format!(
            "{}/{}",
            d["bucket"].as_str().unwrap(),
            d["key"].as_str().unwrap()
        );
        let (bytes, _) = common::get(&archive, &ts.stack.security.archive_bucket, &key).await;
        // The archive's current version of a rewritten key holds the first bytes.
        assert_eq!(sha256(&bytes), d["sha256"].as_str().unwrap(), "{key}");
    }

    // Nothing more to do the second time; the kept ones stay kept.
    let (code, stdout, _) = cli(&ts, &["source-cleanup", "--execute"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("3 source versions old enough: 0 deleted"),
        "{stdout}"
    );
}

/// How a version was written into the archive by hand, as someone with write access to the
/// archive bucket could.
struct ByHand {
    bytes: Vec<u8>,
    /// What `trailvault-sha256` claims.
    claimed_sha256: String,
    /// What `trailvault-archived-at` claims.
    stamp: time::OffsetDateTime,
    lock: (ObjectLockRetentionMode, time::OffsetDateTime),
    /// SHA-256 (S3 keeps a full-object checksum), else CRC32 (it keeps no SHA-256).
    sha256_checksum: bool,
    multipart: bool,
}

async fn write_by_hand(ts: &TestStack, key: &str, v: ByHand) {
    use aws_sdk_s3::types::{
        ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectLockRetention,
        ServerSideEncryption,
    };
    let s3 = archive_s3(ts).await;
    let bucket = &ts.stack.security.archive_bucket;
    let kms = &ts.stack.security.kms_key_arn;
    let stamp = v
        .stamp
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let algorithm = if v.sha256_checksum {
        ChecksumAlgorithm::Sha256
    } else {
        ChecksumAlgorithm::Crc32
    };
    let (mode, until) = v.lock;
    if !v.multipart {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(v.bytes))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(kms)
            .metadata("trailvault-sha256", &v.claimed_sha256)
            .metadata("trailvault-archived-at", &stamp)
            .object_lock_mode(ObjectLockMode::from(mode.as_str()))
            .object_lock_retain_until_date(DateTime::from_secs(until.unix_timestamp()))
            .checksum_algorithm(algorithm)
            .send()
            .await
            .expect("PutObject by hand");
        return;
    }
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(kms)
        .metadata("trailvault-sha256", &v.claimed_sha256)
        .metadata("trailvault-archived-at", &stamp)
        .checksum_algorithm(algorithm.clone())
        .send()
        .await
        .expect("CreateMultipartUpload by hand");
    let id = upload.upload_id().unwrap();
    let mut parts = Vec::new();
    for (i, chunk) in v.bytes.chunks(5 * 1024 * 1024).enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(chunk.to_vec()))
            .checksum_algorithm(algorithm.clone())
            .send()
            .await
            .expect("UploadPart by hand");
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .set_checksum_sha256(out.checksum_sha256().map(str::to_owned))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("CompleteMultipartUpload by hand");
    // The emulator drops lock headers given to a multipart upload (as the worker knows).
    s3.put_object_retention()
        .bucket(bucket)
        .key(key)
        .retention(
            ObjectLockRetention::builder()
                .mode(mode)
                .retain_until_date(DateTime::from_secs(until.unix_timestamp()))
                .build(),
        )
        .send()
        .await
        .expect("PutObjectRetention by hand");
}

/// Source cleanup trusts neither a lock that falls short of the policy nor metadata that a
/// writer to the archive chose: each hand-written archive version below would have let the
/// old cleanup delete the genuine original.
#[tokio::test]
async fn source_cleanup_trusts_only_s3s_own_checksum_and_the_whole_policy() {
    use ObjectLockRetentionMode::{Compliance, Governance};
    let mut ts = TestStack::up("retforge", 1, &[Delivery::S3]).await;
    ts.deliver(1, 2).await;
    ts.drain();
    let member = ts.stack.members[0].clone();
    let bucket = member.buckets[0].clone();
    let source = ts.admin(&member.account).await.s3(&bucket.region);
    ts.edit_config(|c| {
        c.replace(
            &format!("name = \"{}\"\n", member.name),
            &format!("name = \"{}\"\ncleanup_after_days = 0\n", member.name),
        )
    });
    let mut archived = Vec::new();
    for b in &member.buckets {
        let s3 = ts.admin(&member.account).await.s3(&b.region);
        archived.extend(common::list(&s3, &b.name).await.into_iter().map(|(k, _)| k));
    }
    let template = archived
        .iter()
        .find(|k| k.contains("/CloudTrail/") && k.contains(&bucket.region))
        .unwrap()
        .clone();
    // The same name with another 16-character unique suffix.
    let name = |tag: &str| format!("{}{tag:0<16}.json.gz", &template[..template.len() - 24]);

    let now = time::OffsetDateTime::now_utc();
    let tomorrow = now + time::Duration::days(1);
    // Past seven calendar years (at most 2,557 days) from now.
    let whole_policy = now + time::Duration::days(2560);
    let small = |tag: &str| format!("{{\"Records\":[],\"case\":\"{tag}\"}}").into_bytes();
    let large: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let other = |bytes: &[u8]| {
        let mut b = bytes.to_vec();
        b[0] ^= 0xff;
        b
    };
    type Expected = (&'static str, Option<&'static str>, Option<&'static str>);
    // A source file, and its archive key's one version as written by hand.
    let case = |source: Vec<u8>,
                archive: Vec<u8>,
                lock: (ObjectLockRetentionMode, time::OffsetDateTime),
                stamp: time::OffsetDateTime,
                sha256_checksum: bool| {
        let by_hand = ByHand {
            bytes: archive,
            claimed_sha256: sha256(&source),
            stamp,
            lock,
            sha256_checksum,
            multipart: source.len() > 5 * 1024 * 1024,
        };
        (source, by_hand)
    };
    type Case = (&'static str, (Vec<u8>, ByHand), Expected);
    let cases: Vec<Case> = vec![
        (
            "GovTomorrow",
            case(small("g"), small("g"), (Governance, tomorrow), now, true),
            ("kept", Some("archive_lock_weaker"), None),
        ),
        (
            "CompTomorrow",
            case(small("c"), small("c"), (Compliance, tomorrow), now, true),
            ("kept", Some("archive_lock_short"), None),
        ),
        // Stamped as archived six years ago, locked for two more: the stamp is not S3's.
        (
            "Backdated",
            case(
                small("b"),
                small("b"),
                (Compliance, now + time::Duration::days(730)),
                now - time::Duration::days(6 * 365),
                true,
            ),
            ("kept", Some("archive_lock_short"), None),
        ),
        (
            "ForgedSha256",
            case(
                small("f"),
                other(&small("f")),
                (Compliance, whole_policy),
                now,
                true,
            ),
            ("kept", Some("archive_differs"), None),
        ),
        (
            "ForgedCrc32",
            case(
                small("k"),
                other(&small("k")),
                (Compliance, whole_policy),
                now,
                false,
            ),
            ("kept", Some("archive_differs"), None),
        ),
        (
            "ForgedMultipart",
            case(
                large.clone(),
                other(&large),
                (Compliance, whole_policy),
                now,
                true,
            ),
            ("kept", Some("archive_differs"), None),
        ),
        (
            "GenuineMultipart",
            case(
                large.clone(),
                large.clone(),
                (Compliance, whole_policy),
                now,
                true,
            ),
            ("deleted", None, Some("read_back")),
        ),
        (
            "GenuineCrc32",
            case(
                small("r"),
                small("r"),
                (Compliance, whole_policy),
                now,
                false,
            ),
            ("deleted", None, Some("read_back")),
        ),
    ];
    let mut expected = std::collections::BTreeMap::new();
    for (tag, (source_bytes, by_hand), outcome) in cases {
        let key = name(tag);
        source
            .put_object()
            .bucket(&bucket.name)
            .key(&key)
            .body(ByteStream::from(source_bytes))
            .send()
            .await
            .unwrap();
        write_by_hand(&ts, &format!("{}/{key}", bucket.name), by_hand).await;
        expected.insert(key, outcome);
    }
    // What the worker archived goes, vouched for by S3's stored SHA-256.
    for key in &archived {
        expected.insert(key.clone(), ("deleted", None, Some("s3_checksum")));
    }

    let (code, json, stderr) = cli(&ts, &["source-cleanup", "--execute", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    type Owned = (String, Option<String>, Option<String>);
    let got: std::collections::BTreeMap<String, Owned> = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = |f: &str| d[f].as_str().map(str::to_owned);
            (
                d["key"].as_str().unwrap().to_owned(),
                (s("outcome").unwrap(), s("reason"), s("byte_check")),
            )
        })
        .collect();
    let want: std::collections::BTreeMap<String, Owned> = expected
        .iter()
        .map(|(k, (o, r, b))| {
            let s = |v: &Option<&str>| v.map(str::to_owned);
            (k.clone(), (o.to_string(), s(r), s(b)))
        })
        .collect();
    assert_eq!(got, want, "{json}");
    for d in report["decisions"].as_array().unwrap() {
        let check = match d["reason"].as_str() {
            Some("archive_differs") => Some("bytes"),
            Some(_) => Some("lock"),
            None => None,
        };
        assert_eq!(d["check"].as_str(), check, "{d}");
        // A deleted file names the archive version that vouched for it.
        assert_eq!(
            d["archive_version_id"].is_string(),
            d["outcome"] == "deleted",
            "{d}"
        );
    }
    let weaker = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["reason"] == "archive_lock_weaker")
        .unwrap();
    assert!(
        weaker["detail"]
            .as_str()
            .unwrap()
            .contains("locked in GOVERNANCE mode"),
        "{weaker}"
    );
    let mut left: Vec<String> = source_versions(&source, &bucket.name)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    left.sort();
    let kept: Vec<String> = expected
        .iter()
        .filter(|(_, (outcome, _, _))| *outcome == "kept")
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(left, kept);

    // The text report names the check that kept each file.
    let (code, stdout, _) = cli(&ts, &["source-cleanup"]);
    assert_eq!(code, 0);
    let line = stdout
        .lines()
        .find(|l| l.contains(&name("ForgedMultipart")))
        .unwrap();
    assert!(
        line.starts_with("kept\t") && line.contains("\tbytes check: archive_differs: "),
        "{line}"
    );
    assert!(
        stdout.contains("6 source versions old enough: 0 would be deleted, 6 kept"),
        "{stdout}"
    );
}

/// Every version in a source bucket: (key, version id).
async fn source_versions(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, String)> {
    let out = s3
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let mut v: Vec<(String, String)> = out
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap().to_owned(),
                v.version_id().unwrap_or("null").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}
