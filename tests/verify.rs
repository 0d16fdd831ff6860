//! `trailvault verify` against the emulator, on a devstack organization archived by the
//! worker: an untouched archive verifies fully; each way of tampering with it is found and
//! named; offline keys give the same verdicts as KMS.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write as _;

use aws_sdk_s3::primitives::ByteStream;
use common::TestStack;
use sha2::{Digest as _, Sha256};
use trailvault_devstack::state::Delivery;

/// A member account whose CloudTrail delivered `hours` of logs, archived by the worker in
/// `runs` runs (one manifest each).
async fn archived(tag: &str, hours: u32, runs: u32) -> TestStack {
    let mut ts = TestStack::up(tag, 1, &[Delivery::S3]).await;
    for _ in 0..runs {
        ts.deliver(hours, 2).await;
        ts.drain();
    }
    ts
}

/// `trailvault verify` with the devstack's CloudTrail keys file; (exit code, stdout, stderr).
fn verify(ts: &TestStack, args: &[&str]) -> (i32, String, String) {
    let out = ts
        .trailvault()
        .arg("verify")
        .arg("--public-keys")
        .arg(ts.path().join("public-keys"))
        .args(args)
        .output()
        .expect("running trailvault verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lines of a report that are not `valid`.
fn invalid(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.contains("\tINVALID: "))
        .map(str::to_owned)
        .collect()
}

/// `invalid`, sorted: for comparing the exact set of lines a tampering must produce.
fn invalid_sorted(stdout: &str) -> Vec<String> {
    let mut lines = invalid(stdout);
    lines.sort();
    lines
}

/// The lines that say no manifest lists the versions of a manifest's `entries`.
fn unlisted_lines(ts: &TestStack, entries: &[serde_json::Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            format!(
                "Archive object\t{}?versionId={}\tINVALID: no manifest lists this version",
                location(ts, e["archiveKey"].as_str().unwrap()),
                e["versionId"].as_str().unwrap()
            )
        })
        .collect()
}

async fn archive(ts: &TestStack) -> aws_sdk_s3::Client {
    ts.security().await.s3(&ts.stack.security.archive_region)
}

/// Current archive keys containing `part`, sorted.
async fn keys_with(ts: &TestStack, part: &str) -> Vec<String> {
    let s3 = archive(ts).await;
    let mut keys: Vec<String> = common::list(&s3, &ts.stack.security.archive_bucket)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.contains(part))
        .collect();
    keys.sort();
    keys
}

/// Writes a new version over `key` with `bytes` and `metadata` (the way a tamperer with write
/// access would: Object Lock keeps the old version, but a plain GET now returns this one).
/// Returns the new version's id.
async fn overwrite(
    ts: &TestStack,
    key: &str,
    bytes: Vec<u8>,
    metadata: HashMap<String, String>,
) -> String {
    archive(ts)
        .await
        .put_object()
        .bucket(&ts.stack.security.archive_bucket)
        .key(key)
        .body(ByteStream::from(bytes))
        .set_metadata(Some(metadata))
        .send()
        .await
        .expect("writing over an archived object")
        .version_id()
        .unwrap()
        .to_owned()
}

/// Hides `key` behind a delete marker (Object Lock allows that much); returns the marker's
/// version id.
async fn delete(ts: &TestStack, key: &str) -> String {
    archive(ts)
        .await
        .delete_object()
        .bucket(&ts.stack.security.archive_bucket)
        .key(key)
        .send()
        .await
        .expect("a delete marker")
        .version_id()
        .unwrap()
        .to_owned()
}

/// What verify says of a file a delete marker hides.
fn hidden(marker: &str) -> String {
    format!(
        "hidden by a delete marker (versionId={marker}): plain reads find nothing; the version \
         is still there, remove the marker"
    )
}

