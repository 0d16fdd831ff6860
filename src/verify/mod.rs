//! `trailvault verify`: proof, from the archive alone, that the logs are what CloudTrail
//! delivered and that the archive is complete.
//!
//! Two independent chains are walked:
//!
//! - **CloudTrail's digests**, checked on the archive copies. The archive key keeps the
//!   original bucket and key, so each digest's `digestS3Bucket/digestS3Object` and each log's
//!   `s3Bucket/s3Object` map back to their archive keys. Every digest's signature (its
//!   preserved `x-amz-meta-signature`) is checked with the CloudTrail key its fingerprint
//!   names; stricter than the AWS CLI, each `previousDigestHashValue` and
//!   `previousDigestSignature` must match the previous digest actually found. Every log a
//!   digest lists must be there with the SHA-256 of its decompressed bytes. Logs no digest
//!   lists, gaps and chain restarts are reported.
//! - **trailvault's manifests** ([`crate::manifest`]): numbered, chained, KMS-signed. Every
//!   listed version must exist with its SHA-256, and every version in the archive must be
//!   listed.
//!
//! The output is the AWS CLI's (`Digest file\ts3://...\tvalid`), with `Manifest` and `Archive
//! object` lines added. Only S3 reads are needed (and KMS/CloudTrail for the keys, unless they
//! come from files).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt as _};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::aws::{Failure, Version};
use crate::cloudtrail::digest::{Digest, PublicKey};
use crate::cloudtrail::key::FileKind;
use crate::manifest::Manifest;
use crate::telemetry::panics::caught;

mod decide;
mod digests;
pub mod keys;
mod logs;
mod manifests;
mod read;

use decide::{unlisted_log, Unvouched};
use keys::{CloudTrailKeys, KeyError};

/// CloudTrail files are a few MB; a digest far less. Anything bigger is not theirs.
const LOG_CAP: u64 = 2 * 1024 * 1024 * 1024;
const DIGEST_CAP: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "cannot list the versions in archive bucket {bucket}: {}; the auditor needs \
         s3:ListBucketVersions on it",
        failure.detail
    )]
    List { bucket: String, failure: Failure },
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only files whose CloudTrail timestamp (and versions archived) at or after this.
    pub from: Option<OffsetDateTime>,
    /// Only up to this.
    pub to: Option<OffsetDateTime>,
    /// Only these account ids (all when empty).
    pub accounts: Vec<String>,
    /// Only these regions (all when empty).
    pub regions: Vec<String>,
}

impl Scope {
    fn takes(&self, account: &str, region: &str, at: Option<OffsetDateTime>) -> bool {
        (self.accounts.is_empty() || self.accounts.iter().any(|a| a == account))
            && (self.regions.is_empty() || self.regions.iter().any(|r| r == region))
            && at.is_none_or(|t| {
                self.from.is_none_or(|from| t >= from) && self.to.is_none_or(|to| t <= to)
            })
    }

    fn is_whole(&self) -> bool {
        self.from.is_none()
            && self.to.is_none()
            && self.accounts.is_empty()
            && self.regions.is_empty()
    }
}

/// One checked file, in the AWS CLI's shape.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Line {
    /// `Digest file`, `Log file`, `Manifest` or `Archive object`.
    pub kind: &'static str,
    pub location: String,
    pub result: Verdict,
}

impl Line {
    pub fn valid(&self) -> bool {
        self.result == Verdict::Valid
    }
}

/// The verdict on one file: printed (and in JSON) as `valid`, or `INVALID: why`, the AWS
/// CLI's words. Invalid sorts first, as the text did.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Invalid(String),
    Valid,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Valid => f.write_str("valid"),
            Verdict::Invalid(why) => write!(f, "INVALID: {why}"),
        }
    }
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Something worth knowing that is not a verdict on one file.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    /// `chain restart`, `gap`, `pending`, `not checked`.
    pub kind: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Tally {
    pub valid: u64,
    pub total: u64,
}

/// The whole verification.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub archive: String,
    pub digests: Tally,
    pub logs: Tally,
    /// `None` when manifests were not checked.
    pub manifests: Option<Tally>,
    /// Archive versions no manifest lists (included in `lines`).
    pub unlisted_versions: u64,
    /// Listed versions missing from the archive or with other bytes (included in `lines`).
    pub bad_entries: u64,
    pub lines: Vec<Line>,
    pub notes: Vec<Note>,
}

impl Report {
    /// Whether everything checked is valid.
    pub fn all_valid(&self) -> bool {
        self.lines.iter().all(Line::valid)
    }
}

/// An object's current version (the one a plain GET returns).
#[derive(Debug, Clone)]
struct Current {
    version_id: Option<String>,
}

