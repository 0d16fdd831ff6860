//! `devstack status`: what CloudTrail delivered per account and region, and what waits on the
//! security account's queues.

use std::fmt;

use anyhow::Context as _;
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;

use crate::session::Session;
use crate::state::Stack;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub organization_id: String,
    pub management_account: String,
    pub security_account: String,
    pub archive_bucket: String,
    pub archive_region: String,
    pub buckets: Vec<BucketStatus>,
    pub queues: Vec<QueueStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BucketStatus {
    pub account: String,
    pub name: String,
    pub region: String,
    pub bucket: String,
    pub delivery: String,
    pub log_files: usize,
    pub digest_files: usize,
    pub insight_files: usize,
    pub other_files: usize,
    pub bytes: u64,
    /// Messages still on the member's relay queue (0 once a delivery finished).
    pub relay_waiting: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    pub region: String,
    pub url: String,
    pub waiting: usize,
    pub in_flight: usize,
    pub dead_letter: usize,
}

pub async fn status(stack: &Stack) -> anyhow::Result<Status> {
    let mgmt = Session::management(&stack.endpoint, &stack.management_account).await?;
    let security = mgmt.admin(&stack.security.account).await;

    let mut buckets = Vec::new();
    for member in &stack.members {
        let session = mgmt.admin(&member.account).await;
        for b in &member.buckets {
            let s3 = session.s3(&b.region);
            let mut pages = s3.list_objects_v2().bucket(&b.name).into_paginator().send();
            let (mut logs, mut digests, mut insights, mut other, mut bytes) = (0, 0, 0, 0, 0u64);
            while let Some(page) = pages.next().await {
                let page = page.with_context(|| format!("ListObjectsV2 on {}", b.name))?;
                for object in page.contents() {
                    let key = object.key().unwrap_or_default();
                    bytes += object.size().unwrap_or(0) as u64;
                    if key.contains("/CloudTrail-Digest/") {
                        digests += 1;
                    } else if key.contains("/CloudTrail-Insight/") {
                        insights += 1;
                    } else if key.contains("/CloudTrail/") {
                        logs += 1;
                    } else {
                        other += 1;
                    }
                }
            }
            let relay_waiting = match &b.relay_queue_url {
                Some(url) => depth(&session.sqs(&b.region), url).await?.0,
                None => 0,
            };
            buckets.push(BucketStatus {
                account: member.account.clone(),
                name: member.name.clone(),
                region: b.region.clone(),
                bucket: b.name.clone(),
                delivery: b.delivery.label().to_owned(),
                log_files: logs,
                digest_files: digests,
                insight_files: insights,
                other_files: other,
                bytes,
                relay_waiting,
            });
        }
    }

    let mut queues = Vec::new();
    for q in &stack.security.queues {
        let sqs = security.sqs(&q.region);
        let (waiting, in_flight) = depth(&sqs, &q.url).await?;
        let (dead_letter, dlq_in_flight) = depth(&sqs, &q.dlq_url).await?;
        queues.push(QueueStatus {
            region: q.region.clone(),
            url: q.url.clone(),
            waiting,
            in_flight,
            dead_letter: dead_letter + dlq_in_flight,
        });
    }
    Ok(Status {
        organization_id: stack.organization_id.clone(),
        management_account: stack.management_account.clone(),
        security_account: stack.security.account.clone(),
        archive_bucket: stack.security.archive_bucket.clone(),
        archive_region: stack.security.archive_region.clone(),
        buckets,
        queues,
    })
}

/// (visible, in flight) messages on a queue.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<(usize, usize)> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .with_context(|| format!("SQS GetQueueAttributes on {url}"))?;
    let get = |name: QueueAttributeName| {
        out.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Organization {} (management account {}); security account {}, archive s3://{} in {}",
            self.organization_id,
            self.management_account,
            self.security_account,
            self.archive_bucket,
            self.archive_region
        )?;
        writeln!(f, "\nDelivered by CloudTrail into the member buckets:")?;
        writeln!(
            f,
            "  {:<12}  {:<9}  {:<14}  {:<14}  {:>9}  {:>8}  {:>7}  {:>10}",
            "account",
            "name",
            "region",
            "notifications",
            "log files",
            "insights",
            "digests",
            "size"
        )?;
        let (mut logs, mut insights, mut digests, mut bytes) = (0, 0, 0, 0);
        for b in &self.buckets {
            writeln!(
                f,
                "  {:<12}  {:<9}  {:<14}  {:<14}  {:>9}  {:>8}  {:>7}  {:>10}",
                b.account,
                b.name,
                b.region,
                b.delivery,
                b.log_files,
                b.insight_files,
                b.digest_files,
                human_bytes(b.bytes)
            )?;
            logs += b.log_files;
            insights += b.insight_files;
            digests += b.digest_files;
            bytes += b.bytes;
        }
        writeln!(
            f,
            "  {:<12}  {:<9}  {:<14}  {:<14}  {:>9}  {:>8}  {:>7}  {:>10}",
            "total",
            "",
            "",
            "",
            logs,
            insights,
            digests,
            human_bytes(bytes)
        )?;
        writeln!(
            f,
            "\nNotifications waiting in the security account's queues:"
        )?;
        writeln!(
            f,
            "  {:<14}  {:>8}  {:>9}  {:>11}  queue",
            "region", "waiting", "in flight", "dead-letter"
        )?;
        for q in &self.queues {
            writeln!(
                f,
                "  {:<14}  {:>8}  {:>9}  {:>11}  {}",
                q.region, q.waiting, q.in_flight, q.dead_letter, q.url
            )?;
        }
        let stuck: usize = self.buckets.iter().map(|b| b.relay_waiting).sum();
        if stuck > 0 {
            writeln!(f, "\n  ({stuck} notifications still on member relay queues: a delivery was interrupted)")?;
        }
        Ok(())
    }
}
