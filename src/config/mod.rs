//! The deployment's configuration: one TOML file in, one validated [`Config`] out.
//!
//! This is the only place raw input is trusted. The file is read into `Raw*` structs (serde,
//! unknown fields refused), then [`Config::from_raw`] checks every field and every relation
//! between fields, collecting all problems rather than stopping at the first, so that a user
//! fixes a file in one round. Each problem names its field the way it is written in the file
//! (`accounts[1].buckets[0].region`).
//!
//! The validated types make the bad states unrepresentable: an [`AccountId`] is twelve digits,
//! a [`QueueUrl`] knows its region and account, a [`RoleArn`] belongs to its account.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod completeness;
mod retention;

pub use completeness::{Discovery, RawDiscovery, RawSweep, Sweep};
pub use retention::{
    Lifecycle, Lock, LockMode, RawLifecycle, RawRetention, RawTransition, Reconcile, Retention,
    RetentionPeriod, StorageClass, Transition,
};

/// Everything that can go wrong turning a file into a [`Config`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid trailvault configuration", path.display())]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{} is not a valid trailvault configuration ({} problem{}):\n{}",
        path.display(), problems.len(), if problems.len() == 1 { "" } else { "s" },
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The semantic problems found, empty for read and syntax errors.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// One thing wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where it is, written as in the file: `accounts[0].reader_role_arn`.
    pub field: String,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

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

/// Hourly, as CloudTrail's digests: a period's manifest lists at most an hour of archiving.
fn default_manifest_period_secs() -> u64 {
    3600
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
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

// ---------------------------------------------------------------------------------------------
// Identifiers that are checked once, here.

/// A twelve-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_owned()))
        } else {
            Err(format!(
                "{s:?} is not an AWS account id (exactly 12 digits)"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS region name such as `eu-west-1` or `us-gov-west-1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(String);

impl Region {
    pub fn parse(s: &str) -> Result<Self, String> {
        // partition-ish prefix, then words, then a number: us-east-1, us-gov-west-1,
        // cn-north-1, eu-isoe-west-1, ap-southeast-5.
        let parts: Vec<&str> = s.split('-').collect();
        let ok = parts.len() >= 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(Region(s.to_owned()))
        } else {
            Err(format!("{s:?} is not an AWS region name (like eu-west-1)"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An S3 bucket name, by S3's general-purpose bucket naming rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketName(String);

impl BucketName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("{s:?} is not a valid S3 bucket name: {why}"));
        if !(3..=63).contains(&s.len()) {
            return bad("it must be 3 to 63 characters long");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return bad("only lowercase letters, digits, dots and hyphens are allowed");
        }
        let first = s.as_bytes()[0];
        let last = s.as_bytes()[s.len() - 1];
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return bad("it must begin and end with a letter or digit");
        }
        if s.contains("..") || s.contains(".-") || s.contains("-.") {
            return bad("dots may not be doubled or next to a hyphen");
        }
        if s.split('.').count() == 4 && s.split('.').all(|p| p.parse::<u8>().is_ok()) {
            return bad("it must not look like an IP address");
        }
        Ok(BucketName(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IAM role ARN, `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    arn: String,
    account: AccountId,
}

impl RoleArn {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            Err(format!(
                "{s:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
            ))
        };
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return bad();
        };
        if arn != "arn" || !is_partition(partition) || service != "iam" || !region.is_empty() {
            return bad();
        }
        let Some(name) = resource.strip_prefix("role/") else {
            return bad();
        };
        let name = name.rsplit('/').next().unwrap_or_default();
        let name_ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
        let Ok(account) = AccountId::parse(account) else {
            return bad();
        };
        if !name_ok {
            return bad();
        }
        Ok(RoleArn {
            arn: s.to_owned(),
            account,
        })
    }
    pub fn as_str(&self) -> &str {
        &self.arn
    }
    pub fn account(&self) -> &AccountId {
        &self.account
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

fn is_partition(s: &str) -> bool {
    matches!(
        s,
        "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b" | "aws-iso-e" | "aws-iso-f"
    )
}

/// A KMS key reference, in any form KMS accepts: key id, key ARN, alias name or alias ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKey {
    id: String,
    /// The region named by an ARN; key ids and alias names have none.
    region: Option<Region>,
}

