//! The argument types and helpers every command shares: where the configuration comes from,
//! and a progress counter.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::Config;

/// The environment variable that may hold the whole configuration, for containers (ECS) where
/// writing a file is awkward. A file, when given, wins.
pub const CONFIG_TOML_ENV: &str = "TRAILVAULT_CONFIG_TOML";

/// Where a command finds its configuration: the FILE argument, else `TRAILVAULT_CONFIG` (a
/// file), else `TRAILVAULT_CONFIG_TOML` (the TOML itself).
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigPath {
    /// The configuration file (TOML); or set TRAILVAULT_CONFIG, or put the TOML itself in
    /// TRAILVAULT_CONFIG_TOML.
    #[arg(value_name = "FILE", env = "TRAILVAULT_CONFIG")]
    pub file: Option<PathBuf>,
}

impl ConfigPath {
    /// The validated configuration and a name for where it came from.
    pub fn load(&self) -> anyhow::Result<(Config, String)> {
        load(self.file.as_deref())
    }
}

/// The configuration file as an option, for commands whose arguments are something else.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigOption {
    /// The configuration file (TOML); or set TRAILVAULT_CONFIG, or put the TOML itself in
    /// TRAILVAULT_CONFIG_TOML.
    #[arg(long = "config", value_name = "FILE", env = "TRAILVAULT_CONFIG")]
    pub file: Option<PathBuf>,
}

impl ConfigOption {
    /// The validated configuration and a name for where it came from.
    pub fn load(&self) -> anyhow::Result<(Config, String)> {
        load(self.file.as_deref())
    }
}

fn load(file: Option<&Path>) -> anyhow::Result<(Config, String)> {
    if let Some(path) = file {
        return Ok((Config::load(path)?, path.display().to_string()));
    }
    match std::env::var(CONFIG_TOML_ENV) {
        Ok(text) => Ok((
            Config::from_toml(&text, Path::new(CONFIG_TOML_ENV))?,
            CONFIG_TOML_ENV.to_owned(),
        )),
        Err(_) => anyhow::bail!(
            "no configuration: give the file (--config FILE, or FILE for `config check`), or \
             set TRAILVAULT_CONFIG to its path, or TRAILVAULT_CONFIG_TOML to the TOML itself"
        ),
    }
}

/// A counter on stderr when it is a terminal; nothing otherwise (logs and pipes stay clean).
pub fn progress_bar(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} {msg} [{elapsed}]")
            .expect("a valid template"),
    );
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// A start: RFC 3339, or a date (its midnight, UTC). For clap.
pub fn parse_when(s: &str) -> Result<OffsetDateTime, String> {
    parse_time(s, false)
}

/// An end: RFC 3339, or a date (its last second, UTC). For clap.
pub fn parse_until(s: &str) -> Result<OffsetDateTime, String> {
    parse_time(s, true)
}

/// RFC 3339, or a date (its first or, with `end_of_day`, last second, UTC).
pub fn parse_time(s: &str, end_of_day: bool) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let date = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| {
            format!("{s:?} is neither RFC 3339 (2026-11-30T06:00:00Z) nor a date (2026-11-30)")
        })?;
    let t = if end_of_day {
        date.with_hms(23, 59, 59).expect("a valid time")
    } else {
        date.midnight()
    };
    Ok(t.assume_utc())
}
