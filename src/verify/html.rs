//! `trailvault verify --report FILE.html`: the verification as one self-contained HTML file, a
//! document an auditor can hand over. No script, no network, no external style or font: a
//! strict Content-Security-Policy allows only the one inline style block (by its hash), so the
//! file opens the same from a USB stick on an air-gapped laptop, and nothing in it can run.
//!
//! Everything that comes from the archive (keys, reasons, account ids, region names) is shown
//! through [`layout::printable`] and then HTML-escaped: a hostile key cannot add markup.
//!
//! The coverage picture follows a DOM contract the browser test reads back and compares with
//! the JSON: `#coverage` (`data-from`, `data-to`) holds one element per row (`data-account`,
//! `data-region`) holding one element per run (`data-outcome`, `data-from`, `data-hours`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::coverage::{CoverageRow, Outcome};
use super::{parse_time, Report, Status};
use crate::archive::layout;

/// Findings shown per group; the rest are counted (the JSON output has them all).
const FINDINGS_PER_GROUP: usize = 1000;
/// The timeline's width in SVG units.
const WIDTH: f64 = 1000.0;
/// A run narrower than this (in SVG units) is drawn this wide when it is not verified: one bad
/// hour in a year must still be seen.
const MIN_MARK: f64 = 2.5;
/// With more runs than this the picture is drawn by the day (the worst hour of each day), so
/// that the file stays a few MB whatever the archive holds; the JSON keeps every hour.
const MAX_RUNS_BY_HOUR: usize = 20_000;
/// Drawn by the day, a row has at most this many marks: over a long period a mark spans
/// several days, each the worst of its hours.
const MAX_BUCKETS: i64 = 400;
/// Notes shown per kind; the rest are counted (the JSON output has them all).
const NOTES_PER_KIND: usize = 200;

/// What the report says about how it was made.
#[derive(Debug, Clone)]
pub struct Context {
    /// The command line, as run.
    pub command_line: String,
    /// trailvault's version.
    pub version: String,
    /// Configured account names, by account id, shown beside the ids.
    pub account_names: BTreeMap<String, String>,
}

