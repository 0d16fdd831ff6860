//! CloudTrail's object key layout, parsed strictly.
//!
//! ```text
//! [prefix/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE16.json.gz
//! [prefix/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail-Digest/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOMEREGION_YYYYMMDDTHHMMSSZ[_backfill].json.gz
//! [prefix/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail-Insight/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail-Insight_REGION_YYYYMMDDTHHmmZ_UNIQUE16.json.gz
//! ```
//!
//! The parser reads the fixed tail of the key from the end, so a prefix may contain anything,
//! even `AWSLogs/`. The account in the path and in the file name must agree: that is what lets
//! the worker refuse a member account planting files under another account's name.

use std::fmt;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// What a CloudTrail object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Log,
    Digest,
    Insight,
}

impl FileKind {
    /// The folder name CloudTrail uses, which is also the type word in the file name.
    pub fn folder(self) -> &'static str {
        match self {
            FileKind::Log => "CloudTrail",
            FileKind::Digest => "CloudTrail-Digest",
            FileKind::Insight => "CloudTrail-Insight",
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Log => "log",
            FileKind::Digest => "digest",
            FileKind::Insight => "insight",
        })
    }
}

/// The parts of a CloudTrail object key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudTrailKey<'a> {
    /// Everything before `AWSLogs/`, with its trailing slash; empty when there is none.
    pub prefix: &'a str,
    /// `o-...` for organization trails.
    pub organization_id: Option<&'a str>,
    pub account: &'a str,
    pub kind: FileKind,
    /// The region whose activity the file records (the delivering region for digests).
    pub region: &'a str,
    /// The date folders, `YYYY/MM/DD`.
    pub date: &'a str,
    /// The timestamp in the file name: `YYYYMMDDTHHmmZ` for logs and insights,
    /// `YYYYMMDDTHHMMSSZ` for digests.
    pub timestamp: &'a str,
    /// Digests only: the trail's name and home region, and whether it is a backfill digest.
    pub trail: Option<DigestTrail<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestTrail<'a> {
    pub name: &'a str,
    pub home_region: &'a str,
    pub backfill: bool,
}

/// Why a key is not a CloudTrail key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key:?} is not a CloudTrail object key: {reason}")]
pub struct KeyError {
    pub key: String,
    pub reason: &'static str,
}

