#!/usr/bin/env python3
"""Start-up of several builds on the same full store, in turns.

benches/daemon_restart_ab.py CONFIG STATE K LABEL=TIDINGS LABEL=TIDINGS …

Starts each build's daemon on CONFIG and STATE (a store every watch has
been checked into, e.g. one a benches/daemon_reload_ab.py run leaves), one
build after the other, K rounds: wall from spawn to "tidings daemon
started", the daemon's CPU s then (/proc), and VmHWM then and 3 s later
(the start-up's peak memory), then SIGTERM. Prints one JSON object.
"""
import os, sys, time, subprocess, signal, json
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from daemon_bench import status_fields, stop_daemon, wait_for, cpu_seconds
from scale_bench import log_has
config, state, reps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
builds = [a.split("=", 1) for a in sys.argv[4:]]
out = {}
for _ in range(reps):
    for label, exe in builds:
        log = state.parent / f"restart-{label}.log"; log.write_text("")
        t0 = time.monotonic()
        p = subprocess.Popen([exe, "run", "--config", str(config), "--state", str(state)],
                             stdout=subprocess.DEVNULL, stderr=log.open("ab"), env=dict(os.environ, RUST_LOG="tidings=info"))
        wait_for(lambda: log_has(log, "tidings daemon started"), 300, 0.01)
        wall = time.monotonic() - t0
        cpu = cpu_seconds(p.pid); st = status_fields(p.pid)
        time.sleep(3)
        st2 = status_fields(p.pid)
        stop_daemon(p, 120)
        out.setdefault(label, []).append({"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "vmhwm_mib_started": round(st["VmHWM"] / 1024), "vmhwm_mib_3s": round(st2["VmHWM"] / 1024),
            "loadavg": round(os.getloadavg()[0], 2)})
print(json.dumps(out))
