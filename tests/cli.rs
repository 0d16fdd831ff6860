//! The real `trailvault` binary, as a user runs it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::TestStack;
use trailvault_devstack::state::Delivery;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/trailvault.example.toml");

/// The binary with a clean environment: no AWS settings or config path leak in from outside.
fn trailvault() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailvault"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("AWS_") || name.starts_with("TRAILVAULT_") || name == "RUST_LOG" {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("running trailvault");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_example_configuration_is_valid_and_prints_back_in_full() {
    let (out, stdout, stderr) =
        run(trailvault().args(["config", "check", "--show-secrets", EXAMPLE]));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(
            "is valid: 2 member accounts, 3 source buckets, 2 queues (eu-west-1, us-east-1)"
        ),
        "{stdout}"
    );
    // Defaults and derived values are spelled out: the printed file is the effective one.
    assert!(stdout.contains("region = \"us-east-1\""), "{stdout}");
    assert!(stdout.contains("max_in_flight = 32"), "{stdout}");

    // What it printed is itself a valid configuration.
    let dir = tempfile::tempdir().unwrap();
    let again = write(dir.path(), "effective.toml", &stdout);
    let (out, stdout2, _) = run(trailvault()
        .args(["config", "check", "--show-secrets"])
        .arg(&again));
    assert!(out.status.success());
    assert_eq!(
        stdout.lines().skip(1).collect::<Vec<_>>(),
        stdout2.lines().skip(1).collect::<Vec<_>>()
    );
}

/// ExternalIds are the reader roles' shared secrets: `config check` prints them only when
/// asked, and a redacted copy is not a configuration that could be deployed by mistake.
#[test]
fn config_check_redacts_external_ids_unless_asked() {
    const SECRETS: [&str; 3] = [
        "trailvault-7f3a9c1e",
        "trailvault-0b44d2a8",
        "trailvault-{account}-9d4e2b7c1a6f3e80",
    ];
    let redacted = "<redacted: config check --show-secrets prints it>";
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    assert!(example.contains("[discovery]\nenabled = false\n"));
    let config = write(
        dir.path(),
        "discovery.toml",
        &example.replace(
            "[discovery]\nenabled = false\n",
            "[discovery]\nenabled = true\n",
        ),
    );
    let (out, toml, stderr) = run(trailvault().args(["config", "check"]).arg(&config));
    assert!(out.status.success(), "{stderr}");
    let (out, json, stderr) = run(trailvault()
        .args(["config", "check", "--format", "json"])
        .arg(&config));
    assert!(out.status.success(), "{stderr}");
    for secret in SECRETS {
        assert!(!toml.contains(secret), "{secret} in:\n{toml}");
        assert!(!json.contains(secret), "{secret} in:\n{json}");
    }
    assert_eq!(
        toml.matches(&format!("external_id = \"{redacted}\""))
            .count(),
        3,
        "{toml}"
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["accounts"][0]["external_id"], redacted);
    assert_eq!(json["accounts"][1]["external_id"], redacted);
    assert_eq!(json["discovery"]["external_id"], redacted);

    let copy = write(dir.path(), "redacted.toml", &toml);
    let (out, _, stderr) = run(trailvault().args(["config", "check"]).arg(&copy));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("accounts[0].external_id"), "{stderr}");

    let (out, shown, _) = run(trailvault()
        .args(["config", "check", "--show-secrets"])
        .arg(&config));
    assert!(out.status.success());
    for secret in SECRETS {
        assert!(shown.contains(secret), "{secret} not in:\n{shown}");
    }
}

