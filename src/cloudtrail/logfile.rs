//! Checking a CloudTrail log file as its bytes stream past: gzip (every member, with a cap) of
//! one JSON object with a `Records` array. It yields the record count and the oldest and
//! newest `eventTime`, without ever holding the decompressed file in memory: at most one
//! record ([`MAX_RECORD`]) and a chunk.
//!
//! The check runs on a blocking thread fed through a small bounded channel, so a copy can pass
//! each chunk on its way to the archive without waiting for the parse, and memory stays at a
//! few chunks whatever the file's size.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::io::{BufReader, Read};
use std::rc::Rc;

use bytes::Bytes;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::gzip;
use crate::alerts::eval::{FileMatches, Rules};

/// Largest decompressed log file accepted. CloudTrail's own are far smaller; this only bounds
/// the work a hostile file can cause.
pub const MAX_DECOMPRESSED: u64 = 2 << 30;

/// What a well-formed log file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSummary {
    pub records: u64,
    /// RFC 3339, as in the records; `None` when no record has an `eventTime`.
    pub oldest: Option<String>,
    pub newest: Option<String>,
    /// What the alert rules matched, when they were evaluated.
    pub matches: FileMatches,
}

/// Why a file is not a CloudTrail log file: the reason it is archived as quarantined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotALogFile {
    #[error("not valid gzip: {0}")]
    Gzip(String),
    #[error("not a CloudTrail log file: {0}")]
    Json(String),
    #[error("trailing data after the JSON object: {0}")]
    Trailing(String),
    #[error("the log check failed: {0}")]
    Check(String),
}

/// A check in progress.
pub struct LogCheck {
    tx: Option<mpsc::Sender<Bytes>>,
    handle: tokio::task::JoinHandle<Result<LogSummary, NotALogFile>>,
}

impl LogCheck {
    /// Starts a check on a blocking thread; with `rules`, every record is evaluated too.
    pub fn start(rules: Option<Rules>) -> LogCheck {
        let (tx, rx) = mpsc::channel(4);
        let handle = tokio::task::spawn_blocking(move || {
            check(
                ChannelReader {
                    rx,
                    chunk: Bytes::new(),
                },
                rules,
            )
        });
        LogCheck {
            tx: Some(tx),
            handle,
        }
    }

    /// Passes the next chunk. Once the check has failed it stops listening, and chunks are
    /// dropped: the copy goes on regardless.
    pub async fn feed(&mut self, chunk: Bytes) {
        if let Some(tx) = &self.tx {
            if tx.send(chunk).await.is_err() {
                self.tx = None;
            }
        }
    }

    /// The verdict, once every chunk has been fed.
    pub async fn finish(mut self) -> Result<LogSummary, NotALogFile> {
        self.tx = None;
        self.handle
            .await
            .unwrap_or_else(|e| Err(NotALogFile::Check(e.to_string())))
    }
}

/// Checks a whole log file held in memory (tests, and small files).
pub fn check_bytes(compressed: &[u8]) -> Result<LogSummary, NotALogFile> {
    check(compressed, None)
}

/// Checks a whole log file held in memory and evaluates `rules` on its records.
pub fn evaluate_bytes(compressed: &[u8], rules: &Rules) -> Result<LogSummary, NotALogFile> {
    check(compressed, Some(rules.clone()))
}

/// The streaming reader alone, whatever the layout: what the framed reading must agree with
/// (the differential fuzz test).
#[doc(hidden)]
pub fn check_bytes_streaming(
    compressed: &[u8],
    rules: Option<&Rules>,
) -> Result<LogSummary, NotALogFile> {
    check_stream(gzip::reader(compressed, MAX_DECOMPRESSED), rules.cloned())
}

