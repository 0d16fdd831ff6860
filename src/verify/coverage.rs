//! The coverage table: per account, region and hour, the worst of what verify found for that
//! hour. It is what an auditor looks at first ("is March complete for every account?"), in the
//! JSON output and drawn in the HTML report.
//!
//! An hour takes its outcome from the files that speak for it: a log or Insights file from the
//! hour in its name (CloudTrail names a file for its delivery), a digest from the period it
//! covers (an hour with no activity is still vouched for by the digest that lists nothing for
//! it), a missing file from where the evidence that names it says it was. Within the stretch
//! an account and region has anything in the archive, an hour nothing speaks for is a gap.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::archive::layout;

/// What one hour (or one file) came to, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Vouched for by a valid digest (or, for Insights files, a valid manifest).
    Verified,
    /// Newer than the newest digest: the next one should vouch for it.
    Pending,
    /// Nothing can vouch for it (delivered while log file validation was off).
    Unverified,
    /// Nothing in the archive speaks for this hour, though hours around it have files.
    Gap,
    /// Evidence names a file that the archive does not have (or hides behind a delete marker).
    Missing,
    /// A file whose bytes, signature or chain are wrong, or one nothing should have listed.
    Tampered,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Verified,
        Outcome::Pending,
        Outcome::Unverified,
        Outcome::Gap,
        Outcome::Missing,
        Outcome::Tampered,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Verified => "verified",
            Outcome::Pending => "pending",
            Outcome::Unverified => "unverified",
            Outcome::Gap => "gap",
            Outcome::Missing => "missing",
            Outcome::Tampered => "tampered",
        }
    }

    /// What an INVALID verdict's reason means for its hour: the file is not there to read, or
    /// it is there and wrong.
    pub fn of_invalid(reason: &str) -> Outcome {
        // "X; and hidden by a delete marker": X is what the file came to.
        let reason = reason.split("; and ").next().unwrap_or(reason);
        if reason.starts_with("not found")
            || reason.contains("but not in the archive")
            || reason.contains("hidden by a delete marker")
            || reason.starts_with("stale")
        {
            Outcome::Missing
        } else {
            Outcome::Tampered
        }
    }
}

/// The table, as the JSON output carries it. Hours are UTC, `[from, to)`. Each row lists its
/// hours as runs of one outcome; an hour in no run has nothing in the archive for that account
/// and region (before its first file or after its last).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CoverageTable {
    /// The first hour (RFC 3339), `None` when nothing was checked.
    pub from: Option<String>,
    /// The end of the last hour.
    pub to: Option<String>,
    pub rows: Vec<CoverageRow>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CoverageRow {
    pub account: String,
    pub region: String,
    pub runs: Vec<Run>,
}

/// Consecutive hours of one outcome.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Run {
    /// Its first hour (RFC 3339).
    pub from: String,
    pub hours: u32,
    pub outcome: Outcome,
}

impl CoverageTable {
    /// How many hours each outcome has, over every row.
    pub fn hours_by_outcome(&self) -> BTreeMap<Outcome, u64> {
        let mut counts = BTreeMap::new();
        for run in self.rows.iter().flat_map(|r| &r.runs) {
            *counts.entry(run.outcome).or_default() += u64::from(run.hours);
        }
        counts
    }
}

/// Hours since the Unix epoch.
type Hour = i64;

fn hour_of(t: OffsetDateTime) -> Hour {
    t.unix_timestamp().div_euclid(3600)
}

fn hour_start(h: Hour) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(h * 3600).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// What verify found, hour by hour, as it finds it.
#[derive(Debug, Default)]
pub(super) struct Marks {
    by_row: BTreeMap<(String, String), BTreeMap<Hour, Outcome>>,
}

impl Marks {
    /// Every hour `[from, to)` touches (the hour of `from` when the span is empty).
    pub fn span(
        &mut self,
        account: &str,
        region: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
        outcome: Outcome,
    ) {
        let first = hour_of(from);
        let last = if to > from {
            hour_of(to - time::Duration::nanoseconds(1))
        } else {
            first
        };
        // A digest names its own period; a forged one must not make the table unbounded.
        let last = last.min(first + 24 * 366);
        let row = self
            .by_row
            .entry((account.to_owned(), region.to_owned()))
            .or_default();
        for h in first..=last {
            let e = row.entry(h).or_insert(outcome);
            *e = (*e).max(outcome);
        }
    }

    pub fn hour(&mut self, account: &str, region: &str, at: OffsetDateTime, outcome: Outcome) {
        self.span(account, region, at, at, outcome);
    }

