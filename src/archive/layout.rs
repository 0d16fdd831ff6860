//! The archive's layout, as pure functions and names: where a copy goes, where trailvault
//! keeps its own objects, and the user metadata it writes. No I/O.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A time as trailvault writes it (the archived-at stamp, manifests, reports): RFC 3339, UTC,
/// whole seconds, which is all S3's own times and locks carry.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .expect("UTC times format")
}

/// Everything trailvault keeps in the archive besides the copies lives under this.
pub const OWN_ROOT: &str = "_trailvault/";
/// Where the signed manifests are.
pub const MANIFESTS: &str = "_trailvault/manifests/";
/// What the worker writes to learn whether the archive answers (`archive::health`): a few
/// bytes, once; never evidence, and listed in no manifest.
pub const PROBE_KEY: &str = "_trailvault/probe";

/// Where conflicting bytes for an archive key are kept: bytes delivered for a key that already
/// holds other bytes (a member rewriting a file it delivered). The first bytes stay the key's
/// current version; each distinct rewrite is kept once, by its SHA-256.
pub const CONFLICTS: &str = "_trailvault/conflicts/";

/// S3's longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// `_trailvault/conflicts/{archive key}/{hex SHA-256}`: the rewrite of `archive_key` whose
/// bytes hash to `sha256`.
pub fn conflict_key(archive_key: &str, sha256: &str) -> String {
    format!("{CONFLICTS}{archive_key}/{sha256}")
}

/// The archive key a conflict key keeps a rewrite of, the inverse of [`conflict_key`].
pub fn conflict_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(CONFLICTS)?;
    let (archive_key, sha) = rest.rsplit_once('/')?;
    (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) && !archive_key.is_empty())
        .then_some(archive_key)
}

/// The longest source key (in bytes) the layout can hold for `bucket`: its archive key and the
/// conflict key beside it must both fit in S3's limit.
pub fn longest_source_key(prefix: &str, bucket: &str) -> usize {
    MAX_KEY_BYTES.saturating_sub(CONFLICTS.len() + prefix.len() + bucket.len() + 1 + 1 + 64)
}

/// A key (or any text from outside) made safe to print on one line of a report or a text log:
/// control characters, and the backslash that introduces the escapes, are written as Rust
/// escapes (`\r`, `\u{1b}`), so no key can end a line, start a new one or drive a terminal.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    // Bidirectional overrides and zero-width characters reorder or hide what a reader sees.
    let hides = |c: char| matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
    if !s.chars().any(|c| c.is_control() || hides(c) || c == '\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || hides(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `{prefix}{source bucket}/{source key}`: the original location stays readable.
pub fn archive_key(prefix: &str, bucket: &str, key: &str) -> String {
    format!("{prefix}{bucket}/{key}")
}

/// The original (bucket, key) of an archive key, the inverse of [`archive_key`].
pub fn source_of<'k>(prefix: &str, archive_key: &'k str) -> Option<(&'k str, &'k str)> {
    archive_key
        .strip_prefix(prefix)?
        .split_once('/')
        .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
}

/// The key of manifest number `sequence`.
pub fn manifest_key(sequence: u64) -> String {
    format!("{MANIFESTS}{sequence:012}.json")
}

/// The sequence number in a manifest key, if it is one.
pub fn manifest_sequence(key: &str) -> Option<u64> {
    let n = key.strip_prefix(MANIFESTS)?.strip_suffix(".json")?;
    (n.len() == 12 && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
}

/// trailvault's own user metadata names (S3 returns them in lower case).
pub mod meta {
    pub const PREFIX: &str = "trailvault-";
    pub const SOURCE_BUCKET: &str = "trailvault-source-bucket";
    pub const SOURCE_KEY: &str = "trailvault-source-key";
    pub const SOURCE_VERSION: &str = "trailvault-source-version-id";
    pub const SOURCE_ETAG: &str = "trailvault-source-etag";
    pub const ACCOUNT: &str = "trailvault-account";
    pub const SHA256: &str = "trailvault-sha256";
    pub const ARCHIVED_AT: &str = "trailvault-archived-at";
    pub const RECORDS: &str = "trailvault-records";
    pub const OLDEST_EVENT: &str = "trailvault-oldest-event";
    pub const NEWEST_EVENT: &str = "trailvault-newest-event";
    pub const QUARANTINE: &str = "trailvault-quarantine";
    /// A source entry that used one of trailvault's names is kept under this prefix.
    pub const SHADOWED: &str = "trailvault-shadowed-";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_sequence() {
        assert_eq!(manifest_key(42), "_trailvault/manifests/000000000042.json");
        assert_eq!(manifest_sequence(&manifest_key(42)), Some(42));
        assert_eq!(manifest_sequence("_trailvault/manifests/42.json"), None);
        assert_eq!(
            manifest_sequence("_trailvault/manifests/00000000004x.json"),
            None
        );
        assert_eq!(
            manifest_sequence("bucket/_trailvault/manifests/000000000042.json"),
            None
        );
    }

    #[test]
    fn conflict_keys_round_trip() {
        let sha = "ab".repeat(32);
        let k = conflict_key("ct/b/AWSLogs/1/x.json.gz", &sha);
        assert_eq!(
            k,
            format!("_trailvault/conflicts/ct/b/AWSLogs/1/x.json.gz/{sha}")
        );
        assert_eq!(conflict_of(&k), Some("ct/b/AWSLogs/1/x.json.gz"));
        assert_eq!(conflict_of("_trailvault/conflicts/x/abc"), None);
        assert_eq!(conflict_of("ct/b/k"), None);
        // The conflict key of the longest source key fits S3's limit exactly.
        let room = longest_source_key("ct/", "bucket");
        let longest = "k".repeat(room);
        assert_eq!(
            conflict_key(&archive_key("ct/", "bucket", &longest), &sha).len(),
            MAX_KEY_BYTES
        );
    }

    #[test]
    fn printable_escapes_what_could_forge_a_line() {
        assert_eq!(printable("AWSLogs/1/a.json.gz"), "AWSLogs/1/a.json.gz");
        assert_eq!(printable("a\rvalid\n"), "a\\rvalid\\n");
        assert_eq!(printable("a\u{1b}[2Kb\tc"), "a\\u{1b}[2Kb\\tc");
        assert_eq!(printable("back\\slash"), "back\\\\slash");
        assert_eq!(printable("caf\u{e9}"), "caf\u{e9}");
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
    }

    #[test]
    fn source_of_needs_the_prefix_and_both_parts() {
        assert_eq!(source_of("", "b/k/x"), Some(("b", "k/x")));
        assert_eq!(source_of("ct/", "other/b/k"), None);
        assert_eq!(source_of("", "b/"), None);
        assert_eq!(source_of("", "b"), None);
    }
}
