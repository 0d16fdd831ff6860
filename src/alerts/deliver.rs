//! Delivering alerts: to an SNS topic and, where configured, an EventBridge bus, at least
//! once, with per-rule suppression.
//!
//! A message is deleted only after the alerts of its files are out. Whether a file's alerts
//! were already published is kept on the archived version itself, as the object tag
//! `trailvault-alerts=published`, set once every alert of the file is out:
//!
//! - a worker that dies between the archive write and the publish leaves no tag: the
//!   redelivered message finds the version archived, untagged, and publishes;
//! - a redelivery after the tag was set finds it and publishes nothing;
//! - a worker that dies after the publish and before the tag publishes again on redelivery:
//!   the alerts carry the same deduplication key (the rule and the record's eventID), which
//!   is what a subscriber deduplicates on (SNS FIFO topics do it themselves, within five
//!   minutes).
//!
//! Tags are not evidence (Object Lock does not cover them, and anyone with
//! s3:PutObjectVersionTagging can set one). A version the worker has just written is
//! published whatever its tags say (no alert of it can be out yet), so a tag planted on new
//! versions silences nothing; a planted tag can only keep a redelivery of an already archived
//! file from publishing, and never hides a record, which `trailvault alerts scan` finds.
//!
//! Suppression: a rule with a window publishes its first match per account, then folds the
//! matches of the rest of the window into one summary alert published when the window ends
//! (or the worker stops). Windows are per replica and in memory: a replica that dies loses
//! its count of folded matches, never a record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_s3::types::{Tag, Tagging};
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::eval::{FileMatches, Match, Rules};
use crate::archive::layout::{printable, rfc3339};
use crate::aws::{Aws, Failure};
use crate::config::{Config, Rule};
use crate::telemetry::metrics::{Metrics, RuleLabel, RuleSeverity};

/// The tag on an archived version whose alerts are out.
pub const PUBLISHED_TAG: &str = "trailvault-alerts";
/// SNS's limit on a message with its attributes; EventBridge's on a PutEvents request.
const MAX_MESSAGE: usize = 256 * 1024;
/// Both services take at most ten entries per batch.
const MAX_BATCH: usize = 10;
/// Examples of folded matches a summary names.
const EXAMPLES: usize = 5;

/// Where an archived file is, for its alerts' evidence.
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    pub account: &'a str,
    pub account_name: &'a str,
    /// The region of the trail's file (from its key).
    pub region: &'a str,
    pub archive_bucket: &'a str,
    pub archive_key: &'a str,
    pub version_id: Option<&'a str>,
    pub sha256: &'a str,
    pub source_bucket: &'a str,
    pub source_key: &'a str,
}

/// How a file's delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// `alerts` published, `folded` into suppression windows.
    Published { alerts: usize, folded: usize },
    /// The version carries the published tag: a redelivery; nothing sent again.
    AlreadyPublished,
}

/// Why alerts are not out yet: the message stays and is retried.
#[derive(Debug, thiserror::Error)]
#[error("{action} failed: {}; {what_to_do}", failure.detail)]
pub struct AlertError {
    pub action: String,
    pub failure: Failure,
    pub what_to_do: &'static str,
}

/// A suppression window of one rule and account.
#[derive(Debug)]
struct Window {
    opened: Instant,
    opened_at: OffsetDateTime,
    length: Duration,
    folded: u64,
    examples: Vec<Value>,
    account_name: String,
}

/// One alert, ready to send.
struct Outgoing {
    rule: usize,
    dedup_key: String,
    subject: String,
    body: String,
}

/// Publishes alerts. Built once per run; shared by every copy.
pub struct Alerter {
    rules: Rules,
    sns: Option<(aws_sdk_sns::Client, String)>,
    events: Option<(aws_sdk_eventbridge::Client, String)>,
    archive: aws_sdk_s3::Client,
    metrics: Arc<Metrics>,
    windows: Mutex<HashMap<(usize, String), Window>>,
    /// Windows that ended with folded matches, waiting for their summary.
    ended: Mutex<Vec<((usize, String), Window)>>,
}

impl Alerter {
    /// `None` when the configuration has no `[alerts]`.
    pub fn new(
        config: &Config,
        aws: &Aws,
        archive: aws_sdk_s3::Client,
        metrics: Arc<Metrics>,
    ) -> Option<Alerter> {
        let alerts = config.alerts.as_ref()?;
        Some(Alerter {
            rules: Rules::new(alerts.rules.clone()),
            sns: alerts
                .sns_topic
                .as_ref()
                .map(|d| (aws.sns(&d.region), d.arn.clone())),
            events: alerts
                .event_bus
                .as_ref()
                .map(|d| (aws.events(&d.region), d.arn.clone())),
            archive,
            metrics,
            windows: Mutex::new(HashMap::new()),
            ended: Mutex::new(Vec::new()),
        })
    }

