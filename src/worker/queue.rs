//! Receiving from one queue, keeping messages invisible while they are worked on, and
//! acknowledging them in batches.
//!
//! A receiver holds no copy slot while it waits on SQS: it long-polls for up to 10 messages,
//! starts a task per message (its visibility extended from that moment), and polls again once
//! every task of the batch has a slot. So a quiet queue costs a waiting request and nothing
//! else, and at most one batch per queue waits for capacity, in the order it arrived.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use prometheus_client::metrics::gauge::Gauge;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, warn};

use super::disposition::Disposition;
use super::message::{handle, Handled};
use super::poll::Quiet;
use super::slots::Slots;
use super::QueueCtx;
use crate::archive::layout::printable;
use crate::archive::record::Listing;
use crate::archive::tally::Tally;
use crate::archive::Ctx;
use crate::aws::Failure;
use crate::telemetry::metrics::{Metrics, QueueLabel, QueueOutcome, TaskLabel};
use crate::telemetry::panics::caught;

/// At most this many messages per receive and per batch delete (the SQS limit).
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
    /// SQS's SentTimestamp: the start of the message's end-to-end time.
    pub sent_at: Option<SystemTime>,
}

/// What one queue's receiver works with.
pub struct Receiver {
    pub queue: Arc<QueueCtx>,
    pub slots: Slots,
    pub tracker: TaskTracker,
    pub acks: mpsc::Sender<Ack>,
    /// The long poll's wait.
    pub wait: Duration,
    /// Told after every receive whether it came back empty.
    pub quiet: Arc<Quiet>,
    pub index: usize,
}

/// Counts a gauge up for as long as it lives (a receive cancelled mid-wait counts down too).
struct Up(Gauge);

