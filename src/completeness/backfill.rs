//! What is in the member buckets but not in the archive, archived: `trailvault backfill`, and
//! the worker's sweep. Both list the member buckets by the date layout of CloudTrail's keys
//! ([`inventory`]), list the same days of the archive, and hand every file the archive lacks
//! to the one archiving path the notifications use (`archive::object::archive`): same copy, same
//! checks, same idempotency, same manifest entries.
//!
//! A file counts as present when the archive holds its key with the same size; one whose size
//! differs goes through the copy, which tells a duplicate from a conflict by SHA-256. So a
//! rerun lists, compares, and copies only what is left.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{error, warn};

use crate::archive::copy::Outcome;
use crate::archive::layout;
use crate::archive::object::{archive, Archival};
use crate::archive::tally::human_bytes;
use crate::archive::Ctx;
use crate::aws::listing::{self, Listed};
use crate::aws::Failure;
use crate::cloudtrail::key;
use crate::completeness::inventory::{self, Window};
use crate::config::{Account, AccountId, SourceBucket};
use crate::notification::ObjectRef;
use crate::telemetry::metrics::{AccountLabel, TaskLabel};
use crate::telemetry::panics::{caught, caught_sync};

/// Which files a pass looks at.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only this account (all when `None`).
    pub account: Option<AccountId>,
    /// Only these regions of activity (the key's region folder); all when empty.
    pub regions: Vec<String>,
    /// By the time in the file name.
    pub window: Window,
    /// Files written (LastModified) at or after this are left alone: their notification may
    /// still be on the way.
    pub written_before: Option<OffsetDateTime>,
    /// List and compare only.
    pub dry_run: bool,
}

/// Who runs the pass: what the files it archives mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Existing logs, archived on purpose.
    Backfill,
    /// Recent files the notifications should have brought: each one archived is a missed
    /// notification, counted and logged as such.
    Sweep,
}

/// What a pass found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub accounts: usize,
    pub buckets: usize,
    pub days: usize,
    /// CloudTrail files in scope.
    pub listed: u64,
    pub listed_bytes: u64,
    /// In the archive already (same key, same size).
    pub present: u64,
    /// Not in the archive: archived by this pass (or, in a dry run, what would be).
    pub missing: u64,
    pub missing_bytes: u64,
    pub archived: u64,
    pub archived_bytes: u64,
    /// Missing from the listing, yet archived by the time the copy ran (a notification won).
    pub duplicates: u64,
    /// The archive held other bytes at the key; kept apart under `_trailvault/conflicts/`.
    pub conflicts: u64,
    /// Copies that failed, by reason; and buckets or days that could not be listed.
    pub failures: BTreeMap<&'static str, u64>,
}

