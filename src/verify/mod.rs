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
//! Everything S3 keeps is seen: every version and every delete marker. A file hidden behind a
//! delete marker is still checked (its newest version) and reported as hidden; a chain whose
//! head stopped while its account and region kept delivering is stale, not pending.
//!
//! The output is the AWS CLI's (`Digest file\ts3://...\tvalid`), with `Insight file`,
//! `Manifest`, `Archive object`, `Digest chain` and `Manifest chain` lines added, and a third
//! verdict besides `valid` and `INVALID`: `UNVERIFIED`, for files nothing can vouch for
//! (a trail without log file validation). Only S3 reads are needed (and KMS/CloudTrail for the
//! keys, unless they come from files).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt as _};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::archive::layout;
use crate::aws::{Failure, Version};
use crate::cloudtrail::digest::{Digest, PublicKey};
use crate::cloudtrail::key::FileKind;
use crate::manifest::Manifest;
use crate::telemetry::panics::caught;

pub mod coverage;
mod decide;
mod digests;
pub mod html;
pub mod keys;
mod logs;
mod manifests;
mod read;

use coverage::{CoverageTable, Marks, Outcome};
use decide::{unlisted_log, Coverage, Unlisted};
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
    /// `Digest file`, `Log file`, `Insight file`, `Manifest`, `Archive object`,
    /// `Digest chain` or `Manifest chain`.
    pub kind: &'static str,
    /// An `s3://` location. Keys come from member accounts: printed through
    /// [`layout::printable`], so that none can end the line or start another.
    pub location: String,
    pub result: Verdict,
    /// The archive key as S3 has it: what the coverage table and the report place the line by.
    /// Not in the JSON, where `location` is its printable form.
    #[serde(skip)]
    pub key: String,
    /// The version checked, where there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Line {
    pub fn valid(&self) -> bool {
        self.result == Verdict::Valid
    }
}

/// The verdict on one file: printed (and in JSON) as `valid`, `INVALID: why` (the AWS CLI's
/// words) or `UNVERIFIED: why`. Invalid sorts first, as the text did.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Invalid(String),
    /// Nothing can vouch for it (no digest can ever cover it), but nothing says it is wrong.
    Unverified(String),
    Valid,
}

impl Verdict {
    /// What the verdict makes of its file's hour in the coverage table.
    pub fn outcome(&self) -> Outcome {
        match self {
            Verdict::Valid => Outcome::Verified,
            Verdict::Unverified(_) => Outcome::Unverified,
            Verdict::Invalid(why) => Outcome::of_invalid(why),
        }
    }
}

/// Lines in the report's one order, whatever the order of the reads: reports of the same
/// archive compare.
pub fn sort_lines(lines: &mut [Line]) {
    let rank = |kind: &str| match kind {
        "Digest chain" => 0,
        "Digest file" => 1,
        "Log file" => 2,
        "Insight file" => 3,
        "Manifest chain" => 4,
        "Manifest" => 5,
        _ => 6,
    };
    lines.sort_by(|a, b| {
        (rank(a.kind), &a.location, &a.result).cmp(&(rank(b.kind), &b.location, &b.result))
    });
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Valid => f.write_str("valid"),
            Verdict::Invalid(why) => write!(f, "INVALID: {why}"),
            Verdict::Unverified(why) => write!(f, "UNVERIFIED: {why}"),
        }
    }
}

/// The outcome of a whole verification, and `trailvault verify`'s exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything checked is valid: exit status 0.
    Valid,
    /// Something is invalid: exit status 1.
    Invalid,
    /// Nothing is invalid, but some files cannot be verified: exit status 3.
    Unverified,
}