/// An organization whose archive locks in GOVERNANCE mode from the start (before anything is
/// archived), so that a test can delete versions for good, as an insider allowed to bypass
/// governance retention could. The worker's policy says GOVERNANCE too.
async fn governance(tag: &str) -> TestStack {
    let ts = TestStack::up(tag, 1, &[Delivery::S3]).await;
    use aws_sdk_s3::types as t;
    archive(&ts)
        .await
        .put_object_lock_configuration()
        .bucket(&ts.stack.security.archive_bucket)
        .object_lock_configuration(
            t::ObjectLockConfiguration::builder()
                .object_lock_enabled(t::ObjectLockEnabled::Enabled)
                .rule(
                    t::ObjectLockRule::builder()
                        .default_retention(
                            t::DefaultRetention::builder()
                                .mode(t::ObjectLockRetentionMode::Governance)
                                .years(7)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("GOVERNANCE default retention on the empty archive");
    ts.edit_config(|c| c.replace("mode = \"COMPLIANCE\"", "mode = \"GOVERNANCE\""));
    ts
}

/// Every version of `key`: (version id, S3's time).
async fn versions_of(ts: &TestStack, key: &str) -> Vec<(String, i64)> {
    let out = archive(ts)
        .await
        .list_object_versions()
        .bucket(&ts.stack.security.archive_bucket)
        .prefix(key)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .filter(|v| v.key() == Some(key))
        .map(|v| {
            (
                v.version_id().unwrap().to_owned(),
                v.last_modified().unwrap().secs(),
            )
        })
        .collect()
}

/// Deletes every version of `key` for good (bypassing GOVERNANCE retention); returns their
/// ids.
async fn destroy(ts: &TestStack, key: &str) -> Vec<String> {
    let mut gone = Vec::new();
    for (version, _) in versions_of(ts, key).await {
        archive(ts)
            .await
            .delete_object()
            .bucket(&ts.stack.security.archive_bucket)
            .key(key)
            .version_id(&version)
            .bypass_governance_retention(true)
            .send()
            .await
            .expect("a permanent delete, bypassing GOVERNANCE");
        gone.push(version);
    }
    assert!(versions_of(ts, key).await.is_empty(), "{key} is gone");
    gone
}

/// The lines of a report that are INVALID or UNVERIFIED, sorted.
fn reported(stdout: &str) -> Vec<String> {
    let mut lines: Vec<String> = stdout
        .lines()
        .filter(|l| l.contains("\tINVALID: ") || l.contains("\tUNVERIFIED: "))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// The log files (archive keys) a digest lists.
async fn listed_by(ts: &TestStack, digest: &str) -> Vec<String> {
    let (bytes, _) = read(ts, digest).await;
    let d: serde_json::Value = serde_json::from_slice(&gunzip(&bytes)).unwrap();
    d["logFiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{}/{}",
                l["s3Bucket"].as_str().unwrap(),
                l["s3Object"].as_str().unwrap()
            )
        })
        .collect()
}

/// Writes `bytes` at `key` in the member's bucket of `region`, as its administrator would, and
/// archives it (notification relayed, worker drained).
async fn member_writes(ts: &TestStack, region: &str, key: &str, bytes: Vec<u8>) {
    let bucket = ts.member_bucket(0, region);
    ts.admin(&ts.stack.members[0].account)
        .await
        .s3(region)
        .put_object()
        .bucket(&bucket)
        .key(key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .expect("a member administrator's PutObject");
    ts.relay().await;
    ts.drain();
}

/// The source key (bucket and key) behind an archive key, split.
fn source(archive_key: &str) -> (&str, &str) {
    archive_key.split_once('/').unwrap()
}

async fn read(ts: &TestStack, key: &str) -> (Vec<u8>, HashMap<String, String>) {
    let (bytes, out) =
        common::get(&archive(ts).await, &ts.stack.security.archive_bucket, key).await;
    (bytes, out.metadata().cloned().unwrap_or_default())
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    trailvault::cloudtrail::gzip::gunzip(bytes, 1 << 30).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn location(ts: &TestStack, key: &str) -> String {
    format!("s3://{}/{key}", ts.stack.security.archive_bucket)
}

#[tokio::test]
async fn an_untouched_archive_verifies_fully_online_and_offline() {
    let ts = archived("vfyclean", 2, 2).await;
    let (code, stdout, stderr) = verify(&ts, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(invalid(&stdout).is_empty(), "{stdout}");
    // 1 account x 2 regions x 2 runs x 2 hours: 8 digests; 2 logs per region and run: 8.
    assert!(stdout.contains("8/8 digest files valid"), "{stdout}");
    assert!(stdout.contains("8/8 log files valid"), "{stdout}");
    assert!(stdout.contains("2/2 manifests valid"), "{stdout}");
    assert!(
        stdout.contains("0 archive version(s) listed by no manifest"),
        "{stdout}"
    );
    assert!(stdout.contains("Everything checked is valid."), "{stdout}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("Digest file\t") && l.ends_with("\tvalid"))
            .count(),
        8
    );

    let (code, json, _) = verify(&ts, &["--json"]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["digests"]["valid"], 8);
    assert_eq!(report["manifests"]["total"], 2);
    assert_eq!(report["unlisted_versions"], 0);

    // Offline: the manifest key as PEM, CloudTrail's from the file; no KMS call. Same report.
    let pem = ts.path().join("manifest.pem");
    let out = ts
        .trailvault()
        .args(["manifest", "public-key", "--out"])
        .arg(&pem)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&pem)
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    let (code, offline, _) = verify(&ts, &["--manifest-public-key", pem.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(offline, stdout);

    // A scope: one region only.
    let region = &ts.stack.regions[0];
    let (code, stdout, _) = verify(&ts, &["--region", region]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("4/4 digest files valid"), "{stdout}");
    assert!(stdout.contains("4/4 log files valid"), "{stdout}");

    // Without a keys file, CloudTrail is asked; the emulator has no ListPublicKeys, and the
    // error says how to give the keys instead.
    let out = ts.trailvault().arg("verify").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("cannot get CloudTrail's public keys in")
            && stderr.contains("--public-keys FILE"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_log_file_whose_bytes_changed_is_found_online_and_offline() {
    let ts = archived("vfylogchg", 2, 1).await;
    let log = keys_with(&ts, "/CloudTrail/").await.remove(0);
    let (bytes, metadata) = read(&ts, &log).await;
    let mut json = gunzip(&bytes);
    let at = json.len() / 2;
    json[at] = if json[at] == b'a' { b'b' } else { b'a' };
    let version = overwrite(&ts, &log, gzip(&json), metadata).await;

    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    // The changed file, and its version, written over an archived one that a manifest lists.
    assert_eq!(
        reported(&stdout),
        [
            format!(
                "Archive object\t{}?versionId={version}\tINVALID: no manifest lists this version",
                location(&ts, &log)
            ),
            format!(
                "Log file\t{}\tINVALID: hash value doesn't match",
                location(&ts, &log)
            )
        ],
        "{stdout}"
    );
    assert!(stdout.contains("3/4 log files valid"), "{stdout}");

    let pem = ts.path().join("manifest.pem");
    ts.trailvault()
        .args(["manifest", "public-key", "--out"])
        .arg(&pem)
        .status()
        .unwrap();
    let (code, offline, _) = verify(&ts, &["--manifest-public-key", pem.to_str().unwrap()]);
    assert_eq!(
        (code, offline),
        (1, stdout),
        "offline gives the same verdicts"
    );
}

#[tokio::test]
async fn a_log_file_hidden_by_a_delete_marker_is_found() {
    let ts = archived("vfylogdel", 2, 1).await;
    let log = keys_with(&ts, "/CloudTrail/").await.remove(3);
    let marker = delete(&ts, &log).await;
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        reported(&stdout),
        [format!(
            "Log file\t{}\tINVALID: {}",
            location(&ts, &log),
            hidden(&marker)
        )],
        "{stdout}"
    );
}

#[tokio::test]
async fn a_listed_version_deleted_for_good_is_found() {
    let mut ts = governance("vfygone").await;
    ts.deliver(2, 2).await;
    ts.drain();
    let log = keys_with(&ts, "/CloudTrail/").await.remove(1);
    let gone = destroy(&ts, &log).await;
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        reported(&stdout),
        [
            format!(
                "Archive object\t{}?versionId={}\tINVALID: listed in manifest 1 but not in the \
                 archive",
                location(&ts, &log),
                gone[0]
            ),
            format!("Log file\t{}\tINVALID: not found", location(&ts, &log)),
        ],
        "{stdout}"
    );
}

#[tokio::test]
async fn a_digest_hidden_by_a_delete_marker_is_found_and_still_checked() {
    let ts = archived("vfydighid", 3, 1).await;
    let region = &ts.stack.regions[0];
    let digests = keys_with(&ts, &format!("/CloudTrail-Digest/{region}/")).await;
    assert_eq!(digests.len(), 3, "{digests:?}");
    let marker = delete(&ts, &digests[1]).await;
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    // Only the marker: the hidden digest is still read, so its chain and its logs hold.
    assert_eq!(
        reported(&stdout),
        [format!(
            "Digest file\t{}\tINVALID: {}",
            location(&ts, &digests[1]),
            hidden(&marker)
        )],
        "{stdout}"
    );
    assert!(stdout.contains("5/6 digest files valid"), "{stdout}");
    assert!(stdout.contains("4/4 log files valid"), "{stdout}");
}

#[tokio::test]
async fn a_digest_deleted_for_good_is_found_from_the_chain() {
    let mut ts = governance("vfydigdel").await;
    ts.deliver(3, 2).await;
    ts.drain();
    let region = &ts.stack.regions[0];
    // The middle one of a chain of three: its successor names it.
    let digests = keys_with(&ts, &format!("/CloudTrail-Digest/{region}/")).await;
    assert_eq!(digests.len(), 3, "{digests:?}");
    let logs = listed_by(&ts, &digests[1]).await;
    let gone = destroy(&ts, &digests[1]).await;
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    // The digest (named by its successor), its version (listed by a manifest), and the log
    // files only it vouched for.
    let mut expected = vec![
        format!(
            "Digest file\t{}\tINVALID: not found",
            location(&ts, &digests[1])
        ),
        format!(
            "Archive object\t{}?versionId={}\tINVALID: listed in manifest 1 but not in the \
             archive",
            location(&ts, &digests[1]),
            gone[0]
        ),
    ];
    for key in logs {
        expected.push(format!(
            "Log file\t{}\tINVALID: not listed in any digest",
            location(&ts, &key)
        ));
    }
    expected.sort();
    assert_eq!(reported(&stdout), expected, "{stdout}");
}

#[tokio::test]
async fn a_digest_replaced_by_a_fake_signed_with_another_key_is_found() {
    use rsa::pkcs1v15::Pkcs1v15Sign;
    let ts = archived("vfydigfake", 3, 1).await;
    let region = &ts.stack.regions[0];
    let digests = keys_with(&ts, &format!("/CloudTrail-Digest/{region}/")).await;
    let target = &digests[1];
    let (bytes, mut metadata) = read(&ts, target).await;
    // The fake vouches for one log file fewer, and is signed the way CloudTrail signs, with
    // a key of the forger's own.
    let mut digest: serde_json::Value = serde_json::from_slice(&gunzip(&bytes)).unwrap();
    let dropped = digest["logFiles"].as_array_mut().unwrap().pop().unwrap();
    let fake = serde_json::to_vec(&digest).unwrap();
    let parsed = trailvault::cloudtrail::digest::Digest::from_json(&fake).unwrap();
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let signature = key
        .sign(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(parsed.string_to_sign(&fake).as_bytes()),
        )
        .unwrap();
    metadata.insert("signature".to_owned(), hex::encode(signature));
    let version = overwrite(&ts, target, gzip(&fake), metadata).await;

    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    let found = invalid(&stdout);
    assert!(
        found.contains(&format!(
            "Digest file\t{}\tINVALID: signature verification failed",
            location(&ts, target)
        )),
        "{stdout}"
    );
    // Its successor's link names it too.
    assert!(
        found.contains(&format!(
            "Digest file\t{}\tINVALID: previousDigestHashValue does not match the previous digest {} found in the archive",
            location(&ts, &digests[2]),
            location(&ts, target)
        )),
        "{stdout}"
    );
    // And the log file it no longer lists is listed by nothing.
    let dropped = format!(
        "{}/{}",
        dropped["s3Bucket"].as_str().unwrap(),
        dropped["s3Object"].as_str().unwrap()
    );
    assert!(
        found.contains(&format!(
            "Log file\t{}\tINVALID: not listed in any digest",
            location(&ts, &dropped)
        )),
        "{stdout}"
    );
    // And its version, written over an archived one.
    assert!(
        found.contains(&format!(
            "Archive object\t{}?versionId={version}\tINVALID: no manifest lists this version",
            location(&ts, target)
        )),
        "{stdout}"
    );
    assert_eq!(found.len(), 4, "{stdout}");
}

#[tokio::test]
async fn one_changed_byte_of_a_digest_signature_is_found() {
    let ts = archived("vfysigbyte", 2, 1).await;
    let digest = keys_with(&ts, "/CloudTrail-Digest/").await.remove(0);
    let (bytes, mut metadata) = read(&ts, &digest).await;
    let signature = metadata.get_mut("signature").unwrap();
    let first = if signature.starts_with('0') { "1" } else { "0" };
    signature.replace_range(0..1, first);
    let version = overwrite(&ts, &digest, bytes, metadata).await;

    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    // The digest, its successor's link to it, and the version written over the archived one.
    let (account, region) = {
        let parts: Vec<&str> = digest.split('/').collect();
        let at = parts.iter().position(|p| *p == "AWSLogs").unwrap();
        (parts[at + 1].to_owned(), parts[at + 3].to_owned())
    };
    let chain = keys_with(
        &ts,
        &format!("AWSLogs/{account}/CloudTrail-Digest/{region}/"),
    )
    .await;
    let successor = &chain[chain.iter().position(|k| *k == digest).unwrap() + 1];
    let mut expected = vec![
        format!(
            "Archive object\t{}?versionId={version}\tINVALID: no manifest lists this version",
            location(&ts, &digest)
        ),
        format!(
            "Digest file\t{}\tINVALID: signature verification failed",
            location(&ts, &digest)
        ),
        format!(
            "Digest file\t{}\tINVALID: previousDigestSignature does not match the signature of the previous digest {}",
            location(&ts, successor),
            location(&ts, &digest)
        ),
    ];
    expected.sort();
    assert_eq!(invalid_sorted(&stdout), expected, "{stdout}");
}

#[tokio::test]
async fn a_planted_log_file_no_digest_lists_is_found() {
    let ts = archived("vfyplant", 2, 1).await;
    // A well-formed CloudTrail log file, named for the first hour, that CloudTrail never wrote.
    let real = keys_with(&ts, "/CloudTrail/").await.remove(0);
    let planted = format!("{}PlantedPlanted00.json.gz", &real[..real.len() - 24]);
    overwrite(
        &ts,
        &planted,
        gzip(br#"{"Records":[{"eventVersion":"1.11","eventName":"ConsoleLogin"}]}"#),
        HashMap::new(),
    )
    .await;
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        invalid(&stdout),
        [format!(
            "Log file\t{}\tINVALID: not listed in any digest",
            location(&ts, &planted)
        )],
        "{stdout}"
    );
}

#[tokio::test]
async fn a_manifest_with_an_entry_removed_is_found() {
    let ts = archived("vfymanent", 2, 1).await;
    let key = trailvault::archive::layout::manifest_key(1);
    let (bytes, metadata) = read(&ts, &key).await;
    let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let removed = manifest["entries"].as_array_mut().unwrap().remove(0);
    overwrite(
        &ts,
        &key,
        serde_json::to_vec_pretty(&manifest).unwrap(),
        metadata,
    )
    .await;

    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    // The manifest, and every version it listed (the removed one included): nothing vouches
    // for them any more. Nothing else.
    let mut entries = manifest["entries"].as_array().unwrap().clone();
    entries.push(removed);
    let mut expected = unlisted_lines(&ts, &entries);
    expected.push(format!(
        "Manifest\t{}\tINVALID: signature verification failed",
        location(&ts, &key)
    ));
    expected.sort();
    assert_eq!(invalid_sorted(&stdout), expected, "{stdout}");
}

#[tokio::test]
async fn an_altered_manifest_signature_is_found() {
    let ts = archived("vfymansig", 2, 2).await;
    let key = trailvault::archive::layout::manifest_key(2);
    let (bytes, mut metadata) = read(&ts, &key).await;
    let signature = metadata.get_mut("signature").unwrap();
    let last = signature.len() - 1;
    let flipped = if signature.ends_with('0') { "1" } else { "0" };
    signature.replace_range(last.., flipped);
    overwrite(&ts, &key, bytes.clone(), metadata).await;

    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    // The manifest, and the versions only it listed (the second run's).
    let (first, _) = read(&ts, &trailvault::archive::layout::manifest_key(1)).await;
    let first: serde_json::Value = serde_json::from_slice(&first).unwrap();
    let listed_first: HashSet<(String, String)> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["archiveKey"].to_string(), e["versionId"].to_string()))
        .collect();
    let second: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let only_second: Vec<serde_json::Value> = second["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            !listed_first.contains(&(e["archiveKey"].to_string(), e["versionId"].to_string()))
        })
        .cloned()
        .collect();
    assert!(!only_second.is_empty());
    let mut expected = unlisted_lines(&ts, &only_second);
    expected.push(format!(
        "Manifest\t{}\tINVALID: signature verification failed",
        location(&ts, &key)
    ));
    expected.sort();
    assert_eq!(invalid_sorted(&stdout), expected, "{stdout}");
    assert!(stdout.contains("1/2 manifests valid"), "{stdout}");
}

#[tokio::test]
async fn a_manifest_chain_truncated_in_the_middle_is_found() {
    let mut ts = governance("vfytrunc").await;
    for _ in 0..3 {
        ts.deliver(1, 2).await;
        ts.drain();
    }
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("3/3 manifests valid"), "{stdout}");

    let middle = trailvault::archive::layout::manifest_key(2);
    let (bytes, _) = read(&ts, &middle).await;
    let gone: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    destroy(&ts, &middle).await;
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    // The missing manifest, and the versions only it listed.
    let mut expected = unlisted_lines(&ts, gone["entries"].as_array().unwrap());
    expected.push(format!(
        "Manifest\t{}\tINVALID: not found (the chain is broken between 1 and 3)",
        location(&ts, &middle)
    ));
    expected.sort();
    assert_eq!(invalid_sorted(&stdout), expected, "{stdout}");
    assert!(stdout.contains("2/3 manifests valid"), "{stdout}");
}

#[tokio::test]
async fn two_replicas_append_to_one_unbroken_chain() {
    let mut ts = TestStack::up("vfyrepl", 2, &[Delivery::S3]).await;
    ts.deliver(2, 10).await;
    let spawn = || {
        ts.trailvault()
            .args(["run", "--until-empty"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());

    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("2/2 manifests valid"), "{stdout}");
    assert!(
        stdout.contains("0 archive version(s) listed by no manifest"),
        "{stdout}"
    );
    // One manifest from each replica, the second chained to the first.
    let (first, _) = read(&ts, &trailvault::archive::layout::manifest_key(1)).await;
    let (second, _) = read(&ts, &trailvault::archive::layout::manifest_key(2)).await;
    let first: serde_json::Value = serde_json::from_slice(&first).unwrap();
    let second: serde_json::Value = serde_json::from_slice(&second).unwrap();
    assert_ne!(first["writer"], second["writer"]);
    assert_eq!(
        second["previousManifestKey"],
        trailvault::archive::layout::manifest_key(1).as_str()
    );
}

#[tokio::test]
async fn delete_markers_on_the_newest_digest_and_its_logs_are_found() {
    let ts = archived("vfyhidnew", 2, 1).await;
    let region = &ts.stack.regions[0];
    let digests = keys_with(&ts, &format!("/CloudTrail-Digest/{region}/")).await;
    let newest = digests.last().unwrap().clone();
    let logs = listed_by(&ts, &newest).await;
    let mut expected = vec![format!(
        "Digest file\t{}\tINVALID: {}",
        location(&ts, &newest),
        hidden(&delete(&ts, &newest).await)
    )];
    assert!(!logs.is_empty());
    for log in logs {
        expected.push(format!(
            "Log file\t{}\tINVALID: {}",
            location(&ts, &log),
            hidden(&delete(&ts, &log).await)
        ));
    }
    expected.sort();
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!((code, reported(&stdout)), (1, expected), "{stdout}");
}

#[tokio::test]
async fn a_delete_marker_on_the_newest_manifest_is_found() {
    let ts = archived("vfyhidman", 1, 2).await;
    let newest = trailvault::archive::layout::manifest_key(2);
    let marker = delete(&ts, &newest).await;
    let (code, stdout, _) = verify(&ts, &[]);
    // The manifest is still read: what it lists stays listed.
    assert_eq!(
        (code, reported(&stdout)),
        (
            1,
            vec![format!(
                "Manifest\t{}\tINVALID: {}",
                location(&ts, &newest),
                hidden(&marker)
            )]
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("0 archive version(s) listed by no manifest"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_digest_copied_to_another_key_is_found() {
    let ts = archived("vfydigmov", 2, 1).await;
    let digest = keys_with(&ts, "/CloudTrail-Digest/").await.remove(0);
    let (bytes, metadata) = read(&ts, &digest).await;
    // The same folder, a name one second later: a digest CloudTrail never wrote there.
    let at = digest.rfind("Z.json.gz").unwrap();
    let last = digest.as_bytes()[at - 1];
    let moved = format!(
        "{}{}{}",
        &digest[..at - 1],
        if last == b'9' {
            '8'
        } else {
            (last + 1) as char
        },
        &digest[at..]
    );
    overwrite(&ts, &moved, bytes, metadata).await;
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(
        (code, reported(&stdout)),
        (
            1,
            vec![format!(
                "Digest file\t{}\tINVALID: has been moved from its original location",
                location(&ts, &moved)
            )]
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_manifest_replayed_at_another_number_is_found() {
    let ts = archived("vfymanrep", 1, 2).await;
    let (bytes, metadata) = read(&ts, &trailvault::archive::layout::manifest_key(1)).await;
    let replayed = trailvault::archive::layout::manifest_key(3);
    overwrite(&ts, &replayed, bytes, metadata).await;
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(
        (code, reported(&stdout)),
        (
            1,
            vec![format!(
                "Manifest\t{}\tINVALID: has been moved from its original location",
                location(&ts, &replayed)
            )]
        ),
        "{stdout}"
    );
    assert!(stdout.contains("2/3 manifests valid"), "{stdout}");
}

/// The time in a CloudTrail key's file name, as verify prints times.
fn stamp(key: &str) -> String {
    let (_, source_key) = source(key);
    trailvault::archive::layout::rfc3339(
        trailvault::cloudtrail::key::parse(source_key)
            .unwrap()
            .time()
            .unwrap(),
    )
}

/// The digests folder of a digest's key: `.../CloudTrail-Digest/REGION/`.
fn chain_folder(digest: &str) -> String {
    format!("{}/", digest.rsplitn(5, '/').nth(4).unwrap())
}

fn stale_chain_line(ts: &TestStack, head: &str, end: &str, latest: &str) -> String {
    format!(
        "Digest chain\t{}\tINVALID: stale: its newest digest ends at {end}, but log files of \
         this account and region delivered up to {latest} are in the archive (allowance 3h); the \
         digests after it are missing: deleted, or log file validation was turned off",
        location(ts, &chain_folder(head))
    )
}

const AFTER_STALE_HEAD: &str = "UNVERIFIED: newer than its trail's newest digest, and the \
                                digests after that are missing (see the Digest chain line)";

#[tokio::test]
async fn a_digest_chain_truncated_at_its_tail_is_stale() {
    let mut ts = governance("vfydigtail").await;
    ts.deliver(7, 7).await;
    ts.drain();
    let region = &ts.stack.regions[0];
    let digests = keys_with(&ts, &format!("/CloudTrail-Digest/{region}/")).await;
    assert_eq!(digests.len(), 7, "{digests:?}");
    let head = &digests[0];
    let kept = listed_by(&ts, head).await;
    let mut expected = Vec::new();
    for d in &digests[1..] {
        for version in destroy(&ts, d).await {
            expected.push(format!(
                "Archive object\t{}?versionId={version}\tINVALID: listed in manifest 1 but not \
                 in the archive",
                location(&ts, d)
            ));
        }
    }
    let logs: Vec<String> = keys_with(&ts, &format!("/CloudTrail/{region}/"))
        .await
        .into_iter()
        .filter(|l| !kept.contains(l))
        .collect();
    let latest = logs.iter().map(|l| stamp(l)).max().unwrap();
    for log in &logs {
        expected.push(format!(
            "Log file\t{}\t{AFTER_STALE_HEAD}",
            location(&ts, log)
        ));
    }
    let (bytes, _) = read(&ts, head).await;
    let d: serde_json::Value = serde_json::from_slice(&gunzip(&bytes)).unwrap();
    expected.push(stale_chain_line(
        &ts,
        head,
        d["digestEndTime"].as_str().unwrap(),
        &latest,
    ));
    expected.sort();
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!((code, reported(&stdout)), (1, expected), "{stdout}");
}

#[tokio::test]
async fn a_manifest_chain_truncated_at_its_tail_is_stale() {
    let mut ts = governance("vfymantail").await;
    ts.edit_config(|c| format!("{c}\n[manifest]\nperiod_secs = 5\n"));
    for _ in 0..2 {
        ts.deliver(1, 2).await;
        ts.drain();
    }
    let newest = trailvault::archive::layout::manifest_key(2);
    let (bytes, _) = read(&ts, &newest).await;
    let gone: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    destroy(&ts, &newest).await;
    // Within the allowance the versions it listed may still be waiting for their manifest;
    // past it (here 0s beyond the 5 s period), the head is stale.
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!((code, reported(&stdout)), (0, vec![]), "{stdout}");
    std::thread::sleep(std::time::Duration::from_secs(7));
    let (code, stdout, _) = verify(&ts, &["--allowance", "0s"]);
    let entries = gone["entries"].as_array().unwrap();
    let mut expected = unlisted_lines(&ts, entries);
    let first = versions_of(&ts, &trailvault::archive::layout::manifest_key(1)).await;
    let written = trailvault::archive::layout::rfc3339(
        time::OffsetDateTime::from_unix_timestamp(first[0].1).unwrap(),
    );
    expected.push(format!(
        "Manifest chain\t{}\tINVALID: stale: {} archive version(s) written since the newest \
         manifest ({written}) are listed by no manifest, though one is written every 5s \
         (allowance 0s); later manifests are missing (deleted), or the worker cannot write them \
         (see its logs)",
        location(&ts, trailvault::archive::layout::MANIFESTS),
        entries.len()
    ));
    expected.sort();
    assert_eq!((code, reported(&stdout)), (1, expected), "{stdout}");
}

#[tokio::test]
async fn a_head_the_account_has_long_outlived_is_stale() {
    let ts = archived("vfystale", 2, 1).await;
    let region = ts.stack.regions[0].clone();
    let digests = keys_with(&ts, &format!("/CloudTrail-Digest/{region}/")).await;
    let head = digests.last().unwrap();
    let (bytes, _) = read(&ts, head).await;
    let d: serde_json::Value = serde_json::from_slice(&gunzip(&bytes)).unwrap();
    let end = d["digestEndTime"].as_str().unwrap().to_owned();
    // The account goes on delivering, but no digest comes any more: six hours on, a log file
    // (as CloudTrail names it after validation is turned off, or its digests deleted at the
    // source before trailvault saw them).
    let log = keys_with(&ts, &format!("/CloudTrail/{region}/"))
        .await
        .remove(0);
    let (bytes, _) = read(&ts, &log).await;
    let at = time::OffsetDateTime::parse(&end, &time::format_description::well_known::Rfc3339)
        .unwrap()
        + time::Duration::hours(6);
    let name_stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}Z",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute()
    );
    let (_, source_key) = source(&log);
    let old_stamp = source_key.rsplit('_').nth(1).unwrap();
    let later = source_key.replace(old_stamp, &name_stamp);
    assert_eq!(later.matches(&name_stamp).count(), 1, "{later}");
    member_writes(&ts, &region, &later, bytes).await;
    let later_archived = format!("{}/{later}", source(&log).0);
    let mut expected = vec![
        stale_chain_line(&ts, head, &end, &stamp(&later_archived)),
        format!(
            "Log file\t{}\t{AFTER_STALE_HEAD}",
            location(&ts, &later_archived)
        ),
    ];
    expected.sort();
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!((code, reported(&stdout)), (1, expected), "{stdout}");
}

/// An Insights file's key beside a log file's, as CloudTrail names them.
fn insight_key(log_source_key: &str) -> String {
    log_source_key
        .replace("/CloudTrail/", "/CloudTrail-Insight/")
        .replace("_CloudTrail_", "_CloudTrail-Insight_")
}

#[tokio::test]
async fn an_insights_file_changed_in_the_archive_is_found() {
    let ts = archived("vfyinsight", 1, 1).await;
    let region = ts.stack.regions[0].clone();
    let log = keys_with(&ts, &format!("/CloudTrail/{region}/"))
        .await
        .remove(0);
    let (bucket, log_key) = source(&log);
    let insight = insight_key(log_key);
    let body = gzip(
        br#"{"Records":[{"eventVersion":"1.08","eventType":"AwsCloudTrailInsight","eventCategory":"Insight","insightDetails":{"state":"Start","eventName":"RunInstances","insightType":"ApiCallRateInsight"}}]}"#,
    );
    member_writes(&ts, &region, &insight, body.clone()).await;
    let archived_at = format!("{bucket}/{insight}");
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!((code, reported(&stdout)), (0, vec![]), "{stdout}");
    assert!(stdout.contains("1/1 Insights files valid"), "{stdout}");
    assert!(
        stdout.contains(
            "Note (insight): 1 Insights file(s): CloudTrail's digests do not cover Insights \
             files, so each was checked against trailvault's signed manifests only"
        ),
        "{stdout}"
    );

    let mut changed = gunzip(&body);
    let at = changed.len() - 10;
    changed[at] = b'X';
    let version = overwrite(&ts, &archived_at, gzip(&changed), HashMap::new()).await;
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(
        (code, reported(&stdout)),
        (
            1,
            vec![
                format!(
                    "Archive object\t{}?versionId={version}\tINVALID: no manifest lists this \
                     version",
                    location(&ts, &archived_at)
                ),
                format!(
                    "Insight file\t{}\tINVALID: its current version is listed in no manifest",
                    location(&ts, &archived_at)
                ),
            ]
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_trail_with_no_digests_is_unverified_not_invalid() {
    let ts = archived("vfynodig", 1, 1).await;
    let region = ts.stack.regions[0].clone();
    // A second trail of the member's, into the same bucket under its own prefix, without log
    // file validation: its log files have no digest, and never will.
    let log = keys_with(&ts, &format!("/CloudTrail/{region}/"))
        .await
        .remove(0);
    let (bucket, log_key) = source(&log);
    let (bytes, _) = read(&ts, &log).await;
    let at = log_key.find("AWSLogs/").unwrap();
    let mut expected = Vec::new();
    for (i, other) in ["no-validation/", "no-validation/b/"].iter().enumerate() {
        let key = format!("{}{other}{}", &log_key[..at], &log_key[at..]);
        member_writes(&ts, &region, &key, bytes.clone()).await;
        expected.push(format!(
            "Log file\t{}\tUNVERIFIED: no digest in the archive covers its trail, account and \
             region: log file validation is off for the trail that delivered it",
            location(&ts, &format!("{bucket}/{key}"))
        ));
        assert_eq!(i + 1, expected.len());
    }
    expected.sort();
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!((code, reported(&stdout)), (3, expected), "{stdout}");
    assert!(
        stdout.contains("2 file(s) cannot be verified (UNVERIFIED above)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("UNVERIFIED: nothing is invalid, but some files cannot be verified"),
        "{stdout}"
    );
    let (code, json, _) = verify(&ts, &["--json"]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (code, &report["status"], &report["unverified"]),
        (3, &serde_json::json!("unverified"), &serde_json::json!(2))
    );
}

#[tokio::test]
async fn a_key_made_to_forge_report_lines_is_printed_escaped() {
    let ts = archived("vfyforge", 2, 1).await;
    let real = keys_with(&ts, "/CloudTrail/").await.remove(0);
    let (bucket, key) = source(&real);
    let at = key.find("AWSLogs/").unwrap();
    // A carriage return that sends the cursor back to print a forged "valid" over the line,
    // and a right-to-left override that reorders what follows; planted straight into the
    // archive by an insider. (An ESC cannot be tried here: the emulator's ListObjectVersions
    // ignores encoding-type=url, and XML cannot carry an ESC; S3 encodes it, and
    // tests/hostile_keys.rs drives an ESC through the worker.)
    let forged = format!(
        "{bucket}/{}x\r\u{202e}Log file s3://fake valid/{}",
        &key[..at],
        &key[at..]
    );
    overwrite(
        &ts,
        &forged,
        gzip(br#"{"Records":[{"eventVersion":"1.11","eventName":"ConsoleLogin"}]}"#),
        HashMap::new(),
    )
    .await;
    let (code, stdout, stderr) = verify(&ts, &[]);
    assert!(stderr.is_empty() || code != 2, "{stderr}");
    assert!(
        !stdout.contains('\r') && !stdout.contains('\u{202e}'),
        "no raw control character reaches the report: {stdout:?}"
    );
    let escaped = format!(
        "s3://{}/{bucket}/{}x\\r\\u{{202e}}Log file s3://fake valid/{}",
        ts.stack.security.archive_bucket,
        &key[..at],
        &key[at..]
    );
    // A prefix no digest covers: unverified now, and listed by no manifest once the
    // manifests' allowance has passed.
    assert_eq!(
        (code, reported(&stdout)),
        (
            3,
            vec![format!(
                "Log file\t{escaped}\tUNVERIFIED: no digest in the archive covers its trail, \
                 account and region: log file validation is off for the trail that delivered it"
            )]
        ),
        "{stdout}"
    );
}