    /// The table, limited to `[from, to]` where they are given, never before CloudTrail
    /// existed and never after `not_after` (the time of the check): no CloudTrail file can be
    /// named outside those, and a planted one must not stretch the picture to the year 1 or
    /// 2099. Within each row's first and last marked hour, unmarked hours are gaps. Also says
    /// how many marked hours were left out on either side.
    pub fn table(
        self,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        not_after: OffsetDateTime,
    ) -> (CoverageTable, Outside) {
        let floor = hour_of(CLOUDTRAIL_LAUNCH);
        let limit = hour_of(not_after).max(floor);
        let lo = from.map_or(floor, hour_of).clamp(floor, limit);
        let hi = to.map_or(limit, hour_of).clamp(lo, limit);
        let mut outside = Outside::default();
        let mut rows = Vec::new();
        let (mut first, mut last): (Option<Hour>, Option<Hour>) =
            (from.is_some().then_some(lo), to.is_some().then_some(hi));
        for ((account, region), hours) in self.by_row {
            let mut runs: Vec<Run> = Vec::new();
            // (first hour, hours, outcome) of the run being built; the first and last hours kept.
            let mut current: Option<(Hour, u32, Outcome)> = None;
            let mut earliest: Option<Hour> = None;
            let mut previous: Option<Hour> = None;
            let mut push =
                |runs: &mut Vec<Run>, at: Hour, outcome: Outcome, n: u32| match &mut current {
                    Some((_, len, o)) if *o == outcome => *len += n,
                    _ => {
                        if let Some((start, len, o)) = current.take() {
                            runs.push(run(start, len, o));
                        }
                        current = Some((at, n, outcome));
                    }
                };
            for (h, outcome) in hours {
                if h < floor || (from.is_some() && h < lo) {
                    outside.earlier += u64::from(h < floor);
                    continue;
                }
                if h > limit || h > hi {
                    outside.later += u64::from(h > limit);
                    continue;
                }
                // Unmarked hours between two marked ones: a gap, however long.
                if let Some(p) = previous.filter(|p| h > p + 1) {
                    push(&mut runs, p + 1, Outcome::Gap, (h - p - 1) as u32);
                }
                push(&mut runs, h, outcome, 1);
                earliest.get_or_insert(h);
                previous = Some(h);
            }
            if let Some((start, len, o)) = current {
                runs.push(run(start, len, o));
            }
            let (Some(start), Some(end)) = (earliest, previous) else {
                continue;
            };
            if from.is_none() {
                first = Some(first.map_or(start, |f| f.min(start)));
            }
            if to.is_none() {
                last = Some(last.map_or(end, |l| l.max(end)));
            }
            rows.push(CoverageRow {
                account,
                region,
                runs,
            });
        }
        let table = CoverageTable {
            from: first.map(|h| layout::rfc3339(hour_start(h))),
            to: last.map(|h| layout::rfc3339(hour_start(h + 1))),
            rows,
        };
        (table, outside)
    }
}

/// Marked hours the table leaves out: before CloudTrail existed, or after the check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Outside {
    pub earlier: u64,
    pub later: u64,
}

/// CloudTrail was launched in November 2013: no file of its is named earlier.
const CLOUDTRAIL_LAUNCH: OffsetDateTime = time::macros::datetime!(2013-11-01 00:00 UTC);

