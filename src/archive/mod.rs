//! The archive layer: everything that archives one object, whoever feeds it (the queue
//! consumer in `worker`, or a backfill and the sweep in `completeness`). It imports no
//! feeder; the one thing it takes from `completeness` is organization discovery, which it
//! starts and asks about unknown buckets, and which lists accounts, never objects.
//!
//! The stages, one file each, in the order an object meets them:
//!
//! - [`routing`]: which member account an object belongs to, and its archive key; or a refusal;
//! - [`copy`]: the source read (as the account's reader role, streamed and hashed), the
//!   byte-exact write (SSE-KMS, checksum, Object Lock), and the check of what was written;
//! - [`record`]: each archived version listed for the next signed manifest;
//! - [`classify`]: how the object ended, as done, retry or park;
//! - [`object`]: the one per-object path that runs the stages above, counts and logs.
//!
//! [`layout`] is the pure description of the archive's keys and metadata names;
//! [`accounts`] the member accounts served; [`tally`] what a run did. [`Engine`] builds the
//! shared context ([`Ctx`]) a run needs and finishes it (the last manifest).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use self::accounts::Directory;
use self::copy::Copier;
use self::health::ArchiveHealth;
use self::record::{Copying, Pace, Recorder};
use self::tally::Tally;
use crate::alerts::deliver::Alerter;
use crate::aws::Aws;
use crate::completeness::discovery::Discovery;
use crate::config::Config;
use crate::manifest::Writer;
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::Metrics;

pub mod accounts;
pub mod classify;
pub mod copy;
pub mod health;
pub mod layout;
pub mod object;
pub mod record;
pub mod routing;
pub mod tally;

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
    /// Where archived versions go to be listed in a manifest (when manifests are on).
    pub manifest: Option<Recorder>,
    /// The copies running now.
    pub copying: Copying,
    /// Whether the archive side answers; while it does not, no work is taken.
    pub archive_health: Arc<ArchiveHealth>,
    /// Publishes the alerts of the records archived, when alerts are on for this run.
    pub alerter: Option<Arc<Alerter>>,
}

/// The archiving machinery a run needs, whatever feeds it objects (the queues, the sweep, a
/// backfill): the copier, the accounts, the manifest writer, the counts.
pub struct Engine {
    pub ctx: Arc<Ctx>,
    manifest_writer: Option<tokio::task::JoinHandle<()>>,
    discoverer: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    /// Publishes suppression summaries; at the end, every one left.
    flusher: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl Engine {
    pub async fn start(
        config: Arc<Config>,
        aws: &Aws,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
        pace: Pace,
        alerts: bool,
    ) -> anyhow::Result<Engine> {
        let mut copier = Copier::new(&config, aws).await?;
        let alerter = match (alerts, &config.alerts) {
            (false, _) => None,
            (true, None) => anyhow::bail!(
                "alerts were asked for, but the configuration has no [alerts] section (see the \
                 operator's guide, \"Alerts\")"
            ),
            (true, Some(_)) => {
                Alerter::new(&config, aws, copier.archive().0.clone(), metrics.clone())
                    .map(Arc::new)
            }
        };
        if let Some(alerter) = &alerter {
            copier.evaluate(alerter.rules());
        }
        let writer = Writer::new(&config, aws, copier.kms_key_arn(), writer_id()).await?;
        let copying = Copying::default();
        let archive_health = Arc::new(ArchiveHealth::new(
            copier.archive().0.clone(),
            aws.kms(&config.archive.region),
            config.archive.bucket.to_string(),
            copier.kms_key_arn().to_owned(),
        ));
        let (manifest, manifest_writer) = match writer {
            Some(writer) => {
                let (recorder, task) = record::start(
                    writer,
                    record::Settings {
                        period: config.manifest.period,
                        pace,
                        shutdown: shutdown.clone(),
                        copying: copying.clone(),
                        metrics: metrics.clone(),
                    },
                );
                (Some(recorder), Some(task))
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
        // Started last, once nothing above can fail: a failed start leaves no task behind.
        let flusher = alerter.as_ref().map(|alerter| {
            let stop = CancellationToken::new();
            let task = tokio::spawn(alerter.clone().every(stop.clone()));
            (stop, task)
        });
        let ctx = Arc::new(Ctx {
            manifest,
            config,
            accounts,
            discovery,
            copier,
            metrics,
            tally: Tally::default(),
            shutdown,
            copying,
            archive_health,
            alerter,
        });
        Ok(Engine {
            ctx,
            manifest_writer,
            discoverer,
            flusher,
        })
    }

    /// Stops discovery and writes the last manifest. Every other holder of the context must
    /// be gone (their manifest entries are what the last manifest lists).
    pub async fn finish(self) -> anyhow::Result<()> {
        if let Some((stop, task)) = self.discoverer {
            stop.cancel();
            task.await?;
        }
        if let Some((stop, task)) = self.flusher {
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
