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
use std::io::Read as _;
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt as _};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::archive::layout;
use crate::aws::{Failure, Version, Versions};
use crate::cloudtrail::digest::{self, Digest, PublicKey};
use crate::cloudtrail::gzip;
use crate::cloudtrail::key::{self, FileKind};
use crate::manifest::Manifest;

pub mod keys;

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
    /// `valid`, or `INVALID: why`.
    pub result: String,
}

impl Line {
    pub fn valid(&self) -> bool {
        self.result == "valid"
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

/// A manifest read and parsed, or why not.
type ManifestRead = Result<(Manifest, Fetched), String>;

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
                let check = this.check_digest(file).await;
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
                        Some(cur) => this.check_log(&archive_key, cur.version_id, &hash).await,
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
            match (cutoff, file.at) {
                (Some(cutoff), Some(at)) if at < *cutoff => {
                    log_tally.total += 1;
                    lines.push(Line {
                        kind: "Log file",
                        location: self.location(archive_key),
                        result: "INVALID: not listed in any digest".to_owned(),
                    });
                }
                _ => pending_logs += 1,
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

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Every version, and every key's current version, in one walk.
    async fn index(&self) -> Result<Index, VerifyError> {
        let mut pages = Versions::new(self.s3.clone(), &self.bucket, None);
        let mut current = HashMap::new();
        let mut versions = Vec::new();
        while let Some(page) = pages
            .next_page()
            .await
            .map_err(|failure| VerifyError::List {
                bucket: self.bucket.clone(),
                failure,
            })?
        {
            for v in page.versions {
                if v.is_latest {
                    current.insert(
                        v.key.clone(),
                        Current {
                            version_id: v.version_id.clone(),
                        },
                    );
                }
                versions.push(v);
            }
        }
        Ok(Index { current, versions })
    }

    /// What an archive key says about the CloudTrail file it holds.
    fn trail_file(&self, archive_key: &str) -> Option<TrailFile> {
        let rest = archive_key.strip_prefix(&self.key_prefix)?;
        let (source_bucket, source_key) = rest.split_once('/')?;
        let k = key::parse(source_key).ok()?;
        Some(TrailFile {
            archive_key: archive_key.to_owned(),
            source_bucket: source_bucket.to_owned(),
            account: k.account.to_owned(),
            region: k.region.to_owned(),
            kind: k.kind,
            at: k.time(),
            trail: k
                .trail
                .map(|t| (t.name.to_owned(), t.home_region.to_owned())),
        })
    }

    async fn fetch(&self, key: &str, version: Option<String>) -> Result<Fetched, String> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.clone())
            .send()
            .await
            .map_err(|e| {
                let f = Failure::from_sdk(&e);
                if f.is_status(404) {
                    "not found".to_owned()
                } else {
                    format!("cannot be read ({})", f.detail)
                }
            })?;
        let metadata = out.metadata().cloned().unwrap_or_default();
        let version_id = out
            .version_id()
            .map(str::to_owned)
            .or(version)
            .unwrap_or_else(|| "null".to_owned());
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| format!("cannot be read ({e})"))?
            .into_bytes();
        let sha = hex::encode(Sha256::digest(&bytes));
        self.read
            .lock()
            .expect("read cache")
            .insert((key.to_owned(), version_id), sha);
        Ok(Fetched { bytes, metadata })
    }

    async fn check_digest(&self, file: TrailFile) -> DigestCheck {
        let mut check = DigestCheck {
            file,
            digest: None,
            sha256: None,
            signature: None,
            problem: None,
        };
        let key = check.file.archive_key.clone();
        let fetched = match self.fetch(&key, None).await {
            Ok(f) => f,
            Err(why) => {
                check.problem = Some(why);
                return check;
            }
        };
        check.signature = fetched.metadata.get(digest::SIGNATURE_METADATA).cloned();
        let decompressed = match gzip::gunzip(&fetched.bytes, DIGEST_CAP) {
            Ok(d) => d,
            Err(_) => {
                check.problem = Some("invalid format".to_owned());
                return check;
            }
        };
        check.sha256 = Some(hex::encode(Sha256::digest(&decompressed)));
        let Ok(d) = Digest::from_json(&decompressed) else {
            check.problem = Some("invalid format".to_owned());
            return check;
        };
        // The archive key is the original `bucket/key` behind the prefix.
        let original = &key[self.key_prefix.len()..];
        check.problem = if format!("{}/{}", d.digest_s3_bucket, d.digest_s3_object) != original {
            Some("has been moved from its original location".to_owned())
        } else if let Some(public) = self.cloudtrail_keys.get(&d.digest_public_key_fingerprint) {
            match &check.signature {
                None => Some("has no signature (x-amz-meta-signature is missing)".to_owned()),
                Some(sig) => public
                    .verify(d.string_to_sign(&decompressed).as_bytes(), sig)
                    .err()
                    .map(|_| "signature verification failed".to_owned()),
            }
        } else {
            Some(format!(
                "public key not found in region {} for fingerprint {}",
                check.file.region, d.digest_public_key_fingerprint
            ))
        };
        check.digest = Some(d);
        check
    }

    /// Links between digests: each previous digest must be there, with the hash and signature
    /// its successor names; restarts and gaps are noted. Missing digests become lines.
    fn check_chains(
        &self,
        checked: &mut [DigestCheck],
        index: &Index,
        lines: &mut Vec<Line>,
        notes: &mut Vec<Note>,
    ) {
        // What each digest's successor must name: its hash and its signature.
        let by_key: HashMap<String, (Option<String>, Option<String>)> = checked
            .iter()
            .map(|c| {
                (
                    c.file.archive_key.clone(),
                    (c.sha256.clone(), c.signature.clone()),
                )
            })
            .collect();
        for c in checked.iter_mut() {
            let Some(d) = &c.digest else { continue };
            let (Some(prev_bucket), Some(prev_object)) =
                (&d.previous_digest_s3_bucket, &d.previous_digest_s3_object)
            else {
                continue;
            };
            let prev_key = format!("{}{prev_bucket}/{prev_object}", self.key_prefix);
            if !index.current.contains_key(&prev_key) {
                // Outside the time range, a previous digest is only looked for, not read.
                lines.push(Line {
                    kind: "Digest file",
                    location: self.location(&prev_key),
                    result: "INVALID: not found".to_owned(),
                });
                continue;
            }
            let Some((sha, sig)) = by_key.get(&prev_key) else {
                continue; // present, outside the scope
            };
            if c.problem.is_some() {
                continue;
            }
            if sha.as_deref() != d.previous_digest_hash_value.as_deref() {
                c.problem = Some(format!(
                    "previousDigestHashValue does not match the previous digest {} found in \
                     the archive",
                    self.location(&prev_key)
                ));
            } else if sig.as_deref() != d.previous_digest_signature.as_deref() {
                c.problem = Some(format!(
                    "previousDigestSignature does not match the signature of the previous \
                     digest {}",
                    self.location(&prev_key)
                ));
            }
        }

        // Restarts and gaps, per chain (source bucket, account, region, trail), oldest first.
        let mut chains: BTreeMap<(String, String, String, String), Vec<&DigestCheck>> =
            BTreeMap::new();
        for c in checked.iter().filter(|c| c.digest.is_some()) {
            let (trail, home) = c.file.trail.clone().unwrap_or_default();
            chains
                .entry((
                    c.file.source_bucket.clone(),
                    c.file.account.clone(),
                    c.file.region.clone(),
                    format!("{trail} ({home})"),
                ))
                .or_default()
                .push(c);
        }
        for ((_, account, region, trail), mut chain) in chains {
            chain.sort_by_key(|c| c.digest.as_ref().map(|d| d.digest_end_time.clone()));
            for pair in chain.windows(2) {
                let (older, newer) = (pair[0], pair[1]);
                let (o, n) = (
                    older.digest.as_ref().expect("filtered"),
                    newer.digest.as_ref().expect("filtered"),
                );
                if n.previous_digest_s3_object.is_none() {
                    notes.push(Note {
                        kind: "chain restart",
                        text: format!(
                            "account {account}, {region}, trail {trail}: the chain restarts at \
                             {} (previousDigest is null; CloudTrail logging or validation was \
                             off before {})",
                            self.location(&newer.file.archive_key),
                            n.digest_start_time
                        ),
                    });
                } else if n.previous_digest_s3_object.as_deref() == Some(&o.digest_s3_object)
                    && n.digest_start_time != o.digest_end_time
                {
                    notes.push(Note {
                        kind: "gap",
                        text: format!(
                            "account {account}, {region}, trail {trail}: no digest covers {} \
                             to {}, though the chain is unbroken",
                            o.digest_end_time, n.digest_start_time
                        ),
                    });
                }
            }
        }
    }

    /// The SHA-256 of a log's decompressed bytes against `hash`; `None` when they match.
    async fn check_log(&self, key: &str, version: Option<String>, hash: &str) -> Option<String> {
        let fetched = match self.fetch(key, version).await {
            Ok(f) => f,
            Err(why) => return Some(why),
        };
        // Decompressing is the CPU-heavy part: off the async threads, on every core.
        let sha = tokio::task::spawn_blocking(move || {
            let mut reader = gzip::reader(&fetched.bytes[..], LOG_CAP);
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break Some(hex::encode(hasher.finalize())),
                    Ok(n) => hasher.update(&buf[..n]),
                    Err(_) => break None,
                }
            }
        })
        .await
        .ok()
        .flatten();
        match sha {
            None => Some("invalid format".to_owned()),
            Some(sha) if sha == hash => None,
            Some(_) => Some("hash value doesn't match".to_owned()),
        }
    }

    /// Walks the manifest chain, checks every entry, and finds the versions no manifest
    /// lists. Returns the manifests' tally, the unlisted versions and the bad entries.
    async fn check_manifests(
        &self,
        key: &PublicKey,
        index: &Index,
        scope: &Scope,
        progress: &(dyn Fn(&str) + Sync),
        lines: &mut Vec<Line>,
        notes: &mut Vec<Note>,
    ) -> (Tally, u64, u64) {
        let present: BTreeMap<u64, String> = index
            .current
            .keys()
            .filter_map(|k| layout::manifest_sequence(k).map(|n| (n, k.clone())))
            .collect();
        let newest = present.keys().next_back().copied().unwrap_or(0);
        let fetched: Vec<(u64, ManifestRead)> = stream::iter(present.clone())
            .map(|(n, k)| async move {
                let r = match self.fetch(&k, None).await {
                    Ok(f) => match serde_json::from_slice::<Manifest>(&f.bytes) {
                        Ok(m) => Ok((m, f)),
                        Err(_) => Err("invalid format".to_owned()),
                    },
                    Err(why) => Err(why),
                };
                progress("manifest");
                (n, r)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let fetched: BTreeMap<u64, ManifestRead> = fetched.into_iter().collect();

        let mut tally = Tally::default();
        // (key, version) -> (sha256, manifest number)
        let mut entries: HashMap<(String, String), (String, u64)> = HashMap::new();
        for n in 1..=newest {
            tally.total += 1;
            let location = self.location(&layout::manifest_key(n));
            let problem = match fetched.get(&n) {
                None => Some(format!(
                    "not found (the chain is broken between {} and {})",
                    n.saturating_sub(1),
                    n + 1
                )),
                Some(Err(why)) => Some(why.clone()),
                Some(Ok((m, f))) => {
                    let problem = self.check_manifest(key, n, m, f, fetched.get(&(n - 1)));
                    if problem.is_none() {
                        for e in &m.entries {
                            entries.insert(
                                (e.archive_key.clone(), e.version_id.clone()),
                                (e.sha256.clone(), n),
                            );
                        }
                    }
                    problem
                }
            };
            tally.valid += u64::from(problem.is_none());
            lines.push(Line {
                kind: "Manifest",
                location,
                result: verdict(&problem),
            });
        }

        // Every listed version must be there, with the bytes the manifest names.
        let exists: BTreeSet<(String, String)> = index
            .versions
            .iter()
            .map(|v| {
                (
                    v.key.clone(),
                    v.version_id.clone().unwrap_or_else(|| "null".to_owned()),
                )
            })
            .collect();
        let in_scope = |key: &str, at: Option<OffsetDateTime>| match self.trail_file(key) {
            Some(f) => scope.takes(&f.account, &f.region, at.or(f.at)),
            None => scope.is_whole(),
        };
        let to_check: Vec<((String, String), (String, u64))> = entries
            .iter()
            .filter(|((k, _), _)| in_scope(k, None))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let checked: Vec<Option<Line>> = stream::iter(to_check)
            .map(|((k, v), (sha, n))| {
                let exists = exists.contains(&(k.clone(), v.clone()));
                async move {
                    let known = self
                        .read
                        .lock()
                        .expect("read cache")
                        .get(&(k.clone(), v.clone()))
                        .cloned();
                    let problem = if !exists {
                        Some(format!("listed in manifest {n} but not in the archive"))
                    } else {
                        let actual = match known {
                            Some(s) => Some(s),
                            None => {
                                let version = (v != "null").then(|| v.clone());
                                self.fetch(&k, version)
                                    .await
                                    .ok()
                                    .map(|f| hex::encode(Sha256::digest(&f.bytes)))
                            }
                        };
                        match actual {
                            Some(a) if a == sha => None,
                            Some(_) => Some(format!("SHA-256 doesn't match manifest {n}")),
                            None => Some(format!("listed in manifest {n} but cannot be read")),
                        }
                    };
                    progress("version");
                    problem.map(|p| Line {
                        kind: "Archive object",
                        location: format!("{}?versionId={v}", self.location(&k)),
                        result: format!("INVALID: {p}"),
                    })
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let bad: Vec<Line> = checked.into_iter().flatten().collect();
        let bad_entries = bad.len() as u64;
        lines.extend(bad);

        // Every version in the archive must be listed, but those written since the newest
        // manifest was (S3's own time, which no manifest content can move), which the next
        // manifest will list.
        let newest_manifest_write = index
            .versions
            .iter()
            .filter(|v| v.key.starts_with(layout::MANIFESTS))
            .filter_map(|v| v.last_modified.map(|t| t.secs()))
            .max();
        let mut unlisted = 0;
        let mut pending = 0;
        for v in &index.versions {
            if v.key.starts_with(layout::MANIFESTS) {
                continue;
            }
            let at = v
                .last_modified
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok());
            if !in_scope(&v.key, at) {
                continue;
            }
            let version = v.version_id.clone().unwrap_or_else(|| "null".to_owned());
            if entries.contains_key(&(v.key.clone(), version.clone())) {
                continue;
            }
            // Same second as the newest manifest: S3's times are whole seconds, so it may be
            // newer.
            let written = v.last_modified.map(|t| t.secs());
            if newest_manifest_write.is_none_or(|m| written.is_none_or(|w| w >= m)) {
                pending += 1;
                continue;
            }
            unlisted += 1;
            lines.push(Line {
                kind: "Archive object",
                location: format!("{}?versionId={version}", self.location(&v.key)),
                result: "INVALID: no manifest lists this version".to_owned(),
            });
        }
        if pending > 0 {
            notes.push(Note {
                kind: "pending",
                text: format!(
                    "{pending} archive version(s) written after the newest manifest's period: \
                     the next manifest lists them; verify again after it"
                ),
            });
        }
        (tally, unlisted, bad_entries)
    }

    /// What is wrong with manifest `n`, if anything.
    fn check_manifest(
        &self,
        key: &PublicKey,
        n: u64,
        m: &Manifest,
        f: &Fetched,
        previous: Option<&ManifestRead>,
    ) -> Option<String> {
        let manifest_key = layout::manifest_key(n);
        let Some(signature) = f.metadata.get(digest::SIGNATURE_METADATA) else {
            return Some("has no signature (x-amz-meta-signature is missing)".to_owned());
        };
        if m.sequence != n || m.archive_bucket != self.bucket {
            return Some("has been moved from its original location".to_owned());
        }
        if key
            .verify(
                m.string_to_sign(&manifest_key, &f.bytes).as_bytes(),
                signature,
            )
            .is_err()
        {
            return Some("signature verification failed".to_owned());
        }
        if n == 1 {
            return m
                .previous_manifest_key
                .is_some()
                .then(|| "the first manifest names a previous one".to_owned());
        }
        if m.previous_manifest_key.as_deref() != Some(layout::manifest_key(n - 1).as_str()) {
            return Some(format!("does not name manifest {} as its previous", n - 1));
        }
        match previous {
            Some(Ok((_, pf))) => {
                if m.previous_manifest_hash_value.as_deref()
                    != Some(hex::encode(Sha256::digest(&pf.bytes)).as_str())
                {
                    Some(format!(
                        "previousManifestHashValue does not match manifest {} found in the \
                         archive",
                        n - 1
                    ))
                } else if m.previous_manifest_signature.as_ref()
                    != pf.metadata.get(digest::SIGNATURE_METADATA)
                {
                    Some(format!(
                        "previousManifestSignature does not match the signature of manifest {}",
                        n - 1
                    ))
                } else {
                    None
                }
            }
            // The previous one is missing or unreadable: reported on its own line.
            _ => None,
        }
    }
}

fn verdict(problem: &Option<String>) -> String {
    match problem {
        None => "valid".to_owned(),
        Some(p) => format!("INVALID: {p}"),
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
