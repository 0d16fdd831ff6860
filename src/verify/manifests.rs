//! trailvault's own manifests: the signed chain, every listed version there, every version
//! listed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures_util::stream::{self, StreamExt as _};
use time::OffsetDateTime;

use super::decide::{unlisted_version, Unvouched};
use super::{
    verdict, Fetched, Index, Line, ManifestRead, Note, Scope, Tally, Unreadable, Verdict, Verifier,
};
use crate::archive::layout;
use crate::cloudtrail::digest::{self, PublicKey};
use crate::manifest::Manifest;

/// What the valid manifests list: (key, version) -> (SHA-256, manifest number).
pub(super) type Listed = HashMap<(String, String), (String, u64)>;

impl Verifier {
    /// Walks the manifest chain, checks every entry, and finds the versions no manifest
    /// lists. Returns the manifests' tally, the unlisted versions, the bad entries, and what
    /// the valid manifests list: (key, version) -> (SHA-256, manifest number).
    pub(super) async fn check_manifests(
        &self,
        key: &PublicKey,
        index: &Index,
        scope: &Scope,
        progress: &(dyn Fn(&str) + Sync),
        lines: &mut Vec<Line>,
        notes: &mut Vec<Note>,
    ) -> (Tally, u64, u64, Listed) {
        let present: BTreeMap<u64, String> = index
            .current
            .keys()
            .filter_map(|k| layout::manifest_sequence(k).map(|n| (n, k.clone())))
            .collect();
        let newest = present.keys().next_back().copied().unwrap_or(0);
        let fetched: Vec<(u64, ManifestRead)> = stream::iter(present.clone())
            .map(|(n, k)| async move {
                let r = match self.fetch(&k, index.current[&k].version_id.clone()).await {
                    Ok(f) => match serde_json::from_slice::<Manifest>(&f.bytes) {
                        Ok(m) => Ok((m, f)),
                        Err(_) => Err(Unreadable::NotAManifest),
                    },
                    Err(why) => Err(why),
                };
                progress("manifest");
                (n, r)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let fetched: BTreeMap<u64, ManifestRead> = fetched.into_iter().collect();

        let mut tally = Tally::default();
        // (key, version) -> (sha256, manifest number)
        let mut entries: Listed = HashMap::new();
        for n in 1..=newest {
            tally.total += 1;
            let location = self.location(&layout::manifest_key(n));
            let problem = match fetched.get(&n) {
                None => Some(format!(
                    "not found (the chain is broken between {} and {})",
                    n.saturating_sub(1),
                    n + 1
                )),
                Some(Err(why)) => Some(why.to_string()),
                Some(Ok((m, f))) => {
                    let problem = self.check_manifest(key, n, m, f, fetched.get(&(n - 1)));
                    if problem.is_none() {
                        for e in &m.entries {
                            entries.insert(
                                (e.archive_key.clone(), e.version_id.clone()),
                                (e.sha256.clone(), n),
                            );
                        }
                    }
                    problem
                }
            };
            let problem = match present.get(&n) {
                Some(k) => index.current[k].judge(problem),
                None => problem,
            };
            tally.valid += u64::from(problem.is_none());
            lines.push(Line {
                kind: "Manifest",
                location,
                result: verdict(&problem),
                key: layout::manifest_key(n),
                version: present
                    .get(&n)
                    .and_then(|k| index.current[k].version_id.clone()),
            });
        }

        // Every listed version must be there, with the bytes the manifest names.
        let exists: BTreeSet<(String, String)> = index
            .versions
            .iter()
            .map(|v| {
                (
                    v.key.clone(),
                    v.version_id.clone().unwrap_or_else(|| "null".to_owned()),
                )
            })
            .collect();
        let in_scope = |key: &str, at: Option<OffsetDateTime>| match self.trail_file(key) {
            Some(f) => scope.takes(&f.account, &f.region, at.or(f.at)),
            None => scope.is_whole(),
        };
        let to_check: Vec<((String, String), (String, u64))> = entries
            .iter()
            .filter(|((k, _), _)| in_scope(k, None))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let checked: Vec<Option<Line>> = stream::iter(to_check)
            .map(|((k, v), (sha, n))| {
                let exists = exists.contains(&(k.clone(), v.clone()));
                async move {
                    let problem = if !exists {
                        Some(format!("listed in manifest {n} but not in the archive"))
                    } else {
                        let version = (v != "null").then(|| v.clone());
                        match self.read_sha(&k, &version).await {
                            Some(a) if a == sha => None,
                            Some(_) => Some(format!("SHA-256 doesn't match manifest {n}")),
                            None => Some(format!("listed in manifest {n} but cannot be read")),
                        }
                    };
                    progress("version");
                    problem.map(|p| Line {
                        kind: "Archive object",
                        location: format!("{}?versionId={v}", self.location(&k)),
                        result: Verdict::Invalid(p),
                        key: k,
                        version: Some(v),
                    })
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let bad: Vec<Line> = checked.into_iter().flatten().collect();
        let bad_entries = bad.len() as u64;
        lines.extend(bad);

        // Every version in the archive must be listed. A version written since the newest
        // manifest (S3's own time, which no manifest content can move) may be in the next one,
        // unless it was written over a version a manifest lists (the worker never writes a key
        // twice), or so long ago that the next manifest is overdue: then the chain's head is
        // stale.
        let newest_manifest_write = index
            .versions
            .iter()
            .filter(|v| v.key.starts_with(layout::MANIFESTS))
            .filter_map(|v| v.last_modified.map(|t| t.secs()))
            .max();
        let listed_keys: HashSet<&str> = entries.keys().map(|(k, _)| k.as_str()).collect();
        let overdue = (self.now - self.manifest_period - self.allowance).unix_timestamp();
        let mut unlisted = 0;
        let mut pending = 0;
        let mut stale = 0;
        for v in &index.versions {
            if v.key.starts_with(layout::MANIFESTS) || v.key == layout::PROBE_KEY {
                continue;
            }
            let at = v
                .last_modified
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok());
            if !in_scope(&v.key, at) {
                continue;
            }
            let version = v.version_id.clone().unwrap_or_else(|| "null".to_owned());
            if entries.contains_key(&(v.key.clone(), version.clone())) {
                continue;
            }
            let written = v.last_modified.map(|t| t.secs());
            let judged = match unlisted_version(newest_manifest_write, written) {
                Unvouched::Invalid => Unvouched::Invalid,
                Unvouched::Pending if listed_keys.contains(v.key.as_str()) => Unvouched::Invalid,
                Unvouched::Pending if written.is_some_and(|w| w < overdue) => {
                    stale += 1;
                    Unvouched::Invalid
                }
                Unvouched::Pending => Unvouched::Pending,
            };
            if judged == Unvouched::Pending {
                pending += 1;
                continue;
            }
            unlisted += 1;
            lines.push(Line {
                kind: "Archive object",
                location: format!("{}?versionId={version}", self.location(&v.key)),
                result: Verdict::Invalid("no manifest lists this version".to_owned()),
                key: v.key.clone(),
                version: Some(version),
            });
        }
        if stale > 0 {
            let since = match newest_manifest_write
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            {
                Some(t) => format!("the newest manifest ({})", layout::rfc3339(t)),
                None => "the start (there is no manifest at all)".to_owned(),
            };
            lines.push(Line {
                kind: "Manifest chain",
                location: self.location(layout::MANIFESTS),
                result: Verdict::Invalid(format!(
                    "stale: {stale} archive version(s) written since {since} are listed by no \
                     manifest, though one is written every {} (allowance {}); later manifests \
                     are missing (deleted), or the worker cannot write them (see its logs)",
                    super::human(self.manifest_period),
                    super::human(self.allowance)
                )),
                key: layout::MANIFESTS.to_owned(),
                version: None,
            });
        }
        if pending > 0 {
            notes.push(Note {
                kind: "pending",
                text: format!(
                    "{pending} archive version(s) written after the newest manifest's period: \
                     the next manifest lists them; verify again after it"
                ),
            });
        }

        // Anything else a delete marker hides (CloudTrail's files and the manifests have
        // their own lines).
        for (k, cur) in &index.current {
            let Some(marker) = &cur.hidden_by else {
                continue;
            };
            if self.trail_file(k).is_some()
                || layout::manifest_sequence(k).is_some()
                || k == layout::PROBE_KEY
                || !in_scope(k, None)
            {
                continue;
            }
            lines.push(Line {
                kind: "Archive object",
                location: self.location(k),
                result: Verdict::Invalid(super::hidden(marker)),
                key: k.clone(),
                version: cur.version_id.clone(),
            });
        }
        (tally, unlisted, bad_entries, entries)
    }

    /// What is wrong with manifest `n`, if anything.
    pub(super) fn check_manifest(
        &self,
        key: &PublicKey,
        n: u64,
        m: &Manifest,
        f: &Fetched,
        previous: Option<&ManifestRead>,
    ) -> Option<String> {
        let manifest_key = layout::manifest_key(n);
        let Some(signature) = f.metadata.get(digest::SIGNATURE_METADATA) else {
            return Some("has no signature (x-amz-meta-signature is missing)".to_owned());
        };
        if m.sequence != n || m.archive_bucket != self.bucket {
            return Some("has been moved from its original location".to_owned());
        }
        if key
            .verify(
                m.string_to_sign(&manifest_key, &f.bytes).as_bytes(),
                signature,
            )
            .is_err()
        {
            return Some("signature verification failed".to_owned());
        }
        if n == 1 {
            return m
                .previous_manifest_key
                .is_some()
                .then(|| "the first manifest names a previous one".to_owned());
        }
        if m.previous_manifest_key.as_deref() != Some(layout::manifest_key(n - 1).as_str()) {
            return Some(format!("does not name manifest {} as its previous", n - 1));
        }
        match previous {
            Some(Ok((_, pf))) => {
                if m.previous_manifest_hash_value.as_deref() != Some(pf.sha256.as_str()) {
                    Some(format!(
                        "previousManifestHashValue does not match manifest {} found in the \
                         archive",
                        n - 1
                    ))
                } else if m.previous_manifest_signature.as_ref()
                    != pf.metadata.get(digest::SIGNATURE_METADATA)
                {
                    Some(format!(
                        "previousManifestSignature does not match the signature of manifest {}",
                        n - 1
                    ))
                } else {
                    None
                }
            }
            // The previous one is missing or unreadable: reported on its own line.
            _ => None,
        }
    }
}
