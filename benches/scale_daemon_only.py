#!/usr/bin/env python3
"""The daemon's own costs at N watches, without a page server.

benches/scale_daemon_only.py TIDINGS LABEL CONFIG WORKDIR [--reloads-only] [--repeat K]

CONFIG is a config of N watches whose URLs point at a port nothing listens
on, with `[limits] retries = 0` and `robots = false` in `[defaults]`, so
every check fails at once and the run measures the daemon, not the pages:
start-up (spawn to "tidings daemon started"), RSS after start-up and after
every watch has been checked once, `tidings status` (the summary) and
`tidings status --all` (the streamed table; wall, CPU, RSS of the CLI),
SIGHUP reloads with the file unchanged, with a comment appended, with a
watch appended, and with a setting outside the blocks changed (a limit,
`[defaults] robots`, the default schedule: scale_bench.CHANGES; daemon CPU
s and the log's load/apply ms too), three times each, VmHWM (the peak), the
restart on the full store, and `validate`. Prints one JSON object. See docs/benchmarks.md, "One node
at scale". Make the config with, for example:

    python3 -c "for i in range(100000): print(f'http://127.0.0.1:9/page/{i}')" > urls.txt
    tidings import --urls urls.txt --out tidings.toml   # then add retries/robots/schedule
"""
import os, signal, subprocess, sys, time, shutil, json
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from daemon_bench import status_fields, stop_daemon, wait_for, cpu_seconds
from scale_bench import CHANGES, daemon_summary, last_reload_log, reload_once, timed, log_has
tidings, label, base, root = sys.argv[1:5]
# Only the reloads (and start-up, the pass, RSS), not status/validate/restart.
reloads_only = "--reloads-only" in sys.argv[5:]
repeat = 3 if "--repeat" not in sys.argv else int(sys.argv[sys.argv.index("--repeat") + 1])
work = Path(root) / label; shutil.rmtree(work, ignore_errors=True); work.mkdir(parents=True)
config = work / "tidings.toml"; shutil.copy(base, config)
state = work / "state"; state.mkdir(); log = work / "daemon.log"
def start():
    env = dict(os.environ, RUST_LOG="tidings=info")
    n0 = log.read_text().count("tidings daemon started") if log.exists() else 0
    t0 = time.monotonic()
    p = subprocess.Popen([tidings, "run", "--config", str(config), "--state", str(state)],
                         stdout=subprocess.DEVNULL, stderr=log.open("ab"), env=env)
    wait_for(lambda: log_has(log, "tidings daemon started", n0 + 1), 300, 0.01)
    return p, time.monotonic() - t0
out = {"label": label}
p, out["startup_cold_s"] = start()
out["rss_after_start_kib"] = status_fields(p.pid)["VmRSS"]
n = config.read_text().count("[[watch]]")
wait_for(lambda: (daemon_summary(state, 60) or {}).get("checks", 0) >= n, 900, 5)
out["first_pass_cpu_s"] = cpu_seconds(p.pid)
st = status_fields(p.pid); out["rss_after_pass_kib"] = st["VmRSS"]; out["vmhwm_kib"] = st["VmHWM"]
if not reloads_only:
  out["status"] = [timed([tidings, "status", "--config", str(config), "--state", str(state)]) for _ in range(3)]
  out["status_all"] = [timed([tidings, "status", "--all", "--config", str(config), "--state", str(state)])
                       for _ in range(3)]
out["reload_s"] = [round(reload_once(p.pid, log, None), 3) for _ in range(repeat)]
out["reload_comment_s"] = [round(reload_once(p.pid, log, config), 3) for _ in range(repeat)]
out["reload_added_s"] = [round(reload_once(p.pid, log, config, add_watch=True), 3) for _ in range(repeat)]
# A setting outside the blocks changed (each of scale_bench.CHANGES),
# REPEAT times each: wall to the log line, the daemon's CPU s over it, and
# the log's load_ms / apply_ms.
def reload_changed(change):
    c0 = cpu_seconds(p.pid)
    wall = reload_once(p.pid, log, config, change=change)
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu_seconds(p.pid) - c0, 2),
            "loadavg": round(os.getloadavg()[0], 2), **last_reload_log(log),
            "rss_kib": status_fields(p.pid)["VmRSS"], "vmhwm_kib": status_fields(p.pid)["VmHWM"]}
for change in CHANGES:
    out[f"reload_{change}"] = [reload_changed(change) for _ in range(repeat)]
out["vmhwm_end_kib"] = status_fields(p.pid)["VmHWM"]
out["rss_end_kib"] = status_fields(p.pid)["VmRSS"]
out["stop"] = stop_daemon(p, 120)
if not reloads_only:
    p, out["startup_warm_s"] = start(); stop_daemon(p, 120)
    out["validate"] = [timed([tidings, "validate", "--config", str(config)]) for _ in range(3)]
print(json.dumps(out))
