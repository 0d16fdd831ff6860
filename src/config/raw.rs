//! The file, as written. Every struct refuses unknown fields, so a typo is an error, not a
//! silently ignored setting.

use serde::{Deserialize, Serialize};

use super::alerts::RawAlerts;
use super::completeness::{RawDiscovery, RawSweep};
use super::retention::RawRetention;

// ---------------------------------------------------------------------------------------------
// The file, as written. Every struct refuses unknown fields, so a typo is an error, not a
// silently ignored setting.

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub archive: RawArchive,
    #[serde(default)]
    pub aws: RawAws,
    #[serde(default)]
    pub queues: Vec<RawQueue>,
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
    pub retention: RawRetention,
    #[serde(default)]
    pub worker: RawWorker,
    #[serde(default)]
    pub telemetry: RawTelemetry,
    #[serde(default)]
    pub manifest: RawManifest,
    #[serde(default)]
    pub sweep: RawSweep,
    #[serde(default)]
    pub discovery: RawDiscovery,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<RawAlerts>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawArchive {
    pub bucket: String,
    pub region: String,
    pub kms_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    #[serde(default)]
    pub key_prefix: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    #[serde(default)]
    pub force_path_style: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub reader_role_arn: String,
    pub external_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_after_days: Option<u32>,
    #[serde(default)]
    pub buckets: Vec<RawBucket>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBucket {
    pub name: String,
    pub region: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorker {
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    #[serde(default = "default_visibility_timeout_secs")]
    pub visibility_timeout_secs: u64,
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
}

impl Default for RawWorker {
    fn default() -> Self {
        RawWorker {
            max_in_flight: default_max_in_flight(),
            visibility_timeout_secs: default_visibility_timeout_secs(),
            shutdown_grace_secs: default_shutdown_grace_secs(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    #[serde(default = "default_manifest_period_secs")]
    pub period_secs: u64,
}

impl Default for RawManifest {
    fn default() -> Self {
        RawManifest {
            period_secs: default_manifest_period_secs(),
        }
    }
}

/// A minute: messages wait at most that long for their listing, and a busy replica writes
/// 1,440 manifests a day (an idle one none).
fn default_manifest_period_secs() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default = "default_metrics_address")]
    pub metrics_address: String,
}

impl Default for RawTelemetry {
    fn default() -> Self {
        RawTelemetry {
            log_format: LogFormat::default(),
            metrics_address: default_metrics_address(),
        }
    }
}

/// Enough objects in flight to keep a few hundred KB/s of small CloudTrail files moving per
/// replica; raise it for large backlogs, lower it when memory is tight.
fn default_max_in_flight() -> usize {
    32
}

/// Five minutes: far above the seconds a CloudTrail file takes to copy, so the heartbeat
/// rarely matters, yet a crashed replica's messages come back within minutes.
fn default_visibility_timeout_secs() -> u64 {
    300
}

/// ECS gives a task 30 s between SIGTERM and SIGKILL by default.
fn default_shutdown_grace_secs() -> u64 {
    25
}

fn default_metrics_address() -> String {
    "127.0.0.1:9090".to_owned()
}

/// How logs are written: text for people, JSON for log pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
