//! `devstack deliver`: CloudTrail writes its files into every member bucket, and each write's
//! notification travels to the central queue of its region.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use aws_sdk_s3::primitives::ByteStream;
use time::OffsetDateTime;
use tokio::task::JoinSet;

use crate::session::Session;
use crate::state::{Delivery, Member, MemberBucket, Stack};
use crate::timefmt;
use crate::trail::{Delivered, Kind, SigningKey, Trail, TrailSpec, Volume};

/// Where a first delivery starts when none is given: a fixed time, so that the same seed gives
/// the same files.
pub const DEFAULT_START: &str = "2026-11-01T00:00:00Z";

/// Notifications are carried across every this many files, so that relay queues stay short
/// (the emulator slows down as a queue deepens).
const RELAY_EVERY: usize = 25;

#[derive(Debug, Clone)]
pub struct Options {
    /// The first digest period starts within the hour after this; `None` continues where the
    /// previous delivery ended (or starts at [`DEFAULT_START`]).
    pub start: Option<OffsetDateTime>,
    pub hours: u32,
    /// Log files per account and region.
    pub files: u32,
    /// Insights files per account and region.
    pub insights: u32,
}

/// What one trail delivered.
#[derive(Debug, Clone, Default)]
pub struct TrailReport {
    pub account: String,
    pub region: String,
    pub logs: usize,
    pub digests: usize,
    pub insights: usize,
    pub bytes: u64,
    /// Records in the log files.
    pub records: usize,
    /// Messages carried from the member's relay queue to the central queue.
    pub relayed: usize,
    pub smallest: u64,
    pub largest: u64,
}

/// Delivers `opts.files` log files, `opts.insights` Insights files and `opts.hours` digests
/// for every member bucket.
pub async fn deliver(
    stack: &mut Stack,
    dir: &Path,
    opts: &Options,
) -> anyhow::Result<Vec<TrailReport>> {
    anyhow::ensure!(opts.hours >= 1, "--hours must be at least 1");
    let start = match opts.start {
        Some(start) => start,
        None => match stack.chains.values().map(|c| c.end_time.as_str()).max() {
            // The hour the newest digest ended in: every trail's periods sit at a fixed offset
            // within the hour, so starting there continues each chain without a gap.
            Some(end) => timefmt::parse(end)?.replace_minute(0)?.replace_second(0)?,
            None => timefmt::parse(DEFAULT_START)?,
        },
    };
    let volume = Volume {
        start,
        hours: opts.hours,
        files: opts.files,
        insights: opts.insights,
    };
    let mgmt = Session::management(&stack.endpoint, &stack.management_account).await?;
    let security = mgmt.admin(&stack.security.account).await;

    let mut keys = BTreeMap::new();
    for region in &stack.regions {
        keys.insert(
            region.clone(),
            Arc::new(SigningKey::derive(stack.seed, region)?),
        );
    }
    let mut tasks = JoinSet::new();
    for (i, member) in stack.members.iter().enumerate() {
        let session = mgmt.admin(&member.account).await;
        let other = &stack.members[(i + 1) % stack.members.len()].account;
        for bucket in &member.buckets {
            let spec = TrailSpec {
                seed: stack.seed,
                slot: member.slot,
                account: member.account.clone(),
                other_account: other.clone(),
                region: bucket.region.clone(),
                bucket: bucket.name.clone(),
                layout: member.layout.clone(),
                trail_name: member.trail_name.clone(),
            };
            let chain = stack
                .chains
                .get(&Stack::chain_key(&member.account, &bucket.region))
                .cloned();
            if let Some(head) = &chain {
                anyhow::ensure!(
                    timefmt::parse(&head.end_time)? <= start + time::Duration::hours(1),
                    "account {} in {} already has digests up to {}; deliver from a later --start",
                    member.account,
                    bucket.region,
                    head.end_time
                );
            }
            let key = keys[&bucket.region].clone();
            let trail = Trail::new(spec, key, volume, chain);
            let central = stack.queue(&bucket.region)?.url.clone();
            tasks.spawn(run_trail(
                session.clone(),
                security.clone(),
                member.clone(),
                bucket.clone(),
                trail,
                central,
            ));
        }
    }
    let mut reports = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (report, chain) = joined.context("a delivery task panicked")??;
        if let Some(chain) = chain {
            stack
                .chains
                .insert(Stack::chain_key(&report.account, &report.region), chain);
        }
        reports.push(report);
    }
    stack.save(dir)?;
    reports.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    Ok(reports)
}

