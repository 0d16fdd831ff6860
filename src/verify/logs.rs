//! CloudTrail's log files, checked against the hash a digest lists for them.

use std::io::Read as _;

use sha2::{Digest as _, Sha256};

use super::{Verifier, LOG_CAP};
use crate::cloudtrail::gzip;

impl Verifier {
    /// The SHA-256 of a log's decompressed bytes against `hash`; `None` when they match.
    pub(super) async fn check_log(
        &self,
        key: &str,
        version: Option<String>,
        hash: &str,
    ) -> Option<String> {
        let fetched = match self.fetch(key, version).await {
            Ok(f) => f,
            Err(why) => return Some(why.to_string()),
        };
        // Decompressing is the CPU-heavy part: off the async threads, on every core.
        let sha = tokio::task::spawn_blocking(move || {
            let mut reader = gzip::reader(&fetched.bytes[..], LOG_CAP);
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break Some(hex::encode(hasher.finalize())),
                    Ok(n) => hasher.update(&buf[..n]),
                    Err(_) => break None,
                }
            }
        })
        .await
        .ok()
        .flatten();
        match sha {
            None => Some("invalid format".to_owned()),
            Some(sha) if sha == hash => None,
            Some(_) => Some("hash value doesn't match".to_owned()),
        }
    }
}
