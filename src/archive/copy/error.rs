//! Why a copy did not happen, and which side's fault it is.

use crate::archive::layout::printable;
use crate::aws::errors::ASSUME_ROLE_DENIED;
use crate::aws::Failure;
use crate::notification::ObjectRef;

/// Why a copy did not happen. Whether waiting helps is decided in `archive::classify`. Keys
/// are printed escaped: routing refuses keys with control characters, but a message must not
/// be able to forge a line even if one got past it.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "s3://{bucket}/{printed}{} does not exist (account {account}); if it was deleted after \
         the notification there is nothing to archive",
        version.as_ref().map(|v| format!(" version {v}")).unwrap_or_default(),
        printed = printable(key)
    )]
    SourceMissing {
        account: String,
        bucket: String,
        key: String,
        version: Option<String>,
    },
    #[error(
        "account {account}'s reader role may not read s3://{bucket}/{printed}: {detail}; check \
         that its policy allows s3:GetObject (and s3:GetObjectVersion) on the bucket, and \
         kms:Decrypt on the bucket's key if it uses SSE-KMS",
        printed = printable(key)
    )]
    SourceDenied {
        account: String,
        bucket: String,
        key: String,
        detail: String,
    },
    #[error(
        "trailvault may not assume account {account}'s reader role to read \
         s3://{bucket}/{printed}: {detail}; check that the role's trust policy allows the \
         worker role and that the account's external_id matches the one it requires",
        printed = printable(key)
    )]
    ReaderRoleDenied {
        account: String,
        bucket: String,
        key: String,
        detail: String,
    },
    #[error(
        "reading s3://{bucket}/{printed} (account {account}) failed: {}",
        failure.detail,
        printed = printable(key)
    )]
    SourceRead {
        account: String,
        bucket: String,
        key: String,
        failure: Failure,
    },
    #[error(
        "s3://{bucket}/{printed} changed while it was being copied ({reason}); the copy was \
         abandoned and will be retried",
        printed = printable(key)
    )]
    SourceChanged {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error(
        "writing s3://{bucket}/{printed} failed: {}",
        failure.detail,
        printed = printable(key)
    )]
    ArchiveWrite {
        bucket: String,
        key: String,
        failure: Failure,
    },
    #[error(
        "the archive copy s3://{bucket}/{printed} (version {version}) did not check out: \
         {problem}",
        printed = printable(key)
    )]
    ArchiveCheck {
        bucket: String,
        key: String,
        version: String,
        problem: String,
    },
}

impl CopyError {
    /// Whether the archive side (its bucket, its KMS key) refused, in a way that waiting on
    /// this message will not fix: the deployment's fault, which pauses the worker rather
    /// than failing messages.
    pub fn archive_side(&self) -> bool {
        matches!(self, CopyError::ArchiveWrite { failure, .. } if !failure.retryable)
    }

    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            CopyError::SourceMissing { .. } => "source_missing",
            CopyError::SourceDenied { .. } => "source_denied",
            CopyError::ReaderRoleDenied { .. } => "reader_role_denied",
            CopyError::SourceRead { .. } => "source_read",
            CopyError::SourceChanged { .. } => "source_changed",
            CopyError::ArchiveWrite { .. } => "archive_write",
            CopyError::ArchiveCheck { .. } => "archive_check",
        }
    }
}

pub(super) fn source_error(account: &str, object: &ObjectRef, failure: Failure) -> CopyError {
    let (bucket, key) = (object.bucket.clone(), object.key.clone());
    if failure.is_status(404) || failure.is_code("NoSuchKey") || failure.is_code("NoSuchVersion") {
        CopyError::SourceMissing {
            account: account.to_owned(),
            bucket,
            key,
            version: object.version_id.clone(),
        }
    } else if failure.is_code(ASSUME_ROLE_DENIED) {
        CopyError::ReaderRoleDenied {
            account: account.to_owned(),
            bucket,
            key,
            detail: failure.detail,
        }
    } else if failure.is_status(403) {
        CopyError::SourceDenied {
            account: account.to_owned(),
            bucket,
            key,
            detail: failure.detail,
        }
    } else if failure.is_status(412) {
        CopyError::SourceChanged {
            bucket,
            key,
            reason: "its ETag changed between reads".to_owned(),
        }
    } else {
        CopyError::SourceRead {
            account: account.to_owned(),
            bucket,
            key,
            failure,
        }
    }
}

/// A failed write (or read) on the archive side.
pub(super) fn archive_error<E, R>(
    bucket: &str,
    key: &str,
    e: &aws_sdk_s3::error::SdkError<E, R>,
) -> CopyError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + crate::aws::errors::HasStatus + 'static,
{
    CopyError::ArchiveWrite {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        failure: Failure::from_sdk(e),
    }
}
