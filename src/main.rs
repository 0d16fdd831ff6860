//! The `trailvault` binary: parse arguments, set up logging, run one command, map its result to
//! an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use trailvault::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = trailvault::telemetry::init_logging(cli.log_format()) {
        eprintln!("error: {err:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(trailvault::commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
