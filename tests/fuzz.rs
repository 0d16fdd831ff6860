//! Property-based fuzzing of every parser a member account or a queue can feed: notification
//! bodies, object keys (and the routing they drive), log files (gzip and JSON), digest files,
//! manifests. No input may panic; an ObjectCreated notification is never read as "nothing to
//! do"; a well-formed log file is read exactly.
//!
//! Each target runs `TRAILVAULT_FUZZ_CASES` cases (default 10,000) from a seed printed at the
//! start; replay a failure with `TRAILVAULT_FUZZ_SEED=<hex>`. The full size:
//! `TRAILVAULT_FUZZ_CASES=200000 cargo test --release --test fuzz -- --nocapture`.
//! The strategies are below: shapes close to the real thing, then mutated (characters of every
//! width inserted, bytes flipped, cut short), plus arbitrary text.

use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use trailvault::archive::accounts::Directory;
use trailvault::archive::layout;
use trailvault::archive::routing;
use trailvault::cloudtrail::{digest::Digest, key, logfile};
use trailvault::manifest::Manifest;
use trailvault::notification::{self, Notification, ObjectRef};

fn cases() -> u32 {
    std::env::var("TRAILVAULT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// A runner with a printed, replayable seed.
fn runner(target: &str) -> TestRunner {
    let seed: [u8; 32] = match std::env::var("TRAILVAULT_FUZZ_SEED") {
        Ok(hex) => hex::decode(hex.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .expect("TRAILVAULT_FUZZ_SEED is 64 hex digits"),
        Err(_) => rand::random(),
    };
    println!(
        "fuzz {target}: {} cases, TRAILVAULT_FUZZ_SEED={}",
        cases(),
        hex::encode(seed)
    );
    TestRunner::new_with_rng(
        Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    )
}

/// Characters a hostile key or field might hold: ASCII, the separators that matter, and
/// characters of two, three and four bytes (a byte index into them is not a char boundary).
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('0', '9'),
        2 => proptest::char::range('a', 'z'),
        1 => Just('/'), 1 => Just('_'), 1 => Just('T'), 1 => Just('Z'), 1 => Just('.'),
        1 => Just('%'), 1 => Just('+'), 1 => Just('-'),
        1 => Just('é'), 1 => Just('日'), 1 => Just('𝄞'), 1 => Just('\u{0}'),
        1 => any::<char>(),
    ]
}

fn hostile_string(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(hostile_char(), 0..max).prop_map(|c| c.into_iter().collect())
}

/// A piece that is usually right and sometimes anything.
fn piece(right: Vec<&'static str>) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(right).prop_map(str::to_owned),
        1 => hostile_string(20),
    ]
}

fn digits(n: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::collection::vec(proptest::char::range('0', '9'), n)
            .prop_map(|c| c.into_iter().collect::<String>()),
        1 => hostile_string(n + 2),
    ]
}

/// A CloudTrail-shaped key, then mutated.
fn cloudtrail_key() -> impl Strategy<Value = String> {
    let shaped = (
        piece(vec!["", "audit/", "a/b/", "AWSLogs/"]),
        piece(vec!["", "o-abcdefghij/"]),
        digits(12),
        piece(vec![
            "CloudTrail",
            "CloudTrail-Digest",
            "CloudTrail-Insight",
        ]),
        piece(vec!["us-east-1", "eu-west-1", "ap-southeast-2"]),
        (digits(4), digits(2), digits(2)),
        (digits(8), digits(4), hostile_string(18)),
        piece(vec![".json.gz", ".json", ""]),
    )
        .prop_map(
            |(prefix, org, account, kind, region, (y, m, d), (day, clock, unique), ext)| {
                format!(
                    "{prefix}AWSLogs/{org}{account}/{kind}/{region}/{y}/{m}/{d}/\
                     {account}_{kind}_{region}_{day}T{clock}Z_{unique}{ext}"
                )
            },
        );
    let mutated = (shaped, any::<usize>(), hostile_char(), 0..3u8).prop_map(|(key, at, c, how)| {
        let mut chars: Vec<char> = key.chars().collect();
        let at = at % (chars.len() + 1);
        match how {
            0 => chars.insert(at, c),
            1 if at < chars.len() => chars[at] = c,
            _ => chars.truncate(at),
        }
        chars.into_iter().collect::<String>()
    });
    prop_oneof![
        3 => mutated,
        1 => hostile_string(1024),
        1 => "\\PC{0,1024}",
    ]
}

