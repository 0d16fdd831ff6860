//! Alerts end to end against the emulator: the devstack's organization delivers ordinary
//! activity with the CIS triggers among it, the worker archives it, and an SQS queue
//! subscribed to the alerts topic receives every expected alert: exactly once without faults,
//! at least once (duplicates with the same deduplication key) across a killed worker, and only
//! after a failing topic answers again.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{metric, RunningWorker, TestStack};
use serde_json::{json, Value};
use trailvault::config::Config;
use trailvault_devstack::state::Delivery;

/// The topic (encrypted under its own KMS key) and a queue subscribed to it, raw delivery.
struct Inbox {
    topic: String,
    queue: String,
    sqs: aws_sdk_sqs::Client,
}

/// A queue: its URL and ARN.
async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName::QueueArn;
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attributes.attributes().unwrap()[&QueueArn].clone();
    (url, arn)
}

async fn inbox(ts: &TestStack, name: &str) -> Inbox {
    let sec = ts.security().await;
    let region = &ts.stack.security.archive_region;
    let key = sec
        .kms(region)
        .create_key()
        .description("trailvault alerts topic")
        .send()
        .await
        .unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let sns = sec.sns(region);
    let topic = sns
        .create_topic()
        .name(name)
        .attributes("KmsMasterKeyId", key_id)
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let sqs = sec.sqs(region);
    let (queue, arn) = queue(&sqs, &format!("{name}-inbox")).await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    Inbox { topic, queue, sqs }
}

/// An EventBridge bus whose rule sends trailvault's alerts to a queue of their own.
async fn bus(ts: &TestStack, name: &str) -> (String, Inbox) {
    let sec = ts.security().await;
    let region = &ts.stack.security.archive_region;
    let events = sec.events(region);
    let bus = events
        .create_event_bus()
        .name(name)
        .send()
        .await
        .unwrap()
        .event_bus_arn()
        .unwrap()
        .to_owned();
    let sqs = sec.sqs(region);
    let (queue, arn) = queue(&sqs, &format!("{name}-bus-inbox")).await;
    events
        .put_rule()
        .name("trailvault-alerts")
        .event_bus_name(name)
        .event_pattern(r#"{"source": ["trailvault"], "detail-type": ["trailvault alert"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("trailvault-alerts")
        .event_bus_name(name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("inbox")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (
        bus,
        Inbox {
            topic: String::new(),
            queue,
            sqs,
        },
    )
}

impl Inbox {
    /// Every alert waiting, each parsed; the queue is left empty.
    async fn take(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut empty = 0;
        while empty < 2 {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let messages = got.messages();
            if messages.is_empty() {
                empty += 1;
                continue;
            }
            empty = 0;
            let mut deletes = Vec::new();
            for (i, m) in messages.iter().enumerate() {
                out.push(serde_json::from_str(m.body().unwrap()).expect("an alert is JSON"));
                deletes.push(
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap())
                        .build()
                        .unwrap(),
                );
            }
            let deleted = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue)
                .set_entries(Some(deletes))
                .send()
                .await
                .unwrap();
            assert!(deleted.failed().is_empty());
        }
        out
    }
}

fn with_alerts(topic: &str, extra: &str) -> impl FnOnce(String) -> String {
    let section = format!("\n[alerts]\nsns_topic_arn = \"{topic}\"\n{extra}\n");
    move |c| c + &section
}

/// What the rules select from the member buckets' log files, read here from the raw files:
/// deduplication key -> how many records carry it.
async fn expected(ts: &TestStack) -> BTreeMap<String, usize> {
    let config: Config = ts.config();
    let rules = &config
        .alerts
        .as_ref()
        .expect("[alerts] is configured")
        .rules;
    let mut out = BTreeMap::new();
    for (_, key, bytes, _) in ts.sources().await {
        if !key.contains("/CloudTrail/") || key.contains("Digest") {
            continue;
        }
        let json = trailvault::cloudtrail::gzip::gunzip(&bytes, 1 << 30).unwrap();
        let file: Value = serde_json::from_slice(&json).unwrap();
        for record in file["Records"].as_array().unwrap() {
            for rule in rules {
                if rule.pattern.matches(record) {
                    let id = record["eventID"].as_str().unwrap();
                    *out.entry(format!("{}/{id}", rule.name)).or_default() += 1;
                }
            }
        }
    }
    out
}

