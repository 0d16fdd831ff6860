//! "Running CloudTrail" for one account and region: the log files and hourly signed digest
//! files a trail delivers, named, laid out, hashed and signed exactly as CloudTrail does it,
//! and the Insights files of a trail with CloudTrail Insights on.
//!
//! Everything is a pure function of the seed, the member's slot and the region (plus the ids
//! the emulator assigned): the same inputs give the same bytes.

use std::io::Write as _;
use std::sync::Arc;

use md5::Md5;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::records::{self, Mix};
use crate::state::{ChainHead, Layout};
use crate::timefmt;

/// A seed for one purpose, derived from the run's seed and some labels.
pub fn derive_seed(seed: u64, labels: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.to_be_bytes());
    for label in labels {
        h.update((label.len() as u64).to_be_bytes());
        h.update(label.as_bytes());
    }
    h.finalize().into()
}

/// CloudTrail's signing key for one region.
pub struct SigningKey {
    pub region: String,
    private: RsaPrivateKey,
    /// PKCS#1 `RSAPublicKey`, DER: what `ListPublicKeys` returns as `Value`.
    pub public_der: Vec<u8>,
    /// Hex MD5 of `public_der`, as digests name it in `digestPublicKeyFingerprint`.
    pub fingerprint: String,
}

impl SigningKey {
    /// The region's key, the same for the same seed.
    pub fn derive(seed: u64, region: &str) -> anyhow::Result<SigningKey> {
        let mut rng = ChaCha8Rng::from_seed(derive_seed(seed, &["cloudtrail-signing-key", region]));
        let private = RsaPrivateKey::new(&mut rng, 2048)?;
        let public_der = private.to_public_key().to_pkcs1_der()?.as_bytes().to_vec();
        let fingerprint = hex::encode(Md5::digest(&public_der));
        Ok(SigningKey {
            region: region.to_owned(),
            private,
            public_der,
            fingerprint,
        })
    }

    /// SHA256withRSA (RSASSA-PKCS1-v1_5), hex, as CloudTrail signs digests.
    pub fn sign(&self, message: &[u8]) -> String {
        let signature = self
            .private
            .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message))
            .expect("a 2048-bit key signs a SHA-256 digest");
        hex::encode(signature)
    }

    /// This key as CloudTrail `ListPublicKeys` returns it (AWS CLI JSON output).
    pub fn public_key_list(&self) -> serde_json::Value {
        use base64::Engine as _;
        serde_json::json!({
            "PublicKeyList": [{
                "Value": base64::engine::general_purpose::STANDARD.encode(&self.public_der),
                "ValidityStartTime": "2020-01-01T00:00:00+00:00",
                "ValidityEndTime": "2100-01-01T00:00:00+00:00",
                "Fingerprint": self.fingerprint,
            }]
        })
    }
}

/// What one trail delivers into one bucket.
#[derive(Debug, Clone)]
pub struct TrailSpec {
    pub seed: u64,
    pub slot: usize,
    pub account: String,
    /// Another account of the organization, for cross-account activity.
    pub other_account: String,
    pub region: String,
    pub bucket: String,
    pub layout: Layout,
    pub trail_name: String,
}

/// How much to deliver: `files` log files and `insights` Insights files spread over `hours`
/// digest periods from `start`.
#[derive(Debug, Clone, Copy)]
pub struct Volume {
    pub start: OffsetDateTime,
    pub hours: u32,
    pub files: u32,
    pub insights: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Log,
    Digest,
    Insight,
}

/// One object as CloudTrail puts it into the bucket.
pub struct Delivered {
    pub kind: Kind,
    pub key: String,
    /// The gzip bytes written to S3.
    pub body: Vec<u8>,
    pub delivered_at: OffsetDateTime,
    /// User metadata (without `x-amz-meta-`): the signature, on digests.
    pub metadata: Vec<(String, String)>,
    pub records: usize,
}

impl Delivered {
    pub const CONTENT_TYPE: &'static str = "application/json";
    pub const CONTENT_ENCODING: &'static str = "gzip";
}

