//! How archiving one object ended, for whoever fed it: done, retry later, or park where an
//! operator sees it.

/// How one object of a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectResult {
    /// Archived (or already archived, or archived as a new version): nothing left to do.
    Done,
    /// A passing condition (throttling, 5xx, timeouts, expired credentials): try later.
    Retry,
    /// Waiting will not help (malformed, refused, missing, access denied): let redrive move
    /// the message to the dead-letter queue where an operator sees it.
    Park,
}