    pub fn rules(&self) -> Rules {
        self.rules.clone()
    }

    fn rule(&self, i: usize) -> &Rule {
        self.rules.get(i)
    }

    /// Publishes a file's alerts, unless its archived version says they are out already;
    /// then tags the version.
    /// `fresh`: this copy wrote the version just now, so no alert of it can be out yet, and a
    /// published tag on it (planted in the moment since) is not believed.
    pub async fn deliver(
        &self,
        ev: &Evidence<'_>,
        matches: &FileMatches,
        fresh: bool,
    ) -> Result<Delivered, AlertError> {
        // Read even for a fresh version: a legal hold placed since keeps its tags beside ours.
        let tags = self.tags(ev).await?;
        if !fresh && tags.iter().any(|t| t.key() == PUBLISHED_TAG) {
            info!(archive_key = %printable(ev.archive_key), "alerts already published for this version (tagged); not sent again");
            return Ok(Delivered::AlreadyPublished);
        }
        let now = Instant::now();
        // A window is opened as soon as its first alert is decided on, so that copies running
        // at the same time fold into it rather than alert too; if the alert then fails, the
        // window is closed again (unless others folded into it: their summary still comes).
        // Folds are counted only once the file's alerts are out, so a retry counts nothing
        // twice.
        let mut outgoing = Vec::new();
        let mut folds: Vec<(usize, &Match)> = Vec::new();
        let mut opened: Vec<usize> = Vec::new();
        {
            let mut windows = self.windows.lock().expect("windows lock");
            for m in &matches.matches {
                let rule = self.rule(m.rule);
                if let Some(length) = rule.suppress {
                    let key = (m.rule, ev.account.to_owned());
                    let open = windows
                        .get(&key)
                        .is_some_and(|w| now.duration_since(w.opened) < w.length);
                    if open {
                        folds.push((m.rule, m));
                        continue;
                    }
                    let fresh = Window {
                        opened: now,
                        opened_at: OffsetDateTime::now_utc(),
                        length,
                        folded: 0,
                        examples: Vec::new(),
                        account_name: ev.account_name.to_owned(),
                    };
                    if let Some(old) = windows.insert(key.clone(), fresh) {
                        if old.folded > 0 {
                            self.ended.lock().expect("ended lock").push((key, old));
                        }
                    }
                    opened.push(m.rule);
                }
                outgoing.push(self.alert(m, ev));
            }
        }
        for (&rule, &count) in &matches.overflow {
            outgoing.push(self.overflow(rule, count, ev));
        }
        if let Err(e) = self.send(&outgoing).await {
            let mut windows = self.windows.lock().expect("windows lock");
            for rule in opened {
                let key = (rule, ev.account.to_owned());
                if windows
                    .get(&key)
                    .is_some_and(|w| w.opened == now && w.folded == 0)
                {
                    windows.remove(&key);
                }
            }
            return Err(e);
        }
        self.tag(ev, tags).await?;

        {
            let mut windows = self.windows.lock().expect("windows lock");
            for (rule, m) in &folds {
                if let Some(w) = windows.get_mut(&(*rule, ev.account.to_owned())) {
                    w.folded += 1;
                    if w.examples.len() < EXAMPLES {
                        w.examples.push(json!({
                            "event_id": m.event_id,
                            "event_time": m.about.get("event_time"),
                            "archive_key": ev.archive_key,
                            "version_id": ev.version_id,
                        }));
                    }
                }
                self.metrics
                    .alerts_folded
                    .get_or_create(&RuleLabel {
                        rule: self.rule(*rule).name.clone(),
                    })
                    .inc();
            }
        }
        for o in &outgoing {
            let rule = self.rule(o.rule);
            warn!(rule = %rule.name, severity = rule.severity.name(), account = ev.account,
                region = ev.region, dedup_key = %printable(&o.dedup_key),
                archive_key = %printable(ev.archive_key), "alert published");
        }
        Ok(Delivered::Published {
            alerts: outgoing.len(),
            folded: folds.len(),
        })
    }

