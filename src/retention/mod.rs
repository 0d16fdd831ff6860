//! Retention: the policy in `[retention]` is the single truth, and this module keeps the
//! archive equal to it.
//!
//! - [`policy`]: the policy's types (the lock, the lifecycle, what to do about drift);
//! - [`lock`]: a lock in S3's terms, and the one action that sets or extends one;
//! - [`bucket`]: the archive bucket's own configuration (Object Lock default retention,
//!   versioning, lifecycle rules) as settings, compared with the policy's;
//!   [`archive_bucket`] reads it from S3 and makes it equal to the policy;
//! - [`audit`]: every archived version's lock compared with the policy, and extended where
//!   it falls short (never shortened);
//! - [`hold`]: legal holds for investigations, with who, when and why;
//! - [`cleanup`]: deleting source objects, but only those the archive holds byte for byte.
//!
//! [`judge`] is the one place that decides whether a version's lock is what the policy
//! wants, for the worker (a duplicate whose lock fell short), the audit and source cleanup
//! alike; [`archived_at`] says from when the policy counts.

use time::OffsetDateTime;

use self::policy::{Lock, LockMode, RetentionPeriod};

pub mod archive_bucket;
pub mod audit;
pub mod bucket;
pub mod cleanup;
pub mod hold;
pub mod lock;
pub mod policy;

/// When a version archived at `from` may first be deleted: the period later, rounded up to
/// the second. Years are calendar years (29 February becomes 28 February when needed).
pub fn retain_until(from: OffsetDateTime, period: RetentionPeriod) -> OffsetDateTime {
    let from = if from.nanosecond() > 0 {
        from.replace_nanosecond(0).unwrap_or(from) + time::Duration::seconds(1)
    } else {
        from
    };
    match period {
        RetentionPeriod::Days(days) => from + time::Duration::days(i64::from(days)),
        RetentionPeriod::Years(years) => {
            let year = from.year() + years as i32;
            from.replace_year(year)
                .or_else(|_| from.replace_day(28).and_then(|f| f.replace_year(year)))
                .unwrap_or(from + time::Duration::days(365 * i64::from(years)))
        }
    }
}

/// How much later than trailvault's own stamp S3 may record a version it wrote. The copy
/// stamps `trailvault-archived-at` (and counts the lock from it) before it writes; S3 records
/// the version's last-modified time when the write completes. A long multipart upload and the
/// skew between the two clocks (S3 refuses requests signed more than 15 minutes off) fit.
pub const STAMP_ALLOWANCE: time::Duration = time::Duration::hours(1);

/// When a version counts as archived, for judging its lock: trailvault's stamp (user metadata,
/// which whoever writes a version chooses), but never more than [`STAMP_ALLOWANCE`] before
/// the time S3 itself recorded, so that a backdated stamp cannot make a short lock look held.
/// A version without a stamp counts from S3's time.
pub fn archived_at(
    stamp: Option<OffsetDateTime>,
    stored: Option<OffsetDateTime>,
) -> Option<OffsetDateTime> {
    match (stamp, stored) {
        (Some(stamp), Some(stored)) => Some(stamp.max(stored - STAMP_ALLOWANCE)),
        (stamp, stored) => stored.or(stamp),
    }
}

/// How a version's lock stands against the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// At least what the policy asks.
    Held,
    /// No retention at all.
    Missing,
    /// GOVERNANCE where the policy says COMPLIANCE: deletable by anyone allowed to bypass.
    WeakerMode,
    /// Retained for less time than the policy gives it from when it was archived.
    Short,
    /// COMPLIANCE where the policy says GOVERNANCE: stricter than asked, and S3 never lets
    /// it be weakened. Reported, not changed.
    StricterMode,
}

impl std::fmt::Display for Standing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl Standing {
    pub fn label(self) -> &'static str {
        match self {
            Standing::Held => "held",
            Standing::Missing => "missing",
            Standing::WeakerMode => "weaker_mode",
            Standing::Short => "short",
            Standing::StricterMode => "stricter_mode",
        }
    }

    /// Whether the version falls short of the policy (a stricter lock does not).
    pub fn falls_short(self) -> bool {
        matches!(
            self,
            Standing::Missing | Standing::WeakerMode | Standing::Short
        )
    }
}

/// The verdict on one version's lock, and the retention that would make it good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    pub standing: Standing,
    /// What the policy asks of this version: retained until then, at least.
    pub due: OffsetDateTime,
    /// The retention to set, when it falls short: never a weaker mode, never a shorter date.
    pub fix: Option<(LockMode, OffsetDateTime)>,
}

