//! One message: parse, route, copy each object, decide.

use tracing::{info, warn};

use super::disposition::{decide, Disposition};
use super::QueueCtx;
use crate::archive::classify::{classify, Failed};
use crate::archive::object::archive;
use crate::archive::Ctx;
use crate::notification::{self, Notification};
use crate::telemetry::metrics::ReasonLabel;

/// Does a message's work and says what becomes of it.
#[tracing::instrument(skip_all, fields(queue = %queue.name, message_id = %message_id))]
pub async fn handle(ctx: &Ctx, queue: &QueueCtx, message_id: &str, body: &str) -> Disposition {
    if ctx.shutdown.stopping() {
        return Disposition::HandBack;
    }
    let objects = match notification::parse(body) {
        Ok(Notification::Objects(objects)) => objects,
        Ok(Notification::NoWork(what)) => {
            info!(
                kind = what.label(),
                "nothing to archive in this message; acknowledged"
            );
            return Disposition::Delete(what.label());
        }
        Err(e) => {
            warn!(
                error = %e,
                "not a notification trailvault understands; it stays on the queue until \
                 redrive moves it to the dead-letter queue"
            );
            ctx.metrics
                .failures
                .get_or_create(&ReasonLabel { reason: e.label() })
                .inc();
            ctx.tally.failure(e.label());
            return decide(&[classify(Failed::Notification(&e))]);
        }
    };
    let mut results = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        // Between objects, never in the middle of one.
        if i > 0 && ctx.shutdown.stopping() {
            return Disposition::HandBack;
        }
        results.push(archive(ctx, object).await.result);
    }
    decide(&results)
}