/// What the archive holds, from one walk of its versions.
struct Index {
    current: HashMap<String, Current>,
    versions: Vec<Version>,
}

/// A CloudTrail file in the archive.
#[derive(Debug, Clone)]
struct TrailFile {
    archive_key: String,
    source_bucket: String,
    account: String,
    region: String,
    kind: FileKind,
    at: Option<OffsetDateTime>,
    /// Digests: trail name and home region (with the source bucket, the chain they are on).
    trail: Option<(String, String)>,
}

/// A digest as checked.
#[derive(Debug, Clone)]
struct DigestCheck {
    file: TrailFile,
    digest: Option<Digest>,
    /// Hex SHA-256 of its decompressed bytes.
    sha256: Option<String>,
    signature: Option<String>,
    problem: Option<String>,
}

/// Why a version that should be there could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Unreadable {
    #[error("not found")]
    NotFound,
    #[error("cannot be read ({0})")]
    Failed(String),
    /// A manifest whose bytes are not a manifest.
    #[error("invalid format")]
    NotAManifest,
}

/// A manifest read and parsed, or why not.
type ManifestRead = Result<(Manifest, Fetched), Unreadable>;

/// The bytes of one version, read once.
struct Fetched {
    bytes: Bytes,
    metadata: HashMap<String, String>,
}

/// Walks an archive bucket and checks it.
pub struct Verifier {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub key_prefix: String,
    pub cloudtrail_keys: CloudTrailKeys,
    /// `None`: manifests are not checked.
    pub manifest_key: Option<PublicKey>,
    pub concurrency: usize,
    /// Raw SHA-256 of every version read, by (key, version id).
    read: Mutex<HashMap<(String, String), String>>,
}

