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

Phases (--phases, all by default):

- throughput: the table above; trailvault also once per corpus at max_in_flight 32 (its
  peak RSS at the default concurrency);
- counted: one more run of each contender on the demo corpus through the fault proxy
  (infra/local/faultproxy.py), which counts every request by operation;
- floor: SHA-256 + gunzip of the archived files on one core (worker_ceiling --floor), each
  contender's CPU per compressed MB against it;
- idle: `trailvault run` (long-running) on a backlog of about a hundred files on the two
  busy queues, alone and with fifteen idle queues, at max_in_flight 16 and 32: the time from
  start to the backlog archived;
- latency: `trailvault run` with manifest.period_secs = 1 while notifications arrive at 25%,
  50% and 80% of the ceiling's objects/s for 60 s (open loop: sent on a clock, whatever the
  worker does); p50 and p99 of notification-to-archived (SQS SentTimestamp to delete
  confirmed) and of queue wait, from trailvault's /metrics histograms.

Prints markdown tables (medians and ranges over the repetitions) and writes PREFIX.json
(every run) and PREFIX.md (the tables).
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

import boto3

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


def metrics_address(log_path, waiting):
    """The address trailvault serves /metrics on, from its JSON log; None once `waiting()` is
    false before it is there."""
    while waiting():
        try:
            for line in open(log_path):
                if '"serving /healthz and /metrics"' in line:
                    return json.loads(line)["address"]
        except OSError:
            pass
        time.sleep(0.02)
    return None


class MetricsWatch(threading.Thread):
    """Polls trailvault's /metrics for the first receipt and the last delete."""

    def __init__(self, log_path):
        super().__init__(daemon=True)
        self.log_path, self.stop = log_path, threading.Event()
        self.first_receive = self.last_delete = None

    def run(self):
        address = metrics_address(self.log_path, lambda: not self.stop.is_set())
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
    """`contender` is ceiling, naive, trailvault or trailvault@N (max_in_flight N)."""
    config = env["TRAILVAULT_CONFIG"]
    if "@" in contender:
        config = variant(state, config, in_flight=int(contender.split("@")[1]))
        env = {**env, "TRAILVAULT_CONFIG": config}
    cmd = {
        "ceiling": [f"{args.bin}/examples/worker_ceiling", config],
        "naive": [f"{args.bin}/examples/worker_ceiling", config, "--naive"],
    }.get(contender, [f"{args.bin}/trailvault", "run", "--until-empty"])
    log_path = os.path.join(state, f"{contender}.log")
    watch = MetricsWatch(log_path) if contender.startswith("trailvault") else None
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
    if contender.startswith("trailvault"):
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


def delivered_objects(out):
    """Log files, Insights files and digests, from `devstack deliver`'s report line."""
    m = re.search(r"delivered (\d+) log files .*?, (\d+) Insights files and (\d+) digests", out)
    return sum(map(int, m.groups()))