fn run(at: Hour, hours: u32, outcome: Outcome) -> Run {
    Run {
        from: layout::rfc3339(hour_start(at)),
        hours,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_worst_outcome_of_an_hour_wins_and_unmarked_hours_inside_are_gaps() {
        let mut m = Marks::default();
        let (a, r) = ("111122223333", "eu-west-1");
        m.span(
            a,
            r,
            datetime!(2026-11-01 00:17 UTC),
            datetime!(2026-11-01 02:17 UTC),
            Outcome::Verified,
        );
        m.hour(a, r, datetime!(2026-11-01 01:05 UTC), Outcome::Tampered);
        m.hour(a, r, datetime!(2026-11-01 01:55 UTC), Outcome::Pending);
        m.hour(a, r, datetime!(2026-11-01 06:00 UTC), Outcome::Unverified);
        m.hour(
            "999922223333",
            r,
            datetime!(2026-11-01 03:59 UTC),
            Outcome::Missing,
        );
        m.hour(a, r, datetime!(2099-01-01 00:00 UTC), Outcome::Pending);
        let (t, outside) = m.table(None, None, datetime!(2026-12-01 00:00 UTC));
        assert_eq!(outside.later, 1, "the planted file of 2099 is left out");
        assert_eq!(t.from.as_deref(), Some("2026-11-01T00:00:00Z"));
        assert_eq!(t.to.as_deref(), Some("2026-11-01T07:00:00Z"));
        let runs = |i: usize| -> Vec<(String, u32, &'static str)> {
            t.rows[i]
                .runs
                .iter()
                .map(|r| (r.from.clone(), r.hours, r.outcome.name()))
                .collect()
        };
        assert_eq!(
            runs(0),
            vec![
                ("2026-11-01T00:00:00Z".to_owned(), 1, "verified"),
                ("2026-11-01T01:00:00Z".to_owned(), 1, "tampered"),
                ("2026-11-01T02:00:00Z".to_owned(), 1, "verified"),
                ("2026-11-01T03:00:00Z".to_owned(), 3, "gap"),
                ("2026-11-01T06:00:00Z".to_owned(), 1, "unverified"),
            ]
        );
        assert_eq!(
            runs(1),
            vec![("2026-11-01T03:00:00Z".to_owned(), 1, "missing")]
        );
        assert_eq!(t.hours_by_outcome()[&Outcome::Gap], 3);
    }

    #[test]
    fn a_scope_limits_the_table_and_names_its_period() {
        let mut m = Marks::default();
        m.span(
            "111122223333",
            "eu-west-1",
            datetime!(2026-11-01 00:00 UTC),
            datetime!(2026-11-03 00:00 UTC),
            Outcome::Verified,
        );
        let (t, _) = m.table(
            Some(datetime!(2026-11-01 10:00 UTC)),
            Some(datetime!(2026-11-04 00:00 UTC)),
            datetime!(2026-12-01 00:00 UTC),
        );
        assert_eq!(t.from.as_deref(), Some("2026-11-01T10:00:00Z"));
        assert_eq!(t.to.as_deref(), Some("2026-11-04T01:00:00Z"));
        assert_eq!(t.rows[0].runs.len(), 1);
        assert_eq!(t.rows[0].runs[0].hours, 38);
    }

    #[test]
    fn a_forged_period_cannot_make_the_table_unbounded() {
        let mut m = Marks::default();
        m.span(
            "111122223333",
            "eu-west-1",
            datetime!(2014-01-01 00:00 UTC),
            datetime!(2100-01-01 00:00 UTC),
            Outcome::Tampered,
        );
        let (t, _) = m.table(None, None, datetime!(2100-01-01 00:00 UTC));
        assert_eq!(t.rows[0].runs[0].hours, 24 * 366 + 1);
    }

    #[test]
    fn files_named_before_cloudtrail_or_after_the_check_are_left_out_without_a_panic() {
        let mut m = Marks::default();
        let (a, r) = ("111122223333", "eu-west-1");
        // Year 0 and year 1 (a planted name), the year 9999, and one real hour.
        m.hour(a, r, datetime!(0000-01-01 00:30 UTC), Outcome::Tampered);
        m.span(
            a,
            r,
            datetime!(0000-01-01 00:00 UTC) - time::Duration::hours(1),
            datetime!(0000-01-01 00:00 UTC),
            Outcome::Missing,
        );
        m.hour(a, r, datetime!(0001-06-01 00:00 UTC), Outcome::Unverified);
        m.hour(a, r, datetime!(9999-12-31 23:00 UTC), Outcome::Pending);
        m.hour(a, r, datetime!(2026-11-01 05:10 UTC), Outcome::Verified);
        let now = datetime!(2026-12-01 00:00 UTC);
        let (t, outside) = m.table(None, None, now);
        assert_eq!(
            outside,
            Outside {
                earlier: 3,
                later: 1
            }
        );
        assert_eq!(t.from.as_deref(), Some("2026-11-01T05:00:00Z"));
        assert_eq!(t.to.as_deref(), Some("2026-11-01T06:00:00Z"));
        // A scope past the check, or before CloudTrail, is clamped too.
        let mut m = Marks::default();
        m.hour(a, r, datetime!(2026-11-01 05:10 UTC), Outcome::Verified);
        let (t, _) = m.table(
            Some(datetime!(0001-01-01 00:00 UTC)),
            Some(datetime!(9999-12-31 00:00 UTC)),
            now,
        );
        assert_eq!(t.from.as_deref(), Some("2013-11-01T00:00:00Z"));
        assert_eq!(t.to.as_deref(), Some("2026-12-01T01:00:00Z"));
    }

    #[test]
    fn invalid_reasons_are_missing_or_tampered() {
        assert_eq!(Outcome::of_invalid("not found"), Outcome::Missing);
        assert_eq!(
            Outcome::of_invalid("listed in manifest 3 but not in the archive"),
            Outcome::Missing
        );
        assert_eq!(
            Outcome::of_invalid("hidden by a delete marker (versionId=x): ..."),
            Outcome::Missing
        );
        assert_eq!(
            Outcome::of_invalid("hash value doesn't match"),
            Outcome::Tampered
        );
        assert_eq!(
            Outcome::of_invalid("SHA-256 doesn't match manifest 2; and hidden by a delete marker"),
            Outcome::Tampered
        );
        assert_eq!(
            Outcome::of_invalid("not listed in any digest"),
            Outcome::Tampered
        );
    }
}
