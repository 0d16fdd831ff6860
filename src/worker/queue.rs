//! Receiving from one queue, keeping messages invisible while they are worked on, and
//! acknowledging them in batches.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use rand::Rng;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::{debug, error, warn};

use super::disposition::Disposition;
use super::message::{handle, Handled};
use super::QueueCtx;
use crate::archive::layout::printable;
use crate::archive::record::Listing;
use crate::archive::tally::Tally;
use crate::archive::Ctx;
use crate::aws::Failure;
use crate::telemetry::metrics::{Metrics, QueueLabel, QueueOutcome, TaskLabel};
use crate::telemetry::panics::caught;

/// At most this many messages per receive (the SQS limit).
const MAX_BATCH: usize = 10;
/// Receive errors back off from 1 s, doubling, to at most a minute, with jitter.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// A parked message comes back after this long: soon enough that redrive moves it to the
/// dead-letter queue within a minute, not in a tight loop.
const PARK_VISIBILITY_SECS: i32 = 2;
/// How long the acknowledger waits to fill a batch.
const BATCH_LINGER: Duration = Duration::from_millis(20);

/// What a message task tells the acknowledger.
pub struct Ack {
    pub receipt: String,
    pub message_id: String,
    pub disposition: Disposition,
}

/// Receives until shutdown; every message becomes a task holding one in-flight slot.
pub async fn receive(
    ctx: Arc<Ctx>,
    queue: Arc<QueueCtx>,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    acks: mpsc::Sender<Ack>,
    wait: Duration,
) {
    let stop = ctx.shutdown.stop_receiving.clone();
    let mut failures = 0u32;
    loop {
        // While the archive side fails, nothing is received: a message received now would
        // only fail, and each receive brings it closer to the dead-letter queue.
        if !ctx.archive_health.wait(&stop, &ctx.metrics).await {
            return;
        }
        // Capacity first, so that a received message never waits for a slot.
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = stop.cancelled() => return,
        };
        let mut permits = vec![first];
        while permits.len() < MAX_BATCH {
            match slots.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        if stop.is_cancelled() {
            return;
        }
        // A receive in flight is not cancelled: SQS may already have handed it messages,
        // which are then returned below rather than left invisible.
        let received = queue
            .sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(permits.len() as i32)
            .wait_time_seconds(wait.as_secs() as i32)
            .visibility_timeout(ctx.config.worker.visibility_timeout.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await;
        let messages = match received {
            Ok(out) => {
                failures = 0;
                out.messages.unwrap_or_default()
            }
            Err(e) => {
                let failure = Failure::from_sdk(&e);
                ctx.metrics
                    .receive_errors
                    .get_or_create(&QueueLabel {
                        queue: queue.name.clone(),
                    })
                    .inc();
                let delay = backoff(failures);
                failures = failures.saturating_add(1);
                warn!(
                    queue = %queue.name, error = %failure.detail, retry_in_ms = delay.as_millis() as u64,
                    "receiving failed; check the queue URL, the worker's credentials and sqs:ReceiveMessage"
                );
                drop(permits);
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    () = stop.cancelled() => return,
                }
            }
        };
        for message in messages {
            let permit = permits.pop().expect("no more messages than permits");
            ctx.metrics
                .messages_received
                .get_or_create(&QueueLabel {
                    queue: queue.name.clone(),
                })
                .inc();
            ctx.tally.received();
            tracker.spawn(work(
                ctx.clone(),
                queue.clone(),
                message,
                permit,
                acks.clone(),
            ));
        }
    }
}

/// Capped exponential backoff with jitter (half fixed, half random).
fn backoff(failures: u32) -> Duration {
    let exp = BACKOFF_START.saturating_mul(1u32 << failures.min(16));
    let capped = exp.min(BACKOFF_CAP);
    let half = capped / 2;
    half + half.mul_f64(rand::thread_rng().gen::<f64>())
}

