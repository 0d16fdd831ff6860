//! Every archived version's lock against the policy.
//!
//! Versions archived before the policy grew, versions written by hand, and multipart uploads
//! whose retention could not be set may fall short. The audit finds them (one `HeadObject`
//! per version: it carries the lock, the legal hold and the archive time) and, asked to fix,
//! extends their retention: never shorter, never a weaker mode.

use std::collections::BTreeMap;

use futures_util::stream::{self, StreamExt as _};
use serde::Serialize;
use time::OffsetDateTime;

use super::lock::set_retention;
use super::policy::{Lock, LockMode};
use super::{judge, Standing};
use crate::archive::layout::rfc3339;
use crate::aws::{Failure, Head, Version, Versions};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "cannot list the versions in archive bucket {bucket}{}: {}; the identity needs \
         s3:ListBucketVersions on it",
        prefix.as_ref().map(|p| format!(" under {p}")).unwrap_or_default(),
        failure.detail
    )]
    List {
        bucket: String,
        prefix: Option<String>,
        failure: Failure,
    },
}

/// One version whose lock is not simply what the policy asks.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub key: String,
    pub version_id: String,
    /// The lock's standing (`missing`, `short`, `weaker_mode`, `stricter_mode`), or
    /// `unreadable` (`None`) when its head could not be read.
    #[serde(serialize_with = "standing_or_unreadable")]
    pub standing: Option<Standing>,
    pub mode: Option<String>,
    pub retain_until: Option<String>,
    /// What the policy asks: retained until then, at least.
    pub due: Option<String>,
    pub legal_hold: bool,
    /// `fixed`, or why the fix failed; absent when nothing was (or could be) fixed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an audit found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub bucket: String,
    pub prefix: Option<String>,
    pub policy: String,
    pub versions: u64,
    pub delete_markers: u64,
    /// Versions by standing (`held`, `missing`, `short`, ...).
    pub standings: BTreeMap<Standing, u64>,
    pub legal_holds: u64,
    pub fixed: u64,
    pub fix_failures: u64,
    pub unreadable: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Versions that fall short of the policy and were not fixed.
    pub fn outstanding(&self) -> u64 {
        let short: u64 = self
            .standings
            .iter()
            .filter(|(s, _)| s.falls_short())
            .map(|(_, n)| n)
            .sum();
        short - self.fixed + self.unreadable
    }
}

/// Audits the versions of one archive bucket.
pub struct Audit {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub lock: Lock,
    /// `HeadObject` (and fix) requests at once.
    pub concurrency: usize,
}

impl Audit {
    /// Walks every version under `prefix`; with `fix`, extends the ones that fall short.
    /// `progress` sees the report after each version.
    pub async fn run(
        &self,
        prefix: Option<&str>,
        fix: bool,
        mut progress: impl FnMut(&Report),
    ) -> Result<Report, AuditError> {
        let mut report = Report {
            bucket: self.bucket.clone(),
            prefix: prefix.map(str::to_owned),
            policy: self.lock.to_string(),
            ..Report::default()
        };
        let mut pages = Versions::new(self.s3.clone(), &self.bucket, prefix);
        loop {
            let page = pages
                .next_page()
                .await
                .map_err(|failure| AuditError::List {
                    bucket: self.bucket.clone(),
                    prefix: prefix.map(str::to_owned),
                    failure,
                })?;
            let Some(page) = page else { break };
            report.delete_markers += page.delete_markers;
            let mut checked = stream::iter(page.versions)
                .map(|v| self.check(v, fix))
                .buffer_unordered(self.concurrency.max(1));
            while let Some(outcome) = checked.next().await {
                report.versions += 1;
                match outcome {
                    Checked::Held { legal_hold } => {
                        *report.standings.entry(Standing::Held).or_default() += 1;
                        report.legal_holds += u64::from(legal_hold);
                    }
                    Checked::Finding(f) => {
                        report.legal_holds += u64::from(f.legal_hold);
                        match f.standing {
                            None => report.unreadable += 1,
                            Some(standing) => *report.standings.entry(standing).or_default() += 1,
                        }
                        match f.fix.as_deref() {
                            Some("fixed") => report.fixed += 1,
                            Some(_) => report.fix_failures += 1,
                            None => {}
                        }
                        report.findings.push(f);
                    }
                }
                progress(&report);
            }
        }
        report
            .findings
            .sort_by(|a, b| (&a.key, &a.version_id).cmp(&(&b.key, &b.version_id)));
        Ok(report)
    }

    async fn check(&self, v: Version, fix: bool) -> Checked {
        let version_id = v.version_id.clone().unwrap_or_else(|| "null".to_owned());
        let head = match Head::of(&self.s3, &self.bucket, &v).await {
            Ok(head) => head,
            Err(e) => {
                return Checked::Finding(Finding {
                    key: v.key,
                    version_id,
                    standing: None,
                    mode: None,
                    retain_until: None,
                    due: None,
                    legal_hold: false,
                    fix: None,
                    error: Some(e.to_string()),
                })
            }
        };
        let (legal_hold, mode, until) = (head.legal_hold, head.lock_mode, head.retain_until);
        // The policy counts from when trailvault archived the version (its stamp, bounded by
        // S3's own time for it); a version it did not write counts from when it was written.
        let archived_at = super::archived_at(head.stamp(), head.last_modified)
            .unwrap_or_else(OffsetDateTime::now_utc);
        let judgement = judge(self.lock, archived_at, mode, until);
        if judgement.standing == Standing::Held {
            return Checked::Held { legal_hold };
        }
        let fixed = match (fix, judgement.fix) {
            (true, Some((new_mode, new_until))) => {
                Some(match self.extend(&v, mode, new_mode, new_until).await {
                    Ok(()) => "fixed".to_owned(),
                    Err(why) => why.to_string(),
                })
            }
            _ => None,
        };
        Checked::Finding(Finding {
            key: v.key,
            version_id,
            standing: Some(judgement.standing),
            mode: mode.map(|m| m.as_str().to_owned()),
            retain_until: until.map(rfc3339),
            due: Some(rfc3339(judgement.due)),
            legal_hold,
            fix: fixed,
            error: None,
        })
    }

    async fn extend(
        &self,
        v: &Version,
        was: Option<LockMode>,
        mode: LockMode,
        until: OffsetDateTime,
    ) -> Result<(), FixError> {
        set_retention(
            &self.s3,
            &self.bucket,
            &v.key,
            v.version_id.as_deref(),
            was,
            mode,
            until,
        )
        .await
        .map_err(|e| FixError(Failure::from_sdk(&e)))
    }
}

/// A lock that could not be extended.
#[derive(Debug, thiserror::Error)]
#[error(
    "PutObjectRetention failed: {}; the identity needs s3:PutObjectRetention (and \
     s3:BypassGovernanceRetention to turn GOVERNANCE into COMPLIANCE)",
    .0.detail
)]
pub struct FixError(Failure);

enum Checked {
    Held { legal_hold: bool },
    Finding(Finding),
}

fn standing_or_unreadable<S: serde::Serializer>(
    standing: &Option<Standing>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(standing.map_or("unreadable", Standing::label))
}
