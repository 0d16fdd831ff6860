//! The one decision of what a failure means for the work that met it: try again later, or
//! park it where an operator sees it. Every feeder asks here: the queue consumer for each
//! object of a message and for the message itself; the sweep and a backfill, which report a
//! failure and go on either way, count by the same classes.
//!
//! A parked message is never deleted: the queue hands it back until its redrive policy moves
//! it to the dead-letter queue. A retried one comes back after its visibility timeout.

use crate::alerts::deliver::AlertError;
use crate::archive::copy::CopyError;
use crate::archive::routing::Refusal;
use crate::notification::NotificationError;

/// How one object of a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectResult {
    /// Archived (or already archived, or kept apart as a conflict): nothing left to do.
    Done,
    /// A passing condition (throttling, 5xx, timeouts, expired credentials, a source that
    /// changed mid-copy): try later.
    Retry,
    /// Waiting will not help (malformed, refused, missing, access denied): let redrive move
    /// the message to the dead-letter queue where an operator sees it.
    Park,
}

/// Whatever kept an object, or a whole message, from the archive.
#[derive(Debug, Clone, Copy)]
pub enum Failed<'e> {
    /// The message is not a notification trailvault understands.
    Notification(&'e NotificationError),
    /// Routing refused the object; `discovery` says whether organization discovery is on.
    Refused {
        refusal: &'e Refusal,
        discovery: bool,
    },
    /// The copy failed, on the source side or the archive side.
    Copy(&'e CopyError),
    /// The object is archived, but its alerts are not out (SNS, EventBridge, the tag).
    Alert(&'e AlertError),
}

/// Retry or park. Every variant is named, so that a new error cannot go unclassified.
pub fn classify(failed: Failed<'_>) -> ObjectResult {
    use ObjectResult::{Park, Retry};
    match failed {
        Failed::Notification(
            NotificationError::NotJson(_)
            | NotificationError::UnknownShape
            | NotificationError::BadRecord { .. }
            | NotificationError::NestedEnvelope,
        ) => Park,
        // An unknown bucket may belong to an account the organization is gaining: with
        // discovery on it comes back, and reaches the dead-letter queue by redrive if the
        // bucket stays unknown.
        Failed::Refused {
            refusal: Refusal::UnknownBucket { .. },
            discovery: true,
        } => Retry,
        Failed::Refused {
            refusal:
                Refusal::UnknownBucket { .. }
                | Refusal::UnsafeKey { .. }
                | Refusal::NotCloudTrail { .. }
                | Refusal::AccountMismatch { .. },
            ..
        } => Park,
        Failed::Copy(
            CopyError::SourceMissing { .. }
            | CopyError::SourceDenied { .. }
            | CopyError::ReaderRoleDenied { .. },
        ) => Park,
        Failed::Copy(CopyError::SourceRead { failure, .. }) => {
            if failure.retryable {
                Retry
            } else {
                Park
            }
        }
        // The archive side's failure is never the message's: it waits (and the worker
        // pauses, see `archive::health`), whatever the failure.
        Failed::Copy(CopyError::ArchiveWrite { .. }) => Retry,
        Failed::Copy(CopyError::SourceChanged { .. } | CopyError::ArchiveCheck { .. }) => Retry,
        // Our own side again: the message waits until its alerts are out. Past the queue's
        // maxReceiveCount it reaches the dead-letter queue, and a redrive publishes them (its
        // archived version carries no published tag).
        Failed::Alert(_) => Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::ObjectResult::{Park, Retry};
    use super::*;
    use crate::aws::Failure;

    fn failure(retryable: bool) -> Failure {
        Failure {
            status: Some(if retryable { 503 } else { 403 }),
            code: None,
            retryable,
            detail: String::new(),
        }
    }

    #[test]
    fn every_failure_is_retried_or_parked() {
        let s = String::new;
        let notification = [
            NotificationError::NotJson(s()),
            NotificationError::UnknownShape,
            NotificationError::BadRecord {
                index: 0,
                problem: s(),
            },
            NotificationError::NestedEnvelope,
        ];
        for n in &notification {
            assert_eq!(classify(Failed::Notification(n)), Park, "{n:?}");
        }

        let unknown = Refusal::UnknownBucket { bucket: s() };
        let not_cloudtrail = Refusal::NotCloudTrail {
            bucket: s(),
            key: s(),
            reason: "",
        };
        // Unsafe whatever discovery may learn: parked at once, never retried.
        let unsafe_key = Refusal::UnsafeKey {
            bucket: s(),
            key: s(),
            reason: crate::archive::routing::Unsafe::EmptySegment,
        };
        let mismatch = Refusal::AccountMismatch {
            bucket: s(),
            key: s(),
            bucket_account: s(),
            key_account: s(),
        };
        let refusals = [
            (&unknown, false, Park),
            (&unknown, true, Retry),
            (&unsafe_key, false, Park),
            (&unsafe_key, true, Park),
            (&not_cloudtrail, false, Park),
            (&not_cloudtrail, true, Park),
            (&mismatch, false, Park),
            (&mismatch, true, Park),
        ];
        for (refusal, discovery, want) in refusals {
            assert_eq!(
                classify(Failed::Refused { refusal, discovery }),
                want,
                "{refusal:?} with discovery {discovery}"
            );
        }

        let copies = [
            (
                CopyError::SourceMissing {
                    account: s(),
                    bucket: s(),
                    key: s(),
                    version: None,
                },
                Park,
            ),
            (
                CopyError::SourceDenied {
                    account: s(),
                    bucket: s(),
                    key: s(),
                    detail: s(),
                },
                Park,
            ),
            (
                CopyError::ReaderRoleDenied {
                    account: s(),
                    bucket: s(),
                    key: s(),
                    detail: s(),
                },
                Park,
            ),
            (
                CopyError::SourceRead {
                    account: s(),
                    bucket: s(),
                    key: s(),
                    failure: failure(true),
                },
                Retry,
            ),
            (
                CopyError::SourceRead {
                    account: s(),
                    bucket: s(),
                    key: s(),
                    failure: failure(false),
                },
                Park,
            ),
            (
                CopyError::SourceChanged {
                    bucket: s(),
                    key: s(),
                    reason: s(),
                },
                Retry,
            ),
            (
                CopyError::ArchiveWrite {
                    bucket: s(),
                    key: s(),
                    failure: failure(true),
                },
                Retry,
            ),
            (
                CopyError::ArchiveWrite {
                    bucket: s(),
                    key: s(),
                    failure: failure(false),
                },
                Retry,
            ),
            (
                CopyError::ArchiveCheck {
                    bucket: s(),
                    key: s(),
                    version: s(),
                    problem: s(),
                },
                Retry,
            ),
        ];
        for (e, want) in &copies {
            assert_eq!(classify(Failed::Copy(e)), *want, "{e:?}");
        }
    }
}
