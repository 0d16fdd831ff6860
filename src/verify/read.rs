//! Reading the archive: one walk of every version, and each version's bytes read once.

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};

use super::{Current, Fetched, Index, TrailFile, Unreadable, Verifier, VerifyError};
use crate::archive::layout;
use crate::archive::layout::printable;
use crate::aws::{Failure, Versions};
use crate::cloudtrail::key;

impl Verifier {
    /// A key's `s3://` location, printable on one line whatever the key holds.
    pub(super) fn location(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, printable(key))
    }

    /// Every version and delete marker in one walk; for every key, the version verify checks:
    /// the current one, or, when a delete marker hides the key, the newest one it hides.
    pub(super) async fn index(&self) -> Result<Index, VerifyError> {
        let mut pages = Versions::new(self.s3.clone(), &self.bucket, None);
        let mut versions = Vec::new();
        let mut markers: HashMap<String, String> = HashMap::new();
        while let Some(page) = pages
            .next_page()
            .await
            .map_err(|failure| VerifyError::List {
                bucket: self.bucket.clone(),
                failure,
            })?
        {
            for m in page.markers.into_iter().filter(|m| m.is_latest) {
                markers.insert(m.key, m.version_id.unwrap_or_else(|| "null".to_owned()));
            }
            versions.extend(page.versions);
        }
        let mut current: HashMap<String, Current> = HashMap::new();
        let mut latest: HashMap<&str, bool> = HashMap::new();
        // The version S3 marks latest; under a delete marker, the newest by S3's time (on a
        // tie the first listed: S3 lists a key's versions newest first).
        for v in &versions {
            let newer = match (current.get(&v.key), latest.get(v.key.as_str())) {
                (None, _) => true,
                (Some(_), Some(true)) => false,
                (Some(c), _) => v.is_latest || v.last_modified.map(|t| t.secs()) > c.written,
            };
            if !newer {
                continue;
            }
            latest.insert(&v.key, v.is_latest);
            current.insert(
                v.key.clone(),
                Current {
                    version_id: v.version_id.clone(),
                    written: v.last_modified.map(|t| t.secs()),
                    hidden_by: None,
                },
            );
        }
        for (key, marker) in markers {
            if let Some(c) = current.get_mut(&key) {
                c.hidden_by = Some(marker);
            }
        }
        Ok(Index { current, versions })
    }

    /// What an archive key says about the CloudTrail file it holds.
    pub(super) fn trail_file(&self, archive_key: &str) -> Option<TrailFile> {
        let (source_bucket, source_key) = layout::source_of(&self.key_prefix, archive_key)?;
        let k = key::parse(source_key).ok()?;
        // Everything before the account's CloudTrail* folder: prefix, bucket, trail prefix,
        // AWSLogs/[o-ID/]ACCOUNT.
        let folder = archive_key.rsplitn(7, '/').nth(6)?.to_owned();
        Some(TrailFile {
            group: (folder, k.region.to_owned()),
            archive_key: archive_key.to_owned(),
            source_bucket: source_bucket.to_owned(),
            account: k.account.to_owned(),
            region: k.region.to_owned(),
            kind: k.kind,
            at: k.time(),
            trail: k
                .trail
                .map(|t| (t.name.to_owned(), t.home_region.to_owned())),
        })
    }

    pub(super) async fn fetch(
        &self,
        key: &str,
        version: Option<String>,
    ) -> Result<Fetched, Unreadable> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.clone())
            .send()
            .await
            .map_err(|e| {
                let f = Failure::from_sdk(&e);
                if f.is_status(404) {
                    Unreadable::NotFound
                } else {
                    Unreadable::Failed(f.detail)
                }
            })?;
        let metadata = out.metadata().cloned().unwrap_or_default();
        let version_id = out
            .version_id()
            .map(str::to_owned)
            .or(version)
            .unwrap_or_else(|| "null".to_owned());
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| Unreadable::Failed(e.to_string()))?
            .into_bytes();
        let sha256 = hex::encode(Sha256::digest(&bytes));
        self.read
            .lock()
            .expect("read cache")
            .insert((key.to_owned(), version_id), sha256.clone());
        Ok(Fetched {
            bytes,
            metadata,
            sha256,
        })
    }
}