impl Status {
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Valid => 0,
            Status::Invalid => 1,
            Status::Unverified => 3,
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
    /// `chain restart`, `gap`, `pending`, `not checked`, `conflict`, `insight`, `outside`.
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
    pub status: Status,
    pub digests: Tally,
    pub logs: Tally,
    /// Insights files: checked against the digests where CloudTrail lists them, else
    /// against the manifests.
    pub insights: Tally,
    /// Files no digest can ever cover (included in `lines`).
    pub unverified: u64,
    /// Rewrites kept apart under `_trailvault/conflicts/` (each in `notes`).
    pub conflicts: u64,
    /// `None` when manifests were not checked.
    pub manifests: Option<Tally>,
    /// Archive versions no manifest lists (included in `lines`).
    pub unlisted_versions: u64,
    /// Listed versions missing from the archive or with other bytes (included in `lines`).
    pub bad_entries: u64,
    pub lines: Vec<Line>,
    pub notes: Vec<Note>,
    /// When the check was made (RFC 3339).
    pub checked_at: String,
    /// Per account, region and hour, the worst outcome found.
    pub coverage: CoverageTable,
    /// The keys the signatures were checked with.
    pub keys: Vec<KeyUsed>,
    /// trailvault's manifest chain as found (`None` when manifests were not checked).
    pub manifest_chain: Option<ManifestChain>,
}

/// A public key a signature was checked with.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyUsed {
    /// `cloudtrail` (a digest signing key) or `manifest` (trailvault's manifest signing key).
    pub role: &'static str,
    /// CloudTrail's fingerprint of the key; for the manifest key, the hex SHA-256 of its DER
    /// SubjectPublicKeyInfo (`openssl pkey -pubin -outform DER | sha256sum`).
    pub fingerprint: String,
    /// Where CloudTrail's keys are per region: the region of the digests it signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// How many valid files it verified (digests, or manifests).
    pub files: u64,
}

/// The manifest chain: how long it is, where its head is, how often a link is added.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestChain {
    pub length: u64,
    /// The newest manifest's archive key.
    pub head: Option<String>,
    /// When S3 stored the newest manifest (RFC 3339).
    pub head_written: Option<String>,
    pub period_secs: u64,
}

impl Report {
    /// Whether everything checked is valid.
    pub fn all_valid(&self) -> bool {
        self.lines.iter().all(Line::valid)
    }

    fn status_of(lines: &[Line]) -> Status {
        if lines
            .iter()
            .any(|l| matches!(l.result, Verdict::Invalid(_)))
        {
            Status::Invalid
        } else if lines
            .iter()
            .any(|l| matches!(l.result, Verdict::Unverified(_)))
        {
            Status::Unverified
        } else {
            Status::Valid
        }
    }
}

/// The version of a key that verify checks: the newest that holds bytes, whether or not a
/// delete marker hides it from plain reads.
#[derive(Debug, Clone)]
struct Current {
    version_id: Option<String>,
    /// When S3 stored it (whole seconds).
    written: Option<i64>,
    /// The delete marker that hides it, if one does (its version id).
    hidden_by: Option<String>,
}

impl Current {
    /// Why the file is wrong, given what its check found (`problem`): hidden or not.
    fn judge(&self, problem: Option<String>) -> Option<String> {
        match (&self.hidden_by, problem) {
            (None, problem) => problem,
            (Some(marker), None) => Some(hidden(marker)),
            (Some(marker), Some(p)) => Some(format!("{p}; and {}", hidden(marker))),
        }
    }
}

fn hidden(marker: &str) -> String {
    format!(
        "hidden by a delete marker (versionId={marker}): plain reads find nothing; the version \
         is still there, remove the marker"
    )
}

/// What the archive holds, from one walk of its versions and delete markers.
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
    /// The trail's files for one account and region: everything in the key before the
    /// account's `CloudTrail*` folder, and the region. Logs and digests of one trail (one
    /// bucket and prefix) share it; two trails with different prefixes do not.
    group: (String, String),
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
    /// Hex SHA-256 of `bytes`, computed once as they are read.
    sha256: String,
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
    /// How late a chain's head may be, beyond its cadence (an hour for digests, the manifest
    /// period for manifests), before it is stale.
    pub allowance: time::Duration,
    /// How often the worker writes a manifest (`manifest.period_secs`).
    pub manifest_period: time::Duration,
    /// The clock the manifest chain's staleness is judged by (S3's times of the versions
    /// against it).
    pub now: OffsetDateTime,
    /// Raw SHA-256 of every version read, by (key, version id).
    read: Mutex<HashMap<(String, String), String>>,
}

