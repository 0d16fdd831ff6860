//! Which member account an object belongs to, and where it goes in the archive.
//!
//! The bucket decides the account (from the configuration), and the key must agree: a
//! CloudTrail key names its account twice (`AWSLogs/[o-ID/]ACCOUNT/...` and the file name), and
//! both must be the bucket's account. Otherwise a member account could plant files under
//! another account's name. Anything that is not a CloudTrail key is refused too.
//!
//! Before any of that, the key itself must be safe to carry: it becomes part of an archive
//! key, of log lines and of `verify`'s line-oriented report, so a key that could forge a line,
//! reorder what a reader sees, resolve elsewhere as a path, or not fit the archive layout is
//! refused ([`unsafe_key`]).

use std::fmt;

use super::layout::{archive_key, longest_source_key, printable};
use crate::cloudtrail::key::{self, FileKind};
use crate::config::{Account, Config, SourceBucket};
use crate::notification::ObjectRef;

/// Where an object comes from and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Route<'c> {
    pub account: &'c Account,
    pub bucket: &'c SourceBucket,
    pub kind: FileKind,
    pub archive_key: String,
}

/// Why an object is not archived. Bucket and key come from outside (a notification, a
/// listing): they are printed through [`printable`], so that no message can forge a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "bucket {} is not a source bucket of any configured account; add it to the \
         account's [[accounts.buckets]], or stop its notifications",
        printable(.bucket)
    )]
    UnknownBucket { bucket: String },
    #[error(
        "s3://{}/{} refused: {reason}; a notification of it is parked on the dead-letter \
         queue: delete the object, or fix the trail's prefix",
        printable(.bucket),
        printable(.key)
    )]
    UnsafeKey {
        bucket: String,
        key: String,
        reason: Unsafe,
    },
    #[error(
        "s3://{}/{} is not a CloudTrail file: {reason}",
        printable(.bucket),
        printable(.key)
    )]
    NotCloudTrail {
        bucket: String,
        key: String,
        reason: &'static str,
    },
    #[error(
        "s3://{}/{} names account {key_account}, but {} belongs to account \
         {bucket_account}: refused, a member account may not write another account's logs",
        printable(.bucket),
        printable(.key),
        printable(.bucket)
    )]
    AccountMismatch {
        bucket: String,
        key: String,
        bucket_account: String,
        key_account: String,
    },
}

impl Refusal {
    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::UnknownBucket { .. } => "unknown_bucket",
            Refusal::UnsafeKey { .. } => "unsafe_key",
            Refusal::NotCloudTrail { .. } => "not_cloudtrail",
            Refusal::AccountMismatch { .. } => "account_mismatch",
        }
    }
}

/// What makes a key unsafe to carry into the archive, a log line or a report. No key
/// CloudTrail writes has any of these: its prefix is the only part a trail's owner chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsafe {
    /// A control character (C0, DEL, C1), which can end a line or drive a terminal, or one
    /// that reorders or hides text (bidirectional controls, zero-width characters); `at` is
    /// its byte offset.
    Character { at: usize, c: char },
    /// A `.` or `..` segment: whatever reads archive keys as paths resolves it elsewhere.
    DotSegment(&'static str),
    /// `//`, or a `/` at either end: such a key aliases another once paths are normalised.
    EmptySegment,
    /// Longer than the archive layout holds for the bucket: its archive key or the conflict
    /// key beside it would not fit S3's limit, and S3 would refuse the write after the read.
    TooLong { bytes: usize, limit: usize },
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsafe::Character { at, c } => write!(
                f,
                "a CloudTrail key never holds a control or invisible character, and this one \
                 holds {} at byte {at}",
                c.escape_default()
            ),
            Unsafe::DotSegment(dots) => write!(
                f,
                "a CloudTrail key never holds a `{dots}` path segment, and this one does"
            ),
            Unsafe::EmptySegment => f.write_str(
                "a CloudTrail key never holds an empty path segment (`//`, or a `/` at the \
                 start or end), and this one does",
            ),
            Unsafe::TooLong { bytes, limit } => write!(
                f,
                "the key is {bytes} bytes long, and the archive holds at most {limit} for this \
                 bucket (its archive key and the conflict key beside it must fit S3's {} \
                 bytes; a shorter archive.key_prefix leaves more)",
                super::layout::MAX_KEY_BYTES
            ),
        }
    }
}

