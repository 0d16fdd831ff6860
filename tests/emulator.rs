//! infra/local/emulator, as the demo and the tests use it: idempotent start, a loopback-only
//! listener, and stop by the recorded pid.

use std::path::Path;
use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/infra/local/emulator");

fn emulator(state: &Path, command: &str) -> (bool, String) {
    let out = Command::new(SCRIPT)
        .arg(command)
        .env("TRAILVAULT_EMULATOR_DIR", state)
        .output()
        .expect("running infra/local/emulator");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn start_is_idempotent_listens_on_loopback_and_stop_uses_the_recorded_pid() {
    let state = tempfile::tempdir().unwrap();
    let (ok, endpoint) = emulator(state.path(), "start");
    assert!(ok, "start failed");
    let pid: u32 = std::fs::read_to_string(state.path().join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    // Started again: the same server, not a second one.
    let (ok, again) = emulator(state.path(), "start");
    assert!(ok);
    assert_eq!(again, endpoint);
    assert_eq!(
        std::fs::read_to_string(state.path().join("pid"))
            .unwrap()
            .trim(),
        pid.to_string()
    );

    // It answers on loopback only.
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let listening = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port_hex = format!(":{port:04X} ");
    let lines: Vec<&str> = listening
        .lines()
        .filter(|l| l.contains(&port_hex) && l.contains(" 0A "))
        .collect();
    assert!(!lines.is_empty(), "nothing listens on {port}");
    for line in lines {
        let local = line.split_whitespace().nth(1).unwrap();
        assert_eq!(
            local,
            format!("0100007F:{port:04X}"),
            "listening beyond loopback: {line}"
        );
    }

    let (ok, _) = emulator(state.path(), "stop");
    assert!(ok);
    for _ in 0..50 {
        if !alive(pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!alive(pid), "the emulator survived stop");
    assert!(!state.path().join("pid").exists());
    let (ok, status) = emulator(state.path(), "status");
    assert!(ok && status.starts_with("not running"), "{status}");
    // Stopping what is not running is fine too.
    assert!(emulator(state.path(), "stop").0);
    let (ok, _) = emulator(state.path(), "endpoint");
    assert!(!ok, "endpoint must fail when nothing runs");
}

#[test]
fn a_stale_pid_file_is_never_acted_on() {
    let state = tempfile::tempdir().unwrap();
    // A pid that is alive but is not our emulator (this test process itself).
    std::fs::write(state.path().join("pid"), std::process::id().to_string()).unwrap();
    std::fs::write(state.path().join("port"), "1").unwrap();
    let (ok, status) = emulator(state.path(), "status");
    assert!(ok && status.starts_with("not running"), "{status}");
    assert!(emulator(state.path(), "stop").0);
    assert!(
        alive(std::process::id()),
        "stop must not kill a process it did not start"
    );
}
