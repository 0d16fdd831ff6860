"""The worker benchmark's driver (bench/worker runs it inside a private emulator).

    python bench/worker_bench.py --bin DIR [--reps N] [--corpora demo,large] [--out PREFIX]

One emulator, pinned to one core (taskset), serves every run. For each corpus, repetition and
contender (the Rust ceiling, the naive peer, trailvault run --until-empty), the devstack first
delivers a fresh corpus (not timed: new files, so every contender copies as much), then the
contender runs in its own process. Measured per run: objects and compressed bytes, the whole
run and the active window (first receive to last delete), the contender's CPU (user + system)
and peak RSS from its process accounting (bench/measure.py), the emulator's CPU from
/proc/PID/stat.

trailvault's active window is read from its /metrics, polled every 50 ms: the first
`trailvault_messages_received_total` above zero to the last change of
`trailvault_messages_deleted_total` (so it is known to within 50 ms).

Prints a markdown table (medians and ranges over the repetitions) and writes PREFIX.json
(every run) and PREFIX.md (the table).
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CORPORA = {
    # The README demo's volume: 3 accounts x 2 regions, 240 log files, 24 digests, 6 Insights.
    "demo": ["--hours", "4", "--files", "40"],
    # Ten times the files, the same size mix.
    "large": ["--hours", "4", "--files", "400"],
}
CONTENDERS = ["ceiling", "naive", "trailvault"]
TICKS = os.sysconf("SC_CLK_TCK")


def emulator_pid(endpoint):
    port = endpoint.rsplit(":", 1)[1]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"moto_server") for a in argv) and b"-p" in argv:
            if argv[argv.index(b"-p") + 1].decode() == port:
                return int(pid)
    sys.exit(f"no moto_server on port {port}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def metric(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in "{ ":
            total += float(line.rsplit(" ", 1)[1])
    return total


class MetricsWatch(threading.Thread):
    """Polls trailvault's /metrics for the first receipt and the last delete."""

    def __init__(self, log_path):
        super().__init__(daemon=True)
        self.log_path, self.stop = log_path, threading.Event()
        self.first_receive = self.last_delete = None

    def run(self):
        address = None
        while address is None and not self.stop.is_set():
            try:
                for line in open(self.log_path):
                    if '"serving /healthz and /metrics"' in line:
                        address = json.loads(line)["address"]
            except OSError:
                pass
            time.sleep(0.02)
        deleted = 0.0
        while not self.stop.is_set():
            try:
                text = urllib.request.urlopen(f"http://{address}/metrics", timeout=2).read().decode()
            except OSError:
                break
            now = time.monotonic()
            if self.first_receive is None and metric(text, "trailvault_messages_received_total") > 0:
                self.first_receive = now
            d = metric(text, "trailvault_messages_deleted_total")
            if d != deleted:
                deleted, self.last_delete = d, now
            time.sleep(0.05)


def run_one(args, state, env, contender, emu):
    cmd = {
        "ceiling": [f"{args.bin}/examples/worker_ceiling", env["TRAILVAULT_CONFIG"]],
        "naive": [f"{args.bin}/examples/worker_ceiling", env["TRAILVAULT_CONFIG"], "--naive"],
        "trailvault": [f"{args.bin}/trailvault", "run", "--until-empty"],
    }[contender]
    log_path = os.path.join(state, f"{contender}.log")
    watch = MetricsWatch(log_path) if contender == "trailvault" else None
    measure = [sys.executable, os.path.join(os.path.dirname(__file__), "measure.py"), "--"]
    before_emu = cpu_seconds(emu)
    with open(log_path, "w") as log:
        if watch:
            watch.start()
        proc = subprocess.run(measure + cmd, env={**env, "TRAILVAULT_LOG_FORMAT": "json"},
                              stdout=subprocess.PIPE, stderr=log, text=True)
    if watch:
        watch.stop.set()
        watch.join()
    emu_cpu = cpu_seconds(emu) - before_emu
    # measure.py's own line: the contender's wall time, CPU and peak RSS, nothing else's.
    cost = json.loads(open(log_path).read().strip().splitlines()[-1])
    if proc.returncode != 0:
        sys.exit(f"{contender} failed ({proc.returncode}); its log: {log_path}\n{proc.stdout}")
    if contender == "trailvault":
        objects = int(re.search(r"^\s*total\s+(\d+)", proc.stdout, re.M).group(1))
        active = (watch.last_delete - watch.first_receive
                  if watch.first_receive and watch.last_delete else None)
        nbytes = None
    else:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        objects, active, nbytes = out["objects"], out["active_s"], out["bytes"]
    return {
        "contender": contender,
        "objects": objects,
        "bytes": nbytes,
        "whole_s": cost["wall_s"],
        "active_s": round(active, 3) if active is not None else None,
        "cpu_s": round(cost["user_s"] + cost["sys_s"], 3),
        "max_rss_mib": round(cost["max_rss_kib"] / 1024, 1),
        "emulator_cpu_s": round(emu_cpu, 2),
    }