/// Parses a CloudTrail object key (already URL-decoded).
pub fn parse(key: &str) -> Result<CloudTrailKey<'_>, KeyError> {
    let fail = |reason| KeyError {
        key: key.to_owned(),
        reason,
    };
    // From the end: FILE, DD, MM, YYYY, REGION, KIND, ACCOUNT, [o-ID,] AWSLogs, [prefix...]
    let mut parts = key.rsplitn(8, '/');
    let file = parts.next().ok_or_else(|| fail("no file name"))?;
    let dd = parts.next().ok_or_else(|| fail("no date folders"))?;
    let mm = parts.next().ok_or_else(|| fail("no date folders"))?;
    let yyyy = parts.next().ok_or_else(|| fail("no date folders"))?;
    let region = parts.next().ok_or_else(|| fail("no region folder"))?;
    let kind = match parts.next().ok_or_else(|| fail("no CloudTrail folder"))? {
        "CloudTrail" => FileKind::Log,
        "CloudTrail-Digest" => FileKind::Digest,
        "CloudTrail-Insight" => FileKind::Insight,
        _ => {
            return Err(fail(
                "no CloudTrail, CloudTrail-Digest or CloudTrail-Insight folder",
            ))
        }
    };
    let account = parts.next().ok_or_else(|| fail("no account folder"))?;
    let head = parts.next().ok_or_else(|| fail("no AWSLogs folder"))?;

    let (before, organization_id) = if let Some(before) = head.strip_suffix("AWSLogs") {
        (before, None)
    } else {
        let (rest, org) = head
            .rsplit_once('/')
            .ok_or_else(|| fail("no AWSLogs folder"))?;
        let before = rest
            .strip_suffix("AWSLogs")
            .ok_or_else(|| fail("no AWSLogs folder"))?;
        if !is_organization_id(org) {
            return Err(fail(
                "the folder after AWSLogs is neither an account id nor o-ORGID",
            ));
        }
        (before, Some(org))
    };
    if !(before.is_empty() || before.ends_with('/')) {
        return Err(fail("AWSLogs is not a whole folder name"));
    }
    if !is_account(account) {
        return Err(fail("the account folder is not a 12-digit account id"));
    }
    if !is_region(region) {
        return Err(fail("the region folder is not a region name"));
    }
    let date_ok = yyyy.len() == 4
        && mm.len() == 2
        && dd.len() == 2
        && all_digits(yyyy)
        && all_digits(mm)
        && all_digits(dd);
    if !date_ok {
        return Err(fail("the date folders are not YYYY/MM/DD"));
    }
    let date = &key[key.len() - file.len() - 11..key.len() - file.len() - 1];

    let stem = file
        .strip_suffix(".json.gz")
        .ok_or_else(|| fail("the file name does not end in .json.gz"))?;
    let after_account = stem
        .strip_prefix(account)
        .and_then(|s| s.strip_prefix('_'))
        .ok_or_else(|| fail("the file name does not start with the account folder's id"))?;
    let after_kind = after_account
        .strip_prefix(kind.folder())
        .and_then(|s| s.strip_prefix('_'))
        .ok_or_else(|| fail("the file name's type does not match its folder"))?;
    let after_region = after_kind
        .strip_prefix(region)
        .and_then(|s| s.strip_prefix('_'))
        .ok_or_else(|| fail("the file name's region does not match its folder"))?;
    let compact_date = format!("{yyyy}{mm}{dd}");

    let (timestamp, trail) = match kind {
        FileKind::Log | FileKind::Insight => {
            let (timestamp, unique) = after_region
                .split_once('_')
                .ok_or_else(|| fail("the file name has no unique suffix"))?;
            if !is_timestamp(timestamp, 14) {
                return Err(fail("the file name's timestamp is not YYYYMMDDTHHmmZ"));
            }
            if unique.len() != 16 || !unique.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(fail(
                    "the file name's unique suffix is not 16 letters or digits",
                ));
            }
            (timestamp, None)
        }
        FileKind::Digest => {
            let (rest, backfill) = match after_region.strip_suffix("_backfill") {
                Some(rest) => (rest, true),
                None => (after_region, false),
            };
            let (rest, timestamp) = rest
                .rsplit_once('_')
                .ok_or_else(|| fail("the digest file name has no timestamp"))?;
            let (name, home_region) = rest
                .rsplit_once('_')
                .ok_or_else(|| fail("the digest file name has no trail name and home region"))?;
            if !is_timestamp(timestamp, 16) {
                return Err(fail(
                    "the digest file name's timestamp is not YYYYMMDDTHHMMSSZ",
                ));
            }
            if name.is_empty() || !is_region(home_region) {
                return Err(fail(
                    "the digest file name has no trail name and home region",
                ));
            }
            (
                timestamp,
                Some(DigestTrail {
                    name,
                    home_region,
                    backfill,
                }),
            )
        }
    };
    if timestamp[..8] != compact_date {
        return Err(fail("the file name's date does not match its date folders"));
    }
    Ok(CloudTrailKey {
        prefix: before,
        organization_id,
        account,
        kind,
        region,
        date,
        timestamp,
        trail,
    })
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && all_digits(s)
}

