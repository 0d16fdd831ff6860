//! Every shape of message that reaches the queue, read into the objects it announces.
//!
//! - S3 event notifications, `{"Records": [{"eventSource": "aws:s3", ...}]}`, whose keys are
//!   URL-form-encoded (`+` is a space, then percent-decoding);
//! - the same inside an SNS envelope (`{"Type": "Notification", "Message": "<JSON>"}`);
//! - EventBridge "Object Created" events, whose keys are not encoded;
//! - CloudTrail's own SNS message, `{"s3Bucket": ..., "s3ObjectKey": [...]}`;
//! - messages that need no work: `s3:TestEvent`, "CloudTrail validation message.", and
//!   events other than object creation.
//!
//! Anything else is an error: such a message is never deleted, so it reaches the dead-letter
//! queue where an operator sees it.

use serde_json::Value;
use time::OffsetDateTime;

/// One object a notification announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// Decoded: the key as S3 stores it.
    pub key: String,
    /// The version that was created, when the notification says.
    pub version_id: Option<String>,
    pub size: Option<u64>,
    pub etag: Option<String>,
    /// When S3 (or SNS, for CloudTrail's messages) says it happened: for the lag metric.
    pub event_time: Option<OffsetDateTime>,
}

/// What a message asks of the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Archive these objects.
    Objects(Vec<ObjectRef>),
    /// Acknowledge and count; there is nothing to copy.
    NoWork(NoWork),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoWork {
    /// S3 sends one when a notification configuration is saved.
    S3TestEvent,
    /// CloudTrail sends one when an SNS topic is set on a trail.
    CloudTrailValidation,
    /// An S3 or EventBridge event that is not an object creation (`ObjectRemoved:Delete`, ...).
    OtherEvent(String),
}

impl NoWork {
    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            NoWork::S3TestEvent => "s3_test_event",
            NoWork::CloudTrailValidation => "cloudtrail_validation",
            NoWork::OtherEvent(_) => "other_event",
        }
    }
}

/// Why a message is not a notification trailvault understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body is JSON but not an S3, SNS, EventBridge or CloudTrail notification")]
    UnknownShape,
    #[error("record {index}: {problem}")]
    BadRecord { index: usize, problem: String },
    #[error("an SNS envelope inside an SNS envelope")]
    NestedEnvelope,
}

impl NotificationError {
    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            NotificationError::NotJson(_) => "not_json",
            NotificationError::UnknownShape => "unknown_shape",
            NotificationError::BadRecord { .. } => "bad_record",
            NotificationError::NestedEnvelope => "nested_envelope",
        }
    }
}

/// CloudTrail's SNS greeting, sent as the whole message.
const CLOUDTRAIL_VALIDATION: &str = "CloudTrail validation message.";

/// Reads a message body.
pub fn parse(body: &str) -> Result<Notification, NotificationError> {
    parse_inner(body, false, None)
}

fn parse_inner(
    body: &str,
    in_envelope: bool,
    envelope_time: Option<OffsetDateTime>,
) -> Result<Notification, NotificationError> {
    if body.trim() == CLOUDTRAIL_VALIDATION {
        return Ok(Notification::NoWork(NoWork::CloudTrailValidation));
    }
    let value: Value =
        serde_json::from_str(body).map_err(|e| NotificationError::NotJson(e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(NotificationError::UnknownShape);
    };

    if object.get("Type").and_then(Value::as_str) == Some("Notification") {
        if in_envelope {
            return Err(NotificationError::NestedEnvelope);
        }
        let message = object
            .get("Message")
            .and_then(Value::as_str)
            .ok_or(NotificationError::UnknownShape)?;
        let timestamp = object
            .get("Timestamp")
            .and_then(Value::as_str)
            .and_then(rfc3339);
        return parse_inner(message, true, timestamp);
    }
    if let Some(records) = object.get("Records") {
        return s3_event(records);
    }
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::NoWork(NoWork::S3TestEvent));
    }
    if object.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return eventbridge(object);
    }
    if let (Some(bucket), Some(keys)) = (object.get("s3Bucket"), object.get("s3ObjectKey")) {
        return cloudtrail_message(bucket, keys, envelope_time);
    }
    Err(NotificationError::UnknownShape)
}

