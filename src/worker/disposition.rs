//! What happens to a message once its work is done: its objects' results (each classified in
//! `archive::classify`) become "delete", "retry" or "park" here, and nowhere else.

use crate::archive::classify::ObjectResult;

/// What the worker does with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Every object is archived and checked, or there was nothing to do: delete it.
    /// The label says which (`archived`, `s3_test_event`, ...).
    Delete(&'static str),
    /// Leave it: it comes back when its visibility timeout ends.
    Retry,
    /// Return it at once: it is received again, fails again, and after the queue's
    /// maxReceiveCount the redrive policy moves it to the dead-letter queue. Never deleted.
    Park,
    /// Shutting down before its work started (or finished): hand it back for another replica.
    HandBack,
}

impl Disposition {
    pub fn label(&self) -> &'static str {
        match self {
            Disposition::Delete(what) => what,
            Disposition::Retry => "retry",
            Disposition::Park => "park",
            Disposition::HandBack => "shutdown",
        }
    }
}

/// A message whose objects ended as `results`. Parking wins over retrying: if any object can
/// never be archived, the message must reach the dead-letter queue, and the objects that were
/// archived are found there already when it is redriven.
pub fn decide(results: &[ObjectResult]) -> Disposition {
    if results.contains(&ObjectResult::Park) {
        Disposition::Park
    } else if results.contains(&ObjectResult::Retry) {
        Disposition::Retry
    } else {
        Disposition::Delete("archived")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::classify::ObjectResult::*;

    #[test]
    fn a_message_is_deleted_only_when_every_object_is_done() {
        assert_eq!(decide(&[Done]), Disposition::Delete("archived"));
        assert_eq!(decide(&[Done, Done, Done]), Disposition::Delete("archived"));
        assert_eq!(decide(&[Done, Retry]), Disposition::Retry);
        assert_eq!(decide(&[Retry, Park, Done]), Disposition::Park);
        assert_eq!(decide(&[Park]), Disposition::Park);
    }
}
