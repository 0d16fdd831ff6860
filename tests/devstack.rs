//! The simulated organization, checked against the emulator: its log files are CloudTrail log
//! files, its digests verify under CloudTrail's algorithm with the published keys (and stop
//! verifying when a byte changes), AWS's own validator agrees, every notification shape
//! reaches the queue of its region, and Insights files arrive and are announced like log files.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_s3::primitives::ByteStream;
use common::{get, list, TestStack};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use trailvault::cloudtrail::digest::{Digest, PublicKeyList};
use trailvault::cloudtrail::gzip::gunzip;
use trailvault::cloudtrail::key::{self, FileKind};
use trailvault_devstack::deliver;
use trailvault_devstack::state::{Delivery, Layout};

const CAP: u64 = 1 << 30;

/// Every member bucket's objects, read as the member's reader role through trailvault's own
/// clients (the worker role, then each account's reader role with its ExternalId).
async fn read_all(
    ts: &TestStack,
) -> Vec<(
    String,
    String,
    String,
    Vec<u8>,
    aws_sdk_s3::operation::get_object::GetObjectOutput,
)> {
    let config = ts.config();
    let aws = ts.worker().await;
    let mut out = Vec::new();
    for account in &config.accounts {
        let member = aws.member(account, &config.archive.region).await;
        for bucket in &account.buckets {
            let s3 = member.s3(&bucket.region);
            for (k, _) in list(&s3, bucket.name.as_str()).await {
                let (bytes, head) = get(&s3, bucket.name.as_str(), &k).await;
                out.push((
                    account.id.to_string(),
                    bucket.name.to_string(),
                    k,
                    bytes,
                    head,
                ));
            }
        }
    }
    out
}