async fn run_trail(
    session: Session,
    security: Session,
    member: Member,
    bucket: MemberBucket,
    mut trail: Trail,
    central_queue: String,
) -> anyhow::Result<(TrailReport, Option<crate::state::ChainHead>)> {
    let s3 = session.s3(&bucket.region);
    let sns = session.sns(&bucket.region);
    let sqs_member = session.sqs(&bucket.region);
    let sqs_central = security.sqs(&bucket.region);
    let mut report = TrailReport {
        account: member.account.clone(),
        region: bucket.region.clone(),
        smallest: u64::MAX,
        ..TrailReport::default()
    };
    let mut since_relay = 0;
    // Generation is CPU work: it runs between uploads, on this task.
    for file in trail.by_ref() {
        upload(&s3, &bucket.name, &file).await?;
        let size = file.body.len() as u64;
        report.bytes += size;
        report.smallest = report.smallest.min(size);
        report.largest = report.largest.max(size);
        match file.kind {
            Kind::Log | Kind::Insight => {
                if file.kind == Kind::Log {
                    report.logs += 1;
                    report.records += file.records;
                } else {
                    report.insights += 1;
                }
                if bucket.delivery == Delivery::CloudtrailSns {
                    // CloudTrail's own announcement of a delivered log file. AWS's docs call
                    // Insights files log files too ("a complete log file object name for
                    // insight events"), so they are announced the same way.
                    let message =
                        serde_json::json!({"s3Bucket": bucket.name, "s3ObjectKey": [file.key]});
                    sns.publish()
                        .topic_arn(
                            bucket
                                .topic_arn
                                .as_deref()
                                .context("no topic for a cloudtrail-sns bucket")?,
                        )
                        .message(message.to_string())
                        .send()
                        .await
                        .with_context(|| format!("SNS Publish for {}", file.key))?;
                }
            }
            Kind::Digest => report.digests += 1,
        }
        since_relay += 1;
        if since_relay >= RELAY_EVERY {
            report.relayed += relay(&sqs_member, &sqs_central, &bucket, &central_queue).await?;
            since_relay = 0;
        }
    }
    report.relayed += relay(&sqs_member, &sqs_central, &bucket, &central_queue).await?;
    if report.smallest == u64::MAX {
        report.smallest = 0;
    }
    Ok((report, trail.chain_head().cloned()))
}

async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, file: &Delivered) -> anyhow::Result<()> {
    let mut req = s3
        .put_object()
        .bucket(bucket)
        .key(&file.key)
        .content_type(Delivered::CONTENT_TYPE)
        .content_encoding(Delivered::CONTENT_ENCODING)
        .body(ByteStream::from(file.body.clone()));
    for (k, v) in &file.metadata {
        req = req.metadata(k, v);
    }
    req.send()
        .await
        .with_context(|| format!("PutObject s3://{bucket}/{}", file.key))?;
    Ok(())
}

/// Carries every notification still waiting on a member relay queue to its central queue:
/// for objects written outside `deliver` (tests that plant files of their own).
pub async fn relay_pending(stack: &Stack) -> anyhow::Result<usize> {
    let mgmt = Session::management(&stack.endpoint, &stack.management_account).await?;
    let security = mgmt.admin(&stack.security.account).await;
    let mut moved = 0;
    for member in &stack.members {
        let session = mgmt.admin(&member.account).await;
        for bucket in &member.buckets {
            let central = stack.queue(&bucket.region)?.url.clone();
            moved += relay(
                &session.sqs(&bucket.region),
                &security.sqs(&bucket.region),
                bucket,
                &central,
            )
            .await?;
        }
    }
    Ok(moved)
}

/// Carries every message waiting on the bucket's relay queue, body untouched, to the central
/// queue of its region. Returns how many it moved.
///
/// This is the one hop the emulator cannot make itself: it resolves a queue in the caller's
/// own account only, so the message is sent as the security account, the way S3's service
/// principal would be let in by the queue policy.
async fn relay(
    member_sqs: &aws_sdk_sqs::Client,
    central: &aws_sdk_sqs::Client,
    bucket: &MemberBucket,
    central_queue: &str,
) -> anyhow::Result<usize> {
    let Some(relay_url) = &bucket.relay_queue_url else {
        return Ok(0);
    };
    let mut moved = 0;
    loop {
        let received = member_sqs
            .receive_message()
            .queue_url(relay_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .with_context(|| format!("SQS ReceiveMessage on {relay_url}"))?;
        let messages = received.messages();
        if messages.is_empty() {
            return Ok(moved);
        }
        let mut send = central.send_message_batch().queue_url(central_queue);
        let mut delete = member_sqs.delete_message_batch().queue_url(relay_url);
        for (i, m) in messages.iter().enumerate() {
            send = send.entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body().unwrap_or_default())
                    .build()?,
            );
            delete = delete.entries(
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()?,
            );
        }
        let sent = send
            .send()
            .await
            .with_context(|| format!("SQS SendMessageBatch to {central_queue}"))?;
        anyhow::ensure!(
            sent.failed().is_empty(),
            "SendMessageBatch to {central_queue} failed for {:?}",
            sent.failed()
        );
        let deleted = delete
            .send()
            .await
            .with_context(|| format!("SQS DeleteMessageBatch on {relay_url}"))?;
        anyhow::ensure!(
            deleted.failed().is_empty(),
            "DeleteMessageBatch on {relay_url} failed for {:?}",
            deleted.failed()
        );
        moved += messages.len();
    }
}