def delivered_bytes(out):
    """The compressed size of what `devstack deliver` wrote, from its report line."""
    m = re.search(r"([\d.]+) (KiB|MiB|GiB)", out)
    if not m:
        return None
    return float(m.group(1)) * {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}[m.group(2)]


def summarize(runs):
    rows = []
    for corpus in dict.fromkeys(r["corpus"] for r in runs):
        for c in CONTENDERS:
            rs = [r for r in runs if r["corpus"] == corpus and r["contender"] == c]
            if not rs:
                continue

            def stat(f):
                vals = [v for v in map(f, rs) if v is not None]
                if not vals:
                    return "n/a"
                return f"{statistics.median(vals):.1f} ({min(vals):.1f}-{max(vals):.1f})"

            rows.append(
                f"| {corpus} | {c} | {stat(lambda r: r['objects'] / r['whole_s'])} "
                f"| {stat(lambda r: r['objects'] / r['active_s'] if r['active_s'] else None)} "
                f"| {stat(lambda r: 1000 * r['cpu_s'] / r['objects'])} "
                f"| {stat(lambda r: 1000 * r['cpu_s'] / (r['delivered_bytes'] / 1e6))} "
                f"| {stat(lambda r: 1000 * r['emulator_cpu_s'] / r['objects'])} "
                f"| {stat(lambda r: r['max_rss_mib'])} |"
            )
    head = ("| corpus | contender | objects/s, whole run | objects/s, active window "
            "| client CPU ms/object | client CPU ms/compressed MB | emulator CPU ms/object "
            "| peak RSS MiB |\n|---|---|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--corpora", default="demo,large")
    p.add_argument("--out", default=".trailvault/bench-worker")
    args = p.parse_args()
    endpoint = os.environ["TRAILVAULT_EMULATOR_ENDPOINT"]
    emu = emulator_pid(endpoint)
    subprocess.run(["taskset", "-a", "-cp", "0", str(emu)], check=True, stdout=subprocess.DEVNULL)
    print(f"nproc {os.cpu_count()}; emulator pid {emu} pinned to core 0", flush=True)
    # Removed at the end, also when a run fails or the benchmark is stopped (SIGTERM).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="trailvault-bench-") as state:
        bench(args, endpoint, emu, state)


def bench(args, endpoint, emu, state):
    devstack = [f"{args.bin}/devstack", "--dir", state]
    subprocess.run(devstack + ["up", "--endpoint", endpoint, "--namespace", "bench"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ)
    for line in open(os.path.join(state, "env")):
        m = re.match(r"export (\w+)=(.*)", line.strip())
        if m:
            env[m.group(1)] = m.group(2).strip("'\"")
    runs = []
    started = time.monotonic()
    for corpus in args.corpora.split(","):
        for rep in range(args.reps):
            for c in CONTENDERS:
                out = subprocess.run(devstack + ["deliver"] + CORPORA[corpus], check=True,
                                     capture_output=True, text=True)
                r = run_one(args, state, env, c, emu)
                r.update(corpus=corpus, rep=rep + 1,
                         delivered_bytes=delivered_bytes(out.stdout + out.stderr))
                runs.append(r)
                print(json.dumps(r), flush=True)
    table = summarize(runs)
    minutes = (time.monotonic() - started) / 60
    print(f"\n{table}\n\n{minutes:.1f} minutes")
    with open(args.out + ".json", "w") as f:
        json.dump({"nproc": os.cpu_count(), "minutes": round(minutes, 1), "runs": runs}, f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(table + "\n")


if __name__ == "__main__":
    main()