    /// Publishes the summaries of windows that ended (every window with folded matches when
    /// `all`, at shutdown). A summary that fails stays for the next call.
    pub async fn flush(&self, all: bool) {
        let now = Instant::now();
        let mut due = std::mem::take(&mut *self.ended.lock().expect("ended lock"));
        {
            let mut windows = self.windows.lock().expect("windows lock");
            let keys: Vec<(usize, String)> = windows
                .iter()
                .filter(|(_, w)| w.folded > 0 && (all || now.duration_since(w.opened) >= w.length))
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                if let Some(w) = windows.remove(&k) {
                    due.push((k, w));
                }
            }
        }
        let mut failed = Vec::new();
        for (key, window) in due {
            let summary = self.summary(&key, &window);
            match self.send(std::slice::from_ref(&summary)).await {
                Ok(()) => {
                    let rule = self.rule(key.0);
                    warn!(rule = %rule.name, account = %key.1, folded = window.folded,
                        dedup_key = %summary.dedup_key, "alert summary published");
                }
                Err(e) => {
                    self.metrics.alert_failures.inc();
                    error!(error = %e, rule = %self.rule(key.0).name, account = %key.1,
                        folded = window.folded, "could not publish a suppression summary; retried");
                    failed.push((key, window));
                }
            }
        }
        self.ended.lock().expect("ended lock").extend(failed);
    }

    /// Flushes ended windows every second until `stop`, then every window once.
    pub async fn every(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => self.flush(false).await,
                () = stop.cancelled() => break,
            }
        }
        self.flush(true).await;
        let left: u64 = self
            .ended
            .lock()
            .expect("ended lock")
            .iter()
            .map(|(_, w)| w.folded)
            .sum();
        if left > 0 {
            error!(
                folded = left,
                "stopping with suppression summaries unpublished: their \
                matches are archived; find them with `trailvault alerts scan`"
            );
        }
    }

    fn alert(&self, m: &Match, ev: &Evidence<'_>) -> Outgoing {
        let rule = self.rule(m.rule);
        let dedup_key = match &m.event_id {
            Some(id) => format!("{}/{id}", rule.name),
            // No eventID (not CloudTrail's own record): the file's bytes and the place in it.
            None => format!("{}/{}#{}", rule.name, ev.sha256, m.index),
        };
        let mut envelope = self.envelope(rule, "match", &dedup_key, ev.account, ev.account_name);
        envelope.insert("region".to_owned(), json!(ev.region));
        envelope.insert("event_id".to_owned(), json!(m.event_id));
        for (k, v) in &m.about {
            envelope.insert(k.clone(), v.clone());
        }
        envelope.insert("evidence".to_owned(), evidence(ev, Some(m.index)));
        if !m.trimmed.is_empty() {
            envelope.insert("trimmed".to_owned(), json!(m.trimmed));
        }
        // The record as it was serialized (and trimmed) once, not parsed again.
        let mut body = Value::Object(envelope).to_string();
        body.pop();
        body.push_str(",\"record\":");
        body.push_str(&m.record);
        body.push('}');
        Outgoing {
            rule: m.rule,
            subject: subject(rule, ev.account),
            dedup_key,
            body,
        }
    }

    fn overflow(&self, rule_index: usize, count: u64, ev: &Evidence<'_>) -> Outgoing {
        let rule = self.rule(rule_index);
        let dedup_key = format!("{}/{}/overflow", rule.name, ev.sha256);
        let mut envelope = self.envelope(rule, "overflow", &dedup_key, ev.account, ev.account_name);
        envelope.insert("region".to_owned(), json!(ev.region));
        envelope.insert("count".to_owned(), json!(count));
        envelope.insert(
            "note".to_owned(),
            json!(format!(
                "{count} more record(s) of this file matched, past what one file's alerts \
                 carry; list them with `trailvault alerts scan --rule {}`",
                rule.name
            )),
        );
        envelope.insert("evidence".to_owned(), evidence(ev, None));
        Outgoing {
            rule: rule_index,
            subject: subject(rule, ev.account),
            dedup_key,
            body: Value::Object(envelope).to_string(),
        }
    }

    fn summary(&self, (rule_index, account): &(usize, String), w: &Window) -> Outgoing {
        let rule = self.rule(*rule_index);
        let from = rfc3339(w.opened_at);
        let dedup_key = format!("{}/{account}/suppressed/{from}", rule.name);
        let mut envelope = self.envelope(rule, "summary", &dedup_key, account, &w.account_name);
        envelope.insert("folded".to_owned(), json!(w.folded));
        envelope.insert("window_from".to_owned(), json!(from));
        envelope.insert("window_secs".to_owned(), json!(w.length.as_secs()));
        envelope.insert("examples".to_owned(), json!(w.examples));
        Outgoing {
            rule: *rule_index,
            subject: subject(rule, account),
            dedup_key,
            body: Value::Object(envelope).to_string(),
        }
    }

    fn envelope(
        &self,
        rule: &Rule,
        kind: &str,
        dedup_key: &str,
        account: &str,
        account_name: &str,
    ) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("source".to_owned(), json!("trailvault"));
        m.insert("kind".to_owned(), json!(kind));
        m.insert("rule".to_owned(), json!(rule.name));
        m.insert("control".to_owned(), json!(rule.control));
        m.insert("severity".to_owned(), json!(rule.severity.name()));
        m.insert("description".to_owned(), json!(rule.description));
        m.insert("dedup_key".to_owned(), json!(dedup_key));
        m.insert("account".to_owned(), json!(account));
        m.insert("account_name".to_owned(), json!(account_name));
        m
    }

    /// Sends to every destination, in batches; an error once any entry failed.
    async fn send(&self, outgoing: &[Outgoing]) -> Result<(), AlertError> {
        if outgoing.is_empty() {
            return Ok(());
        }
        for batch in batches(outgoing) {
            if let Some((sns, topic)) = &self.sns {
                self.publish(sns, topic, batch).await?;
            }
            if let Some((events, bus)) = &self.events {
                self.put_events(events, bus, batch).await?;
            }
        }
        for o in outgoing {
            let rule = self.rule(o.rule);
            self.metrics
                .alerts
                .get_or_create(&RuleSeverity {
                    rule: rule.name.clone(),
                    severity: rule.severity.name(),
                })
                .inc();
        }
        Ok(())
    }

    async fn publish(
        &self,
        sns: &aws_sdk_sns::Client,
        topic: &str,
        batch: &[Outgoing],
    ) -> Result<(), AlertError> {
        let fifo = topic.ends_with(".fifo");
        let entries = batch
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let rule = self.rule(o.rule);
                let attr = |v: &str| {
                    MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(v)
                        .build()
                        .expect("data type is set")
                };
                let mut e = PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .subject(&o.subject)
                    .message(&o.body)
                    .message_attributes("rule", attr(&rule.name))
                    .message_attributes("severity", attr(rule.severity.name()))
                    .message_attributes("dedup_key", attr(&o.dedup_key));
                if fifo {
                    // SNS FIFO deduplicates within five minutes by this id (at most 128
                    // characters): the key's hash.
                    e = e
                        .message_group_id(&rule.name)
                        .message_deduplication_id(hex::encode(Sha256::digest(&o.dedup_key)));
                }
                e.build().expect("id and message are set")
            })
            .collect();
        let failed = |failure: Failure| AlertError {
            action: format!("sns:Publish to {topic}"),
            failure,
            what_to_do: "check the topic exists, the worker may sns:Publish to it and use its \
                         KMS key (kms:GenerateDataKey*, kms:Decrypt); the message stays and \
                         is retried",
        };
        let out = sns
            .publish_batch()
            .topic_arn(topic)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
            .map_err(|e| failed(Failure::from_sdk(&e)))?;
        if let Some(f) = out.failed().first() {
            return Err(failed(Failure {
                status: None,
                code: Some(f.code().to_owned()),
                retryable: !f.sender_fault(),
                detail: format!(
                    "{} of {} entries refused, the first: {}: {}",
                    out.failed().len(),
                    batch.len(),
                    f.code(),
                    f.message().unwrap_or("")
                ),
            }));
        }
        Ok(())
    }

    async fn put_events(
        &self,
        events: &aws_sdk_eventbridge::Client,
        bus: &str,
        batch: &[Outgoing],
    ) -> Result<(), AlertError> {
        let entries = batch
            .iter()
            .map(|o| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(bus)
                    .source("trailvault")
                    .detail_type("trailvault alert")
                    .detail(&o.body)
                    .build()
            })
            .collect();
        let failed = |failure: Failure| AlertError {
            action: format!("events:PutEvents on {bus}"),
            failure,
            what_to_do: "check the bus exists and the worker may events:PutEvents on it; the \
                         message stays and is retried",
        };
        let out = events
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| failed(Failure::from_sdk(&e)))?;
        if out.failed_entry_count() > 0 {
            let first = out
                .entries()
                .iter()
                .find(|e| e.error_code().is_some())
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.error_code().unwrap_or(""),
                        e.error_message().unwrap_or("")
                    )
                })
                .unwrap_or_default();
            return Err(failed(Failure {
                status: None,
                code: None,
                retryable: true,
                detail: format!(
                    "{} of {} entries refused, the first: {first}",
                    out.failed_entry_count(),
                    batch.len()
                ),
            }));
        }
        Ok(())
    }

    async fn tags(&self, ev: &Evidence<'_>) -> Result<Vec<Tag>, AlertError> {
        self.archive
            .get_object_tagging()
            .bucket(ev.archive_bucket)
            .key(ev.archive_key)
            .set_version_id(ev.version_id.map(str::to_owned))
            .send()
            .await
            .map(|out| out.tag_set().to_vec())
            .map_err(|e| {
                tagging_error(
                    "GetObjectTagging",
                    ev,
                    Failure::from_sdk(&e),
                    "the worker needs s3:GetObjectVersionTagging on the archive bucket to \
                     know whether a file's alerts are out; the message stays and is retried",
                )
            })
    }

    /// Adds the published tag to the version's tags (a legal hold keeps its own there).
    async fn tag(&self, ev: &Evidence<'_>, mut tags: Vec<Tag>) -> Result<(), AlertError> {
        tags.push(
            Tag::builder()
                .key(PUBLISHED_TAG)
                .value("published")
                .build()
                .expect("key and value are set"),
        );
        crate::failpoint::hit("before_alert_tag");
        self.archive
            .put_object_tagging()
            .bucket(ev.archive_bucket)
            .key(ev.archive_key)
            .set_version_id(ev.version_id.map(str::to_owned))
            .tagging(
                Tagging::builder()
                    .set_tag_set(Some(tags))
                    .build()
                    .expect("tag set is set"),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                tagging_error(
                    "PutObjectTagging",
                    ev,
                    Failure::from_sdk(&e),
                    "the alerts are out, but without the tag a redelivery publishes them \
                     again; the worker needs s3:PutObjectVersionTagging on the archive bucket",
                )
            })
    }
}