/// The set [`printable`] escapes besides control characters: bidirectional overrides and
/// isolates, zero-width characters and the byte-order mark.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// What makes `key` unsafe, if anything; `longest` is the most bytes the archive layout holds
/// for its bucket ([`longest_source_key`]). Characters are looked at first: they are what
/// forges a line.
pub fn unsafe_key(key: &str, longest: usize) -> Option<Unsafe> {
    if let Some((at, c)) = key
        .char_indices()
        .find(|&(_, c)| c.is_control() || invisible(c))
    {
        return Some(Unsafe::Character { at, c });
    }
    for segment in key.split('/') {
        match segment {
            "" => return Some(Unsafe::EmptySegment),
            "." => return Some(Unsafe::DotSegment(".")),
            ".." => return Some(Unsafe::DotSegment("..")),
            _ => {}
        }
    }
    (key.len() > longest).then_some(Unsafe::TooLong {
        bytes: key.len(),
        limit: longest,
    })
}

/// Decides an object's account and archive key, or refuses it, among the configured accounts.
pub fn route<'c>(config: &'c Config, object: &ObjectRef) -> Result<Route<'c>, Refusal> {
    route_among(&config.accounts, &config.archive.key_prefix, object)
}

/// [`route`] among a given set of accounts (the configured ones and those discovered).
pub fn route_among<'c>(
    accounts: &'c [Account],
    key_prefix: &str,
    object: &ObjectRef,
) -> Result<Route<'c>, Refusal> {
    // First, whatever the bucket: an unsafe key is unsafe in any account, and must not wait
    // for discovery to learn a bucket before it is parked.
    if let Some(reason) = unsafe_key(&object.key, longest_source_key(key_prefix, &object.bucket)) {
        return Err(Refusal::UnsafeKey {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            reason,
        });
    }
    let (account, bucket) = accounts
        .iter()
        .find_map(|a| {
            a.buckets
                .iter()
                .find(|b| b.name.as_str() == object.bucket)
                .map(|b| (a, b))
        })
        .ok_or_else(|| Refusal::UnknownBucket {
            bucket: object.bucket.clone(),
        })?;
    let parsed = key::parse(&object.key).map_err(|e| Refusal::NotCloudTrail {
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        reason: e.reason,
    })?;
    if parsed.account != account.id.as_str() {
        return Err(Refusal::AccountMismatch {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            bucket_account: account.id.to_string(),
            key_account: parsed.account.to_owned(),
        });
    }
    Ok(Route {
        account,
        bucket,
        kind: parsed.kind,
        archive_key: archive_key(key_prefix, &object.bucket, &object.key),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const CONFIG: &str = r#"
        [archive]
        bucket = "archive"
        region = "us-east-1"
        kms_key = "alias/archive"
        key_prefix = "ct/"
        [[queues]]
        url = "https://sqs.us-east-1.amazonaws.com/111111111111/q"
        [[accounts]]
        id = "222222222222"
        reader_role_arn = "arn:aws:iam::222222222222:role/r"
        external_id = "ext-1"
        [[accounts.buckets]]
        name = "trail-a"
        region = "us-east-1"
        [[accounts]]
        id = "333333333333"
        reader_role_arn = "arn:aws:iam::333333333333:role/r"
        external_id = "ext-2"
        [[accounts.buckets]]
        name = "trail-b"
        region = "us-east-1"
        [retention]
        mode = "GOVERNANCE"
        days = 1
    "#;

    fn object(bucket: &str, key: &str) -> ObjectRef {
        ObjectRef {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: None,
            size: None,
            etag: None,
            event_time: None,
        }
    }

    fn log_key(account: &str) -> String {
        format!("AWSLogs/o-abcdefghij/{account}/CloudTrail/us-east-1/2026/11/01/{account}_CloudTrail_us-east-1_20261101T0036Z_Fbwb0dU5sXa27Nsd.json.gz")
    }

    #[test]
    fn the_bucket_decides_and_the_key_agrees() {
        let config = Config::from_toml(CONFIG, Path::new("t.toml")).unwrap();
        let key = log_key("333333333333");
        let route = route(&config, &object("trail-b", &key)).unwrap();
        assert_eq!(route.account.id.as_str(), "333333333333");
        assert_eq!(route.kind, FileKind::Log);
        assert_eq!(route.archive_key, format!("ct/trail-b/{key}"));
        assert_eq!(
            crate::archive::layout::source_of("ct/", &route.archive_key),
            Some(("trail-b", key.as_str()))
        );
    }

    #[test]
    fn refusals() {
        let config = Config::from_toml(CONFIG, Path::new("t.toml")).unwrap();
        let planted = route(&config, &object("trail-a", &log_key("333333333333"))).unwrap_err();
        assert_eq!(planted.label(), "account_mismatch");
        assert!(
            planted.to_string().contains("names account 333333333333"),
            "{planted}"
        );
        let unknown = route(&config, &object("elsewhere", &log_key("222222222222"))).unwrap_err();
        assert_eq!(unknown.label(), "unknown_bucket");
        let other = route(
            &config,
            &object("trail-a", "AWSLogs/222222222222/Config/x.json"),
        )
        .unwrap_err();
        assert_eq!(other.label(), "not_cloudtrail");
    }

    /// `trail-a`'s log key behind `prefix`, refused as `reason`.
    fn refused(prefix: &str, reason: Unsafe) -> (String, Refusal) {
        let key = format!("{prefix}{}", log_key("222222222222"));
        let refusal = Refusal::UnsafeKey {
            bucket: "trail-a".to_owned(),
            key: key.clone(),
            reason,
        };
        (key, refusal)
    }

    #[test]
    fn unsafe_keys_are_refused_before_anything_else() {
        let config = Config::from_toml(CONFIG, Path::new("t.toml")).unwrap();
        let character = |at, c| Unsafe::Character { at, c };
        let cases = [
            // What forges a line of a text log or a tab-separated report.
            ("x\r/", character(1, '\r')),
            ("x\n/", character(1, '\n')),
            ("x\t/", character(1, '\t')),
            ("\0/", character(0, '\0')),
            ("a\u{1b}[2K/", character(1, '\u{1b}')),
            ("del\u{7f}/", character(3, '\u{7f}')),
            // C1: NEL ends a line for some readers, CSI drives some terminals.
            ("nel\u{85}/", character(3, '\u{85}')),
            ("csi\u{9b}/", character(3, '\u{9b}')),
            // What reorders or hides what a reader sees; `\u{e9}` is two bytes.
            ("caf\u{e9}\u{202e}/", character(5, '\u{202e}')),
            ("\u{200b}/", character(0, '\u{200b}')),
            // The line and paragraph separators end a line for some readers.
            ("a\u{2028}b/", character(1, '\u{2028}')),
            ("a\u{2029}b/", character(1, '\u{2029}')),
            ("\u{200f}/", character(0, '\u{200f}')),
            ("\u{202a}/", character(0, '\u{202a}')),
            ("\u{2066}/", character(0, '\u{2066}')),
            ("\u{2069}/", character(0, '\u{2069}')),
            ("\u{feff}/", character(0, '\u{feff}')),
            // A character wins over a segment.
            ("../\r/", character(3, '\r')),
            // What resolves elsewhere as a path.
            ("../", Unsafe::DotSegment("..")),
            ("a/../", Unsafe::DotSegment("..")),
            ("./", Unsafe::DotSegment(".")),
            ("a/./b/", Unsafe::DotSegment(".")),
            ("a//", Unsafe::EmptySegment),
            ("/", Unsafe::EmptySegment),
            ("/a/", Unsafe::EmptySegment),
        ];
        for (prefix, reason) in cases {
            let (key, want) = refused(prefix, reason);
            let got = route(&config, &object("trail-a", &key)).unwrap_err();
            assert_eq!(got, want, "{prefix:?}");
            assert_eq!(got.label(), "unsafe_key");
        }
        // The key's own account is not even looked at, nor the bucket: an unsafe key is
        // parked wherever it comes from.
        let key = "x\r/AWSLogs/999999999999/CloudTrail/nothing";
        let got = route(&config, &object("elsewhere", key)).unwrap_err();
        assert_eq!(
            got,
            Refusal::UnsafeKey {
                bucket: "elsewhere".to_owned(),
                key: key.to_owned(),
                reason: character(1, '\r'),
            }
        );
        // Nothing else is unsafe: dots inside a name, a lone `...`, a backslash, non-ASCII
        // letters, the separators Unicode calls spaces.
        for prefix in [
            "a..b/",
            ".../",
            "..a/.b/",
            "back\\slash/",
            "caf\u{e9}/",
            "a b/",
        ] {
            let key = format!("{prefix}{}", log_key("222222222222"));
            assert!(
                route(&config, &object("trail-a", &key)).is_ok(),
                "{prefix:?}"
            );
        }
        // A key ending in `/` is no CloudTrail key, and the empty segment says so first.
        assert_eq!(unsafe_key("AWSLogs/1/", 1024), Some(Unsafe::EmptySegment));
        assert_eq!(unsafe_key("", 1024), Some(Unsafe::EmptySegment));
    }

    #[test]
    fn a_key_must_fit_the_layout_with_its_conflict_key() {
        let config = Config::from_toml(CONFIG, Path::new("t.toml")).unwrap();
        let limit = crate::archive::layout::longest_source_key("ct/", "trail-a");
        let tail = log_key("222222222222");
        let fits = format!("{}/{tail}", "p".repeat(limit - tail.len() - 1));
        assert_eq!(fits.len(), limit);
        let route = route(&config, &object("trail-a", &fits)).unwrap();
        let sha = "0".repeat(64);
        assert_eq!(
            crate::archive::layout::conflict_key(&route.archive_key, &sha).len(),
            crate::archive::layout::MAX_KEY_BYTES
        );

        let (key, want) = refused(
            &format!("{}/", "p".repeat(limit - tail.len())),
            Unsafe::TooLong {
                bytes: limit + 1,
                limit,
            },
        );
        assert_eq!(
            super::route(&config, &object("trail-a", &key)).unwrap_err(),
            want
        );
        assert_eq!(
            want.to_string(),
            format!(
                "s3://trail-a/{key} refused: the key is {} bytes long, and the archive holds at \
                 most {limit} for this bucket (its archive key and the conflict key beside it \
                 must fit S3's 1024 bytes; a shorter archive.key_prefix leaves more); a \
                 notification of it is parked on the dead-letter queue: delete the object, or \
                 fix the trail's prefix",
                limit + 1
            )
        );
    }

    #[test]
    fn refusals_print_keys_escaped() {
        let tail = log_key("222222222222");
        let (_, cr) = refused(
            "x\rtrail-a\tforged\\/",
            Unsafe::Character { at: 1, c: '\r' },
        );
        assert_eq!(
            cr.to_string(),
            format!(
                "s3://trail-a/x\\rtrail-a\\tforged\\\\/{tail} refused: a CloudTrail key never \
                 holds a control or invisible character, and this one holds \\r at byte 1; a \
                 notification of it is parked on the dead-letter queue: delete the object, or \
                 fix the trail's prefix"
            )
        );
        let (_, esc) = refused(
            "a\u{1b}]0;x\u{7}/",
            Unsafe::Character { at: 1, c: '\u{1b}' },
        );
        assert!(
            esc.to_string().starts_with(&format!(
                "s3://trail-a/a\\u{{1b}}]0;x\\u{{7}}/{tail} refused: a CloudTrail key never \
                 holds a control or invisible character, and this one holds \\u{{1b}} at byte 1;"
            )),
            "{esc}"
        );
        let (_, dots) = refused("a/../", Unsafe::DotSegment(".."));
        assert_eq!(
            dots.to_string(),
            format!(
                "s3://trail-a/a/../{tail} refused: a CloudTrail key never holds a `..` path \
                 segment, and this one does; a notification of it is parked on the dead-letter \
                 queue: delete the object, or fix the trail's prefix"
            )
        );
        let (_, empty) = refused("a//", Unsafe::EmptySegment);
        assert!(
            empty.to_string().contains(
                "refused: a CloudTrail key never holds an empty path segment (`//`, or a `/` at \
                 the start or end), and this one does;"
            ),
            "{empty}"
        );
        // Every refusal escapes what it prints from outside, the bucket included.
        let hostile = "b\r\u{202e}";
        let refusals = [
            Refusal::UnknownBucket {
                bucket: hostile.to_owned(),
            },
            Refusal::NotCloudTrail {
                bucket: hostile.to_owned(),
                key: hostile.to_owned(),
                reason: "r",
            },
            Refusal::AccountMismatch {
                bucket: hostile.to_owned(),
                key: hostile.to_owned(),
                bucket_account: "1".to_owned(),
                key_account: "2".to_owned(),
            },
        ];
        for r in refusals {
            let shown = r.to_string();
            assert!(
                shown.contains("b\\r\\u{202e}") && !shown.contains(hostile),
                "{shown}"
            );
        }
    }

    /// What is refused is exactly what `printable` escapes (but for the backslash it escapes
    /// to keep its escapes unambiguous): a key that passes prints as itself.
    #[test]
    fn refused_characters_are_the_ones_printable_escapes() {
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let s = c.to_string();
            let escaped = crate::archive::layout::printable(&s) != s.as_str();
            let refused = matches!(unsafe_key(&s, 1024), Some(Unsafe::Character { .. }));
            assert_eq!(escaped, refused || c == '\\', "{}", c.escape_unicode());
        }
    }
}
