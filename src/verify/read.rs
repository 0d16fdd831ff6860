//! Reading the archive: one walk of every version, and each version's bytes read once.

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};

use super::{Current, Fetched, Index, TrailFile, Unreadable, Verifier, VerifyError};
use crate::archive::layout;
use crate::aws::{Failure, Versions};
use crate::cloudtrail::key;

impl Verifier {
    pub(super) fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Every version, and every key's current version, in one walk.
    pub(super) async fn index(&self) -> Result<Index, VerifyError> {
        let mut pages = Versions::new(self.s3.clone(), &self.bucket, None);
        let mut current = HashMap::new();
        let mut versions = Vec::new();
        while let Some(page) = pages
            .next_page()
            .await
            .map_err(|failure| VerifyError::List {
                bucket: self.bucket.clone(),
                failure,
            })?
        {
            for v in page.versions {
                if v.is_latest {
                    current.insert(
                        v.key.clone(),
                        Current {
                            version_id: v.version_id.clone(),
                        },
                    );
                }
                versions.push(v);
            }
        }
        Ok(Index { current, versions })
    }

    /// What an archive key says about the CloudTrail file it holds.
    pub(super) fn trail_file(&self, archive_key: &str) -> Option<TrailFile> {
        let (source_bucket, source_key) = layout::source_of(&self.key_prefix, archive_key)?;
        let k = key::parse(source_key).ok()?;
        Some(TrailFile {
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
        let sha = hex::encode(Sha256::digest(&bytes));
        self.read
            .lock()
            .expect("read cache")
            .insert((key.to_owned(), version_id), sha);
        Ok(Fetched { bytes, metadata })
    }
}