/// A log file as a digest lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct DigestLogFile {
    #[serde(rename = "s3Bucket")]
    s3_bucket: String,
    #[serde(rename = "s3Object")]
    s3_object: String,
    hash_value: String,
    hash_algorithm: &'static str,
    newest_event_time: String,
    oldest_event_time: String,
}

/// A digest file's content, fields in CloudTrail's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DigestBody<'a> {
    aws_account_id: &'a str,
    digest_start_time: String,
    digest_end_time: String,
    #[serde(rename = "digestS3Bucket")]
    digest_s3_bucket: &'a str,
    #[serde(rename = "digestS3Object")]
    digest_s3_object: &'a str,
    digest_public_key_fingerprint: &'a str,
    digest_signature_algorithm: &'static str,
    newest_event_time: Option<String>,
    oldest_event_time: Option<String>,
    #[serde(rename = "previousDigestS3Bucket")]
    previous_digest_s3_bucket: Option<&'a str>,
    #[serde(rename = "previousDigestS3Object")]
    previous_digest_s3_object: Option<&'a str>,
    previous_digest_hash_value: Option<&'a str>,
    previous_digest_hash_algorithm: Option<&'static str>,
    previous_digest_signature: Option<&'a str>,
    log_files: &'a [DigestLogFile],
}

struct Planned {
    period: u32,
    delivered_at: OffsetDateTime,
    what: What,
}

enum What {
    Log { records: usize, mix: Mix },
    Insight,
}

/// Yields a trail's files in delivery order: each period's log and Insights files, then its
/// digest.
///
/// Digests list log files only. AWS documents no digest coverage of Insights files (the
/// validation pages speak of log files; `aws cloudtrail validate-logs` knows no Insights
/// folder), so the devstack does not claim any: an archive must not count on it.
pub struct Trail {
    spec: TrailSpec,
    key: Arc<SigningKey>,
    rng: ChaCha8Rng,
    /// Insights files draw from their own stream, so that turning them on leaves every log
    /// file and digest byte for byte as it was.
    insight_rng: ChaCha8Rng,
    /// Digest periods start this long after the hour: CloudTrail's periods run from when
    /// validation was turned on, not from the top of the hour.
    period_origin: OffsetDateTime,
    volume: Volume,
    plan: std::vec::IntoIter<Planned>,
    next: Option<Planned>,
    period: u32,
    period_logs: Vec<DigestLogFile>,
    chain: Option<ChainHead>,
}

impl Trail {
    /// `chain` is the trail's newest digest so far, if any: the first digest links to it.
    pub fn new(
        spec: TrailSpec,
        key: Arc<SigningKey>,
        volume: Volume,
        chain: Option<ChainHead>,
    ) -> Trail {
        let slot = spec.slot.to_string();
        // The periods' offset from the hour belongs to the trail, so that a later delivery
        // starting where this one ended continues the same hourly grid.
        let offset = ChaCha8Rng::from_seed(derive_seed(
            spec.seed,
            &["digest-period", &slot, &spec.region],
        ))
        .gen_range(0..3600);
        let period_origin = volume.start + time::Duration::seconds(offset);
        let start_label = timefmt::event(volume.start);
        let mut rng = ChaCha8Rng::from_seed(derive_seed(
            spec.seed,
            &["trail", &slot, &spec.region, &start_label],
        ));
        let mut plan: Vec<Planned> = Vec::with_capacity(volume.files as usize);
        let per_period = volume.files.div_ceil(volume.hours.max(1));
        let slice = (3600 / per_period.max(1)).max(1);
        let mut in_period = 0;
        for i in 0..volume.files {
            // Evenly over the periods, at a jittered point inside each one's share.
            let period = (u64::from(i) * u64::from(volume.hours) / u64::from(volume.files)) as u32;
            if plan.last().is_some_and(|p| p.period != period) {
                in_period = 0;
            }
            let offset = i64::from(in_period * slice) + rng.gen_range(0..i64::from(slice));
            in_period += 1;
            let delivered_at = period_origin
                + time::Duration::hours(i64::from(period))
                + time::Duration::seconds(offset.min(3599));
            let roll: f64 = rng.gen();
            let (records, mix) = if roll < 0.03 {
                (rng.gen_range(8_000..30_000), Mix::DataHeavy)
            } else if roll < 0.30 {
                let mix = if rng.gen_bool(0.3) {
                    Mix::DataHeavy
                } else {
                    Mix::Management
                };
                (rng.gen_range(40..800), mix)
            } else {
                (rng.gen_range(1..30), Mix::Management)
            };
            plan.push(Planned {
                period,
                delivered_at,
                what: What::Log { records, mix },
            });
        }
        let mut insight_rng = ChaCha8Rng::from_seed(derive_seed(
            spec.seed,
            &["insight", &slot, &spec.region, &start_label],
        ));
        let per_period = volume.insights.div_ceil(volume.hours.max(1));
        let slice = (3600 / per_period.max(1)).max(1);
        let mut in_period = 0;
        let mut last_period = None;
        for i in 0..volume.insights {
            let period =
                (u64::from(i) * u64::from(volume.hours) / u64::from(volume.insights)) as u32;
            if last_period != Some(period) {
                in_period = 0;
                last_period = Some(period);
            }
            let offset = i64::from(in_period * slice) + insight_rng.gen_range(0..i64::from(slice));
            in_period += 1;
            plan.push(Planned {
                period,
                delivered_at: period_origin
                    + time::Duration::hours(i64::from(period))
                    + time::Duration::seconds(offset.min(3599)),
                what: What::Insight,
            });
        }
        // Stable: log files keep their order among themselves, and so do Insights files.
        plan.sort_by_key(|p| (p.period, p.delivered_at));
        let mut plan = plan.into_iter();
        let next = plan.next();
        Trail {
            spec,
            key,
            rng,
            insight_rng,
            period_origin,
            volume,
            plan,
            next,
            period: 0,
            period_logs: Vec::new(),
            chain,
        }
    }

