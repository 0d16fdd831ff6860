//! `trailvault healthcheck`: asks a running worker's `/healthz`, for container health checks
//! (the image has no shell and no curl).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// Where the worker serves /healthz (its telemetry.metrics_address, seen from here).
    #[arg(
        long,
        value_name = "HOST:PORT",
        env = "TRAILVAULT_HEALTHCHECK_ADDRESS",
        default_value = "127.0.0.1:9090"
    )]
    pub address: SocketAddr,
    /// How long to wait for the answer, in seconds.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

/// Exit 0 when `/healthz` answers 200; 1, with the reason, otherwise.
pub fn run(args: HealthcheckArgs) -> anyhow::Result<ExitCode> {
    match get(
        args.address,
        "/healthz",
        Duration::from_secs(args.timeout_secs.max(1)),
    ) {
        Ok((200, _)) => Ok(ExitCode::SUCCESS),
        Ok((status, body)) => {
            eprintln!(
                "unhealthy: /healthz at {} answered {status}: {}",
                args.address,
                body.trim()
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!(
                "unhealthy: cannot ask /healthz at {}: {e}; is the worker running with \
                 telemetry.metrics_address there?",
                args.address
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// One HTTP/1.0 GET of the worker's listener: the status and the body (at most 1 MiB).
pub fn get(address: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.take(1024 * 1024).read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
