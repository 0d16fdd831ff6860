//! The decisions `verify` makes, as pure functions of what it found: how a digest's link to
//! its predecessor stands, how two consecutive digests of a chain join, and whether a file
//! nothing vouches for yet is pending or invalid. The walk in the other files gathers the
//! facts and turns these answers into report lines and notes.

use time::OffsetDateTime;

/// How a digest's link to the previous digest it names stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Link {
    /// The previous digest is there, with the hash and signature this one names.
    Holds,
    /// The previous digest is not in the archive: a line of its own, INVALID.
    NotFound,
    /// The previous digest is there but outside the scope, so it was not read.
    OutOfScope,
    /// It is there, but its hash is not the one named: INVALID.
    HashDiffers,
    /// It is there, but its signature is not the one named: INVALID.
    SignatureDiffers,
}

/// `in_archive`: the previous digest's key has a current version. `read`: its hash and
/// signature, when it was read. `named`: what this digest says they are.
pub(super) fn link(
    in_archive: bool,
    read: Option<(Option<&str>, Option<&str>)>,
    named_hash: Option<&str>,
    named_signature: Option<&str>,
) -> Link {
    if !in_archive {
        return Link::NotFound;
    }
    match read {
        None => Link::OutOfScope,
        Some((hash, _)) if hash != named_hash => Link::HashDiffers,
        Some((_, signature)) if signature != named_signature => Link::SignatureDiffers,
        Some(_) => Link::Holds,
    }
}

/// How two consecutive digests of one chain (oldest first) join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Join {
    /// The newer names the older, and its period starts where the older's ends.
    Continues,
    /// The newer names no predecessor: logging or validation was off before it.
    Restart,
    /// The newer names the older, but a stretch of time between them has no digest.
    Gap,
    /// The newer names another digest as its predecessor: the link check reports that.
    Elsewhere,
}

pub(super) fn join(
    older_object: &str,
    older_end: &str,
    newer_previous_object: Option<&str>,
    newer_start: &str,
) -> Join {
    match newer_previous_object {
        None => Join::Restart,
        Some(previous) if previous != older_object => Join::Elsewhere,
        Some(_) if newer_start != older_end => Join::Gap,
        Some(_) => Join::Continues,
    }
}

/// A file that nothing (no digest, no manifest) vouches for yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unvouched {
    /// Newer than what vouches for its kind: the next digest or manifest should list it.
    Pending,
    /// Older than something that should have listed it: planted, or its listing removed.
    Invalid,
}

/// A log file no digest lists, against the start of its account and region's newest digest:
/// CloudTrail's digest for an hour lists the logs delivered in it, so a log older than the
/// newest digest's period should have been listed.
pub(super) fn unlisted_log(
    newest_digest_start: Option<OffsetDateTime>,
    log_at: Option<OffsetDateTime>,
) -> Unvouched {
    match (newest_digest_start, log_at) {
        (Some(cutoff), Some(at)) if at < cutoff => Unvouched::Invalid,
        _ => Unvouched::Pending,
    }
}

/// An archive version no manifest lists, against when S3 stored the newest manifest (whole
/// seconds, S3's own clock: nothing a manifest says can move it). A version stored in the same
/// second or later may belong to the next manifest.
pub(super) fn unlisted_version(
    newest_manifest_write: Option<i64>,
    written: Option<i64>,
) -> Unvouched {
    match (newest_manifest_write, written) {
        (Some(manifest), Some(written)) if written < manifest => Unvouched::Invalid,
        _ => Unvouched::Pending,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_link_holds_only_with_the_named_hash_and_signature() {
        let cases = [
            (false, None, Link::NotFound),
            (false, Some((Some("h"), Some("s"))), Link::NotFound),
            (true, None, Link::OutOfScope),
            (true, Some((Some("h"), Some("s"))), Link::Holds),
            (true, Some((Some("x"), Some("s"))), Link::HashDiffers),
            (true, Some((None, Some("s"))), Link::HashDiffers),
            (true, Some((Some("h"), Some("x"))), Link::SignatureDiffers),
            (true, Some((Some("h"), None)), Link::SignatureDiffers),
            // A wrong hash is reported before a wrong signature.
            (true, Some((Some("x"), Some("x"))), Link::HashDiffers),
        ];
        for (in_archive, read, want) in cases {
            assert_eq!(
                link(in_archive, read, Some("h"), Some("s")),
                want,
                "{in_archive} {read:?}"
            );
        }
    }

    #[test]
    fn consecutive_digests_continue_restart_or_leave_a_gap() {
        let (a, end) = ("d-01.json.gz", "2026-11-01T01:00:00Z");
        assert_eq!(join(a, end, Some(a), end), Join::Continues);
        assert_eq!(join(a, end, None, end), Join::Restart);
        assert_eq!(join(a, end, Some(a), "2026-11-01T03:00:00Z"), Join::Gap);
        assert_eq!(join(a, end, Some("d-00.json.gz"), end), Join::Elsewhere);
        assert_eq!(
            join(a, end, Some("d-00.json.gz"), "2026-11-01T03:00:00Z"),
            Join::Elsewhere
        );
    }

    #[test]
    fn an_unlisted_log_is_invalid_only_before_the_newest_digest() {
        let cutoff = datetime!(2026-11-01 02:00 UTC);
        let before = datetime!(2026-11-01 01:59 UTC);
        let after = datetime!(2026-11-01 02:00 UTC);
        assert_eq!(unlisted_log(Some(cutoff), Some(before)), Unvouched::Invalid);
        assert_eq!(unlisted_log(Some(cutoff), Some(after)), Unvouched::Pending);
        // No digest at all for its account and region, or no time in its name.
        assert_eq!(unlisted_log(None, Some(before)), Unvouched::Pending);
        assert_eq!(unlisted_log(Some(cutoff), None), Unvouched::Pending);
    }

    #[test]
    fn an_unlisted_version_is_invalid_only_before_the_newest_manifest() {
        assert_eq!(unlisted_version(Some(100), Some(99)), Unvouched::Invalid);
        // The same second may be newer: S3's times are whole seconds.
        assert_eq!(unlisted_version(Some(100), Some(100)), Unvouched::Pending);
        assert_eq!(unlisted_version(Some(100), Some(101)), Unvouched::Pending);
        assert_eq!(unlisted_version(None, Some(1)), Unvouched::Pending);
        assert_eq!(unlisted_version(Some(100), None), Unvouched::Pending);
    }
}
