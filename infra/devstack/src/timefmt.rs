//! The timestamp spellings CloudTrail uses.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

const EVENT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
const LOG_STAMP: &[FormatItem<'static>] = format_description!("[year][month][day]T[hour][minute]Z");
const DIGEST_STAMP: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
const DATE_PATH: &[FormatItem<'static>] = format_description!("[year]/[month]/[day]");

fn fmt(t: OffsetDateTime, f: &[FormatItem<'static>]) -> String {
    t.format(f).expect("UTC timestamps always format")
}

/// `2026-11-01T00:05:00Z`: record `eventTime`, digest start and end times.
pub fn event(t: OffsetDateTime) -> String {
    fmt(t, EVENT)
}

/// `20261101T0005Z`: log file names.
pub fn log_stamp(t: OffsetDateTime) -> String {
    fmt(t, LOG_STAMP)
}

/// `20261101T000500Z`: digest file names.
pub fn digest_stamp(t: OffsetDateTime) -> String {
    fmt(t, DIGEST_STAMP)
}

/// `2026/11/01`: the date folders.
pub fn date_path(t: OffsetDateTime) -> String {
    fmt(t, DATE_PATH)
}

/// Reads an RFC 3339 time (`2026-11-01T00:00:00Z`).
pub fn parse(s: &str) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|e| {
        anyhow::anyhow!("{s:?} is not an RFC 3339 time like 2026-11-01T00:00:00Z: {e}")
    })
}