#[tokio::test]
async fn log_files_are_cloudtrail_log_files_with_a_realistic_mix() {
    let mut ts = TestStack::up("logs", 3, &[Delivery::S3]).await;
    ts.deliver(2, 10).await;

    let mut identity_types = BTreeSet::new();
    let (mut mfa_logins, mut no_mfa_logins, mut denied, mut reads, mut writes) = (0, 0, 0, 0, 0);
    let (mut data, mut root, mut duplicates) = (0, 0, 0);
    let mut names = BTreeSet::new();
    let mut smallest = u64::MAX;
    let mut logs = 0;
    for (account, bucket, k, bytes, head) in read_all(&ts).await {
        let member = ts
            .stack
            .members
            .iter()
            .find(|m| m.account == account)
            .unwrap();
        let region = &member
            .buckets
            .iter()
            .find(|b| b.name == bucket)
            .unwrap()
            .region;
        let parsed = key::parse(&k).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.account, account, "{k}");
        assert_eq!(parsed.region, region, "{k}");
        match &member.layout {
            Layout::Plain => assert_eq!((parsed.prefix, parsed.organization_id), ("", None), "{k}"),
            Layout::Prefixed { prefix } => assert_eq!(parsed.prefix, format!("{prefix}/"), "{k}"),
            Layout::Organization { organization_id } => {
                assert_eq!(
                    parsed.organization_id,
                    Some(organization_id.as_str()),
                    "{k}"
                )
            }
        }
        assert_eq!(head.content_type(), Some("application/json"), "{k}");
        assert_eq!(head.content_encoding(), Some("gzip"), "{k}");
        if parsed.kind != FileKind::Log {
            assert_eq!(parsed.kind, FileKind::Digest, "{k}");
            continue;
        }
        logs += 1;
        smallest = smallest.min(bytes.len() as u64);
        let json = gunzip(&bytes, CAP).unwrap_or_else(|e| panic!("{k}: {e}"));
        let doc: Value = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{k}: {e}"));
        let records = doc
            .as_object()
            .and_then(|o| o.get("Records"))
            .and_then(Value::as_array);
        let records = records.unwrap_or_else(|| panic!("{k} is not {{\"Records\": [...]}}"));
        assert!(!records.is_empty(), "{k} has no records");
        let delivered = time::PrimitiveDateTime::parse(
            parsed.timestamp,
            time::macros::format_description!("[year][month][day]T[hour][minute]Z"),
        )
        .unwrap()
        .assume_utc();
        let mut ids = BTreeSet::new();
        for r in records {
            assert!(
                r["eventVersion"].as_str().unwrap().starts_with("1."),
                "{k}: {r}"
            );
            let at = time::OffsetDateTime::parse(
                r["eventTime"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            assert!(
                at < delivered + time::Duration::minutes(1),
                "{k}: an event after its delivery"
            );
            assert_eq!(r["recipientAccountId"], account.as_str(), "{k}");
            for field in [
                "eventSource",
                "eventName",
                "eventID",
                "eventType",
                "userIdentity",
            ] {
                assert!(!r[field].is_null(), "{k}: no {field} in {r}");
            }
            if !ids.insert(r["eventID"].as_str().unwrap().to_owned()) {
                duplicates += 1;
            }
            let who = r["userIdentity"]["type"]
                .as_str()
                .unwrap_or("(service event)");
            identity_types.insert(who.to_owned());
            root += usize::from(who == "Root");
            let name = r["eventName"].as_str().unwrap();
            names.insert(name.to_owned());
            if name == "ConsoleLogin" {
                match r["additionalEventData"]["MFAUsed"].as_str() {
                    Some("Yes") => mfa_logins += 1,
                    Some("No") => no_mfa_logins += 1,
                    other => panic!("{k}: ConsoleLogin with MFAUsed {other:?}"),
                }
            }
            if r["errorCode"]
                .as_str()
                .is_some_and(|c| c.contains("AccessDenied") || c.contains("UnauthorizedOperation"))
            {
                denied += 1;
            }
            match r["readOnly"].as_bool() {
                Some(true) => reads += 1,
                Some(false) => writes += 1,
                None => {}
            }
            data += usize::from(r["eventCategory"] == "Data");
        }
    }
    assert_eq!(logs, 3 * 2 * 10);
    let every_type = [
        "AWSAccount",
        "AWSService",
        "AssumedRole",
        "FederatedUser",
        "IAMUser",
        "IdentityCenterUser",
        "Root",
        "SAMLUser",
        "WebIdentityUser",
    ];
    for t in every_type {
        assert!(
            identity_types.contains(t),
            "no {t} identity in {identity_types:?}"
        );
    }
    assert!(
        mfa_logins > 0 && no_mfa_logins > 0,
        "console logins with MFA {mfa_logins}, without {no_mfa_logins}"
    );
    assert!(denied > 0 && reads > 0 && writes > 0 && data > 0 && root > 0 && duplicates > 0);
    // The changes CIS monitoring looks for are there.
    for group in [
        &["StopLogging", "UpdateTrail", "StartLogging"][..],
        &[
            "PutUserPolicy",
            "AttachRolePolicy",
            "CreatePolicyVersion",
            "DeleteRolePolicy",
        ],
        &["DisableKey", "ScheduleKeyDeletion"],
        &[
            "PutBucketPolicy",
            "PutBucketAcl",
            "PutBucketLifecycle",
            "PutBucketReplication",
            "DeleteBucketPolicy",
        ],
        &[
            "AuthorizeSecurityGroupIngress",
            "CreateNetworkAclEntry",
            "CreateRoute",
            "AttachInternetGateway",
            "CreateVpc",
        ],
    ] {
        assert!(
            group.iter().any(|n| names.contains(*n)),
            "none of {group:?}"
        );
    }
    assert!(smallest < 2048, "the smallest log file is {smallest} bytes");
}

/// A digest as read back from its bucket.
struct Fetched {
    key: String,
    decompressed: Vec<u8>,
    digest: Digest,
    signature: String,
}

#[tokio::test]
async fn digests_verify_with_the_published_keys_and_a_changed_byte_does_not() {
    let mut ts = TestStack::up("digest", 3, &[Delivery::S3]).await;
    ts.deliver(2, 6).await;
    // A second delivery continues every chain where the first ended.
    ts.deliver(2, 6).await;

    let mut keys = BTreeMap::new();
    for region in &ts.stack.regions {
        let file = std::fs::read(ts.path().join(format!("public-keys/{region}.json"))).unwrap();
        let list: PublicKeyList = serde_json::from_slice(&file).unwrap();
        keys.insert(region.clone(), list.keys().unwrap());
    }
    let everything = read_all(&ts).await;
    let mut by_bucket: BTreeMap<String, Vec<Fetched>> = BTreeMap::new();
    let mut log_hashes = BTreeMap::new();
    for (_, bucket, k, bytes, head) in &everything {
        let decompressed = gunzip(bytes, CAP).unwrap();
        match key::parse(k).unwrap().kind {
            FileKind::Log => {
                log_hashes.insert(
                    (bucket.clone(), k.clone()),
                    hex::encode(Sha256::digest(&decompressed)),
                );
            }
            _ => {
                let metadata = head.metadata().unwrap();
                assert_eq!(
                    metadata.get("signature-algorithm").map(String::as_str),
                    Some("SHA256withRSA")
                );
                by_bucket.entry(bucket.clone()).or_default().push(Fetched {
                    key: k.clone(),
                    digest: Digest::from_json(&decompressed).unwrap(),
                    decompressed,
                    signature: metadata
                        .get("signature")
                        .expect("x-amz-meta-signature")
                        .clone(),
                });
            }
        }
    }
    assert_eq!(by_bucket.len(), 6);

    let mut vouched = BTreeSet::new();
    for (bucket, mut digests) in by_bucket {
        assert_eq!(digests.len(), 4, "{bucket}");
        digests.sort_by(|a, b| a.digest.digest_end_time.cmp(&b.digest.digest_end_time));
        let region = &ts
            .stack
            .members
            .iter()
            .flat_map(|m| &m.buckets)
            .find(|b| b.name == bucket)
            .unwrap()
            .region;
        for (i, d) in digests.iter().enumerate() {
            assert_eq!(
                (
                    d.digest.digest_s3_bucket.as_str(),
                    d.digest.digest_s3_object.as_str()
                ),
                (bucket.as_str(), d.key.as_str())
            );
            let key = &keys[region][&d.digest.digest_public_key_fingerprint];
            let to_sign = d.digest.string_to_sign(&d.decompressed);
            key.verify(to_sign.as_bytes(), &d.signature)
                .unwrap_or_else(|e| panic!("{}: {e}", d.key));
            // The chain: nulls at the start, then each link names the digest before it.
            if i == 0 {
                assert!(
                    d.digest.previous_digest_signature.is_none()
                        && d.digest.previous_digest_s3_object.is_none()
                );
            } else {
                let prev = &digests[i - 1];
                assert_eq!(
                    d.digest.previous_digest_s3_object.as_deref(),
                    Some(prev.key.as_str())
                );
                assert_eq!(
                    d.digest.previous_digest_signature.as_deref(),
                    Some(prev.signature.as_str())
                );
                assert_eq!(
                    d.digest.previous_digest_hash_value.as_deref(),
                    Some(hex::encode(Sha256::digest(&prev.decompressed)).as_str())
                );
                assert_eq!(
                    d.digest.digest_start_time, prev.digest.digest_end_time,
                    "periods are contiguous"
                );
            }
            for log in &d.digest.log_files {
                let actual = &log_hashes[&(log.s3_bucket.clone(), log.s3_object.clone())];
                assert_eq!(&log.hash_value, actual, "{}", log.s3_object);
                assert!(
                    vouched.insert((log.s3_bucket.clone(), log.s3_object.clone())),
                    "listed twice"
                );
            }

            // One byte changed anywhere the signature covers, and it no longer verifies.
            let mut tampered = d.decompressed.clone();
            let at = tampered.len() / 2;
            tampered[at] ^= 0x01;
            assert!(key
                .verify(d.digest.string_to_sign(&tampered).as_bytes(), &d.signature)
                .is_err());
            let mut signature = d.signature.clone().into_bytes();
            signature[10] = if signature[10] == b'0' { b'1' } else { b'0' };
            let signature = String::from_utf8(signature).unwrap();
            assert!(key.verify(to_sign.as_bytes(), &signature).is_err());
            let mut moved = d.digest.clone();
            moved.digest_s3_object = format!("archive/{}", moved.digest_s3_object);
            assert!(key
                .verify(
                    moved.string_to_sign(&d.decompressed).as_bytes(),
                    &d.signature
                )
                .is_err());
        }
    }
    // Every log file is vouched for by exactly one digest.
    assert_eq!(vouched, log_hashes.keys().cloned().collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn the_aws_cli_validator_accepts_the_chains_and_catches_tampering() {
    let mut ts = TestStack::up("awscli", 3, &[Delivery::S3]).await;
    ts.deliver(2, 5).await;
    let validate = || {
        std::process::Command::new(common::venv_python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/aws_cli_validate.py"
            ))
            .arg(ts.path())
            .output()
            .expect("running the AWS CLI validator (infra/local/emulator setup creates its venv)")
    };
    let out = validate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout
            .matches(": 2/2 digest files valid, 5/5 log files valid")
            .count(),
        6,
        "{stdout}"
    );

    // A log file rewritten in place (a new version at the same key), and a digest whose
    // signature metadata lost one hex digit's worth of truth.
    let member = &ts.stack.members[0];
    let bucket = &member.buckets[0];
    let s3 = ts.admin(&member.account).await.s3(&bucket.region);
    let objects = list(&s3, &bucket.name).await;
    let log_key = &objects
        .iter()
        .find(|(k, _)| k.contains("/CloudTrail/"))
        .unwrap()
        .0;
    let (bytes, _) = get(&s3, &bucket.name, log_key).await;
    let mut json = gunzip(&bytes, CAP).unwrap();
    let at = json.iter().position(|b| *b == b'Z').unwrap();
    json[at] = b'z';
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &json).unwrap();
    s3.put_object()
        .bucket(&bucket.name)
        .key(log_key)
        .body(ByteStream::from(gz.finish().unwrap()))
        .send()
        .await
        .unwrap();
    let other = &ts.stack.members[1].buckets[1];
    let s3 = ts
        .admin(&ts.stack.members[1].account)
        .await
        .s3(&other.region);
    let digest_key = list(&s3, &other.name)
        .await
        .into_iter()
        .find(|(k, _)| k.contains("-Digest/"))
        .unwrap()
        .0;
    let (bytes, head) = get(&s3, &other.name, &digest_key).await;
    let mut signature = head.metadata().unwrap()["signature"].clone();
    let flipped = if signature.ends_with('0') { '1' } else { '0' };
    signature.pop();
    signature.push(flipped);
    s3.put_object()
        .bucket(&other.name)
        .key(&digest_key)
        .body(ByteStream::from(bytes))
        .metadata("signature", signature)
        .metadata("signature-algorithm", "SHA256withRSA")
        .send()
        .await
        .unwrap();

    let out = validate();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Log file\ts3://{}/{log_key}\tINVALID: hash value doesn't match",
            bucket.name
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "Digest file\ts3://{}/{digest_key}\tINVALID: signature verification failed",
            other.name
        )),
        "{stderr}"
    );
}

