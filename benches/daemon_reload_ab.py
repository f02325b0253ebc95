#!/usr/bin/env python3
"""SIGHUP reload costs of two builds, side by side, at N watches.

benches/daemon_reload_ab.py CONFIG WORKDIR LABEL=TIDINGS LABEL=TIDINGS … [--repeat K]
    [--changes unchanged,limit,default-schedule,…]

On a shared machine the load moves by a factor of two within minutes, so
two builds measured one after the other are not comparable. This starts a
daemon of each build at once, on its own copy of CONFIG (made as in
benches/scale_daemon_only.py: every fetch fails at once), waits until each
has checked every watch once, then takes the reloads in turns, one build
after the other for each change of scale_bench.CHANGES (a limit,
`[defaults] robots`, the default schedule), for a watch appended and for
the file unchanged, K times each (`--changes` picks some of them): wall
(signal to the "configuration reloaded" log line), the daemon's CPU s over
it (/proc), the log's load_ms / apply_ms / stored_reads, and RSS and VmHWM
after it; and each daemon's RSS and VmHWM once every watch was checked,
before the first reload. Prints one JSON object.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from daemon_bench import cpu_seconds, status_fields, stop_daemon, wait_for  # noqa: E402
from scale_bench import CHANGES, daemon_summary, last_reload_log, log_has, reload_once  # noqa: E402


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
    changes = ([*CHANGES, "watch-added", "unchanged"] if "--changes" not in sys.argv
               else sys.argv[sys.argv.index("--changes") + 1].split(","))
    # Option values are not positional arguments.
    values = {sys.argv[sys.argv.index(o) + 1] for o in ("--repeat", "--changes") if o in sys.argv}
    args = [a for a in args if a not in values]
    base, root, builds = Path(args[0]), Path(args[1]), [a.split("=", 1) for a in args[2:]
                                                          if "=" in a]
    daemons = {}
    for label, tidings in builds:
        work = root / label
        shutil.rmtree(work, ignore_errors=True)
        (work / "state").mkdir(parents=True)
        config, log = work / "tidings.toml", work / "daemon.log"
        shutil.copy(base, config)
        proc = subprocess.Popen([tidings, "run", "--config", str(config), "--state",
                                 str(work / "state")], stdout=subprocess.DEVNULL,
                                stderr=log.open("ab"), env=dict(os.environ, RUST_LOG="tidings=info"))
        daemons[label] = (proc, config, log, work / "state")
    out: dict = {"builds": dict(builds), "repeat": repeat}
    try:
        n = base.read_text().count("[[watch]]")
        for label, (proc, _, log, state) in daemons.items():
            wait_for(lambda: log_has(log, "tidings daemon started"), 600, 0.1)
            wait_for(lambda: (daemon_summary(state, 60) or {}).get("checks", 0) >= n, 1800, 5)
        time.sleep(5)
        for label, (proc, *_) in daemons.items():
            st = status_fields(proc.pid)
            out.setdefault(label, {})["checked"] = {"rss_kib": st["VmRSS"],
                                                     "vmhwm_kib": st["VmHWM"]}
        for change in changes:
            for _ in range(repeat):
                for label, (proc, config, log, _) in daemons.items():
                    c0 = cpu_seconds(proc.pid)
                    wall = reload_once(proc.pid, log, None if change == "unchanged" else config,
                                       add_watch=change == "watch-added",
                                       change=None if change in ("watch-added", "unchanged")
                                       else change)
                    st = status_fields(proc.pid)
                    out.setdefault(label, {}).setdefault(change, []).append({
                        "wall_s": round(wall, 3), "cpu_s": round(cpu_seconds(proc.pid) - c0, 2),
                        "loadavg": round(os.getloadavg()[0], 2), **last_reload_log(log),
                        "rss_kib": st["VmRSS"], "vmhwm_kib": st["VmHWM"]})
    finally:
        for proc, *_ in daemons.values():
            if proc.poll() is None:
                stop_daemon(proc, 120)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
