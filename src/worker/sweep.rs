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
use tracing::{info, warn};

use super::{Ctx, QueueCtx};
use crate::backfill::{self, Mode, Scope};
use crate::inventory::Window;
use crate::telemetry::metrics::{QueueState, ResultLabel};

pub async fn every(ctx: Arc<Ctx>, queues: Vec<Arc<QueueCtx>>, stop: CancellationToken) {
    let Some(interval) = ctx.config.sweep.interval else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Some(backlog) = backlog(&ctx, &queues) {
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
        once(&ctx).await;
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

/// Messages waiting on the queues, when more than this replica takes in at once: the depths
/// the poller last read ([`super::poll`]), not another round of SQS calls.
fn backlog(ctx: &Ctx, queues: &[Arc<QueueCtx>]) -> Option<u64> {
    let waiting: i64 = queues
        .iter()
        .map(|queue| {
            ctx.metrics
                .queue_messages
                .get_or_create(&QueueState {
                    queue: queue.name.clone(),
                    state: "visible",
                })
                .get()
        })
        .sum();
    let waiting = u64::try_from(waiting).unwrap_or(0);
    (waiting > ctx.config.worker.max_in_flight.get() as u64).then_some(waiting)
}