impl Report {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

/// Lists, compares and archives. Failures are counted, logged with what failed and what to do,
/// and do not stop the pass: every other bucket and file is still done.
pub async fn pass(ctx: &Arc<Ctx>, scope: &Scope, mode: Mode, progress: &ProgressBar) -> Report {
    let accounts = ctx.accounts.snapshot();
    let report = Arc::new(Mutex::new(Report::default()));
    let slots = Arc::new(Semaphore::new(ctx.config.worker.max_in_flight.get()));
    let mut copies = JoinSet::new();
    for account in accounts.iter() {
        if scope.account.as_ref().is_some_and(|a| *a != account.id) {
            continue;
        }
        update(&report, progress, |r| r.accounts += 1);
        for bucket in &account.buckets {
            if ctx.shutdown.stopping() {
                break;
            }
            update(&report, progress, |r| r.buckets += 1);
            // One client per bucket, in the bucket's region, as the account's reader role.
            let s3 = ctx.copier.members().get(account).await.s3(&bucket.region);
            let days = match bucket_days(&s3, account, bucket, scope).await {
                Ok(days) => days,
                Err(failure) => {
                    listing_failed(&report, progress, account, bucket, "", &failure);
                    continue;
                }
            };
            for day in days {
                if ctx.shutdown.stopping() {
                    break;
                }
                let missing =
                    match compare_day(ctx, &s3, account, bucket, &day, scope, &report).await {
                        Ok(missing) => missing,
                        Err(failure) => {
                            listing_failed(&report, progress, account, bucket, &day, &failure);
                            continue;
                        }
                    };
                update(&report, progress, |_| ());
                if scope.dry_run {
                    continue;
                }
                for file in missing {
                    let Ok(slot) = slots.clone().acquire_owned().await else {
                        break;
                    };
                    if ctx.shutdown.stopping() {
                        break;
                    }
                    let (ctx, report, progress) = (ctx.clone(), report.clone(), progress.clone());
                    let object = ObjectRef {
                        bucket: bucket.name.to_string(),
                        key: file.key,
                        version_id: None,
                        size: Some(file.size),
                        etag: None,
                        event_time: None,
                    };
                    let account = account.name.clone();
                    copies.spawn(async move {
                        let done = match caught(archive(&ctx, &object)).await {
                            Ok(done) => done,
                            Err(panicked) => {
                                // A panic's message may quote the key it choked on.
                                error!(account, bucket = %object.bucket,
                                    key = %layout::printable(&object.key),
                                    error = %layout::printable(&panicked.to_string()),
                                    "archiving this file panicked; it is counted as failed and \
                                     the pass goes on");
                                ctx.metrics
                                    .panics
                                    .get_or_create(&TaskLabel { task: "copy" })
                                    .inc();
                                Archival::panicked()
                            }
                        };
                        drop(slot);
                        if mode == Mode::Sweep && was_written(&done) {
                            ctx.metrics
                                .missed_notifications
                                .get_or_create(&AccountLabel {
                                    account: account.clone(),
                                })
                                .inc();
                            warn!(
                                account, bucket = %object.bucket,
                                key = %layout::printable(&object.key),
                                "missed notification: the sweep archived a file no notification \
                                 brought; check the bucket's event notification to the queue"
                            );
                        }
                        update(&report, &progress, |r| count(r, &done));
                    });
                }
            }
        }
    }
    while copies.join_next().await.is_some() {}
    let report = report.lock().expect("report lock").clone();
    progress.finish_and_clear();
    report
}

fn was_written(done: &Archival) -> bool {
    matches!(done.outcome, Some(Outcome::Archived | Outcome::Conflict))
}

fn count(r: &mut Report, done: &Archival) {
    match (done.outcome, done.reason) {
        (Some(Outcome::Duplicate), _) => r.duplicates += 1,
        (Some(outcome), _) => {
            r.archived += 1;
            r.archived_bytes += done.bytes;
            if outcome == Outcome::Conflict {
                r.conflicts += 1;
            }
        }
        (None, reason) => *r.failures.entry(reason.unwrap_or("unknown")).or_default() += 1,
    }
}

fn update(report: &Mutex<Report>, progress: &ProgressBar, f: impl FnOnce(&mut Report)) {
    let mut r = report.lock().expect("report lock");
    f(&mut r);
    progress.set_position(r.listed);
    progress.set_message(format!(
        "files compared in {} day folders: {} present, {} archived ({}), {} failed",
        r.days,
        r.present,
        r.archived,
        human_bytes(r.archived_bytes),
        r.failed()
    ));
}

fn listing_failed(
    report: &Mutex<Report>,
    progress: &ProgressBar,
    account: &Account,
    bucket: &SourceBucket,
    prefix: &str,
    failure: &Failure,
) {
    let access = failure.is_status(403) || failure.is_code("AccessDenied");
    warn!(
        account = %account.name, account_id = %account.id, bucket = %bucket.name,
        prefix = %layout::printable(prefix),
        error = %failure.detail,
        "could not list the member bucket{}; its files there are not compared with the archive",
        if access {
            " (check that the reader role allows s3:ListBucket on it, and that the worker \
             may assume the role)"
        } else {
            ""
        }
    );
    update(report, progress, |r| {
        *r.failures.entry("list_failed").or_default() += 1
    });
}

/// The day folders of a bucket in scope.
async fn bucket_days(
    s3: &aws_sdk_s3::Client,
    account: &Account,
    bucket: &SourceBucket,
    scope: &Scope,
) -> Result<Vec<String>, Failure> {
    let mut days = Vec::new();
    for root in inventory::roots(s3, bucket.name.as_str(), account.id.as_str()).await? {
        days.extend(
            inventory::days(
                s3,
                bucket.name.as_str(),
                &root,
                &scope.regions,
                &scope.window,
            )
            .await?,
        );
    }
    Ok(days)
}

/// One day folder: the files in scope that the archive lacks (or holds with another size).
async fn compare_day(
    ctx: &Ctx,
    s3: &aws_sdk_s3::Client,
    account: &Account,
    bucket: &SourceBucket,
    day: &str,
    scope: &Scope,
    report: &Mutex<Report>,
) -> Result<Vec<Listed>, Failure> {
    let source = listing::objects(s3, bucket.name.as_str(), day).await?;
    let mut in_scope: Vec<Listed> = Vec::new();
    for o in source {
        let wanted = caught_sync(|| {
            let Ok(parsed) = key::parse(&o.key) else {
                return false;
            };
            parsed.account == account.id.as_str()
                && parsed.time().is_some_and(|t| scope.window.contains(t))
                && scope.written_before.is_none_or(|before| {
                    o.last_modified
                        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
                        .is_some_and(|t| t < before)
                })
        });
        match wanted {
            Ok(true) => in_scope.push(o),
            Ok(false) => {}
            // One file's key must not stop the pass: it is reported, and the rest goes on.
            Err(panicked) => {
                error!(account = %account.name, bucket = %bucket.name,
                    key = %layout::printable(&o.key),
                    error = %layout::printable(&panicked.to_string()),
                    "reading this key panicked; the file is skipped");
                ctx.metrics
                    .panics
                    .get_or_create(&TaskLabel { task: "compare" })
                    .inc();
                let mut r = report.lock().expect("report lock");
                *r.failures.entry("panic").or_default() += 1;
            }
        }
    }
    if in_scope.is_empty() {
        return Ok(Vec::new());
    }
    let (archive_s3, archive_bucket) = ctx.copier.archive();
    let archive_day =
        layout::archive_key(&ctx.config.archive.key_prefix, bucket.name.as_str(), day);
    let archived: HashMap<String, u64> = listing::objects(archive_s3, archive_bucket, &archive_day)
        .await?
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    let mut missing = Vec::new();
    let mut r = report.lock().expect("report lock");
    r.days += 1;
    for file in in_scope {
        r.listed += 1;
        r.listed_bytes += file.size;
        let archive_key = layout::archive_key(
            &ctx.config.archive.key_prefix,
            bucket.name.as_str(),
            &file.key,
        );
        if archived.get(&archive_key) == Some(&file.size) {
            r.present += 1;
        } else {
            r.missing += 1;
            r.missing_bytes += file.size;
            missing.push(file);
        }
    }
    Ok(missing)
}

/// The end of a backfill, for people.
pub struct Summary<'r> {
    pub report: &'r Report,
    pub dry_run: bool,
    pub elapsed: std::time::Duration,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.report;
        let secs = self.elapsed.as_secs_f64();
        writeln!(
            f,
            "backfill{}: {} CloudTrail files ({}) in {} day folders of {} buckets, {} accounts, \
             in {secs:.1} s",
            if self.dry_run { " (dry run)" } else { "" },
            r.listed,
            human_bytes(r.listed_bytes),
            r.days,
            r.buckets,
            r.accounts,
        )?;
        writeln!(f, "  already present  {:>8}", r.present)?;
        if self.dry_run {
            writeln!(
                f,
                "  would archive    {:>8}  ({})",
                r.missing,
                human_bytes(r.missing_bytes)
            )?;
        } else {
            writeln!(
                f,
                "  archived         {:>8}  ({}, {:.1} objects/s)",
                r.archived,
                human_bytes(r.archived_bytes),
                r.archived as f64 / secs.max(0.001)
            )?;
            writeln!(f, "  conflicts        {:>8}", r.conflicts)?;
            if r.duplicates > 0 {
                writeln!(
                    f,
                    "  archived meanwhile {:>6}  (by the worker, between listing and copy)",
                    r.duplicates
                )?;
            }
        }
        writeln!(f, "  failures         {:>8}", r.failed())?;
        for (reason, n) in &r.failures {
            writeln!(f, "    {reason:<20} {n:>6}")?;
        }
        if r.missing == 0 && r.failed() == 0 {
            writeln!(
                f,
                "nothing to archive: every file in scope is in the archive"
            )?;
        } else if r.failed() > 0 {
            writeln!(
                f,
                "some files were not archived: the log lines above name them and why; rerun \
                 `trailvault backfill` with the same options once fixed (it does only what is left)"
            )?;
        }
        Ok(())
    }
}
