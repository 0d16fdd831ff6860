//! The Terraform modules, held to the same bar as the code: formatted, valid, checkov-clean,
//! and the organization example applied to the emulator (alerts on), where trailvault then runs
//! end to end (with IAM enforced) on exactly what Terraform created, a second plan changes
//! nothing, and destroy cleans up.
//!
//! Terraform and its AWS provider come from this machine (the provider from the filesystem
//! mirror named in infra/terraform/cli.tfrc); checkov from the virtualenv infra/test builds.
//! Without terraform the tests say they are skipped, and why; with `CI` set they fail instead.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use common::PrivateEmulator;
use serde_json::json;
use trailvault_devstack::provision;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Whether terraform can run here; when not, the caller skips, loudly. In CI (`CI` set) a
/// missing terraform fails instead: a green run must not hide checks that never ran.
fn terraform_missing(test: &str) -> bool {
    let ok = Command::new("terraform")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!(
            "{test}: terraform is not installed, and CI is set: the Terraform checks cannot \
             be skipped in CI; install terraform 1.5+ with the AWS provider 5.100 in \
             /opt/tf-plugins"
        );
    }
    if !ok {
        eprintln!(
            "SKIPPED {test}: terraform is not installed (the Terraform checks need terraform \
             1.5+ and the AWS provider 5.100 in /opt/tf-plugins)"
        );
    }
    !ok
}

/// `terraform` in `dir`, with the test CLI configuration and nothing from the environment.
fn terraform(dir: &Path) -> Command {
    let mut cmd = Command::new("terraform");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        // TF_LOG and TF_LOG_PATH pass, for debugging a failing apply.
        if name.starts_with("AWS_") || (name.starts_with("TF_") && !name.starts_with("TF_LOG")) {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd.current_dir(dir)
        .env(
            "TF_CLI_CONFIG_FILE",
            Path::new(REPO).join("infra/terraform/cli.tfrc"),
        )
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .env("CHECKPOINT_DISABLE", "1");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("running a command")
}

fn succeeded(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A copy of terraform/ (modules and examples refer to each other by relative path), so that
/// init's lock files and .terraform folders never land in the repository.
fn copy_terraform() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if name == ".terraform" || name.to_string_lossy().starts_with("terraform.tfstate") {
                continue;
            }
            let target = to.join(&name);
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&Path::new(REPO).join("terraform"), dir.path());
    dir
}

const ROOTS: &[&str] = &[
    "modules/archive",
    "modules/queue",
    "modules/member",
    "modules/member-notification",
    "modules/worker-ecs",
    "modules/athena",
    "examples/organization",
];

#[test]
fn every_module_is_formatted_valid_and_checkov_clean() {
    if terraform_missing("every_module_is_formatted_valid_and_checkov_clean") {
        return;
    }
    let out = run(terraform(&Path::new(REPO).join("terraform")).args([
        "fmt",
        "-check",
        "-recursive",
        "-diff",
    ]));
    succeeded(
        "terraform fmt -check (run `terraform fmt -recursive terraform`)",
        &out,
    );

    let copy = copy_terraform();
    for root in ROOTS {
        let dir = copy.path().join(root);
        succeeded(
            &format!("terraform init in {root}"),
            &run(terraform(&dir).args(["init", "-backend=false", "-no-color"])),
        );
        succeeded(
            &format!("terraform validate in {root}"),
            &run(terraform(&dir).args(["validate", "-no-color"])),
        );
    }

    // The modules' own tests (tests/*.tftest.hcl: input validations, against a mocked
    // provider), each run expected to pass; a file that ran nothing would pass unnoticed.
    for (root, runs) in [("modules/archive", 13), ("modules/worker-ecs", 10)] {
        let out = run(terraform(&copy.path().join(root)).args(["test", "-no-color"]));
        succeeded(&format!("terraform test in {root}"), &out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("Success! {runs} passed, 0 failed.")),
            "terraform test in {root}:\n{stdout}"
        );
    }

    let checkov = std::env::var_os("TRAILVAULT_CHECKOV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join(".trailvault/checkov/bin/checkov"));
    let out = run(Command::new(&checkov)
        .args([
            "-d",
            "terraform",
            "--framework",
            "terraform",
            "--skip-download",
            "-o",
            "json",
        ])
        .current_dir(REPO));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov ({}) printed no JSON ({e}); infra/test installs it with infra/terraform/checks setup:\n{}",
            checkov.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let summary = &report["summary"];
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {} ({})", c["check_id"], c["resource"], c["file_path"]))
        .collect();
    assert!(
        failed.is_empty(),
        "checkov failures (fix them, or skip one inline with #checkov:skip=ID:reason):\n{}",
        failed.join("\n")
    );
    assert!(summary["passed"].as_u64().unwrap() > 100, "{summary}");
    eprintln!(
        "checkov {}: {} passed, {} skipped (inline, with reasons), 0 failed",
        summary["checkov_version"], summary["passed"], summary["skipped"]
    );

    // The container image the worker-ecs module runs, held to the same bar.
    let out = run(Command::new(&checkov)
        .args([
            "-f",
            "infra/Dockerfile",
            "--framework",
            "dockerfile",
            "--skip-download",
            "-o",
            "json",
        ])
        .current_dir(REPO));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("checkov's JSON");
    assert_eq!(
        report["summary"]["failed"], 0,
        "checkov on infra/Dockerfile: {}",
        report["results"]["failed_checks"]
    );
}