fn check<R: Read>(compressed: R, rules: Option<Rules>) -> Result<LogSummary, NotALogFile> {
    let mut f = Framer {
        src: gzip::reader(compressed, MAX_DECOMPRESSED),
        buf: Vec::new(),
        pos: 0,
        eof: false,
        matched: Vec::new(),
    };
    if !f.literal(b"{")? || !f.literal(b"\"Records\"")? || !f.literal(b":")? || !f.literal(b"[")? {
        // Not laid out as CloudTrail writes (another field first, say): read as it streams,
        // from what was matched so far (less the whitespace, which means nothing in JSON).
        let Framer {
            src,
            buf,
            pos,
            matched,
            ..
        } = f;
        let mut rest = std::io::Cursor::new(buf);
        rest.set_position(pos as u64);
        return check_stream(std::io::Cursor::new(matched).chain(rest).chain(src), rules);
    }
    let mut s = LogSummary::default();
    if f.peek()? != Some(b']') {
        loop {
            f.compact();
            if f.peek()? != Some(b'{') {
                return Err(NotALogFile::Json(format!(
                    "record {} of Records is not a JSON object",
                    s.records
                )));
            }
            let (start, end) = f.record(s.records)?;
            one_record(&mut s, rules.as_ref(), &f.buf[start..end])
                .map_err(|e| NotALogFile::Json(format!("record {} of Records: {e}", s.records)))?;
            match f.peek()? {
                Some(b',') => f.pos += 1,
                Some(b']') => break,
                Some(other) => {
                    return Err(NotALogFile::Json(format!(
                        "expected `,` or `]` after record {} of Records, found `{}`",
                        s.records - 1,
                        other.escape_ascii()
                    )))
                }
                None => {
                    return Err(NotALogFile::Json(
                        "the file ends inside the Records array".to_owned(),
                    ))
                }
            }
        }
    }
    f.pos += 1;
    // What follows the array (`}`, or more fields) is read by the streaming parser, behind an
    // empty Records, so that a second Records is still a duplicate and the end still checked.
    let Framer { src, buf, pos, .. } = f;
    let mut rest = std::io::Cursor::new(buf);
    rest.set_position(pos as u64);
    check_stream(
        std::io::Cursor::new(&b"{\"Records\":[]"[..])
            .chain(rest)
            .chain(src),
        None,
    )?;
    Ok(s)
}

/// Decompressed bytes read at a time.
const CHUNK: usize = 64 * 1024;

/// The longest record read: CloudTrail's are at most a few hundred KB; this bounds what one
/// record of a hostile file can make a check hold.
pub const MAX_RECORD: usize = 4 * 1024 * 1024;

/// CloudTrail's own layout, `{"Records":[{...},{...}]}`, read a record at a time: each
/// record's bytes are found by one scan (strings skipped with `memchr`) and parsed from memory,
/// several times faster than a parser pulling bytes one by one from a stream, and holding no
/// more than one record and a chunk.
struct Framer<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// The literals [`Framer::literal`] consumed: what the streaming parser is given back
    /// when the layout turns out to be another.
    matched: Vec<u8>,
}