def variant(state, config, in_flight=None, period=None, extra_queues=""):
    """A copy of the devstack's trailvault.toml with some settings changed."""
    text = open(config).read()
    if in_flight is not None:
        text = re.sub(r"max_in_flight = \d+", f"max_in_flight = {in_flight}", text)
    if extra_queues:
        # Before the first section that is not a queue, where TOML keeps them.
        at = text.index("\n[[queues]]")
        text = text[:at] + extra_queues + text[at:]
    if period is not None:
        text += f"\n[manifest]\nperiod_secs = {period}\n"
    name = f"trailvault-{in_flight}-{period}-{len(extra_queues)}.toml"
    path = os.path.join(state, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def stat(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.1f}"
    return f"{statistics.median(vals):.1f} ({min(vals):.1f}-{max(vals):.1f})"


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def summarize(runs):
    rows = []
    for corpus in dict.fromkeys(r["corpus"] for r in runs):
        for c in dict.fromkeys(r["contender"] for r in runs):
            rs = [r for r in runs if r["corpus"] == corpus and r["contender"] == c]
            if not rs:
                continue
            rows.append(
                f"| {corpus} | {c} | {stat(r['objects'] / r['whole_s'] for r in rs)} "
                f"| {stat(r['objects'] / r['active_s'] if r['active_s'] else None for r in rs)} "
                f"| {stat(1000 * r['cpu_s'] / r['objects'] for r in rs)} "
                f"| {stat(1000 * r['cpu_s'] / (r['delivered_bytes'] / 1e6) for r in rs)} "
                f"| {stat(1000 * r['emulator_cpu_s'] / r['objects'] for r in rs)} "
                f"| {stat(r['max_rss_mib'] for r in rs)} |"
            )
    head = ("| corpus | contender | objects/s, whole run | objects/s, active window "
            "| client CPU ms/object | client CPU ms/compressed MB | emulator CPU ms/object "
            "| peak RSS MiB |\n|---|---|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(rows)


def ratios(runs):
    """trailvault against the ceiling, on medians, per corpus."""
    lines = []
    for corpus in dict.fromkeys(r["corpus"] for r in runs):
        def m(c, f):
            return median(f(r) for r in runs if r["corpus"] == corpus and r["contender"] == c)
        for what, f in (("whole run", lambda r: r["objects"] / r["whole_s"]),
                        ("active window",
                         lambda r: r["objects"] / r["active_s"] if r["active_s"] else None)):
            t, c = m("trailvault", f), m("ceiling", f)
            if t and c:
                lines.append(f"- {corpus}, {what}: trailvault / ceiling = {t / c:.2f}")
    return "\n".join(lines)


def throughput(args, state, env, emu, devstack, runs):
    for corpus in args.corpora.split(","):
        for rep in range(args.reps):
            # trailvault at the default concurrency too, once per corpus: its memory at 32.
            for c in CONTENDERS + (["trailvault@32"] if rep == 0 else []):
                out = subprocess.run(devstack + ["deliver"] + CORPORA[corpus], check=True,
                                     capture_output=True, text=True)
                r = run_one(args, state, env, c, emu)
                r.update(corpus=corpus, rep=rep + 1,
                         delivered_bytes=delivered_bytes(out.stdout + out.stderr))
                runs.append(r)
                print(json.dumps(r), flush=True)


def start_proxy(state, upstream, name):
    """The fault proxy, forwarding everything and counting each request by operation."""
    port_file = os.path.join(state, f"{name}.port")
    requests = os.path.join(state, f"{name}.requests.json")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "infra/local/faultproxy.py"), "--upstream", upstream,
         "--rules", os.path.join(state, f"{name}.rules.json"), "--requests", requests,
         "--port-file", port_file], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        if os.path.exists(port_file) and open(port_file).read().strip():
            return proc, f"http://127.0.0.1:{open(port_file).read().strip()}", requests
        time.sleep(0.05)
    proc.kill()
    sys.exit("the fault proxy did not start")


def counted(args, state, env, emu, devstack, endpoint):
    """One run per contender on the demo corpus through the counting proxy."""
    rows = []
    for c in CONTENDERS:
        out = subprocess.run(devstack + ["deliver"] + CORPORA["demo"], check=True,
                             capture_output=True, text=True)
        proxy, url, requests = start_proxy(state, endpoint, f"counted-{c}")
        try:
            config = os.path.join(state, f"counted-{c}.toml")
            with open(config, "w") as f:
                f.write(open(env["TRAILVAULT_CONFIG"]).read().replace(endpoint, url))
            r = run_one(args, state, {**env, "TRAILVAULT_CONFIG": config}, c, emu)
        finally:
            proxy.terminate()
            proxy.wait()
        by_op = {}
        for name, n in json.load(open(requests)).items():
            op = name.split(":")[0]
            by_op[op] = by_op.get(op, 0) + n
        row = {"contender": c, "objects": r["objects"],
               "delivered": delivered_objects(out.stdout + out.stderr), "requests": by_op}
        rows.append(row)
        print(json.dumps(row), flush=True)
    ops = sorted({op for r in rows for op in r["requests"]},
                 key=lambda op: -max(r["requests"].get(op, 0) for r in rows))
    head = ("| operation | " + " | ".join(r["contender"] for r in rows) + " |\n|---|"
            + "---|" * len(rows))
    lines = [head]
    for op in ops:
        lines.append(f"| {op} | " + " | ".join(
            f"{r['requests'].get(op, 0) / r['objects']:.3f}" for r in rows) + " |")
    lines.append("| **total per object** | " + " | ".join(
        f"**{sum(r['requests'].values()) / r['objects']:.2f}**" for r in rows) + " |")
    lines.append("| objects | " + " | ".join(str(r["objects"]) for r in rows) + " |")
    return rows, "\n".join(lines)