impl KmsKey {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            Err(format!(
                "{s:?} is not a KMS key: use a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), \
                 a key id, alias/NAME, or an alias ARN"
            ))
        };
        if let Some(rest) = s.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [partition, service, region, account, resource] = parts[..] else {
                return bad();
            };
            if !is_partition(partition) || service != "kms" || AccountId::parse(account).is_err() {
                return bad();
            }
            let Ok(region) = Region::parse(region) else {
                return bad();
            };
            let resource_ok = match resource.split_once('/') {
                Some(("key", id)) => is_key_id(id),
                Some(("alias", name)) => is_alias_name(name),
                _ => false,
            };
            if !resource_ok {
                return bad();
            }
            return Ok(KmsKey {
                id: s.to_owned(),
                region: Some(region),
            });
        }
        let ok = match s.strip_prefix("alias/") {
            Some(name) => is_alias_name(name),
            None => is_key_id(s),
        };
        if ok {
            Ok(KmsKey {
                id: s.to_owned(),
                region: None,
            })
        } else {
            bad()
        }
    }
    pub fn as_str(&self) -> &str {
        &self.id
    }
    pub fn region(&self) -> Option<&Region> {
        self.region.as_ref()
    }

    /// The key's ARN when it was given as one (not an alias or a bare key id).
    pub fn key_arn(&self) -> Option<&str> {
        (self.id.starts_with("arn:") && self.id.contains(":key/")).then_some(self.id.as_str())
    }
}

impl fmt::Display for KmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// A UUID key id, or a multi-Region key id (`mrk-` and 32 hex digits).
fn is_key_id(s: &str) -> bool {
    if let Some(hex) = s.strip_prefix("mrk-") {
        return hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_alias_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 250
        && !s.starts_with("aws/")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
}

/// An SQS queue URL with the region and account it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrl {
    url: String,
    region: Region,
    account: AccountId,
    name: String,
}

