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
async fn overwrite(ts: &TestStack, key: &str, bytes: Vec<u8>, metadata: HashMap<String, String>) {
    archive(ts)
        .await
        .put_object()
        .bucket(&ts.stack.security.archive_bucket)
        .key(key)
        .body(ByteStream::from(bytes))
        .set_metadata(Some(metadata))
        .send()
        .await
        .expect("writing over an archived object");
}

/// Hides `key` behind a delete marker (Object Lock allows that much).
async fn delete(ts: &TestStack, key: &str) {
    archive(ts)
        .await
        .delete_object()
        .bucket(&ts.stack.security.archive_bucket)
        .key(key)
        .send()
        .await
        .expect("a delete marker");
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
    assert_eq!(out.status.code(), Some(1));
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
    overwrite(&ts, &log, gzip(&json), metadata).await;

    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        invalid(&stdout),
        [format!(
            "Log file\t{}\tINVALID: hash value doesn't match",
            location(&ts, &log)
        )],
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
async fn a_deleted_log_file_is_found() {
    let ts = archived("vfylogdel", 2, 1).await;
    let log = keys_with(&ts, "/CloudTrail/").await.remove(3);
    delete(&ts, &log).await;
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        invalid(&stdout),
        [format!(
            "Log file\t{}\tINVALID: not found",
            location(&ts, &log)
        )],
        "{stdout}"
    );
}

#[tokio::test]
async fn a_deleted_digest_is_found_from_the_chain() {
    let ts = archived("vfydigdel", 3, 1).await;
    let region = &ts.stack.regions[0];
    // The middle one of a chain of three: its successor names it.
    let digests = keys_with(&ts, &format!("/CloudTrail-Digest/{region}/")).await;
    assert_eq!(digests.len(), 3, "{digests:?}");
    let (bytes, _) = read(&ts, &digests[1]).await;
    let gone: serde_json::Value = serde_json::from_slice(&gunzip(&bytes)).unwrap();
    delete(&ts, &digests[1]).await;
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    // The digest, and the log files only it vouched for.
    let mut expected = vec![format!(
        "Digest file\t{}\tINVALID: not found",
        location(&ts, &digests[1])
    )];
    for log in gone["logFiles"].as_array().unwrap() {
        let key = format!(
            "{}/{}",
            log["s3Bucket"].as_str().unwrap(),
            log["s3Object"].as_str().unwrap()
        );
        expected.push(format!(
            "Log file\t{}\tINVALID: not listed in any digest",
            location(&ts, &key)
        ));
    }
    assert_eq!(invalid(&stdout), expected, "{stdout}");
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
    overwrite(&ts, target, gzip(&fake), metadata).await;

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
    assert_eq!(found.len(), 3, "{stdout}");
}

#[tokio::test]
async fn one_changed_byte_of_a_digest_signature_is_found() {
    let ts = archived("vfysigbyte", 2, 1).await;
    let digest = keys_with(&ts, "/CloudTrail-Digest/").await.remove(0);
    let (bytes, mut metadata) = read(&ts, &digest).await;
    let signature = metadata.get_mut("signature").unwrap();
    let first = if signature.starts_with('0') { "1" } else { "0" };
    signature.replace_range(0..1, first);
    overwrite(&ts, &digest, bytes, metadata).await;

    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 1);
    // The digest, and its successor's link to it: nothing else.
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
    let ts = archived("vfytrunc", 1, 3).await;
    let (code, stdout, _) = verify(&ts, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("3/3 manifests valid"), "{stdout}");

    let middle = trailvault::archive::layout::manifest_key(2);
    let (bytes, _) = read(&ts, &middle).await;
    let gone: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    delete(&ts, &middle).await;
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