/// One message's task: the work, with a visibility heartbeat, then its acknowledgement.
async fn work(
    ctx: Arc<Ctx>,
    queue: Arc<QueueCtx>,
    message: Message,
    permit: OwnedSemaphorePermit,
    acks: mpsc::Sender<Ack>,
) {
    let receipt = message.receipt_handle.clone().unwrap_or_default();
    let message_id = message.message_id.clone().unwrap_or_default();
    let body = message.body.as_deref().unwrap_or_default();
    let mut keeper = Keeper {
        ctx: &ctx,
        queue: &queue,
        receipt: &receipt,
        message_id: &message_id,
        heartbeat: {
            let half = ctx.config.worker.visibility_timeout / 2;
            tokio::time::interval_at(tokio::time::Instant::now() + half, half)
        },
    };
    let handled = keeper
        .hold(caught(handle(&ctx, &queue, &message_id, body)))
        .await;
    // The copies are done: the slot goes to the next message while this one waits for the
    // manifest that lists its versions.
    drop(permit);
    let disposition = match handled {
        None => Disposition::HandBack,
        Some(Err(panicked)) => {
            // A panic's message may quote what it was handling (a slice of a key).
            error!(queue = %queue.name, message_id, error = %printable(&panicked.to_string()),
                "the message's task panicked; the message is returned and, after the queue's \
                 maxReceiveCount, moved to the dead-letter queue");
            ctx.metrics
                .panics
                .get_or_create(&TaskLabel { task: "message" })
                .inc();
            ctx.tally.failure("panic");
            Disposition::Park
        }
        Some(Ok(handled)) => match handled {
            Handled {
                disposition: Disposition::Delete(what),
                listings,
            } if !listings.is_empty() => {
                let listed = keeper
                    .hold(futures_util::future::join_all(
                        listings.into_iter().map(Listing::wait),
                    ))
                    .await;
                match listed {
                    Some(listed) if listed.iter().all(Result::is_ok) => Disposition::Delete(what),
                    // The versions are archived; the message comes back, finds them, and they
                    // are listed then.
                    Some(_) => {
                        warn!(queue = %queue.name, message_id, "archived, but no manifest lists it yet; the message stays");
                        Disposition::Retry
                    }
                    None => Disposition::HandBack,
                }
            }
            handled => handled.disposition,
        },
    };
    if let Some(count) = message
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
    {
        if !matches!(disposition, Disposition::Delete(_)) {
            debug!(queue = %queue.name, message_id, receive_count = %count, disposition = disposition.label(), "message returned");
        }
    }
    let _ = acks
        .send(Ack {
            receipt,
            message_id,
            disposition,
        })
        .await;
}

/// Keeps one message invisible to other consumers while its work runs.
struct Keeper<'a> {
    ctx: &'a Ctx,
    queue: &'a QueueCtx,
    receipt: &'a str,
    message_id: &'a str,
    heartbeat: tokio::time::Interval,
}

impl Keeper<'_> {
    /// Runs `work`, extending the message's visibility at half the timeout; `None` once the
    /// shutdown grace period is over (the message is handed back).
    async fn hold<T>(&mut self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Some(done),
                _ = self.heartbeat.tick() => self.extend().await,
                () = self.ctx.shutdown.abandon.cancelled() => {
                    warn!(queue = %self.queue.name, message_id = self.message_id,
                        "the shutdown grace period is over; handing the message back");
                    return None;
                }
            }
        }
    }

    async fn extend(&self) {
        let extended = self
            .queue
            .sqs
            .change_message_visibility()
            .queue_url(&self.queue.url)
            .receipt_handle(self.receipt)
            .visibility_timeout(self.ctx.config.worker.visibility_timeout.as_secs() as i32)
            .send()
            .await;
        if let Err(e) = extended {
            warn!(queue = %self.queue.name, message_id = self.message_id,
                error = %Failure::from_sdk(&e).detail,
                "could not extend the message's visibility; another replica may receive it too");
        }
    }
}

/// Applies dispositions in batches: deletes, and visibility changes for parked and handed-back
/// messages. Ends when every sender is gone and the inbox is empty.
pub async fn acknowledge(
    queue: Arc<QueueCtx>,
    mut inbox: mpsc::Receiver<Ack>,
    metrics: Arc<Metrics>,
    tally: Tally,
) {
    while let Some(first) = inbox.recv().await {
        let mut batch = vec![first];
        let linger = tokio::time::sleep(BATCH_LINGER);
        tokio::pin!(linger);
        while batch.len() < MAX_BATCH {
            tokio::select! {
                next = inbox.recv() => match next {
                    Some(ack) => batch.push(ack),
                    None => break,
                },
                () = &mut linger => break,
            }
        }
        let mut deletes = Vec::new();
        let mut returns = Vec::new();
        for ack in batch {
            match ack.disposition {
                Disposition::Delete(_) => deletes.push(ack),
                // Nothing to tell SQS: the message comes back when its visibility ends.
                Disposition::Retry => {
                    metrics
                        .messages_returned
                        .get_or_create(&QueueOutcome {
                            queue: queue.name.clone(),
                            outcome: ack.disposition.label(),
                        })
                        .inc();
                    tally.returned();
                }
                Disposition::Park | Disposition::HandBack => returns.push(ack),
            }
        }
        if !deletes.is_empty() {
            delete(&queue, deletes, &metrics, &tally).await;
        }
        if !returns.is_empty() {
            hand_back(&queue, returns, &metrics, &tally).await;
        }
    }
}

