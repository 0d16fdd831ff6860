//! `ListObjectsV2`, whole: the folders under a prefix, or the objects under it, every page.

use aws_sdk_s3::primitives::DateTime;

use aws_sdk_s3::types::EncodingType;

use super::Failure;

/// A key as a listing with `encoding-type=url` returns it, decoded. Listings ask S3 to encode
/// keys because XML cannot carry every character a key may hold: an ESC makes the whole page
/// unreadable, and a carriage return comes back as a line feed (another key). S3 encodes a
/// space as `+` and a `+` as `%2B`, as a form does.
pub fn url_decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// One object, as a listing shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<DateTime>,
}

/// The "folders" directly under `prefix` (each ends with `/`), in key order.
pub async fn folders(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, Failure> {
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .encoding_type(EncodingType::Url)
        .into_paginator()
        .send();
    let mut folders = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Failure::from_sdk(&e))?;
        folders.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(url_decoded)),
        );
    }
    Ok(folders)
}

/// Every object under `prefix` (not only the next level), in key order.
pub async fn objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<Listed>, Failure> {
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .encoding_type(EncodingType::Url)
        .into_paginator()
        .send();
    let mut objects = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Failure::from_sdk(&e))?;
        objects.extend(page.contents().iter().filter_map(|o| {
            Some(Listed {
                key: url_decoded(o.key()?),
                size: o.size().unwrap_or(0).max(0) as u64,
                last_modified: o.last_modified().copied(),
            })
        }));
    }
    Ok(objects)
}
