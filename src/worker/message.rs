//! One message: parse, route, copy each object, decide.

use futures_util::stream::{self, StreamExt};
use tracing::{info, warn};

use super::disposition::{decide, Disposition};
use super::slots::Slots;
use super::QueueCtx;
use crate::archive::classify::{classify, Failed};
use crate::archive::object::archive;
use crate::archive::record::Listing;
use crate::archive::Ctx;
use crate::notification::{self, Notification};
use crate::telemetry::metrics::ReasonLabel;

/// What a message's work came to: its disposition, and, for the versions it archived, the
/// promises that a manifest lists them (a message is deleted only once they resolve).
pub struct Handled {
    pub disposition: Disposition,
    pub listings: Vec<Listing>,
}

impl From<Disposition> for Handled {
    fn from(disposition: Disposition) -> Handled {
        Handled {
            disposition,
            listings: Vec::new(),
        }
    }
}

/// Does a message's work and says what becomes of it. The caller holds one slot for it;
/// objects past the first are copied alongside in slots that are free now (never waited for,
/// so that two messages holding slots never wait on each other).
#[tracing::instrument(skip_all, fields(queue = %queue.name, message_id = %message_id))]
pub async fn handle(
    ctx: &Ctx,
    queue: &QueueCtx,
    message_id: &str,
    body: &str,
    slots: &Slots,
) -> Handled {
    if ctx.shutdown.stopping() {
        return Disposition::HandBack.into();
    }
    let objects = match notification::parse(body) {
        Ok(Notification::Objects(objects)) => objects,
        Ok(Notification::NoWork(what)) => {
            info!(
                kind = what.label(),
                "nothing to archive in this message; acknowledged"
            );
            return Disposition::Delete(what.label()).into();
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
            return decide(&[classify(Failed::Notification(&e))]).into();
        }
    };
    let extra: Vec<_> = (1..objects.len())
        .map_while(|_| slots.try_acquire())
        .collect();
    // By index: a closure over a borrowed element trips the compiler's Send check.
    let objects = &objects;
    let archivals: Vec<_> = stream::iter(0..objects.len())
        .map(|i| async move {
            let object = &objects[i];
            // Before an object starts, never in the middle of one.
            if ctx.shutdown.stopping() {
                None
            } else {
                Some(archive(ctx, object).await)
            }
        })
        .buffered(1 + extra.len())
        .collect()
        .await;
    drop(extra);
    let mut results = Vec::with_capacity(archivals.len());
    let mut listings = Vec::new();
    for archival in archivals {
        let Some(archival) = archival else {
            return Disposition::HandBack.into();
        };
        results.push(archival.result);
        listings.extend(archival.listing);
    }
    Handled {
        disposition: decide(&results),
        listings,
    }
}