fn s3_event(records: &Value) -> Result<Notification, NotificationError> {
    let records = records.as_array().ok_or(NotificationError::UnknownShape)?;
    if records.is_empty() {
        return Err(NotificationError::BadRecord {
            index: 0,
            problem: "the Records array is empty".to_owned(),
        });
    }
    let mut objects = Vec::new();
    let mut other = None;
    for (index, r) in records.iter().enumerate() {
        let bad = |problem: &str| NotificationError::BadRecord {
            index,
            problem: problem.to_owned(),
        };
        if r.get("eventSource").and_then(Value::as_str) != Some("aws:s3") {
            return Err(bad("eventSource is not aws:s3"));
        }
        let name = r
            .get("eventName")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no eventName"))?;
        if !name.starts_with("ObjectCreated:") {
            other.get_or_insert_with(|| name.to_owned());
            continue;
        }
        let s3 = r.get("s3").ok_or_else(|| bad("no s3 section"))?;
        let bucket = s3
            .pointer("/bucket/name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no s3.bucket.name"))?;
        let raw_key = s3
            .pointer("/object/key")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no s3.object.key"))?;
        let key = form_decode(raw_key)
            .ok_or_else(|| bad("s3.object.key is not valid URL-encoded UTF-8"))?;
        objects.push(ObjectRef {
            bucket: bucket.to_owned(),
            key,
            version_id: version(s3.pointer("/object/versionId")),
            size: s3.pointer("/object/size").and_then(Value::as_u64),
            etag: s3
                .pointer("/object/eTag")
                .and_then(Value::as_str)
                .map(str::to_owned),
            event_time: r.get("eventTime").and_then(Value::as_str).and_then(rfc3339),
        });
    }
    match (objects.is_empty(), other) {
        (false, _) => Ok(Notification::Objects(objects)),
        (true, Some(name)) => Ok(Notification::NoWork(NoWork::OtherEvent(name))),
        (true, None) => unreachable!("a non-empty Records array yields objects or another event"),
    }
}

