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

/// What the digests of one trail, account and region cover.
#[derive(Debug, Clone, Default)]
pub(super) struct Coverage {
    pub oldest_start: Option<OffsetDateTime>,
    pub newest_start: Option<OffsetDateTime>,
    pub newest_end: Option<OffsetDateTime>,
    /// The newest digest's archive key.
    pub head: Option<String>,
    /// Stretches with no digest because the chain restarted (validation or logging was off):
    /// (end of the digest before, start of the one that restarts).
    pub restarts: Vec<(OffsetDateTime, OffsetDateTime)>,
    /// The account and region went on delivering long after the newest digest.
    pub stale: bool,
}

/// How a log file that no digest lists stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unlisted {
    /// Newer than the newest digest: the next one should list it.
    Pending,
    /// In a stretch the digests cover: planted, or its listing removed.
    Invalid,
    /// No digest can ever cover it: why.
    Unverified(String),
}

/// A log file no digest lists, against what its trail's digests cover (`None`: the archive
/// holds no digest of its trail, account and region at all). CloudTrail's digest for an hour
/// lists the logs delivered in it, so a log inside the covered stretch should have been
/// listed; one before the first digest, or while the chain was restarting, was delivered
/// while log file validation was off, and nothing can vouch for it.
pub(super) fn unlisted_log(
    coverage: Option<&Coverage>,
    log_at: Option<OffsetDateTime>,
) -> Unlisted {
    let Some(cov) = coverage.filter(|c| c.newest_start.is_some()) else {
        return Unlisted::Unverified(
            "no digest in the archive covers its trail, account and region: log file \
             validation is off for the trail that delivered it"
                .to_owned(),
        );
    };
    let Some(at) = log_at else {
        return Unlisted::Pending;
    };
    let t = crate::archive::layout::rfc3339;
    if let Some(first) = cov.oldest_start.filter(|first| at < *first) {
        return Unlisted::Unverified(format!(
            "delivered before its trail's first digest ({}): log file validation was off",
            t(first)
        ));
    }
    if let Some((from, to)) = cov
        .restarts
        .iter()
        .find(|(from, to)| *from <= at && at < *to)
    {
        return Unlisted::Unverified(format!(
            "delivered while log file validation was off ({} to {})",
            t(*from),
            t(*to)
        ));
    }
    match cov.newest_start {
        Some(cutoff) if at < cutoff => Unlisted::Invalid,
        _ if cov.stale => Unlisted::Unverified(
            "newer than its trail's newest digest, and the digests after that are missing \
             (see the Digest chain line)"
                .to_owned(),
        ),
        _ => Unlisted::Pending,
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
    fn an_unlisted_log_is_invalid_inside_what_the_digests_cover() {
        let cov = Coverage {
            oldest_start: Some(datetime!(2026-11-01 00:00 UTC)),
            newest_start: Some(datetime!(2026-11-01 05:00 UTC)),
            newest_end: Some(datetime!(2026-11-01 06:00 UTC)),
            head: None,
            restarts: vec![(
                datetime!(2026-11-01 02:00 UTC),
                datetime!(2026-11-01 03:00 UTC),
            )],
            stale: false,
        };
        let at = |h: u8, m: u8| {
            Some(
                datetime!(2026-11-01 00:00 UTC)
                    .replace_hour(h)
                    .unwrap()
                    .replace_minute(m)
                    .unwrap(),
            )
        };
        assert_eq!(unlisted_log(Some(&cov), at(1, 0)), Unlisted::Invalid);
        assert_eq!(unlisted_log(Some(&cov), at(4, 59)), Unlisted::Invalid);
        assert_eq!(unlisted_log(Some(&cov), at(5, 0)), Unlisted::Pending);
        assert_eq!(
            unlisted_log(Some(&cov), at(2, 30)),
            Unlisted::Unverified(
                "delivered while log file validation was off (2026-11-01T02:00:00Z to \
                 2026-11-01T03:00:00Z)"
                    .to_owned()
            )
        );
        assert_eq!(unlisted_log(Some(&cov), at(3, 0)), Unlisted::Invalid);
        let before = Coverage {
            oldest_start: Some(datetime!(2026-11-01 01:00 UTC)),
            ..cov.clone()
        };
        assert_eq!(
            unlisted_log(Some(&before), at(0, 30)),
            Unlisted::Unverified(
                "delivered before its trail's first digest (2026-11-01T01:00:00Z): log file \
                 validation was off"
                    .to_owned()
            )
        );
        let stale = Coverage {
            stale: true,
            ..cov.clone()
        };
        assert!(matches!(
            unlisted_log(Some(&stale), at(9, 0)),
            Unlisted::Unverified(_)
        ));
        assert!(matches!(
            unlisted_log(None, at(1, 0)),
            Unlisted::Unverified(_)
        ));
        assert!(matches!(
            unlisted_log(Some(&Coverage::default()), at(1, 0)),
            Unlisted::Unverified(_)
        ));
        assert_eq!(unlisted_log(Some(&cov), None), Unlisted::Pending);
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