fn is_organization_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|id| {
        (10..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn is_region(s: &str) -> bool {
    crate::config::Region::parse(s).is_ok()
}

/// `YYYYMMDDTHHmmZ` (14 characters) or `YYYYMMDDTHHMMSSZ` (16).
fn is_timestamp(s: &str, len: usize) -> bool {
    // ASCII first: the byte slices below must fall on character boundaries.
    s.len() == len
        && s.is_ascii()
        && all_digits(&s[..8])
        && &s[8..9] == "T"
        && all_digits(&s[9..len - 1])
        && s.ends_with('Z')
}

impl CloudTrailKey<'_> {
    /// The time in the file name (UTC).
    pub fn time(&self) -> Option<OffsetDateTime> {
        stamp_time(self.timestamp)
    }
}

/// The time in a CloudTrail file name: `YYYYMMDDTHHmmZ` (logs, insights) or
/// `YYYYMMDDTHHMMSSZ` (digests).
pub fn stamp_time(stamp: &str) -> Option<OffsetDateTime> {
    if !stamp.is_ascii() {
        return None;
    }
    let s = stamp.strip_suffix('Z')?;
    let (day, clock) = s.split_once('T')?;
    if day.len() != 8 || !(clock.len() == 4 || clock.len() == 6) {
        return None;
    }
    let n = |s: &str| -> Option<u16> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let byte = |s: &str| n(s).and_then(|v| u8::try_from(v).ok());
    let month = Month::try_from(byte(&day[4..6])?).ok()?;
    let date = Date::from_calendar_date(i32::from(n(&day[..4])?), month, byte(&day[6..])?).ok()?;
    let seconds = if clock.len() == 6 {
        byte(&clock[4..])?
    } else {
        0
    };
    let time = Time::from_hms(byte(&clock[..2])?, byte(&clock[2..4])?, seconds).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
mod tests {
    /// Found by tests/fuzz.rs: a member account's key with a wide character where the time's
    /// digits go panicked on a byte slice inside it (the sweep stopped for good, a backfill
    /// exited 101).
    #[test]
    fn wide_characters_in_the_time_are_refused_not_a_panic() {
        // Fourteen bytes, as a log file's time must be, the last four one character.
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21/111122223333_CloudTrail_us-east-1_20261121T1\u{1d11e}_AbCdEf0123456789.json.gz";
        assert!(matches!(parse(key), Err(e) if e.to_string().contains("timestamp")));
        assert_eq!(stamp_time("20261121T09\u{e9}Z"), None);
        assert_eq!(stamp_time("2026112\u{e9}T0905Z"), None);
    }

    use super::*;

    #[test]
    fn log_digest_and_insight_keys() {
        let log = parse("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21/111122223333_CloudTrail_us-east-1_20261121T0905Z_AbCdEf0123456789.json.gz").unwrap();
        assert_eq!(log.kind, FileKind::Log);
        assert_eq!(log.prefix, "");
        assert_eq!(log.account, "111122223333");
        assert_eq!(log.region, "us-east-1");
        assert_eq!(log.date, "2026/11/21");
        assert_eq!(log.timestamp, "20261121T0905Z");
        assert_eq!(log.organization_id, None);

        let digest = parse("audit/prod/AWSLogs/o-aa111bb222/111122223333/CloudTrail-Digest/eu-west-1/2026/11/21/111122223333_CloudTrail-Digest_eu-west-1_org_trail_us-east-1_20261121T100131Z.json.gz").unwrap();
        assert_eq!(digest.kind, FileKind::Digest);
        assert_eq!(digest.prefix, "audit/prod/");
        assert_eq!(digest.organization_id, Some("o-aa111bb222"));
        assert_eq!(digest.timestamp, "20261121T100131Z");
        let trail = digest.trail.unwrap();
        assert_eq!(
            (trail.name, trail.home_region, trail.backfill),
            ("org_trail", "us-east-1", false)
        );

        let backfill = parse("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/21/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20261121T100131Z_backfill.json.gz").unwrap();
        assert!(backfill.trail.unwrap().backfill);

        let insight = parse("AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/11/21/111122223333_CloudTrail-Insight_us-east-1_20261121T0905Z_AbCdEf0123456789.json.gz").unwrap();
        assert_eq!(insight.kind, FileKind::Insight);
    }

    #[test]
    fn a_prefix_may_itself_contain_awslogs() {
        let k = parse("AWSLogs/old/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21/111122223333_CloudTrail_us-east-1_20261121T0905Z_AbCdEf0123456789.json.gz").unwrap();
        assert_eq!(k.prefix, "AWSLogs/old/");
    }

    #[test]
    fn keys_that_are_not_cloudtrail_files() {
        let good = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21/111122223333_CloudTrail_us-east-1_20261121T0905Z_AbCdEf0123456789.json.gz";
        let bad = [
            // another account in the file name than in the path: a planted file
            good.replace("/111122223333_", "/999988887777_"),
            // file region disagrees with its folder
            good.replace("_us-east-1_", "_eu-west-1_"),
            // date folders disagree with the timestamp
            good.replace("/2026/11/21/", "/2026/11/20/"),
            good.replace(".json.gz", ".json"),
            good.replace("AbCdEf0123456789", "short"),
            good.replace("/CloudTrail/", "/Trail/"),
            good.replace("AWSLogs/", "Logs/"),
            good.replace("AWSLogs/", "MyAWSLogs/"),
            good.replace("AWSLogs/", "AWSLogs/not-an-org/"),
            good.replace("111122223333", "1111"),
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/21/111122223333_CloudTrail-Digest_us-east-1_20261121T100131Z.json.gz".to_owned(),
            String::new(),
        ];
        for key in bad {
            assert!(parse(&key).is_err(), "accepted {key:?}");
        }
    }

    #[test]
    fn file_name_times() {
        use time::macros::datetime;
        assert_eq!(
            stamp_time("20261101T0105Z"),
            Some(datetime!(2026-11-01 01:05:00 UTC))
        );
        assert_eq!(
            stamp_time("20261101T014922Z"),
            Some(datetime!(2026-11-01 01:49:22 UTC))
        );
        assert_eq!(stamp_time("2026110"), None);
        for bad in [
            "20261130T01Z",
            "20261330T0105Z",
            "2026113OT0105Z",
            "20261130T0105",
        ] {
            assert_eq!(stamp_time(bad), None, "{bad}");
        }
    }
}