/// `application/x-www-form-urlencoded` decoding, as S3 event keys need.
fn form_decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn every_notification_shape_reaches_the_queue_of_its_region() {
    let mut ts = TestStack::up("notify", 2, &Delivery::ALL).await;
    ts.deliver(1, 3).await;
    let config = ts.config();
    let aws = ts.worker().await;

    // (bucket, key) of every object CloudTrail wrote.
    let mut written = BTreeSet::new();
    for m in &ts.stack.members {
        let session = ts.admin(&m.account).await;
        for b in &m.buckets {
            for (k, _) in list(&session.s3(&b.region), &b.name).await {
                written.insert((b.name.clone(), k));
            }
        }
    }
    assert_eq!(written.len(), 2 * 2 * (3 + 1));

    let mut shapes = BTreeMap::<&str, usize>::new();
    let mut announced = BTreeSet::new();
    for queue in &config.queues {
        let region = queue.url.region().as_str();
        let sqs = aws.sqs(queue.url.region());
        loop {
            let out = sqs
                .receive_message()
                .queue_url(queue.url.as_str())
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("ReceiveMessage as the worker role");
            if out.messages().is_empty() {
                break;
            }
            for m in out.messages() {
                let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                let (shape, refs) = classify(&body);
                *shapes.entry(shape).or_default() += 1;
                for (bucket, key) in refs {
                    let home = ts
                        .stack
                        .members
                        .iter()
                        .flat_map(|m| &m.buckets)
                        .find(|b| b.name == bucket)
                        .unwrap();
                    assert_eq!(home.region, region, "{bucket} notified the {region} queue");
                    announced.insert((bucket, key));
                }
                sqs.delete_message()
                    .queue_url(queue.url.as_str())
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    assert_eq!(
        announced, written,
        "every object, and only those, is announced"
    );
    for shape in [
        "s3",
        "sns(s3)",
        "eventbridge",
        "sns(cloudtrail)",
        "s3:TestEvent",
        "sns(s3:TestEvent)",
        "sns(CloudTrail validation message.)",
    ] {
        assert!(
            shapes.contains_key(shape),
            "no {shape} notification in {shapes:?}"
        );
    }
}

#[tokio::test]
async fn insights_files_are_delivered_and_announced_but_not_in_digests() {
    let mut ts = TestStack::up("insight", 2, &Delivery::ALL).await;
    let reports = deliver::deliver(
        &mut ts.stack,
        ts.dir.path(),
        &deliver::Options {
            start: None,
            hours: 2,
            files: 3,
            insights: 3,
        },
    )
    .await
    .expect("delivering CloudTrail files with Insights");
    assert_eq!(reports.len(), 2 * 2);
    for r in &reports {
        assert_eq!(
            (r.logs, r.insights, r.digests),
            (3, 3, 2),
            "{} {}",
            r.account,
            r.region
        );
    }

    // Every Insights file is a CloudTrail-Insight key of its account and region holding one
    // Insights event: its Start and End records.
    let mut insights = BTreeSet::new();
    let mut logs = BTreeSet::new();
    let mut listed = BTreeSet::new();
    let mut insight_types = BTreeSet::new();
    for (account, bucket, k, bytes, head) in read_all(&ts).await {
        let region = &ts
            .stack
            .members
            .iter()
            .flat_map(|m| &m.buckets)
            .find(|b| b.name == bucket)
            .unwrap()
            .region;
        let parsed = key::parse(&k).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (parsed.account, parsed.region),
            (account.as_str(), region.as_str())
        );
        let json = gunzip(&bytes, CAP).unwrap_or_else(|e| panic!("{k}: {e}"));
        match parsed.kind {
            FileKind::Log => {
                logs.insert((bucket, k));
            }
            FileKind::Digest => {
                let digest = Digest::from_json(&json).unwrap_or_else(|e| panic!("{k}: {e}"));
                for log in digest.log_files {
                    listed.insert((log.s3_bucket, log.s3_object));
                }
            }
            FileKind::Insight => {
                assert_eq!(head.content_type(), Some("application/json"), "{k}");
                assert_eq!(head.content_encoding(), Some("gzip"), "{k}");
                let doc: Value =
                    serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{k}: {e}"));
                let records = doc["Records"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{k} is not {{\"Records\": [...]}}"));
                assert_eq!(records.len(), 2, "{k}");
                let delivered = time::PrimitiveDateTime::parse(
                    parsed.timestamp,
                    time::macros::format_description!("[year][month][day]T[hour][minute]Z"),
                )
                .unwrap()
                .assume_utc();
                for (r, state) in records.iter().zip(["Start", "End"]) {
                    assert_eq!(r["eventType"], "AwsCloudTrailInsight", "{k}: {r}");
                    assert_eq!(r["eventCategory"], "Insight", "{k}: {r}");
                    assert_eq!(r["awsRegion"], region.as_str(), "{k}: {r}");
                    assert_eq!(r["recipientAccountId"], account.as_str(), "{k}: {r}");
                    assert_eq!(r["sharedEventID"], records[0]["sharedEventID"], "{k}");
                    assert!(r["eventVersion"].as_str().unwrap().starts_with("1."));
                    assert!(r["eventID"].as_str().is_some_and(|id| id.len() == 36));
                    let at = time::OffsetDateTime::parse(
                        r["eventTime"].as_str().unwrap(),
                        &time::format_description::well_known::Rfc3339,
                    )
                    .unwrap();
                    assert!(at < delivered, "{k}: an Insights event after its delivery");
                    let details = &r["insightDetails"];
                    assert_eq!(details["state"], state, "{k}: {r}");
                    for field in ["eventSource", "eventName"] {
                        assert!(details[field].is_string(), "{k}: no {field} in {r}");
                    }
                    assert!(
                        details["insightContext"]["statistics"]["baseline"]["average"].is_number()
                    );
                    insight_types.insert(details["insightType"].as_str().unwrap().to_owned());
                }
                assert_ne!(records[0]["eventID"], records[1]["eventID"], "{k}");
                insights.insert((bucket, k));
            }
        }
    }
    assert_eq!(insights.len(), 2 * 2 * 3);
    assert!(
        insight_types
            .iter()
            .all(|t| t == "ApiCallRateInsight" || t == "ApiErrorRateInsight"),
        "{insight_types:?}"
    );
    // AWS documents no digest coverage of Insights files: the digests list every log file and
    // nothing else.
    assert_eq!(listed, logs);

    // Every object, Insights files included, is announced on the queue of its region, whatever
    // the bucket's delivery.
    let config = ts.config();
    let aws = ts.worker().await;
    let mut announced = BTreeSet::new();
    let mut insight_shapes = BTreeSet::new();
    for queue in &config.queues {
        let sqs = aws.sqs(queue.url.region());
        loop {
            let out = sqs
                .receive_message()
                .queue_url(queue.url.as_str())
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("ReceiveMessage as the worker role");
            if out.messages().is_empty() {
                break;
            }
            for m in out.messages() {
                let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                let (shape, refs) = classify(&body);
                for (bucket, key) in refs {
                    if key.contains("/CloudTrail-Insight/") {
                        insight_shapes.insert(shape);
                    }
                    announced.insert((bucket, key));
                }
                sqs.delete_message()
                    .queue_url(queue.url.as_str())
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    assert!(
        insights.is_subset(&announced),
        "an Insights file was not announced"
    );
    assert_eq!(announced.len(), logs.len() + insights.len() + 2 * 2 * 2);
    assert_eq!(
        insight_shapes,
        BTreeSet::from(["s3", "sns(s3)", "eventbridge", "sns(cloudtrail)"])
    );
}

/// A notification's shape and the (bucket, key) pairs it names.
fn classify(body: &Value) -> (&'static str, Vec<(String, String)>) {
    if let Some(records) = body["Records"].as_array() {
        let refs = records
            .iter()
            .map(|r| {
                (
                    r["s3"]["bucket"]["name"].as_str().unwrap().to_owned(),
                    form_decode(r["s3"]["object"]["key"].as_str().unwrap()),
                )
            })
            .collect();
        return ("s3", refs);
    }
    if body["Event"] == "s3:TestEvent" {
        return ("s3:TestEvent", vec![]);
    }
    if body["detail-type"] == "Object Created" {
        let d = &body["detail"];
        let refs = vec![(
            d["bucket"]["name"].as_str().unwrap().to_owned(),
            d["object"]["key"].as_str().unwrap().to_owned(),
        )];
        return ("eventbridge", refs);
    }
    if body["Type"] == "Notification" {
        let message = body["Message"].as_str().unwrap();
        if message == "CloudTrail validation message." {
            return ("sns(CloudTrail validation message.)", vec![]);
        }
        let inner: Value = serde_json::from_str(message).unwrap();
        if let Some(keys) = inner["s3ObjectKey"].as_array() {
            let bucket = inner["s3Bucket"].as_str().unwrap();
            let refs = keys
                .iter()
                .map(|k| (bucket.to_owned(), k.as_str().unwrap().to_owned()))
                .collect();
            return ("sns(cloudtrail)", refs);
        }
        return match classify(&inner) {
            ("s3", refs) => ("sns(s3)", refs),
            ("s3:TestEvent", refs) => ("sns(s3:TestEvent)", refs),
            other => panic!("unexpected message in an SNS envelope: {other:?}"),
        };
    }
    panic!("unknown notification shape: {body}")
}
