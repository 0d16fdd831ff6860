//! Hashing a stored object version as it streams, never holding more than one chunk.

use sha2::{Digest as _, Sha256};

use super::Failure;

/// The SHA-256 of the bytes `GetObject` returns for `key` (at `version_id`, or its current
/// version), read as `s3`'s identity. An SSE-KMS object needs `kms:Decrypt` on its key.
pub async fn sha256_of(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<[u8; 32], Failure> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await
        .map_err(|e| Failure::from_sdk(&e))?;
    let mut body = out.body;
    let mut hasher = Sha256::new();
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => hasher.update(&chunk),
            Ok(None) => return Ok(hasher.finalize().into()),
            // The connection broke mid-body: reading again may well succeed.
            Err(e) => {
                return Err(Failure {
                    status: None,
                    code: None,
                    retryable: true,
                    detail: format!("the body broke off while reading: {e}"),
                })
            }
        }
    }
}
