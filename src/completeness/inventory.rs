//! Where a member account's CloudTrail files are in its bucket, found through the date layout
//! of their keys, so that a window of days costs a few listings per day and region, never a
//! listing of the whole bucket:
//!
//! ```text
//! [prefix/]AWSLogs/[o-ID/]ACCOUNT/{CloudTrail,CloudTrail-Digest,CloudTrail-Insight}/REGION/YYYY/MM/DD/
//! ```

use time::{Date, Duration, Month, OffsetDateTime};

use crate::aws::listing;
use crate::aws::Failure;
use crate::cloudtrail::key::FileKind;

const KINDS: [FileKind; 3] = [FileKind::Log, FileKind::Digest, FileKind::Insight];

/// How many folders deep a trail's own key prefix (`audit/cloudtrail/`, say) is searched for
/// `AWSLogs/`.
const MAX_PREFIX_DEPTH: usize = 3;
/// At most this many folders are opened in that search, so that a bucket full of other
/// things costs a bounded number of listings.
const MAX_PREFIX_FOLDERS: usize = 200;
/// A window of up to this many days is listed day by day; a longer (or open) one walks the
/// year and month folders first, so that empty years cost one listing, not 365.
const DAY_BY_DAY: i64 = 31;

/// A time window, `since` inclusive, `until` exclusive; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

impl Window {
    pub fn contains(&self, t: OffsetDateTime) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }

    /// Whether `[start, end)` (whole days) meets the window.
    fn meets(&self, start: Date, end: Date) -> bool {
        let start = start.midnight().assume_utc();
        let end = end.midnight().assume_utc();
        self.since.is_none_or(|s| end > s) && self.until.is_none_or(|u| start < u)
    }

    /// The days of a bounded, short window; `None` when it is open or long.
    fn days(&self) -> Option<Vec<Date>> {
        let (since, until) = (self.since?, self.until?);
        let (first, last) = (since.date(), until.date());
        if last < first || (last - first).whole_days() > DAY_BY_DAY {
            return None;
        }
        let mut days = Vec::new();
        let mut day = first;
        while day <= last {
            if self.meets(day, day + Duration::DAY) {
                days.push(day);
            }
            day += Duration::DAY;
        }
        Some(days)
    }
}

/// The places where `account`'s files may be in `bucket`: `[prefix/]AWSLogs/[o-ID/]ACCOUNT/`.
/// Only the account's own folders: another account's files in its bucket are never archived.
pub async fn roots(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    account: &str,
) -> Result<Vec<String>, Failure> {
    roots_under(s3, bucket, "", Some(account)).await
}

/// The same, under `base` (a source bucket's folder in the archive), for one account or, with
/// `None`, every account found there.
pub async fn roots_under(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    base: &str,
    account: Option<&str>,
) -> Result<Vec<String>, Failure> {
    let mut roots = Vec::new();
    let mut frontier = vec![base.to_owned()];
    let mut opened = 0;
    for depth in 0..=MAX_PREFIX_DEPTH {
        let mut next = Vec::new();
        for prefix in frontier {
            if opened == MAX_PREFIX_FOLDERS {
                tracing::warn!(
                    bucket,
                    "stopped looking for AWSLogs/ after {MAX_PREFIX_FOLDERS} folders; a trail \
                     prefix deeper or further in is not listed"
                );
                break;
            }
            opened += 1;
            for folder in listing::folders(s3, bucket, &prefix).await? {
                if folder.ends_with("AWSLogs/") {
                    let mut parents = vec![folder.clone()];
                    for org in listing::folders(s3, bucket, &folder).await? {
                        if org[folder.len()..].starts_with("o-") {
                            parents.push(org);
                        }
                    }
                    for parent in parents {
                        match account {
                            Some(account) => roots.push(format!("{parent}{account}/")),
                            None => {
                                for a in listing::folders(s3, bucket, &parent).await? {
                                    let name = a[parent.len()..].trim_end_matches('/');
                                    if name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit())
                                    {
                                        roots.push(a);
                                    }
                                }
                            }
                        }
                    }
                } else if depth < MAX_PREFIX_DEPTH {
                    next.push(folder);
                }
            }
        }
        frontier = next;
    }
    Ok(roots)
}