const STYLE: &str = r#"
:root{--verified:#2e7d32;--pending:#64b5f6;--unverified:#9e9e9e;--gap:#f9a825;--missing:#6a1b9a;--tampered:#c62828;--none:#eceff1}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1c1c1c;margin:0 auto;max-width:1200px;padding:24px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccc;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse}
td,th{padding:3px 8px;text-align:left;vertical-align:top}
th{font-weight:600}
.facts th{color:#555;font-weight:500;white-space:nowrap}
.counts td,.counts th{border-bottom:1px solid #eee}
.num{text-align:right;font-variant-numeric:tabular-nums}
.cols{display:flex;gap:32px;align-items:flex-start}
.cols>.facts{flex:1 1 auto}
.cols>.facts td{word-break:break-all}
.cols>#hours{flex:0 0 auto}
code,.key{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
.verdict{font-size:18px;font-weight:700;padding:10px 14px;border-radius:4px;color:#fff;margin:12px 0}
.verdict.valid{background:var(--verified)}
.verdict.invalid{background:var(--tampered)}
.verdict.unverified{background:#616161}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:6px;border:1px solid rgba(0,0,0,.2)}
.sw.verified,.o-verified{background:var(--verified);fill:var(--verified)}
.sw.pending,.o-pending{background:var(--pending);fill:var(--pending)}
.sw.unverified,.o-unverified{background:var(--unverified);fill:var(--unverified)}
.sw.gap,.o-gap{background:var(--gap);fill:var(--gap)}
.sw.missing,.o-missing{background:var(--missing);fill:var(--missing)}
.sw.tampered,.o-tampered{background:var(--tampered);fill:var(--tampered)}
.sw.none{background:var(--none)}
#coverage{width:100%;table-layout:fixed}
#coverage td{padding:1px 6px;border-bottom:1px solid #f2f2f2}
#coverage .acct{width:120px}
#coverage .reg{width:120px}
#coverage .worst{width:110px;font-size:12px}
#coverage svg{display:block;width:100%;height:14px;background:var(--none)}
#coverage thead svg{height:auto;background:none}
.axis text{font-size:20px;fill:#555}
.axis line{stroke:#999;stroke-width:1}
.finding{margin:6px 0 10px;padding:6px 10px;border-left:4px solid #ccc;background:#fafafa}
.finding.missing{border-color:var(--missing)}
.finding.tampered{border-color:var(--tampered)}
.finding.unverified{border-color:var(--unverified)}
.todo{color:#333;margin:4px 0 8px}
.muted{color:#666}
dl.legend dt{font-weight:600;margin-top:8px}
dl.legend dd{margin:2px 0 0 22px}
@media print{body{max-width:none;padding:0}h2{break-after:avoid}.finding{break-inside:avoid}#coverage tr{break-inside:avoid}}
"#;

/// The report as HTML.
pub fn render(report: &Report, context: &Context) -> String {
    let style_hash =
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    let mut h = String::with_capacity(64 * 1024);
    let verdict_class = match report.status {
        Status::Valid => "valid",
        Status::Invalid => "invalid",
        Status::Unverified => "unverified",
    };
    let verdict_text = match report.status {
        Status::Valid => "VALID: everything checked is valid",
        Status::Invalid => "INVALID: the archive has been tampered with or is incomplete",
        Status::Unverified => "UNVERIFIED: nothing is invalid, but some files cannot be verified",
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'sha256-{style_hash}'; img-src 'none'; base-uri 'none'; form-action 'none'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"trailvault {version}\">\n\
         <title>trailvault verification: {archive}: {status}</title>\n\
         <style>{STYLE}</style></head><body>\n",
        version = esc(&context.version),
        archive = esc(&report.archive),
        status = verdict_class.to_uppercase(),
    );
    let _ = write!(
        h,
        "<h1>Archive verification report</h1>\n<p class=\"muted\">{archive}, checked {at} by \
         trailvault {version}</p>\n<div class=\"verdict {verdict_class}\" id=\"verdict\">{}</div>\n",
        esc(verdict_text),
        archive = esc(&report.archive),
        at = esc(&report.checked_at),
        version = esc(&context.version),
    );
    // What a reader needs first: the scope and the picture; then the findings; then the detail.
    summary(&mut h, report, context);
    coverage(&mut h, report, context);
    findings(&mut h, report);
    checked(&mut h, report);
    manifest_chain(&mut h, report);
    legend(&mut h);
    h.push_str(
        "<p class=\"muted\">This file's SHA-256 was printed when it was written; a signed report \
         comes with a <code>.sig</code> file that <code>trailvault report check</code> checks \
         offline.</p>\n</body></html>\n",
    );
    h
}

fn summary(h: &mut String, report: &Report, context: &Context) {
    let rows = &report.coverage.rows;
    let accounts: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.account.as_str()).collect();
    let regions: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.region.as_str()).collect();
    let period = match (&report.coverage.from, &report.coverage.to) {
        (Some(from), Some(to)) => format!("{from} to {to} (UTC)"),
        _ => "nothing in the archive was in scope".to_owned(),
    };
    h.push_str("<h2 id=\"summary\">Summary</h2>\n<div class=\"cols\"><table class=\"facts\">\n");
    fact(h, "Archive", &report.archive);
    fact(h, "Period", &period);
    let named: std::collections::BTreeSet<String> = accounts
        .iter()
        .map(|a| match context.account_names.get(*a) {
            Some(name) => format!("{a} ({name})"),
            None => (*a).to_owned(),
        })
        .collect();
    fact(
        h,
        "Accounts",
        &format!(
            "{}: {}",
            accounts.len(),
            join(&named.iter().map(String::as_str).collect())
        ),
    );
    fact(
        h,
        "Regions",
        &format!("{}: {}", regions.len(), join(&regions)),
    );
    fact(h, "Checked at", &report.checked_at);
    fact(h, "Command", &context.command_line);
    fact(h, "trailvault", &context.version);
    h.push_str(
        "</table>\n<table class=\"counts\" id=\"hours\">\n<tr><th>Hours</th><th></th></tr>\n",
    );
    let hours = report.coverage.hours_by_outcome();
    for o in Outcome::ALL {
        let _ = writeln!(
            h,
            "<tr data-outcome=\"{n}\"><td><span class=\"sw {n}\"></span>{n}</td><td \
             class=\"num\">{}</td></tr>",
            hours.get(&o).copied().unwrap_or(0),
            n = o.name(),
        );
    }
    h.push_str("</table></div>\n");
}

fn checked(h: &mut String, report: &Report) {
    h.push_str("<h2 id=\"checked\">What was checked</h2>\n<table class=\"counts\">\n");
    h.push_str("<tr><th>Files</th><th class=\"num\">valid</th><th class=\"num\">of</th></tr>\n");
    let mut tally = |name: &str, valid: u64, total: u64| {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{valid}</td><td class=\"num\">{total}</td></tr>",
            esc(name)
        );
    };
    tally(
        "CloudTrail digest files",
        report.digests.valid,
        report.digests.total,
    );
    tally("CloudTrail log files", report.logs.valid, report.logs.total);
    tally(
        "CloudTrail Insights files",
        report.insights.valid,
        report.insights.total,
    );
    if let Some(m) = report.manifests {
        tally("trailvault manifests", m.valid, m.total);
    }
    h.push_str("</table>\n<table class=\"facts\">\n");
    fact(
        h,
        "Files that cannot be verified",
        &report.unverified.to_string(),
    );
    fact(
        h,
        "Rewrites kept apart as conflicts",
        &report.conflicts.to_string(),
    );
    match report.manifests {
        Some(_) => {
            fact(
                h,
                "Archive versions no manifest lists",
                &report.unlisted_versions.to_string(),
            );
            fact(
                h,
                "Listed versions missing or changed",
                &report.bad_entries.to_string(),
            );
        }
        None => fact(h, "Manifests", "not checked (no manifest key)"),
    }
    h.push_str("</table>\n<h3>Keys the signatures were checked with</h3>\n");
    if report.keys.is_empty() {
        h.push_str("<p>None: no signature was checked.</p>\n");
    } else {
        h.push_str(
            "<table class=\"counts\"><tr><th>Key</th><th>Fingerprint</th><th>Region</th>\
             <th class=\"num\">files</th></tr>\n",
        );
        for k in &report.keys {
            let role = match k.role {
                "manifest" => "trailvault manifest signing key (SHA-256 of its public key)",
                _ => "CloudTrail digest signing key",
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td></tr>",
                esc(role),
                esc(&layout::printable(&k.fingerprint)),
                esc(k.region.as_deref().unwrap_or("")),
                k.files
            );
        }
        h.push_str("</table>\n");
    }
}

fn coverage(h: &mut String, report: &Report, context: &Context) {
    let table = &report.coverage;
    h.push_str("<h2 id=\"coverage-title\">Coverage</h2>\n");
    let (Some(from), Some(to)) = (
        table.from.as_deref().and_then(parse_time),
        table.to.as_deref().and_then(parse_time),
    ) else {
        h.push_str("<p>Nothing in scope.</p>\n");
        return;
    };
    let total_hours = ((to - from).whole_hours()).max(1);
    let runs: usize = table.rows.iter().map(|r| r.runs.len()).sum();
    let by_day = runs > MAX_RUNS_BY_HOUR;
    let days = (total_hours + 23) / 24;
    let bucket_days = ((days + MAX_BUCKETS - 1) / MAX_BUCKETS).max(1);
    let drawn = if by_day {
        let unit = if bucket_days == 1 {
            "day".to_owned()
        } else {
            format!("{bucket_days} days")
        };
        format!(
            "drawn by the {unit}: each mark shows its worst hour ({runs} runs of hours are too \
             many to draw; the JSON output has every hour)"
        )
    } else {
        "drawn by the hour".to_owned()
    };
    let _ = writeln!(
        h,
        "<p>Each account and region, {total_hours} hours from {} to {} (UTC), {drawn}. Each hour \
         shows the worst of what was found for it (tampered or missing, then gap, unverified, \
         pending, verified); hover a mark for its hours. Grey: nothing in the archive for that \
         account and region then.</p>",
        esc(table.from.as_deref().unwrap_or_default()),
        esc(table.to.as_deref().unwrap_or_default()),
    );
    let _ = writeln!(
        h,
        "<table id=\"coverage\" data-resolution=\"{}\" data-from=\"{}\" data-to=\"{}\">\n<thead><tr><th \
         class=\"acct\">Account</th><th class=\"reg\">Region</th><th \
         class=\"worst\">Worst</th><th>{}</th></tr></thead><tbody>",
        if by_day { "day" } else { "hour" },
        esc(table.from.as_deref().unwrap_or_default()),
        esc(table.to.as_deref().unwrap_or_default()),
        axis(from, total_hours),
    );
    for row in &table.rows {
        let name = context.account_names.get(&row.account).map(String::as_str);
        if by_day {
            let daily = CoverageRow {
                account: row.account.clone(),
                region: row.region.clone(),
                runs: daily(&row.runs, from, to, bucket_days),
            };
            coverage_row(h, &daily, row, name, from, total_hours, false);
        } else {
            coverage_row(h, row, row, name, from, total_hours, true);
        }
    }
    h.push_str("</tbody></table>\n");
}

/// The time axis: a tick at each step, labelled.
fn axis(from: OffsetDateTime, total_hours: i64) -> String {
    let step = [1, 2, 3, 6, 12, 24, 48, 24 * 7, 24 * 14, 24 * 30, 24 * 91]
        .into_iter()
        .find(|s| total_hours / s <= 12)
        .unwrap_or((total_hours + 11) / 12);
    let mut s = format!(
        "<svg class=\"axis\" viewBox=\"0 0 {WIDTH} 28\" role=\"img\" aria-label=\"time axis\">"
    );
    // Ticks at whole steps of UTC time.
    let first = from.unix_timestamp().div_euclid(3600);
    let mut hh = first + (step - first.rem_euclid(step)) % step;
    while hh <= first + total_hours {
        let x = (hh - first) as f64 * WIDTH / total_hours as f64;
        let t = OffsetDateTime::from_unix_timestamp(hh * 3600).unwrap_or(from);
        let label = if step >= 24 {
            format!("{}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
        } else {
            format!("{:02}-{:02} {:02}h", u8::from(t.month()), t.day(), t.hour())
        };
        // The last label would run off the edge: a tick without one.
        if x > WIDTH - 110.0 {
            let _ = write!(
                s,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"22\" y2=\"28\"></line>"
            );
            hh += step;
            continue;
        }
        let anchor = "start";
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"22\" y2=\"28\"></line><text x=\"{x:.1}\" \
             y=\"18\" text-anchor=\"{anchor}\">{label}</text>"
        );
        hh += step;
    }
    s.push_str("</svg>");
    s
}

/// Runs of whole buckets of `bucket_days` UTC days (clipped to `[from, to)`), each bucket the
/// worst of its hours.
fn daily(
    runs: &[super::coverage::Run],
    from: OffsetDateTime,
    to: OffsetDateTime,
    bucket_days: i64,
) -> Vec<super::coverage::Run> {
    let bucket = 86_400 * bucket_days.max(1);
    let day_of = |t: OffsetDateTime| t.unix_timestamp().div_euclid(bucket);
    let mut days: BTreeMap<i64, Outcome> = BTreeMap::new();
    for run in runs {
        let Some(start) = parse_time(&run.from) else {
            continue;
        };
        let end = start + time::Duration::hours(i64::from(run.hours)) - time::Duration::SECOND;
        for d in day_of(start)..=day_of(end) {
            let e = days.entry(d).or_insert(run.outcome);
            *e = (*e).max(run.outcome);
        }
    }
    let at = |d: i64| OffsetDateTime::from_unix_timestamp(d * bucket).unwrap_or(from);
    let mut out: Vec<super::coverage::Run> = Vec::new();
    let mut current: Option<(i64, i64, Outcome)> = None;
    let mut flush = |(first, last, outcome): (i64, i64, Outcome)| {
        let start = at(first).max(from);
        let end = at(last + 1).min(to);
        out.push(super::coverage::Run {
            from: layout::rfc3339(start),
            hours: (end - start).whole_hours().max(1) as u32,
            outcome,
        });
    };
    for (d, o) in days {
        current = match current {
            Some((first, last, outcome)) if outcome == o && last + 1 == d => Some((first, d, o)),
            Some(c) => {
                flush(c);
                Some((d, d, o))
            }
            None => Some((d, d, o)),
        };
    }
    if let Some(c) = current {
        flush(c);
    }
    out
}

/// One row: `row` drawn, its hours counted from `hours` (the same row by the hour).
fn coverage_row(
    h: &mut String,
    row: &CoverageRow,
    hours: &CoverageRow,
    name: Option<&str>,
    from: OffsetDateTime,
    total_hours: i64,
    titles: bool,
) {
    let worst = row
        .runs
        .iter()
        .map(|r| r.outcome)
        .max()
        .unwrap_or(Outcome::Verified);
    let mut counts: BTreeMap<Outcome, u32> = BTreeMap::new();
    for r in &hours.runs {
        *counts.entry(r.outcome).or_default() += r.hours;
    }
    let summary = counts
        .iter()
        .rev()
        .map(|(o, n)| format!("{n} h {}", o.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        h,
        "<tr data-account=\"{a}\" data-region=\"{r}\"><td class=\"acct\" title=\"{n}\"><code>{a}</code></td>\
         <td class=\"reg\">{r}</td><td class=\"worst\" title=\"{summary}\"><span class=\"sw \
         {w}\"></span>{w}</td><td><svg viewBox=\"0 0 {WIDTH} 10\" preserveAspectRatio=\"none\" \
         role=\"img\" aria-label=\"{a} {r}: {summary}\">",
        a = esc(&layout::printable(&row.account)),
        r = esc(&layout::printable(&row.region)),
        w = worst.name(),
        summary = esc(&summary),
        n = esc(&layout::printable(name.unwrap_or(""))),
    );
    // In time order, as the JSON lists them; then, drawn over everything, a wider mark for each
    // bad run too narrow to see: one bad hour in a year must still show.
    let mut narrow = Vec::new();
    for run in &row.runs {
        let Some(start) = parse_time(&run.from) else {
            continue;
        };
        let offset = (start - from).whole_hours() as f64;
        let x = offset * WIDTH / total_hours as f64;
        let w = f64::from(run.hours) * WIDTH / total_hours as f64;
        if run.outcome != Outcome::Verified && w < MIN_MARK {
            narrow.push((run.outcome, x + w / 2.0 - MIN_MARK / 2.0));
        }
        let end = start + time::Duration::hours(i64::from(run.hours));
        let _ = write!(
            h,
            "<rect class=\"o-{o}\" data-outcome=\"{o}\" data-from=\"{f}\" data-hours=\"{n}\" \
             x=\"{x:.2}\" y=\"0\" width=\"{w:.2}\" height=\"10\">",
            o = run.outcome.name(),
            f = esc(&run.from),
            n = run.hours,
        );
        // A tooltip per mark, while there are few enough marks for it not to weigh.
        if titles {
            let _ = write!(
                h,
                "<title>{f} to {e}: {n} h {o}</title>",
                o = run.outcome.name(),
                f = esc(&run.from),
                n = run.hours,
                e = esc(&layout::rfc3339(end)),
            );
        }
        h.push_str("</rect>");
    }
    narrow.sort_by_key(|(o, _)| *o);
    for (outcome, x) in narrow {
        let _ = write!(
            h,
            "<rect class=\"o-{}\" x=\"{:.2}\" y=\"0\" width=\"{MIN_MARK}\" height=\"10\"></rect>",
            outcome.name(),
            x.max(0.0),
        );
    }
    h.push_str("</svg></td></tr>\n");
}

/// What to do about a finding of each outcome.
fn advice(outcome: Outcome, kind: &str) -> &'static str {
    match (outcome, kind) {
        (Outcome::Missing, _) => {
            "Evidence names this file but the archive does not give it. Find who deleted or \
             hid it (the archive bucket's CloudTrail data events or server access logs, for \
             this key); remove a delete marker if one hides it; restore the file from the \
             member account's bucket (trailvault backfill) if it is still there, and keep this \
             report as the record of the loss."
        }
        (Outcome::Tampered, "Archive object") => {
            "The archive holds a version its signed manifests do not account for (or one with \
             other bytes than listed). Treat it as an incident: keep the version (it is locked), \
             find who wrote it from the archive bucket's data events, and compare it with the \
             member account's copy."
        }
        (Outcome::Tampered, "Manifest" | "Manifest chain") => {
            "trailvault's own signed chain is broken. Treat it as an incident: find who wrote \
             or removed manifests (the archive bucket's data events), and check the worker's \
             logs for failures to write them."
        }
        (Outcome::Tampered, _) => {
            "The bytes, signature or chain of this file are not what CloudTrail delivered. \
             Treat it as an incident: keep this version (it is locked) as evidence, compare it \
             with the member account's copy and any conflict copy, and find who wrote it."
        }
        (Outcome::Unverified, _) => {
            "Nothing can vouch for this file: it was delivered while the trail's log file \
             validation was off. Turn validation on for the trail; the file stays archived and \
             locked, but it is not proven."
        }
        _ => "See the reason.",
    }
}

fn findings(h: &mut String, report: &Report) {
    h.push_str("<h2 id=\"findings\">Findings</h2>\n");
    // (outcome, line kind) -> lines, worst first.
    let mut groups: BTreeMap<(std::cmp::Reverse<Outcome>, &str), Vec<&super::Line>> =
        BTreeMap::new();
    for line in &report.lines {
        if line.valid() {
            continue;
        }
        let outcome = line.result.outcome();
        groups
            .entry((std::cmp::Reverse(outcome), line.kind))
            .or_default()
            .push(line);
    }
    if groups.is_empty() {
        h.push_str("<p>None: every file checked is valid.</p>\n");
    }
    for ((std::cmp::Reverse(outcome), kind), lines) in &groups {
        let _ = writeln!(
            h,
            "<h3 data-outcome=\"{o}\"><span class=\"sw {o}\"></span>{o}: {} ({})</h3>\n<p \
             class=\"todo\">What to do: {}</p>",
            esc(kind),
            lines.len(),
            esc(advice(*outcome, kind)),
            o = outcome.name(),
        );
        for line in lines.iter().take(FINDINGS_PER_GROUP) {
            let _ = writeln!(
                h,
                "<div class=\"finding {o}\" data-outcome=\"{o}\"><div class=\"key\">{}</div>\
                 <div class=\"muted\">version: <code>{}</code></div><div>{}</div></div>",
                esc(&line.location),
                esc(&layout::printable(
                    line.version.as_deref().unwrap_or("(none)")
                )),
                esc(&line.result.to_string()),
                o = outcome.name(),
            );
        }
        if lines.len() > FINDINGS_PER_GROUP {
            let _ = writeln!(
                h,
                "<p>And {} more: <code>trailvault verify --json</code> lists them all.</p>",
                lines.len() - FINDINGS_PER_GROUP
            );
        }
    }
    if !report.notes.is_empty() {
        h.push_str("<h3>Notes</h3>\n<ul id=\"notes\">\n");
        let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
        for note in &report.notes {
            let n = shown.entry(note.kind).or_default();
            *n += 1;
            if *n > NOTES_PER_KIND {
                continue;
            }
            let _ = writeln!(
                h,
                "<li><strong>{}</strong>: {}</li>",
                esc(note.kind),
                esc(&note.text)
            );
        }
        for (kind, n) in shown.iter().filter(|(_, n)| **n > NOTES_PER_KIND) {
            let _ = writeln!(
                h,
                "<li>And {} more <strong>{}</strong> notes: <code>trailvault verify \
                 --json</code> lists them all.</li>",
                n - NOTES_PER_KIND,
                esc(kind)
            );
        }
        h.push_str("</ul>\n");
    }
}

fn manifest_chain(h: &mut String, report: &Report) {
    h.push_str("<h2 id=\"manifests\">trailvault's manifest chain</h2>\n");
    let Some(chain) = &report.manifest_chain else {
        h.push_str(
            "<p>Not checked: no manifest signing key was given, so the archive's completeness \
             (that nothing was removed or added) was not proven.</p>\n",
        );
        return;
    };
    h.push_str("<table class=\"facts\">\n");
    fact(h, "Length", &format!("{} manifests", chain.length));
    fact(
        h,
        "Head",
        &chain
            .head
            .as_deref()
            .map(|k| layout::printable(k).into_owned())
            .unwrap_or_else(|| "none".to_owned()),
    );
    fact(
        h,
        "Head written",
        chain.head_written.as_deref().unwrap_or("unknown"),
    );
    fact(
        h,
        "Period",
        &format!("one manifest every {} s", chain.period_secs),
    );
    if let Some(m) = report.manifests {
        fact(h, "Valid", &format!("{} of {}", m.valid, m.total));
    }
    h.push_str("</table>\n");
    h.push_str(
        "<p>What it proves: each manifest lists every archive version trailvault wrote in its \
         period with the SHA-256 of its bytes, names the hash of the manifest before it, and is \
         signed with a KMS key the worker alone may use. A version that no manifest lists was \
         not written by trailvault; a listed version that is missing or has other bytes was \
         removed or changed; a missing or altered manifest breaks the chain. Together with \
         CloudTrail's digests it shows that the archive holds everything trailvault archived, \
         unchanged, and nothing else.</p>\n",
    );
}

fn legend(h: &mut String) {
    h.push_str("<h2 id=\"legend\">Legend</h2>\n<dl class=\"legend\">\n");
    let items: [(&str, &str); 7] = [
        (
            "verified",
            "A valid CloudTrail digest vouches for this hour: every log file it lists is in \
             the archive with the bytes CloudTrail signed (an hour with no activity is vouched \
             for by the digest that lists nothing for it).",
        ),
        (
            "pending",
            "Files newer than the newest digest: CloudTrail vouches for them in its next \
             hourly digest. Verify again later.",
        ),
        (
            "unverified",
            "Files nothing can vouch for, because log file validation was off when they were \
             delivered. They are archived and locked, but not proven.",
        ),
        (
            "gap",
            "Nothing in the archive speaks for this hour, though the hours around it have \
             files: no log file and no digest. Either nothing was logged and nothing signed, or \
             files are gone.",
        ),
        (
            "missing",
            "Evidence (a digest, the next digest's link, or trailvault's manifest) names a file \
             the archive does not give: deleted, or hidden behind a delete marker.",
        ),
        (
            "tampered",
            "A file whose bytes, signature or chain link are not what CloudTrail or trailvault \
             wrote, or one nothing should have listed (planted).",
        ),
        (
            "none",
            "Grey: nothing in the archive for this account and region at that time (before its \
             first file or after its last).",
        ),
    ];
    for (name, text) in items {
        let _ = writeln!(
            h,
            "<dt><span class=\"sw {name}\"></span>{name}</dt><dd>{}</dd>",
            esc(text)
        );
    }
    h.push_str(
        "<dt>digest</dt><dd>CloudTrail's hourly, RSA-signed file that lists the log files \
         delivered in the hour with their SHA-256, and links to the previous digest.</dd>\n\
         <dt>manifest</dt><dd>trailvault's own KMS-signed, chained list of every archive \
         version it wrote.</dd>\n\
         <dt>worst outcome</dt><dd>An hour with several outcomes shows the worst: tampered, \
         missing, gap, unverified, pending, verified.</dd>\n</dl>\n",
    );
}

fn fact(h: &mut String, name: &str, value: &str) {
    let _ = writeln!(
        h,
        "<tr><th>{}</th><td>{}</td></tr>",
        esc(name),
        esc(&layout::printable(value))
    );
}

fn join(items: &std::collections::BTreeSet<&str>) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

/// HTML-escapes text for element content and quoted attribute values. Text from the archive
/// must already be [`layout::printable`] (the report's locations, verdicts and notes are).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::coverage::{CoverageRow, CoverageTable, Run};
    use crate::verify::{Line, Note, Tally, Verdict};

    fn report(key: &str) -> Report {
        Report {
            archive: "s3://archive".to_owned(),
            status: Status::Invalid,
            digests: Tally { valid: 1, total: 2 },
            logs: Tally { valid: 0, total: 1 },
            insights: Tally::default(),
            unverified: 0,
            conflicts: 0,
            manifests: None,
            unlisted_versions: 0,
            bad_entries: 0,
            lines: vec![Line {
                kind: "Log file",
                location: format!("s3://archive/{}", layout::printable(key)),
                result: Verdict::Invalid("hash value doesn't match".to_owned()),
                key: key.to_owned(),
                version: Some("v\"<1>".to_owned()),
            }],
            notes: vec![Note {
                kind: "gap",
                text: format!("about {}", layout::printable(key)),
            }],
            checked_at: "2026-12-01T00:00:00Z".to_owned(),
            coverage: CoverageTable {
                from: Some("2026-11-01T00:00:00Z".to_owned()),
                to: Some("2026-11-01T03:00:00Z".to_owned()),
                rows: vec![CoverageRow {
                    account: "<b>".to_owned(),
                    region: "eu-west-1\"onload=\"x".to_owned(),
                    runs: vec![Run {
                        from: "2026-11-01T00:00:00Z".to_owned(),
                        hours: 3,
                        outcome: Outcome::Tampered,
                    }],
                }],
            },
            keys: vec![],
            manifest_chain: None,
        }
    }

    #[test]
    fn nothing_from_the_archive_becomes_markup() {
        let key = "b/AWSLogs/1/<script>alert(1)</script>\"'&\u{1b}[2J\u{202e}.json.gz";
        let html = render(
            &report(key),
            &Context {
                command_line: "trailvault verify --report <x>".to_owned(),
                version: "0.1.0".to_owned(),
                account_names: BTreeMap::from([("<b>".to_owned(), "<i>name</i>".to_owned())]),
            },
        );
        assert!(!html.contains("<script"), "a script tag got through");
        assert!(!html.contains("<b>") && !html.contains("<i>"));
        assert!(!html.contains("onload=\"x"));
        assert!(!html.contains('\u{1b}') && !html.contains('\u{202e}'));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
        assert!(html.contains("v&quot;&lt;1&gt;"));
        assert!(html.contains("trailvault verify --report &lt;x&gt;"));
    }

    #[test]
    fn a_day_shows_its_worst_hour_clipped_to_the_period() {
        let run = |from: &str, hours: u32, outcome: Outcome| Run {
            from: from.to_owned(),
            hours,
            outcome,
        };
        let runs = vec![
            run("2026-11-01T06:00:00Z", 30, Outcome::Verified),
            run("2026-11-02T12:00:00Z", 1, Outcome::Gap),
            run("2026-11-02T13:00:00Z", 40, Outcome::Verified),
            run("2026-11-04T05:00:00Z", 1, Outcome::Tampered),
        ];
        let from = parse_time("2026-11-01T06:00:00Z").unwrap();
        let to = parse_time("2026-11-04T06:00:00Z").unwrap();
        assert_eq!(
            daily(&runs, from, to, 1),
            vec![
                run("2026-11-01T06:00:00Z", 18, Outcome::Verified),
                run("2026-11-02T00:00:00Z", 24, Outcome::Gap),
                run("2026-11-03T00:00:00Z", 24, Outcome::Verified),
                run("2026-11-04T00:00:00Z", 6, Outcome::Tampered),
            ]
        );
    }

    #[test]
    fn too_many_runs_are_drawn_by_the_day_and_the_file_stays_small() {
        // Every hour differs from the one before, and every day's worst from the day before's:
        // the most marks a picture drawn by the day can have.
        let rows = |n: usize, hours: i64| -> Vec<CoverageRow> {
            let start = parse_time("2026-01-01T00:00:00Z").unwrap();
            (0..n)
                .map(|i| CoverageRow {
                    account: format!("{i:012}"),
                    region: "eu-west-1".to_owned(),
                    runs: (0..hours)
                        .map(|h| Run {
                            from: layout::rfc3339(start + time::Duration::hours(h)),
                            hours: 1,
                            outcome: if h % 2 == 0 {
                                Outcome::Verified
                            } else {
                                Outcome::ALL[1 + (h / 24) as usize % 5]
                            },
                        })
                        .collect(),
                })
                .collect()
        };
        let context = Context {
            command_line: String::new(),
            version: "0.1.0".to_owned(),
            account_names: BTreeMap::new(),
        };
        let mut r = report("k");
        r.coverage.from = Some("2026-01-01T00:00:00Z".to_owned());
        r.coverage.to = Some("2026-01-31T00:00:00Z".to_owned());
        r.coverage.rows = rows(200, 720);
        let html = render(&r, &context);
        assert!(html.contains("data-resolution=\"day\""));
        assert!(html.contains("drawn by the day: each mark shows its worst hour"));
        assert_eq!(html.matches("data-hours=\"24\"").count(), 200 * 30);
        // The row's hours are counted by the hour, not by the day.
        assert!(html.contains("aria-label=\"000000000000 eu-west-1: 72 h tampered, 72 h missing, 72 h gap, 72 h unverified, 72 h pending, 360 h verified\""), "{}", &html[..2000]);
        assert!(html.len() < 1_500_000, "{} bytes", html.len());

        // Two years: a mark spans two days, at most 400 marks a row.
        r.coverage.to = Some("2027-12-31T00:00:00Z".to_owned());
        r.coverage.rows = rows(3, 24 * 729);
        let html = render(&r, &context);
        assert!(html.contains("drawn by the 2 days: each mark shows its worst hour"));
        assert_eq!(html.matches("data-hours=\"48\"").count(), 3 * 364);
    }

    #[test]
    fn the_style_is_allowed_by_its_hash_and_nothing_else_is_allowed() {
        let html = render(
            &report("k"),
            &Context {
                command_line: String::new(),
                version: "0.1.0".to_owned(),
                account_names: BTreeMap::new(),
            },
        );
        let hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        assert!(html.contains(&format!(
            "default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'"
        )));
        assert_eq!(html.matches("<style>").count(), 1);
        assert!(
            !html.contains(" style=\""),
            "inline style attributes are blocked by the CSP"
        );
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}
