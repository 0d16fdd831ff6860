//! `trailvault verify --report`: the HTML evidence report of a devstack archive, untouched and
//! tampered with (logging stopped for six hours, a changed log file, a hidden digest), opened in
//! Debian's headless Chromium (infra/browser): no console error, no network request, the
//! coverage the page draws is the JSON's, and it prints to PDF. And a signed report checked
//! offline.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use common::TestStack;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use trailvault_devstack::state::Delivery;

/// Where the tests leave their screenshots and PDFs, to look at.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `trailvault verify --json --report FILE` with the devstack's CloudTrail keys: (exit code,
/// the JSON, stderr).
fn verify_report(ts: &TestStack, html: &Path, extra: &[&str]) -> (i32, Value, String) {
    let out = ts
        .trailvault()
        .arg("verify")
        .arg("--public-keys")
        .arg(ts.path().join("public-keys"))
        .arg("--json")
        .arg("--report")
        .arg(html)
        .args(extra)
        .output()
        .expect("running trailvault verify");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify --json: {e}\n{stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// What the browser harness found on opening `html`.
fn open(html: &Path, name: &str) -> Value {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        repo.join("infra/browser/node_modules").is_dir() && Path::new("/usr/bin/chromium").exists(),
        "Chromium or playwright-core is missing: run infra/browser/setup (infra/test does)"
    );
    std::fs::copy(html, artifacts().join(format!("{name}.html"))).unwrap();
    let screenshot = artifacts().join(format!("{name}.png"));
    let pdf = artifacts().join(format!("{name}.pdf"));
    let out = std::process::Command::new("node")
        .arg(repo.join("infra/browser/open-report.mjs"))
        .arg(html)
        .arg("--screenshot")
        .arg(&screenshot)
        .arg("--pdf")
        .arg(&pdf)
        .output()
        .expect("running node infra/browser/open-report.mjs");
    assert!(
        out.status.success(),
        "opening {} in Chromium failed: {}",
        html.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("screenshot: {}", screenshot.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The page is clean: no console message, no request, a PDF, a screenshot.
fn assert_clean_page(page: &Value) {
    assert_eq!(page["console"], serde_json::json!([]), "{page}");
    assert_eq!(page["requests"], serde_json::json!([]), "{page}");
    assert!(page["pdf_bytes"].as_u64().unwrap() > 10_000, "{page}");
    assert!(page["screenshot"].is_string(), "{page}");
}

fn parse(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap()
}

fn hour(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(3600)
}

fn hour_text(h: i64) -> String {
    trailvault::archive::layout::rfc3339(OffsetDateTime::from_unix_timestamp(h * 3600).unwrap())
}

/// The coverage rows the test expects, computed here from the raw files: for each region's
/// row, the hours each digest's period touches are verified, then the test's own marks, then
/// gaps inside. Run-length encoded as the JSON has it.
fn expected_rows(account: &str, digests: &Periods, marks: &[(&str, i64, &str)]) -> Value {
    let rank = |o: &str| {
        [
            "verified",
            "pending",
            "unverified",
            "gap",
            "missing",
            "tampered",
        ]
        .iter()
        .position(|x| *x == o)
        .unwrap()
    };
    let mut rows = Vec::new();
    for (region, periods) in digests {
        let mut hours: BTreeMap<i64, &str> = BTreeMap::new();
        for (start, end) in periods {
            for h in hour(*start)..=hour(*end - time::Duration::nanoseconds(1)) {
                hours.insert(h, "verified");
            }
        }
        for (r, h, outcome) in marks {
            if r == region {
                let e = hours.entry(*h).or_insert(outcome);
                if rank(outcome) > rank(e) {
                    *e = outcome;
                }
            }
        }
        let (first, last) = (
            *hours.keys().next().unwrap(),
            *hours.keys().next_back().unwrap(),
        );
        let mut runs: Vec<Value> = Vec::new();
        for h in first..=last {
            let outcome = hours.get(&h).copied().unwrap_or("gap");
            match runs.last_mut() {
                Some(run) if run["outcome"] == outcome => {
                    run["hours"] = (run["hours"].as_u64().unwrap() + 1).into()
                }
                _ => runs.push(
                    serde_json::json!({"from": hour_text(h), "hours": 1, "outcome": outcome}),
                ),
            }
        }
        rows.push(serde_json::json!({"account": account, "region": region, "runs": runs}));
    }
    Value::Array(rows)
}

type Period = (OffsetDateTime, OffsetDateTime);
type Periods = BTreeMap<String, Vec<Period>>;

/// Every digest by region, read from the archive (plain reads, before any tampering hides
/// one): its period, and (key, period) sorted by key.
async fn digest_periods(ts: &TestStack) -> (Periods, BTreeMap<String, Vec<(String, Period)>>) {
    let s3 = ts.security().await.s3(&ts.stack.security.archive_region);
    let bucket = &ts.stack.security.archive_bucket;
    let mut periods: BTreeMap<String, Vec<_>> = BTreeMap::new();
    let mut keys: BTreeMap<String, Vec<(String, Period)>> = BTreeMap::new();
    for (key, _) in common::list(&s3, bucket).await {
        let Some(region) = ts
            .stack
            .regions
            .iter()
            .find(|r| key.contains(&format!("/CloudTrail-Digest/{r}/")))
        else {
            continue;
        };
        let (bytes, _) = common::get(&s3, bucket, &key).await;
        let d: Value =
            serde_json::from_slice(&trailvault::cloudtrail::gzip::gunzip(&bytes, 1 << 30).unwrap())
                .unwrap();
        let period = (
            parse(d["digestStartTime"].as_str().unwrap()),
            parse(d["digestEndTime"].as_str().unwrap()),
        );
        periods.entry(region.clone()).or_default().push(period);
        keys.entry(region.clone()).or_default().push((key, period));
    }
    for k in keys.values_mut() {
        k.sort();
    }
    (periods, keys)
}

/// The hour a CloudTrail file's name gives (`..._20261101T0105Z_....json.gz`).
fn named_hour(key: &str) -> i64 {
    let stamp = key
        .rsplit('_')
        .find(|p| p.len() >= 14 && p.as_bytes()[8] == b'T')
        .unwrap();
    let t = time::PrimitiveDateTime::parse(
        &stamp[..13],
        &time::macros::format_description!("[year][month][day]T[hour][minute]"),
    )
    .unwrap()
    .assume_utc();
    hour(t)
}

#[tokio::test]
async fn the_report_of_an_untouched_and_a_tampered_archive_opens_in_chromium_as_its_json_says() {
    let mut ts = TestStack::up("report", 1, &[Delivery::S3]).await;
    ts.deliver(4, 6).await;
    ts.drain();
    let account = ts.stack.members[0].account.clone();
    let dir = tempfile::tempdir().unwrap();

    // Untouched: every hour of every account and region verified, and the page says so.
    let html = dir.path().join("clean.html");
    let (code, json, stderr) = verify_report(&ts, &html, &[]);
    assert_eq!(code, 0, "{json}\n{stderr}");
    let bytes = std::fs::read(&html).unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert!(
        stderr.contains(&format!("report: {} (SHA-256 {sha})", html.display())),
        "{stderr}"
    );
    let (periods, _) = digest_periods(&ts).await;
    assert_eq!(periods.len(), 2, "{periods:?}");
    assert_eq!(
        json["coverage"]["rows"],
        expected_rows(&account, &periods, &[])
    );
    for row in json["coverage"]["rows"].as_array().unwrap() {
        assert_eq!(row["runs"].as_array().unwrap().len(), 1, "{row}");
    }
    let page = open(&html, "clean");
    assert_clean_page(&page);
    assert_eq!(page["coverage"], json["coverage"]);
    assert!(
        page["title"].as_str().unwrap().ends_with(": VALID"),
        "{page}"
    );

    // A gap: logging stopped for six hours (StopLogging), then started again: every chain
    // restarts, nothing speaks for the hours between.
    let end = ts
        .stack
        .chains
        .values()
        .map(|c| parse(&c.end_time))
        .max()
        .unwrap();
    ts.stack.chains.clear();
    ts.deliver_from(end + time::Duration::hours(6), 2, 4).await;
    ts.drain();
    let (periods, digest_keys) = digest_periods(&ts).await;
    let (r0, r1) = (ts.stack.regions[0].clone(), ts.stack.regions[1].clone());

    // A changed log file in the first region: its hour is tampered.
    let s3 = ts.security().await.s3(&ts.stack.security.archive_region);
    let bucket = ts.stack.security.archive_bucket.clone();
    let log = common::list(&s3, &bucket)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.contains(&format!("/CloudTrail/{r0}/")))
        .unwrap();
    let (mut bytes, _) = common::get(&s3, &bucket, &log).await;
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    s3.put_object()
        .bucket(&bucket)
        .key(&log)
        .body(ByteStream::from(bytes))
        .set_metadata(Some(HashMap::new()))
        .send()
        .await
        .expect("a tamperer's PutObject over an archived log");

    // A digest of the second region hidden behind a delete marker: its period is missing.
    let (digest, hidden) = digest_keys[&r1][1].clone();
    s3.delete_object()
        .bucket(&bucket)
        .key(&digest)
        .send()
        .await
        .expect("a delete marker");
    let mut marks = vec![(r0.as_str(), named_hour(&log), "tampered")];
    for h in hour(hidden.0)..=hour(hidden.1 - time::Duration::nanoseconds(1)) {
        marks.push((r1.as_str(), h, "missing"));
    }

    let html = dir.path().join("tampered.html");
    let (code, json, stderr) = verify_report(&ts, &html, &[]);
    assert_eq!(code, 1, "{json}\n{stderr}");
    let expected = expected_rows(&account, &periods, &marks);
    assert_eq!(json["coverage"]["rows"], expected);
    // Both regions show the six-hour hole (five whole hours nothing touches).
    for row in expected.as_array().unwrap() {
        assert!(
            row["runs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["outcome"] == "gap" && r["hours"].as_u64().unwrap() >= 5),
            "{row}"
        );
    }
    let page = open(&html, "tampered");
    assert_clean_page(&page);
    assert_eq!(page["coverage"], json["coverage"]);
    assert!(
        page["title"].as_str().unwrap().ends_with(": INVALID"),
        "{page}"
    );
    // The findings name the changed log and the hidden digest, escaped as keys are.
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(
        text.contains(&format!("s3://{bucket}/{log}")),
        "the changed log's finding"
    );
    assert!(
        text.contains(&format!("s3://{bucket}/{digest}")),
        "the hidden digest's finding"
    );
    assert!(text.contains("chain restart"), "the restart's note");
}

#[tokio::test]
async fn a_signed_report_checks_offline_and_a_changed_byte_or_another_key_does_not() {
    let mut ts = TestStack::up("reportsig", 1, &[Delivery::S3]).await;
    ts.deliver(1, 2).await;
    ts.drain();
    let region = ts.stack.security.archive_region.clone();
    let kms = ts.security().await.kms(&region);
    let key = kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .description("trailvault report signing (test)")
        .send()
        .await
        .expect("a report signing key")
        .key_metadata
        .unwrap()
        .arn
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let (code, _, stderr) = verify_report(&ts, &html, &["--sign", &key]);
    assert_eq!(code, 0, "{stderr}");
    let sig_path = dir.path().join("r.html.sig");
    assert!(
        stderr.contains(&format!("signature: {}", sig_path.display())),
        "{stderr}"
    );
    let sig: Value = serde_json::from_slice(&std::fs::read(&sig_path).unwrap()).unwrap();
    assert_eq!(sig["key_arn"], key.as_str());
    assert_eq!(sig["format"], "trailvault-report-signature/1");

    let run = |args: &[&std::ffi::OsStr]| {
        let out = ts.trailvault().args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let pem = dir.path().join("report-key.pem");
    let (code, _, stderr) = run(&[
        "report".as_ref(),
        "public-key".as_ref(),
        "--key".as_ref(),
        key.as_ref(),
        "--out".as_ref(),
        pem.as_os_str(),
    ]);
    assert_eq!(code, 0, "{stderr}");

    // Offline: no AWS configuration at all.
    let check = |report: &Path, sig: &Path, pem: &Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailvault"))
            .env_clear()
            .args(["report", "check"])
            .arg(report)
            .arg("--signature")
            .arg(sig)
            .arg("--public-key")
            .arg(pem)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = check(&html, &sig_path, &pem);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("valid: "), "{stdout}");
    assert!(stdout.contains(&key), "{stdout}");

    // One byte changed: the file is not the one signed.
    let mut bytes = std::fs::read(&html).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    let changed = dir.path().join("changed.html");
    std::fs::write(&changed, &bytes).unwrap();
    let (code, stdout, _) = check(&changed, &sig_path, &pem);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.starts_with("INVALID: ") && stdout.contains("was changed after it was signed"),
        "{stdout}"
    );

    // Changed, with the signature file changed to match: the signature says otherwise. Nor
    // can a claim of the signature file be changed (here, when it was signed).
    let forged_sig = dir.path().join("forged.sig");
    let mut forged: Value = sig.clone();
    forged["report_sha256"] = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)).into();
    std::fs::write(&forged_sig, forged.to_string()).unwrap();
    let (code, stdout, _) = check(&changed, &forged_sig, &pem);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("the signature does not match what the signature file says"),
        "{stdout}"
    );
    let mut backdated: Value = sig.clone();
    backdated["signed_at"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(&forged_sig, backdated.to_string()).unwrap();
    let (code, stdout, _) = check(&html, &forged_sig, &pem);
    assert_eq!(code, 1, "{stdout}");

    // Another key (the manifest signing key's public half) does not vouch for it.
    let manifest_pem = dir.path().join("manifest.pem");
    let (code, _, stderr) = run(&[
        "manifest".as_ref(),
        "public-key".as_ref(),
        "--out".as_ref(),
        manifest_pem.as_os_str(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = check(&html, &sig_path, &manifest_pem);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("signature verification failed: the key in")
            && stdout.contains("is not the key the signature file names"),
        "{stdout}"
    );

    // The manifest signing key is refused before anything is read.
    let manifest_key = ts
        .config()
        .archive
        .signing_key
        .expect("the devstack signs manifests")
        .as_str()
        .to_owned();
    let refused = dir.path().join("refused.html");
    let (code, _, stderr) = run(&[
        "verify".as_ref(),
        "--report".as_ref(),
        refused.as_os_str(),
        "--sign".as_ref(),
        manifest_key.as_ref(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is the manifest signing key (archive.signing_key)"),
        "{stderr}"
    );
    assert!(
        !refused.exists(),
        "no report is written when the key is refused"
    );
}
