//! What the integration tests share: the emulator's address, a fresh organization per test,
//! and the identities to act with.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::BehaviorVersion;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use trailvault::aws::Aws;
use trailvault::config::Config;
use trailvault_devstack::deliver;
use trailvault_devstack::provision;
use trailvault_devstack::session::Session;
use trailvault_devstack::state::{Delivery, Stack};

/// The emulator the test command started (`infra/local/emulator run -- ...`).
pub fn endpoint() -> String {
    std::env::var("TRAILVAULT_EMULATOR_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "TRAILVAULT_EMULATOR_ENDPOINT is not set: the integration tests need the local AWS \
             emulator. Run them with infra/test, or start one (infra/local/emulator start) and \
             export TRAILVAULT_EMULATOR_ENDPOINT=$(infra/local/emulator endpoint)"
        )
    })
}

/// A namespace no other test (in this or another process) uses: its own organization,
/// accounts, buckets and queues.
pub fn unique_namespace(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let raw = format!("{:x}{:x}{n:x}", std::process::id(), nanos);
    let suffix = &raw[raw.len().saturating_sub(16 - tag.len() - 1)..];
    format!("{tag}-{suffix}")
}

/// A provisioned organization, its state directory removed when dropped.
pub struct TestStack {
    pub stack: Stack,
    pub dir: tempfile::TempDir,
}

impl TestStack {
    /// Provisions a fresh organization: `members` member accounts in two regions, with the
    /// given notification deliveries.
    pub async fn up(tag: &str, members: usize, deliveries: &[Delivery]) -> TestStack {
        TestStack::up_at(&endpoint(), tag, members, deliveries).await
    }