    /// The trail's newest digest, after everything yielded so far.
    pub fn chain_head(&self) -> Option<&ChainHead> {
        self.chain.as_ref()
    }

    fn root(&self) -> String {
        self.spec.layout.account_root(&self.spec.account)
    }

    fn log_file(&mut self, delivered_at: OffsetDateTime, count: usize, mix: Mix) -> Delivered {
        let ctx = records::Context {
            account: &self.spec.account,
            region: &self.spec.region,
            other_account: &self.spec.other_account,
        };
        let mut records = records::generate(&mut self.rng, &ctx, delivered_at, count, mix);
        records::shuffle(&mut self.rng, &mut records);
        let oldest = records
            .iter()
            .map(|r| r.event_time.as_str())
            .min()
            .unwrap_or_default()
            .to_owned();
        let newest = records
            .iter()
            .map(|r| r.event_time.as_str())
            .max()
            .unwrap_or_default()
            .to_owned();
        let json = serde_json::to_vec(&serde_json::json!({ "Records": records }))
            .expect("records serialise");

        let unique = unique_suffix(&mut self.rng);
        let (a, r, t) = (&self.spec.account, &self.spec.region, delivered_at);
        let key = format!(
            "{}CloudTrail/{r}/{}/{a}_CloudTrail_{r}_{}_{unique}.json.gz",
            self.root(),
            timefmt::date_path(t),
            timefmt::log_stamp(t)
        );
        self.period_logs.push(DigestLogFile {
            s3_bucket: self.spec.bucket.clone(),
            s3_object: key.clone(),
            hash_value: hex::encode(Sha256::digest(&json)),
            hash_algorithm: "SHA-256",
            newest_event_time: newest,
            oldest_event_time: oldest,
        });
        Delivered {
            kind: Kind::Log,
            key,
            body: gzip(&json),
            delivered_at: t,
            metadata: Vec::new(),
            records: records.len(),
        }
    }

