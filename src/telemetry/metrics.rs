//! The worker's metrics, in Prometheus text format on `/metrics`.
//!
//! Names follow `trailvault_<thing>_<unit>_total` (the `_total` is added to counters by the
//! encoder). Labels are bounded: queue and account names come from the configuration, the
//! rest from fixed lists; never an object key.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Bounds for the latency histograms (queue wait, notification to archived): the round
/// figures an objective is written in (1 s, 2 s, a minute) are bounds, so whether it holds is
/// read off a bucket rather than interpolated; 25 ms to 15 minutes (the longest manifest
/// period).
const LATENCY_BUCKETS: [f64; 16] = [
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleSeverity {
    pub rule: String,
    pub severity: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueOutcome {
    pub queue: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueState {
    pub queue: String,
    /// `visible`, `in_flight`, or `dead_letter`.
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub account: String,
    /// `log`, `digest`, `insight`.
    pub kind: &'static str,
    /// `archived`, `duplicate`, `conflict`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountLabel {
    pub account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabel {
    pub task: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: &'static str,
}

/// Every metric the worker keeps, registered once.
pub struct Metrics {
    registry: Registry,
    pub messages_received: Family<QueueLabel, Counter>,
    /// Deleted after their work: `archived` (every object archived or already there),
    /// or the no-work kinds (`s3_test_event`, `cloudtrail_validation`, `other_event`).
    pub messages_deleted: Family<QueueOutcome, Counter>,
    /// Left on the queue: `retry` (comes back after the visibility timeout), `park` (comes
    /// back at once, and reaches the dead-letter queue by redrive), `shutdown` (handed back).
    pub messages_returned: Family<QueueOutcome, Counter>,
    pub objects: Family<ObjectLabels, Counter>,
    pub archived_bytes: Family<AccountLabel, Counter>,
    pub quarantined: Family<AccountLabel, Counter>,
    /// Every failure, by a bounded reason: malformed messages, refusals, copy errors.
    pub failures: Family<ReasonLabel, Counter>,
    pub receive_errors: Family<QueueLabel, Counter>,
    pub acknowledge_errors: Family<QueueLabel, Counter>,
    pub lock_repairs: Counter,
    pub copy_seconds: Histogram,
    pub lag_seconds: Histogram,
    pub queue_messages: Family<QueueState, Gauge>,
    /// Settings in which the archive bucket differed from the retention policy at the last
    /// check (0 once equal, or once enforced).
    pub retention_drift: Gauge,
    /// Checks of the archive bucket against the policy: `equal`, `applied`, `drift` (report
    /// mode), `refused` (would weaken a COMPLIANCE default), `failed`.
    pub retention_checks: Family<ResultLabel, Counter>,
    pub manifests_written: Counter,
    pub manifest_entries: Counter,
    pub manifest_failures: Counter,
    /// Files the sweep found in a member bucket but not in the archive, and archived: each
    /// is a notification that never came.
    pub missed_notifications: Family<AccountLabel, Counter>,
    /// Sweeps, by result: `complete`, `archived` (found missed files), `failed`, `deferred`
    /// (a backlog on the queues).
    pub sweeps: Family<ResultLabel, Counter>,
    /// Organization accounts at the last discovery, by status (`served`, `suspended`,
    /// `excluded`, `no_trail`, `failed`).
    pub discovered_accounts: Family<StatusLabel, Gauge>,
    pub discovery_failures: Counter,
    /// Panics caught (a bug), by the task that panicked (`message`, `sweep`, `backfill`).
    pub panics: Family<TaskLabel, Counter>,
    /// Alerts published (each match, and each summary of folded matches), by rule.
    pub alerts: Family<RuleSeverity, Counter>,
    /// Matches folded into a suppression window's summary instead of alerting alone.
    pub alerts_folded: Family<RuleLabel, Counter>,
    /// Deliveries (a file's alerts, or a suppression summary) that failed: SNS, EventBridge or
    /// the published tag. The message stays until they succeed.
    pub alert_failures: Counter,
    /// Copy slots taken, of `worker.max_in_flight`. A receive never holds one while it waits.
    pub slots_in_use: Gauge,
    /// ReceiveMessage calls waiting on SQS (long polls), whatever the slots.
    pub receives_waiting: Gauge,
    /// From SQS's SentTimestamp to the message's receipt.
    pub queue_wait_seconds: Histogram,
    /// From SQS's SentTimestamp to its delete confirmed: notification to archived and listed.
    pub end_to_end_seconds: Histogram,
    /// Messages whose visibility ran out while they were worked on: another consumer may
    /// have received them (their copies are idempotent; the delete may be refused).
    pub visibility_lapsed: Family<QueueLabel, Counter>,
    healthy: AtomicBool,
    health_detail: Mutex<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            messages_received: Family::default(),
            messages_deleted: Family::default(),
            messages_returned: Family::default(),
            objects: Family::default(),
            archived_bytes: Family::default(),
            quarantined: Family::default(),
            failures: Family::default(),
            receive_errors: Family::default(),
            acknowledge_errors: Family::default(),
            lock_repairs: Counter::default(),
            // 10 ms to about 80 s.
            copy_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            // 1 s to about 4.5 h.
            lag_seconds: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            queue_messages: Family::default(),
            retention_drift: Gauge::default(),
            retention_checks: Family::default(),
            manifests_written: Counter::default(),
            manifest_entries: Counter::default(),
            manifest_failures: Counter::default(),
            missed_notifications: Family::default(),
            sweeps: Family::default(),
            discovered_accounts: Family::default(),
            discovery_failures: Counter::default(),
            panics: Family::default(),
            alerts: Family::default(),
            alerts_folded: Family::default(),
            alert_failures: Counter::default(),
            slots_in_use: Gauge::default(),
            receives_waiting: Gauge::default(),
            queue_wait_seconds: Histogram::new(LATENCY_BUCKETS.iter().copied()),
            end_to_end_seconds: Histogram::new(LATENCY_BUCKETS.iter().copied()),
            visibility_lapsed: Family::default(),
            registry: Registry::default(),
            healthy: AtomicBool::new(false),
            health_detail: Mutex::new("starting".to_owned()),
        };
        registry.register(
            "trailvault_messages_received",
            "Messages received from SQS",
            m.messages_received.clone(),
        );
        registry.register(
            "trailvault_messages_deleted",
            "Messages deleted after their work, by outcome",
            m.messages_deleted.clone(),
        );
        registry.register(
            "trailvault_messages_returned",
            "Messages left on the queue, by why",
            m.messages_returned.clone(),
        );
        registry.register(
            "trailvault_objects",
            "Objects copied, by account, kind and outcome",
            m.objects.clone(),
        );
        registry.register(
            "trailvault_archived_bytes",
            "Bytes written to the archive",
            m.archived_bytes.clone(),
        );
        registry.register(
            "trailvault_quarantined_objects",
            "Objects archived but marked quarantined",
            m.quarantined.clone(),
        );
        registry.register(
            "trailvault_failures",
            "Failures, by reason",
            m.failures.clone(),
        );
        registry.register(
            "trailvault_receive_errors",
            "Failed ReceiveMessage calls",
            m.receive_errors.clone(),
        );
        registry.register(
            "trailvault_acknowledge_errors",
            "Deletes or visibility changes SQS refused",
            m.acknowledge_errors.clone(),
        );
        registry.register(
            "trailvault_lock_repairs",
            "Archived versions whose lock was extended to the policy",
            m.lock_repairs.clone(),
        );
        registry.register(
            "trailvault_copy_duration_seconds",
            "Time to copy and check one object",
            m.copy_seconds.clone(),
        );
        registry.register(
            "trailvault_notification_lag_seconds",
            "From the S3 event to the archived copy",
            m.lag_seconds.clone(),
        );
        registry.register(
            "trailvault_queue_messages",
            "Messages on each queue (polled)",
            m.queue_messages.clone(),
        );
        registry.register(
            "trailvault_retention_drift_settings",
            "Settings in which the archive bucket differed from the retention policy at the last check",
            m.retention_drift.clone(),
        );
        registry.register(
            "trailvault_retention_checks",
            "Checks of the archive bucket against the retention policy, by result",
            m.retention_checks.clone(),
        );
        registry.register(
            "trailvault_manifests_written",
            "Signed manifests appended to the archive's chain",
            m.manifests_written.clone(),
        );
        registry.register(
            "trailvault_manifest_entries",
            "Archived versions listed in written manifests",
            m.manifest_entries.clone(),
        );
        registry.register(
            "trailvault_manifest_failures",
            "Manifests that could not be written (their entries wait for the next attempt)",
            m.manifest_failures.clone(),
        );
        registry.register(
            "trailvault_missed_notifications",
            "Files the sweep archived that no notification brought (a broken notification setup)",
            m.missed_notifications.clone(),
        );
        registry.register(
            "trailvault_sweeps",
            "Reconciliation sweeps of the member buckets' recent files, by result",
            m.sweeps.clone(),
        );
        registry.register(
            "trailvault_discovered_accounts",
            "Organization accounts at the last discovery, by status",
            m.discovered_accounts.clone(),
        );
        registry.register(
            "trailvault_alerts",
            "Alerts published, by rule and severity",
            m.alerts.clone(),
        );
        registry.register(
            "trailvault_alerts_folded",
            "Matches folded into a suppression window's summary, by rule",
            m.alerts_folded.clone(),
        );
        registry.register(
            "trailvault_alert_failures",
            "Failed alert deliveries (SNS, EventBridge, or the published tag); retried",
            m.alert_failures.clone(),
        );
        registry.register(
            "trailvault_discovery_failures",
            "Discoveries that could not list the organization",
            m.discovery_failures.clone(),
        );
        registry.register(
            "trailvault_panics",
            "Panics caught and survived (each one a bug to report), by task",
            m.panics.clone(),
        );
        registry.register(
            "trailvault_slots_in_use",
            "Copy slots taken, of worker.max_in_flight",
            m.slots_in_use.clone(),
        );
        registry.register(
            "trailvault_receives_waiting",
            "ReceiveMessage calls waiting on SQS (long polls)",
            m.receives_waiting.clone(),
        );
        registry.register(
            "trailvault_queue_wait_seconds",
            "From a message's SentTimestamp to its receipt",
            m.queue_wait_seconds.clone(),
        );
        registry.register(
            "trailvault_end_to_end_seconds",
            "From a message's SentTimestamp to its delete confirmed (archived, checked, listed)",
            m.end_to_end_seconds.clone(),
        );
        registry.register(
            "trailvault_visibility_lapsed",
            "Messages whose visibility ran out while they were worked on",
            m.visibility_lapsed.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    pub fn set_health(&self, healthy: bool, detail: String) {
        self.healthy.store(healthy, Ordering::Relaxed);
        *self.health_detail.lock().expect("health lock") = detail;
    }

    pub fn health(&self) -> (bool, String) {
        let detail = self.health_detail.lock().expect("health lock").clone();
        (self.healthy.load(Ordering::Relaxed), detail)
    }
}