#[test]
fn object_keys_and_routing_never_panic() {
    let config = trailvault::config::Config::from_toml(
        &std::fs::read_to_string("trailvault.example.toml").unwrap(),
        Path::new("trailvault.example.toml"),
    )
    .unwrap();
    let accounts = Directory::new(&config).snapshot();
    let buckets: Vec<String> = accounts
        .iter()
        .flat_map(|a| a.buckets.iter().map(|b| b.name.to_string()))
        .collect();
    runner("object keys")
        .run(
            &(cloudtrail_key(), proptest::sample::select(buckets)),
            |(k, bucket)| {
                if let Ok(parsed) = key::parse(&k) {
                    // What it read is taken from the key, not invented.
                    prop_assert!(k.contains(parsed.account));
                    prop_assert!(k.contains(parsed.region));
                    let _ = parsed.time();
                }
                let _ = key::stamp_time(&k);
                let _ = layout::manifest_sequence(&k);
                let _ = layout::source_of("", &k);
                let _ = notification::form_decode(&k);
                let object = ObjectRef {
                    bucket,
                    key: k.clone(),
                    version_id: None,
                    size: None,
                    etag: None,
                    event_time: None,
                };
                if let Ok(route) = routing::route_among(&accounts, "", &object) {
                    prop_assert_eq!(
                        route.archive_key,
                        layout::archive_key("", &object.bucket, &k)
                    );
                }
                Ok(())
            },
        )
        .unwrap();
}

/// One S3 event record, created or not, with fields that may be missing or hostile.
fn s3_record() -> impl Strategy<Value = (Value, bool)> {
    (
        piece(vec!["aws:s3"]),
        piece(vec![
            "ObjectCreated:Put",
            "ObjectCreated:CompleteMultipartUpload",
            "ObjectRemoved:Delete",
        ]),
        hostile_string(16),
        cloudtrail_key(),
        prop_oneof![Just(None), any::<u64>().prop_map(Some)],
        prop_oneof![Just(Value::Null), hostile_string(8).prop_map(Value::from)],
        any::<bool>(),
    )
        .prop_map(|(source, name, bucket, key, size, version, encode)| {
            let key = if encode {
                percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            } else {
                key
            };
            let created = source == "aws:s3" && name.starts_with("ObjectCreated:");
            let record = json!({
                "eventSource": source,
                "eventName": name,
                "eventTime": "2026-11-21T12:56:02.571Z",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size, "versionId": version}},
            });
            (record, created)
        })
}

fn notification_body() -> impl Strategy<Value = (String, bool)> {
    let s3 = proptest::collection::vec(s3_record(), 0..4).prop_map(|records| {
        let created = records.iter().any(|(_, c)| *c);
        let records: Vec<Value> = records.into_iter().map(|(r, _)| r).collect();
        (json!({ "Records": records }), created)
    });
    let eventbridge = (
        piece(vec!["Object Created", "Object Deleted"]),
        cloudtrail_key(),
    )
        .prop_map(|(detail_type, key)| {
            let created = detail_type == "Object Created";
            (
                json!({"source": "aws.s3", "detail-type": detail_type,
                       "detail": {"bucket": {"name": "b"}, "object": {"key": key, "size": 3}}}),
                created,
            )
        });
    let cloudtrail = proptest::collection::vec(cloudtrail_key(), 0..3).prop_map(|keys| {
        let created = !keys.is_empty();
        (json!({"s3Bucket": "b", "s3ObjectKey": keys}), created)
    });
    let shaped = prop_oneof![s3, eventbridge, cloudtrail];
    let wrapped = (shaped, 0..3u8).prop_map(|((body, created), wrap)| {
        let text = body.to_string();
        match wrap {
            0 => (text, created),
            1 => (
                json!({"Type": "Notification", "Message": text, "Timestamp": "2026-11-21T12:56:02.643Z"})
                    .to_string(),
                created,
            ),
            _ => (
                json!({"Type": "Notification", "Message": json!({"Type": "Notification", "Message": text}).to_string()})
                    .to_string(),
                created,
            ),
        }
    });
    let mutated = (wrapped, any::<usize>(), hostile_char(), any::<bool>()).prop_map(
        |((text, created), at, c, mutate)| {
            if !mutate {
                return (text, created);
            }
            let mut chars: Vec<char> = text.chars().collect();
            let at = at % (chars.len() + 1);
            chars.insert(at, c);
            // Whether it is still a creation is no longer known.
            (chars.into_iter().collect(), false)
        },
    );
    prop_oneof![4 => mutated, 1 => "\\PC{0,512}".prop_map(|s| (s, false))]
}