impl Verifier {
    pub fn new(
        s3: aws_sdk_s3::Client,
        bucket: String,
        key_prefix: String,
        cloudtrail_keys: CloudTrailKeys,
        manifest_key: Option<PublicKey>,
        concurrency: usize,
    ) -> Verifier {
        Verifier {
            s3,
            bucket,
            key_prefix,
            cloudtrail_keys,
            manifest_key,
            concurrency: concurrency.max(1),
            read: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies what `scope` covers. `progress` is told of every file checked.
    pub async fn run(
        &mut self,
        scope: &Scope,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Report, VerifyError> {
        let index = self.index().await?;
        let mut lines = Vec::new();
        let mut notes = Vec::new();

        // CloudTrail's files, by what their archive keys say they are.
        let mut digests = Vec::new();
        let mut logs: BTreeMap<String, TrailFile> = BTreeMap::new();
        for key in index.current.keys() {
            let Some(file) = self.trail_file(key) else {
                continue;
            };
            if !scope.takes(&file.account, &file.region, file.at) {
                continue;
            }
            match file.kind {
                FileKind::Digest => digests.push(file),
                FileKind::Log => {
                    logs.insert(key.clone(), file);
                }
                FileKind::Insight => {}
            }
        }
        for region in digests
            .iter()
            .map(|d| d.region.clone())
            .collect::<BTreeSet<_>>()
        {
            self.cloudtrail_keys.load_region(&region).await?;
        }

        let this = &*self;
        let mut checked: Vec<DigestCheck> = stream::iter(digests)
            .map(|file| async move {
                // One file that trips a bug is reported as such; the others are still checked.
                let check = match caught(this.check_digest(file.clone())).await {
                    Ok(check) => check,
                    Err(panicked) => DigestCheck {
                        file,
                        digest: None,
                        sha256: None,
                        signature: None,
                        problem: Some(panicked.to_string()),
                    },
                };
                progress("digest");
                check
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        self.check_chains(&mut checked, &index, &mut lines, &mut notes);
        let digest_tally = Tally {
            valid: checked.iter().filter(|c| c.problem.is_none()).count() as u64,
            total: checked.len() as u64,
        };
        let missing_digests: BTreeSet<Line> = lines.drain(..).collect();
        for c in &checked {
            lines.push(Line {
                kind: "Digest file",
                location: self.location(&c.file.archive_key),
                result: verdict(&c.problem),
            });
        }
        let missing_count = missing_digests.len() as u64;
        lines.extend(missing_digests);

        // Every log file a digest vouches for.
        let mut listed: BTreeMap<String, String> = BTreeMap::new();
        for c in &checked {
            for log in c.digest.iter().flat_map(|d| &d.log_files) {
                let archive_key = format!("{}{}/{}", self.key_prefix, log.s3_bucket, log.s3_object);
                let in_scope = self
                    .trail_file(&archive_key)
                    .is_none_or(|f| scope.takes(&f.account, &f.region, f.at));
                if in_scope {
                    listed.insert(archive_key, log.hash_value.clone());
                }
            }
        }
        let log_lines: Vec<Line> = stream::iter(listed.clone())
            .map(|(archive_key, hash)| {
                let current = index.current.get(&archive_key).cloned();
                async move {
                    let result = match current {
                        None => Some("not found".to_owned()),
                        Some(cur) => caught(this.check_log(&archive_key, cur.version_id, &hash))
                            .await
                            .unwrap_or_else(|panicked| Some(panicked.to_string())),
                    };
                    progress("log");
                    Line {
                        kind: "Log file",
                        location: this.location(&archive_key),
                        result: verdict(&result),
                    }
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut log_tally = Tally {
            valid: log_lines.iter().filter(|l| l.valid()).count() as u64,
            total: log_lines.len() as u64,
        };
        lines.extend(log_lines);

        // Logs in the archive that no digest lists: planted, unless newer than the newest
        // digest of their account and region (CloudTrail has not vouched for them yet).
        let mut newest_start: HashMap<(String, String, String), OffsetDateTime> = HashMap::new();
        for c in &checked {
            if let Some(start) = c
                .digest
                .as_ref()
                .and_then(|d| parse_time(&d.digest_start_time))
            {
                let k = (
                    c.file.source_bucket.clone(),
                    c.file.account.clone(),
                    c.file.region.clone(),
                );
                let e = newest_start.entry(k).or_insert(start);
                *e = (*e).max(start);
            }
        }
        let mut pending_logs = 0;
        for (archive_key, file) in &logs {
            if listed.contains_key(archive_key) {
                continue;
            }
            let cutoff = newest_start.get(&(
                file.source_bucket.clone(),
                file.account.clone(),
                file.region.clone(),
            ));
            match unlisted_log(cutoff.copied(), file.at) {
                Unvouched::Invalid => {
                    log_tally.total += 1;
                    lines.push(Line {
                        kind: "Log file",
                        location: self.location(archive_key),
                        result: Verdict::Invalid("not listed in any digest".to_owned()),
                    });
                }
                Unvouched::Pending => pending_logs += 1,
            }
        }
        if pending_logs > 0 {
            notes.push(Note {
                kind: "pending",
                text: format!(
                    "{pending_logs} log file(s) newer than their account and region's newest \
                     digest: CloudTrail has not vouched for them yet; verify again after the \
                     next digest"
                ),
            });
        }

        // The manifests, and every version against them.
        let (manifest_tally, unlisted, bad_entries) = match self.manifest_key.clone() {
            Some(key) => {
                let (tally, unlisted, bad) = self
                    .check_manifests(&key, &index, scope, progress, &mut lines, &mut notes)
                    .await;
                (Some(tally), unlisted, bad)
            }
            None => {
                notes.push(Note {
                    kind: "not checked",
                    text: "manifests: no signing key (archive.signing_key, or \
                           --manifest-public-key), so the archive's completeness was not \
                           checked"
                        .to_owned(),
                });
                (None, 0, 0)
            }
        };

        // One order whatever the order of the reads: reports of the same archive compare.
        let rank = |kind: &str| match kind {
            "Digest file" => 0,
            "Log file" => 1,
            "Manifest" => 2,
            _ => 3,
        };
        lines.sort_by(|a, b| {
            (rank(a.kind), &a.location, &a.result).cmp(&(rank(b.kind), &b.location, &b.result))
        });
        lines.dedup();
        notes.sort_by(|a, b| (a.kind, &a.text).cmp(&(b.kind, &b.text)));
        Ok(Report {
            archive: format!("s3://{}", self.bucket),
            digests: Tally {
                valid: digest_tally.valid,
                total: digest_tally.total + missing_count,
            },
            logs: log_tally,
            manifests: manifest_tally,
            unlisted_versions: unlisted,
            bad_entries,
            lines,
            notes,
        })
    }
}

fn verdict(problem: &Option<String>) -> Verdict {
    match problem {
        None => Verdict::Valid,
        Some(p) => Verdict::Invalid(p.clone()),
    }
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_scope_takes_what_it_names() {
        let all = Scope::default();
        assert!(all.takes("111122223333", "eu-west-1", None));
        let some = Scope {
            from: Some(datetime!(2026-11-01 00:00 UTC)),
            to: Some(datetime!(2026-11-02 00:00 UTC)),
            accounts: vec!["111122223333".to_owned()],
            regions: vec![],
        };
        assert!(some.takes(
            "111122223333",
            "eu-west-1",
            Some(datetime!(2026-11-01 12:00 UTC))
        ));
        assert!(!some.takes(
            "111122223333",
            "eu-west-1",
            Some(datetime!(2026-11-03 12:00 UTC))
        ));
        assert!(!some.takes(
            "999922223333",
            "eu-west-1",
            Some(datetime!(2026-11-01 12:00 UTC))
        ));
    }
}