    /// An Insights file: named like a log file with `CloudTrail-Insight` for `CloudTrail`, in
    /// its own folder, `{"Records": [...]}` like a log file.
    fn insight_file(&mut self, delivered_at: OffsetDateTime) -> Delivered {
        let ctx = records::Context {
            account: &self.spec.account,
            region: &self.spec.region,
            other_account: &self.spec.other_account,
        };
        let records = records::insight_event(&mut self.insight_rng, &ctx, delivered_at);
        let json = serde_json::to_vec(&serde_json::json!({ "Records": records }))
            .expect("records serialise");
        let unique = unique_suffix(&mut self.insight_rng);
        let (a, r, t) = (&self.spec.account, &self.spec.region, delivered_at);
        let key = format!(
            "{}CloudTrail-Insight/{r}/{}/{a}_CloudTrail-Insight_{r}_{}_{unique}.json.gz",
            self.root(),
            timefmt::date_path(t),
            timefmt::log_stamp(t)
        );
        Delivered {
            kind: Kind::Insight,
            key,
            body: gzip(&json),
            delivered_at: t,
            metadata: Vec::new(),
            records: records.len(),
        }
    }

    fn digest_file(&mut self) -> Delivered {
        let start = self.period_origin + time::Duration::hours(i64::from(self.period));
        let end = start + time::Duration::hours(1);
        let (a, r) = (&self.spec.account, &self.spec.region);
        let key = format!(
            "{}CloudTrail-Digest/{r}/{}/{a}_CloudTrail-Digest_{r}_{}_{r}_{}.json.gz",
            self.root(),
            timefmt::date_path(end),
            self.spec.trail_name,
            timefmt::digest_stamp(end)
        );
        let logs = std::mem::take(&mut self.period_logs);
        let end_time = timefmt::event(end);
        let chain = self.chain.take();
        let body = DigestBody {
            aws_account_id: a,
            digest_start_time: timefmt::event(start),
            digest_end_time: end_time.clone(),
            digest_s3_bucket: &self.spec.bucket,
            digest_s3_object: &key,
            digest_public_key_fingerprint: &self.key.fingerprint,
            digest_signature_algorithm: "SHA256withRSA",
            newest_event_time: logs.iter().map(|l| l.newest_event_time.clone()).max(),
            oldest_event_time: logs.iter().map(|l| l.oldest_event_time.clone()).min(),
            previous_digest_s3_bucket: chain.as_ref().map(|c| c.bucket.as_str()),
            previous_digest_s3_object: chain.as_ref().map(|c| c.key.as_str()),
            previous_digest_hash_value: chain.as_ref().map(|c| c.sha256.as_str()),
            previous_digest_hash_algorithm: chain.as_ref().map(|_| "SHA-256"),
            previous_digest_signature: chain.as_ref().map(|c| c.signature.as_str()),
            log_files: &logs,
        };
        let json = serde_json::to_vec(&body).expect("digests serialise");
        let sha256 = hex::encode(Sha256::digest(&json));
        // The string to sign: end time, bucket/key, hash of the decompressed bytes as
        // delivered, previous signature or the text null. No trailing newline.
        let previous = chain.as_ref().map_or("null", |c| c.signature.as_str());
        let to_sign = format!(
            "{end_time}\n{}/{key}\n{sha256}\n{previous}",
            self.spec.bucket
        );
        let signature = self.key.sign(to_sign.as_bytes());
        self.chain = Some(ChainHead {
            bucket: self.spec.bucket.clone(),
            key: key.clone(),
            end_time,
            signature: signature.clone(),
            sha256,
        });
        self.period += 1;
        Delivered {
            kind: Kind::Digest,
            key,
            body: gzip(&json),
            delivered_at: end,
            metadata: vec![
                ("signature".to_owned(), signature),
                ("signature-algorithm".to_owned(), "SHA256withRSA".to_owned()),
            ],
            records: 0,
        }
    }
}

impl Iterator for Trail {
    type Item = Delivered;

    fn next(&mut self) -> Option<Delivered> {
        if self.period >= self.volume.hours {
            return None;
        }
        match self.next.take() {
            Some(planned) if planned.period == self.period => {
                self.next = self.plan.next();
                Some(match planned.what {
                    What::Log { records, mix } => self.log_file(planned.delivered_at, records, mix),
                    What::Insight => self.insight_file(planned.delivered_at),
                })
            }
            other => {
                self.next = other;
                Some(self.digest_file())
            }
        }
    }
}

