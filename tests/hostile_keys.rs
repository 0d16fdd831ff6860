//! Keys a member account chooses, turned against the archive and whoever reads its logs: a
//! trail prefix holding a carriage return (to forge a line), an escape sequence (to drive a
//! terminal), a `..` segment, or a length the archive layout cannot hold. Each is refused at
//! the door, parked on the dead-letter queue with its reason, never archived, and every log
//! line prints it escaped.
//!
//! The emulator cannot store a key with a newline or a tab; those are covered by the unit
//! tests of `archive::routing`.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::EncodingType;
use common::TestStack;
use trailvault::archive::layout::{longest_source_key, printable};
use trailvault::archive::routing::{Refusal, Unsafe};
use trailvault::notification::form_decode;
use trailvault_devstack::state::Delivery;

/// A key CloudTrail could have written for `account`, but for its prefix.
fn log_key(prefix: &str, account: &str, region: &str, unique: &str) -> String {
    format!(
        "{prefix}AWSLogs/{account}/CloudTrail/{region}/2026/11/01/\
         {account}_CloudTrail_{region}_20261101T0005Z_{unique}.json.gz"
    )
}

#[tokio::test]
async fn hostile_keys_are_parked_with_the_reason_and_logged_escaped() {
    let ts = TestStack::up("hostile", 1, &[Delivery::S3]).await;
    let region = "us-east-1";
    let member = &ts.stack.members[0];
    let bucket = ts.member_bucket(0, region);
    let account = member.account.as_str();
    let key = |prefix: &str, unique: &str| log_key(prefix, account, region, unique);

    // One byte more than the layout holds for this bucket: its archive key would fit S3's
    // limit, the conflict key beside it would not.
    let limit = longest_source_key(&ts.config().archive.key_prefix, &bucket);
    let tail = key("", "TooLongPrefix000");
    let too_long = key(
        &format!("{}/", "p".repeat(limit - tail.len())),
        "TooLongPrefix000",
    );
    assert_eq!(too_long.len(), limit + 1);

    let hostile = [
        // Imitates a line of `verify`'s report, to be read after a carriage return.
        (
            key("x\rDigest file s3:forged valid/", "CarriageReturn00"),
            Unsafe::Character { at: 1, c: '\r' },
        ),
        // Erases the line and moves the cursor up: a terminal would hide what came before.
        (
            key("esc\u{1b}[2K\u{1b}[1A/", "EscapeSequence00"),
            Unsafe::Character { at: 3, c: '\u{1b}' },
        ),
        (
            key("trail/../", "DotDotSegment000"),
            Unsafe::DotSegment(".."),
        ),
        (
            too_long,
            Unsafe::TooLong {
                bytes: limit + 1,
                limit,
            },
        ),
    ];

    let admin = ts.admin(account).await.s3(region);
    for (key, _) in &hostile {
        admin
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from_static(b"\x1f\x8b not even gzip"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject {}: {e:?}", printable(key)));
    }
    // The emulator stored each key as written (no normalised `..`, no stripped character).
    // Listed URL-encoded: XML 1.0 cannot carry an escape character, and its parsers read a
    // carriage return as a newline.
    let listed = admin
        .list_objects_v2()
        .bucket(&bucket)
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .expect("ListObjectsV2 with encoding-type=url");
    let stored: Vec<String> = listed
        .contents()
        .iter()
        .map(|o| form_decode(o.key().unwrap()).unwrap())
        .collect();
    assert_eq!(stored.len(), hostile.len(), "{stored:?}");
    for (key, _) in &hostile {
        assert!(
            stored.contains(key),
            "{} not stored as written",
            printable(key)
        );
    }
    ts.relay().await;

    // Text logs (the devstack's configuration), without colours, so that any escape
    // character in the log is one the worker let through.
    let out = ts
        .trailvault()
        .args(["run", "--until-empty"])
        .env("NO_COLOR", "1")
        .output()
        .expect("running the worker");
    let summary = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the worker failed:\n{summary}\n{stderr}"
    );

    // No raw character a key held reached the log.
    for raw in ['\r', '\u{1b}'] {
        assert!(
            !stderr.contains(raw),
            "a raw {} in the log:\n{}",
            raw.escape_default(),
            printable(&stderr)
        );
    }
    for (key, reason) in &hostile {
        let refusal = Refusal::UnsafeKey {
            bucket: bucket.clone(),
            key: key.clone(),
            reason: *reason,
        };
        let shown = refusal.to_string();
        // Each receive of the message (maxReceiveCount 5) is refused, and says why.
        let lines = stderr
            .lines()
            .filter(|l| l.contains("refused") && l.contains(&format!("error={shown}")))
            .count();
        assert_eq!(lines, 5, "{shown}\n{}", printable(&stderr));
        assert!(shown.contains(&*printable(key)));
        assert!(shown.ends_with(
            "; a notification of it is parked on the dead-letter queue: delete the object, or \
             fix the trail's prefix"
        ));
    }
    // The escapes as an operator reads them.
    for escaped in [
        format!("s3://{bucket}/x\\rDigest file s3:forged valid/AWSLogs/{account}/"),
        "holds \\r at byte 1".to_owned(),
        format!("s3://{bucket}/esc\\u{{1b}}[2K\\u{{1b}}[1A/AWSLogs/{account}/"),
        "holds \\u{1b} at byte 3".to_owned(),
        format!("s3://{bucket}/trail/../AWSLogs/{account}/"),
        "never holds a `..` path segment".to_owned(),
        format!(
            "refused: the key is {} bytes long, and the archive holds at most {limit} for \
             this bucket",
            limit + 1
        ),
    ] {
        assert!(
            stderr.contains(&escaped),
            "{escaped} not in the log:\n{}",
            printable(&stderr)
        );
    }
    assert_eq!(
        stderr.matches("reason=\"unsafe_key\"").count(),
        4 * 5,
        "{}",
        printable(&stderr)
    );

    // Parked, all four, never deleted; nothing archived. (The other two messages are the
    // test events S3 sends when the buckets' notifications are set up, one per region.)
    assert!(
        summary.contains("Messages: 22 received, 2 deleted (2 s3_test_event), 20 returned."),
        "{summary}"
    );
    assert!(
        summary.contains("Failures: 20 unsafe_key (see the log for each)."),
        "{summary}"
    );
    assert_eq!(ts.depth(region).await, (0, 0, 4));
    assert_eq!(ts.depth("eu-west-1").await, (0, 0, 0));
    assert_eq!(ts.archive_versions().await, Vec::<(String, String)>::new());
}