impl<R: Read> Framer<R> {
    /// Reads one more chunk; false at the end.
    fn fill(&mut self) -> Result<bool, NotALogFile> {
        if self.eof {
            return Ok(false);
        }
        let len = self.buf.len();
        // Grown a chunk at a time, not doubled: a record near the cap holds no more than it.
        self.buf.reserve_exact(CHUNK);
        self.buf.resize(len + CHUNK, 0);
        let n = loop {
            match self.src.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(NotALogFile::Gzip(e.to_string())),
            }
        };
        self.buf.truncate(len + n);
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// The next byte that is not whitespace, not consumed. Never called inside a record, so
    /// what has been read is no longer needed once it has all been consumed: a file of
    /// gigabytes of whitespace between records costs one chunk.
    fn peek(&mut self) -> Result<Option<u8>, NotALogFile> {
        loop {
            while let Some(&b) = self.buf.get(self.pos) {
                if !b.is_ascii_whitespace() {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            self.buf.clear();
            self.pos = 0;
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Consumes `lit` after any whitespace if it comes next.
    fn literal(&mut self, lit: &[u8]) -> Result<bool, NotALogFile> {
        if self.peek()?.is_none() {
            return Ok(false);
        }
        while self.buf.len() < self.pos + lit.len() {
            if !self.fill()? {
                return Ok(false);
            }
        }
        let matched = &self.buf[self.pos..self.pos + lit.len()] == lit;
        if matched {
            self.pos += lit.len();
            self.matched.extend_from_slice(lit);
        }
        Ok(matched)
    }

    /// Drops the bytes already read, once they are worth moving the rest for.
    fn compact(&mut self) {
        if self.pos >= 4 * CHUNK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// The extent of the record (an object) at `pos`; `pos` moves past it. Tokens are measured
    /// as [`TokenGuard`] measures them, so that a file gets the same verdict either way.
    fn record(&mut self, index: u64) -> Result<(usize, usize), NotALogFile> {
        let start = self.pos;
        let mut i = start + 1;
        let (mut depth, mut in_string, mut escaped, mut run) = (1usize, false, false, 0usize);
        loop {
            if i >= self.buf.len() {
                if i - start > MAX_RECORD {
                    return Err(too_long(index));
                }
                if !self.fill()? {
                    return Err(NotALogFile::Json(format!(
                        "the file ends inside record {index} of Records"
                    )));
                }
                continue;
            }
            if in_string {
                if escaped {
                    escaped = false;
                    run += 1;
                    i += 1;
                } else {
                    match memchr::memchr2(b'"', b'\\', &self.buf[i..]) {
                        None => {
                            run += self.buf.len() - i;
                            i = self.buf.len();
                        }
                        Some(k) => {
                            run += k;
                            i += k;
                            if self.buf[i] == b'"' {
                                in_string = false;
                                if run > MAX_TOKEN {
                                    return Err(NotALogFile::Json(TokenTooLong.to_string()));
                                }
                                run = 0;
                            } else {
                                escaped = true;
                                run += 1;
                            }
                            i += 1;
                        }
                    }
                }
            } else {
                let b = self.buf[i];
                i += 1;
                match b {
                    b'"' => {
                        in_string = true;
                        run = 0;
                    }
                    b'{' | b'[' => {
                        depth += 1;
                        run = 0;
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        run = 0;
                        if depth == 0 && i - start <= MAX_RECORD {
                            self.pos = i;
                            return Ok((start, i));
                        }
                        if depth == 0 {
                            return Err(too_long(index));
                        }
                    }
                    b',' | b':' => run = 0,
                    b if b.is_ascii_whitespace() => run = 0,
                    _ => run += 1,
                }
            }
            if run > MAX_TOKEN {
                return Err(NotALogFile::Json(TokenTooLong.to_string()));
            }
        }
    }
}

fn too_long(index: u64) -> NotALogFile {
    NotALogFile::Json(format!(
        "record {index} of Records is longer than {MAX_RECORD} bytes, more than any CloudTrail \
         record holds"
    ))
}

/// Takes one record's bytes into the summary (and through the rules).
fn one_record(s: &mut LogSummary, rules: Option<&Rules>, bytes: &[u8]) -> Result<(), String> {
    // JSON is UTF-8 (RFC 8259); checked here, whatever the record's strings are used for.
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    match rules {
        None => {
            time_only(s, text)?;
        }
        Some(rules) => evaluate(s, rules, text)?,
    }
    s.records += 1;
    Ok(())
}

fn time_only(s: &mut LogSummary, text: &str) -> Result<(), String> {
    let record: RecordTime = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if let Some(t) = record.event_time {
        note_time(s, &t);
    }
    Ok(())
}

/// Evaluates the rules on one record's text; `s.records` is its index.
fn evaluate(s: &mut LogSummary, rules: &Rules, text: &str) -> Result<(), String> {
    let view = rules.view(text).map_err(|e| e.to_string())?;
    if !view.is_object() {
        return Err("a record is not a JSON object".to_owned());
    }
    match view.get("eventTime") {
        Some(serde_json::Value::String(t)) => note_time(s, t),
        None | Some(serde_json::Value::Null) => {}
        Some(_) => return Err("eventTime is not a string".to_owned()),
    }
    rules.record(s.records, &view, text, &mut s.matches);
    Ok(())
}

fn note_time(s: &mut LogSummary, t: &str) {
    if s.oldest.as_deref().is_none_or(|o| t < o) {
        s.oldest = Some(t.to_owned());
    }
    if s.newest.as_deref().is_none_or(|n| t > n) {
        s.newest = Some(t.to_owned());
    }
}

/// The file read as it streams (any layout): `decompressed` through the token guard into
/// serde's streaming parser.
fn check_stream<R: Read>(decompressed: R, rules: Option<Rules>) -> Result<LogSummary, NotALogFile> {
    let tripped = Rc::new(Cell::new(false));
    let json = BufReader::with_capacity(64 * 1024, TokenGuard::new(decompressed, tripped.clone()));
    let mut de = serde_json::Deserializer::from_reader(json);
    let summary =
        serde::Deserializer::deserialize_map(&mut de, LogVisitor { rules }).map_err(|e| {
            if tripped.get() {
                NotALogFile::Json(TokenTooLong.to_string())
            } else {
                describe(e)
            }
        })?;
    de.end().map_err(|e| NotALogFile::Trailing(e.to_string()))?;
    Ok(summary)
}

fn describe(e: serde_json::Error) -> NotALogFile {
    if e.is_io() {
        // The io error comes from gzip: corrupt, truncated, or over the cap.
        NotALogFile::Gzip(match std::error::Error::source(&e) {
            Some(io) => io.to_string(),
            None => e.to_string(),
        })
    } else {
        NotALogFile::Json(e.to_string())
    }
}

/// The longest JSON string (or number, or literal) a log file may hold. The parser keeps the
/// token it is reading in memory, so without this one enormous string in a small gzip would
/// cost gigabytes; CloudTrail's own records are at most a few hundred KB in all.
pub const MAX_TOKEN: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("a JSON string or number is longer than {MAX_TOKEN} bytes, more than any CloudTrail record holds")]
struct TokenTooLong;

/// Passes JSON through while measuring its tokens; fails the read once one is longer than
/// [`MAX_TOKEN`]. A byte-level scan (strings, their escapes, and runs outside them), so that
/// it runs ahead of the parser and holds nothing.
struct TokenGuard<R> {
    inner: R,
    in_string: bool,
    escaped: bool,
    run: usize,
    /// Set when it fails, so that the parser's error can be told apart from gzip's.
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> TokenGuard<R> {
    fn new(inner: R, tripped: Rc<Cell<bool>>) -> TokenGuard<R> {
        TokenGuard {
            inner,
            in_string: false,
            escaped: false,
            run: 0,
            tripped,
        }
    }
}

impl<R: Read> Read for TokenGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                    self.run = 0;
                    continue;
                }
                self.run += 1;
            } else if b == b'"' {
                self.in_string = true;
                self.run = 0;
            } else if matches!(b, b'{' | b'}' | b'[' | b']' | b',' | b':')
                || b.is_ascii_whitespace()
            {
                self.run = 0;
            } else {
                self.run += 1;
            }
            if self.run > MAX_TOKEN {
                self.tripped.set(true);
                return Err(std::io::Error::other(TokenTooLong));
            }
        }
        Ok(n)
    }
}

struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(next) => self.chunk = next,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

struct LogVisitor {
    rules: Option<Rules>,
}

impl<'de> Visitor<'de> for LogVisitor {
    type Value = LogSummary;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with a Records array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LogSummary, A::Error> {
        let mut summary = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "Records" {
                if summary.is_some() {
                    return Err(serde::de::Error::duplicate_field("Records"));
                }
                summary = Some(map.next_value_seed(RecordsSeed {
                    rules: self.rules.clone(),
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        summary.ok_or_else(|| serde::de::Error::missing_field("Records"))
    }
}

struct RecordsSeed {
    rules: Option<Rules>,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed {
    type Value = LogSummary;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<LogSummary, D::Error> {
        d.deserialize_seq(RecordsVisitor { rules: self.rules })
    }
}

struct RecordsVisitor {
    rules: Option<Rules>,
}

/// A record's `eventTime`, every other field skipped as it goes past; written twice, the last
/// (as a parsed record keeps it). The same whether the rules run or not, so that both give a
/// file the same verdict.
struct RecordTime<'a> {
    event_time: Option<Cow<'a, str>>,
}

impl<'de> Deserialize<'de> for RecordTime<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TimeVisitor)
    }
}

struct TimeVisitor;

impl<'de> Visitor<'de> for TimeVisitor {
    type Value = RecordTime<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RecordTime<'de>, A::Error> {
        let mut event_time = None;
        while let Some(IsEventTime(is)) = map.next_key()? {
            if is {
                event_time = map.next_value::<OptStr>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(RecordTime { event_time })
    }
}

/// Whether a field name is `eventTime`, without copying it.
struct IsEventTime(bool);

impl<'de> Deserialize<'de> for IsEventTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IsEventTime;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, s: &str) -> Result<IsEventTime, E> {
                Ok(IsEventTime(s == "eventTime"))
            }
        }
        d.deserialize_str(V)
    }
}

