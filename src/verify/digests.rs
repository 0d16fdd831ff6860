//! CloudTrail's digest files, checked on the archive copies: each signature, and the chains
//! they form.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest as _, Sha256};

use super::decide::{join, link, Join, Link};
use time::OffsetDateTime;

use super::{parse_time, DigestCheck, Index, Line, Note, TrailFile, Verdict, Verifier, DIGEST_CAP};
use crate::cloudtrail::digest::{self, Digest};
use crate::cloudtrail::gzip;

impl Verifier {
    pub(super) async fn check_digest(
        &self,
        file: TrailFile,
        version: Option<String>,
    ) -> DigestCheck {
        let mut check = DigestCheck {
            file,
            digest: None,
            sha256: None,
            signature: None,
            problem: None,
        };
        let key = check.file.archive_key.clone();
        let fetched = match self.fetch(&key, version).await {
            Ok(f) => f,
            Err(why) => {
                check.problem = Some(why.to_string());
                return check;
            }
        };
        check.signature = fetched.metadata.get(digest::SIGNATURE_METADATA).cloned();
        let decompressed = match gzip::gunzip(&fetched.bytes, DIGEST_CAP) {
            Ok(d) => d,
            Err(_) => {
                check.problem = Some("invalid format".to_owned());
                return check;
            }
        };
        check.sha256 = Some(hex::encode(Sha256::digest(&decompressed)));
        let Ok(d) = Digest::from_json(&decompressed) else {
            check.problem = Some("invalid format".to_owned());
            return check;
        };
        // The archive key is the original `bucket/key` behind the prefix.
        let original = &key[self.key_prefix.len()..];
        check.problem = if format!("{}/{}", d.digest_s3_bucket, d.digest_s3_object) != original {
            Some("has been moved from its original location".to_owned())
        } else if let Some(public) = self.cloudtrail_keys.get(&d.digest_public_key_fingerprint) {
            match &check.signature {
                None => Some("has no signature (x-amz-meta-signature is missing)".to_owned()),
                Some(sig) => public
                    .verify(d.string_to_sign(&decompressed).as_bytes(), sig)
                    .err()
                    .map(|_| "signature verification failed".to_owned()),
            }
        } else {
            Some(format!(
                "public key not found in region {} for fingerprint {}",
                check.file.region, d.digest_public_key_fingerprint
            ))
        };
        check.digest = Some(d);
        check
    }

    /// Links between digests: each previous digest must be there, with the hash and signature
    /// its successor names; restarts and gaps are noted. Missing digests become lines.
    /// Returns the stretches where a chain restarted, by trail group: (group, from, to).
    pub(super) fn check_chains(
        &self,
        checked: &mut [DigestCheck],
        index: &Index,
        lines: &mut Vec<Line>,
        notes: &mut Vec<Note>,
    ) -> Vec<((String, String), OffsetDateTime, OffsetDateTime)> {
        let mut restarts = Vec::new();
        // What each digest's successor must name: its hash and its signature.
        let by_key: HashMap<String, (Option<String>, Option<String>)> = checked
            .iter()
            .map(|c| {
                (
                    c.file.archive_key.clone(),
                    (c.sha256.clone(), c.signature.clone()),
                )
            })
            .collect();
        for c in checked.iter_mut() {
            let Some(d) = &c.digest else { continue };
            let (Some(prev_bucket), Some(prev_object)) =
                (&d.previous_digest_s3_bucket, &d.previous_digest_s3_object)
            else {
                continue;
            };
            let prev_key = format!("{}{prev_bucket}/{prev_object}", self.key_prefix);
            let read = by_key
                .get(&prev_key)
                .map(|(sha, sig)| (sha.as_deref(), sig.as_deref()));
            let verdict = link(
                index.current.contains_key(&prev_key),
                read,
                d.previous_digest_hash_value.as_deref(),
                d.previous_digest_signature.as_deref(),
            );
            // A digest already found wanting keeps its first problem.
            match verdict {
                Link::NotFound => lines.push(Line {
                    kind: "Digest file",
                    location: self.location(&prev_key),
                    result: Verdict::Invalid("not found".to_owned()),
                    key: prev_key.clone(),
                    version: None,
                }),
                Link::HashDiffers if c.problem.is_none() => {
                    c.problem = Some(format!(
                        "previousDigestHashValue does not match the previous digest {} found \
                         in the archive",
                        self.location(&prev_key)
                    ));
                }
                Link::SignatureDiffers if c.problem.is_none() => {
                    c.problem = Some(format!(
                        "previousDigestSignature does not match the signature of the previous \
                         digest {}",
                        self.location(&prev_key)
                    ));
                }
                _ => {}
            }
        }

        // Restarts and gaps, per chain (source bucket, account, region, trail), oldest first.
        let mut chains: BTreeMap<(String, String, String, String), Vec<&DigestCheck>> =
            BTreeMap::new();
        for c in checked.iter().filter(|c| c.digest.is_some()) {
            let (trail, home) = c.file.trail.clone().unwrap_or_default();
            chains
                .entry((
                    c.file.source_bucket.clone(),
                    c.file.account.clone(),
                    c.file.region.clone(),
                    format!("{trail} ({home})"),
                ))
                .or_default()
                .push(c);
        }
        for ((_, account, region, trail), mut chain) in chains {
            chain.sort_by_key(|c| c.digest.as_ref().map(|d| d.digest_end_time.clone()));
            for pair in chain.windows(2) {
                let (older, newer) = (pair[0], pair[1]);
                let (o, n) = (
                    older.digest.as_ref().expect("filtered"),
                    newer.digest.as_ref().expect("filtered"),
                );
                match join(
                    &o.digest_s3_object,
                    &o.digest_end_time,
                    n.previous_digest_s3_object.as_deref(),
                    &n.digest_start_time,
                ) {
                    Join::Restart => {
                        if let (Some(from), Some(to)) = (
                            parse_time(&o.digest_end_time),
                            parse_time(&n.digest_start_time),
                        ) {
                            restarts.push((newer.file.group.clone(), from, to));
                        }
                        notes.push(Note {
                            kind: "chain restart",
                            text: format!(
                            "account {account}, {region}, trail {trail}: the chain restarts at \
                             {} (previousDigest is null; CloudTrail logging or validation was \
                             off before {})",
                            self.location(&newer.file.archive_key),
                            n.digest_start_time
                        ),
                        })
                    }
                    Join::Gap => notes.push(Note {
                        kind: "gap",
                        text: format!(
                            "account {account}, {region}, trail {trail}: no digest covers {} \
                             to {}, though the chain is unbroken",
                            o.digest_end_time, n.digest_start_time
                        ),
                    }),
                    Join::Continues | Join::Elsewhere => {}
                }
            }
        }
        restarts
    }
}
