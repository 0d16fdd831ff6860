//! The worker's side of the manifest chain: every archived version is listed in a signed
//! manifest before anything that brought it is acknowledged.
//!
//! **Group commit.** A copy hands its entry to the recorder and gets a [`Listing`] back: a
//! promise that resolves once a manifest listing the entry is durable in the archive. The
//! recorder writes a manifest when the oldest waiting entry has waited `manifest.period`, when
//! [`MAX_ENTRIES`] wait, and, once the run is draining or stopping, as soon as entries stop
//! arriving for a moment or [`DRAIN_ENTRIES`] wait. A message is deleted only after its
//! listings resolve, so a replica killed at any point leaves nothing unlisted that a deleted
//! message brought: the message comes back, the copy finds its version archived, and the
//! version is listed again.
//!
//! Why this and not a journal: a per-replica journal in the archive costs a write per object
//! (or per small batch) plus recovery and clean-up, in a bucket where nothing can be deleted.
//! Holding the acknowledgement costs no request per object: one manifest (PutObject and KMS
//! Sign) per period per replica, whatever the number of objects, and messages stay in flight
//! a period longer (their visibility is extended while they wait).
//!
//! A version written by a feeder that acknowledges nothing (a backfill, the sweep) is listed
//! by the next manifest too; a replica killed before it leaves such versions unlisted, and
//! `trailvault verify` names them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::manifest::{Entry, Writer};
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::Metrics;

/// A manifest is written early once this many entries wait, so that one manifest stays a few
/// MB at most however busy the period.
pub const MAX_ENTRIES: usize = 10_000;
/// Draining or stopping, a manifest is written once no copy is running and no entry has
/// arrived for this long (so that a drain writes one manifest, not one per lull).
const SETTLE: Duration = Duration::from_secs(1);
/// Draining or stopping, a manifest is also written once this many entries wait, however busy
/// the drain: a long drain never settles, and its messages would otherwise stay in flight a
/// whole period each (a visibility timeout under twice the period costs a heartbeat per
/// message, and the emulator's queues slow with every message in flight). A count, not a
/// time, so that a small drain still writes one manifest whatever the machine's speed.
const DRAIN_ENTRIES: usize = 250;
/// A failed manifest write is tried again after this long, doubling up to the period.
const RETRY_START: Duration = Duration::from_secs(2);

/// How eagerly manifests are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// A long-running worker: one manifest per period at most (fewer manifests), until it
    /// starts stopping.
    Steady,
    /// A run that ends soon (`--until-empty`, a backfill): write as soon as entries settle.
    Draining,
}

/// Where a copy sends its entry.
#[derive(Clone)]
pub struct Recorder {
    inbox: mpsc::Sender<Waiting>,
}

struct Waiting {
    entry: Entry,
    listed: oneshot::Sender<u64>,
}

/// The promise that an entry will be listed by a durable manifest.
#[derive(Debug)]
pub struct Listing(oneshot::Receiver<u64>);

/// An entry that no manifest will list in this run (the recorder stopped before one could be
/// written); the version stays archived and `trailvault verify` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the manifest writer stopped before a manifest listed this version")]
pub struct NotListed;

impl Listing {
    /// Waits until a manifest listing the entry is durable; returns its sequence number.
    pub async fn wait(self) -> Result<u64, NotListed> {
        self.0.await.map_err(|_| NotListed)
    }
}

impl Recorder {
    /// Hands `entry` to the recorder.
    pub async fn record(&self, entry: Entry) -> Listing {
        let (listed, listing) = oneshot::channel();
        // Only fails once the recorder is gone; the listing then says so.
        let _ = self.inbox.send(Waiting { entry, listed }).await;
        Listing(listing)
    }
}

/// How many copies are running: while any is, a settling recorder waits for its entry.
#[derive(Clone, Default, Debug)]
pub struct Copying(Arc<AtomicUsize>);

/// One running copy; dropping it ends it.
pub struct CopyGuard(Arc<AtomicUsize>);

impl Copying {
    pub fn start(&self) -> CopyGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        CopyGuard(self.0.clone())
    }

    fn idle(&self) -> bool {
        self.0.load(Ordering::SeqCst) == 0
    }
}

impl Drop for CopyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the recorder task needs besides its writer.
pub struct Settings {
    pub period: Duration,
    pub pace: Pace,
    pub shutdown: Shutdown,
    pub copying: Copying,
    pub metrics: Arc<Metrics>,
}