/// A tagging call on the archived version that failed.
fn tagging_error(
    action: &str,
    ev: &Evidence<'_>,
    failure: Failure,
    what_to_do: &'static str,
) -> AlertError {
    AlertError {
        action: format!(
            "{action} on s3://{}/{}",
            ev.archive_bucket,
            printable(ev.archive_key)
        ),
        failure,
        what_to_do,
    }
}

fn evidence(ev: &Evidence<'_>, index: Option<u64>) -> Value {
    let mut v = json!({
        "bucket": ev.archive_bucket,
        "key": ev.archive_key,
        "version_id": ev.version_id,
        "sha256": ev.sha256,
        "source_bucket": ev.source_bucket,
        "source_key": ev.source_key,
    });
    if let Some(i) = index {
        v["record_index"] = json!(i);
    }
    v
}

/// SNS subjects are at most 100 printable ASCII characters.
fn subject(rule: &Rule, account: &str) -> String {
    let s = format!(
        "trailvault {}: {} in {account}",
        rule.severity.name(),
        rule.name
    );
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect()
}

/// At most ten entries and [`MAX_MESSAGE`] bytes a batch (with room for attributes).
fn batches(outgoing: &[Outgoing]) -> Vec<&[Outgoing]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, o) in outgoing.iter().enumerate() {
        let n = o.body.len() + o.subject.len() + o.dedup_key.len() + 512;
        if i > start && (i - start == MAX_BATCH || size + n > MAX_MESSAGE) {
            out.push(&outgoing[start..i]);
            start = i;
            size = 0;
        }
        size += n;
    }
    if start < outgoing.len() {
        out.push(&outgoing[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(size: usize) -> Outgoing {
        Outgoing {
            rule: 0,
            dedup_key: "r/e".to_owned(),
            subject: "s".to_owned(),
            body: "x".repeat(size),
        }
    }

    #[test]
    fn batches_hold_ten_entries_and_fit_the_size_limit() {
        let small: Vec<Outgoing> = (0..23).map(|_| outgoing(100)).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [10, 10, 3]);
        let big: Vec<Outgoing> = (0..5).map(|_| outgoing(200 * 1024)).collect();
        let sizes: Vec<usize> = batches(&big).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [1, 1, 1, 1, 1]);
        let mixed = vec![outgoing(100_000), outgoing(100_000), outgoing(100_000)];
        let sizes: Vec<usize> = batches(&mixed).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 1]);
        assert!(batches(&[]).is_empty());
    }
}
