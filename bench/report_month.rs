//! A month of an organization's coverage, fed straight to the HTML report's renderer: the size
//! of `trailvault verify --report` for 30 days x 50 accounts x 17 regions, and how long it
//! takes to render (bench/report opens it in Chromium).
//!
//!     cargo run --example report_month -- OUT.html [--json OUT.json] [--fragmented]
//!
//! The report is generated, not verified: 850 account-region rows of 720 hours, seeded (the
//! same bytes every run). Most rows are verified throughout; a few percent have what a real
//! month has: logging stopped for six hours (a gap and a chain restart), the newest hour or two
//! pending, a scattered tampered or missing hour (with the manifests' lines about the same
//! files), one account and region whose trail has log file validation off (every log file
//! UNVERIFIED, one line each, as verify prints them), one row that starts mid-month. The
//! tallies, keys and notes follow from the table. `lines` holds the findings only: a real
//! `verify --json` also lists every valid file (two lines an hour per row, about 1.2 million
//! here), which the HTML does not show.
//!
//! `--fragmented` is the worst case for the table: the same report, but every row changes
//! outcome every hour (720 runs a row, half of them not verified) and every day's worst hour
//! differs from the day before's. With that many runs the report draws the picture by the day
//! (each day its worst hour), so this is also the most runs a day-drawn picture can have.
//!
//! Prints one JSON line: rows, runs, the HTML's and the JSON's bytes, the HTML's bytes by
//! section (by the ids of its headings), and the render time (`html::render` alone, median
//! and range of 5).

use std::path::PathBuf;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use trailvault::archive::layout;
use trailvault::verify::coverage::{CoverageRow, CoverageTable, Outcome, Run};
use trailvault::verify::html::{self, Context};
use trailvault::verify::{KeyUsed, Line, ManifestChain, Note, Report, Status, Tally, Verdict};

/// The regions every account has enabled by default (no opt-in).
const REGIONS: [&str; 17] = [
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];
const ACCOUNTS: usize = 50;
const HOURS: usize = 30 * 24;
const START: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);
const ARCHIVE: &str = "acme-trailvault-archive";
const SOURCE: &str = "acme-org-cloudtrail";
const ORG: &str = "o-7f3k2m9q1x";
const TRAIL: &str = "org-management-events";
const HOME: &str = "us-east-1";
/// trailvault's default manifest period: one a minute while anything is archived.
const MANIFEST_PERIOD: u64 = 60;
const RENDERS: usize = 5;

/// What a bad hour was, for its lines.
#[derive(Clone, Copy)]
enum Trouble {
    /// A log file's bytes changed: a version no manifest lists.
    ChangedLog,
    /// A digest's bytes or signature changed.
    ChangedDigest,
    /// A log file deleted for good (GOVERNANCE bypassed): its digest and manifest name it.
    DeletedLog,
}

struct Row {
    account: String,
    region: &'static str,
    /// Per hour, what it came to; `None` before the row's first file.
    hours: Vec<Option<Outcome>>,
    troubles: Vec<(usize, Trouble)>,
    /// The first hour after a six-hour gap, where the chain restarts.
    restart: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let usage = "usage: report_month OUT.html [--json OUT.json] [--fragmented]";
    let mut out: Option<PathBuf> = None;
    let mut json_out: Option<PathBuf> = None;
    let mut fragmented = false;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--json") => {
                json_out = Some(
                    args.next()
                        .map(PathBuf::from)
                        .ok_or_else(|| anyhow::anyhow!("--json needs a file name\n{usage}"))?,
                )
            }
            Some("--fragmented") => fragmented = true,
            Some(a) if a.starts_with('-') => anyhow::bail!("unexpected argument {a}\n{usage}"),
            _ if out.is_none() => out = Some(PathBuf::from(arg)),
            _ => anyhow::bail!("{usage}"),
        }
    }
    let out = out.ok_or_else(|| anyhow::anyhow!("{usage}"))?;

    let mut rng = StdRng::seed_from_u64(19);
    let rows = month(&mut rng);
    let mut report = report(&rows, &mut rng);
    if fragmented {
        // The same report with the worst table: only the coverage changes.
        for (i, row) in report.coverage.rows.iter_mut().enumerate() {
            let hours: Vec<Option<Outcome>> = (0..HOURS)
                // Every hour differs from the one before (720 runs a row, the most the JSON
                // can hold), and every day's worst from the day before's (the most runs the
                // picture drawn by the day can have: 30 a row).
                .map(|h| {
                    Some(if h % 2 == 0 {
                        Outcome::Verified
                    } else {
                        Outcome::ALL[1 + (i + h / 24) % (Outcome::ALL.len() - 1)]
                    })
                })
                .collect();
            row.runs = runs(&hours);
        }
    }
    let context = Context {
        command_line: "trailvault verify --from 2026-11-01 --to 2026-11-30 --json --report \
                       november.html"
            .to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        account_names: Default::default(),
    };

    let mut times = Vec::with_capacity(RENDERS);
    let mut page = String::new();
    for _ in 0..RENDERS {
        let start = Instant::now();
        page = html::render(&report, &context);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    std::fs::write(&out, &page)?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &json_out {
        std::fs::write(path, &json)?;
    }

    // Where the bytes are: the page's sections, by their headings' ids.
    let mut sections = serde_json::Map::new();
    let mut starts: Vec<(usize, &str)> = vec![(0, "head")];
    for (at, _) in page.match_indices("<h2 id=\"") {
        let id = &page[at + 8..];
        starts.push((at, &id[..id.find('"').unwrap_or(0)]));
    }
    for (i, (at, id)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(page.len(), |(next, _)| *next);
        sections.insert((*id).to_owned(), (end - at).into());
    }
    let runs: usize = report.coverage.rows.iter().map(|r| r.runs.len()).sum();
    println!(
        "{}",
        serde_json::json!({
            "variant": if fragmented { "fragmented" } else { "month" },
            "rows": report.coverage.rows.len(),
            "runs": runs,
            "findings": report.lines.len(),
            "html_bytes": page.len(),
            "json_bytes": json.len(),
            "html_sections": sections,
            "render_ms": (times[RENDERS / 2] * 10.0).round() / 10.0,
            "render_ms_min": (times[0] * 10.0).round() / 10.0,
            "render_ms_max": (times[RENDERS - 1] * 10.0).round() / 10.0,
        })
    );
    Ok(())
}

