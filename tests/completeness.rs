//! Completeness against the emulator: `trailvault backfill` archives what no notification
//! brought, the worker's sweep finds and reports missed notifications, and organization
//! discovery serves a member account that joins while the worker runs.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{get, metric, RunningWorker, TestStack};
use sha2::{Digest as _, Sha256};
use trailvault_devstack::state::Delivery;

fn run(cmd: &mut std::process::Command) -> (bool, String, String) {
    let out = cmd.output().expect("running trailvault");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The number on the summary line that starts with `label`.
fn count(summary: &str, label: &str) -> u64 {
    summary
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{summary}"))
        .trim_start()[label.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Archive keys of the copies (manifests left out).
async fn archived_keys(ts: &TestStack) -> BTreeSet<String> {
    ts.archive_versions()
        .await
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

#[tokio::test]
async fn backfill_archives_what_no_notification_brought_and_a_rerun_archives_nothing() {
    let mut ts = TestStack::up("backfill", 3, &[Delivery::S3, Delivery::Sns]).await;
    ts.deliver(2, 3).await;
    ts.drop_notifications().await;
    let sources = ts.sources().await;
    // Three log files and two digests per account and region.
    assert_eq!(sources.len(), 3 * 2 * (3 + 2));

    // A dry run says what it would do, and does nothing.
    let (ok, out, err) = run(ts.trailvault().args(["backfill", "--dry-run"]));
    assert!(ok, "{out}\n{err}");
    assert_eq!(count(&out, "would archive"), sources.len() as u64, "{out}");
    assert!(archived_keys(&ts).await.is_empty(), "a dry run wrote");

    // Narrowed to one account and one region of activity: only those files.
    let member = ts.stack.members[1].clone();
    let narrowed: BTreeSet<String> = sources
        .iter()
        .filter(|(_, key, _, _)| {
            key.contains(&format!("/{}/", member.account)) && key.contains("/eu-west-1/")
        })
        .map(|(bucket, key, _, _)| format!("{bucket}/{key}"))
        .collect();
    assert!(!narrowed.is_empty());
    let (ok, out, err) = run(ts.trailvault().args([
        "backfill",
        "--account",
        &member.name,
        "--region",
        "eu-west-1",
    ]));
    assert!(ok, "{out}\n{err}");
    assert_eq!(count(&out, "archived"), narrowed.len() as u64, "{out}");
    assert_eq!(archived_keys(&ts).await, narrowed);

    // A window that holds nothing archives nothing.
    let (ok, out, err) =
        run(ts
            .trailvault()
            .args(["backfill", "--since", "2020-01-01", "--until", "2020-12-31"]));
    assert!(ok, "{out}\n{err}");
    assert_eq!(count(&out, "archived"), 0, "{out}");

    // Everything else, then nothing: resumable, idempotent.
    let (ok, out, err) = run(ts.trailvault().arg("backfill"));
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        count(&out, "archived"),
        (sources.len() - narrowed.len()) as u64,
        "{out}"
    );
    assert_eq!(count(&out, "already present"), narrowed.len() as u64);
    assert_eq!(count(&out, "failures"), 0, "{out}\n{err}");
    let (ok, out, err) = run(ts.trailvault().arg("backfill"));
    assert!(ok, "{out}\n{err}");
    assert_eq!(count(&out, "archived"), 0, "{out}");
    assert_eq!(count(&out, "already present"), sources.len() as u64);
    assert!(out.contains("nothing to archive"), "{out}");

    // Byte for byte, and listed in the signed manifests: verify finds it all valid.
    let s3 = ts.security().await.s3(&ts.stack.security.archive_region);
    for (bucket, key, bytes, _) in &sources {
        let (copy, _) = get(
            &s3,
            &ts.stack.security.archive_bucket,
            &format!("{bucket}/{key}"),
        )
        .await;
        assert_eq!(
            hex::encode(Sha256::digest(&copy)),
            hex::encode(Sha256::digest(bytes)),
            "{bucket}/{key}"
        );
    }
    assert_eq!(archived_keys(&ts).await.len(), sources.len());
    let (ok, out, err) = run(ts
        .trailvault()
        .arg("verify")
        .arg("--public-keys")
        .arg(ts.path().join("public-keys")));
    assert!(ok, "verify:\n{out}\n{err}");
    assert!(out.contains("Everything checked is valid."), "{out}");
}

#[tokio::test]
async fn a_backfill_names_the_bucket_it_cannot_list_does_the_rest_and_fails() {
    let mut ts = TestStack::up("bf-missing", 2, &[Delivery::S3]).await;
    ts.deliver(1, 1).await;
    ts.drop_notifications().await;
    // One of the second account's buckets is gone (deleted, or mistyped in the config).
    let gone = ts.stack.members[1].buckets[0].name.clone();
    ts.edit_config(|c| c.replace(&format!("\"{gone}\""), &format!("\"{gone}-gone\"")));
    let (ok, out, err) = run(ts.trailvault().arg("backfill"));
    assert!(!ok, "a backfill with failures must fail:\n{out}");
    assert_eq!(count(&out, "list_failed"), 1, "{out}");
    assert!(
        err.contains(&format!("{gone}-gone")) && err.contains("could not list"),
        "{err}"
    );
    assert!(out.contains("rerun `trailvault backfill`"), "{out}");
    // Every other bucket was archived.
    let sources = ts.sources().await;
    let others: BTreeSet<String> = sources
        .iter()
        .filter(|(bucket, _, _, _)| *bucket != gone)
        .map(|(bucket, key, _, _)| format!("{bucket}/{key}"))
        .collect();
    assert_eq!(archived_keys(&ts).await, others);
}

/// A key a member account chose, with a wide character where the time's digits go: it made
/// the key reader slice inside the character and panic, ending `backfill --dry-run` with exit
/// 101 (and the worker's sweep for good). Now it is not a CloudTrail file, and the pass goes on.
#[tokio::test]
async fn a_hostile_key_in_a_member_bucket_is_skipped_and_the_pass_goes_on() {
    let mut ts = TestStack::up("bf-hostile", 1, &[Delivery::S3]).await;
    ts.deliver(1, 2).await;
    ts.drop_notifications().await;
    let sources = ts.sources().await;
    let (bucket, key, _, _) = sources
        .iter()
        .find(|(_, key, _, _)| key.contains("/CloudTrail/"))
        .expect("a log file");
    let at = key.find("Z_").expect("a log file's time ends in Z_");
    // `T0105Z` becomes `T1𝄞`: as many bytes, the last four one character.
    let hostile = format!("{}T1\u{1d11e}{}", &key[..at - 5], &key[at + 1..]);
    assert_eq!(hostile.len(), key.len());
    let member = &ts.stack.members[0];
    let region = &member
        .buckets
        .iter()
        .find(|b| &b.name == bucket)
        .unwrap()
        .region;
    ts.admin(&member.account)
        .await
        .s3(region)
        .put_object()
        .bucket(bucket)
        .key(&hostile)
        .body(b"not a log".to_vec().into())
        .send()
        .await
        .unwrap();

    let (ok, out, err) = run(ts.trailvault().args(["backfill", "--dry-run"]));
    assert!(ok, "{out}\n{err}");
    assert_eq!(count(&out, "would archive"), sources.len() as u64, "{out}");
    assert!(!err.contains("panicked"), "{err}");
    let (ok, out, err) = run(ts.trailvault().arg("backfill"));
    assert!(ok, "{out}\n{err}");
    let expected: BTreeSet<String> = sources
        .iter()
        .map(|(bucket, key, _, _)| format!("{bucket}/{key}"))
        .collect();
    assert_eq!(archived_keys(&ts).await, expected);
}

#[tokio::test]
async fn the_sweep_archives_files_whose_notifications_were_lost_and_reports_them_missed() {
    let mut ts = TestStack::up("sweep", 2, &[Delivery::S3]).await;
    // Files of the last hours (the sweep looks back `window_secs` by the time in their names).
    let start = time::OffsetDateTime::now_utc() - time::Duration::hours(3);
    ts.deliver_from(start, 1, 2).await;
    ts.drain();
    let notified = archived_keys(&ts).await;
    assert!(!notified.is_empty());

    ts.deliver(1, 2).await;
    ts.drop_notifications().await;
    let all: BTreeSet<String> = ts
        .sources()
        .await
        .into_iter()
        .map(|(bucket, key, _, _)| format!("{bucket}/{key}"))
        .collect();
    let lost = all.len() - notified.len();
    assert!(lost > 0);

    ts.edit_config(|c| {
        c + "\n[sweep]\ninterval_secs = 10\nwindow_secs = 21600\nmin_age_secs = 0\n"
    });
    let worker = RunningWorker::start(ts.trailvault());
    let started = Instant::now();
    while archived_keys(&ts).await != all {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the sweep did not archive the files whose notifications were lost"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let text = worker.metrics();
    let (status, log) = worker.stop();
    assert!(status.success(), "{}", log.join("\n"));
    assert_eq!(
        metric(&text, "trailvault_missed_notifications_total", &[]) as usize,
        lost,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "trailvault_objects_total",
            &["outcome=\"duplicate\""]
        ),
        0.0,
        "files archived through their notifications were copied again"
    );
    let missed_lines = log
        .iter()
        .filter(|l| l.contains("missed notification"))
        .count();
    assert_eq!(missed_lines, lost, "one log line per missed file");
    // Each one names its account, bucket and key.
    assert!(log
        .iter()
        .filter(|l| l.contains("missed notification"))
        .all(|l| l.contains("\"bucket\"") && l.contains("\"key\"") && l.contains("\"account\"")));
}

/// Turns on organization discovery, as an operator would: a role in the management account
/// that lists the organization, for the worker; reader roles named by the pattern with the
/// ExternalId `DISCOVERED_EXTERNAL_ID`; the management and security accounts excluded; a look
/// every 10 s, and a 10 s visibility timeout so that retried notifications come back quickly.
async fn enable_discovery(ts: &TestStack) {
    let exclude = [
        ts.stack.management_account.clone(),
        ts.stack.security.account.clone(),
    ];
    // Only the management account may list the organization: a role there, for the worker.
    let management = trailvault_devstack::session::Session::management(
        &ts.stack.endpoint,
        &ts.stack.management_account,
    )
    .await
    .unwrap();
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": ts.stack.security.worker_role_arn},
        "Action": "sts:AssumeRole"}]});
    let role = management
        .iam()
        .create_role()
        .role_name("trailvault-organizations")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let organizations_role = role.role().unwrap().arn().to_owned();
    let list = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "organizations:ListAccounts", "Resource": "*"}]});
    management
        .iam()
        .put_role_policy()
        .role_name("trailvault-organizations")
        .policy_name("list-accounts")
        .policy_document(list.to_string())
        .send()
        .await
        .unwrap();
    ts.edit_config(|c| {
        c.replace(
            "visibility_timeout_secs = 60",
            "visibility_timeout_secs = 10",
        ) + &format!(
            "\n[discovery]\nenabled = true\norganizations_role_arn = \"{organizations_role}\"\n\
             reader_role_arn = \"arn:aws:iam::{{account}}:role/trailvault-reader\"\n\
             external_id = \"{DISCOVERED_EXTERNAL_ID}\"\ninterval_secs = 10\n\
             exclude = [\"{}\", \"{}\"]\n",
            exclude[0], exclude[1]
        )
    });
}

