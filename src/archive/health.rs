//! Whether the archive side (the archive bucket, its KMS keys) answers. A failure there is the
//! deployment's, not a message's: instead of failing (and, after a few receives, parking)
//! every message, the worker stops taking work, says why on `/healthz`, and probes the
//! archive with growing pauses until it answers again; then it resumes by itself.
//!
//! The probe does what a copy needs, without writing anything new: a KMS `GenerateDataKey`
//! under the archive key, and a `PutObject` of a few bytes to [`PROBE_KEY`] with
//! `If-None-Match: *` (SSE-KMS, like every copy). Once that object exists, S3 authorizes the
//! write and answers 412 without storing anything; the first probe ever stores it, once.

use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_kms::types::DataKeySpec;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use tokio::time::Instant;
use tracing::{error, info};

use super::layout::PROBE_KEY;
use crate::aws::Failure;
use crate::telemetry::metrics::Metrics;

const PAUSE_START: Duration = Duration::from_secs(1);
const PAUSE_CAP: Duration = Duration::from_secs(60);

#[derive(Debug)]
enum State {
    Answers,
    Failing {
        reason: String,
        since: Instant,
        next_probe: Instant,
        pause: Duration,
    },
}

/// The archive side's health, shared by every task of a run.
#[derive(Debug)]
pub struct ArchiveHealth {
    state: Mutex<State>,
    /// One probe at a time.
    probing: tokio::sync::Mutex<()>,
    s3: aws_sdk_s3::Client,
    kms: aws_sdk_kms::Client,
    bucket: String,
    kms_key_arn: String,
}

impl ArchiveHealth {
    pub fn new(
        s3: aws_sdk_s3::Client,
        kms: aws_sdk_kms::Client,
        bucket: String,
        kms_key_arn: String,
    ) -> ArchiveHealth {
        ArchiveHealth {
            state: Mutex::new(State::Answers),
            probing: tokio::sync::Mutex::new(()),
            s3,
            kms,
            bucket,
            kms_key_arn,
        }
    }

    /// The archive side failed in a way waiting on the message will not fix: stop taking
    /// work until a probe passes.
    pub fn failed(&self, reason: &str, metrics: &Metrics) {
        let mut state = self.state.lock().expect("health lock");
        if let State::Answers = *state {
            error!(
                reason,
                "the archive side fails (the deployment's fault, not the messages'): taking no \
                 more work until it answers again; messages are kept, not parked"
            );
            *state = State::Failing {
                reason: reason.to_owned(),
                since: Instant::now(),
                next_probe: Instant::now() + PAUSE_START,
                pause: PAUSE_START,
            };
        }
        metrics.set_health(false, format!("the archive does not answer: {reason}"));
    }

    /// Why it fails, and for how long, if it does.
    pub fn failing(&self) -> Option<(String, Duration)> {
        match &*self.state.lock().expect("health lock") {
            State::Answers => None,
            State::Failing { reason, since, .. } => Some((reason.clone(), since.elapsed())),
        }
    }

    /// Returns once the archive answers (at once, when nothing failed), probing it with
    /// growing pauses; `false` when `stop` ends the wait first.
    pub async fn wait(
        &self,
        stop: &tokio_util::sync::CancellationToken,
        metrics: &Metrics,
    ) -> bool {
        loop {
            let next = match &*self.state.lock().expect("health lock") {
                State::Answers => return true,
                State::Failing { next_probe, .. } => *next_probe,
            };
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = stop.cancelled() => return false,
            }
            let _one = self.probing.lock().await;
            let due = match &*self.state.lock().expect("health lock") {
                State::Answers => return true,
                State::Failing { next_probe, .. } => *next_probe <= Instant::now(),
            };
            if !due {
                continue;
            }
            let probed = self.probe().await;
            let mut state = self.state.lock().expect("health lock");
            match probed {
                Ok(()) => {
                    if let State::Failing { since, .. } = &*state {
                        info!(
                            after_secs = since.elapsed().as_secs(),
                            "the archive answers again; taking work"
                        );
                    }
                    *state = State::Answers;
                    metrics.set_health(true, "the archive answers again".to_owned());
                    return true;
                }
                Err(why) => {
                    if let State::Failing {
                        reason,
                        next_probe,
                        pause,
                        ..
                    } = &mut *state
                    {
                        *pause = (*pause * 2).min(PAUSE_CAP);
                        *next_probe = Instant::now() + *pause;
                        *reason = why.clone();
                        tracing::warn!(reason = %why, retry_in_secs = pause.as_secs(),
                            "the archive still fails");
                    }
                    metrics.set_health(false, format!("the archive does not answer: {why}"));
                }
            }
        }
    }

    async fn probe(&self) -> Result<(), String> {
        self.kms
            .generate_data_key()
            .key_id(&self.kms_key_arn)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "KMS GenerateDataKey on the archive key {}: {}",
                    self.kms_key_arn,
                    Failure::from_sdk(&e).detail
                )
            })?;
        let put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(PROBE_KEY)
            .body(ByteStream::from_static(b"trailvault probe\n"))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.kms_key_arn)
            .if_none_match("*")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) => {
                let failure = Failure::from_sdk(&e);
                if failure.is_status(412) {
                    Ok(())
                } else {
                    Err(format!(
                        "PutObject on s3://{}/{PROBE_KEY}: {}",
                        self.bucket, failure.detail
                    ))
                }
            }
        }
    }
}