fn received(alerts: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for a in alerts {
        let key = a["dedup_key"].as_str();
        *out.entry(
            key.unwrap_or_else(|| panic!("an alert without dedup_key: {a}"))
                .to_owned(),
        )
        .or_default() += 1;
    }
    out
}

#[tokio::test]
async fn every_cis_rule_fires_once_per_matching_record_and_each_alert_carries_its_evidence() {
    let mut ts = TestStack::up("alerts", 2, &[Delivery::S3]).await;
    let inbox = inbox(&ts, "alerts-once").await;
    let (bus, bus_inbox) = bus(&ts, "alerts-once").await;
    ts.edit_config(with_alerts(
        &inbox.topic,
        &format!("event_bus_arn = \"{bus}\""),
    ));
    ts.deliver(1, 3).await;
    let expected = expected(&ts).await;
    // The devstack's ordinary activity holds a trigger for every CIS rule.
    let fired: BTreeSet<&str> = expected
        .keys()
        .map(|k| k.split('/').next().unwrap())
        .collect();
    let cis: Vec<String> = ts
        .config()
        .alerts
        .unwrap()
        .rules
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(cis.len(), 15);
    let silent: Vec<&String> = cis.iter().filter(|r| !fired.contains(r.as_str())).collect();
    assert!(
        silent.is_empty(),
        "no trigger in the devstack for {silent:?}"
    );

    let (_, stderr) = ts.drain();
    let alerts = inbox.take().await;
    assert_eq!(received(&alerts), expected, "{stderr}");
    // The bus got the same alerts, each as an event's detail.
    let events = bus_inbox.take().await;
    for e in &events {
        assert_eq!(
            (&e["source"], &e["detail-type"]),
            (&json!("trailvault"), &json!("trailvault alert"))
        );
    }
    let details: Vec<Value> = events.iter().map(|e| e["detail"].clone()).collect();
    assert_eq!(received(&details), expected);

    // Each alert: its rule, the record, and the archived version it came from.
    let s3 = ts.security().await.s3(&ts.stack.security.archive_region);
    let archive = &ts.stack.security.archive_bucket;
    let accounts: BTreeSet<String> = ts.stack.members.iter().map(|m| m.account.clone()).collect();
    for a in alerts.iter().take(40) {
        assert_eq!(a["source"], "trailvault");
        assert_eq!(a["kind"], "match");
        let rule = a["rule"].as_str().unwrap();
        assert_eq!(
            a["dedup_key"],
            format!("{rule}/{}", a["event_id"].as_str().unwrap())
        );
        assert_eq!(a["record"]["eventID"], a["event_id"]);
        assert_eq!(a["event_name"], a["record"]["eventName"]);
        assert!(accounts.contains(a["account"].as_str().unwrap()), "{a}");
        assert!(a["control"].as_str().unwrap().starts_with("CIS 4."), "{a}");
        let evidence = &a["evidence"];
        assert_eq!(evidence["bucket"], archive.as_str());
        let tags = s3
            .get_object_tagging()
            .bucket(archive)
            .key(evidence["key"].as_str().unwrap())
            .version_id(evidence["version_id"].as_str().unwrap())
            .send()
            .await
            .expect("the evidence names an archived version");
        assert!(
            tags.tag_set()
                .iter()
                .any(|t| t.key() == "trailvault-alerts" && t.value() == "published"),
            "{a}"
        );
    }
    let out = ts.verify();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn a_killed_worker_still_delivers_every_alert_and_a_duplicate_carries_the_same_key() {
    let mut ts = TestStack::up("alerts-kill", 1, &[Delivery::S3]).await;
    let inbox = inbox(&ts, "alerts-kill").await;
    ts.edit_config(|c| {
        with_alerts(&inbox.topic, "")(c.replace(
            "visibility_timeout_secs = 60",
            "visibility_timeout_secs = 10",
        ))
    });
    ts.deliver(1, 3).await;
    let expected = expected(&ts).await;
    assert!(!expected.is_empty());
    // Dies after a copy is checked but before its alerts are published (the redelivery
    // publishes them for the first time), then after a file's alerts are published but before
    // its version is tagged (the redelivery publishes them again).
    for point in ["after_check:2", "before_alert_tag:1"] {
        let out = ts
            .trailvault()
            .args(["run", "--until-empty"])
            .env("TRAILVAULT_FAILPOINT", point)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("dying outright"),
            "{point}: {stderr}"
        );
    }
    ts.drain();
    let got = received(&inbox.take().await);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "every expected alert, and no other"
    );
    for (key, n) in &expected {
        assert!(got[key] >= *n, "{key}: {} < {n}", got[key]);
    }
    let sent: usize = got.values().sum();
    let wanted: usize = expected.values().sum();
    assert!(
        sent > wanted,
        "the file published before the kill was published again ({sent} alerts for {wanted})"
    );
    for region in &ts.stack.regions {
        assert_eq!(ts.depth(region).await, (0, 0, 0), "{region}");
    }
}