const DISCOVERED_EXTERNAL_ID: &str = "tv-discovered-5e0c7a9b1d2f";

#[tokio::test]
async fn a_member_account_that_joins_while_the_worker_runs_is_discovered_and_archived() {
    let mut ts = TestStack::up("discovery", 2, &[Delivery::S3]).await;
    enable_discovery(&ts).await;
    let (ok, out, err) = run(ts.trailvault().args(["config", "check", "--connect"]));
    assert!(ok, "{out}\n{err}");
    assert!(
        format!("{out}{err}").contains("ok    organization discovery (through arn:aws:iam::"),
        "{out}\n{err}"
    );
    let worker = RunningWorker::start(ts.trailvault());

    // The organization gains an account, with the reader role the pattern names; its
    // trails start delivering.
    let member = ts.add_member(DISCOVERED_EXTERNAL_ID).await;
    ts.deliver(1, 2).await;
    let theirs: BTreeSet<String> = ts
        .sources()
        .await
        .into_iter()
        .filter(|(bucket, _, _, _)| member.buckets.iter().any(|b| &b.name == bucket))
        .map(|(bucket, key, _, _)| format!("{bucket}/{key}"))
        .collect();
    assert!(!theirs.is_empty());

    let started = Instant::now();
    loop {
        let archived = archived_keys(&ts).await;
        if theirs.is_subset(&archived) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the new account's files were not archived: {} of {}\n{}",
            theirs.intersection(&archived).count(),
            theirs.len(),
            worker.metrics()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let text = worker.metrics();
    let (status, log) = worker.stop();
    assert!(status.success());
    assert_eq!(
        metric(
            &text,
            "trailvault_discovered_accounts",
            &["status=\"served\""]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "trailvault_discovered_accounts",
            &["status=\"excluded\""]
        ),
        2.0,
        "{text}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("discovered account served") && l.contains(&member.account)),
        "{}",
        log.join("\n")
    );
    // Nothing parked: a notification that came before discovery saw its account was retried.
    for region in &ts.stack.regions {
        assert_eq!(ts.depth(region).await.2, 0, "{region}: dead letters");
    }
}

/// A bucket two accounts claim is served as neither: one of a configured account that a
/// discovered account's trail names, and one of a discovered account that another discovered
/// account's trail names. Their files are not archived (their notifications come back, never
/// deleted), each such bucket is reported once with every account that claims it, and the
/// accounts' other buckets are served.
#[tokio::test]
async fn a_bucket_two_accounts_claim_is_served_as_neither_and_reported() {
    let mut ts = TestStack::up("contested", 1, &[Delivery::S3]).await;
    enable_discovery(&ts).await;
    let configured = ts.stack.members[0].clone();
    let first = ts.add_member(DISCOVERED_EXTERNAL_ID).await;
    let second = ts.add_member(DISCOVERED_EXTERNAL_ID).await;
    // The second discovered account's trails also write to the configured account's first
    // bucket and to the first discovered account's first bucket.
    let claimed = [configured.buckets[0].clone(), first.buckets[0].clone()];
    let admin = ts.admin(&second.account).await;
    for (n, bucket) in claimed.iter().enumerate() {
        admin
            .cloudtrail(&bucket.region)
            .create_trail()
            .name(format!("{}-elsewhere-{n}", second.trail_name))
            .s3_bucket_name(&bucket.name)
            .send()
            .await
            .unwrap();
    }
    ts.deliver(1, 1).await;
    let (contested, served): (Vec<String>, Vec<String>) = ts
        .sources()
        .await
        .into_iter()
        .map(|(bucket, key, _, _)| format!("{bucket}/{key}"))
        .partition(|key| {
            claimed
                .iter()
                .any(|b| key.starts_with(&format!("{}/", b.name)))
        });
    // A log file and a digest in each contested bucket, one notification each.
    assert_eq!(contested.len(), 4, "{contested:?}");
    let served: BTreeSet<String> = served.into_iter().collect();
    assert_eq!(served.len(), 3 * 2 * 2 - 4, "{served:?}");

    let worker = RunningWorker::start(ts.trailvault());
    let started = Instant::now();
    loop {
        let text = worker.metrics();
        let refused = metric(
            &text,
            "trailvault_failures_total",
            &["reason=\"unknown_bucket\""],
        );
        if archived_keys(&ts).await == served && refused >= contested.len() as f64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the uncontested files were not archived, or the contested ones not tried:\n{text}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let text = worker.metrics();
    let (status, log) = worker.stop();
    assert!(status.success(), "{}", log.join("\n"));

    // Archived as neither account: the archive holds exactly the uncontested files.
    assert_eq!(archived_keys(&ts).await, served);
    // Every contested notification is still on its queue or in its dead-letter queue.
    let mut waiting = 0;
    for region in &ts.stack.regions {
        let (visible, in_flight, dead) = ts.depth(region).await;
        waiting += visible + in_flight + dead;
    }
    assert_eq!(waiting, contested.len() as u64, "{text}");
    // Both discovered accounts claim a contested bucket; neither is counted as plainly served.
    for (status, accounts) in [("contested", 2.0), ("served", 0.0), ("excluded", 2.0)] {
        assert_eq!(
            metric(
                &text,
                "trailvault_discovered_accounts",
                &[&format!("status=\"{status}\"")]
            ),
            accounts,
            "{status}: {text}"
        );
    }
    // Reported once per bucket, as a warning naming the bucket and every account that claims
    // it (by id, with why), and what to do.
    let reports: Vec<serde_json::Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("bucket claimed by more than one account"))
        })
        .collect();
    let text_of = |e: &serde_json::Value, field: &str| e[field].as_str().unwrap_or("").to_owned();
    // "ID (NAME, CLAIM), ID (NAME, CLAIM)" as (ID, CLAIM) pairs.
    let claimants = |accounts: &str| -> Vec<(String, String)> {
        accounts
            .trim_end_matches(')')
            .split("), ")
            .map(|c| {
                let (id, rest) = c.split_once(" (").unwrap_or((c, ""));
                let claim = rest.rsplit_once(", ").map_or("", |(_, claim)| claim);
                (id.to_owned(), claim.to_owned())
            })
            .collect()
    };
    // (level, bucket, claimants as (account id, claim))
    type Report = (String, String, Vec<(String, String)>);
    let mut reported: Vec<Report> = reports
        .iter()
        .map(|e| {
            (
                text_of(e, "level"),
                text_of(e, "bucket"),
                claimants(&text_of(e, "accounts")),
            )
        })
        .collect();
    reported.sort();
    let pair = |id: &str, claim: &str| (id.to_owned(), claim.to_owned());
    let mut expected = vec![
        (
            "WARN".to_owned(),
            claimed[0].name.clone(),
            vec![
                pair(&configured.account, "configured"),
                pair(&second.account, "its trail"),
            ],
        ),
        (
            "WARN".to_owned(),
            claimed[1].name.clone(),
            vec![
                pair(&first.account, "its trail"),
                pair(&second.account, "its trail"),
            ],
        ),
    ];
    // Claimants are listed by account id.
    for (_, _, claimants) in &mut expected {
        claimants.sort();
    }
    expected.sort();
    assert_eq!(reported, expected, "{}", log.join("\n"));
    assert!(
        reports
            .iter()
            .all(|e| text_of(e, "message").contains("Decide which account it belongs to")),
        "{reports:?}"
    );
}
