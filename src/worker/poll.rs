//! Queue depths (a gauge per queue), health, and the end of an `--until-empty` run.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use super::QueueCtx;
use crate::archive::health::ArchiveHealth;
use crate::aws::Failure;
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::{Metrics, QueueState};

/// How often depths are read in normal operation.
const INTERVAL: Duration = Duration::from_secs(15);
/// And while draining, where the end should be noticed quickly.
const DRAIN_INTERVAL: Duration = Duration::from_secs(1);
/// Consecutive empty readings, with nothing in flight, that end a drain.
const EMPTY_READINGS: u32 = 2;

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

/// Polls until `stop`. With `drain`, also ends the run once every queue is empty and no
/// message task is running, or once the archive side has failed for `patience`: then it
/// returns why the run could not finish.
pub async fn poll(
    archive: aws_sdk_s3::Client,
    archive_bucket: String,
    queues: Vec<Arc<QueueCtx>>,
    metrics: Arc<Metrics>,
    health: Arc<ArchiveHealth>,
    stop: CancellationToken,
    drain: Option<Drain>,
) -> Option<String> {
    let interval = if drain.is_some() {
        DRAIN_INTERVAL
    } else {
        INTERVAL
    };
    let mut empty_readings = 0;
    loop {
        let mut problems = Vec::new();
        if let Err(e) = archive
            .get_object_lock_configuration()
            .bucket(&archive_bucket)
            .send()
            .await
        {
            problems.push(format!(
                "archive bucket {archive_bucket}: {}",
                Failure::from_sdk(&e).detail
            ));
        }
        let mut all_empty = true;
        for queue in &queues {
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
        let archive_failing = health.failing();
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
            shutdown,
            tasks,
            patience,
            ..
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
            if all_empty && tasks.is_empty() {
                empty_readings += 1;
                if empty_readings >= EMPTY_READINGS && !shutdown.stopping() {
                    info!("every queue is empty and nothing is in flight; stopping");
                    shutdown.stop_receiving.cancel();
                }
            } else {
                empty_readings = 0;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.cancelled() => return None,
        }
    }
}

/// One reading of a queue and its dead-letter queue.
pub async fn depth(queue: &QueueCtx) -> Result<Depth, Failure> {
    let out = queue
        .sqs
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| Failure::from_sdk(&e))?;
    let attrs = out.attributes.unwrap_or_default();
    let number =
        |name: &QueueAttributeName| attrs.get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut depth = Depth {
        visible: number(&QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: number(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ..Depth::default()
    };
    // The dead-letter queue is named by ARN in the redrive policy. SQS requires it in the
    // queue's own account and region, so its URL is the queue's with the name swapped: no
    // GetQueueUrl call, no permission for one.
    let dead_letter_name = attrs
        .get(&QueueAttributeName::RedrivePolicy)
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
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
        if let Ok(dlq) = queue
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
        {
            let attrs = dlq.attributes.unwrap_or_default();
            let n = |name: &QueueAttributeName| -> u64 {
                attrs.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
            };
            depth.dead_letter = Some(
                n(&QueueAttributeName::ApproximateNumberOfMessages)
                    + n(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            );
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