/// The month's rows, verified throughout but for a few with trouble.
fn month(rng: &mut StdRng) -> Vec<Row> {
    let mut accounts: Vec<String> = Vec::new();
    while accounts.len() < ACCOUNTS {
        let id = rng
            .gen_range(100_000_000_000u64..1_000_000_000_000)
            .to_string();
        if !accounts.contains(&id) {
            accounts.push(id);
        }
    }
    accounts.sort();
    let mut rows: Vec<Row> = accounts
        .iter()
        .flat_map(|a| {
            REGIONS.iter().map(move |r| Row {
                account: a.clone(),
                region: r,
                hours: vec![Some(Outcome::Verified); HOURS],
                troubles: Vec::new(),
                restart: None,
            })
        })
        .collect();

    // Each kind of trouble to its own rows.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.shuffle(rng);
    let mut picks = order.into_iter();
    let mut take = |n: usize| picks.by_ref().take(n).collect::<Vec<_>>();
    // A trail with log file validation off: nothing can vouch for any hour.
    for i in take(1) {
        rows[i].hours.fill(Some(Outcome::Unverified));
    }
    // A region first used in the middle of the month.
    for i in take(1) {
        let start = rng.gen_range(300..420);
        rows[i].hours[..start].fill(None);
    }
    // Logging stopped for six hours: nothing in the archive for them, and the chain restarts.
    for i in take(rows.len() * 2 / 100) {
        let at = rng.gen_range(24..HOURS - 30);
        rows[i].hours[at..at + 6].fill(Some(Outcome::Gap));
        rows[i].restart = Some(at + 6);
    }
    // The newest hour or two not vouched for yet.
    for i in take(rows.len() * 3 / 100) {
        let n = rng.gen_range(1..=2);
        rows[i].hours[HOURS - n..].fill(Some(Outcome::Pending));
    }
    // A scattered bad hour or three.
    for i in take(rows.len() * 2 / 100) {
        for _ in 0..rng.gen_range(1..=3) {
            let h = rng.gen_range(0..HOURS - 2);
            let trouble = match rng.gen_range(0..3) {
                0 => Trouble::ChangedLog,
                1 => Trouble::ChangedDigest,
                _ => Trouble::DeletedLog,
            };
            rows[i].hours[h] = Some(match trouble {
                Trouble::DeletedLog => Outcome::Missing,
                _ => Outcome::Tampered,
            });
            rows[i].troubles.push((h, trouble));
        }
        rows[i].troubles.sort_by_key(|(h, _)| *h);
        rows[i].troubles.dedup_by_key(|(h, _)| *h);
    }
    rows
}

fn hour(h: usize) -> OffsetDateTime {
    START + Duration::hours(h as i64)
}

/// `YYYY/MM/DD` and `YYYYMMDD`.
fn day(t: OffsetDateTime) -> (String, String) {
    let (y, m, d) = (t.year(), u8::from(t.month()), t.day());
    (format!("{y}/{m:02}/{d:02}"), format!("{y}{m:02}{d:02}"))
}

