//! One module per command, each with its own arguments and `run`; the command line
//! (`cli`) declares and dispatches them.

pub mod alerts;
pub mod backfill;
pub mod config_check;
pub mod healthcheck;
pub mod hold;
pub mod manifest;
pub mod report;
pub mod retention;
pub mod run;
pub mod source_cleanup;
pub mod verify;
