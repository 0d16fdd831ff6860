//! What can be wrong with a configuration, field by field.

use std::fmt;
use std::path::PathBuf;

use super::ids::Invalid;

/// Everything that can go wrong turning a file into a `Config`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid trailvault configuration", path.display())]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{} is not a valid trailvault configuration ({} problem{}):\n{}",
        path.display(), problems.len(), if problems.len() == 1 { "" } else { "s" },
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The semantic problems found, empty for read and syntax errors.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// One thing wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where it is, written as in the file: `accounts[0].reader_role_arn`.
    pub field: String,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The problems found so far, collected rather than stopping at the first.
pub(super) struct Problems(pub(super) Vec<Problem>);

impl Problems {
    pub(super) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records a failed parse and yields the value when it parsed.
    pub(super) fn check<T>(
        &mut self,
        field: impl Into<String>,
        r: Result<T, Invalid>,
    ) -> Option<T> {
        r.map_err(|m| self.add(field, m.to_string())).ok()
    }
}
