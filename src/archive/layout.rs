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
    fn source_of_needs_the_prefix_and_both_parts() {
        assert_eq!(source_of("", "b/k/x"), Some(("b", "k/x")));
        assert_eq!(source_of("ct/", "other/b/k"), None);
        assert_eq!(source_of("", "b/"), None);
        assert_eq!(source_of("", "b"), None);
    }
}
