//! Queue depths (a gauge per queue), health, and the end of an `--until-empty` run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use super::QueueCtx;
use crate::archive::health::ArchiveHealth;
use crate::aws::Failure;
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::{Metrics, QueueState};

/// How often depths and the archive bucket are read for `/metrics` and `/healthz`: a few
/// requests per queue a minute, well inside SQS's free tier for a region's queue.
const INTERVAL: Duration = Duration::from_secs(60);
/// While draining, how often the archive side's health is looked at (no request).
const DRAIN_INTERVAL: Duration = Duration::from_secs(1);

/// Whether each queue's last receive came back empty: a drain reads the queues' depths only
/// when every one has.
pub struct Quiet {
    empty: Vec<AtomicBool>,
    changed: Notify,
}

impl Quiet {
    pub fn new(queues: usize) -> Quiet {
        Quiet {
            empty: (0..queues).map(|_| AtomicBool::new(false)).collect(),
            changed: Notify::new(),
        }
    }

    pub fn report(&self, queue: usize, empty: bool) {
        self.empty[queue].store(empty, Ordering::SeqCst);
        if empty {
            self.changed.notify_one();
        }
    }

    fn all(&self) -> bool {
        self.empty.iter().all(|e| e.load(Ordering::SeqCst))
    }
}

/// Messages on a queue and its dead-letter queue.
#[derive(Debug, Clone, Default)]
pub struct Depth {
    pub visible: u64,
    pub in_flight: u64,
    pub dead_letter: Option<u64>,
    pub dead_letter_name: Option<String>,
}

/// An `--until-empty` run: what ends it.
pub struct Drain {
    pub shutdown: Shutdown,
    pub tasks: TaskTracker,
    /// How long the archive side may fail before the run gives up.
    pub patience: Duration,
}

/// Polls until `stop`. With `drain`, also ends the run once every queue's receive came back
/// empty, no message task is running and the queues' depths (visible and in flight, which
/// counts messages left to retry) are zero; or once the archive side has failed for
/// `patience`: then it returns why the run could not finish.
#[allow(clippy::too_many_arguments)]
pub async fn poll(
    archive: aws_sdk_s3::Client,
    archive_bucket: String,
    queues: Vec<Arc<QueueCtx>>,
    metrics: Arc<Metrics>,
    health: Arc<ArchiveHealth>,
    quiet: Arc<Quiet>,
    stop: CancellationToken,
    drain: Option<Drain>,
) -> Option<String> {
    let mut last_reading: Option<Instant> = None;
    let mut reading_problems: Vec<String> = Vec::new();
    loop {
        let settled =
            drain.is_some() && quiet.all() && drain.as_ref().is_some_and(|d| d.tasks.is_empty());
        let due = last_reading.is_none_or(|at| at.elapsed() >= INTERVAL);
        let mut all_empty = false;
        if due {
            last_reading = Some(Instant::now());
            let (problems, empty) = read(&archive, &archive_bucket, &queues, &metrics).await;
            reading_problems = problems;
            all_empty = empty;
        } else if settled {
            // Only what ends the drain: one request per queue.
            all_empty = emptied(&queues).await;
        }
        let archive_failing = health.failing();
        let mut problems = reading_problems.clone();
        if let Some((reason, _)) = &archive_failing {
            problems.push(format!("the archive does not answer: {reason}"));
        }
        if problems.is_empty() {
            metrics.set_health(
                true,
                format!("{} queue(s) and the archive bucket answer", queues.len()),
            );
        } else {
            metrics.set_health(false, problems.join("; "));
        }
        if let Some(Drain {
            shutdown, patience, ..
        }) = &drain
        {
            if let Some((reason, failing_for)) = &archive_failing {
                if failing_for >= patience {
                    error!(
                        reason,
                        failing_secs = failing_for.as_secs(),
                        "the archive side has failed too long for this run to finish; stopping"
                    );
                    shutdown.stop_receiving.cancel();
                    return Some(format!(
                        "the archive did not answer for {} s: {reason}",
                        failing_for.as_secs()
                    ));
                }
            }
            if settled && all_empty && !shutdown.stopping() {
                info!("every queue is empty and nothing is in flight; stopping");
                shutdown.stop_receiving.cancel();
            }
        }
        let pause = match (&drain, last_reading) {
            (Some(_), _) => DRAIN_INTERVAL,
            (None, Some(at)) => INTERVAL.saturating_sub(at.elapsed()),
            (None, None) => Duration::ZERO,
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            // A queue's receive came back empty: perhaps the last one.
            () = quiet.changed.notified(), if drain.is_some() => {}
            () = stop.cancelled() => return None,
        }
    }
}

