"""The table bench/alerts prints: one row per run, then the medians and their ratio.

    python alerts_table.py RESULTS   (one JSON object per line, as bench/alerts writes them)
"""

import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]


def cpu(r):
    return r["cost"]["user_s"] + r["cost"]["sys_s"]


def mb(r):
    return r["setup"]["bytes"] / 1e6


print("| run | objects | compressed MB | alerts published | worker CPU s | CPU ms per MB | wall s | peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(
        f"| {r['run']} | {r['setup']['objects']} | {mb(r):.1f} | {r['alerts']} | {cpu(r):.2f} "
        f"| {1000 * cpu(r) / mb(r):.1f} | {r['cost']['wall_s']:.1f} | {r['cost']['max_rss_kib'] / 1024:.1f} |"
    )


def per_mb(mode):
    return statistics.median(1000 * cpu(r) / mb(r) for r in rows if r["run"].startswith(mode))


off, on = per_mb("off"), per_mb("on")
print(f"\nworker CPU per compressed MB, median: off {off:.1f} ms, on {on:.1f} ms; on/off {on / off:.2f} (goal <= 1.3)")
