//! What a run did, for its end: per account and region what was archived, and everything that
//! needs a person's attention.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::copy::{Copied, Outcome};

/// Counts kept while the worker runs. The lock is only ever held for an update, never across
/// an `.await`.
#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<Counts>>);

#[derive(Default, Clone)]
struct Counts {
    /// (account, region) -> (objects, bytes) newly written.
    archived: BTreeMap<(String, String), (u64, u64)>,
    duplicates: u64,
    conflicts: u64,
    quarantined: u64,
    lock_repairs: u64,
    failures: BTreeMap<&'static str, u64>,
    received: u64,
    deleted: BTreeMap<&'static str, u64>,
    returned: u64,
}

impl Tally {
    fn with(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.0.lock().expect("tally lock"));
    }

    pub fn copied(&self, account: &str, region: &str, c: &Copied) {
        self.with(|t| {
            match c.outcome {
                Outcome::Duplicate => t.duplicates += 1,
                Outcome::Conflict | Outcome::Archived => {
                    if c.outcome == Outcome::Conflict {
                        t.conflicts += 1;
                    }
                    if c.quarantine.is_some() {
                        t.quarantined += 1;
                    }
                    let e = t
                        .archived
                        .entry((account.to_owned(), region.to_owned()))
                        .or_default();
                    e.0 += 1;
                    e.1 += c.bytes;
                }
            }
            t.lock_repairs += u64::from(c.lock_repaired);
        });
    }

    pub fn failure(&self, reason: &'static str) {
        self.with(|t| *t.failures.entry(reason).or_default() += 1);
    }

    pub fn received(&self) {
        self.with(|t| t.received += 1);
    }

    pub fn deleted(&self, outcome: &'static str) {
        self.with(|t| *t.deleted.entry(outcome).or_default() += 1);
    }

    pub fn returned(&self) {
        self.with(|t| t.returned += 1);
    }

    pub fn summary(
        &self,
        elapsed: Duration,
        dead_letters: Vec<(String, String, Option<u64>)>,
    ) -> Summary {
        let counts = self.0.lock().expect("tally lock").clone();
        Summary {
            elapsed,
            counts,
            dead_letters,
        }
    }
}

/// The end-of-run report.
pub struct Summary {
    pub elapsed: Duration,
    counts: Counts,
    /// (queue, dead-letter queue, messages waiting there).
    pub dead_letters: Vec<(String, String, Option<u64>)>,
}

impl Summary {
    /// Objects newly written to the archive.
    pub fn archived_objects(&self) -> u64 {
        self.counts.archived.values().map(|(n, _)| n).sum()
    }

    pub fn archived_bytes(&self) -> u64 {
        self.counts.archived.values().map(|(_, b)| b).sum()
    }

    pub fn duplicates(&self) -> u64 {
        self.counts.duplicates
    }

    pub fn conflicts(&self) -> u64 {
        self.counts.conflicts
    }

    pub fn quarantined(&self) -> u64 {
        self.counts.quarantined
    }

    pub fn failures(&self) -> u64 {
        self.counts.failures.values().sum()
    }

    pub fn dead_lettered(&self) -> u64 {
        self.dead_letters.iter().filter_map(|(_, _, n)| *n).sum()
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let secs = self.elapsed.as_secs_f64().max(f64::EPSILON);
        writeln!(f, "Archived by this run:")?;
        writeln!(
            f,
            "  {:<16}  {:<14}  {:>8}  {:>10}",
            "account", "region", "objects", "size"
        )?;
        for ((account, region), (objects, bytes)) in &c.archived {
            writeln!(
                f,
                "  {account:<16}  {region:<14}  {objects:>8}  {:>10}",
                human_bytes(*bytes)
            )?;
        }
        writeln!(
            f,
            "  {:<16}  {:<14}  {:>8}  {:>10}",
            "total",
            "",
            self.archived_objects(),
            human_bytes(self.archived_bytes())
        )?;
        writeln!(
            f,
            "  in {:.1}s: {:.1} objects/s, {}/s",
            secs,
            self.archived_objects() as f64 / secs,
            human_bytes((self.archived_bytes() as f64 / secs) as u64)
        )?;
        writeln!(
            f,
            "Duplicates {}, conflicts {}, quarantined {}, lock repairs {}.",
            c.duplicates, c.conflicts, c.quarantined, c.lock_repairs
        )?;
        let deleted: u64 = c.deleted.values().sum();
        let kinds: Vec<String> = c.deleted.iter().map(|(k, n)| format!("{n} {k}")).collect();
        writeln!(
            f,
            "Messages: {} received, {deleted} deleted ({}), {} returned.",
            c.received,
            if kinds.is_empty() {
                "none".to_owned()
            } else {
                kinds.join(", ")
            },
            c.returned
        )?;
        if c.failures.is_empty() {
            writeln!(f, "Failures: none.")?;
        } else {
            let list: Vec<String> = c.failures.iter().map(|(k, n)| format!("{n} {k}")).collect();
            writeln!(f, "Failures: {} (see the log for each).", list.join(", "))?;
        }
        for (queue, dlq, n) in &self.dead_letters {
            match n {
                Some(n) => writeln!(f, "Dead-letter queue {dlq} (of {queue}): {n} message(s).")?,
                None => writeln!(f, "Dead-letter queue of {queue}: could not be read.")?,
            }
        }
        Ok(())
    }
}