/// A chain's head may be this much later than its cadence by default.
pub const DEFAULT_ALLOWANCE: time::Duration = time::Duration::hours(3);
/// CloudTrail delivers a digest every hour.
const DIGEST_CADENCE: time::Duration = time::Duration::hours(1);
/// A log file is named for its delivery, which S3 stored (and we copied) after it: a log
/// named later than it was archived, beyond clock skew, was not named by CloudTrail.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(15);

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
            allowance: DEFAULT_ALLOWANCE,
            manifest_period: time::Duration::seconds(60),
            now: OffsetDateTime::now_utc(),
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
        let mut insights: BTreeMap<String, TrailFile> = BTreeMap::new();
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
                FileKind::Insight => {
                    insights.insert(key.clone(), file);
                }
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
        let index_ref = &index;
        let mut checked: Vec<DigestCheck> = stream::iter(digests)
            .map(|file| async move {
                let version = index_ref.current[&file.archive_key].version_id.clone();
                // One file that trips a bug is reported as such; the others are still checked.
                let check = match caught(this.check_digest(file.clone(), version)).await {
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
        let restarts = self.check_chains(&mut checked, &index, &mut lines, &mut notes);
        for c in &mut checked {
            c.problem = index.current[&c.file.archive_key].judge(c.problem.take());
        }
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
                key: c.file.archive_key.clone(),
                version: index.current[&c.file.archive_key].version_id.clone(),
            });
        }
        let missing_count = missing_digests.len() as u64;
        lines.extend(missing_digests);

        // Every file a digest vouches for (log files, and Insights files should a digest
        // list them).
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
                let kind = match this.trail_file(&archive_key).map(|f| f.kind) {
                    Some(FileKind::Insight) => "Insight file",
                    _ => "Log file",
                };
                async move {
                    let version = current.as_ref().and_then(|c| c.version_id.clone());
                    let result = match current {
                        None => Some("not found".to_owned()),
                        Some(cur) => {
                            let problem =
                                caught(this.check_log(&archive_key, cur.version_id.clone(), &hash))
                                    .await
                                    .unwrap_or_else(|panicked| Some(panicked.to_string()));
                            cur.judge(problem)
                        }
                    };
                    progress("log");
                    Line {
                        kind,
                        location: this.location(&archive_key),
                        result: verdict(&result),
                        version,
                        key: archive_key,
                    }
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut log_tally = Tally::default();
        let mut insight_tally = Tally::default();
        for l in &log_lines {
            let t = if l.kind == "Insight file" {
                &mut insight_tally
            } else {
                &mut log_tally
            };
            t.total += 1;
            t.valid += u64::from(l.valid());
        }
        lines.extend(log_lines);

        // What the digests cover, per trail, account and region: logs no digest lists are
        // judged against it.
        let mut coverage: HashMap<(String, String), Coverage> = HashMap::new();
        for c in &checked {
            let cov = coverage.entry(c.file.group.clone()).or_default();
            let Some(d) = &c.digest else { continue };
            let (Some(start), Some(end)) = (
                parse_time(&d.digest_start_time),
                parse_time(&d.digest_end_time),
            ) else {
                continue;
            };
            cov.oldest_start = Some(cov.oldest_start.map_or(start, |t| t.min(start)));
            cov.newest_start = Some(cov.newest_start.map_or(start, |t| t.max(start)));
            if cov.newest_end.is_none_or(|t| end > t) {
                cov.newest_end = Some(end);
                cov.head = Some(c.file.archive_key.clone());
            }
        }
        for (group, from, to) in restarts {
            coverage.entry(group).or_default().restarts.push((from, to));
        }
        // A head is stale when its account and region went on delivering log files long
        // after it: the archive itself shows the trail is alive, so the digests after the head
        // are missing. Only log files named no later than they were archived count: CloudTrail
        // names a file for its delivery, so a later name is not CloudTrail's.
        let mut activity: HashMap<(String, String), OffsetDateTime> = HashMap::new();
        for (key, file) in &logs {
            let written = index.current[key]
                .written
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
            if let (Some(at), Some(written)) = (file.at, written) {
                if at <= written + CLOCK_SKEW {
                    let e = activity.entry(file.group.clone()).or_insert(at);
                    *e = (*e).max(at);
                }
            }
        }
        for (group, cov) in coverage.iter_mut() {
            let (Some(end), Some(latest)) = (cov.newest_end, activity.get(group)) else {
                continue;
            };
            if *latest > end + DIGEST_CADENCE + self.allowance {
                cov.stale = true;
                let head = cov.head.as_deref().unwrap_or_default();
                lines.push(Line {
                    kind: "Digest chain",
                    location: self.location(&chain_folder(head)),
                    key: chain_folder(head),
                    version: None,
                    result: Verdict::Invalid(format!(
                        "stale: its newest digest ends at {}, but log files of this account \
                         and region delivered up to {} are in the archive (allowance {}); the \
                         digests after it are missing: deleted, or log file validation was \
                         turned off",
                        layout::rfc3339(end),
                        layout::rfc3339(*latest),
                        human(self.allowance)
                    )),
                });
            }
        }

        // The coverage table: digests over the period they cover, stale heads over the hours
        // their digests are missing; every file with a line by its own hour, below.
        let mut marks = Marks::default();
        for c in &checked {
            if let (None, Some(d)) = (&c.problem, &c.digest) {
                if let (Some(start), Some(end)) = (
                    parse_time(&d.digest_start_time),
                    parse_time(&d.digest_end_time),
                ) {
                    marks.span(
                        &c.file.account,
                        &c.file.region,
                        start,
                        end,
                        Outcome::Verified,
                    );
                }
            }
        }
        for cov in coverage.values().filter(|c| c.stale) {
            let head = cov.head.as_deref().and_then(|h| self.trail_file(h));
            let latest = head.as_ref().and_then(|h| activity.get(&h.group));
            if let (Some(head), Some(end), Some(latest)) = (head.as_ref(), cov.newest_end, latest) {
                marks.span(&head.account, &head.region, end, *latest, Outcome::Missing);
            }
        }

        // Logs in the archive that no digest lists.
        let mut pending_logs = 0;
        for (archive_key, file) in &logs {
            if listed.contains_key(archive_key) {
                continue;
            }
            let judged = unlisted_log(coverage.get(&file.group), file.at);
            let result = match judged {
                Unlisted::Pending => None,
                Unlisted::Invalid => Some(Verdict::Invalid("not listed in any digest".to_owned())),
                Unlisted::Unverified(why) => Some(Verdict::Unverified(why)),
            };
            // Hidden is wrong whatever else is.
            let result = match (&index.current[archive_key].hidden_by, result) {
                (Some(marker), None | Some(Verdict::Unverified(_))) => {
                    Some(Verdict::Invalid(hidden(marker)))
                }
                (_, r) => r,
            };
            match result {
                None => {
                    pending_logs += 1;
                    if let Some(at) = file.at {
                        marks.hour(&file.account, &file.region, at, Outcome::Pending);
                    }
                }
                Some(result) => {
                    log_tally.total += 1;
                    lines.push(Line {
                        kind: "Log file",
                        location: self.location(archive_key),
                        result,
                        key: archive_key.clone(),
                        version: index.current[archive_key].version_id.clone(),
                    });
                }
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
        let (manifest_tally, unlisted, bad_entries, entries) = match self.manifest_key.clone() {
            Some(key) => {
                let (tally, unlisted, bad, entries) = self
                    .check_manifests(&key, &index, scope, progress, &mut lines, &mut notes)
                    .await;
                (Some(tally), unlisted, bad, Some(entries))
            }
            None => {
                notes.push(Note {
                    kind: "not checked",
                    text: "manifests: no signing key (archive.signing_key, or \
                           --manifest-public-key), so the archive's completeness was not \
                           checked"
                        .to_owned(),
                });
                (None, 0, 0, None)
            }
        };

        // Insights files no digest lists: CloudTrail's digests cover log files only, so the
        // manifests vouch for them: the version a plain read returns must be the one
        // trailvault archived, with its bytes.
        let unlisted_insights: Vec<&String> = insights
            .keys()
            .filter(|k| !listed.contains_key(*k))
            .collect();
        if !unlisted_insights.is_empty() {
            notes.push(Note {
                kind: "insight",
                text: format!(
                    "{} Insights file(s): CloudTrail's digests do not cover Insights files, so \
                     each was checked against trailvault's signed manifests only",
                    unlisted_insights.len()
                ),
            });
        }
        for key in unlisted_insights {
            let cur = &index.current[key];
            let version = cur.version_id.clone().unwrap_or_else(|| "null".to_owned());
            let problem = match &entries {
                None => None,
                Some(entries) => match entries.get(&(key.clone(), version)) {
                    None => Some("its current version is listed in no manifest".to_owned()),
                    Some((sha, n)) => {
                        let actual = self
                            .read_sha(key, &cur.version_id)
                            .await
                            .unwrap_or_default();
                        (actual != *sha).then(|| format!("SHA-256 doesn't match manifest {n}"))
                    }
                },
            };
            let result = match (cur.judge(problem), &entries) {
                (Some(p), _) => Verdict::Invalid(p),
                (None, None) => Verdict::Unverified(
                    "CloudTrail does not sign Insights files, and the manifests were not checked"
                        .to_owned(),
                ),
                (None, Some(_)) => Verdict::Valid,
            };
            insight_tally.total += 1;
            insight_tally.valid += u64::from(result == Verdict::Valid);
            lines.push(Line {
                kind: "Insight file",
                location: self.location(key),
                result,
                key: key.clone(),
                version: cur.version_id.clone(),
            });
        }

        // Rewrites kept apart: evidence of a member changing what it delivered.
        let mut conflicts = 0;
        for v in &index.versions {
            let Some(original) = layout::conflict_of(&v.key) else {
                continue;
            };
            let in_scope = self
                .trail_file(original)
                .is_none_or(|f| scope.takes(&f.account, &f.region, f.at));
            if in_scope {
                conflicts += 1;
                notes.push(Note {
                    kind: "conflict",
                    text: format!(
                        "{}: other bytes delivered for {} after it was archived; kept as \
                         evidence, plain reads of the archive key still get the first bytes",
                        self.location(&v.key),
                        self.location(original)
                    ),
                });
            }
        }

        sort_lines(&mut lines);
        lines.dedup();
        for l in &lines {
            let Some(f) = self.trail_file(&l.key) else {
                continue;
            };
            let Some(at) = f.at else { continue };
            let outcome = l.result.outcome();
            match f.kind {
                // A valid digest marked the period it names, above; its name is its delivery,
                // minutes after that period, so it would mark the wrong hours.
                FileKind::Digest if outcome == Outcome::Verified => {}
                // A wrong or missing one: the hour before its delivery, as near as its name
                // says.
                FileKind::Digest => {
                    marks.span(&f.account, &f.region, at - DIGEST_CADENCE, at, outcome)
                }
                FileKind::Log | FileKind::Insight => marks.hour(&f.account, &f.region, at, outcome),
            }
        }
        let mut keys: BTreeMap<(String, String), u64> = BTreeMap::new();
        // Only keys that verified something: a planted digest names whatever it likes.
        for c in checked.iter().filter(|c| c.problem.is_none()) {
            if let Some(d) = &c.digest {
                *keys
                    .entry((
                        layout::printable(&d.digest_public_key_fingerprint).into_owned(),
                        c.file.region.clone(),
                    ))
                    .or_default() += 1;
            }
        }
        let mut keys: Vec<KeyUsed> = keys
            .into_iter()
            .map(|((fingerprint, region), files)| KeyUsed {
                role: "cloudtrail",
                fingerprint,
                region: Some(region),
                files,
            })
            .collect();
        if let (Some(key), Some(tally)) = (&self.manifest_key, manifest_tally) {
            keys.push(KeyUsed {
                role: "manifest",
                fingerprint: key.spki_sha256(),
                region: None,
                files: tally.valid,
            });
        }
        let manifest_chain = manifest_tally.map(|t| {
            let head = index
                .current
                .keys()
                .filter_map(|k| layout::manifest_sequence(k).map(|n| (n, k)))
                .max();
            let head_written = head
                .and_then(|(_, k)| index.current[k].written)
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                .map(layout::rfc3339);
            ManifestChain {
                length: t.total,
                head: head.map(|(_, k)| k.clone()),
                head_written,
                period_secs: self.manifest_period.whole_seconds().max(0) as u64,
            }
        });
        let (coverage, outside) = marks.table(scope.from, scope.to, self.now + DIGEST_CADENCE);
        if outside.later > 0 {
            notes.push(Note {
                kind: "outside",
                text: format!(
                    "{} hour(s) of files named after the time of this check are left out of \
                     the coverage table: CloudTrail cannot have named them; their files are in \
                     the lines above, or counted as pending",
                    outside.later
                ),
            });
        }
        if outside.earlier > 0 {
            notes.push(Note {
                kind: "outside",
                text: format!(
                    "{} hour(s) of files named before CloudTrail existed (November 2013) are \
                     left out of the coverage table: CloudTrail cannot have named them; their \
                     files are in the lines above",
                    outside.earlier
                ),
            });
        }
        notes.sort_by(|a, b| (a.kind, &a.text).cmp(&(b.kind, &b.text)));
        let unverified = lines
            .iter()
            .filter(|l| matches!(l.result, Verdict::Unverified(_)))
            .count() as u64;
        Ok(Report {
            archive: format!("s3://{}", self.bucket),
            status: Report::status_of(&lines),
            digests: Tally {
                valid: digest_tally.valid,
                total: digest_tally.total + missing_count,
            },
            logs: log_tally,
            insights: insight_tally,
            unverified,
            conflicts,
            manifests: manifest_tally,
            unlisted_versions: unlisted,
            bad_entries,
            lines,
            notes,
            checked_at: layout::rfc3339(self.now),
            coverage,
            keys,
            manifest_chain,
        })
    }

    /// The SHA-256 of a version's bytes: from the reads already made, or read now (`None`
    /// when it cannot be read).
    pub(super) async fn read_sha(&self, key: &str, version: &Option<String>) -> Option<String> {
        let id = version.clone().unwrap_or_else(|| "null".to_owned());
        let known = self
            .read
            .lock()
            .expect("read cache")
            .get(&(key.to_owned(), id))
            .cloned();
        match known {
            Some(sha) => Some(sha),
            None => self
                .fetch(key, version.clone())
                .await
                .ok()
                .map(|f| f.sha256),
        }
    }
}

/// The folder of a digest's chain, from the key of one of its digests:
/// `.../AWSLogs/ACCOUNT/CloudTrail-Digest/REGION/`.
fn chain_folder(digest_key: &str) -> String {
    match digest_key.rsplitn(5, '/').nth(4) {
        Some(folder) => format!("{folder}/"),
        None => digest_key.to_owned(),
    }
}

/// A duration as an operator writes it: `3h`, `90m`, `45s`.
fn human(d: time::Duration) -> String {
    let s = d.whole_seconds();
    if s == 0 {
        "0s".to_owned()
    } else if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
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
