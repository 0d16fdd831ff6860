//! What evaluating the `cis` rules costs the log check, alone: the same gzip log files checked
//! as the worker checks them without rules, and with the 15 CIS rules (the fields they look at
//! parsed from every record, and matched). Part of `bench/alerts`; run on its own with
//! `cargo run --release --example alerts_eval`.

use std::io::Write;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use trailvault::alerts::eval::Rules;
use trailvault::cloudtrail::logfile;
use trailvault::config::Rule;
use trailvault_devstack::records::{self, Context, Mix};

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let ctx = Context {
        account: "111122223333",
        region: "eu-west-1",
        other_account: "444455556666",
    };
    let at = time::macros::datetime!(2026-11-01 01:00 UTC);
    // The devstack's mix (`trail.rs`): 3% large data-event bursts, 27% middling files (a
    // third of them data events), the rest a few management events.
    let mut files = Vec::new();
    for i in 0..200 {
        let (count, mix) = match i % 33 {
            0 => (19_000, Mix::DataHeavy),
            1..=3 => (420, Mix::DataHeavy),
            4..=9 => (420, Mix::Management),
            _ => (15, Mix::Management),
        };
        let records = records::generate(&mut rng, &ctx, at, count, mix);
        let json = serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&json).unwrap();
        files.push(gz.finish().unwrap());
    }
    let compressed: usize = files.iter().map(Vec::len).sum();
    let rules = Rules::new(Rule::cis());
    let once = |f: &dyn Fn(&[u8]) -> (u64, usize)| {
        let started = Instant::now();
        let out = files
            .iter()
            .map(|f2| f(f2))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        (started.elapsed().as_secs_f64(), out)
    };
    let off_run = |b: &[u8]| (logfile::check_bytes(b).unwrap().records, 0);
    let on_run = |b: &[u8]| {
        let s = logfile::evaluate_bytes(b, &rules).unwrap();
        (s.records, s.matches.matches.len())
    };
    // Interleaved, so that the machine's drift falls on both alike; medians of five.
    let (mut offs, mut ons) = (Vec::new(), Vec::new());
    let (mut records, mut matches) = (0, 0);
    for _ in 0..5 {
        let (t, (r, _)) = once(&off_run);
        offs.push(t);
        records = r;
        let (t, (_, m)) = once(&on_run);
        ons.push(t);
        matches = m;
    }
    offs.sort_by(f64::total_cmp);
    ons.sort_by(f64::total_cmp);
    let (off, on) = (offs[2], ons[2]);
    let mb = compressed as f64 / 1e6;
    println!(
        "{} files, {mb:.1} MB compressed, {records} records, {matches} matches",
        files.len()
    );
    println!(
        "log check without rules: {:.1} ms per MB (median of 5)",
        1000.0 * off / mb
    );
    println!(
        "log check with the cis rules: {:.1} ms per MB (median of 5)",
        1000.0 * on / mb
    );
    println!("ratio: {:.2}", on / off);
}
