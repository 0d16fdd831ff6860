//! The validated configuration: what every command works from.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use super::alerts::Alerts;
use super::completeness::{Discovery, Sweep};
use super::ids::{AccountId, BucketName, KmsKey, QueueUrl, Region, RoleArn};
use super::raw::*;
use crate::retention::policy::Retention;

// ---------------------------------------------------------------------------------------------
// The validated configuration.

/// A deployment, validated. Built only by [`Config::load`] or [`Config::from_raw`].
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub archive: Archive,
    pub aws: AwsSettings,
    pub queues: Vec<Queue>,
    pub accounts: Vec<Account>,
    pub retention: Retention,
    pub worker: Worker,
    pub telemetry: Telemetry,
    pub manifest: Manifest,
    pub sweep: Sweep,
    /// `None`: only the configured accounts are served.
    pub discovery: Option<Discovery>,
    /// `None`: alerts are off.
    pub alerts: Option<Alerts>,
}

/// The central archive bucket in the security account.
#[derive(Debug, Clone, PartialEq)]
pub struct Archive {
    pub bucket: BucketName,
    pub region: Region,
    /// The KMS key every archived object is encrypted under (SSE-KMS).
    pub kms_key: KmsKey,
    /// The asymmetric KMS key that signs the archive's manifests.
    pub signing_key: Option<KmsKey>,
    /// Prepended to every archive key: `{key_prefix}{source bucket}/{source key}`.
    pub key_prefix: String,
}

/// How trailvault reaches AWS. Credentials and region come from the standard aws-config chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsSettings {
    /// Sends every client, STS included, to this endpoint (the local emulator).
    pub endpoint_url: Option<String>,
    /// Addresses buckets as `endpoint/bucket` instead of `bucket.endpoint`.
    pub force_path_style: bool,
}

/// A queue S3 notifies (one per region with source buckets).
#[derive(Debug, Clone, PartialEq)]
pub struct Queue {
    pub url: QueueUrl,
}

/// A member account and the buckets its CloudTrail writes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: AccountId,
    /// A label for logs and metrics; the account id when not set.
    pub name: String,
    pub reader_role_arn: RoleArn,
    pub external_id: String,
    /// Source objects older than this many days may be deleted by `trailvault source-cleanup`,
    /// once the archive holds them byte for byte (0: as soon as it does). `None`: never.
    pub cleanup_after_days: Option<u32>,
    pub buckets: Vec<SourceBucket>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceBucket {
    pub name: BucketName,
    pub region: Region,
}

/// How one worker replica paces itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    /// Objects copied at once; each holds at most one multipart part in memory.
    pub max_in_flight: NonZeroUsize,
    /// How long a received message stays hidden from other replicas; extended at half-time
    /// while its copy runs, so it only bounds how soon a crashed replica's work comes back.
    pub visibility_timeout: Duration,
    /// How long a stopping replica lets in-flight copies finish before handing the rest back.
    pub shutdown_grace: Duration,
}

/// The archive's own signed manifests (written when `archive.signing_key` is set).
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// How often a worker replica writes the manifest of what it archived.
    pub period: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    /// Text for people, JSON for log pipelines.
    pub log_format: LogFormat,
    /// Where `/healthz` and `/metrics` listen; port 0 picks a free one.
    pub metrics_address: SocketAddr,
}

impl Config {
    /// The account whose buckets include `bucket`, if any.
    pub fn account_for_bucket(&self, bucket: &str) -> Option<&Account> {
        self.accounts
            .iter()
            .find(|a| a.buckets.iter().any(|b| b.name.as_str() == bucket))
    }

    /// The configuration with every default filled in, in the file's own format: feeding it
    /// back to [`Config::from_raw`] gives the same `Config`.
    pub fn to_raw(&self) -> RawConfig {
        RawConfig {
            archive: RawArchive {
                bucket: self.archive.bucket.to_string(),
                region: self.archive.region.to_string(),
                kms_key: self.archive.kms_key.to_string(),
                signing_key: self.archive.signing_key.as_ref().map(|k| k.to_string()),
                key_prefix: self.archive.key_prefix.clone(),
            },
            aws: RawAws {
                endpoint_url: self.aws.endpoint_url.clone(),
                force_path_style: self.aws.force_path_style,
            },
            queues: self
                .queues
                .iter()
                .map(|q| RawQueue {
                    url: q.url.to_string(),
                    region: Some(q.url.region().to_string()),
                })
                .collect(),
            accounts: self
                .accounts
                .iter()
                .map(|a| RawAccount {
                    id: a.id.to_string(),
                    name: Some(a.name.clone()),
                    reader_role_arn: a.reader_role_arn.to_string(),
                    external_id: a.external_id.clone(),
                    cleanup_after_days: a.cleanup_after_days,
                    buckets: a
                        .buckets
                        .iter()
                        .map(|b| RawBucket {
                            name: b.name.to_string(),
                            region: b.region.to_string(),
                        })
                        .collect(),
                })
                .collect(),
            retention: self.retention.to_raw(),
            worker: RawWorker {
                max_in_flight: self.worker.max_in_flight.get(),
                visibility_timeout_secs: self.worker.visibility_timeout.as_secs(),
                shutdown_grace_secs: self.worker.shutdown_grace.as_secs(),
            },
            telemetry: RawTelemetry {
                log_format: self.telemetry.log_format,
                metrics_address: self.telemetry.metrics_address.to_string(),
            },
            manifest: RawManifest {
                period_secs: self.manifest.period.as_secs(),
            },
            sweep: self.sweep.to_raw(),
            discovery: Discovery::to_raw(self.discovery.as_ref()),
            alerts: Alerts::to_raw(self.alerts.as_ref()),
        }
    }
}
