//! The long-running worker: receive notifications from every queue, copy what they announce,
//! and acknowledge a message only when its work is durable.
//!
//! Several replicas may run against the same queues: SQS spreads the messages, the archive's
//! conditional writes and SHA-256 comparison keep one version per object. Within a replica:
//!
//! - one receiver per queue long-polls SQS, asking only for as many messages as there are free
//!   slots under `worker.max_in_flight`, so a received message never waits;
//! - each message runs in its own task, its visibility extended at half the timeout while it
//!   works ([`queue`]);
//! - [`disposition::decide`] is the one place that turns the outcome into delete, retry or
//!   park; a per-queue acknowledger batches the deletes ([`queue::acknowledge`]);
//! - a poller reports queue depths and health, and in `--until-empty` mode stops the worker
//!   once every queue is empty ([`poll`]);
//! - the archive bucket is compared with the retention policy at start and on a timer, and
//!   made equal to it or reported ([`reconcile`]);
//! - every `sweep.interval` the member buckets' recent files are compared with the archive,
//!   and what no notification brought is archived and counted as missed ([`sweep`]);
//! - with discovery on, the organization's accounts are listed on a timer and served as they
//!   come ([`crate::discovery`]);
//! - on shutdown, receiving stops at once, in-flight copies get `worker.shutdown_grace`, and
//!   whatever is left is handed back with visibility 0.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::Directory;
use crate::aws::Aws;
use crate::config::Config;
use crate::copy::Copier;
use crate::discovery::Discovery;
use crate::retention::bucket::{ArchiveBucket, BucketState};
use crate::telemetry::metrics::Metrics;

pub mod disposition;
pub mod manifests;
pub mod message;
pub mod object;
pub mod poll;
pub mod queue;
pub mod reconcile;
pub mod summary;
pub mod sweep;

pub use summary::{Summary, Tally};

/// How the worker stops: first no new messages (`stop_receiving`), then, once the grace
/// period is over, no more work (`abandon`).
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    pub stop_receiving: CancellationToken,
    pub abandon: CancellationToken,
}

impl Shutdown {
    pub fn stopping(&self) -> bool {
        self.stop_receiving.is_cancelled()
    }

    /// Stops receiving now and abandons in-flight work after `grace`.
    pub fn begin(&self, grace: Duration) {
        self.stop_receiving.cancel();
        let abandon = self.abandon.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            abandon.cancel();
        });
    }
}

/// Worker settings that are not deployment configuration.
#[derive(Clone, Debug)]
pub struct Options {
    /// Stop once every queue is empty and nothing is in flight (the demo, backfills, tests).
    pub until_empty: bool,
}

/// What every task shares.
pub struct Ctx {
    pub config: Arc<Config>,
    /// The member accounts served: configured, and discovered.
    pub accounts: Arc<Directory>,
    /// Organization discovery, when on.
    pub discovery: Option<Arc<Discovery>>,
    pub copier: Copier,
    pub metrics: Arc<Metrics>,
    pub tally: Tally,
    pub shutdown: Shutdown,
    pub visibility: Duration,
    /// Where archived versions go to be listed in the next manifest (when manifests are on).
    pub manifest: Option<tokio::sync::mpsc::Sender<crate::manifest::Entry>>,
}

/// One queue and its clients.
pub struct QueueCtx {
    pub url: String,
    /// The queue's name: its label in logs and metrics.
    pub name: String,
    pub sqs: aws_sdk_sqs::Client,
}