fn eventbridge(event: &serde_json::Map<String, Value>) -> Result<Notification, NotificationError> {
    let bad = |problem: &str| NotificationError::BadRecord {
        index: 0,
        problem: problem.to_owned(),
    };
    let detail_type = event
        .get("detail-type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no detail-type"))?;
    if detail_type != "Object Created" {
        return Ok(Notification::NoWork(NoWork::OtherEvent(
            detail_type.to_owned(),
        )));
    }
    let detail = event.get("detail").ok_or_else(|| bad("no detail"))?;
    let bucket = detail
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no detail.bucket.name"))?;
    let key = detail
        .pointer("/object/key")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no detail.object.key"))?;
    let object = &detail["object"];
    Ok(Notification::Objects(vec![ObjectRef {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: version(object.get("version-id")),
        size: object.get("size").and_then(Value::as_u64),
        // AWS spells it etag; some emulators eTag.
        etag: object
            .get("etag")
            .or_else(|| object.get("eTag"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        event_time: event.get("time").and_then(Value::as_str).and_then(rfc3339),
    }]))
}

fn cloudtrail_message(
    bucket: &Value,
    keys: &Value,
    envelope_time: Option<OffsetDateTime>,
) -> Result<Notification, NotificationError> {
    let bad = |problem: &str| NotificationError::BadRecord {
        index: 0,
        problem: problem.to_owned(),
    };
    let bucket = bucket
        .as_str()
        .ok_or_else(|| bad("s3Bucket is not a string"))?;
    let keys = keys
        .as_array()
        .ok_or_else(|| bad("s3ObjectKey is not an array"))?;
    if keys.is_empty() {
        return Err(bad("s3ObjectKey is empty"));
    }
    let objects = keys
        .iter()
        .enumerate()
        .map(|(index, k)| {
            let key = k.as_str().ok_or(NotificationError::BadRecord {
                index,
                problem: "s3ObjectKey holds a non-string".to_owned(),
            })?;
            Ok(ObjectRef {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version_id: None,
                size: None,
                etag: None,
                event_time: envelope_time,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Notification::Objects(objects))
}

/// A version id, where "null" (an unversioned object) means none.
fn version(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty() && *s != "null")
        .map(str::to_owned)
}

fn rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then `%XX` escapes.
pub fn form_decode(s: &str) -> Option<String> {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/01/111122223333_CloudTrail_us-east-1_20261101T0036Z_Fbwb0dU5sXa27Nsd.json.gz";

    /// As real S3 sends it (AWS's documented shape): `/` kept, other characters encoded.
    const S3_EVENT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-21T12:56:02.571Z","eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},"requestParameters":{"sourceIPAddress":"203.0.113.7"},"responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},"s3":{"s3SchemaVersion":"1.0","configurationId":"trailvault","bucket":{"name":"trail-bucket","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},"arn":"arn:aws:s3:::trail-bucket"},"object":{"key":"AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/01/111122223333_CloudTrail_us-east-1_20261101T0036Z_Fbwb0dU5sXa27Nsd.json.gz","size":2772,"eTag":"6dc0e9d7e8a4cf75a37c037fe5868abf","versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko","sequencer":"0055AED6DCD90281E5"}}}]}"#;

    /// As the emulator sends it: `/` encoded as `%2F`, no versionId or sequencer.
    const S3_EVENT_EMULATOR: &str = r#"{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-21T12:56:02.571Z", "eventName": "ObjectCreated:Put", "s3": {"s3SchemaVersion": "1.0", "configurationId": "trailvault", "bucket": {"name": "trail-bucket", "arn": "arn:aws:s3:::trail-bucket"}, "object": {"key": "AWSLogs%2F111122223333%2FCloudTrail%2Fus-east-1%2F2026%2F11%2F01%2F111122223333_CloudTrail_us-east-1_20261101T0036Z_Fbwb0dU5sXa27Nsd.json.gz", "size": 2772, "eTag": "6dc0e9d7e8a4cf75a37c037fe5868abf"}}}]}"#;

    const TEST_EVENT: &str = r#"{"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-21T12:55:59.969Z", "Bucket": "trail-bucket", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YGRmS5E/2gRRyHEx3ZR6Ajv7CDq2k+M="}"#;

    fn sns(message: &str) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "32571a0b-2bd5-40e6-adeb-5fa9d7f7e39f",
            "TopicArn": "arn:aws:sns:eu-west-1:111122223333:s3-object-created",
            "Subject": "Amazon S3 Notification",
            "Message": message,
            "Timestamp": "2026-11-21T12:56:02.643Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-example.pem",
            "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"
        })
        .to_string()
    }

    /// AWS's documented EventBridge shape (keys not encoded; `etag` spelled in lower case).
    const EVENTBRIDGE: &str = r#"{"version":"0","id":"17793124-05d4-b198-2fde-7ededc63b103","detail-type":"Object Created","source":"aws.s3","account":"111122223333","time":"2026-11-21T12:56:02Z","region":"us-east-1","resources":["arn:aws:s3:::trail-bucket"],"detail":{"version":"0","bucket":{"name":"trail-bucket"},"object":{"key":"AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/01/111122223333_CloudTrail_us-east-1_20261101T0036Z_Fbwb0dU5sXa27Nsd.json.gz","size":2772,"etag":"6dc0e9d7e8a4cf75a37c037fe5868abf","version-id":"IYV3p45BT0ac8hjHg1houSdS1a.Mro8e","sequencer":"00617F08299329D189"},"request-id":"N4N7GDK58NMKJ12R","requester":"cloudtrail.amazonaws.com","source-ip-address":"203.0.113.15","reason":"PutObject"}}"#;

    fn one(n: Notification) -> ObjectRef {
        match n {
            Notification::Objects(mut v) if v.len() == 1 => v.remove(0),
            other => panic!("expected one object, got {other:?}"),
        }
    }

    #[test]
    fn an_s3_event_names_its_object() {
        let o = one(parse(S3_EVENT).unwrap());
        assert_eq!((o.bucket.as_str(), o.key.as_str()), ("trail-bucket", KEY));
        assert_eq!(
            o.version_id.as_deref(),
            Some("096fKKXTRTtl3on89fVO.nfljtsv6qko")
        );
        assert_eq!(o.size, Some(2772));
        assert_eq!(o.event_time.unwrap().unix_timestamp(), 1_795_265_762);
        let emulated = one(parse(S3_EVENT_EMULATOR).unwrap());
        assert_eq!(emulated.key, KEY);
        assert_eq!(emulated.version_id, None);
    }

    #[test]
    fn keys_are_form_decoded() {
        let body = S3_EVENT.replace(
            "\"key\":\"AWSLogs/111122223333/CloudTrail",
            "\"key\":\"my+prefix%3A%C3%A9/AWSLogs/111122223333/CloudTrail",
        );
        let o = one(parse(&body).unwrap());
        assert!(o.key.starts_with("my prefix:é/AWSLogs/"), "{}", o.key);
        let broken = S3_EVENT.replace("\"key\":\"AWSLogs/", "\"key\":\"%FF/AWSLogs/");
        assert!(matches!(
            parse(&broken),
            Err(NotificationError::BadRecord { index: 0, .. })
        ));
    }

    #[test]
    fn an_sns_envelope_is_opened() {
        assert_eq!(one(parse(&sns(S3_EVENT)).unwrap()).key, KEY);
        assert_eq!(
            parse(&sns(TEST_EVENT)).unwrap(),
            Notification::NoWork(NoWork::S3TestEvent)
        );
        assert_eq!(
            parse(&sns("CloudTrail validation message.")).unwrap(),
            Notification::NoWork(NoWork::CloudTrailValidation)
        );
        assert_eq!(
            parse(&sns(&sns(S3_EVENT))),
            Err(NotificationError::NestedEnvelope)
        );
    }

    #[test]
    fn an_eventbridge_event_names_its_object() {
        let o = one(parse(EVENTBRIDGE).unwrap());
        assert_eq!(o.key, KEY, "EventBridge keys are not encoded");
        assert_eq!(
            o.version_id.as_deref(),
            Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
        );
        assert_eq!(o.etag.as_deref(), Some("6dc0e9d7e8a4cf75a37c037fe5868abf"));
        let deleted = EVENTBRIDGE.replace("Object Created", "Object Deleted");
        assert_eq!(
            parse(&deleted).unwrap(),
            Notification::NoWork(NoWork::OtherEvent("Object Deleted".to_owned()))
        );
    }

    #[test]
    fn cloudtrail_announces_several_keys_through_sns() {
        let message =
            format!(r#"{{"s3Bucket":"trail-bucket","s3ObjectKey":["{KEY}","a b/c+d.json.gz"]}}"#);
        match parse(&sns(&message)).unwrap() {
            Notification::Objects(objects) => {
                assert_eq!(objects.len(), 2);
                assert_eq!(objects[0].key, KEY);
                assert_eq!(
                    objects[1].key, "a b/c+d.json.gz",
                    "CloudTrail's keys are not encoded"
                );
                assert_eq!(
                    objects[1].event_time.unwrap().unix_timestamp(),
                    1_795_265_762
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_without_work() {
        assert_eq!(
            parse(TEST_EVENT).unwrap(),
            Notification::NoWork(NoWork::S3TestEvent)
        );
        assert_eq!(
            parse("CloudTrail validation message.").unwrap(),
            Notification::NoWork(NoWork::CloudTrailValidation)
        );
        let removed = S3_EVENT.replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert_eq!(
            parse(&removed).unwrap(),
            Notification::NoWork(NoWork::OtherEvent("ObjectRemoved:Delete".to_owned()))
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for (body, label) in [
            ("", "not_json"),
            ("hello", "not_json"),
            ("[1,2]", "unknown_shape"),
            (r#"{"message":"hi"}"#, "unknown_shape"),
            (r#"{"Records":[]}"#, "bad_record"),
            (
                r#"{"Records":[{"eventSource":"aws:sqs","eventName":"x"}]}"#,
                "bad_record",
            ),
            (
                r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{}}]}"#,
                "bad_record",
            ),
            (r#"{"s3Bucket":"b","s3ObjectKey":[]}"#, "bad_record"),
            (r#"{"s3Bucket":"b","s3ObjectKey":"k"}"#, "bad_record"),
            (r#"{"Type":"Notification"}"#, "unknown_shape"),
        ] {
            let err = parse(body).expect_err(body);
            assert_eq!(err.label(), label, "{body}: {err}");
        }
    }
}
