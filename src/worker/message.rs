//! One message: parse, route, copy each object, decide.

use tracing::{info, warn};

use super::disposition::{decide, Disposition};
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

/// Does a message's work and says what becomes of it.
#[tracing::instrument(skip_all, fields(queue = %queue.name, message_id = %message_id))]
pub async fn handle(ctx: &Ctx, queue: &QueueCtx, message_id: &str, body: &str) -> Handled {
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
    let mut results = Vec::with_capacity(objects.len());
    let mut listings = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        // Between objects, never in the middle of one.
        if i > 0 && ctx.shutdown.stopping() {
            return Disposition::HandBack.into();
        }
        let archival = archive(ctx, object).await;
        results.push(archival.result);
        listings.extend(archival.listing);
    }
    Handled {
        disposition: decide(&results),
        listings,
    }
}
