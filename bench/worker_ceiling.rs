//! The contenders `trailvault run` is measured against in `bench/worker`, written with the same
//! SDK and reading the same configuration:
//!
//! - **ceiling** (the default): what the emulator allows for this work with nothing else.
//!   Each queue is long-polled for 10 messages; each object is read as its account's reader
//!   role (cached clients) and written into the archive bucket with trailvault's headers
//!   (SSE-KMS under the archive key, its SHA-256 checksum, Object Lock mode and retain-until
//!   from the policy, `If-None-Match: *`); deletes go out 10 at a time. `worker.max_in_flight`
//!   copies at once. No log check, no manifest, no read back, no alerts.
//! - **naive** (`--naive`): what a Lambda would do: `worker.max_in_flight` loops that each
//!   receive one message, copy its objects the same way and delete it.
//!
//! Both stop once every queue has answered empty twice in a row with nothing in flight, and
//! print one JSON line: objects, bytes, and the active window (first receive to last delete).
//!
//! - **floor** (`--floor`): what no archive worker can avoid per byte: SHA-256 of each log
//!   file and gunzip of it (the worker must read the file to know it is CloudTrail), on one
//!   core, over the CloudTrail files in the archive bucket (read into memory first, not
//!   timed; up to 256 MB). One JSON line: files, compressed bytes, and CPU ms per compressed
//!   MB for each part and both.
//!
//!   cargo run --release --example worker_ceiling -- trailvault.toml [--naive | --floor]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ServerSideEncryption};
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;
use trailvault::archive::{layout, routing};
use trailvault::aws::{Aws, Members};
use trailvault::config::Config;
use trailvault::notification::{self, Notification};
use trailvault::retention::{lock::object_lock_mode, retain_until};

struct Bench {
    config: Config,
    aws: Aws,
    members: Members,
    objects: AtomicU64,
    bytes: AtomicU64,
    first_receive: Mutex<Option<Instant>>,
    last_delete: Mutex<Option<Instant>>,
}

impl Bench {
    fn received(&self) {
        self.first_receive
            .lock()
            .unwrap()
            .get_or_insert_with(Instant::now);
    }

    fn deleted(&self) {
        *self.last_delete.lock().unwrap() = Some(Instant::now());
    }

