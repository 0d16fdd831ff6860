"""Runs a command and prints what it cost: wall time, CPU time (user + system) and peak RSS.

    python measure.py -- COMMAND [ARGS...]

The figures go to stderr as one JSON line, `{"wall_s": ..., "user_s": ..., "sys_s": ...,
"max_rss_kib": ...}`; the command's own output passes through. Exits with the command's code.
"""

import json
import resource
import subprocess
import sys
import time

args = sys.argv[1:]
if args and args[0] == "--":
    args = args[1:]
started = time.monotonic()
proc = subprocess.run(args)
wall = time.monotonic() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(
    json.dumps(
        {
            "wall_s": round(wall, 3),
            "user_s": round(usage.ru_utime, 3),
            "sys_s": round(usage.ru_stime, 3),
            "max_rss_kib": usage.ru_maxrss,
        }
    ),
    file=sys.stderr,
)
sys.exit(proc.returncode)
