//! Reading an SDK error once: its HTTP status, its error code, whether trying again later can
//! help, and a one-line description with the full cause chain.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// What the worker needs to know about a failed AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: Option<u16>,
    pub code: Option<String>,
    /// Throttling, server errors, timeouts, connection trouble, expired credentials: the same
    /// call may well succeed later.
    pub retryable: bool,
    pub detail: String,
}

/// The code a [`Failure`] carries when credentials could not be had because STS refused to
/// let the role be assumed (AccessDenied: a trust policy, or an ExternalId, that does not
/// match). No service answered, so there is no status.
pub const ASSUME_ROLE_DENIED: &str = "AssumeRoleDenied";

/// Whether `err` failed for want of credentials that STS refused outright.
fn credentials_denied(err: &(dyn std::error::Error + 'static), detail: &str) -> bool {
    let mut source = err.source();
    while let Some(e) = source {
        if e.is::<aws_credential_types::provider::error::CredentialsError>() {
            return detail.contains("AccessDenied");
        }
        source = e.source();
    }
    false
}

/// Codes that mean "try again later" even with a 4xx status.
const RETRYABLE_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidToken",
    "Throttling",
    "ThrottlingException",
    "SlowDown",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "OperationAborted",
    "InternalError",
    "ServiceUnavailable",
];

/// Whether an AWS service's answer means "the same call may well succeed later": throttling,
/// server errors, conflicts of the moment (409), and the 4xx codes in [`RETRYABLE_CODES`].
fn retryable(status: u16, code: Option<&str>) -> bool {
    status >= 500
        || status == 429
        || status == 409
        || code.is_some_and(|c| RETRYABLE_CODES.contains(&c))
}

impl Failure {
    pub fn from_sdk<E, R>(err: &SdkError<E, R>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HasStatus + 'static,
    {
        match err {
            SdkError::ServiceError(service) => {
                let status = service.raw().status_code();
                let code = service.err().code().map(str::to_owned);
                // Code, message and status say it all; the raw response would drown the log.
                let detail = format!(
                    "{}: {} (HTTP {status})",
                    code.as_deref().unwrap_or("error"),
                    service.err().message().unwrap_or("no message")
                );
                let retryable = retryable(status, code.as_deref());
                Failure {
                    status: Some(status),
                    code,
                    retryable,
                    detail,
                }
            }
            // Building the request failed: a bug or bad input, not a passing condition.
            SdkError::ConstructionFailure(_) => Failure {
                status: None,
                code: None,
                retryable: false,
                detail: aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
            },
            // Timeouts, connection failures, credentials that could not be had, responses that
            // could not be read: all can pass. The cause chain says which. Except a role
            // that refuses to be assumed: its trust policy (or ExternalId) will not change by
            // itself.
            _ => {
                let detail = aws_sdk_s3::error::DisplayErrorContext(err).to_string();
                if credentials_denied(err, &detail) {
                    return Failure {
                        status: None,
                        code: Some(ASSUME_ROLE_DENIED.to_owned()),
                        retryable: false,
                        detail,
                    };
                }
                Failure {
                    status: err.raw_response().map(HasStatus::status_code),
                    code: None,
                    retryable: true,
                    detail,
                }
            }
        }
    }

    pub fn is_status(&self, status: u16) -> bool {
        self.status == Some(status)
    }

    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// The HTTP status of a raw SDK response.
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::retryable;

    #[test]
    fn a_service_answer_is_retryable_only_when_waiting_can_help() {
        let cases = [
            (500, None, true),
            (503, Some("SlowDown"), true),
            (429, None, true),
            (409, Some("OperationAborted"), true),
            (400, Some("RequestTimeout"), true),
            (400, Some("ExpiredToken"), true),
            (400, Some("ThrottlingException"), true),
            (403, Some("RequestTimeTooSkewed"), true),
            (403, Some("AccessDenied"), false),
            (403, None, false),
            (404, Some("NoSuchKey"), false),
            (400, Some("InvalidArgument"), false),
            (412, Some("PreconditionFailed"), false),
        ];
        for (status, code, want) in cases {
            assert_eq!(retryable(status, code), want, "{status} {code:?}");
        }
    }
}
