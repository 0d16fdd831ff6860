//! Validation: every field and every relation between fields, every problem collected.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use super::completeness;
use super::error::{Problem, Problems};
use super::ids::*;
use super::model::*;
use super::raw::*;
use super::retention;

// ---------------------------------------------------------------------------------------------
// Validation.

/// SQS allows a visibility timeout of at most 12 hours.
const MAX_VISIBILITY_SECS: u64 = 43_200;
/// Below this, the heartbeat (at half the timeout) would flood SQS for no gain.
const MIN_VISIBILITY_SECS: u64 = 10;
/// The archive key is `{prefix}{bucket}/{key}`; S3 keys end at 1024 bytes and CloudTrail's own
/// keys take up to about 200 of them, plus a 63-byte bucket name.
const MAX_KEY_PREFIX_LEN: usize = 512;

/// Validates a parsed file, returning every problem found.
pub(super) fn config(raw: RawConfig) -> Result<Config, Vec<Problem>> {
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
    let alerts = super::alerts::validate(raw.alerts.as_ref(), &mut p);

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
            alerts,
        }),
        _ => Err(p.0),
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
    if !(1..=900).contains(&raw.period_secs) {
        p.add(
            "manifest.period_secs",
            format!(
                "{} is outside 1..=900 seconds: a message waits up to this long for the \
                 manifest that lists its versions before it is deleted",
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
            Invalid::from(format!(
                "{:?} is not an IP address and port (like 127.0.0.1:9090 or 0.0.0.0:9090)",
                raw.metrics_address
            ))
        }),
    );
    Some(Telemetry {
        log_format: raw.log_format,
        metrics_address: metrics_address?,
    })
}