#[test]
fn the_file_can_come_from_trailvault_config() {
    let (out, stdout, _) = run(trailvault()
        .args(["config", "check", "--format", "json"])
        .env("TRAILVAULT_CONFIG", EXAMPLE));
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("--format json prints JSON");
    assert_eq!(json["accounts"][0]["id"], "222222222222");

    let (out, _, stderr) = run(trailvault().args(["config", "check"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("no configuration") && stderr.contains("TRAILVAULT_CONFIG_TOML"),
        "{stderr}"
    );

    // The TOML itself in TRAILVAULT_CONFIG_TOML, as a container gets it.
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let (out, stdout, _) = run(trailvault()
        .args(["config", "check"])
        .env("TRAILVAULT_CONFIG_TOML", &text));
    assert!(out.status.success());
    assert!(
        stdout.contains("# TRAILVAULT_CONFIG_TOML is valid"),
        "{stdout}"
    );
    let (out, _, stderr) = run(trailvault().args(["config", "check"]).env(
        "TRAILVAULT_CONFIG_TOML",
        text.replace("years = 7", "years = 0"),
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("TRAILVAULT_CONFIG_TOML is not a valid trailvault configuration")
            && stderr.contains("retention.years"),
        "{stderr}"
    );
}

#[test]
fn a_bad_file_fails_with_every_problem_named() {
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "id = \"222222222222\"",
            "id = \"2222\"",
            "accounts[0].id: \"2222\" is not an AWS account id",
        ),
        (
            "external_id = \"trailvault-7f3a9c1e\"",
            "external_id = \"trailvault-7f3a9c1e\"\nexternal = 1",
            "unknown field `external`",
        ),
        (
            "key_prefix = \"\"",
            "key_prefix = \"\"\nkey_layout = \"x\"",
            "unknown field `key_layout`",
        ),
        (
            "arn:aws:iam::333333333333:role",
            "arn:aws:iam::333333333333:user",
            "accounts[1].reader_role_arn",
        ),
        (
            "id = \"333333333333\"",
            "id = \"222222222222\"",
            "accounts[1].id: account 222222222222 is already accounts[0]",
        ),
        (
            "/111111111111/trailvault-us-east-1\"",
            "/111111111111/trailvault-us-east-1\"\nregion = \"us-west-2\"",
            "queues[1].url",
        ),
        (
            "https://sqs.eu-west-1.amazonaws.com/111111111111",
            "http://127.0.0.1:4566/111111111111",
            "set region for this queue",
        ),
        (
            "years = 7",
            "years = 200",
            "retention.years: 200 is over S3 Object Lock's limit",
        ),
        (
            "expiration_grace_days = 30",
            "expiration_days = 100",
            "retention.lifecycle.expiration_days: 100 days is shorter than the 7 years lock",
        ),
        (
            "days = 30\nstorage_class = \"STANDARD_IA\"",
            "days = 10\nstorage_class = \"STANDARD_IA\"",
            "retention.lifecycle.transitions[0].days: 10 days is too soon",
        ),
        (
            "days = 90\nstorage_class = \"GLACIER_IR\"",
            "days = 90\nstorage_class = \"STANDARD_IA\"",
            "retention.lifecycle.transitions[1].storage_class: STANDARD_IA cannot follow STANDARD_IA",
        ),
        (
            "\nreconcile = \"enforce\"",
            "\nreconcile = \"always\"",
            "unknown variant `always`, expected `enforce` or `report`",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(example.contains(from), "{from}");
        let path = write(dir.path(), "bad.toml", &example.replacen(from, to, 1));
        let (out, stdout, stderr) = run(trailvault().args(["config", "check"]).arg(&path));
        assert_eq!(out.status.code(), Some(1), "{to}: {stdout}");
        assert!(stdout.is_empty(), "nothing printed for a bad file");
        assert!(
            stderr.contains(expected),
            "replacing {from:?} by {to:?}:\n{stderr}"
        );
        assert!(
            stderr.contains("bad.toml"),
            "the error names the file: {stderr}"
        );
    }
}

#[test]
fn a_missing_file_is_named() {
    let (out, _, stderr) =
        run(trailvault().args(["config", "check", "/nonexistent/trailvault.toml"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("cannot read the configuration file /nonexistent/trailvault.toml"),
        "{stderr}"
    );
}

/// `--connect` with the local worker's identity: an IAM user that assumes the worker role
/// (through the endpoint in the AWS profile), which assumes every reader role.
#[tokio::test]
async fn connect_reaches_every_resource_as_the_worker_and_names_what_fails() {
    let ts = TestStack::up("connect", 2, &[Delivery::S3]).await;
    let with_profile = |cmd: &mut Command| {
        cmd.env("AWS_CONFIG_FILE", ts.path().join("aws/config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                ts.path().join("aws/credentials"),
            )
            .env("AWS_PROFILE", "trailvault-worker");
    };
    let config = ts.path().join("trailvault.toml");
    let mut cmd = trailvault();
    cmd.args(["config", "check", "--connect"]).arg(&config);
    with_profile(&mut cmd);
    let (out, _, stderr) = run(&mut cmd);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("assumed-role/trailvault-worker/"),
        "{stderr}"
    );
    for m in &ts.stack.members {
        assert!(
            stderr.contains(&format!(
                "arn:aws:sts::{}:assumed-role/trailvault-reader/trailvault",
                m.account
            )),
            "{stderr}"
        );
    }
    assert!(stderr.contains("All 12 checks passed."), "{stderr}");

    // A bucket that is not there and a queue that is not there are each named.
    let text = std::fs::read_to_string(&config).unwrap();
    let bucket = &ts.stack.members[1].buckets[0].name;
    let broken = text
        .replace(bucket.as_str(), "no-such-cloudtrail-bucket")
        .replace("/trailvault-eu-west-1\"", "/no-such-queue\"");
    let path = write(ts.path(), "broken.toml", &broken);
    let mut cmd = trailvault();
    cmd.args(["config", "check", "--connect"]).arg(&path);
    with_profile(&mut cmd);
    let (out, _, stderr) = run(&mut cmd);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("FAIL  bucket no-such-cloudtrail-bucket (member-2, us-east-1)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("FAIL  queue no-such-queue (eu-west-1)"),
        "{stderr}"
    );
    assert!(stderr.contains("2 of 12 checks failed."), "{stderr}");
}

/// A CloudTrail log file, gzipped, with these records.
fn log_file(dir: &Path, name: &str, records: serde_json::Value) -> std::path::PathBuf {
    use std::io::Write as _;
    let path = dir.join(name);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(
        serde_json::json!({ "Records": records })
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    path
}

#[test]
fn alerts_test_shows_which_records_each_rule_matches() {
    let dir = tempfile::tempdir().unwrap();
    let file = log_file(
        dir.path(),
        "a.json.gz",
        serde_json::json!([
            {"eventID": "e1", "eventName": "ConsoleLogin", "userIdentity": {"type": "IAMUser"},
             "responseElements": {"ConsoleLogin": "Success"},
             "additionalEventData": {"MFAUsed": "No"}, "eventType": "AwsConsoleSignIn"},
            {"eventID": "e2", "eventName": "ConsoleLogin", "userIdentity": {"type": "IAMUser"},
             "responseElements": {"ConsoleLogin": "Success"},
             "additionalEventData": {"MFAUsed": "Yes"}, "eventType": "AwsConsoleSignIn"},
            {"eventID": "e3", "eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com",
             "userIdentity": {"type": "Root"}, "eventType": "AwsApiCall"},
            {"eventID": "e4", "eventName": "DescribeInstances", "userIdentity": {"type": "IAMUser"}}
        ]),
    );
    let shown = file.display().to_string();
    let (out, stdout, stderr) = run(trailvault().args(["alerts", "test"]).arg(&file));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "{shown}\te1\tconsole-signin-without-mfa\tConsoleLogin\n\
             {shown}\te3\troot-account-usage\tStopLogging\n\
             {shown}\te3\tcloudtrail-configuration-changes\tStopLogging\n"
        )
    );

    // One rule, as JSON; a custom pattern; nothing matched is exit 1.
    let (out, stdout, _) = run(trailvault()
        .args([
            "alerts",
            "test",
            "--rule",
            "root-account-usage",
            "--format",
            "json",
        ])
        .arg(&file));
    assert_eq!(out.status.code(), Some(0));
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        line,
        serde_json::json!({"file": shown, "eventID": "e3", "rule": "root-account-usage",
                           "severity": "critical", "eventName": "StopLogging"})
    );
    let (out, stdout, _) = run(trailvault()
        .args(["alerts", "test", "--pattern", "{ $.eventName = Describe* }"])
        .arg(&file));
    assert_eq!(
        (out.status.code(), stdout),
        (
            Some(0),
            format!("{shown}\te4\tpattern\tDescribeInstances\n")
        )
    );
    let (out, stdout, _) = run(trailvault()
        .args(["alerts", "test", "--pattern", "{ $.eventName = Nothing }"])
        .arg(&file));
    assert_eq!((out.status.code(), stdout.as_str()), (Some(1), ""));

    // A bad pattern says where and what was expected; an unknown rule lists the rules.
    let (out, _, stderr) = run(trailvault()
        .args(["alerts", "test", "--pattern", "{ $.eventName == \"x\" }"])
        .arg(&file));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains(
            "--pattern is not a filter pattern: column 15: found `==`: the operator is a single \
             `=`\n{ $.eventName == \"x\" }\n              ^ found `==`"
        ),
        "{stderr}"
    );
    let (out, _, stderr) = run(trailvault()
        .args(["alerts", "test", "--rule", "nope"])
        .arg(&file));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("--rule nope: no such rule; the rules are: unauthorized-api-calls, "),
        "{stderr}"
    );
    let not_cloudtrail = write(dir.path(), "x.json", "{\"records\": []}");
    let (out, _, stderr) = run(trailvault().args(["alerts", "test"]).arg(&not_cloudtrail));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("not a CloudTrail log file (a JSON object with a \"Records\" array)"),
        "{stderr}"
    );
}