const HOME: &str = "eu-west-1";
const SECOND: &str = "us-east-1";

/// A gzip CloudTrail log file with one record.
/// A log file of two records: a data event, and the root user listing buckets (which the
/// `cis` set's root-account-usage alerts on).
fn log_file(account: &str, region: &str) -> Vec<u8> {
    let json = json!({"Records": [{
        "eventVersion": "1.11",
        "eventTime": "2026-11-30T00:57:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": region,
        "recipientAccountId": account,
        "userIdentity": {"type": "Root", "arn": format!("arn:aws:iam::{account}:root"), "accountId": account},
        "eventID": format!("5e1d0000-{account}-{region}"),
        "eventType": "AwsApiCall",
        "readOnly": true,
        "managementEvent": true,
        "eventCategory": "Management"
    }, {
        "eventVersion": "1.11",
        "eventTime": "2026-11-30T00:58:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": region,
        "recipientAccountId": account,
        "userIdentity": {"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"},
        "eventID": "0b3f3c8e-1111-4a6e-9a64-7f1e2d3c4b5a",
        "eventType": "AwsApiCall",
        "readOnly": true,
        "managementEvent": false,
        "eventCategory": "Data"
    }]});
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(json.to_string().as_bytes()).unwrap();
    e.finish().unwrap()
}

/// The S3 event notification S3 would send for `key` (the emulator sends none across
/// accounts, so the test sends it in S3's place).
fn s3_event(region: &str, bucket: &str, key: &str) -> String {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
        "eventTime": "2026-11-30T01:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key, "size": 100}}
    }]})
    .to_string()
}