/// Judges a version archived at `archived_at`, locked in `mode` until `until` (either may be
/// missing), against `lock`.
pub fn judge(
    lock: Lock,
    archived_at: OffsetDateTime,
    mode: Option<LockMode>,
    until: Option<OffsetDateTime>,
) -> Judgement {
    let due = retain_until(archived_at, lock.period);
    let standing = match (mode, until) {
        (None, _) | (_, None) => Standing::Missing,
        (Some(LockMode::Governance), _) if lock.mode == LockMode::Compliance => {
            Standing::WeakerMode
        }
        (Some(_), Some(until)) if until < due => Standing::Short,
        (Some(LockMode::Compliance), _) if lock.mode == LockMode::Governance => {
            Standing::StricterMode
        }
        _ => Standing::Held,
    };
    let fix = standing.falls_short().then(|| {
        // A COMPLIANCE lock stays COMPLIANCE; a date already later than due stays.
        let mode = match mode {
            Some(LockMode::Compliance) => LockMode::Compliance,
            _ => lock.mode,
        };
        let until = until.map_or(due, |u| u.max(due));
        (mode, until)
    });
    Judgement { standing, due, fix }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn retention_counts_from_the_archive_time() {
        let t = datetime!(2026-11-21 12:00:00.5 UTC);
        assert_eq!(
            retain_until(t, RetentionPeriod::Days(1)),
            datetime!(2026-11-22 12:00:01 UTC)
        );
        assert_eq!(
            retain_until(t, RetentionPeriod::Years(7)),
            datetime!(2033-11-21 12:00:01 UTC)
        );
        let leap = datetime!(2028-02-29 00:00:00 UTC);
        assert_eq!(
            retain_until(leap, RetentionPeriod::Years(1)),
            datetime!(2029-02-28 00:00:00 UTC)
        );
        assert_eq!(
            retain_until(leap, RetentionPeriod::Years(4)),
            datetime!(2032-02-29 00:00:00 UTC)
        );
    }

    #[test]
    fn a_backdated_stamp_counts_no_earlier_than_s3_allows() {
        let stored = datetime!(2026-11-21 12:00:00 UTC);
        let just_before = datetime!(2026-11-21 11:59:58 UTC);
        // trailvault stamps just before S3 stores: the stamp counts, as the worker locked.
        assert_eq!(
            archived_at(Some(just_before), Some(stored)),
            Some(just_before)
        );
        // A stamp years before S3 saw the version is a lie; S3's time less the allowance.
        assert_eq!(
            archived_at(Some(datetime!(2020-01-01 00:00:00 UTC)), Some(stored)),
            Some(datetime!(2026-11-21 11:00:00 UTC))
        );
        // A stamp after S3's time only makes the policy ask more.
        let later = datetime!(2027-01-01 00:00:00 UTC);
        assert_eq!(archived_at(Some(later), Some(stored)), Some(later));
        assert_eq!(archived_at(None, Some(stored)), Some(stored));
        assert_eq!(archived_at(Some(later), None), Some(later));
        assert_eq!(archived_at(None, None), None);
    }

    #[test]
    fn a_lock_is_judged_and_only_ever_strengthened() {
        let compliance = Lock {
            mode: LockMode::Compliance,
            period: RetentionPeriod::Days(10),
        };
        let governance = Lock {
            mode: LockMode::Governance,
            ..compliance
        };
        let at = datetime!(2026-01-01 00:00:00 UTC);
        let due = datetime!(2026-01-11 00:00:00 UTC);
        let later = datetime!(2027-01-01 00:00:00 UTC);
        let early = datetime!(2026-01-05 00:00:00 UTC);
        use LockMode::*;
        let cases = [
            (
                compliance,
                Some(Compliance),
                Some(due),
                Standing::Held,
                None,
            ),
            (
                compliance,
                Some(Compliance),
                Some(later),
                Standing::Held,
                None,
            ),
            (
                compliance,
                None,
                None,
                Standing::Missing,
                Some((Compliance, due)),
            ),
            (
                compliance,
                Some(Compliance),
                Some(early),
                Standing::Short,
                Some((Compliance, due)),
            ),
            (
                compliance,
                Some(Governance),
                Some(later),
                Standing::WeakerMode,
                Some((Compliance, later)),
            ),
            (
                governance,
                Some(Compliance),
                Some(due),
                Standing::StricterMode,
                None,
            ),
            // Stricter, but short: extended, and it stays COMPLIANCE.
            (
                governance,
                Some(Compliance),
                Some(early),
                Standing::Short,
                Some((Compliance, due)),
            ),
            (
                governance,
                Some(Governance),
                Some(due),
                Standing::Held,
                None,
            ),
        ];
        for (lock, mode, until, standing, fix) in cases {
            let j = judge(lock, at, mode, until);
            assert_eq!(
                (j.standing, j.fix),
                (standing, fix),
                "{lock} against {mode:?} {until:?}"
            );
            assert_eq!(j.due, due);
        }
    }
}