    /// The same, in the emulator at `endpoint`.
    pub async fn up_at(
        endpoint: &str,
        tag: &str,
        members: usize,
        deliveries: &[Delivery],
    ) -> TestStack {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let opts = provision::Options {
            endpoint: endpoint.to_owned(),
            namespace: unique_namespace(tag),
            seed: 42,
            regions: vec!["us-east-1".to_owned(), "eu-west-1".to_owned()],
            members,
            deliveries: deliveries.to_vec(),
        };
        let stack = provision::up(&opts, dir.path())
            .await
            .expect("provisioning the organization");
        TestStack { stack, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs CloudTrail for `hours` digest periods with `files` log files per account and
    /// region.
    pub async fn deliver(&mut self, hours: u32, files: u32) -> Vec<deliver::TrailReport> {
        deliver::deliver(
            &mut self.stack,
            self.dir.path(),
            &deliver::Options {
                start: None,
                hours,
                files,
                insights: 0,
            },
        )
        .await
        .expect("delivering CloudTrail files")
    }

    /// The same, with the first digest period starting within the hour after `start`.
    pub async fn deliver_from(
        &mut self,
        start: time::OffsetDateTime,
        hours: u32,
        files: u32,
    ) -> Vec<deliver::TrailReport> {
        deliver::deliver(
            &mut self.stack,
            self.dir.path(),
            &deliver::Options {
                start: Some(start),
                hours,
                files,
                insights: 0,
            },
        )
        .await
        .expect("delivering CloudTrail files")
    }

    /// Drops every notification waiting on the central queues: files delivered without one.
    pub async fn drop_notifications(&self) {
        let sec = self.security().await;
        for queue in &self.stack.security.queues {
            sec.sqs(&queue.region)
                .purge_queue()
                .queue_url(&queue.url)
                .send()
                .await
                .expect("PurgeQueue on a central queue");
        }
        for region in &self.stack.regions {
            assert_eq!(self.depth(region).await, (0, 0, 0), "{region}: purged");
        }
    }

    /// A member account the organization gains now, not in trailvault's configuration.
    pub async fn add_member(&mut self, external_id: &str) -> trailvault_devstack::state::Member {
        provision::add_member(&mut self.stack, self.dir.path(), external_id)
            .await
            .expect("adding a member account")
    }

    /// The trailvault configuration `devstack up` wrote.
    pub fn config(&self) -> Config {
        Config::load(&self.dir.path().join("trailvault.toml"))
            .expect("the devstack's config is valid")
    }

    /// Clients acting as the worker role, reached the way the local worker reaches it: the
    /// devstack's AWS profile (an IAM user that assumes the role).
    pub async fn worker(&self) -> Aws {
        let files = EnvConfigFiles::builder()
            .with_file(
                EnvConfigFileKind::Config,
                self.dir.path().join("aws/config"),
            )
            .with_file(
                EnvConfigFileKind::Credentials,
                self.dir.path().join("aws/credentials"),
            )
            .build();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .profile_files(files)
            .profile_name("trailvault-worker")
            .load()
            .await;
        Aws::from_sdk_config(sdk, &self.config().aws)
    }

    /// The name of member `member`'s CloudTrail bucket in `region`.
    pub fn member_bucket(&self, member: usize, region: &str) -> String {
        self.stack.members[member]
            .buckets
            .iter()
            .find(|b| b.region == region)
            .unwrap_or_else(|| panic!("member {member} has no bucket in {region}"))
            .name
            .clone()
    }

    /// An administrator of `account` (through the organization's access role).
    pub async fn admin(&self, account: &str) -> Session {
        Session::management(&self.stack.endpoint, &self.stack.management_account)
            .await
            .expect("the emulator endpoint is local")
            .admin(account)
            .await
    }
}

/// The virtualenv the emulator script created (moto and the AWS CLI).
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("TRAILVAULT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".trailvault/venv"));
    venv.join("bin/python")
}

/// Every object of a bucket: (key, size).
pub async fn list(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.expect("ListObjectsV2");
        for o in page.contents() {
            out.push((
                o.key().unwrap_or_default().to_owned(),
                o.size().unwrap_or(0),
            ));
        }
    }
    out
}

/// An object's bytes and its response metadata.
pub async fn get(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> (Vec<u8>, aws_sdk_s3::operation::get_object::GetObjectOutput) {
    let mut out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject s3://{bucket}/{key}: {e:?}"));
    let body = std::mem::replace(
        &mut out.body,
        aws_sdk_s3::primitives::ByteStream::from_static(b""),
    );
    let bytes = body
        .collect()
        .await
        .expect("reading the body")
        .into_bytes()
        .to_vec();
    (bytes, out)
}

impl TestStack {
    /// An administrator of the security account.
    pub async fn security(&self) -> Session {
        self.admin(&self.stack.security.account.clone()).await
    }

    /// Sends a message body to the central queue of `region`, as S3 would.
    pub async fn send(&self, region: &str, body: &str) {
        let queue = self.stack.queue(region).unwrap().url.clone();
        self.security()
            .await
            .sqs(region)
            .send_message()
            .queue_url(queue)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage to the central queue");
    }

    /// Carries notifications of objects written by the test to the central queues.
    pub async fn relay(&self) -> usize {
        deliver::relay_pending(&self.stack)
            .await
            .expect("relaying notifications")
    }

    /// `trailvault` with this stack's configuration and the worker's local identity.
    pub fn trailvault(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_trailvault"));
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("AWS_") || name.starts_with("TRAILVAULT_") || name == "RUST_LOG" {
                cmd.env_remove(name.as_ref());
            }
        }
        cmd.env("AWS_CONFIG_FILE", self.path().join("aws/config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.path().join("aws/credentials"),
            )
            .env("AWS_PROFILE", "trailvault-worker")
            .env("TRAILVAULT_CONFIG", self.path().join("trailvault.toml"));
        cmd
    }

    /// Runs the worker until the queues are empty; returns its stdout (the summary) and stderr.
    pub fn drain(&self) -> (String, String) {
        let out = self
            .trailvault()
            .args(["run", "--until-empty"])
            .output()
            .expect("running the worker");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "the worker failed:\n{stdout}\n{stderr}"
        );
        (stdout, stderr)
    }

    /// `trailvault verify` over the archive, with the devstack's CloudTrail public keys.
    pub fn verify(&self) -> std::process::Output {
        self.trailvault()
            .arg("verify")
            .arg("--public-keys")
            .arg(self.path().join("public-keys"))
            .output()
            .expect("running trailvault verify")
    }

    /// Rewrites the worker's configuration (e.g. a shorter visibility timeout).
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let path = self.path().join("trailvault.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(text)).unwrap();
    }

    /// Every archived copy: (key, version id); trailvault's own objects (the manifests under
    /// `_trailvault/`) left out.
    pub async fn archive_versions(&self) -> Vec<(String, String)> {
        let mut copies = self.archive_versions_all().await;
        copies.retain(|(key, _)| !key.starts_with(trailvault::archive::layout::OWN_ROOT));
        copies
    }

    /// Every version in the archive, manifests included: (key, version id).
    pub async fn archive_versions_all(&self) -> Vec<(String, String)> {
        let s3 = self
            .security()
            .await
            .s3(&self.stack.security.archive_region);
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = s3
                .list_object_versions()
                .bucket(&self.stack.security.archive_bucket)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .expect("ListObjectVersions on the archive");
            for v in page.versions() {
                out.push((
                    v.key().unwrap_or_default().to_owned(),
                    v.version_id().unwrap_or("null").to_owned(),
                ));
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
        out.sort();
        out
    }

    /// (visible, in flight, dead-letter) messages on the central queue of `region`.
    pub async fn depth(&self, region: &str) -> (u64, u64, u64) {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let sqs = self.security().await.sqs(region);
        let q = self.stack.queue(region).unwrap();
        let read = |url: String| {
            let sqs = sqs.clone();
            async move {
                let out = sqs
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(A::ApproximateNumberOfMessages)
                    .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
                    .send()
                    .await
                    .unwrap();
                let attrs = out.attributes().unwrap();
                let n = |a: A| {
                    attrs
                        .get(&a)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                (
                    n(A::ApproximateNumberOfMessages),
                    n(A::ApproximateNumberOfMessagesNotVisible),
                )
            }
        };
        let (visible, in_flight) = read(q.url.clone()).await;
        let (dead, dead_in_flight) = read(q.dlq_url.clone()).await;
        (visible, in_flight, dead + dead_in_flight)
    }

    /// Every object CloudTrail (or the test) wrote: (bucket, key, bytes, user metadata).
    pub async fn sources(
        &self,
    ) -> Vec<(
        String,
        String,
        Vec<u8>,
        std::collections::HashMap<String, String>,
    )> {
        let mut out = Vec::new();
        for m in &self.stack.members {
            let session = self.admin(&m.account).await;
            for b in &m.buckets {
                let s3 = session.s3(&b.region);
                for (key, _) in list(&s3, &b.name).await {
                    let (bytes, head) = get(&s3, &b.name, &key).await;
                    out.push((
                        b.name.clone(),
                        key,
                        bytes,
                        head.metadata().cloned().unwrap_or_default(),
                    ));
                }
            }
        }
        out
    }
}

/// A moto server of one test's own, for what must not leak into other tests (IAM
/// enforcement is emulator-wide). Stopped, by its recorded pid, when dropped.
pub struct PrivateEmulator {
    pub endpoint: String,
    dir: tempfile::TempDir,
}

const EMULATOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/infra/local/emulator");

impl PrivateEmulator {
    pub fn start() -> PrivateEmulator {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(EMULATOR)
            .arg("start")
            .env("TRAILVAULT_EMULATOR_DIR", dir.path())
            // Stopped with this test process even if it dies before `drop` runs.
            .env("TRAILVAULT_EMULATOR_OWNER", std::process::id().to_string())
            .output()
            .expect("starting a private emulator");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let endpoint = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        PrivateEmulator { endpoint, dir }
    }

    /// From here on the emulator evaluates IAM policies (but never trust policies,
    /// ExternalIds, key or queue policies).
    pub fn enforce_iam(&self) {
        let out = std::process::Command::new("curl")
            .args([
                "--silent",
                "--fail",
                "-X",
                "POST",
                "-H",
                "Content-Type: text/plain",
                "--data-binary",
                "0",
            ])
            .arg(format!("{}/moto-api/reset-auth", self.endpoint))
            .output()
            .unwrap();
        assert!(out.status.success(), "turning IAM enforcement on failed");
    }

    /// The last `lines` lines of the server's log (its requests and their statuses), for a
    /// failing test to show what the emulator saw.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Back to no IAM evaluation, for the test's own inspection.
    pub fn relax_iam(&self) {
        let out = std::process::Command::new("curl")
            .args([
                "--silent",
                "--fail",
                "-X",
                "POST",
                "-H",
                "Content-Type: text/plain",
                "--data-binary",
                "inf",
            ])
            .arg(format!("{}/moto-api/reset-auth", self.endpoint))
            .output()
            .unwrap();
        assert!(out.status.success(), "turning IAM enforcement off failed");
    }
}

impl Drop for PrivateEmulator {
    fn drop(&mut self) {
        let _ = std::process::Command::new(EMULATOR)
            .arg("stop")
            .env("TRAILVAULT_EMULATOR_DIR", self.dir.path())
            .output();
    }
}

/// A GET of the worker's listener: (status, body), as `trailvault healthcheck` asks it.
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    trailvault::commands::healthcheck::get(
        address.parse().expect("a HOST:PORT address"),
        path,
        std::time::Duration::from_secs(10),
    )
    .unwrap()
}

/// The sum of a metric's samples whose labels contain every `filter`.
pub fn metric(text: &str, name: &str, filters: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
        })
        .filter(|l| filters.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `trailvault run` in the background, logging JSON; stopped with SIGTERM when dropped.
pub struct RunningWorker {
    pub child: std::process::Child,
    /// Where /healthz and /metrics listen.
    pub address: String,
    log: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl RunningWorker {
    pub fn start(mut cmd: std::process::Command) -> RunningWorker {
        use std::io::BufRead as _;
        let mut child = cmd
            .arg("run")
            .env("TRAILVAULT_LOG_FORMAT", "json")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting the worker");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("the worker logs where it listens")
                .unwrap();
            let event: serde_json::Value = serde_json::from_str(&line).expect("JSON logs");
            if event["message"] == "serving /healthz and /metrics" {
                break event["address"].as_str().unwrap().to_owned();
            }
        };
        // Keep reading stderr (so the worker never blocks on a full pipe), and keep it.
        let log = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        RunningWorker {
            child,
            address,
            log: Some(log),
        }
    }

    pub fn metrics(&self) -> String {
        let (status, text) = http_get(&self.address, "/metrics");
        assert_eq!(status, 200);
        text
    }

    /// SIGTERM, then the exit status and every log line.
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = self.terminate();
        let log = self.log.take().unwrap().join().unwrap();
        (status, log)
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        if self.log.is_some() {
            let _ = self.terminate();
        }
    }
}

/// trailvault's fault proxy (`infra/local/faultproxy.py`) in front of an emulator: rules turn
/// faults on and off while trailvault runs; the counts of what it injected are read back.
/// Stopped, by its own pid, when dropped.
pub struct FaultProxy {
    pub url: String,
    pub seed: u64,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl FaultProxy {
    /// In front of `upstream`, with the seed from `TRAILVAULT_FAULT_SEED` or a random one,
    /// printed so that a failing run can be replayed.
    pub fn start(upstream: &str) -> FaultProxy {
        let seed = std::env::var("TRAILVAULT_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random::<u32>) as u64;
        eprintln!("fault proxy seed: TRAILVAULT_FAULT_SEED={seed}");
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let child = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/infra/local/faultproxy.py"
            ))
            .arg("--upstream")
            .arg(upstream)
            .arg("--rules")
            .arg(dir.path().join("rules.json"))
            .arg("--stats")
            .arg(dir.path().join("stats.json"))
            .arg("--requests")
            .arg(dir.path().join("requests.json"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--seed")
            .arg(seed.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("starting the fault proxy (python3)");
        let started = std::time::Instant::now();
        let port = loop {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                break port;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "the fault proxy did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        FaultProxy {
            url: format!("http://127.0.0.1:{}", port.trim()),
            seed,
            dir,
            child,
        }
    }

    /// Replaces the rules (see the proxy's documentation); `[]` forwards everything.
    pub fn set(&self, rules: serde_json::Value) {
        let tmp = self.dir.path().join("rules.json.tmp");
        std::fs::write(&tmp, rules.to_string()).unwrap();
        std::fs::rename(tmp, self.dir.path().join("rules.json")).unwrap();
    }

    /// What it injected so far, by `op:fault[:code]`.
    pub fn injected(&self) -> std::collections::BTreeMap<String, u64> {
        std::fs::read_to_string(self.dir.path().join("stats.json"))
            .ok()
            .map(|s| serde_json::from_str(&s).unwrap())
            .unwrap_or_default()
    }
}

impl FaultProxy {
    /// Every request it forwarded or answered so far, by operation (S3's by
    /// `operation:bucket`).
    pub fn requests(&self) -> std::collections::BTreeMap<String, u64> {
        std::fs::read_to_string(self.dir.path().join("requests.json"))
            .ok()
            .map(|s| serde_json::from_str(&s).unwrap())
            .unwrap_or_default()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
