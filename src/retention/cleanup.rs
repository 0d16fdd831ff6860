//! Source cleanup: deleting CloudTrail files from a member account's bucket once, and only
//! once, the archive provably holds them for the whole retention policy.
//!
//! This is the one command that destroys evidence, so it trusts nothing a writer to the
//! archive could have arranged. For every source version older than the account's
//! `cleanup_after_days`:
//!
//! 1. routing: it is a CloudTrail file with an archive key;
//! 2. the source bytes are read and hashed, as the account's reader role;
//! 3. bytes: some version of the archive key holds exactly those bytes by S3's own account,
//!    never by trailvault's `trailvault-sha256` metadata: its size, and S3's stored
//!    full-object SHA-256 (which S3 verified against the bytes when it accepted them), or,
//!    where S3 keeps none (multipart uploads keep a checksum of the parts' checksums only),
//!    the version read back and hashed;
//! 4. lock: that version is locked in the policy's mode (or stricter) until at least the
//!    policy's period after it was archived, asked of the one retention [`judge`], with the
//!    archive time bounded by S3's own time for the version ([`super::archived_at`]), and the
//!    lock has not run out.
//!
//! Only then is the source version deleted, by its version id. Anything less keeps it, and
//! the report names the check that kept it. Nothing is deleted unless asked (`execute`); a
//! dry run reports the same decisions.

use std::collections::{BTreeMap, HashMap};

use futures_util::stream::{self, StreamExt as _};
use serde::Serialize;
use time::OffsetDateTime;

use super::policy::{Lock, LockMode};
use super::{judge, Standing};
use crate::archive::layout::rfc3339;
use crate::archive::routing;
use crate::aws::hash::sha256_of;
use crate::aws::{Aws, Failure, Head, MemberClients, Version, Versions};
use crate::config::{Account, Config, SourceBucket};
use crate::notification::ObjectRef;

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error(
        "cannot list s3://{bucket} (account {account}) as its reader role: {}; the role needs \
         s3:ListBucketVersions on it",
        failure.detail
    )]
    List {
        account: String,
        bucket: String,
        failure: Failure,
    },
}

/// What became of one source version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Deleted,
    /// A dry run's `Deleted`.
    WouldDelete,
    Kept,
}

/// The check a kept source version did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Is it a CloudTrail file with an archive key?
    Routing,
    /// Could the source and the archive be read?
    Read,
    /// Does an archive version hold exactly its bytes, by S3's own account of them?
    Bytes,
    /// Is that version locked for the whole policy, from when it was archived?
    Lock,
    /// Did the delete itself go through?
    Delete,
}

/// Why a source version was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kept {
    NotCloudtrail,
    ReadFailed,
    NotArchived,
    ArchiveDiffers,
    ArchiveNotLocked,
    /// GOVERNANCE where the policy says COMPLIANCE: whoever may bypass governance can delete it.
    ArchiveLockWeaker,
    /// Retained for less than the policy gives it from when it was archived.
    ArchiveLockShort,
    /// Held for the whole policy, but that has run out: the archive may drop it any time.
    ArchiveLockExpired,
    DeleteFailed,
}

impl Kept {
    pub fn check(self) -> Check {
        match self {
            Kept::NotCloudtrail => Check::Routing,
            Kept::ReadFailed => Check::Read,
            Kept::NotArchived | Kept::ArchiveDiffers => Check::Bytes,
            Kept::ArchiveNotLocked
            | Kept::ArchiveLockWeaker
            | Kept::ArchiveLockShort
            | Kept::ArchiveLockExpired => Check::Lock,
            Kept::DeleteFailed => Check::Delete,
        }
    }
}

/// How the archive version's bytes were known to be the source's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ByteCheck {
    /// S3's stored full-object SHA-256 (single-part uploads): S3 checked it against the
    /// bytes before it accepted them. Costs nothing beyond the `HeadObject`.
    S3Checksum,
    /// Read back and hashed (multipart uploads, whose stored checksum covers parts only, and
    /// versions written without a SHA-256 checksum): one `GetObject` of the whole version.
    ReadBack,
}