impl Up {
    fn new(gauge: &Gauge) -> Up {
        gauge.inc();
        Up(gauge.clone())
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Receives until shutdown; every message becomes a task that waits for a copy slot with its
/// visibility kept, then works.
pub async fn receive(ctx: Arc<Ctx>, r: Receiver) {
    let stop = ctx.shutdown.stop_receiving.clone();
    let queue = &r.queue;
    let mut failures = 0u32;
    loop {
        // While the archive side fails, nothing is received: a message received now would
        // only fail, and each receive brings it closer to the dead-letter queue.
        if !ctx.archive_health.wait(&stop, &ctx.metrics).await || stop.is_cancelled() {
            return;
        }
        // A receive in flight is not cancelled: SQS may already have handed it messages,
        // which are then handed back by their tasks rather than left invisible.
        let received = {
            let _waiting = Up::new(&ctx.metrics.receives_waiting);
            queue
                .sqs
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(MAX_BATCH as i32)
                .wait_time_seconds(r.wait.as_secs() as i32)
                .visibility_timeout(ctx.config.worker.visibility_timeout.as_secs() as i32)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .send()
                .await
        };
        let messages = match received {
            Ok(out) => {
                failures = 0;
                out.messages.unwrap_or_default()
            }
            Err(e) => {
                r.quiet.report(r.index, false);
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
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    () = stop.cancelled() => return,
                }
            }
        };
        r.quiet.report(r.index, messages.is_empty());
        if messages.is_empty() {
            continue;
        }
        let now = SystemTime::now();
        // Every task holds a clone until it has its slot (or has given up on one).
        let (placed, mut all_placed) = mpsc::channel::<()>(1);
        for message in messages {
            ctx.metrics
                .messages_received
                .get_or_create(&QueueLabel {
                    queue: queue.name.clone(),
                })
                .inc();
            ctx.tally.received();
            let sent_at = sent_timestamp(&message);
            if let Some(waited) = sent_at.and_then(|at| now.duration_since(at).ok()) {
                ctx.metrics.queue_wait_seconds.observe(waited.as_secs_f64());
            }
            r.tracker.spawn(work(
                ctx.clone(),
                queue.clone(),
                message,
                sent_at,
                r.slots.clone(),
                placed.clone(),
                r.acks.clone(),
            ));
        }
        drop(placed);
        // The next receive waits until this batch is placed: `None` once every task has
        // dropped its sender.
        let _ = all_placed.recv().await;
    }
}

/// SQS's SentTimestamp (milliseconds since the epoch), when it came with the message.
fn sent_timestamp(message: &Message) -> Option<SystemTime> {
    let millis: u64 = message
        .attributes
        .as_ref()?
        .get(&MessageSystemAttributeName::SentTimestamp)?
        .parse()
        .ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

/// Capped exponential backoff with jitter (half fixed, half random).
fn backoff(failures: u32) -> Duration {
    let exp = BACKOFF_START.saturating_mul(1u32 << failures.min(16));
    let capped = exp.min(BACKOFF_CAP);
    let half = capped / 2;
    half + half.mul_f64(rand::thread_rng().gen::<f64>())
}

/// One message's task: a slot, the work, then its acknowledgement; its visibility extended
/// from receipt to acknowledgement.
async fn work(
    ctx: Arc<Ctx>,
    queue: Arc<QueueCtx>,
    message: Message,
    sent_at: Option<SystemTime>,
    slots: Slots,
    placed: mpsc::Sender<()>,
    acks: mpsc::Sender<Ack>,
) {
    let receipt = message.receipt_handle.clone().unwrap_or_default();
    let message_id = message.message_id.clone().unwrap_or_default();
    let body = message.body.as_deref().unwrap_or_default();
    let heartbeat = Heartbeat::start(&ctx, &queue, &receipt, &message_id);
    let stop = ctx.shutdown.stop_receiving.clone();
    let slot = tokio::select! {
        slot = slots.acquire() => Some(slot),
        () = stop.cancelled() => None,
    };
    drop(placed);
    let handled = match slot {
        Some(slot) => {
            let handled = hold(
                &ctx,
                &queue,
                &message_id,
                caught(handle(&ctx, &queue, &message_id, body, &slots)),
            )
            .await;
            // The copies are done: the slot goes to the next message while this one waits
            // for the manifest that lists its versions.
            drop(slot);
            handled
        }
        // Stopping before its turn came: straight back to the queue.
        None => None,
    };
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
                let listed = hold(
                    &ctx,
                    &queue,
                    &message_id,
                    futures_util::future::join_all(listings.into_iter().map(Listing::wait)),
                )
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
    // No extension may land after the acknowledgement (it would undo a hand-back).
    drop(heartbeat);
    let _ = acks
        .send(Ack {
            receipt,
            message_id,
            disposition,
            sent_at,
        })
        .await;
}

/// Runs `work`; `None` once the shutdown grace period is over (the message is handed back).
async fn hold<T>(
    ctx: &Ctx,
    queue: &QueueCtx,
    message_id: &str,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        done = work => Some(done),
        () = ctx.shutdown.abandon.cancelled() => {
            warn!(queue = %queue.name, message_id,
                "the shutdown grace period is over; handing the message back");
            None
        }
    }
}

/// Keeps one message invisible to other consumers, in its own task so that an extension
/// never pauses the copy; stopped when dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Heartbeat {
    fn start(ctx: &Arc<Ctx>, queue: &Arc<QueueCtx>, receipt: &str, message_id: &str) -> Heartbeat {
        let (ctx, queue) = (ctx.clone(), queue.clone());
        let (receipt, message_id) = (receipt.to_owned(), message_id.to_owned());
        Heartbeat(tokio::spawn(async move {
            let timeout = ctx.config.worker.visibility_timeout;
            // The receive set the visibility; a little of it has passed already.
            let mut visible_until = Instant::now() + timeout;
            let mut next = Instant::now() + timeout / 2;
            let mut lapsed = false;
            loop {
                tokio::time::sleep_until(next).await;
                let asked = Instant::now();
                let extended = queue
                    .sqs
                    .change_message_visibility()
                    .queue_url(&queue.url)
                    .receipt_handle(&receipt)
                    .visibility_timeout(timeout.as_secs() as i32)
                    .send()
                    .await;
                match extended {
                    Ok(_) => {
                        visible_until = asked + timeout;
                        next = asked + timeout / 2;
                    }
                    Err(e) => {
                        warn!(queue = %queue.name, message_id,
                            error = %Failure::from_sdk(&e).detail,
                            "could not extend the message's visibility; trying again");
                        next = Instant::now() + (timeout / 8).max(Duration::from_secs(1));
                    }
                }
                if !lapsed && Instant::now() >= visible_until {
                    lapsed = true;
                    ctx.metrics
                        .visibility_lapsed
                        .get_or_create(&QueueLabel {
                            queue: queue.name.clone(),
                        })
                        .inc();
                    warn!(queue = %queue.name, message_id,
                        "the message's visibility ran out while it was worked on: another \
                         consumer may receive it (its copies end in the same versions); check \
                         sqs:ChangeMessageVisibility for the worker's role");
                }
            }
        }))
    }
}

/// Applies dispositions in batches: deletes, and visibility changes for parked and handed-back
/// messages. A batch goes out as soon as it is full (or has lingered), without waiting for the
/// one before. Ends when every sender is gone, the inbox is empty and every batch is answered.
pub async fn acknowledge(
    queue: Arc<QueueCtx>,
    mut inbox: mpsc::Receiver<Ack>,
    metrics: Arc<Metrics>,
    tally: Tally,
) {
    let mut sending = JoinSet::new();
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
        // Answered batches are reaped as we go, so the set stays small.
        while sending.try_join_next().is_some() {}
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
        let (queue, metrics, tally) = (queue.clone(), metrics.clone(), tally.clone());
        sending.spawn(async move {
            if !deletes.is_empty() {
                delete(&queue, deletes, &metrics, &tally).await;
            }
            if !returns.is_empty() {
                hand_back(&queue, returns, &metrics, &tally).await;
            }
        });
    }
    while sending.join_next().await.is_some() {}
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
                if let Some(took) = ack.sent_at.and_then(|at| at.elapsed().ok()) {
                    metrics.end_to_end_seconds.observe(took.as_secs_f64());
                }
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