/// A string or null, borrowed from the input where it can be.
struct OptStr<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for OptStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OptStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("eventTime as a string")
            }
            fn visit_unit<E>(self) -> Result<OptStr<'de>, E> {
                Ok(OptStr(None))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<OptStr<'de>, E> {
                Ok(OptStr(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E>(self, s: &str) -> Result<OptStr<'de>, E> {
                Ok(OptStr(Some(Cow::Owned(s.to_owned()))))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Visitor<'de> for RecordsVisitor {
    type Value = LogSummary;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of record objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LogSummary, A::Error> {
        let mut s = LogSummary::default();
        match &self.rules {
            // Only the time: everything else is skipped as it streams past.
            None => {
                while let Some(record) = seq.next_element::<RecordTime>()? {
                    s.records += 1;
                    if let Some(t) = record.event_time {
                        note_time(&mut s, &t);
                    }
                }
            }
            // Each record's text, then the fields the rules look at.
            Some(rules) => {
                while let Some(record) = seq.next_element::<Box<serde_json::value::RawValue>>()? {
                    evaluate(&mut s, rules, record.get()).map_err(serde::de::Error::custom)?;
                    s.records += 1;
                }
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    const LOG: &str = r#"{"Records":[{"eventVersion":"1.11","eventTime":"2026-11-01T00:03:12Z","eventName":"GetObject","requestParameters":{"a":[1,2,{"b":null}]}},{"eventTime":"2026-10-31T23:59:59Z"},{"eventName":"NoTime"},{"eventTime":"2026-11-01T00:04:00Z"}]}"#;

    #[test]
    fn a_log_file_is_summarised() {
        let s = check_bytes(&gz(LOG.as_bytes())).unwrap();
        assert_eq!(s.records, 4);
        assert_eq!(s.oldest.as_deref(), Some("2026-10-31T23:59:59Z"));
        assert_eq!(s.newest.as_deref(), Some("2026-11-01T00:04:00Z"));
        let empty = check_bytes(&gz(br#"{"Records":[]}"#)).unwrap();
        assert_eq!(empty, LogSummary::default());
    }

    #[test]
    fn evaluating_rules_gives_the_same_verdict_and_summary() {
        let rule = crate::config::Rule {
            name: "login".to_owned(),
            control: None,
            severity: crate::alerts::cis::Severity::High,
            description: String::new(),
            pattern: crate::alerts::pattern::Pattern::parse(
                r#"{ $.eventTime = "2026-11-01T00:04:00Z" }"#,
            )
            .unwrap(),
            suppress: None,
            builtin: false,
        };
        let rules = Rules::new(vec![rule]);
        let with = evaluate_bytes(&gz(LOG.as_bytes()), &rules).unwrap();
        let without = check_bytes(&gz(LOG.as_bytes())).unwrap();
        assert_eq!(with.matches.matches.len(), 1);
        assert_eq!(with.matches.matches[0].index, 3);
        assert_eq!(
            LogSummary {
                matches: FileMatches::default(),
                ..with
            },
            without
        );
        for bad in [
            &b"{\"Records\":[1]}"[..],
            b"{\"Records\":[{\"eventTime\":5}]}",
            b"{\"Records\":[]} {}",
            b"{\"records\":[]}",
        ] {
            let a = evaluate_bytes(&gz(bad), &rules).is_err();
            let b = check_bytes(&gz(bad)).is_err();
            assert!(a && b, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn multi_member_gzip_is_one_file() {
        let (a, b) = LOG.split_at(40);
        let mut two = gz(a.as_bytes());
        two.extend(gz(b.as_bytes()));
        assert_eq!(check_bytes(&two).unwrap().records, 4);
    }

    #[test]
    fn what_is_not_a_log_file() {
        let cases: [(Vec<u8>, &str); 7] = [
            (b"{\"Records\":[]}".to_vec(), "not valid gzip"),
            (gz(b"{\"Records\":[]"), "not a CloudTrail log file"),
            (gz(b"{\"records\":[]}"), "missing field `Records`"),
            (gz(b"[{\"Records\":[]}]"), "not a CloudTrail log file"),
            (gz(b"{\"Records\":[1]}"), "not a CloudTrail log file"),
            (gz(b"{\"Records\":[]} {}"), "trailing data"),
            (gz(&gz(b"{\"Records\":[]}")), "not a CloudTrail log file"),
        ];
        for (bytes, expected) in cases {
            let err = check_bytes(&bytes).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} (expected {expected})");
        }
        let mut truncated = gz(LOG.as_bytes());
        truncated.truncate(truncated.len() - 10);
        assert!(matches!(
            check_bytes(&truncated).unwrap_err(),
            NotALogFile::Gzip(_)
        ));
    }

    #[test]
    fn one_enormous_string_is_refused_as_it_streams_not_held() {
        // Just under the cap, in a key and in a value: fine.
        let near = "x".repeat(MAX_TOKEN);
        let ok = format!(r#"{{"Records":[{{"eventTime":"t","{near}":"{near}"}}]}}"#);
        assert_eq!(check_bytes(&gz(ok.as_bytes())).unwrap().records, 1);
        // An escaped quote does not end a string.
        let escaped = format!(
            r#"{{"Records":[{{"eventTime":"{}\"{}"}}]}}"#,
            "a".repeat(MAX_TOKEN / 2),
            "b".repeat(MAX_TOKEN)
        );
        // One byte over, as a value, a key, a number: refused, and named.
        let over = "y".repeat(MAX_TOKEN + 1);
        let digits = "9".repeat(MAX_TOKEN + 1);
        for json in [
            format!(r#"{{"Records":[{{"eventTime":"{over}"}}]}}"#),
            format!(r#"{{"Records":[{{"{over}":1}}]}}"#),
            format!(r#"{{"Records":[{{"n":{digits}}}]}}"#),
            escaped,
        ] {
            let err = check_bytes(&gz(json.as_bytes())).unwrap_err();
            assert_eq!(err, NotALogFile::Json(TokenTooLong.to_string()));
        }
    }

    #[test]
    fn a_record_past_the_cap_is_refused_and_named() {
        let numbers = "1,".repeat(MAX_RECORD / 2);
        let json = format!(r#"{{"Records":[{{"eventTime":"t"}},{{"n":[{numbers}1]}}]}}"#);
        assert_eq!(
            check_bytes(&gz(json.as_bytes())).unwrap_err(),
            NotALogFile::Json(format!(
                "record 1 of Records is longer than {MAX_RECORD} bytes, more than any \
                 CloudTrail record holds"
            ))
        );
        let under = "1,".repeat(MAX_RECORD / 2 - 16);
        let json = format!(r#"{{"Records":[{{"n":[{under}1]}}]}}"#);
        assert_eq!(check_bytes(&gz(json.as_bytes())).unwrap().records, 1);
    }

    /// Endless whitespace: never more than one chunk held, wherever it is.
    struct Spaces {
        left: usize,
    }

    impl Read for Spaces {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.left);
            buf[..n].fill(b' ');
            self.left -= n;
            Ok(n)
        }
    }

    #[test]
    fn whitespace_between_records_is_not_held() {
        let file = (&b"{\"Records\" : [ {\"eventTime\":\"a\"} ,"[..])
            .chain(Spaces { left: 64 << 20 })
            .chain(&b"{\"eventTime\":\"b\"}]}"[..]);
        let mut f = Framer {
            src: file,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            matched: Vec::new(),
        };
        for lit in [&b"{"[..], b"\"Records\"", b":", b"["] {
            assert!(f.literal(lit).unwrap());
        }
        assert_eq!(f.peek().unwrap(), Some(b'{'));
        assert_eq!(f.record(0).unwrap(), (f.pos - 17, f.pos));
        assert_eq!(f.peek().unwrap(), Some(b','));
        f.pos += 1;
        assert_eq!(f.peek().unwrap(), Some(b'{'));
        assert!(f.buf.capacity() <= 2 * CHUNK, "{}", f.buf.capacity());
    }

    #[test]
    fn another_layout_is_read_as_it_streams() {
        for text in [
            &b"   \n {  \"Records\" \n : 5}"[..],
            b"{\"Rec\\u006frds\":[{\"eventTime\":\"t\"}]}",
            b"{\"x\":1,\"Records\":[{\"eventTime\":\"t\"}]}",
            b"   {\"Records\"   :   [{\"eventTime\":\"t\"}]   }   ",
        ] {
            let framed = check_bytes(&gz(text));
            let streamed = check_bytes_streaming(&gz(text), None);
            // The same verdict; an error's line and column may differ (whitespace left out).
            let verdict = |r: &Result<LogSummary, NotALogFile>| match r {
                Ok(s) => Ok(s.clone()),
                Err(e) => Err(std::mem::discriminant(e)),
            };
            assert_eq!(
                verdict(&framed),
                verdict(&streamed),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        assert_eq!(
            check_bytes(&gz(b"{\"Rec\\u006frds\":[{\"eventTime\":\"t\"}]}"))
                .unwrap()
                .records,
            1
        );
    }

    #[tokio::test]
    async fn streamed_in_chunks_it_gives_the_same_verdict() {
        let compressed = gz(LOG.as_bytes());
        let mut check = LogCheck::start(None);
        for chunk in compressed.chunks(7) {
            check.feed(Bytes::copy_from_slice(chunk)).await;
        }
        assert_eq!(
            check.finish().await.unwrap(),
            check_bytes(&compressed).unwrap()
        );

        // A failing check stops listening; feeding more must not block or fail.
        let mut check = LogCheck::start(None);
        check.feed(Bytes::from_static(b"not gzip at all")).await;
        for _ in 0..100 {
            check.feed(Bytes::from_static(b"more bytes")).await;
        }
        assert!(matches!(
            check.finish().await.unwrap_err(),
            NotALogFile::Gzip(_)
        ));
    }
}