/// The 16 letters and digits that keep two files of the same minute apart.
fn unique_suffix(rng: &mut ChaCha8Rng) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..16)
        .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char)
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 8),
        flate2::Compression::default(),
    );
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(layout: Layout) -> TrailSpec {
        TrailSpec {
            seed: 7,
            slot: 1,
            account: "111122223333".to_owned(),
            other_account: "444455556666".to_owned(),
            region: "eu-west-1".to_owned(),
            bucket: "trail-bucket".to_owned(),
            layout,
            trail_name: "management-events".to_owned(),
        }
    }

    fn volume() -> Volume {
        Volume {
            start: timefmt::parse("2026-11-01T00:00:00Z").unwrap(),
            hours: 3,
            files: 7,
            insights: 0,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let key = Arc::new(SigningKey::derive(7, "eu-west-1").unwrap());
        let a: Vec<(String, Vec<u8>)> =
            Trail::new(spec(Layout::Plain), key.clone(), volume(), None)
                .map(|d| (d.key, d.body))
                .collect();
        let b: Vec<(String, Vec<u8>)> =
            Trail::new(spec(Layout::Plain), key.clone(), volume(), None)
                .map(|d| (d.key, d.body))
                .collect();
        assert_eq!(a.len(), 7 + 3);
        assert!(a == b);
        let other_key = SigningKey::derive(8, "eu-west-1").unwrap();
        assert_ne!(other_key.fingerprint, key.fingerprint);
    }

    #[test]
    fn each_period_ends_with_its_digest_and_digests_chain() {
        let key = Arc::new(SigningKey::derive(7, "eu-west-1").unwrap());
        let layout = Layout::Organization {
            organization_id: "o-abcdefghij".to_owned(),
        };
        let mut trail = Trail::new(spec(layout), key, volume(), None);
        let files: Vec<Delivered> = trail.by_ref().collect();
        let digests: Vec<&Delivered> = files.iter().filter(|f| f.kind == Kind::Digest).collect();
        assert_eq!(digests.len(), 3);
        assert_eq!(files.last().unwrap().kind, Kind::Digest);
        assert!(files
            .iter()
            .all(|f| f.key.starts_with("AWSLogs/o-abcdefghij/111122223333/")));
        assert_eq!(trail.chain_head().unwrap().key, digests[2].key);
        // Delivery order is time order.
        assert!(files
            .windows(2)
            .all(|w| w[0].delivered_at <= w[1].delivered_at));
    }

    #[test]
    fn insights_files_come_in_their_own_folder_and_leave_logs_and_digests_alone() {
        let key = Arc::new(SigningKey::derive(7, "eu-west-1").unwrap());
        let without: Vec<Delivered> =
            Trail::new(spec(Layout::Plain), key.clone(), volume(), None).collect();
        let with: Vec<Delivered> = Trail::new(
            spec(Layout::Plain),
            key,
            Volume {
                insights: 4,
                ..volume()
            },
            None,
        )
        .collect();
        let (insights, rest): (Vec<&Delivered>, Vec<&Delivered>) =
            with.iter().partition(|f| f.kind == Kind::Insight);
        assert_eq!(insights.len(), 4);
        let same = |a: &[&Delivered], b: &[Delivered]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| x.key == y.key && x.body == y.body)
        };
        assert!(same(&rest, &without), "logs and digests changed");
        assert!(with
            .windows(2)
            .all(|w| w[0].delivered_at <= w[1].delivered_at));
        assert_eq!(with.last().unwrap().kind, Kind::Digest);
        for file in &insights {
            let stamp = timefmt::log_stamp(file.delivered_at);
            let folder = format!(
                "AWSLogs/111122223333/CloudTrail-Insight/eu-west-1/{}/",
                timefmt::date_path(file.delivered_at)
            );
            let name = file.key.strip_prefix(&folder).expect("the Insight folder");
            let unique = name
                .strip_prefix(&format!(
                    "111122223333_CloudTrail-Insight_eu-west-1_{stamp}_"
                ))
                .and_then(|n| n.strip_suffix(".json.gz"))
                .unwrap_or_else(|| panic!("{}", file.key));
            assert!(unique.len() == 16 && unique.bytes().all(|b| b.is_ascii_alphanumeric()));
            // One Insights event, its Start and End records (the content is checked against
            // the emulator, through trailvault's own reader, in tests/devstack.rs).
            assert_eq!(file.records, 2);
        }
    }
}