def floor(args, env, runs):
    out = subprocess.run([f"{args.bin}/examples/worker_ceiling", env["TRAILVAULT_CONFIG"],
                          "--floor"], env=env, check=True, capture_output=True, text=True)
    f = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(f), flush=True)
    lines = [f"Floor, one core, {f['files']} archived files, {f['bytes'] / 1e6:.1f} MB: "
             f"SHA-256 {f['sha256_ms_per_mb']:.2f} + gunzip {f['gunzip_ms_per_mb']:.2f} = "
             f"{f['ms_per_mb']:.2f} ms per compressed MB (both, timed together).",
             "", "| corpus | contender | client CPU ms/compressed MB | x floor |", "|---|---|---|---|"]
    for corpus in dict.fromkeys(r["corpus"] for r in runs):
        for c in dict.fromkeys(r["contender"] for r in runs):
            v = median(1000 * r["cpu_s"] / (r["delivered_bytes"] / 1e6)
                       for r in runs if r["corpus"] == corpus and r["contender"] == c)
            if v:
                lines.append(f"| {corpus} | {c} | {v:.1f} | {v / f['ms_per_mb']:.1f} |")
    return f, "\n".join(lines)


class Worker:
    """`trailvault run` (long-running), its /metrics read while it runs; stopped by SIGTERM."""

    def __init__(self, args, state, env, config, name):
        self.log_path = os.path.join(state, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [f"{args.bin}/trailvault", "run"],
            env={**env, "TRAILVAULT_CONFIG": config, "TRAILVAULT_LOG_FORMAT": "json"},
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.address = metrics_address(self.log_path, lambda: self.proc.poll() is None)
        if self.address is None:
            sys.exit(f"trailvault run exited ({self.proc.returncode}); its log: {self.log_path}")

    def metrics(self):
        return urllib.request.urlopen(f"http://{self.address}/metrics", timeout=5).read().decode()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def security_client(env, service, region):
    session = boto3.session.Session(profile_name=env["AWS_PROFILE"], region_name=region)
    return session.client(service, endpoint_url=env["TRAILVAULT_EMULATOR_ENDPOINT"])


def idle(args, state, env, devstack, stack):
    """The busy queues alone, and with fifteen idle ones, in the long-running mode."""
    quiet = ""
    regions = stack["regions"]
    for i in range(15):
        region = regions[i % len(regions)]
        url = security_client(env, "sqs", region).create_queue(
            QueueName=f"bench-idle-{i}")["QueueUrl"]
        quiet += f'\n[[queues]]\nurl = "{url}"\nregion = "{region}"\n'
    rows = []
    for rep in range(args.reps):
        for in_flight in (16, 32):
            for queues, extra in (("busy alone", ""), ("with 15 idle", quiet)):
                out = subprocess.run(devstack + ["deliver", "--hours", "1", "--files", "15"],
                                     check=True, capture_output=True, text=True)
                objects = delivered_objects(out.stdout + out.stderr)
                config = variant(state, env["TRAILVAULT_CONFIG"], in_flight=in_flight,
                                 extra_queues=extra)
                w = Worker(args, state, env, config, f"idle-{in_flight}-{len(extra)}")
                first = None
                try:
                    while True:
                        text = w.metrics()
                        now = time.monotonic()
                        if first is None and metric(text, "trailvault_messages_received_total") > 0:
                            first = now
                        if metric(text, "trailvault_objects_total") >= objects:
                            break
                        if now - w.started > 600:
                            sys.exit(f"idle: {objects} objects not archived in 600 s; {w.log_path}")
                        time.sleep(0.02)
                finally:
                    w.stop()
                row = {"in_flight": in_flight, "queues": queues, "rep": rep + 1,
                       "objects": objects, "start_to_archived_s": round(now - w.started, 2),
                       "first_receive_to_archived_s": round(now - first, 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    lines = ["| max_in_flight | queues | objects | start to archived, s "
             "| first receive to archived, s | x busy alone |", "|---|---|---|---|---|---|"]
    for in_flight in (16, 32):
        alone = median(r["start_to_archived_s"] for r in rows
                       if r["in_flight"] == in_flight and r["queues"] == "busy alone")
        for queues in ("busy alone", "with 15 idle"):
            rs = [r for r in rows if r["in_flight"] == in_flight and r["queues"] == queues]
            lines.append(
                f"| {in_flight} | {queues} | {rs[0]['objects']} "
                f"| {stat(r['start_to_archived_s'] for r in rs)} "
                f"| {stat(r['first_receive_to_archived_s'] for r in rs)} "
                f"| {median(r['start_to_archived_s'] for r in rs) / alone:.2f} |")
    return rows, "\n".join(lines)


def histogram(text, name):
    """Cumulative (bound, count) pairs of a Prometheus histogram."""
    out = []
    for line in text.splitlines():
        m = re.match(name + r'_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            out.append((float(m.group(1)), float(m.group(2))))
    return out


def quantile(buckets, q):
    """Prometheus's histogram_quantile: linear within the bucket the rank falls in."""
    total = buckets[-1][1]
    if total == 0:
        return None
    rank, lo, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lo
            return lo + (bound - lo) * (rank - below) / max(count - below, 1e-9)
        lo, below = bound, count
    return lo


def share_within(buckets, bound):
    total = buckets[-1][1]
    return next(c for b, c in buckets if b >= bound) / total if total else None


def objects_in(body):
    """How many objects a notification names: S3 event, SNS envelope, CloudTrail's own, or
    EventBridge's."""
    doc = json.loads(body)
    if isinstance(doc.get("Message"), str):
        doc = json.loads(doc["Message"])
    if "s3ObjectKey" in doc:
        return len(doc["s3ObjectKey"])
    return len(doc.get("Records", [])) or 1


def stage(env, stack):
    """Takes every waiting notification off the central queues: (queue url, body, objects)."""
    staged = []
    for q in stack["security"]["queues"]:
        sqs = security_client(env, "sqs", q["region"])
        while True:
            got = sqs.receive_message(QueueUrl=q["url"], MaxNumberOfMessages=10,
                                      WaitTimeSeconds=0).get("Messages", [])
            if not got:
                break
            for m in got:
                staged.append((q["url"], q["region"], m["Body"], objects_in(m["Body"])))
            sqs.delete_message_batch(QueueUrl=q["url"], Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    return staged


def latency(args, state, env, devstack, stack, rate_100):
    """Open loop: notifications sent on a clock at a share of the ceiling's rate for 60 s."""
    rows = []
    config = variant(state, env["TRAILVAULT_CONFIG"], period=1)
    for share in (0.25, 0.5, 0.8):
        rate = share * rate_100
        want = rate * 60
        # Files per account and region for about `want` objects (each trail also writes 4
        # digests and an Insights file in 4 hours).
        trails = len(stack["regions"]) * len(stack["members"])
        files = max(1, round(want / trails) - 5)
        subprocess.run(devstack + ["deliver", "--hours", "4", "--files", str(files)],
                       check=True, capture_output=True, text=True)
        staged = stage(env, stack)
        objects = sum(n for *_, n in staged)
        w = Worker(args, state, env, config, f"latency-{share}")
        try:
            time.sleep(2)  # started up, its receivers waiting
            clients = {r: security_client(env, "sqs", r) for r in stack["regions"]}
            started, sent = time.monotonic(), 0
            for url, region, body, n in staged:
                due = started + sent / rate
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
                clients[region].send_message(QueueUrl=url, MessageBody=body)
                sent += n
            sending = time.monotonic() - started
            while True:
                text = w.metrics()
                if metric(text, "trailvault_messages_deleted_total") >= len(staged):
                    break
                if time.monotonic() - started > 600:
                    sys.exit(f"latency: not all deleted in 600 s; {w.log_path}")
                time.sleep(0.2)
        finally:
            w.stop()
        e2e = histogram(text, "trailvault_end_to_end_seconds")
        wait = histogram(text, "trailvault_queue_wait_seconds")
        row = {"share": share, "objects_per_s": round(objects / sending, 1),
               "messages": len(staged), "objects": objects, "sending_s": round(sending, 1),
               "end_to_end_p50_s": quantile(e2e, 0.5), "end_to_end_p99_s": quantile(e2e, 0.99),
               "end_to_end_within_2s": share_within(e2e, 2.0),
               "queue_wait_p50_s": quantile(wait, 0.5), "queue_wait_p99_s": quantile(wait, 0.99)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    lines = [f"Ceiling rate: {rate_100:.1f} objects/s.", "",
             "| load | objects/s sent | messages | end-to-end p50 s | end-to-end p99 s "
             "| within 2 s | queue wait p50 s | queue wait p99 s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['share']:.0%} | {r['objects_per_s']} | {r['messages']} "
            f"| {r['end_to_end_p50_s']:.2f} | {r['end_to_end_p99_s']:.2f} "
            f"| {r['end_to_end_within_2s']:.1%} | {r['queue_wait_p50_s']:.3f} "
            f"| {r['queue_wait_p99_s']:.3f} |")
    return rows, "\n".join(lines)


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = ["throughput", "counted", "floor", "idle", "latency"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--corpora", default="demo,large")
    p.add_argument("--phases", default=",".join(PHASES))
    p.add_argument("--ceiling-rate", type=float,
                   help="objects/s for the latency phase when the throughput phase does not run")
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
    phases = args.phases.split(",")
    for ph in phases:
        if ph not in PHASES:
            sys.exit(f"unknown phase {ph!r}; phases: {', '.join(PHASES)}")
    devstack = [f"{args.bin}/devstack", "--dir", state]
    subprocess.run(devstack + ["up", "--endpoint", endpoint, "--namespace", "bench"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ)
    for line in open(os.path.join(state, "env")):
        m = re.match(r"export (\w+)=(.*)", line.strip())
        if m:
            env[m.group(1)] = m.group(2).strip("'\"")
    # boto3 (the idle queues, the latency phase's sender) as the devstack's worker profile.
    for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ[k] = env[k]
    stack = json.load(open(os.path.join(state, "devstack.json")))
    started = time.monotonic()
    report = {"nproc": os.cpu_count()}
    sections = []
    runs = []
    report["runs"] = runs
    # In the order given, so that a long phase can go last.
    for phase in phases:
        if phase == "throughput":
            throughput(args, state, env, emu, devstack, runs)
            sections.append("## Throughput\n\n" + summarize(runs) + "\n\n" + ratios(runs))
        elif phase == "counted":
            report["counted"], table = counted(args, state, env, emu, devstack, endpoint)
            sections.append("## Requests per archived object (demo corpus, counted by the "
                            "proxy)\n\n" + table)
        elif phase == "floor":
            report["floor"], table = floor(args, env, runs)
            sections.append("## CPU against the floor\n\n" + table)
        elif phase == "idle":
            report["idle"], table = idle(args, state, env, devstack, stack)
            sections.append("## Idle queues (long-running `trailvault run`)\n\n" + table)
        elif phase == "latency":
            # The ceiling's best rate (a corpus's median over the active window): the
            # emulator slows as it fills, so the smaller corpus gives the higher rate.
            rates = [median(r["objects"] / r["active_s"] for r in runs
                            if r["contender"] == "ceiling" and r["corpus"] == c and r["active_s"])
                     for c in dict.fromkeys(r["corpus"] for r in runs)]
            rate = max([r for r in rates if r], default=None) or args.ceiling_rate
            if not rate:
                sys.exit("latency: run the throughput phase first, or give --ceiling-rate")
            report["latency"], table = latency(args, state, env, devstack, stack, rate)
            sections.append("## Latency, open loop, manifest.period_secs = 1\n\n" + table)
        # Written after every phase, so that a stopped run keeps what it measured.
        write(args, report, sections, started)


def write(args, report, sections, started):
    minutes = (time.monotonic() - started) / 60
    report["minutes"] = round(minutes, 1)
    text = "\n\n".join(sections) + f"\n\nnproc {os.cpu_count()}; {minutes:.1f} minutes\n"
    print("\n" + sections[-1], flush=True)
    with open(args.out + ".json", "w") as f:
        json.dump(report, f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
