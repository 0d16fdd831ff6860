//! The source side: reading a member's object as its reader role, hashing exactly the bytes
//! delivered as they stream, checking log files on the way.

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::error::CopyError;
use super::{Copier, Inspected, Pin};
use crate::archive::routing::Route;
use crate::aws::Failure;
use crate::cloudtrail::key::FileKind;
use crate::cloudtrail::logfile::LogCheck;
use crate::notification::ObjectRef;

impl Copier {
    /// The first read: hash everything, check log files, keep small objects' bytes.
    pub(super) async fn inspect(
        &self,
        mut body: ByteStream,
        route: &Route<'_>,
        object: &ObjectRef,
        size: u64,
        keep: bool,
    ) -> Result<Inspected, CopyError> {
        let account = route.account.id.to_string();
        let mut hasher = Sha256::new();
        let mut kept = keep.then(|| Vec::with_capacity(size as usize));
        let mut check = (route.kind == FileKind::Log).then(|| LogCheck::start(self.rules.clone()));
        let mut read = 0u64;
        while let Some(chunk) = next_chunk(&mut body, &account, object).await? {
            read += chunk.len() as u64;
            if read > size {
                // More than S3 announced: stop before holding it.
                break;
            }
            hasher.update(&chunk);
            if let Some(kept) = &mut kept {
                kept.extend_from_slice(&chunk);
            }
            if let Some(check) = &mut check {
                check.feed(chunk).await;
            }
        }
        if read != size {
            return Err(CopyError::SourceChanged {
                bucket: object.bucket.clone(),
                key: object.key.clone(),
                reason: format!("read {read} bytes of {size}"),
            });
        }
        let log = match check {
            Some(check) => Some(check.finish().await),
            None => None,
        };
        Ok(Inspected {
            sha256: hasher.finalize().into(),
            body: kept.map(Bytes::from),
            log,
        })
    }
}

/// `GetObject` of the exact object the first `HeadObject` saw: by version where the bucket is
/// versioned, else on the condition that the ETag has not changed.
pub(super) async fn get_pinned(
    source: &aws_sdk_s3::Client,
    object: &ObjectRef,
    pin: &Pin,
) -> Result<ByteStream, Failure> {
    let out = source
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(pin.version.clone())
        .set_if_match(if pin.version.is_none() {
            pin.etag.clone()
        } else {
            None
        })
        .send()
        .await
        .map_err(|e| Failure::from_sdk(&e))?;
    Ok(out.body)
}

pub(super) async fn next_chunk(
    body: &mut ByteStream,
    account: &str,
    object: &ObjectRef,
) -> Result<Option<Bytes>, CopyError> {
    body.try_next().await.map_err(|e| CopyError::SourceRead {
        account: account.to_owned(),
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        failure: Failure {
            status: None,
            code: None,
            retryable: true,
            detail: format!("the body stopped: {e}"),
        },
    })
}