#[test]
fn notification_bodies_never_panic_and_a_creation_is_never_no_work() {
    runner("notification bodies")
        .run(&notification_body(), |(body, created)| {
            let parsed = notification::parse(&body);
            if created {
                // A creation is archived or refused (and so never deleted unarchived).
                prop_assert!(
                    !matches!(parsed, Ok(Notification::NoWork(_))),
                    "a creation read as nothing to do: {parsed:?}"
                );
            }
            Ok(())
        })
        .unwrap();
}

/// Any JSON, a few levels deep, with hostile strings.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        hostile_string(24).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(hostile_string(8), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A log file: the right shape (its record count known) or any JSON, gzipped, then perhaps
/// damaged.
fn log_file() -> impl Strategy<Value = (Vec<u8>, Option<u64>)> {
    let record = (
        prop_oneof![Just("2026-11-21T12:56:02Z".to_owned()), hostile_string(24)],
        json_value(),
    )
        .prop_map(
            |(time, extra)| json!({"eventTime": time, "eventName": "GetObject", "extra": extra}),
        );
    let shaped = proptest::collection::vec(record, 0..8).prop_map(|records| {
        let n = records.len() as u64;
        (
            json!({ "Records": records }).to_string().into_bytes(),
            Some(n),
        )
    });
    let any_json = json_value().prop_map(|v| (v.to_string().into_bytes(), None));
    let text = prop_oneof![3 => shaped, 1 => any_json];
    (text, any::<usize>(), any::<u8>(), 0..4u8).prop_map(|((json, records), at, byte, how)| {
        let mut gz = gzip(&json);
        let at = at % gz.len();
        match how {
            0 => (gz, records),
            1 => {
                gz[at] ^= byte | 1;
                (gz, None)
            }
            2 => {
                gz.truncate(at);
                (gz, None)
            }
            // Two members, as CloudTrail may write: still one JSON document? No: two.
            _ => {
                let twice = [gz.clone(), gz].concat();
                (twice, None)
            }
        }
    })
}

#[test]
fn log_files_never_panic_and_a_good_one_is_read_exactly() {
    runner("log files")
        .run(&log_file(), |(bytes, records)| {
            let checked = logfile::check_bytes(&bytes);
            if let Some(n) = records {
                prop_assert_eq!(checked.map(|s| s.records), Ok(n));
            }
            Ok(())
        })
        .unwrap();
}

