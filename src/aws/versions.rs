//! Walking every version under a prefix of a bucket, a page at a time.

use aws_sdk_s3::primitives::DateTime;

use super::listing::url_decoded;
use super::Failure;

/// One object version (not a delete marker).
#[derive(Debug, Clone)]
pub struct Version {
    pub key: String,
    /// `None` for the one version of a bucket that was never versioned.
    pub version_id: Option<String>,
    pub last_modified: Option<DateTime>,
    pub size: u64,
    pub is_latest: bool,
}

/// One page of `ListObjectVersions`.
#[derive(Debug, Default)]
pub struct Page {
    pub versions: Vec<Version>,
    pub delete_markers: u64,
    /// The delete markers themselves (`size` 0): what hides a key from plain reads.
    pub markers: Vec<Version>,
}

/// Lists the versions under a prefix, page by page, so that a walk over millions of versions
/// holds only one page in memory.
pub struct Versions {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: Option<String>,
    key_marker: Option<String>,
    version_marker: Option<String>,
    done: bool,
}

impl Versions {
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, prefix: Option<&str>) -> Versions {
        Versions {
            s3,
            bucket: bucket.to_owned(),
            prefix: prefix.filter(|p| !p.is_empty()).map(str::to_owned),
            key_marker: None,
            version_marker: None,
            done: false,
        }
    }

    /// The next page, or `None` once every version has been listed.
    pub async fn next_page(&mut self) -> Result<Option<Page>, Failure> {
        if self.done {
            return Ok(None);
        }
        let out = self
            .s3
            .list_object_versions()
            .bucket(&self.bucket)
            .set_prefix(self.prefix.clone())
            .set_key_marker(self.key_marker.take())
            .set_version_id_marker(self.version_marker.take())
            .encoding_type(aws_sdk_s3::types::EncodingType::Url)
            .send()
            .await
            .map_err(|e| Failure::from_sdk(&e))?;
        let versions = out
            .versions()
            .iter()
            .map(|v| Version {
                key: url_decoded(v.key().unwrap_or_default()),
                version_id: v.version_id().filter(|id| *id != "null").map(str::to_owned),
                last_modified: v.last_modified().copied(),
                size: v.size().unwrap_or(0).max(0) as u64,
                is_latest: v.is_latest().unwrap_or(false),
            })
            .collect();
        if out.is_truncated() == Some(true) {
            self.key_marker = out.next_key_marker().map(url_decoded);
            self.version_marker = out.next_version_id_marker().map(str::to_owned);
            // A truncated page without a marker would list the first page forever.
            self.done = self.key_marker.is_none();
        } else {
            self.done = true;
        }
        let markers = out
            .delete_markers()
            .iter()
            .map(|m| Version {
                key: url_decoded(m.key().unwrap_or_default()),
                version_id: m.version_id().filter(|id| *id != "null").map(str::to_owned),
                last_modified: m.last_modified().copied(),
                size: 0,
                is_latest: m.is_latest().unwrap_or(false),
            })
            .collect();
        Ok(Some(Page {
            versions,
            delete_markers: out.delete_markers().len() as u64,
            markers,
        }))
    }

    /// Every version, for walks known to be small (one key's versions).
    pub async fn all(mut self) -> Result<Vec<Version>, Failure> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page.versions);
        }
        Ok(all)
    }
}