/// Starts the recorder task; it ends once every [`Recorder`] is dropped and the last entries
/// are written (or could not be).
pub fn start(writer: Writer, settings: Settings) -> (Recorder, tokio::task::JoinHandle<()>) {
    let (inbox, entries) = mpsc::channel(4096);
    let task = tokio::spawn(run(writer, entries, settings));
    (Recorder { inbox }, task)
}

async fn run(mut writer: Writer, mut inbox: mpsc::Receiver<Waiting>, settings: Settings) {
    let Settings {
        period,
        pace,
        shutdown,
        copying,
        metrics,
    } = settings;
    let mut batch = Batch::new();
    let mut retry = RETRY_START;
    // When the next write is due, whatever arrives (set while entries wait).
    let mut due: Option<Instant> = None;
    loop {
        let settling = pace == Pace::Draining || shutdown.stopping();
        let wake = match (due, settling && !batch.is_empty()) {
            (Some(due), true) => Some(due.min(Instant::now() + SETTLE)),
            (Some(due), false) => Some(due),
            (None, _) => None,
        };
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = inbox.recv() => match received {
                Some(waiting) => {
                    if batch.is_empty() {
                        due = Some(Instant::now() + period);
                    }
                    batch.push(waiting);
                    let most = if settling { DRAIN_ENTRIES } else { MAX_ENTRIES };
                    if batch.len() >= most {
                        due = Some(Instant::now());
                    }
                }
                None => {
                    // Every feeder is gone: the last manifest, tried a few times.
                    for attempt in 0..3 {
                        if batch.is_empty() || batch.write(&mut writer, &metrics).await {
                            return;
                        }
                        tokio::time::sleep(RETRY_START * (attempt + 1)).await;
                    }
                    error!(
                        unlisted = batch.len(),
                        "stopping with archived versions that no manifest lists; \
                         `trailvault verify` will name them"
                    );
                    return;
                }
            },
            // Stopping turns a steady recorder into a settling one at once.
            () = shutdown.stop_receiving.cancelled(), if !settling => {}
            // Wakes for the due time and, while settling, again after each quiet spell.
            () = sleep => {
                let now = Instant::now();
                if batch.is_empty() {
                    due = None;
                } else if due.is_some_and(|due| due > now) && !copying.idle() {
                    // A quiet spell, but a copy is still running: its entry is worth waiting
                    // for.
                } else if batch.write(&mut writer, &metrics).await {
                    due = None;
                    retry = RETRY_START;
                } else {
                    due = Some(Instant::now() + retry);
                    retry = (retry * 2).min(period.max(RETRY_START));
                }
            }
        }
    }
}

/// The entries waiting for the next manifest, and when that manifest's period began.
struct Batch {
    waiting: Vec<Waiting>,
    start: OffsetDateTime,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            waiting: Vec::new(),
            start: OffsetDateTime::now_utc(),
        }
    }

    fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    fn len(&self) -> usize {
        self.waiting.len()
    }

    fn push(&mut self, waiting: Waiting) {
        self.waiting.push(waiting);
    }

    /// Writes the waiting entries; on success resolves their listings and starts a new
    /// period. On failure they stay for the next attempt.
    async fn write(&mut self, writer: &mut Writer, metrics: &Metrics) -> bool {
        let end = OffsetDateTime::now_utc();
        let entries: Vec<Entry> = self.waiting.iter().map(|w| w.entry.clone()).collect();
        match writer.write(self.start, end, &entries).await {
            Ok(written) => {
                crate::failpoint::hit("after_manifest");
                info!(
                    manifest = %written.key,
                    sequence = written.sequence,
                    entries = written.entries,
                    "manifest written"
                );
                metrics.manifests_written.inc();
                metrics.manifest_entries.inc_by(written.entries as u64);
                for waiting in self.waiting.drain(..) {
                    // The copy may have stopped waiting (its message was handed back).
                    let _ = waiting.listed.send(written.sequence);
                }
                self.start = end;
                true
            }
            Err(e) => {
                metrics.manifest_failures.inc();
                warn!(
                    error = %e, waiting = entries.len(),
                    "manifest not written; the messages that brought these versions are kept \
                     until it is, and it is tried again"
                );
                false
            }
        }
    }
}