/// The archiving machinery a run needs, whatever feeds it objects (the queues, the sweep, a
/// backfill): the copier, the accounts, the manifest writer, the counts.
pub struct Engine {
    pub ctx: Arc<Ctx>,
    manifest_writer: Option<tokio::task::JoinHandle<()>>,
    discoverer: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl Engine {
    pub async fn start(
        config: Arc<Config>,
        aws: &Aws,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Engine> {
        let copier = Copier::new(&config, aws).await?;
        let writer =
            crate::manifest::Writer::new(&config, aws, copier.kms_key_arn(), writer_id()).await?;
        let (manifest, manifest_writer) = match writer {
            Some(writer) => {
                let (entries, inbox) = tokio::sync::mpsc::channel(4096);
                let task = tokio::spawn(manifests::run(
                    writer,
                    inbox,
                    config.manifest.period,
                    metrics.clone(),
                ));
                (Some(entries), Some(task))
            }
            None => {
                tracing::warn!(
                    "archive.signing_key is not set: no manifests are written, and `trailvault \
                     verify` cannot prove the archive complete"
                );
                (None, None)
            }
        };
        let accounts = Arc::new(Directory::new(&config));
        let (discovery, discoverer) = match &config.discovery {
            Some(settings) => {
                let discovery = Arc::new(
                    Discovery::new(
                        settings.clone(),
                        &config,
                        aws,
                        copier.members().clone(),
                        accounts.clone(),
                        metrics.clone(),
                    )
                    .await,
                );
                // The first look before any message, so that discovered accounts' files are
                // not refused as unknown.
                discovery.refresh().await;
                let stop = CancellationToken::new();
                let task = tokio::spawn(discovery.clone().every(stop.clone()));
                (Some(discovery), Some((stop, task)))
            }
            None => (None, None),
        };
        let ctx = Arc::new(Ctx {
            manifest,
            visibility: config.worker.visibility_timeout,
            config,
            accounts,
            discovery,
            copier,
            metrics,
            tally: Tally::default(),
            shutdown,
        });
        Ok(Engine {
            ctx,
            manifest_writer,
            discoverer,
        })
    }

    /// Stops discovery and writes the last manifest. Every other holder of the context must
    /// be gone (their manifest entries are what the last manifest lists).
    pub async fn finish(self) -> anyhow::Result<()> {
        if let Some((stop, task)) = self.discoverer {
            stop.cancel();
            task.await?;
        }
        // The last sender of manifest entries goes with the context: the writer lists what
        // is left, then ends.
        drop(self.ctx);
        if let Some(task) = self.manifest_writer {
            task.await?;
        }
        Ok(())
    }
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
    let engine = Engine::start(config.clone(), aws, metrics.clone(), shutdown.clone()).await?;
    let ctx = engine.ctx.clone();
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

    let slots = Arc::new(Semaphore::new(config.worker.max_in_flight.get()));
    let tracker = TaskTracker::new();
    let wait = if options.until_empty {
        // Draining: short polls, so that the end is noticed within seconds.
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

    let mut receivers = Vec::new();
    let mut acknowledgers = Vec::new();
    for queue in &queues {
        let (acks, inbox) = tokio::sync::mpsc::channel(256);
        acknowledgers.push(tokio::spawn(queue::acknowledge(
            queue.clone(),
            inbox,
            metrics.clone(),
            ctx.tally.clone(),
        )));
        receivers.push(tokio::spawn(queue::receive(
            ctx.clone(),
            queue.clone(),
            slots.clone(),
            tracker.clone(),
            acks,
            wait,
        )));
    }
    // Files no notification brought, found by comparing the member buckets' recent files
    // with the archive (not while draining: a finite run has no "later" to sweep in).
    let stop_sweeping = CancellationToken::new();
    let sweeper = match (config.sweep.interval, options.until_empty) {
        (Some(_), false) => Some(tokio::spawn(sweep::every(
            ctx.clone(),
            queues.clone(),
            stop_sweeping.clone(),
        ))),
        _ => None,
    };
    let stop_polling = CancellationToken::new();
    let poller = tokio::spawn(poll::poll(
        aws.s3(&config.archive.region),
        config.archive.bucket.to_string(),
        queues.clone(),
        metrics.clone(),
        stop_polling.clone(),
        options
            .until_empty
            .then(|| (shutdown.clone(), tracker.clone())),
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
    poller.await?;
    stop_reconciling.cancel();
    reconciler.await?;
    let summary = ctx
        .tally
        .summary(started.elapsed(), poll::dead_letters(&queues).await);
    drop(ctx);
    engine.finish().await?;
    Ok(summary)
}

/// This replica's name in the manifests it writes: the host (the ECS task's container) and
/// the process.
fn writer_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{host}/{}", std::process::id())
}