/// One reading of the archive bucket and every queue, into the gauges: what failed, and
/// whether every queue is empty (nothing visible, nothing in flight).
async fn read(
    archive: &aws_sdk_s3::Client,
    archive_bucket: &str,
    queues: &[Arc<QueueCtx>],
    metrics: &Metrics,
) -> (Vec<String>, bool) {
    let mut problems = Vec::new();
    if let Err(e) = archive
        .get_object_lock_configuration()
        .bucket(archive_bucket)
        .send()
        .await
    {
        problems.push(format!(
            "archive bucket {archive_bucket}: {}",
            Failure::from_sdk(&e).detail
        ));
    }
    let mut all_empty = true;
    for queue in queues {
        match depth(queue).await {
            Ok(d) => {
                let gauge = |state| {
                    metrics.queue_messages.get_or_create(&QueueState {
                        queue: queue.name.clone(),
                        state,
                    })
                };
                gauge("visible").set(d.visible as i64);
                gauge("in_flight").set(d.in_flight as i64);
                if let Some(dead) = d.dead_letter {
                    gauge("dead_letter").set(dead as i64);
                }
                all_empty &= d.visible == 0 && d.in_flight == 0;
            }
            Err(e) => {
                all_empty = false;
                problems.push(format!("queue {}: {}", queue.name, e.detail));
            }
        }
    }
    (problems, all_empty)
}

/// A queue's counts: messages visible and in flight (`None` where SQS gave no number), and
/// the redrive policy when asked for.
struct Counts {
    visible: Option<u64>,
    in_flight: Option<u64>,
    redrive_policy: Option<String>,
}

async fn counts(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    with_redrive: bool,
) -> Result<Counts, Failure> {
    let mut ask = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
    if with_redrive {
        ask = ask.attribute_names(QueueAttributeName::RedrivePolicy);
    }
    let mut attrs = ask
        .send()
        .await
        .map_err(|e| Failure::from_sdk(&e))?
        .attributes
        .unwrap_or_default();
    let number = |name: &QueueAttributeName| attrs.get(name).and_then(|v| v.parse().ok());
    Ok(Counts {
        visible: number(&QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: number(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        redrive_policy: attrs.remove(&QueueAttributeName::RedrivePolicy),
    })
}

/// Whether every queue is empty: nothing visible, nothing in flight (which counts messages
/// left to come back for a retry).
async fn emptied(queues: &[Arc<QueueCtx>]) -> bool {
    for queue in queues {
        match counts(&queue.sqs, &queue.url, false).await {
            Ok(Counts {
                visible: Some(0),
                in_flight: Some(0),
                ..
            }) => {}
            _ => return false,
        }
    }
    true
}

/// One reading of a queue and its dead-letter queue.
pub async fn depth(queue: &QueueCtx) -> Result<Depth, Failure> {
    let counts_now = counts(&queue.sqs, &queue.url, true).await?;
    let mut depth = Depth {
        visible: counts_now.visible.unwrap_or(0),
        in_flight: counts_now.in_flight.unwrap_or(0),
        ..Depth::default()
    };
    // The dead-letter queue is named by ARN in the redrive policy. SQS requires it in the
    // queue's own account and region, so its URL is the queue's with the name swapped: no
    // GetQueueUrl call, no permission for one.
    let dead_letter_name = counts_now
        .redrive_policy
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_owned))
        .and_then(|arn| arn.rsplit(':').next().map(str::to_owned));
    if let Some(name) = dead_letter_name {
        let url = match queue.url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => name.clone(),
        };
        depth.dead_letter_name = Some(name);
        // A dead-letter queue that cannot be read leaves its depth unknown; it does not make
        // the queue itself unreadable.
        if let Ok(dlq) = counts(&queue.sqs, &url, false).await {
            depth.dead_letter = Some(dlq.visible.unwrap_or(0) + dlq.in_flight.unwrap_or(0));
        }
    }
    Ok(depth)
}

/// Every queue's dead-letter depth, for the summary: (queue, dead-letter queue, messages).
pub async fn dead_letters(queues: &[Arc<QueueCtx>]) -> Vec<(String, String, Option<u64>)> {
    let mut out = Vec::new();
    for queue in queues {
        match depth(queue).await {
            Ok(d) => out.push((
                queue.name.clone(),
                d.dead_letter_name.unwrap_or_else(|| "(none)".to_owned()),
                d.dead_letter,
            )),
            Err(_) => out.push((queue.name.clone(), "(unreadable)".to_owned(), None)),
        }
    }
    out
}

/// Messages waiting on the queues named, when more than `limit` (what this replica takes in
/// at once): the depths the poller last read, not another round of SQS calls.
pub fn backlog(metrics: &Metrics, queues: &[String], limit: u64) -> Option<u64> {
    let waiting: i64 = queues
        .iter()
        .map(|queue| {
            metrics
                .queue_messages
                .get_or_create(&QueueState {
                    queue: queue.clone(),
                    state: "visible",
                })
                .get()
        })
        .sum();
    let waiting = u64::try_from(waiting).unwrap_or(0);
    (waiting > limit).then_some(waiting)
}
