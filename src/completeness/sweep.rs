//! The reconciliation sweep: every `sweep.interval`, the member buckets' files of the last
//! `sweep.window` are compared with the archive, and what no notification brought is archived
//! and reported as `missed_notifications`.
//!
//! Files written in the last `sweep.min_age` are left to their notifications, and a sweep is
//! put off while the queues hold a backlog: files whose notifications are merely waiting must
//! not be reported as missed.

use std::sync::Arc;

use indicatif::ProgressBar;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::backfill::{self, Mode, Scope};
use super::inventory::Window;
use crate::archive::layout::printable;
use crate::archive::Ctx;
use crate::telemetry::metrics::{ResultLabel, TaskLabel};
use crate::telemetry::panics::caught;

/// Sweeps every `sweep.interval` until `stop`; `backlog` tells how many notifications wait on
/// the queues when that is more than the worker takes in at once (the sweep is then put off).
pub async fn every(ctx: Arc<Ctx>, backlog: impl Fn() -> Option<u64>, stop: CancellationToken) {
    let Some(interval) = ctx.config.sweep.interval else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Some(backlog) = backlog() {
            info!(
                backlog,
                "sweep put off: the queues hold a backlog, whose files are not missed, only late"
            );
            ctx.metrics
                .sweeps
                .get_or_create(&ResultLabel { result: "deferred" })
                .inc();
            continue;
        }
        // Not cut short by `stop`: a stopping worker's sweep stops listing and starting
        // copies by itself (it watches the shutdown), and the copies it started finish and
        // are listed in the last manifest.
        if let Err(panicked) = caught(once(&ctx)).await {
            error!(
                error = %printable(&panicked.to_string()),
                "the sweep panicked; it runs again at the next interval"
            );
            ctx.metrics
                .panics
                .get_or_create(&TaskLabel { task: "sweep" })
                .inc();
            ctx.metrics
                .sweeps
                .get_or_create(&ResultLabel { result: "failed" })
                .inc();
        }
    }
}

/// One sweep over every account's recent files.
pub async fn once(ctx: &Arc<Ctx>) -> backfill::Report {
    let sweep = &ctx.config.sweep;
    let now = OffsetDateTime::now_utc();
    let scope = Scope {
        account: None,
        regions: Vec::new(),
        // Bounded on both sides, so that the days are listed directly; an hour ahead for
        // clocks that disagree.
        window: Window {
            since: Some(now - sweep.window),
            until: Some(now + time::Duration::HOUR),
        },
        written_before: Some(now - sweep.min_age),
        dry_run: false,
    };
    let started = std::time::Instant::now();
    let report = backfill::pass(ctx, &scope, Mode::Sweep, &ProgressBar::hidden()).await;
    let result = if report.failed() > 0 {
        "failed"
    } else if report.archived > 0 {
        "archived"
    } else {
        "complete"
    };
    ctx.metrics
        .sweeps
        .get_or_create(&ResultLabel { result })
        .inc();
    if report.archived > 0 || report.failed() > 0 {
        warn!(
            missed = report.archived,
            listed = report.listed,
            failed = report.failed(),
            secs = started.elapsed().as_secs_f64(),
            "sweep: files no notification brought were archived (or could not be); see the \
             lines above for which"
        );
    } else {
        info!(
            listed = report.listed,
            days = report.days,
            secs = started.elapsed().as_secs_f64(),
            "sweep: every recent file is in the archive"
        );
    }
    report
}