    /// One message's objects, copied one after another.
    async fn copy_message(&self, body: &str) {
        let Ok(Notification::Objects(objects)) = notification::parse(body) else {
            return;
        };
        for object in &objects {
            let route = routing::route(&self.config, object).expect("a devstack object routes");
            let source = self
                .members
                .get(route.account)
                .await
                .s3(&route.bucket.region);
            let got = source
                .get_object()
                .bucket(&object.bucket)
                .key(&object.key)
                .set_version_id(object.version_id.clone())
                .send()
                .await
                .expect("GetObject");
            let body = got.body.collect().await.expect("the body").into_bytes();
            let sha = Sha256::digest(&body);
            let lock = self.config.retention.lock;
            let until = retain_until(time::OffsetDateTime::now_utc(), lock.period);
            let size = body.len() as u64;
            let put = self
                .aws
                .s3(&self.config.archive.region)
                .put_object()
                .bucket(self.config.archive.bucket.as_str())
                .key(&route.archive_key)
                .body(ByteStream::from(body))
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(self.config.archive.kms_key.as_str())
                .bucket_key_enabled(true)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(sha))
                .object_lock_mode(object_lock_mode(lock.mode))
                .object_lock_retain_until_date(DateTime::from_secs(until.unix_timestamp()))
                .if_none_match("*")
                .send()
                .await;
            match put {
                Ok(_) => {
                    self.objects.fetch_add(1, Ordering::Relaxed);
                    self.bytes.fetch_add(size, Ordering::Relaxed);
                }
                // Taken: a redelivery; the ceiling does not tell duplicates from conflicts.
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {}
                Err(e) => panic!("PutObject {}: {e:?}", route.archive_key),
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: worker_ceiling CONFIG [--naive]");
    let mode = args.next();
    let naive = mode.as_deref() == Some("--naive");
    let config = Config::load(std::path::Path::new(&path)).expect("a valid configuration");
    let aws = Aws::load(&config.aws).await;
    if mode.as_deref() == Some("--floor") {
        return floor(&config, &aws).await;
    }
    let members = Members::new(&aws, &config.archive.region);
    let bench = Arc::new(Bench {
        config,
        aws,
        members,
        objects: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        first_receive: Mutex::new(None),
        last_delete: Mutex::new(None),
    });
    let started = Instant::now();
    if naive {
        run_naive(&bench).await;
    } else {
        run_ceiling(&bench).await;
    }
    let whole = started.elapsed();
    let first = bench.first_receive.lock().unwrap().unwrap_or(started);
    let last = bench.last_delete.lock().unwrap().unwrap_or(first);
    println!(
        "{}",
        serde_json::json!({
            "contender": if naive { "naive" } else { "ceiling" },
            "objects": bench.objects.load(Ordering::Relaxed),
            "bytes": bench.bytes.load(Ordering::Relaxed),
            "whole_s": whole.as_secs_f64(),
            "active_s": last.saturating_duration_since(first).as_secs_f64(),
        })
    );
}

/// Per queue: receive 10, copy each in one of `max_in_flight` slots, delete 10 at a time.
async fn run_ceiling(bench: &Arc<Bench>) {
    let slots = Arc::new(Semaphore::new(bench.config.worker.max_in_flight.get()));
    let mut queues = Vec::new();
    for q in &bench.config.queues {
        let (bench, slots) = (bench.clone(), slots.clone());
        let sqs = bench.aws.sqs(q.url.region());
        let url = q.url.to_string();
        queues.push(tokio::spawn(async move {
            let pending: Arc<Mutex<Vec<String>>> = Arc::default();
            let mut empty = 0;
            let mut copies = tokio::task::JoinSet::new();
            loop {
                let out = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .expect("ReceiveMessage");
                while copies.try_join_next().is_some() {}
                let messages = out.messages.unwrap_or_default();
                if messages.is_empty() {
                    empty += 1;
                    // Done once it answered empty twice with none of its copies running.
                    if empty >= 2 && copies.is_empty() {
                        break;
                    }
                    continue;
                }
                empty = 0;
                bench.received();
                for message in messages {
                    let permit = slots.clone().acquire_owned().await.unwrap();
                    let (bench, sqs, url) = (bench.clone(), sqs.clone(), url.clone());
                    let pending = pending.clone();
                    copies.spawn(async move {
                        bench.copy_message(message.body().unwrap_or_default()).await;
                        drop(permit);
                        let full = {
                            let mut p = pending.lock().unwrap();
                            p.push(message.receipt_handle().unwrap_or_default().to_owned());
                            (p.len() >= 10).then(|| std::mem::take(&mut *p))
                        };
                        if let Some(batch) = full {
                            delete(bench, sqs, url, batch).await;
                        }
                    });
                }
            }
            let rest = std::mem::take(&mut *pending.lock().unwrap());
            if !rest.is_empty() {
                delete(bench, sqs, url, rest).await;
            }
        }));
    }
    for q in queues {
        q.await.unwrap();
    }
}

async fn delete(bench: Arc<Bench>, sqs: aws_sdk_sqs::Client, url: String, receipts: Vec<String>) {
    let entries = receipts
        .iter()
        .enumerate()
        .map(|(i, r)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(r)
                .build()
                .unwrap()
        })
        .collect();
    sqs.delete_message_batch()
        .queue_url(&url)
        .set_entries(Some(entries))
        .send()
        .await
        .expect("DeleteMessageBatch");
    bench.deleted();
}

/// `max_in_flight` loops, each over the queues in turn: receive one, copy, delete one.
async fn run_naive(bench: &Arc<Bench>) {
    let queues: Vec<(aws_sdk_sqs::Client, String)> = bench
        .config
        .queues
        .iter()
        .map(|q| (bench.aws.sqs(q.url.region()), q.url.to_string()))
        .collect();
    let queues = Arc::new(queues);
    let mut loops = Vec::new();
    for start in 0..bench.config.worker.max_in_flight.get() {
        let (bench, queues) = (bench.clone(), queues.clone());
        loops.push(tokio::spawn(async move {
            let mut empty_in_a_row = 0;
            let mut i = start;
            while empty_in_a_row < 2 * queues.len() {
                let (sqs, url) = &queues[i % queues.len()];
                i += 1;
                let out = sqs
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(1)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .expect("ReceiveMessage");
                let Some(message) = out.messages.unwrap_or_default().into_iter().next() else {
                    empty_in_a_row += 1;
                    continue;
                };
                empty_in_a_row = 0;
                bench.received();
                bench.copy_message(message.body().unwrap_or_default()).await;
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("DeleteMessage");
                bench.deleted();
            }
        }));
    }
    for l in loops {
        l.await.unwrap();
    }
}

/// SHA-256 and gunzip of the archive's CloudTrail files, timed on one thread.
// The floor is the raw decoder, without the cap and accounting the worker's reader adds.
#[allow(clippy::disallowed_types)]
async fn floor(config: &Config, aws: &Aws) {
    const MAX_BYTES: usize = 256 << 20;
    let s3 = aws.s3(&config.archive.region);
    let bucket = config.archive.bucket.as_str();
    let mut keys = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.expect("ListObjectsV2 on the archive");
        for o in page.contents() {
            let key = o.key().unwrap_or_default();
            if key.ends_with(".json.gz") && !key.starts_with(layout::MANIFESTS) {
                keys.push(key.to_owned());
            }
        }
    }
    let mut bodies = Vec::new();
    let mut total = 0;
    for key in keys {
        if total >= MAX_BYTES {
            break;
        }
        let got = s3.get_object().bucket(bucket).key(&key).send().await;
        let body = got
            .expect("GetObject")
            .body
            .collect()
            .await
            .expect("the body");
        let body = body.into_bytes();
        total += body.len();
        bodies.push(body);
    }
    let mb = total as f64 / 1e6;
    let timed = |f: &dyn Fn(&[u8])| {
        let started = Instant::now();
        for b in &bodies {
            f(b);
        }
        started.elapsed().as_secs_f64() * 1000.0 / mb
    };
    let sha = |b: &[u8]| {
        std::hint::black_box(Sha256::digest(b));
    };
    let gunzip = |b: &[u8]| {
        let mut d = flate2::read::MultiGzDecoder::new(b);
        let mut buf = vec![0u8; 64 << 10];
        while std::io::Read::read(&mut d, &mut buf).expect("gzip") > 0 {}
    };
    // Best of three, each part alone, then both as the worker does them.
    let best = |f: &dyn Fn(&[u8])| (0..3).map(|_| timed(f)).fold(f64::MAX, f64::min);
    let sha_ms = best(&sha);
    let gunzip_ms = best(&gunzip);
    let both_ms = best(&|b: &[u8]| {
        sha(b);
        gunzip(b);
    });
    println!(
        "{}",
        serde_json::json!({
            "contender": "floor",
            "files": bodies.len(),
            "bytes": total,
            "sha256_ms_per_mb": sha_ms,
            "gunzip_ms_per_mb": gunzip_ms,
            "ms_per_mb": both_ms,
        })
    );
}