/// A rendered configuration without its `[alerts]` tables (`[alerts]`, `[alerts.*]`,
/// `[[alerts.rules]]`). Under IAM enforcement the emulator checks request signatures, and it
/// rebuilds a form-encoded body (SNS's protocol) with spaces as `+` where the Rust SDK signed
/// `%20`: every SNS call whose text holds a space is refused as SignatureDoesNotMatch. The
/// worker's alerts are therefore published in a run of their own, with IAM relaxed; the
/// worker role's SNS permissions are checked under IAM through the AWS CLI (which encodes as
/// the emulator does).
fn without_alerts(toml: &str) -> String {
    let mut skipping = false;
    let mut out = String::new();
    for line in toml.lines() {
        if line.starts_with('[') {
            let table = line.trim_start_matches('[');
            skipping = table.starts_with("alerts]") || table.starts_with("alerts.");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The Glue tables (`aws glue get-tables`) of module athena against the archive's keys: each
/// log file's folder is its account, region and delivery date put into exactly one cloudtrail_*
/// table's `storage.location.template`, with values that table projects; every folder the
/// templates can name (every projected account, region and day up to the newest in the
/// archive) holds nothing but such files; the insights_* tables are the same locations'
/// CloudTrail-Insight/ folders; the cloudtrail and insights views are the union of their
/// tables. Returns how many log files the templates found.
fn athena_tables_cover_the_archive(
    bucket: &str,
    tables: &serde_json::Value,
    keys: &[String],
) -> usize {
    use base64::Engine as _;
    use std::collections::{BTreeMap, BTreeSet};

    let list = tables["TableList"].as_array().expect("TableList");
    let by_name: BTreeMap<&str, &serde_json::Value> = list
        .iter()
        .map(|t| (t["Name"].as_str().unwrap(), t))
        .collect();
    let param = |t: &serde_json::Value, p: &str| -> String {
        t["Parameters"][p]
            .as_str()
            .unwrap_or_else(|| panic!("table {}: no parameter {p}: {t:#}", t["Name"]))
            .to_owned()
    };
    let cloudtrail: Vec<&serde_json::Value> = list
        .iter()
        .filter(|t| t["Name"].as_str().unwrap().starts_with("cloudtrail_"))
        .collect();
    assert_eq!(cloudtrail.len(), 4, "a table per member bucket: {tables:#}");

    // A log key: [prefix/]bucket/.../AWSLogs/[o-ID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/FILE.
    let is_log = |k: &str| !k.starts_with("_trailvault/") && k.contains("/CloudTrail/");
    let parts = |k: &str| -> (String, String, String, String) {
        let (folder, _file) = k.rsplit_once('/').unwrap();
        let f: Vec<&str> = folder.split('/').collect();
        let n = f.len();
        assert_eq!(f[n - 5], "CloudTrail", "{k}");
        (
            f[n - 6].to_owned(),
            f[n - 4].to_owned(),
            format!("{}/{}/{}", f[n - 3], f[n - 2], f[n - 1]),
            format!("{folder}/"),
        )
    };
    let substitute = |template: &str, account: &str, region: &str, date: &str| {
        template
            .replace("${account}", account)
            .replace("${region}", region)
            .replace("${date}", date)
    };
    let enum_values = |t: &serde_json::Value, p: &str| -> BTreeSet<String> {
        assert_eq!(param(t, &format!("projection.{p}.type")), "enum");
        param(t, &format!("projection.{p}.values"))
            .split(',')
            .map(str::to_owned)
            .collect()
    };
    let format = time::macros::format_description!("[year]/[month]/[day]");
    let mut logs = 0;
    let mut newest = None;
    for key in keys.iter().filter(|k| is_log(k)) {
        let (account, region, date, folder) = parts(key);
        let url = format!("s3://{bucket}/{folder}");
        let matching: Vec<&&serde_json::Value> = cloudtrail
            .iter()
            .filter(|t| {
                substitute(
                    &param(t, "storage.location.template"),
                    &account,
                    &region,
                    &date,
                ) == url
            })
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "{key}: exactly one table's template names its folder {url}: {tables:#}"
        );
        let t = matching[0];
        assert!(enum_values(t, "account").contains(&account), "{key}: {t:#}");
        assert!(enum_values(t, "region").contains(&region), "{key}: {t:#}");
        let day = time::Date::parse(&date, &format).unwrap();
        let (first, now) = param(t, "projection.date.range")
            .split_once(',')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        assert_eq!(now, "NOW");
        assert!(time::Date::parse(&first, &format).unwrap() <= day, "{key}");
        newest = newest.max(Some(day));
        logs += 1;
    }

    // Every folder the templates can name holds only log files, directly.
    let newest = newest.expect("archived log files");
    for t in &cloudtrail {
        assert_eq!(param(t, "projection.enabled"), "true");
        assert_eq!(param(t, "projection.date.type"), "date");
        assert_eq!(param(t, "projection.date.format"), "yyyy/MM/dd");
        assert_eq!(param(t, "projection.date.interval"), "1");
        assert_eq!(param(t, "projection.date.interval.unit"), "DAYS");
        let partitions: Vec<&str> = t["PartitionKeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["Name"].as_str().unwrap())
            .collect();
        assert_eq!(partitions, ["account", "region", "date"]);
        let template = param(t, "storage.location.template");
        let first = param(t, "projection.date.range");
        let mut day = time::Date::parse(first.split(',').next().unwrap(), &format).unwrap();
        let mut folders = Vec::new();
        while day <= newest {
            let date = day.format(&format).unwrap();
            for account in enum_values(t, "account") {
                for region in enum_values(t, "region") {
                    folders.push(substitute(&template, &account, &region, &date));
                }
            }
            day = day.next_day().unwrap();
        }
        for key in keys {
            let url = format!("s3://{bucket}/{key}");
            if let Some(folder) = folders.iter().find(|f| url.starts_with(f.as_str())) {
                assert!(
                    is_log(key) && !url[folder.len()..].contains('/'),
                    "{url} lies in {folder}, a folder of table {}, but is not a log file                      directly in it",
                    t["Name"]
                );
            }
        }

        // Its Insights twin: the same location's CloudTrail-Insight/ folders.
        let name = t["Name"].as_str().unwrap();
        let insights = by_name
            .get(name.replacen("cloudtrail_", "insights_", 1).as_str())
            .unwrap_or_else(|| panic!("no Insights table beside {name}: {tables:#}"));
        assert_eq!(
            param(insights, "storage.location.template"),
            template.replace("/CloudTrail/${region}/", "/CloudTrail-Insight/${region}/")
        );
        for p in [
            "projection.account.values",
            "projection.region.values",
            "projection.date.range",
        ] {
            assert_eq!(param(insights, p), param(t, p), "{name}: {p}");
        }
        for table in [*t, *insights] {
            let sd = &table["StorageDescriptor"];
            assert_eq!(
                sd["InputFormat"],
                "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
            );
            assert_eq!(
                sd["SerdeInfo"]["SerializationLibrary"],
                "org.apache.hive.hcatalog.data.JsonSerDe"
            );
        }
    }

    // The views: every location's table, with the tables' columns and the partitions.
    for view in ["cloudtrail", "insights"] {
        let v = by_name
            .get(view)
            .unwrap_or_else(|| panic!("no view {view}: {tables:#}"));
        assert_eq!(v["TableType"], "VIRTUAL_VIEW");
        let text = v["ViewOriginalText"].as_str().unwrap();
        let encoded = text
            .strip_prefix("/* Presto View: ")
            .and_then(|t| t.strip_suffix(" */"))
            .unwrap_or_else(|| panic!("{view}: not a Presto view: {text}"));
        let definition: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap();
        let sql = definition["originalSql"].as_str().unwrap();
        let sources: BTreeSet<&str> = list
            .iter()
            .map(|t| t["Name"].as_str().unwrap())
            .filter(|n| n.starts_with(&format!("{view}_")))
            .collect();
        assert_eq!(sources.len(), 4);
        for source in &sources {
            assert!(sql.contains(&format!(".\"{source}\"")), "{view}: {sql}");
        }
        assert_eq!(sql.matches("UNION ALL").count(), sources.len() - 1, "{sql}");
        let table = by_name[*sources.iter().next().unwrap()];
        let mut columns: Vec<&str> = table["StorageDescriptor"]["Columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["Name"].as_str().unwrap())
            .collect();
        columns.extend(["account", "region", "date"]);
        let presto: Vec<&str> = definition["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(presto, columns, "{view}: the view's columns");
    }
    logs
}

#[tokio::test]
async fn the_example_applies_to_the_emulator_and_trailvault_runs_on_it_under_iam() {
    if terraform_missing("the_example_applies_to_the_emulator_and_trailvault_runs_on_it_under_iam")
    {
        return;
    }
    let emulator = PrivateEmulator::start();
    let endpoint = emulator.endpoint.clone();
    let work = tempfile::tempdir().unwrap();
    let ns = common::unique_namespace("tf");

    // What exists before Terraform: the organization, its accounts, the members' CloudTrail
    // buckets, and (for this machine) a user that may assume the worker role.
    let accounts = provision::accounts(&endpoint, &ns, 2, work.path())
        .await
        .expect("the organization");
    let security = accounts.security.clone();
    let mut members = Vec::new();
    for (slot, account) in accounts.members.iter().enumerate() {
        let admin = accounts.management.admin(account).await;
        let mut buckets = Vec::new();
        for region in [HOME, SECOND] {
            let name = format!("{ns}-trail-{slot}-{region}");
            let s3 = admin.s3(region);
            let mut create = s3.create_bucket().bucket(&name);
            if region != "us-east-1" {
                create = create.create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                            region,
                        ))
                        .build(),
                );
            }
            create.send().await.unwrap();
            buckets.push(name);
        }
        members.push((account.clone(), buckets));
    }
    let sec = accounts.management.admin(&security).await;
    let iam = sec.iam();
    iam.create_user()
        .user_name("trailvault-local")
        .send()
        .await
        .unwrap();
    let worker_role = format!("arn:aws:iam::{security}:role/trailvault-worker");
    let auditor_role = format!("arn:aws:iam::{security}:role/trailvault-auditor");
    iam.put_user_policy()
        .user_name("trailvault-local")
        .policy_name("assume-the-worker-role")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "sts:AssumeRole", "Resource": [worker_role, auditor_role]}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("trailvault-local")
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    let user_arn = format!("arn:aws:iam::{security}:user/trailvault-local");

    // Where the alerts go: a queue of the security account that lets the alerts topic send
    // (SNS needs that of a subscribed queue; the example subscribes it).
    let alerts_topic = format!("arn:aws:sns:{HOME}:{security}:trailvault-alerts");
    let alerts_queue_arn = format!("arn:aws:sqs:{HOME}:{security}:{ns}-alerts");
    let alerts_queue = sec
        .sqs(HOME)
        .create_queue()
        .queue_name(format!("{ns}-alerts"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::Policy,
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "AlertsTopicSends", "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage", "Resource": alerts_queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": alerts_topic}}}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let alerts_queue_url = alerts_queue.queue_url().unwrap().to_owned();

    // Apply the example, as its README says, with the emulator's gates.
    let copy = copy_terraform();
    let example = copy.path().join("examples/organization");
    let member = |i: usize, name: &str| {
        json!({"account_id": members[i].0, "name": name,
               "home_bucket": members[i].1[0], "second_bucket": members[i].1[1]})
    };
    let vars = json!({
        "home_region": HOME,
        "second_region": SECOND,
        "security_account_id": security,
        "organization_id": accounts.organization_id,
        "member_a": member(0, "member-a"),
        "member_b": member(1, "member-b"),
        "external_ids": {"member_a": format!("{ns}-a-7f3a"), "member_b": format!("{ns}-b-0b44")},
        "archive_bucket": format!("{ns}-archive"),
        // GOVERNANCE for a day, so that destroy can empty the bucket again.
        "retention": {"mode": "GOVERNANCE", "days": 1},
        "lifecycle_policy": {
            "transitions": [{"days": 30, "storage_class": "STANDARD_IA"}],
            "expiration_days": 400,
            "noncurrent_expiration_days": 30
        },
        "worker_principals": [user_arn],
        "auditor_principals": [user_arn],
        "visibility_timeout_secs": 30,
        "enable_autoscaling": false,
        "endpoint": endpoint,
        "force_destroy": true,
        // Alerts on, to that queue: the CIS set, one window, one rule of the operator's own.
        "alerts": {
            "enabled": true,
            "subscriptions": [{"protocol": "sqs", "endpoint": alerts_queue_arn}],
            "suppress_secs": {"unauthorized-api-calls": 900},
            "rules": [{"name": "s3-bucket-deleted", "pattern": "{ $.eventName = \"DeleteBucket\" }",
                       "severity": "high", "description": "A bucket was deleted"}]
        }
    });
    std::fs::write(example.join("test.tfvars.json"), vars.to_string()).unwrap();
    succeeded(
        "terraform init",
        &run(terraform(&example).args(["init", "-no-color"])),
    );
    let started = Instant::now();
    succeeded(
        "terraform apply",
        &run(terraform(&example).args([
            "apply",
            "-auto-approve",
            "-no-color",
            "-var-file=test.tfvars.json",
        ])),
    );
    let apply_secs = started.elapsed().as_secs_f64();

    // The worker may assume reader roles in the organization's accounts only. The emulator
    // leaves out of its evaluation any condition key it does not supply (aws:ResourceOrgID
    // among them), so the policy as applied is checked here, and the run under IAM below
    // proves the emulator still lets the worker read the members.
    let out = run(terraform(&example).args(["show", "-json", "-no-color"]));
    succeeded("terraform show -json", &out);
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let archive_module = state["values"]["root_module"]["child_modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == "module.archive")
        .expect("module.archive in the state");
    let worker_policy = archive_module["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "module.archive.aws_iam_role_policy.worker")
        .expect("the worker role's policy in the state");
    let policy: serde_json::Value =
        serde_json::from_str(worker_policy["values"]["policy"].as_str().unwrap()).unwrap();
    let assume: Vec<&serde_json::Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"] == "sts:AssumeRole" || s["Action"] == json!(["sts:AssumeRole"]))
        .collect();
    assert_eq!(
        assume,
        [&json!({
            "Sid": "ReadMemberBuckets",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": "arn:aws:iam::*:role/trailvault-reader",
            "Condition": {"StringEquals": {"aws:ResourceOrgID": accounts.organization_id}}
        })],
        "the worker's AssumeRole statements: {policy:#}"
    );

    // Alerts: the topic and its key, as Terraform made them; the worker may publish to that
    // topic with that key, and tag archived objects (its mark that a version's alerts are out).
    let output = |name: &str| {
        let out = run(terraform(&example).args(["output", "-raw", name]));
        succeeded(&format!("terraform output {name}"), &out);
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(output("alerts_topic_arn"), alerts_topic);
    let alerts_key = output("alerts_kms_key_arn");
    assert!(
        alerts_key.starts_with(&format!("arn:aws:kms:{HOME}:{security}:key/")),
        "{alerts_key}"
    );
    let grants = |sid: &str| -> (std::collections::BTreeSet<String>, serde_json::Value) {
        let statement = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid && s["Effect"] == "Allow")
            .unwrap_or_else(|| panic!("no statement {sid} in the worker's policy: {policy:#}"));
        let actions = match &statement["Action"] {
            serde_json::Value::String(a) => [a.clone()].into(),
            a => a
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect(),
        };
        (actions, statement["Resource"].clone())
    };
    let set = |actions: &[&str]| actions.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        grants("PublishAlerts"),
        (set(&["sns:Publish"]), json!(alerts_topic))
    );
    assert_eq!(
        grants("AlertsKey"),
        (
            set(&["kms:GenerateDataKey*", "kms:Decrypt"]),
            json!(alerts_key)
        )
    );
    assert_eq!(
        grants("AlertsPublishedTag"),
        (
            set(&[
                "s3:GetObjectTagging",
                "s3:GetObjectVersionTagging",
                "s3:PutObjectTagging",
                "s3:PutObjectVersionTagging"
            ]),
            json!(format!("arn:aws:s3:::{ns}-archive/*"))
        )
    );

    // trailvault's configuration, from Terraform's output; the worker's identity, as ECS
    // would give it: the worker role (here assumed by the local user).
    let out = run(terraform(&example).args(["output", "-raw", "config_toml"]));
    succeeded("terraform output config_toml", &out);
    let config = work.path().join("trailvault.toml");
    let config_toml = String::from_utf8(out.stdout).unwrap();
    assert!(
        config_toml.contains(&format!(
            "\n[alerts]\nsns_topic_arn = \"{alerts_topic}\"\nbuiltin = [\"cis\"]\n\n\
             [alerts.suppress_secs]\n\"unauthorized-api-calls\" = 900\n\n\
             [[alerts.rules]]\nname = \"s3-bucket-deleted\"\n"
        )),
        "the rendered [alerts]:\n{config_toml}"
    );
    std::fs::write(&config, without_alerts(&config_toml)).unwrap();
    std::fs::write(
        work.path().join("config"),
        format!(
            "[profile local]\nregion = {HOME}\nendpoint_url = {endpoint}\n\n\
             [profile worker]\nregion = {HOME}\nendpoint_url = {endpoint}\n\
             role_arn = {worker_role}\nsource_profile = local\nrole_session_name = trailvault\n\n\
             [profile auditor]\nregion = {HOME}\nendpoint_url = {endpoint}\n\
             role_arn = {auditor_role}\nsource_profile = local\nrole_session_name = audit\n"
        ),
    )
    .unwrap();
    std::fs::write(
        work.path().join("credentials"),
        format!(
            "[local]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            key.access_key_id(),
            key.secret_access_key()
        ),
    )
    .unwrap();
    let trailvault_as = |profile: &str, args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailvault"));
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("AWS_") || name.starts_with("TRAILVAULT_") || name == "RUST_LOG" {
                cmd.env_remove(name.as_ref());
            }
        }
        cmd.args(args)
            .env("AWS_CONFIG_FILE", work.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                work.path().join("credentials"),
            )
            .env("AWS_PROFILE", profile)
            .env("TRAILVAULT_CONFIG", &config)
            .output()
            .unwrap()
    };
    let trailvault = |args: &[&str]| trailvault_as("worker", args);

    // What the emulator holds, through the AWS CLI of the emulator's virtualenv: as the
    // security account's local user, or (profile "worker") as the worker role.
    let aws_out = |profile: &str, args: &[&str]| -> Output {
        let mut cmd = Command::new(common::venv_python());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(&name);
            }
        }
        cmd.args(["-m", "awscli"])
            .args(args)
            .args(["--output", "json", "--endpoint-url", &endpoint])
            .env("AWS_CONFIG_FILE", work.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                work.path().join("credentials"),
            )
            .env("AWS_PROFILE", profile)
            .output()
            .expect("the AWS CLI (infra/local/emulator setup puts it in the emulator's virtualenv)")
    };
    let parsed = |what: &str, out: &Output| -> serde_json::Value {
        succeeded(what, out);
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let aws = |profile: &str, args: &[&str]| -> serde_json::Value {
        parsed(&format!("aws {}", args.join(" ")), &aws_out(profile, args))
    };
    let topic = aws(
        "local",
        &["sns", "get-topic-attributes", "--topic-arn", &alerts_topic],
    );
    assert_eq!(
        topic["Attributes"]["KmsMasterKeyId"], alerts_key,
        "the alerts topic is encrypted with the module's key: {topic:#}"
    );
    let subscriptions = aws(
        "local",
        &[
            "sns",
            "list-subscriptions-by-topic",
            "--topic-arn",
            &alerts_topic,
        ],
    );
    let subscribed: Vec<(&str, &str)> = subscriptions["Subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["Protocol"].as_str().unwrap(),
                s["Endpoint"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(subscribed, [("sqs", alerts_queue_arn.as_str())]);
    let rotation = aws(
        "local",
        &["kms", "get-key-rotation-status", "--key-id", &alerts_key],
    );
    assert_eq!(rotation["KeyRotationEnabled"], true, "{rotation}");

    // CloudTrail writes into each member bucket; S3 notifies the queue of the bucket's region.
    let queues: serde_json::Value = serde_json::from_slice(
        &run(terraform(&example).args(["output", "-json", "queue_urls"])).stdout,
    )
    .unwrap();
    let mut written = 0;
    for (account, buckets) in &members {
        let admin = accounts.management.admin(account).await;
        for (bucket, region) in buckets.iter().zip([HOME, SECOND]) {
            for n in 0..2 {
                let key = format!(
                    "AWSLogs/{account}/CloudTrail/{region}/2026/11/30/{account}_CloudTrail_{region}_20261130T010{n}Z_TerraformTest00{n}.json.gz"
                );
                admin
                    .s3(region)
                    .put_object()
                    .bucket(bucket)
                    .key(&key)
                    .body(ByteStream::from(log_file(account, region)))
                    .send()
                    .await
                    .unwrap();
                sec.sqs(region)
                    .send_message()
                    .queue_url(queues[region].as_str().unwrap())
                    .message_body(s3_event(region, bucket, &key))
                    .send()
                    .await
                    .unwrap();
                written += 1;
            }
        }
    }

    // With IAM enforced, the worker can do only what the Terraform-made policies allow.
    emulator.enforce_iam();
    let check = trailvault(&["config", "check", "--connect"]);
    let run_out = trailvault(&["run", "--until-empty"]);
    let plan = trailvault(&["retention", "plan"]);
    emulator.relax_iam();

    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        check.status.success(),
        "config check --connect:\n{stderr}\nthe emulator's log:\n{}",
        emulator.log_tail(40)
    );
    let summary = String::from_utf8_lossy(&run_out.stdout);
    let log = String::from_utf8_lossy(&run_out.stderr);
    assert!(run_out.status.success(), "{summary}\n{log}");
    let archived: Option<usize> = summary
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok());
    assert_eq!(archived, Some(written), "{summary}");
    assert!(summary.contains("Failures: none."), "{summary}\n{log}");
    assert!(log.contains("manifest written"), "{log}");
    // Terraform's lifecycle rules and default retention are trailvault's policy, exactly.
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );

    // The rendered [alerts], IAM relaxed (see `without_alerts`): one more log file per
    // account, each with the root user's activity, which the worker publishes to the topic,
    // and the topic delivers to the subscribed queue.
    std::fs::write(&config, &config_toml).unwrap();
    let mut second = Vec::new();
    for (account, buckets) in &members {
        let admin = accounts.management.admin(account).await;
        let key = format!(
            "AWSLogs/{account}/CloudTrail/{HOME}/2026/11/30/{account}_CloudTrail_{HOME}_20261130T0110Z_TerraformTest010.json.gz"
        );
        admin
            .s3(HOME)
            .put_object()
            .bucket(&buckets[0])
            .key(&key)
            .body(ByteStream::from(log_file(account, HOME)))
            .send()
            .await
            .unwrap();
        sec.sqs(HOME)
            .send_message()
            .queue_url(queues[HOME].as_str().unwrap())
            .message_body(s3_event(HOME, &buckets[0], &key))
            .send()
            .await
            .unwrap();
        second.push(key);
    }
    let alerted = trailvault(&["run", "--until-empty"]);
    assert!(
        alerted.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&alerted.stdout),
        String::from_utf8_lossy(&alerted.stderr)
    );
    let sqs = sec.sqs(HOME);
    let mut alerts = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&alerts_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            assert_eq!(envelope["TopicArn"], alerts_topic.as_str());
            alerts.push(
                serde_json::from_str::<serde_json::Value>(envelope["Message"].as_str().unwrap())
                    .unwrap(),
            );
            sqs.delete_message()
                .queue_url(&alerts_queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    let mut alerted_keys: Vec<String> = alerts
        .iter()
        .map(|a| {
            assert_eq!(a["rule"], "root-account-usage", "{a}");
            assert_eq!(a["severity"], "critical", "{a}");
            let key = a["evidence"]["key"].as_str().unwrap();
            key.split_once('/').unwrap().1.to_owned()
        })
        .collect();
    alerted_keys.sort();
    second.sort();
    assert_eq!(alerted_keys, second, "one alert per new file: {alerts:#?}");
    written += second.len();

    // The alerts' plumbing, with IAM enforced: the worker
    // role may publish to the topic, which delivers to the subscribed queue, and may mark an
    // archived version as the worker does once its alerts are out.
    let archive_bucket = format!("{ns}-archive");
    let versions = sec
        .s3(HOME)
        .list_object_versions()
        .bucket(&archive_bucket)
        .send()
        .await
        .unwrap();
    let archived_log = versions
        .versions()
        .iter()
        .find(|v| v.key().is_some_and(|k| k.contains("/CloudTrail/")))
        .expect("an archived log file");
    let (log_key, log_version) = (
        archived_log.key().unwrap(),
        archived_log.version_id().unwrap(),
    );
    let message = "trailvault's Terraform test: the worker role publishes to the alerts topic";
    let version_args = |verb: &'static str| {
        [
            "s3api",
            verb,
            "--bucket",
            &archive_bucket,
            "--key",
            log_key,
            "--version-id",
            log_version,
        ]
    };
    emulator.enforce_iam();
    let published = aws_out(
        "worker",
        &[
            "sns",
            "publish",
            "--topic-arn",
            &alerts_topic,
            "--message",
            message,
        ],
    );
    let tagged = aws_out(
        "worker",
        &[
            &version_args("put-object-tagging")[..],
            &[
                "--tagging",
                "TagSet=[{Key=trailvault-alerts,Value=published}]",
            ],
        ]
        .concat(),
    );
    let tags = aws_out("worker", &version_args("get-object-tagging"));
    emulator.relax_iam();
    for (what, out) in [
        ("sns publish as the worker", &published),
        ("put-object-tagging as the worker", &tagged),
        ("get-object-tagging as the worker", &tags),
    ] {
        assert!(
            out.status.success(),
            "{what}:\n{}\nthe emulator's log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            emulator.log_tail(20)
        );
    }
    assert_eq!(
        parsed("get-object-tagging", &tags)["TagSet"],
        json!([{"Key": "trailvault-alerts", "Value": "published"}])
    );
    let sqs = sec.sqs(HOME);
    let received = sqs
        .receive_message()
        .queue_url(&alerts_queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let delivered: Vec<serde_json::Value> = received
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    assert_eq!(delivered[0]["TopicArn"], alerts_topic, "{delivered:#?}");
    assert_eq!(delivered[0]["Message"], message, "{delivered:#?}");
    // The queue is left empty for alerts to come.
    for m in received.messages() {
        sqs.delete_message()
            .queue_url(&alerts_queue_url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }

    // The same archive verifies: the two runs' manifests and the versions they list. The
    // test's log files come with no digests (as from a trail without log file validation), so
    // nothing is invalid but they cannot be verified: verify's exit status 3.
    let verify = trailvault(&["verify", "--public-keys", work.path().to_str().unwrap()]);
    let report = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(3), "{report}");
    assert!(report.contains("2/2 manifests valid"), "{report}");
    assert!(
        report.contains(&format!("{written} file(s) cannot be verified")),
        "{report}"
    );

    // Athena: the emulator stores Glue tables but runs no query, so what is checked is what
    // Athena would read. Every archived log file lies in the folder its table's
    // storage.location.template names for the file's account, region and delivery date, and
    // the templates, over every projected value, name no folder holding anything else.
    let started = Instant::now();
    let tables = aws(
        "local",
        &[
            "glue",
            "get-tables",
            "--database-name",
            &output("athena_database"),
        ],
    );
    let keys: Vec<String> = common::list(&sec.s3(HOME), &archive_bucket)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let logs = athena_tables_cover_the_archive(&archive_bucket, &tables, &keys);
    assert_eq!(logs, written, "archived log files found by the templates");
    let athena_policy = aws(
        "local",
        &[
            "iam",
            "get-role-policy",
            "--role-name",
            "trailvault-auditor",
            "--policy-name",
            "trailvault-athena",
        ],
    );
    let query = athena_policy["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "QueryInTheWorkgroup")
        .unwrap_or_else(|| panic!("the auditor's Athena policy: {athena_policy:#}"));
    assert_eq!(
        query["Resource"],
        format!(
            "arn:aws:athena:{HOME}:{security}:workgroup/{}",
            output("athena_workgroup")
        ),
        "Athena queries in the trailvault workgroup only: {athena_policy:#}"
    );
    eprintln!(
        "Athena tables checked against {} archive keys in {:.1} s",
        keys.len(),
        started.elapsed().as_secs_f64()
    );

    // The auditor role, with IAM enforced, verifies and signs a report with its own key (and
    // gets that key's public half), which is all it may write; the report checks offline.
    let report_key = String::from_utf8(
        run(terraform(&example).args(["output", "-raw", "report_signing_key_arn"])).stdout,
    )
    .unwrap();
    assert!(report_key.starts_with("arn:aws:kms:"), "{report_key}");
    let html = work.path().join("report.html");
    let pem = work.path().join("report-key.pem");
    emulator.enforce_iam();
    let audit = trailvault_as(
        "auditor",
        &[
            "verify",
            "--public-keys",
            work.path().to_str().unwrap(),
            "--report",
            html.to_str().unwrap(),
            "--sign",
            &report_key,
        ],
    );
    let public = trailvault_as(
        "auditor",
        &[
            "report",
            "public-key",
            "--key",
            &report_key,
            "--out",
            pem.to_str().unwrap(),
        ],
    );
    emulator.relax_iam();
    assert_eq!(
        audit.status.code(),
        Some(3),
        "{}\n{}\nthe emulator's log:\n{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr),
        emulator.log_tail(40)
    );
    assert!(
        public.status.success(),
        "{}",
        String::from_utf8_lossy(&public.stderr)
    );
    let check = Command::new(env!("CARGO_BIN_EXE_trailvault"))
        .env_clear()
        .args(["report", "check"])
        .arg(&html)
        .arg("--public-key")
        .arg(&pem)
        .output()
        .unwrap();
    let checked = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{checked}");
    assert!(checked.contains(&report_key), "{checked}");

    // A second plan has nothing to do.
    let out = run(terraform(&example).args([
        "plan",
        "-detailed-exitcode",
        "-no-color",
        "-var-file=test.tfvars.json",
    ]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "the second plan wants changes:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Autoscaling cannot be applied here (no Application Auto Scaling), but it must plan: the
    // two resources it adds, and nothing else.
    let out = run(terraform(&example).args([
        "plan",
        "-detailed-exitcode",
        "-no-color",
        "-var-file=test.tfvars.json",
        "-var=enable_autoscaling=true",
    ]));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{plan}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        plan.contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{plan}"
    );
    assert!(
        plan.contains("module.worker.aws_appautoscaling_policy.backlog[0] will be created"),
        "{plan}"
    );

    // The emulator refuses to change (so to destroy) an Object Lock configuration while the
    // bucket holds anything, which S3 allows: empty it first (GOVERNANCE, so with bypass).
    let archive = sec.s3(HOME);
    let bucket = format!("{ns}-archive");
    let listed = archive
        .list_object_versions()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    for v in listed.versions() {
        archive
            .delete_object()
            .bucket(&bucket)
            .key(v.key().unwrap())
            .set_version_id(v.version_id().map(str::to_owned))
            .bypass_governance_retention(true)
            .send()
            .await
            .unwrap();
    }

    let started = Instant::now();
    succeeded(
        "terraform destroy",
        &run(terraform(&example).args([
            "destroy",
            "-auto-approve",
            "-no-color",
            "-var-file=test.tfvars.json",
        ])),
    );
    eprintln!(
        "terraform apply {apply_secs:.0} s, destroy {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