/// What became of one source version, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub account: String,
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    pub outcome: Outcome,
    /// Why it was kept, and the check that kept it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Kept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Hex SHA-256 of the source version, as read now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The archive version that vouched for it, and how its bytes were checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byte_check: Option<ByteCheck>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub execute: bool,
    /// Source versions looked at (old enough), by outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Kept versions, by reason.
    pub kept: BTreeMap<Kept, u64>,
    /// Versions younger than their account's `cleanup_after_days`, not looked at.
    pub too_recent: u64,
    pub bytes_deleted: u64,
    pub decisions: Vec<Decision>,
}

impl Report {
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes.get(&outcome).copied().unwrap_or(0)
    }
}

/// The archive version that vouches for a source version's bytes.
struct Vouched {
    version_id: String,
    byte_check: ByteCheck,
}

/// Deletes (or, in a dry run, names) the source versions the archive holds.
pub struct Cleanup<'c> {
    config: &'c Config,
    archive: aws_sdk_s3::Client,
    members: HashMap<String, MemberClients>,
    concurrency: usize,
}

impl<'c> Cleanup<'c> {
    pub async fn new(config: &'c Config, aws: &Aws, concurrency: usize) -> Cleanup<'c> {
        let mut members = HashMap::new();
        for account in &config.accounts {
            members.insert(
                account.id.to_string(),
                aws.member(account, &config.archive.region).await,
            );
        }
        Cleanup {
            config,
            archive: aws.s3(&config.archive.region),
            members,
            concurrency,
        }
    }

    /// Cleans the buckets of `accounts` (each by its own `cleanup_after_days`), as of `now`.
    pub async fn run(
        &self,
        accounts: &[&'c Account],
        execute: bool,
        now: OffsetDateTime,
        mut progress: impl FnMut(&Report),
    ) -> Result<Report, CleanupError> {
        let mut report = Report {
            execute,
            ..Report::default()
        };
        for account in accounts {
            let Some(days) = account.cleanup_after_days else {
                continue;
            };
            let cutoff = now - time::Duration::days(i64::from(days));
            for bucket in &account.buckets {
                let source = self.members[account.id.as_str()].s3(&bucket.region);
                let mut pages = Versions::new(source.clone(), bucket.name.as_str(), None);
                loop {
                    let page = pages
                        .next_page()
                        .await
                        .map_err(|failure| CleanupError::List {
                            account: account.id.to_string(),
                            bucket: bucket.name.to_string(),
                            failure,
                        })?;
                    let Some(page) = page else { break };
                    let (old, young): (Vec<Version>, Vec<Version>) =
                        page.versions.into_iter().partition(|v| {
                            v.last_modified
                                .is_some_and(|t| t.secs() <= cutoff.unix_timestamp())
                        });
                    report.too_recent += young.len() as u64;
                    let mut decided = stream::iter(old)
                        .map(|v| self.decide(account, bucket, &source, v, execute))
                        .buffer_unordered(self.concurrency.max(1));
                    while let Some((decision, bytes)) = decided.next().await {
                        *report.outcomes.entry(decision.outcome).or_default() += 1;
                        if let Some(reason) = decision.reason {
                            *report.kept.entry(reason).or_default() += 1;
                        }
                        if decision.outcome == Outcome::Deleted {
                            report.bytes_deleted += bytes;
                        }
                        report.decisions.push(decision);
                        progress(&report);
                    }
                }
            }
        }
        report.decisions.sort_by(|a, b| {
            (&a.bucket, &a.key, &a.version_id).cmp(&(&b.bucket, &b.key, &b.version_id))
        });
        Ok(report)
    }

    async fn decide(
        &self,
        account: &Account,
        bucket: &SourceBucket,
        source: &aws_sdk_s3::Client,
        v: Version,
        execute: bool,
    ) -> (Decision, u64) {
        let mut decision = Decision {
            account: account.id.to_string(),
            bucket: bucket.name.to_string(),
            key: v.key.clone(),
            version_id: v.version_id.clone().unwrap_or_else(|| "null".to_owned()),
            outcome: Outcome::Kept,
            reason: None,
            check: None,
            detail: None,
            sha256: None,
            archive_version_id: None,
            byte_check: None,
        };
        let kept = |mut d: Decision, reason: Kept, detail: String| {
            d.reason = Some(reason);
            d.check = Some(reason.check());
            d.detail = Some(detail);
            (d, 0)
        };
        let object = ObjectRef {
            bucket: bucket.name.to_string(),
            key: v.key.clone(),
            version_id: v.version_id.clone(),
            size: Some(v.size),
            etag: None,
            event_time: None,
        };
        let route = match routing::route(self.config, &object) {
            Ok(route) => route,
            Err(refusal) => return kept(decision, Kept::NotCloudtrail, refusal.to_string()),
        };
        let sha =
            match sha256_of(source, &object.bucket, &object.key, v.version_id.as_deref()).await {
                Ok(sha) => sha,
                Err(failure) => {
                    let detail = format!(
                    "reading s3://{}/{} version {} as account {}'s reader role failed: {}; the \
                     role needs s3:GetObjectVersion on the bucket",
                    object.bucket, object.key, decision.version_id, account.id, failure.detail
                );
                    return kept(decision, Kept::ReadFailed, detail);
                }
            };
        decision.sha256 = Some(hex::encode(sha));
        match self.vouch(&route.archive_key, &sha, v.size).await {
            Ok(vouched) => {
                decision.archive_version_id = Some(vouched.version_id);
                decision.byte_check = Some(vouched.byte_check);
            }
            Err((reason, detail)) => return kept(decision, reason, detail),
        }
        if !execute {
            decision.outcome = Outcome::WouldDelete;
            return (decision, 0);
        }
        let deleted = source
            .delete_object()
            .bucket(bucket.name.as_str())
            .key(&v.key)
            .set_version_id(v.version_id.clone())
            .send()
            .await;
        match deleted {
            Ok(_) => {
                tracing::info!(
                    account = %account.id, bucket = %bucket.name, key = %v.key,
                    version_id = %decision.version_id,
                    sha256 = decision.sha256.as_deref().unwrap_or_default(),
                    archive_key = %route.archive_key,
                    archive_version_id = decision.archive_version_id.as_deref().unwrap_or_default(),
                    "source deleted: the archive holds it byte for byte, locked for the whole policy"
                );
                decision.outcome = Outcome::Deleted;
                (decision, v.size)
            }
            Err(e) => kept(
                decision,
                Kept::DeleteFailed,
                format!(
                    "DeleteObject failed: {}; the reader role needs s3:DeleteObjectVersion on \
                     the bucket for cleanup",
                    Failure::from_sdk(&e).detail
                ),
            ),
        }
    }

    /// The archive version of `key` that holds exactly these bytes (by S3's account of them,
    /// never by metadata a writer chose) and is locked for the whole policy; or why none does.
    async fn vouch(&self, key: &str, sha: &[u8; 32], size: u64) -> Result<Vouched, (Kept, String)> {
        let bucket = self.config.archive.bucket.as_str();
        let read_failed = |what: String, failure: Failure| {
            (
                Kept::ReadFailed,
                format!(
                    "{what} s3://{bucket}/{key} failed: {}; the identity needs \
                     s3:ListBucketVersions, s3:GetObjectVersion and kms:Decrypt on the archive",
                    failure.detail
                ),
            )
        };
        let versions = Versions::new(self.archive.clone(), bucket, Some(key))
            .all()
            .await
            .map_err(|f| read_failed("listing".to_owned(), f))?;
        let now = OffsetDateTime::now_utc();
        let mut differs = Vec::new();
        let mut short = None;
        for v in versions.iter().filter(|v| v.key == key) {
            let version = v.version_id.as_deref().unwrap_or("null");
            let head = Head::read(&self.archive, bucket, key, v.version_id.as_deref(), true)
                .await
                .map_err(|e| read_failed(format!("HeadObject (version {version})"), e.failure))?;
            if head.size != size {
                differs.push(format!(
                    "version {version} is {} bytes, not {size}",
                    head.size
                ));
                continue;
            }
            let (archived, byte_check) = match head.sha256 {
                Some(stored) => (stored, ByteCheck::S3Checksum),
                None => (
                    sha256_of(&self.archive, bucket, key, v.version_id.as_deref())
                        .await
                        .map_err(|f| read_failed(format!("reading back (version {version})"), f))?,
                    ByteCheck::ReadBack,
                ),
            };
            if archived != *sha {
                differs.push(format!(
                    "version {version} has SHA-256 {} ({})",
                    hex::encode(archived),
                    match byte_check {
                        ByteCheck::S3Checksum => "S3's stored checksum",
                        ByteCheck::ReadBack => "read back",
                    }
                ));
                continue;
            }
            let archived_at = super::archived_at(head.stamp(), head.last_modified).unwrap_or(now);
            match lock_verdict(self.config.retention.lock, archived_at, &head, now) {
                Ok(()) => {
                    return Ok(Vouched {
                        version_id: version.to_owned(),
                        byte_check,
                    })
                }
                // Another version with these bytes may still be held.
                Err((reason, why)) => {
                    short.get_or_insert((
                        reason,
                        format!(
                            "s3://{bucket}/{key} version {version} holds these bytes, but {why}"
                        ),
                    ));
                }
            }
        }
        Err(match short {
            Some(short) => short,
            None if differs.is_empty() => (
                Kept::NotArchived,
                format!(
                    "s3://{bucket}/{key} does not exist; the worker or a backfill must archive \
                     it first"
                ),
            ),
            None => (
                Kept::ArchiveDiffers,
                format!(
                    "no version of s3://{bucket}/{key} holds these bytes (SHA-256 {}): {}",
                    hex::encode(sha),
                    differs.join("; ")
                ),
            ),
        })
    }
}

/// Whether a version archived at `archived_at` is locked for the whole of `policy`, asked of
/// the one retention judge; and still locked at `now`, so that the archive cannot drop its
/// copy right after the source is gone.
fn lock_verdict(
    policy: Lock,
    archived_at: OffsetDateTime,
    head: &Head,
    now: OffsetDateTime,
) -> Result<(), (Kept, String)> {
    let judgement = judge(policy, archived_at, head.lock_mode, head.retain_until);
    let locked = || {
        format!(
            "it is locked in {} mode until {}",
            head.lock_mode.map_or("no", LockMode::as_str),
            head.retain_until.map_or("never".to_owned(), rfc3339)
        )
    };
    let fix = "run `trailvault retention audit --fix` to extend it, then clean up again";
    let policy_asks = format!(
        "the policy ({policy}, from when it was archived at {}) asks for {} until {}",
        rfc3339(archived_at),
        policy.mode,
        rfc3339(judgement.due)
    );
    match judgement.standing {
        Standing::Missing => Err((
            Kept::ArchiveNotLocked,
            format!("it is not locked; {policy_asks}; {fix}"),
        )),
        Standing::WeakerMode => Err((
            Kept::ArchiveLockWeaker,
            format!(
                "{}, which anyone allowed s3:BypassGovernanceRetention can lift; {policy_asks}; \
                 {fix}",
                locked()
            ),
        )),
        Standing::Short => Err((
            Kept::ArchiveLockShort,
            format!("{}; {policy_asks}; {fix}", locked()),
        )),
        Standing::Held | Standing::StricterMode => match head.retain_until {
            Some(until) if until > now => Ok(()),
            _ => Err((
                Kept::ArchiveLockExpired,
                format!(
                    "{}: the policy's period is over, so the archive may drop it at any time \
                     and the source is its last copy",
                    locked()
                ),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::retention::policy::RetentionPeriod;

    fn head(mode: Option<LockMode>, until: Option<OffsetDateTime>) -> Head {
        Head {
            version_id: Some("v1".to_owned()),
            size: 1,
            last_modified: None,
            metadata: HashMap::new(),
            sse: None,
            kms_key: None,
            lock_mode: mode,
            retain_until: until,
            legal_hold: false,
            multipart: false,
            sha256: None,
        }
    }

    #[test]
    fn only_a_lock_for_the_whole_policy_lets_the_source_go() {
        let compliance = Lock {
            mode: LockMode::Compliance,
            period: RetentionPeriod::Years(7),
        };
        let governance = Lock {
            mode: LockMode::Governance,
            ..compliance
        };
        let at = datetime!(2026-01-01 00:00:00 UTC);
        let now = datetime!(2026-06-01 00:00:00 UTC);
        let due = datetime!(2033-01-01 00:00:00 UTC);
        let tomorrow = datetime!(2026-06-02 00:00:00 UTC);
        use LockMode::*;
        let cases = [
            (compliance, Some(Compliance), Some(due), None),
            (
                compliance,
                Some(Compliance),
                Some(due + time::Duration::days(1)),
                None,
            ),
            (governance, Some(Governance), Some(due), None),
            (governance, Some(Compliance), Some(due), None),
            (compliance, None, None, Some(Kept::ArchiveNotLocked)),
            (
                compliance,
                Some(Governance),
                Some(due),
                Some(Kept::ArchiveLockWeaker),
            ),
            (
                compliance,
                Some(Governance),
                Some(tomorrow),
                Some(Kept::ArchiveLockWeaker),
            ),
            (
                compliance,
                Some(Compliance),
                Some(tomorrow),
                Some(Kept::ArchiveLockShort),
            ),
            (
                governance,
                Some(Governance),
                Some(tomorrow),
                Some(Kept::ArchiveLockShort),
            ),
            // A second short of the policy is short.
            (
                governance,
                Some(Governance),
                Some(due - time::Duration::seconds(1)),
                Some(Kept::ArchiveLockShort),
            ),
        ];
        for (policy, mode, until, kept) in cases {
            let verdict = lock_verdict(policy, at, &head(mode, until), now);
            assert_eq!(
                verdict.err().map(|(k, _)| k),
                kept,
                "{policy} against {mode:?} {until:?}"
            );
        }
    }

    #[test]
    fn a_lock_whose_policy_ran_out_keeps_the_source() {
        let policy = Lock {
            mode: LockMode::Compliance,
            period: RetentionPeriod::Days(1),
        };
        let at = datetime!(2026-01-01 00:00:00 UTC);
        let until = datetime!(2026-01-02 00:00:00 UTC);
        let h = head(Some(LockMode::Compliance), Some(until));
        assert!(lock_verdict(policy, at, &h, until - time::Duration::seconds(1)).is_ok());
        let (kept, why) = lock_verdict(policy, at, &h, until).unwrap_err();
        assert_eq!(kept, Kept::ArchiveLockExpired);
        assert!(why.contains("until 2026-01-02T00:00:00Z"), "{why}");
    }

    #[test]
    fn every_reason_names_its_check() {
        let all = [
            (Kept::NotCloudtrail, Check::Routing),
            (Kept::ReadFailed, Check::Read),
            (Kept::NotArchived, Check::Bytes),
            (Kept::ArchiveDiffers, Check::Bytes),
            (Kept::ArchiveNotLocked, Check::Lock),
            (Kept::ArchiveLockWeaker, Check::Lock),
            (Kept::ArchiveLockShort, Check::Lock),
            (Kept::ArchiveLockExpired, Check::Lock),
            (Kept::DeleteFailed, Check::Delete),
        ];
        for (kept, check) in all {
            assert_eq!(kept.check(), check, "{kept:?}");
        }
        assert_eq!(
            serde_json::to_value(Kept::ArchiveLockWeaker).unwrap(),
            "archive_lock_weaker"
        );
        assert_eq!(
            serde_json::to_value(Outcome::WouldDelete).unwrap(),
            "would_delete"
        );
    }
}