#[tokio::test]
async fn a_failing_topic_keeps_the_messages_until_the_alerts_are_out() {
    let mut ts = TestStack::up("alerts-down", 1, &[Delivery::S3]).await;
    let inbox = inbox(&ts, "alerts-down").await;
    // A topic that does not exist: every publish fails.
    let missing = format!("{}-missing", inbox.topic);
    ts.edit_config(|c| {
        with_alerts(&missing, "")(c.replace(
            "visibility_timeout_secs = 60",
            "visibility_timeout_secs = 10",
        ))
    });
    ts.deliver(1, 2).await;
    let expected = expected(&ts).await;
    let sources = ts.sources().await.len();
    let worker = RunningWorker::start(ts.trailvault());
    let started = Instant::now();
    while metric(&worker.metrics(), "trailvault_alert_failures_total", &[]) < 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no publish failed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Wait until everything is archived: the messages of files with alerts are still not
    // deleted, and nothing reached the inbox.
    while ts.archive_versions().await.len() < sources {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not all archived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = worker.metrics();
    let (_, log) = worker.stop();
    let left: u64 = {
        let mut n = 0;
        for region in &ts.stack.regions {
            let (visible, in_flight, dead) = ts.depth(region).await;
            assert_eq!(dead, 0, "nothing parked: the topic is our side");
            n += visible + in_flight;
        }
        n
    };
    assert!(left > 0, "messages with alerts not out were deleted");
    assert!(inbox.take().await.is_empty());
    assert!(
        log.iter().any(|l| l.contains("its alerts are not out")
            && l.contains("sns:Publish to")
            && l.contains(&missing)),
        "the log names the topic and the permission"
    );
    assert_eq!(
        metric(&metrics, "trailvault_alerts_total", &[]),
        0.0,
        "{metrics}"
    );

    // The topic answers again: every alert is out once, and the queues empty.
    ts.edit_config(|c| c.replace(&missing, &inbox.topic));
    ts.drain();
    assert_eq!(received(&inbox.take().await), expected);
    for region in &ts.stack.regions {
        assert_eq!(ts.depth(region).await, (0, 0, 0), "{region}");
    }
}

#[tokio::test]
async fn suppression_folds_a_noisy_rule_and_custom_rules_fire() {
    let mut ts = TestStack::up("alerts-fold", 2, &[Delivery::S3]).await;
    let inbox = inbox(&ts, "alerts-fold").await;
    ts.edit_config(with_alerts(
        &inbox.topic,
        r#"
[alerts.suppress_secs]
"unauthorized-api-calls" = 3600

[[alerts.rules]]
name = "orders-table-read"
pattern = '{ ($.eventSource = "dynamodb.amazonaws.com") && ($.requestParameters.tableName = "orders") }'
severity = "low"
description = "Someone read the orders table"
"#,
    ));
    ts.deliver(1, 3).await;
    let expected = expected(&ts).await;
    ts.drain();
    let alerts = inbox.take().await;

    let noisy = "unauthorized-api-calls";
    let custom: BTreeMap<String, usize> = expected
        .iter()
        .filter(|(k, _)| k.starts_with("orders-table-read/"))
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    assert!(!custom.is_empty(), "the devstack reads the orders table");
    let others: BTreeMap<String, usize> = expected
        .iter()
        .filter(|(k, _)| !k.starts_with(&format!("{noisy}/")))
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    let got_others: BTreeMap<String, usize> = received(&alerts)
        .into_iter()
        .filter(|(k, _)| !k.starts_with(&format!("{noisy}/")))
        .collect();
    assert_eq!(
        got_others, others,
        "the other rules, custom included, are not folded"
    );

    // Per account: one alert, then one summary of the rest of the window.
    let matched: usize = expected
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{noisy}/")))
        .map(|(_, n)| n)
        .sum();
    let first: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["rule"] == noisy && a["kind"] == "match")
        .collect();
    let summaries: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["rule"] == noisy && a["kind"] == "summary")
        .collect();
    let accounts: BTreeSet<&str> = first
        .iter()
        .map(|a| a["account"].as_str().unwrap())
        .collect();
    assert_eq!(first.len(), accounts.len(), "one alert per account");
    assert_eq!(accounts.len(), 2);
    let folded: u64 = summaries
        .iter()
        .map(|s| s["folded"].as_u64().unwrap())
        .sum();
    assert_eq!(first.len() + folded as usize, matched, "{summaries:?}");
    for s in &summaries {
        assert_eq!(s["window_secs"], 3600);
        assert!(!s["examples"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn history_alerts_only_when_asked_and_scan_finds_what_the_rules_select() {
    let mut ts = TestStack::up("alerts-hist", 1, &[Delivery::S3]).await;
    let inbox = inbox(&ts, "alerts-hist").await;
    ts.edit_config(with_alerts(&inbox.topic, ""));
    ts.deliver(1, 2).await;
    let first = expected(&ts).await;
    ts.drop_notifications().await;
    let out = ts.trailvault().args(["backfill"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        inbox.take().await.is_empty(),
        "a backfill without --alerts alerts nobody"
    );

    // The archive, scanned after the fact, holds exactly what the rules select.
    let out = ts
        .trailvault()
        .args(["alerts", "scan", "--from", "2000-01-01", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut scanned: BTreeMap<String, usize> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let m: Value = serde_json::from_str(line).unwrap();
        assert!(m["archive_key"].as_str().unwrap().contains("/CloudTrail/"));
        *scanned
            .entry(format!(
                "{}/{}",
                m["rule"].as_str().unwrap(),
                m["eventID"].as_str().unwrap()
            ))
            .or_default() += 1;
    }
    assert_eq!(scanned, first);
    // One rule, one account, a window with nothing in it.
    let account = ts.stack.members[0].account.clone();
    let out = ts
        .trailvault()
        .args([
            "alerts",
            "scan",
            "--from",
            "2000-01-01",
            "--to",
            "2000-01-02",
        ])
        .args(["--account", &account, "--rule", "root-account-usage"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // More history, backfilled with --alerts: its alerts, and only its, are published (its
    // notifications stay on the queues, unread).
    ts.deliver(1, 2).await;
    let all = expected(&ts).await;
    let out = ts
        .trailvault()
        .args(["backfill", "--alerts"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut new = all.clone();
    for (k, n) in &first {
        let left = new[k] - n;
        if left == 0 {
            new.remove(k);
        } else {
            new.insert(k.clone(), left);
        }
    }
    assert!(!new.is_empty());
    assert_eq!(received(&inbox.take().await), new);
}