fn token(rng: &mut StdRng, n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// A log file CloudTrail delivered a few minutes into hour `h`: its archive key.
fn log_key(rng: &mut StdRng, row: &Row, h: usize) -> String {
    let t = hour(h) + Duration::minutes(rng.gen_range(0..60));
    let (path, date) = day(t);
    let (a, r) = (&row.account, row.region);
    layout::archive_key(
        "",
        SOURCE,
        &format!(
            "AWSLogs/{ORG}/{a}/CloudTrail/{r}/{path}/\
             {a}_CloudTrail_{r}_{date}T{:02}{:02}Z_{}.json.gz",
            t.hour(),
            t.minute(),
            token(rng, 16)
        ),
    )
}

/// The digest CloudTrail delivered at the end of hour `h`: its archive key.
fn digest_key(row: &Row, h: usize) -> String {
    let t = hour(h + 1);
    let (path, date) = day(t);
    let (a, r) = (&row.account, row.region);
    layout::archive_key(
        "",
        SOURCE,
        &format!(
            "AWSLogs/{ORG}/{a}/CloudTrail-Digest/{r}/{path}/\
             {a}_CloudTrail-Digest_{r}_{TRAIL}_{HOME}_{date}T{:02}{:02}{:02}Z.json.gz",
            t.hour(),
            t.minute(),
            t.second()
        ),
    )
}

fn location(key: &str) -> String {
    format!("s3://{ARCHIVE}/{}", layout::printable(key))
}

fn line(kind: &'static str, key: String, result: Verdict, version: Option<String>) -> Line {
    let location = match (kind, &version) {
        ("Archive object", Some(v)) => format!("{}?versionId={v}", location(&key)),
        _ => location(&key),
    };
    Line {
        kind,
        location,
        result,
        key,
        version,
    }
}

/// The report verify would have written for these rows: the table, and the lines, tallies,
/// keys and notes that go with it.
fn report(rows: &[Row], rng: &mut StdRng) -> Report {
    let manifests = (HOURS as u64) * 3600 / MANIFEST_PERIOD;
    let mut digests = Tally::default();
    let mut logs = Tally::default();
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    let mut pending_logs = 0;
    let (mut unlisted_versions, mut bad_entries) = (0, 0);
    let mut digests_by_region = [0u64; REGIONS.len()];
    let mut table_rows = Vec::with_capacity(rows.len());
    for row in rows {
        let r = REGIONS.iter().position(|r| *r == row.region).unwrap_or(0);
        for (h, o) in row.hours.iter().enumerate() {
            let Some(o) = o else { continue };
            let trouble = row.troubles.iter().find(|(t, _)| *t == h).map(|(_, t)| *t);
            match (o, trouble) {
                (Outcome::Pending, _) => pending_logs += 1,
                (Outcome::Gap, _) => {}
                (Outcome::Unverified, _) => {
                    logs.total += 1;
                    lines.push(line(
                        "Log file",
                        log_key(rng, row, h),
                        Verdict::Unverified(
                            "no digest in the archive covers its trail, account and region: log \
                             file validation is off for the trail that delivered it"
                                .to_owned(),
                        ),
                        Some(token(rng, 32)),
                    ));
                }
                (_, Some(Trouble::ChangedLog)) => {
                    digests.total += 1;
                    digests.valid += 1;
                    digests_by_region[r] += 1;
                    logs.total += 1;
                    let key = log_key(rng, row, h);
                    lines.push(line(
                        "Log file",
                        key.clone(),
                        Verdict::Invalid("hash value doesn't match".to_owned()),
                        Some(token(rng, 32)),
                    ));
                    unlisted_versions += 1;
                    lines.push(line(
                        "Archive object",
                        key,
                        Verdict::Invalid("no manifest lists this version".to_owned()),
                        Some(token(rng, 32)),
                    ));
                }
                (_, Some(Trouble::ChangedDigest)) => {
                    digests.total += 1;
                    digests_by_region[r] += 1;
                    logs.total += 1;
                    logs.valid += 1;
                    let key = digest_key(row, h);
                    lines.push(line(
                        "Digest file",
                        key.clone(),
                        Verdict::Invalid("signature verification failed".to_owned()),
                        Some(token(rng, 32)),
                    ));
                    unlisted_versions += 1;
                    lines.push(line(
                        "Archive object",
                        key,
                        Verdict::Invalid("no manifest lists this version".to_owned()),
                        Some(token(rng, 32)),
                    ));
                }
                (_, Some(Trouble::DeletedLog)) => {
                    digests.total += 1;
                    digests.valid += 1;
                    digests_by_region[r] += 1;
                    logs.total += 1;
                    let key = log_key(rng, row, h);
                    let n = (h as u64 * 3600 + rng.gen_range(0..3600)) / MANIFEST_PERIOD;
                    lines.push(line(
                        "Log file",
                        key.clone(),
                        Verdict::Invalid("not found".to_owned()),
                        None,
                    ));
                    bad_entries += 1;
                    lines.push(line(
                        "Archive object",
                        key,
                        Verdict::Invalid(format!("listed in manifest {n} but not in the archive")),
                        Some(token(rng, 32)),
                    ));
                }
                // Verified: a digest and a log file an hour.
                _ => {
                    digests.total += 1;
                    digests.valid += 1;
                    digests_by_region[r] += 1;
                    logs.total += 1;
                    logs.valid += 1;
                }
            }
        }
        if let Some(at) = row.restart {
            notes.push(Note {
                kind: "chain restart",
                text: format!(
                    "account {}, {}, trail {TRAIL}: the chain restarts at {} (previousDigest is \
                     null; CloudTrail logging or validation was off before {})",
                    row.account,
                    row.region,
                    location(&digest_key(row, at)),
                    layout::rfc3339(hour(at)),
                ),
            });
        }
        table_rows.push(CoverageRow {
            account: row.account.clone(),
            region: row.region.to_owned(),
            runs: runs(&row.hours),
        });
    }
    if pending_logs > 0 {
        notes.push(Note {
            kind: "pending",
            text: format!(
                "{pending_logs} log file(s) newer than their account and region's newest \
                 digest: CloudTrail has not vouched for them yet; verify again after the next \
                 digest"
            ),
        });
    }
    notes.push(Note {
        kind: "pending",
        text: "37 archive version(s) written after the newest manifest's period: the next \
               manifest lists them; verify again after it"
            .to_owned(),
    });
    let insights = Tally {
        valid: 46,
        total: 46,
    };
    notes.push(Note {
        kind: "insight",
        text: format!(
            "{} Insights file(s): CloudTrail's digests do not cover Insights files, so each was \
             checked against trailvault's signed manifests only",
            insights.total
        ),
    });
    let conflicts = 2;
    for _ in 0..conflicts {
        let row = &rows[rng.gen_range(0..rows.len())];
        let h = rng.gen_range(0..HOURS - 48);
        let original = log_key(rng, row, h);
        let sha: String = (0..64)
            .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
            .collect();
        notes.push(Note {
            kind: "conflict",
            text: format!(
                "{}: other bytes delivered for {} after it was archived; kept as evidence, plain \
                 reads of the archive key still get the first bytes",
                location(&layout::conflict_key(&original, &sha)),
                location(&original)
            ),
        });
    }
    notes.sort_by(|a, b| (a.kind, &a.text).cmp(&(b.kind, &b.text)));

    trailvault::verify::sort_lines(&mut lines);

    // One CloudTrail key per region (each region signs with its own), and the manifest key.
    let mut keys: Vec<KeyUsed> = REGIONS
        .iter()
        .zip(digests_by_region)
        .filter(|(_, files)| *files > 0)
        .map(|(region, files)| KeyUsed {
            role: "cloudtrail",
            fingerprint: (0..32)
                .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
                .collect(),
            region: Some((*region).to_owned()),
            files,
        })
        .collect();
    keys.sort();
    keys.push(KeyUsed {
        role: "manifest",
        fingerprint: (0..64)
            .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
            .collect(),
        region: None,
        files: manifests,
    });

    let unverified = lines
        .iter()
        .filter(|l| matches!(l.result, Verdict::Unverified(_)))
        .count() as u64;
    let status = if lines
        .iter()
        .any(|l| matches!(l.result, Verdict::Invalid(_)))
    {
        Status::Invalid
    } else if unverified > 0 {
        Status::Unverified
    } else {
        Status::Valid
    };
    Report {
        archive: format!("s3://{ARCHIVE}"),
        status,
        digests,
        logs,
        insights,
        unverified,
        conflicts,
        manifests: Some(Tally {
            valid: manifests,
            total: manifests,
        }),
        unlisted_versions,
        bad_entries,
        lines,
        notes,
        checked_at: "2026-12-01T00:41:07Z".to_owned(),
        coverage: CoverageTable {
            from: Some(layout::rfc3339(START)),
            to: Some(layout::rfc3339(hour(HOURS))),
            rows: table_rows,
        },
        keys,
        manifest_chain: Some(ManifestChain {
            length: manifests,
            head: Some(layout::manifest_key(manifests - 1)),
            head_written: Some("2026-12-01T00:40:58Z".to_owned()),
            period_secs: MANIFEST_PERIOD,
        }),
    }
}

/// A row's hours as runs of one outcome, from its first hour with anything to its last.
fn runs(hours: &[Option<Outcome>]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (h, o) in hours.iter().enumerate() {
        let Some(o) = *o else { continue };
        match runs.last_mut() {
            Some(run) if run.outcome == o => run.hours += 1,
            _ => runs.push(Run {
                from: layout::rfc3339(hour(h)),
                hours: 1,
                outcome: o,
            }),
        }
    }
    runs
}
