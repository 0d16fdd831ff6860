//! The long-running worker: receive notifications from every queue, copy what they announce,
//! and acknowledge a message only when its work is durable.
//!
//! Several replicas may run against the same queues: SQS spreads the messages, the archive's
//! conditional writes and SHA-256 comparison keep one version per object. Within a replica:
//!
//! - one receiver per queue long-polls SQS for up to 10 messages, holding no copy slot while
//!   it waits; each message runs in its own task, which waits its turn for one of
//!   `worker.max_in_flight` slots ([`slots`]) with its visibility extended from receipt, and
//!   the receiver polls again once its batch is placed ([`queue`]);
//! - a message's objects are copied alongside each other, in slots that are free;
//! - [`disposition::decide`] is the one place that turns the outcome into delete, retry or
//!   park; a per-queue acknowledger batches the deletes, batches not waiting on each other
//!   ([`queue::acknowledge`]);
//! - a poller reports queue depths and health every minute, and in `--until-empty` mode stops
//!   the worker once every queue's receive came back empty with nothing in flight ([`poll`]);
//! - the archive bucket is compared with the retention policy at start and on a timer, and
//!   made equal to it or reported ([`reconcile`]);
//! - every `sweep.interval` the member buckets' recent files are compared with the archive,
//!   and what no notification brought is archived and counted as missed ([`sweep`]);
//! - with discovery on, the organization's accounts are listed on a timer and served as they
//!   come (`completeness::discovery`);
//! - on shutdown, receiving stops at once, in-flight copies get `worker.shutdown_grace`, and
//!   whatever is left is handed back with visibility 0.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::archive::record::Pace;
use crate::archive::tally::Summary;
use crate::archive::Engine;
use crate::aws::Aws;
use crate::completeness::sweep;
use crate::config::Config;
use crate::retention::archive_bucket::ArchiveBucket;
use crate::retention::bucket::BucketState;
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::Metrics;

pub mod disposition;
pub mod message;
pub mod poll;
pub mod queue;
pub mod reconcile;
pub mod slots;

/// Worker settings that are not deployment configuration.
#[derive(Clone, Debug)]
pub struct Options {
    /// Stop once every queue is empty and nothing is in flight (the demo, backfills, tests).
    pub until_empty: bool,
}

/// One queue and its clients.
pub struct QueueCtx {
    pub url: String,
    /// The queue's name: its label in logs and metrics.
    pub name: String,
    pub sqs: aws_sdk_sqs::Client,
}

/// Runs until shutdown (or, with `until_empty`, until the queues are drained); returns what
/// the run did.
pub async fn run(
    config: Arc<Config>,
    aws: &Aws,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    options: Options,
) -> anyhow::Result<Summary> {
    let started = std::time::Instant::now();
    let pace = if options.until_empty {
        Pace::Draining
    } else {
        Pace::Steady
    };
    let engine = Engine::start(
        config.clone(),
        aws,
        metrics.clone(),
        shutdown.clone(),
        pace,
        config.alerts.is_some(),
    )
    .await?;
    let ctx = engine.ctx.clone();
    // A killed replica's unfinished uploads: its messages came back and were copied again.
    // Twice the visibility timeout, so that no live replica's upload is taken for one.
    ctx.copier
        .abort_abandoned_uploads(config.worker.visibility_timeout * 2)
        .await;
    // The bucket against the retention policy: once before any copy, then on a timer.
    let archive_bucket = Arc::new(ArchiveBucket::new(
        aws.s3(&config.archive.region),
        config.archive.bucket.as_str(),
    ));
    let policy = Arc::new(BucketState::desired(&config.retention));
    reconcile::once(
        &archive_bucket,
        &policy,
        config.retention.reconcile,
        &metrics,
    )
    .await;
    let stop_reconciling = CancellationToken::new();
    let reconciler = tokio::spawn(reconcile::every(
        archive_bucket,
        policy,
        config.retention.reconcile,
        config.retention.reconcile_interval,
        metrics.clone(),
        stop_reconciling.clone(),
    ));

    let slots = slots::Slots::new(
        config.worker.max_in_flight.get(),
        metrics.slots_in_use.clone(),
    );
    let tracker = TaskTracker::new();
    let wait = if options.until_empty {
        // Draining: the end is noticed one empty receive after the last message.
        Duration::from_secs(1)
    } else {
        Duration::from_secs(20)
    };

    let queues: Vec<Arc<QueueCtx>> = config
        .queues
        .iter()
        .map(|q| {
            Arc::new(QueueCtx {
                url: q.url.to_string(),
                name: q.url.name().to_owned(),
                sqs: aws.sqs(q.url.region()),
            })
        })
        .collect();

    let quiet = Arc::new(poll::Quiet::new(queues.len()));
    let mut receivers = Vec::new();
    let mut acknowledgers = Vec::new();
    for (index, queue) in queues.iter().enumerate() {
        let (acks, inbox) = tokio::sync::mpsc::channel(256);
        acknowledgers.push(tokio::spawn(queue::acknowledge(
            queue.clone(),
            inbox,
            metrics.clone(),
            ctx.tally.clone(),
        )));
        receivers.push(tokio::spawn(queue::receive(
            ctx.clone(),
            queue::Receiver {
                queue: queue.clone(),
                slots: slots.clone(),
                tracker: tracker.clone(),
                acks,
                wait,
                quiet: quiet.clone(),
                index,
            },
        )));
    }
    // Files no notification brought, found by comparing the member buckets' recent files
    // with the archive (not while draining: a finite run has no "later" to sweep in).
    let stop_sweeping = CancellationToken::new();
    let sweeper = match (config.sweep.interval, options.until_empty) {
        (Some(_), false) => {
            let names: Vec<String> = queues.iter().map(|q| q.name.clone()).collect();
            let metrics = metrics.clone();
            let limit = config.worker.max_in_flight.get() as u64;
            Some(tokio::spawn(sweep::every(
                ctx.clone(),
                move || poll::backlog(&metrics, &names, limit),
                stop_sweeping.clone(),
            )))
        }
        _ => None,
    };
    let stop_polling = CancellationToken::new();
    let poller = tokio::spawn(poll::poll(
        aws.s3(&config.archive.region),
        config.archive.bucket.to_string(),
        queues.clone(),
        metrics.clone(),
        ctx.archive_health.clone(),
        quiet,
        stop_polling.clone(),
        options.until_empty.then(|| poll::Drain {
            shutdown: shutdown.clone(),
            tasks: tracker.clone(),
            // Long enough for messages failed at the outage to come back and be retried.
            patience: config.worker.visibility_timeout,
        }),
    ));

    for receiver in receivers {
        receiver.await?;
    }
    stop_sweeping.cancel();
    if let Some(sweeper) = sweeper {
        sweeper.await?;
    }
    tracker.close();
    tracker.wait().await;
    // Every message task has sent its acknowledgement; the acknowledgers drain and end.
    for acknowledger in acknowledgers {
        acknowledger.await?;
    }
    stop_polling.cancel();
    let gave_up = poller.await?;
    stop_reconciling.cancel();
    reconciler.await?;
    let summary = ctx
        .tally
        .summary(started.elapsed(), poll::dead_letters(&queues).await);
    drop(ctx);
    engine.finish().await?;
    if let Some(why) = gave_up {
        println!("{summary}");
        anyhow::bail!(
            "stopped before the queues were empty: {why}; fix the archive side (its bucket \
             policy, the worker's permissions, the KMS key's state and policy) and run again: \
             no message was parked for it"
        );
    }
    Ok(summary)
}