/// Log file text as CloudTrail lays it out (or nearly), then damaged in its JSON rather than
/// its gzip: whitespace anywhere, a structural character put in or taken out, escapes, a
/// record that is not an object, fields after the array.
fn log_text() -> impl Strategy<Value = Vec<u8>> {
    let record = (
        prop_oneof![Just("2026-11-21T12:56:02Z".to_owned()), hostile_string(24)],
        prop_oneof![Just("ConsoleLogin"), Just("StopLogging"), Just("GetObject")],
        prop_oneof![Just(Value::Null), Just(json!("AccessDenied")), json_value()],
        json_value(),
    )
        .prop_map(|(time, name, error, extra)| {
            json!({"eventTime": time, "eventName": name, "errorCode": error,
                   "userIdentity": {"type": "Root"}, "eventID": "e", "extra": extra})
        });
    let shaped = (
        proptest::collection::vec(record, 0..6),
        any::<bool>(),
        prop_oneof![
            Just(""),
            Just(r#","x":[1,{"y":"]"}]"#),
            Just(r#","Records":[]"#)
        ],
    )
        .prop_map(|(records, pretty, tail)| {
            let doc = json!({ "Records": records });
            let mut text = if pretty {
                serde_json::to_string_pretty(&doc).unwrap()
            } else {
                doc.to_string()
            };
            text.pop();
            text.push_str(tail);
            text.push('}');
            text.into_bytes()
        });
    let edit = prop_oneof![
        Just(None),
        Just(Some(b' ')),
        Just(Some(b'\n')),
        Just(Some(b'{')),
        Just(Some(b'}')),
        Just(Some(b'[')),
        Just(Some(b']')),
        Just(Some(b',')),
        Just(Some(b':')),
        Just(Some(b'"')),
        Just(Some(b'\\')),
        Just(Some(b'1')),
        Just(Some(0xff)),
    ];
    (
        shaped,
        proptest::collection::vec((any::<usize>(), edit, any::<bool>()), 0..3),
    )
        .prop_map(|(mut text, edits)| {
            for (at, byte, insert) in edits {
                let at = at % (text.len() + 1);
                match (byte, insert) {
                    (Some(b), true) => text.insert(at, b),
                    (Some(b), false) if at < text.len() => text[at] = b,
                    _ if at < text.len() => {
                        text.remove(at);
                    }
                    _ => {}
                }
            }
            text
        })
}

/// Reading CloudTrail's layout a record at a time gives the verdict, the summary and the
/// alert matches of the streaming parser (with rules, which holds each record's text, so it
/// too refuses a record that is not an object or not UTF-8).
#[test]
fn framed_log_reading_agrees_with_the_streaming_parser() {
    let cis = trailvault::alerts::eval::Rules::new(trailvault::config::Rule::cis());
    let none = trailvault::alerts::eval::Rules::new(Vec::new());
    runner("framed log reading")
        .run(&log_text(), |text| {
            let gz = gzip(&text);
            let framed = logfile::evaluate_bytes(&gz, &cis);
            let streamed = logfile::check_bytes_streaming(&gz, Some(&cis));
            let shown = String::from_utf8_lossy(&text);
            prop_assert_eq!(
                framed.is_ok(),
                streamed.is_ok(),
                "{} {:?} {:?}",
                shown,
                framed,
                streamed
            );
            if let (Ok(a), Ok(b)) = (&framed, &streamed) {
                prop_assert_eq!(a, b);
            }
            let plain = logfile::check_bytes(&gz);
            let plain_streamed = logfile::check_bytes_streaming(&gz, Some(&none));
            prop_assert_eq!(plain.is_ok(), plain_streamed.is_ok(), "{}", shown);
            if let (Ok(a), Ok(b)) = (plain, plain_streamed) {
                prop_assert_eq!(
                    (a.records, a.oldest, a.newest),
                    (b.records, b.oldest, b.newest)
                );
            }
            Ok(())
        })
        .unwrap();
}

/// The cut-down record the rules see (only the paths they look at) and the `||` lists folded
/// into sets give every rule the verdict it gives the whole record.
#[test]
fn rules_judge_the_cut_down_record_as_the_whole() {
    let rules = trailvault::alerts::eval::Rules::new(trailvault::config::Rule::cis());
    let name = prop_oneof![
        Just(json!("ConsoleLogin")),
        Just(json!("StopLogging")),
        Just(json!("PutBucketPolicy")),
        Just(json!("DisableKey")),
        Just(json!("CreateRoute")),
        Just(json!("AttachRolePolicy")),
        json_value(),
    ];
    let source = prop_oneof![
        Just(json!("s3.amazonaws.com")),
        Just(json!("kms.amazonaws.com")),
        Just(json!("signin.amazonaws.com")),
        Just(json!("config.amazonaws.com")),
        json_value(),
    ];
    let who = prop_oneof![
        Just(json!({"type": "Root"})),
        Just(json!({"type": "Root", "invokedBy": "s3.amazonaws.com"})),
        Just(json!("Root")),
        json_value(),
    ];
    let extra = prop_oneof![
        Just(json!({"MFAUsed": "No"})),
        Just(json!({"MFAUsed": "Yes"})),
        json_value(),
    ];
    let error = prop_oneof![
        Just(json!("AccessDenied")),
        Just(json!("Client.UnauthorizedOperation")),
        Just(json!("Failed authentication")),
        json_value(),
    ];
    let record = (name, source, who, extra, error.clone(), error, json_value()).prop_map(
        |(name, source, who, extra, code, message, other)| {
            json!({"eventName": name, "eventSource": source, "userIdentity": who,
                   "additionalEventData": extra, "errorCode": code, "errorMessage": message,
                   "responseElements": {"ConsoleLogin": "Failure"}, "eventType": "AwsApiCall",
                   "requestParameters": other})
        },
    );
    runner("rules on the cut-down record")
        .run(&record, |record| {
            let text = record.to_string();
            let view = rules.view(&text).unwrap();
            for rule in rules.all() {
                prop_assert_eq!(
                    rule.pattern.matches(&view),
                    rule.pattern.matches(&record),
                    "{} on {}",
                    &rule.name,
                    &text
                );
            }
            Ok(())
        })
        .unwrap();
}

fn digest_file() -> impl Strategy<Value = Vec<u8>> {
    let shaped = (
        digits(12),
        hostile_string(30),
        proptest::collection::vec((hostile_string(40), hostile_string(64)), 0..4),
        json_value(),
    )
        .prop_map(|(account, fingerprint, files, extra)| {
            json!({
                "awsAccountId": account,
                "digestStartTime": "2026-11-21T09:00:00Z",
                "digestEndTime": "2026-11-21T10:00:00Z",
                "digestS3Bucket": "b",
                "digestS3Object": "k",
                "digestPublicKeyFingerprint": fingerprint,
                "digestSignatureAlgorithm": "SHA256withRSA",
                "newestEventTime": extra,
                "logFiles": files.iter().map(|(k, h)| json!({
                    "s3Bucket": "b", "s3Object": k, "hashValue": h, "hashAlgorithm": "SHA-256",
                    "newestEventTime": "x", "oldestEventTime": "y"
                })).collect::<Vec<_>>(),
            })
            .to_string()
            .into_bytes()
        });
    let mutated = (shaped, any::<usize>(), any::<u8>()).prop_map(|(mut b, at, byte)| {
        let at = at % b.len();
        b[at] = byte;
        b
    });
    prop_oneof![2 => mutated, 1 => json_value().prop_map(|v| v.to_string().into_bytes())]
}

#[test]
fn digest_files_never_panic() {
    runner("digest files")
        .run(&digest_file(), |bytes| {
            if let Ok(d) = Digest::from_json(&bytes) {
                let _ = d.string_to_sign(&bytes);
            }
            let _ = logfile::check_bytes(&gzip(&bytes));
            Ok(())
        })
        .unwrap();
}

fn manifest_file() -> impl Strategy<Value = Vec<u8>> {
    let entry = (
        cloudtrail_key(),
        hostile_string(12),
        hostile_string(64),
        any::<u64>(),
    )
        .prop_map(|(key, version, sha, size)| {
            json!({"archiveKey": key, "versionId": version, "sha256": sha, "size": size,
                   "sourceBucket": "b", "sourceKey": key, "sourceVersionId": null,
                   "account": "111122223333", "archivedAt": "2026-11-21T09:00:00Z",
                   "outcome": "archived"})
        });
    let shaped = (
        any::<u64>(),
        proptest::collection::vec(entry, 0..4),
        json_value(),
    )
        .prop_map(|(sequence, entries, previous)| {
            json!({
                "manifestVersion": 1, "archiveBucket": "a", "sequence": sequence,
                "writer": "w", "periodStart": "s", "periodEnd": "e", "createdAt": "c",
                "signingKey": "k", "signatureAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256",
                "previousManifestKey": previous, "previousManifestHashValue": null,
                "previousManifestSignature": null, "entries": entries,
            })
            .to_string()
            .into_bytes()
        });
    let mutated = (shaped, any::<usize>(), any::<u8>()).prop_map(|(mut b, at, byte)| {
        let at = at % b.len();
        b[at] = byte;
        b
    });
    prop_oneof![2 => mutated, 1 => json_value().prop_map(|v| v.to_string().into_bytes())]
}

#[test]
fn manifests_never_panic() {
    runner("manifests")
        .run(&manifest_file(), |bytes| {
            if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
                let key = layout::manifest_key(m.sequence);
                prop_assert_eq!(
                    layout::manifest_sequence(&key),
                    Some(m.sequence).filter(|n| *n < 1_000_000_000_000)
                );
                let _ = m.string_to_sign(&key, &bytes);
            }
            Ok(())
        })
        .unwrap();
}