/// The day folders (`ROOT/KIND/REGION/YYYY/MM/DD/`) under a root that meet the window, for the
/// given regions (all when empty).
pub async fn days(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    root: &str,
    regions: &[String],
    window: &Window,
) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    for kind in KINDS {
        let kind_prefix = format!("{root}{}/", kind.folder());
        for region_prefix in listing::folders(s3, bucket, &kind_prefix).await? {
            let region = region_prefix[kind_prefix.len()..].trim_end_matches('/');
            if !regions.is_empty() && !regions.iter().any(|r| r == region) {
                continue;
            }
            match window.days() {
                Some(days) => out.extend(days.iter().map(|d| day_folder(&region_prefix, *d))),
                None => walk(s3, bucket, &region_prefix, window, &mut out).await?,
            }
        }
    }
    Ok(out)
}

/// Years, then months, then days, opening only the folders that meet the window.
async fn walk(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    region_prefix: &str,
    window: &Window,
    out: &mut Vec<String>,
) -> Result<(), Failure> {
    for year_prefix in listing::folders(s3, bucket, region_prefix).await? {
        let Some(year) = number(&year_prefix[region_prefix.len()..], 4) else {
            continue;
        };
        let Some((start, end)) = date(year, 1, 1).zip(date(year + 1, 1, 1)) else {
            continue;
        };
        if !window.meets(start, end) {
            continue;
        }
        for month_prefix in listing::folders(s3, bucket, &year_prefix).await? {
            let Some(month) = number(&month_prefix[year_prefix.len()..], 2) else {
                continue;
            };
            let next = if month == 12 {
                date(year + 1, 1, 1)
            } else {
                date(year, month + 1, 1)
            };
            let Some((start, end)) = date(year, month, 1).zip(next) else {
                continue;
            };
            if !window.meets(start, end) {
                continue;
            }
            for day_prefix in listing::folders(s3, bucket, &month_prefix).await? {
                let Some(day) = number(&day_prefix[month_prefix.len()..], 2) else {
                    continue;
                };
                let Some(start) = date(year, month, day) else {
                    continue;
                };
                if window.meets(start, start + Duration::DAY) {
                    out.push(day_prefix);
                }
            }
        }
    }
    Ok(())
}

fn day_folder(region_prefix: &str, day: Date) -> String {
    format!(
        "{region_prefix}{:04}/{:02}/{:02}/",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// `2026/` -> 2026: exactly `digits` digits and the slash.
fn number(folder: &str, digits: usize) -> Option<i32> {
    let n = folder.strip_suffix('/')?;
    (n.len() == digits && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
}

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_short_window_is_listed_day_by_day() {
        let w = Window {
            since: Some(datetime!(2026-11-29 23:00 UTC)),
            until: Some(datetime!(2026-11-30 01:00 UTC)),
        };
        let days: Vec<String> = w
            .days()
            .unwrap()
            .into_iter()
            .map(|d| day_folder("r/", d))
            .collect();
        assert_eq!(days, ["r/2026/11/29/", "r/2026/11/30/"]);

        // `until` is exclusive: a window ending at midnight does not open the next day.
        let w = Window {
            since: Some(datetime!(2026-11-29 10:00 UTC)),
            until: Some(datetime!(2026-11-30 00:00 UTC)),
        };
        assert_eq!(w.days().unwrap().len(), 1);
    }

    #[test]
    fn an_open_or_long_window_walks_the_folders() {
        assert!(Window::default().days().is_none());
        let long = Window {
            since: Some(datetime!(2025-01-01 00:00 UTC)),
            until: Some(datetime!(2026-01-01 00:00 UTC)),
        };
        assert!(long.days().is_none());
        assert!(long.meets(date(2025, 6, 1).unwrap(), date(2025, 7, 1).unwrap()));
        assert!(!long.meets(date(2026, 1, 1).unwrap(), date(2026, 2, 1).unwrap()));
        assert!(!long.meets(date(2024, 12, 1).unwrap(), date(2025, 1, 1).unwrap()));
    }

    #[test]
    fn folder_numbers() {
        assert_eq!(number("2026/", 4), Some(2026));
        assert_eq!(number("07/", 2), Some(7));
        assert_eq!(number("7/", 2), None);
        assert_eq!(number("2026", 4), None);
        assert_eq!(number("20x6/", 4), None);
    }
}