async fn delete(queue: &QueueCtx, acks: Vec<Ack>, metrics: &Metrics, tally: &Tally) {
    let entries: Vec<DeleteMessageBatchRequestEntry> = acks
        .iter()
        .enumerate()
        .map(|(i, ack)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(&ack.receipt)
                .build()
                .expect("id and receipt handle are set")
        })
        .collect();
    crate::failpoint::hit("before_delete");
    let result = queue
        .sqs
        .delete_message_batch()
        .queue_url(&queue.url)
        .set_entries(Some(entries))
        .send()
        .await;
    let failed: Vec<(usize, String)> = match result {
        // A 200 can still carry failed entries.
        Ok(out) => out
            .failed
            .iter()
            .map(|f| {
                (
                    f.id.parse().unwrap_or(usize::MAX),
                    f.message.clone().unwrap_or_else(|| f.code.clone()),
                )
            })
            .collect(),
        Err(e) => {
            let detail = Failure::from_sdk(&e).detail;
            (0..acks.len()).map(|i| (i, detail.clone())).collect()
        }
    };
    crate::failpoint::hit("after_delete");
    for (i, ack) in acks.iter().enumerate() {
        match failed.iter().find(|(f, _)| *f == i) {
            Some((_, why)) => {
                metrics
                    .acknowledge_errors
                    .get_or_create(&QueueLabel {
                        queue: queue.name.clone(),
                    })
                    .inc();
                warn!(
                    queue = %queue.name, message_id = %ack.message_id, error = %why,
                    "could not delete a finished message; it will come back and be found already archived"
                );
            }
            None => {
                metrics
                    .messages_deleted
                    .get_or_create(&QueueOutcome {
                        queue: queue.name.clone(),
                        outcome: ack.disposition.label(),
                    })
                    .inc();
                tally.deleted(ack.disposition.label());
            }
        }
    }
}

async fn hand_back(queue: &QueueCtx, acks: Vec<Ack>, metrics: &Metrics, tally: &Tally) {
    let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = acks
        .iter()
        .enumerate()
        .map(|(i, ack)| {
            let visibility = match ack.disposition {
                Disposition::Park => PARK_VISIBILITY_SECS,
                _ => 0,
            };
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(&ack.receipt)
                .visibility_timeout(visibility)
                .build()
                .expect("id and receipt handle are set")
        })
        .collect();
    let result = queue
        .sqs
        .change_message_visibility_batch()
        .queue_url(&queue.url)
        .set_entries(Some(entries))
        .send()
        .await;
    let failed = match &result {
        Ok(out) => out.failed.len(),
        Err(e) => {
            warn!(queue = %queue.name, error = %Failure::from_sdk(e).detail,
                "could not return messages early; they come back when their visibility ends");
            acks.len()
        }
    };
    if failed > 0 {
        metrics
            .acknowledge_errors
            .get_or_create(&QueueLabel {
                queue: queue.name.clone(),
            })
            .inc_by(failed as u64);
    }
    for ack in &acks {
        metrics
            .messages_returned
            .get_or_create(&QueueOutcome {
                queue: queue.name.clone(),
                outcome: ack.disposition.label(),
            })
            .inc();
        tally.returned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for failures in 0..40 {
            let d = backoff(failures);
            let ceiling = BACKOFF_START
                .saturating_mul(1 << failures.min(16))
                .min(BACKOFF_CAP);
            assert!(d >= ceiling / 2 && d <= ceiling, "{failures}: {d:?}");
        }
        assert!(backoff(30) <= BACKOFF_CAP);
        let samples: std::collections::BTreeSet<u128> =
            (0..20).map(|_| backoff(5).as_micros()).collect();
        assert!(samples.len() > 1, "no jitter");
    }
}
