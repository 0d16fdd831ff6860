//! The floor under `trailvault verify`: gunzip + SHA-256 of the same bytes, in memory, on
//! every core, with no S3, no signatures and no bookkeeping.
//!
//!     cargo run --release --example verify_floor -- CONFIG
//!
//! Reads every CloudTrail file in the archive the configuration names (not timed), then
//! times what verification cannot avoid doing to them: hashing the delivered bytes (for the
//! manifests) and hashing the decompressed bytes (for CloudTrail's digests). Prints one JSON
//! line: files, compressed and decompressed bytes, seconds.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Instant;

use sha2::{Digest as _, Sha256};
use trailvault::aws::{Aws, Versions};
use trailvault::cloudtrail::{gzip, key};
use trailvault::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("usage: verify_floor CONFIG"))?;
    let config = Config::load(&path)?;
    let aws = Aws::load(&config.aws).await;
    let s3 = aws.s3(&config.archive.region);
    let bucket = config.archive.bucket.as_str();

    let mut keys = Vec::new();
    let mut pages = Versions::new(s3.clone(), bucket, None);
    while let Some(page) = pages
        .next_page()
        .await
        .map_err(|f| anyhow::anyhow!(f.detail))?
    {
        for v in page.versions.into_iter().filter(|v| v.is_latest) {
            let source = v
                .key
                .strip_prefix(&config.archive.key_prefix)
                .and_then(|k| k.split_once('/'))
                .map(|(_, k)| k);
            if source.is_some_and(|k| key::parse(k).is_ok()) {
                keys.push(v.key);
            }
        }
    }
    let mut files = Vec::new();
    for k in &keys {
        let out = s3.get_object().bucket(bucket).key(k).send().await?;
        files.push(out.body.collect().await?.into_bytes());
    }
    let compressed: usize = files.iter().map(|f| f.len()).sum();

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let decompressed: u64 = std::thread::scope(|scope| {
        let chunks: Vec<_> = files
            .chunks(files.len().div_ceil(threads).max(1))
            .map(|chunk| {
                scope.spawn(move || {
                    let mut total = 0u64;
                    let mut buf = vec![0u8; 256 * 1024];
                    for f in chunk {
                        std::hint::black_box(Sha256::digest(f));
                        let mut r = gzip::reader(&f[..], 1 << 31);
                        let mut h = Sha256::new();
                        loop {
                            let n = r.read(&mut buf).expect("archived files are gzip");
                            if n == 0 {
                                break;
                            }
                            total += n as u64;
                            h.update(&buf[..n]);
                        }
                        std::hint::black_box(h.finalize());
                    }
                    total
                })
            })
            .collect();
        chunks
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .sum()
    });
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "files": files.len(),
            "compressed_bytes": compressed,
            "decompressed_bytes": decompressed,
            "seconds": seconds,
            "threads": threads,
        })
    );
    Ok(())
}