impl QueueUrl {
    /// Reads a queue URL; `region` is required when the host does not name one (a custom
    /// endpoint) and must agree with it when it does.
    pub fn parse(url: &str, region: Option<&str>) -> Result<Self, String> {
        let bad = |why: &str| {
            Err(format!(
                "{url:?} is not an SQS queue URL ({why}); expected \
                 https://sqs.REGION.amazonaws.com/ACCOUNT/NAME"
            ))
        };
        let Some(rest) = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
        else {
            return bad("no http(s) scheme");
        };
        let Some((host, path)) = rest.split_once('/') else {
            return bad("no /ACCOUNT/NAME path");
        };
        let Some((account, name)) = path.trim_end_matches('/').split_once('/') else {
            return bad("no /ACCOUNT/NAME path");
        };
        let Ok(account) = AccountId::parse(account) else {
            return bad("the path does not start with a 12-digit account id");
        };
        let name_ok = (1..=80).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !name_ok {
            return bad("the queue name must be 1 to 80 letters, digits, hyphens or underscores");
        }
        if name.ends_with(".fifo") {
            return Err(format!(
                "{url:?} is a FIFO queue; S3 event notifications can only be sent to \
                 standard queues, so use a standard queue"
            ));
        }
        let from_host = region_from_sqs_host(host);
        let region = match (from_host, region) {
            (Some(h), Some(given)) if h != given => {
                return Err(format!(
                    "the queue URL names region {h} but region is set to {given}; \
                     remove region or make them agree"
                ))
            }
            (_, Some(given)) => Region::parse(given)?,
            (Some(h), None) => Region::parse(&h)?,
            (None, None) => {
                return Err(format!(
                    "cannot tell the region of {url:?} from its host {host:?}; \
                     set region for this queue"
                ))
            }
        };
        Ok(QueueUrl {
            url: url.to_owned(),
            region,
            account,
            name: name.to_owned(),
        })
    }
    pub fn as_str(&self) -> &str {
        &self.url
    }
    pub fn region(&self) -> &Region {
        &self.region
    }
    pub fn account(&self) -> &AccountId {
        &self.account
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for QueueUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// `sqs.REGION.amazonaws.com[.cn]`, `sqs.REGION.api.aws`, the legacy
/// `REGION.queue.amazonaws.com`, and `queue.amazonaws.com` (us-east-1).
fn region_from_sqs_host(host: &str) -> Option<String> {
    let host = host.split(':').next().unwrap_or(host);
    if host == "queue.amazonaws.com" {
        return Some("us-east-1".to_owned());
    }
    let labels: Vec<&str> = host.split('.').collect();
    match labels[..] {
        ["sqs", region, "amazonaws", "com"]
        | ["sqs", region, "amazonaws", "com", "cn"]
        | ["sqs", region, "api", "aws"]
        | [region, "queue", "amazonaws", "com"] => Some(region.to_owned()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// SQS allows a visibility timeout of at most 12 hours.
const MAX_VISIBILITY_SECS: u64 = 43_200;
/// Below this, the heartbeat (at half the timeout) would flood SQS for no gain.
const MIN_VISIBILITY_SECS: u64 = 10;
/// The archive key is `{prefix}{bucket}/{key}`; S3 keys end at 1024 bytes and CloudTrail's own
/// keys take up to about 200 of them, plus a 63-byte bucket name.
const MAX_KEY_PREFIX_LEN: usize = 512;

struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records a failed parse and yields the value when it parsed.
    fn check<T>(&mut self, field: impl Into<String>, r: Result<T, String>) -> Option<T> {
        r.map_err(|m| self.add(field, m)).ok()
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parses and validates configuration text; `path` only names the source in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        Config::from_raw(raw).map_err(|problems| ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }

    /// Validates a parsed file, returning every problem found.
    pub fn from_raw(raw: RawConfig) -> Result<Config, Vec<Problem>> {
        let mut p = Problems(Vec::new());

        let archive = validate_archive(&raw.archive, &mut p);
        let aws = validate_aws(&raw.aws, &mut p);
        let queues = validate_queues(&raw.queues, &mut p);
        let accounts = validate_accounts(&raw.accounts, raw.discovery.enabled, &mut p);
        let retention = retention::validate(&raw.retention, &mut p);
        let worker = validate_worker(&raw.worker, &mut p);
        let telemetry = validate_telemetry(&raw.telemetry, &mut p);
        let manifest = validate_manifest(&raw.manifest, &mut p);
        let sweep = completeness::validate_sweep(&raw.sweep, &mut p);
        let discovery = completeness::validate_discovery(&raw.discovery, &mut p);

        // Relations between sections, checked only on the parts that are valid on their own
        // (an invalid queue would otherwise also be reported as a region without a queue).
        let all_queues_valid = !queues.is_empty() && queues.len() == raw.queues.len();
        let queue_regions: BTreeSet<&Region> = queues.iter().map(|q| q.url.region()).collect();
        for (i, account) in raw.accounts.iter().enumerate() {
            for (j, bucket) in account.buckets.iter().enumerate() {
                if let Some(a) = &archive {
                    if bucket.name == a.bucket.as_str() {
                        p.add(
                            format!("accounts[{i}].buckets[{j}].name"),
                            format!(
                                "{} is the archive bucket; a source bucket must be another \
                                 bucket, or the worker would archive its own output",
                                bucket.name
                            ),
                        );
                    }
                }
                if let Ok(region) = Region::parse(&bucket.region) {
                    if all_queues_valid && !queue_regions.contains(&region) {
                        p.add(
                            format!("accounts[{i}].buckets[{j}].region"),
                            format!(
                                "no queue is configured in {region}, and S3 notifies only queues \
                                 in the bucket's own region; add a [[queues]] entry for {region}"
                            ),
                        );
                    }
                }
            }
        }

        match (archive, retention, worker, telemetry, manifest, sweep) {
            (
                Some(archive),
                Some(retention),
                Some(worker),
                Some(telemetry),
                Some(manifest),
                Some(sweep),
            ) if p.0.is_empty() => Ok(Config {
                archive,
                aws,
                queues,
                accounts,
                retention,
                worker,
                telemetry,
                manifest,
                sweep,
                discovery,
            }),
            _ => Err(p.0),
        }
    }

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
        }
    }
}

fn validate_archive(raw: &RawArchive, p: &mut Problems) -> Option<Archive> {
    let bucket = p.check("archive.bucket", BucketName::parse(&raw.bucket));
    let region = p.check("archive.region", Region::parse(&raw.region));
    let kms_key = p.check("archive.kms_key", KmsKey::parse(&raw.kms_key));
    let signing_key = match &raw.signing_key {
        Some(k) => p.check("archive.signing_key", KmsKey::parse(k)).map(Some),
        None => Some(None),
    };
    if let (Some(region), Some(key)) = (&region, &kms_key) {
        if let Some(key_region) = key.region().filter(|r| *r != region) {
            p.add(
                "archive.kms_key",
                format!(
                    "the key is in {key_region} but the archive bucket is in {region}; \
                     S3 can only use a KMS key from the bucket's own region"
                ),
            );
        }
    }
    if let (Some(region), Some(Some(key))) = (&region, &signing_key) {
        if let Some(key_region) = key.region().filter(|r| *r != region) {
            p.add(
                "archive.signing_key",
                format!(
                    "the key is in {key_region} but the archive is in {region}; \
                     use a signing key in {region}"
                ),
            );
        }
    }
    let prefix = &raw.key_prefix;
    let prefix_ok = if prefix.is_empty() {
        true
    } else if prefix.starts_with('/') || !prefix.ends_with('/') || prefix.contains("//") {
        p.add(
            "archive.key_prefix",
            format!(
                "{prefix:?} must not start with '/', must end with '/', and must not contain \
                 '//' (for example \"cloudtrail/\")"
            ),
        );
        false
    } else if prefix.starts_with(crate::archive::layout::OWN_ROOT) {
        p.add(
            "archive.key_prefix",
            format!(
                "{prefix:?} is inside {:?}, where trailvault keeps its own manifests; choose \
                 another prefix",
                crate::archive::layout::OWN_ROOT
            ),
        );
        false
    } else if prefix.len() > MAX_KEY_PREFIX_LEN {
        p.add(
            "archive.key_prefix",
            format!(
                "is {} bytes long; keep it under {MAX_KEY_PREFIX_LEN}",
                prefix.len()
            ),
        );
        false
    } else {
        true
    };
    Some(Archive {
        bucket: bucket?,
        region: region?,
        kms_key: kms_key?,
        signing_key: signing_key?,
        key_prefix: prefix_ok.then(|| prefix.clone())?,
    })
}

fn validate_aws(raw: &RawAws, p: &mut Problems) -> AwsSettings {
    if let Some(url) = &raw.endpoint_url {
        let host = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .map(|rest| rest.split('/').next().unwrap_or_default());
        if host.is_none_or(str::is_empty) {
            p.add(
                "aws.endpoint_url",
                format!("{url:?} is not an http:// or https:// URL with a host"),
            );
        }
    }
    AwsSettings {
        endpoint_url: raw.endpoint_url.clone(),
        force_path_style: raw.force_path_style,
    }
}

fn validate_queues(raw: &[RawQueue], p: &mut Problems) -> Vec<Queue> {
    if raw.is_empty() {
        p.add(
            "queues",
            "no queue configured; add a [[queues]] entry with the url of each region's queue",
        );
    }
    let mut seen = BTreeMap::new();
    let mut queues = Vec::new();
    for (i, q) in raw.iter().enumerate() {
        if let Some(first) = seen.insert(q.url.as_str(), i) {
            p.add(
                format!("queues[{i}].url"),
                format!("{} is already queues[{first}]", q.url),
            );
            continue;
        }
        if let Some(url) = p.check(
            format!("queues[{i}].url"),
            QueueUrl::parse(&q.url, q.region.as_deref()),
        ) {
            queues.push(Queue { url });
        }
    }
    queues
}

fn validate_accounts(raw: &[RawAccount], discovery: bool, p: &mut Problems) -> Vec<Account> {
    if raw.is_empty() && !discovery {
        p.add(
            "accounts",
            "no member account configured; add an [[accounts]] entry per member account, or \
             turn on [discovery]",
        );
    }
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut buckets: BTreeMap<&str, String> = BTreeMap::new();
    let mut accounts = Vec::new();
    for (i, a) in raw.iter().enumerate() {
        let at = |field: &str| format!("accounts[{i}].{field}");
        let id = p.check(at("id"), AccountId::parse(&a.id));
        if let Some(first) = ids.insert(&a.id, i) {
            p.add(
                at("id"),
                format!(
                    "account {} is already accounts[{first}]; list each account once, \
                     with all its buckets",
                    a.id
                ),
            );
        }
        let name = match &a.name {
            Some(n) if n.trim().is_empty() => {
                p.add(
                    at("name"),
                    "is empty; remove it or give the account a label",
                );
                None
            }
            Some(n) => {
                if let Some(first) = names.insert(n, i) {
                    p.add(
                        at("name"),
                        format!("{n:?} is already the name of accounts[{first}]"),
                    );
                }
                Some(n.clone())
            }
            None => Some(a.id.clone()),
        };
        let role = p.check(at("reader_role_arn"), RoleArn::parse(&a.reader_role_arn));
        if let (Some(id), Some(role)) = (&id, &role) {
            if role.account() != id {
                p.add(
                    at("reader_role_arn"),
                    format!(
                        "the role is in account {} but the account id is {id}; the reader \
                         role must be in the member account that owns the buckets",
                        role.account()
                    ),
                );
            }
        }
        let external_id_ok = (2..=1224).contains(&a.external_id.len())
            && a.external_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/_-".contains(&b));
        if !external_id_ok {
            p.add(
                at("external_id"),
                "must be 2 to 1224 characters of letters, digits and +=,.@:/_- \
                 (the ExternalId in the reader role's trust policy)",
            );
        }
        if a.buckets.is_empty() {
            p.add(
                at("buckets"),
                "no bucket configured; add an [[accounts.buckets]] entry with name and region",
            );
        }
        let mut source_buckets = Vec::new();
        for (j, b) in a.buckets.iter().enumerate() {
            let field = format!("accounts[{i}].buckets[{j}]");
            let name = p.check(format!("{field}.name"), BucketName::parse(&b.name));
            let region = p.check(format!("{field}.region"), Region::parse(&b.region));
            if let Some(first) = buckets.insert(&b.name, field.clone()) {
                p.add(
                    format!("{field}.name"),
                    format!(
                        "bucket {} is already {first}; a bucket belongs to exactly one \
                         account, which is how a notification is matched to its account",
                        b.name
                    ),
                );
            }
            if let (Some(name), Some(region)) = (name, region) {
                source_buckets.push(SourceBucket { name, region });
            }
        }
        if let (Some(id), Some(name), Some(reader_role_arn), true) =
            (id, name, role, external_id_ok)
        {
            accounts.push(Account {
                id,
                name,
                reader_role_arn,
                external_id: a.external_id.clone(),
                cleanup_after_days: a.cleanup_after_days,
                buckets: source_buckets,
            });
        }
    }
    accounts
}

fn validate_worker(raw: &RawWorker, p: &mut Problems) -> Option<Worker> {
    let max_in_flight = NonZeroUsize::new(raw.max_in_flight);
    if max_in_flight.is_none() {
        p.add("worker.max_in_flight", "must be at least 1");
    }
    let visibility_ok =
        (MIN_VISIBILITY_SECS..=MAX_VISIBILITY_SECS).contains(&raw.visibility_timeout_secs);
    if !visibility_ok {
        p.add(
            "worker.visibility_timeout_secs",
            format!(
                "{} is outside {MIN_VISIBILITY_SECS}..={MAX_VISIBILITY_SECS} seconds \
                 (SQS allows at most 12 hours)",
                raw.visibility_timeout_secs
            ),
        );
    }
    let grace_ok = raw.shutdown_grace_secs <= 3600;
    if !grace_ok {
        p.add(
            "worker.shutdown_grace_secs",
            format!(
                "{} seconds is more than an hour; a stopping replica should hand its \
                 messages back sooner",
                raw.shutdown_grace_secs
            ),
        );
    }
    Some(Worker {
        max_in_flight: max_in_flight?,
        visibility_timeout: visibility_ok
            .then(|| Duration::from_secs(raw.visibility_timeout_secs))?,
        shutdown_grace: grace_ok.then(|| Duration::from_secs(raw.shutdown_grace_secs))?,
    })
}

fn validate_manifest(raw: &RawManifest, p: &mut Problems) -> Option<Manifest> {
    if !(60..=86_400).contains(&raw.period_secs) {
        p.add(
            "manifest.period_secs",
            format!(
                "{} is outside 60..=86400 seconds (a minute to a day)",
                raw.period_secs
            ),
        );
        return None;
    }
    Some(Manifest {
        period: Duration::from_secs(raw.period_secs),
    })
}

fn validate_telemetry(raw: &RawTelemetry, p: &mut Problems) -> Option<Telemetry> {
    let metrics_address = p.check(
        "telemetry.metrics_address",
        raw.metrics_address.parse::<SocketAddr>().map_err(|_| {
            format!(
                "{:?} is not an IP address and port (like 127.0.0.1:9090 or 0.0.0.0:9090)",
                raw.metrics_address
            )
        }),
    );
    Some(Telemetry {
        log_format: raw.log_format,
        metrics_address: metrics_address?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [archive]
        bucket = "acme-cloudtrail-archive"
        region = "eu-west-1"
        kms_key = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        signing_key = "alias/trailvault-manifest"
        key_prefix = "cloudtrail/"

        [[queues]]
        url = "https://sqs.eu-west-1.amazonaws.com/111111111111/trailvault-eu-west-1"

        [[queues]]
        url = "https://sqs.us-east-1.amazonaws.com/111111111111/trailvault-us-east-1"

        [[accounts]]
        id = "222222222222"
        name = "payments-prod"
        reader_role_arn = "arn:aws:iam::222222222222:role/trailvault-reader"
        external_id = "trailvault-0a1b2c"

        [[accounts.buckets]]
        name = "payments-prod-cloudtrail"
        region = "eu-west-1"

        [[accounts.buckets]]
        name = "payments-prod-cloudtrail-us"
        region = "us-east-1"

        [retention]
        mode = "COMPLIANCE"
        years = 7
    "#;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    /// The fields of every problem in a file, sorted.
    fn problem_fields(text: &str) -> Vec<String> {
        let err = load(text).expect_err("the file should be refused");
        let mut fields: Vec<String> = err.problems().iter().map(|p| p.field.clone()).collect();
        fields.sort();
        fields
    }

    /// The error and its causes, as the binary prints them.
    fn chain(err: ConfigError) -> String {
        format!("{:#}", anyhow::Error::from(err))
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(GOOD.contains(replace), "test fixture lacks {replace:?}");
        GOOD.replacen(replace, by, 1)
    }

    #[test]
    fn a_good_file_gives_typed_values_and_defaults() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.archive.bucket.as_str(), "acme-cloudtrail-archive");
        assert_eq!(c.archive.kms_key.region().unwrap().as_str(), "eu-west-1");
        assert_eq!(c.queues[1].url.region().as_str(), "us-east-1");
        assert_eq!(c.queues[0].url.account().as_str(), "111111111111");
        assert_eq!(
            c.accounts[0].reader_role_arn.account().as_str(),
            "222222222222"
        );
        assert_eq!(c.retention.lock.period, RetentionPeriod::Years(7));
        assert_eq!(c.worker.max_in_flight.get(), 32);
        assert_eq!(c.worker.visibility_timeout, Duration::from_secs(300));
        assert_eq!(c.telemetry.log_format, LogFormat::Text);
        assert_eq!(
            c.account_for_bucket("payments-prod-cloudtrail-us")
                .unwrap()
                .name,
            "payments-prod"
        );
        assert!(c.account_for_bucket("someone-else").is_none());
    }

    #[test]
    fn the_effective_configuration_reads_back_as_itself() {
        let c = load(GOOD).unwrap();
        let text = toml::to_string(&c.to_raw()).unwrap();
        assert_eq!(load(&text).unwrap(), c);
    }

    #[test]
    fn an_unknown_field_is_named() {
        let err = chain(load(&with("key_prefix", "key_prefx")).unwrap_err());
        assert!(err.contains("unknown field `key_prefx`"), "{err}");
        let err = chain(load(&with("[retention]", "[retention]\nmonths = 3")).unwrap_err());
        assert!(err.contains("unknown field `months`"), "{err}");
    }

    #[test]
    fn a_missing_section_or_field_is_named() {
        let err = chain(load(&with("bucket = \"acme-cloudtrail-archive\"", "")).unwrap_err());
        assert!(err.contains("missing field `bucket`"), "{err}");
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("\"222222222222\"", "\"22222\"", "accounts[0].id"),
            (
                "arn:aws:iam::222222222222:role/trailvault-reader",
                "arn:aws:iam::222222222222:user/trailvault-reader",
                "accounts[0].reader_role_arn",
            ),
            (
                "arn:aws:iam::222222222222:role/trailvault-reader",
                "arn:aws:iam::333333333333:role/trailvault-reader",
                "accounts[0].reader_role_arn",
            ),
            ("trailvault-0a1b2c", "x", "accounts[0].external_id"),
            ("acme-cloudtrail-archive", "Acme_Archive", "archive.bucket"),
            (
                "region = \"eu-west-1\"",
                "region = \"europe\"",
                "archive.region",
            ),
            ("key/1234abcd", "kee/1234abcd", "archive.kms_key"),
            ("kms:eu-west-1", "kms:us-east-1", "archive.kms_key"),
            (
                "alias/trailvault-manifest",
                "alias/aws/s3",
                "archive.signing_key",
            ),
            ("\"cloudtrail/\"", "\"/cloudtrail\"", "archive.key_prefix"),
            (
                "payments-prod-cloudtrail-us",
                "payments-prod-cloudtrail",
                "accounts[0].buckets[1].name",
            ),
            ("trailvault-eu-west-1", "trailvault.fifo", "queues[0].url"),
            (
                "/111111111111/trailvault-eu-west-1",
                "/1111/trailvault-eu-west-1",
                "queues[0].url",
            ),
            ("years = 7", "years = 101", "retention.years"),
            ("years = 7", "days = 0", "retention.days"),
            ("years = 7", "years = 7\ndays = 30", "retention"),
            ("years = 7", "", "retention"),
            (
                "[retention]",
                "[worker]\nvisibility_timeout_secs = 50000\n[retention]",
                "worker.visibility_timeout_secs",
            ),
            (
                "[retention]",
                "[worker]\nmax_in_flight = 0\n[retention]",
                "worker.max_in_flight",
            ),
            (
                "[retention]",
                "[telemetry]\nmetrics_address = \"localhost\"\n[retention]",
                "telemetry.metrics_address",
            ),
            (
                "[retention]",
                "[aws]\nendpoint_url = \"localhost:4566\"\n[retention]",
                "aws.endpoint_url",
            ),
        ];
        for (from, to, field) in cases {
            let fields = problem_fields(&with(from, to));
            assert_eq!(
                fields,
                vec![field.to_string()],
                "replacing {from:?} by {to:?}"
            );
        }
    }

    #[test]
    fn a_duplicate_account_is_refused() {
        let twice = format!(
            "{GOOD}\n[[accounts]]\nid = \"222222222222\"\nreader_role_arn = \
             \"arn:aws:iam::222222222222:role/other\"\nexternal_id = \"xyz-123\"\n\
             [[accounts.buckets]]\nname = \"another-bucket\"\nregion = \"eu-west-1\"\n"
        );
        let err = load(&twice).unwrap_err();
        assert_eq!(err.problems().len(), 1, "{err}");
        assert_eq!(err.problems()[0].field, "accounts[1].id");
        assert!(err.to_string().contains("already accounts[0]"), "{err}");
    }

    #[test]
    fn a_queue_region_must_be_known() {
        let local = with(
            "https://sqs.eu-west-1.amazonaws.com/111111111111/trailvault-eu-west-1",
            "http://127.0.0.1:4566/111111111111/trailvault-eu-west-1",
        );
        let err = load(&local).unwrap_err();
        assert_eq!(err.problems()[0].field, "queues[0].url");
        assert!(
            err.to_string().contains("set region for this queue"),
            "{err}"
        );

        let fixed = local.replace(
            "/trailvault-eu-west-1\"",
            "/trailvault-eu-west-1\"\nregion = \"eu-west-1\"",
        );
        assert_eq!(
            load(&fixed).unwrap().queues[0].url.region().as_str(),
            "eu-west-1"
        );

        let disagree = with(
            "trailvault-eu-west-1\"",
            "trailvault-eu-west-1\"\nregion = \"us-east-1\"",
        );
        assert_eq!(problem_fields(&disagree), vec!["queues[0].url"]);
    }

    #[test]
    fn every_bucket_region_needs_a_queue() {
        let text = with("region = \"us-east-1\"", "region = \"ap-south-1\"");
        let err = load(&text).unwrap_err();
        assert_eq!(err.problems()[0].field, "accounts[0].buckets[1].region");
        assert!(
            err.to_string()
                .contains("add a [[queues]] entry for ap-south-1"),
            "{err}"
        );
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let text = with("\"222222222222\"", "\"2\"").replace("years = 7", "years = 0");
        assert_eq!(
            problem_fields(&text),
            vec!["accounts[0].id", "retention.years"]
        );
    }

    #[test]
    fn the_archive_bucket_is_not_a_source() {
        let text = with(
            "\"payments-prod-cloudtrail\"",
            "\"acme-cloudtrail-archive\"",
        );
        assert_eq!(problem_fields(&text), vec!["accounts[0].buckets[0].name"]);
    }

    #[test]
    fn identifiers() {
        for ok in ["us-east-1", "us-gov-west-1", "cn-north-1", "eu-isoe-west-1"] {
            assert!(Region::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "us-east", "US-EAST-1", "us_east_1", "east-1"] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
        for ok in [
            "abc",
            "my.bucket-1",
            "a23456789012345678901234567890123456789012345678901234567890123",
        ] {
            assert!(BucketName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "ABC",
            "a_b",
        ] {
            assert!(BucketName::parse(bad).is_err(), "{bad}");
        }
        for ok in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "alias/archive",
            "arn:aws:kms:us-east-1:111111111111:alias/archive",
            "arn:aws-us-gov:kms:us-gov-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ] {
            assert!(KmsKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "archive",
            "alias/",
            "alias/aws/s3",
            "arn:aws:kms:us-east-1:1:key/x",
        ] {
            assert!(KmsKey::parse(bad).is_err(), "{bad}");
        }
        assert!(RoleArn::parse("arn:aws:iam::111111111111:role/path/to/reader").is_ok());
        for bad in [
            "arn:aws:iam:us-east-1:111111111111:role/r",
            "arn:aws:sts::111111111111:role/r",
            "arn:aws:iam::111111111111:role/",
            "arn:aws:iam::11111111111:role/r",
        ] {
            assert!(RoleArn::parse(bad).is_err(), "{bad}");
        }
        for (url, region) in [
            (
                "https://sqs.eu-west-1.amazonaws.com/111111111111/q",
                "eu-west-1",
            ),
            (
                "https://eu-west-1.queue.amazonaws.com/111111111111/q",
                "eu-west-1",
            ),
            ("https://queue.amazonaws.com/111111111111/q", "us-east-1"),
            (
                "https://sqs.cn-north-1.amazonaws.com.cn/111111111111/q",
                "cn-north-1",
            ),
        ] {
            assert_eq!(
                QueueUrl::parse(url, None).unwrap().region().as_str(),
                region
            );
        }
    }
}
