#!/usr/bin/env python3
"""One node at scale: `tidings run` with N watches (10,000, 100,000, …).

Called by benches/scale.sh (which builds the binary and, as root, puts the
run in a loopback-only network namespace). Python 3 standard library only;
the page server is ../shared/bench/pageserver.py on 127.0.0.1, with pages of
about 20 KB (--min-kb/--max-kb).

For each N:

1. `tidings import` writes N watches. With more watches than --pages
   distinct pages, watch i asks for /page/(i mod PAGES)?w=i: a distinct URL
   (its own fetch, validators and history) with shared content, so the
   Python page server does not have to render and hold N pages. Texts are
   stored once per distinct content, so the store's text bytes follow
   PAGES, not N; the per-watch records follow N.
2. `tidings validate` on that config (wall and CPU, from wait4).
3. `tidings run`: start-up (spawn to the "tidings daemon started" log
   line), then the first pass (every watch is new, so every one is due at
   once), a bump of --bump-fraction of the pages, then the schedule
   (--schedule with --jitter spreading the watches over it) until every
   watch has been checked at least twice (2·N checks) or --window seconds.
   RSS and CPU (/proc) are sampled every --sample seconds.
4. While it runs, after the first pass: `tidings status` (the CLI, over the
   socket; wall and CPU), and SIGHUP reloads (spawn of the signal to the
   "configuration reloaded" log line), --repeat times each.
5. SIGTERM, then a restart on the full store (start-up again), SIGTERM.

CPU per check is reported for the first pass (every page new: fetch,
extract, store) and for the rest (mostly 304s, the bumped pages changed),
and the watches one core sustains at a 6-hourly cadence follows from the
steady-state figure: 6 h × 3600 s / (CPU s per check).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from daemon_bench import (  # noqa: E402
    cpu_seconds, daemon_status, http_get, status_fields, stop_daemon, wait_for,
)


def daemon_summary(state: Path, timeout: float = 10.0) -> dict | None:
    """The daemon's summary (counters, no per-watch table), or None: the
    full report of every watch is costly at 100,000 watches, and this script
    asks every few samples."""
    return daemon_status(state, timeout, b'{"request":"summary"}\n')


import re  # noqa: E402


def edit_setting(text: str, table: str, key: str, values: tuple[str, str]) -> str:
    """`key` in `[table]` set to the one of `values` it is not now (the
    first when it is absent): a real change of a setting outside the
    `[[watch]]` blocks, which a comment no longer is (a reload ignores
    comments and blank lines there)."""
    header = f"[{table}]\n"
    at = text.index(header) + len(header)
    end = text.find("\n[", at)
    end = len(text) if end < 0 else end + 1
    section = text[at:end]
    line = re.compile(rf"^{re.escape(key)} = (.*)$", re.M)
    found = line.search(section)
    if found is None:
        section = f"{key} = {values[0]}\n" + section
    else:
        other = values[1] if found.group(1).strip() == values[0] else values[0]
        section = line.sub(lambda _: f"{key} = {other}", section, count=1)
    return text[:at] + section + text[end:]


# What a reload can be asked to read (see reload_once), besides nothing.
CHANGES = {
    # A limit: every watch is taken as it was.
    "limit": ("limits", "max_redirects", ("6", "5")),
    # A default that reaches every watch but not its schedule.
    "default-robots": ("defaults", "robots", ("true", "false")),
    # The default schedule: every watch that takes it is planned anew.
    "default-schedule": ("defaults", "schedule", ('"7,37 * * * *"', '"8,38 * * * *"')),
}


def reload_once(pid: int, log: Path, config: Path | None, add_watch: bool = False,
                change: str | None = None) -> float:
    """One SIGHUP, timed to the "configuration reloaded" log line.

    Without a config the file is unchanged (the daemon skips it). With one,
    either a comment is appended (outside the blocks: since the fourth pass
    a reload ignores it and takes every block as it was), or (add_watch) a
    new watch is appended, the usual edit, or (change, a key of CHANGES) a
    setting outside the `[[watch]]` blocks is changed."""
    if config is not None:
        text = config.read_text()
        if change is not None:
            table, key, values = CHANGES[change]
            config.write_text(edit_setting(text, table, key, values))
        else:
            with config.open("a") as fh:
                if add_watch:
                    url = next(line.split("=", 1)[1].strip() for line in text.splitlines()
                               if line.startswith("url ="))
                    fh.write(f'\n[[watch]]\nname = "reload-added-{time.time_ns()}"\nurl = {url}\n')
                else:
                    fh.write(f"# reload {time.time()}\n")
    before = log.read_text(errors="replace").count("configuration reloaded")
    r0 = time.monotonic()
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: log_has(log, "configuration reloaded", before + 1), timeout=120, every=0.01)
    return time.monotonic() - r0


def last_reload_log(log: Path) -> dict:
    """The load_ms / apply_ms / added / changed of the last reload's log line."""
    lines = [line for line in log.read_text(errors="replace").splitlines()
             if "configuration reloaded" in line]
    return {k: int(v) for k, v in re.findall(r"\b(load_ms|apply_ms|added|changed|removed|stored_reads|elapsed_ms)=(\d+)",
                                              lines[-1] if lines else "")}


def timed(cmd: list[str], **kw) -> dict:
    """Runs a command to completion: wall seconds, CPU seconds (wait4), max RSS."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if code != 0:
        raise RuntimeError(f"{cmd[:2]} exited {code}: {err[-500:]}")
    return {"wall_s": round(wall, 3), "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
            "max_rss_kib": ru.ru_maxrss}


def log_has(log: Path, text: str, count: int = 1) -> bool:
    try:
        return log.read_text(errors="replace").count(text) >= count
    except OSError:
        return False


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def spread(values: list[float]) -> dict:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def write_config(args, folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    urls = folder / "urls.txt"
    pages = min(n, args.pages)
    with urls.open("w") as fh:
        for i in range(n):
            fh.write(f"http://127.0.0.1:{args.port}/page/{i % pages}"
                     + (f"?w={i}\n" if n > pages else "\n"))
    config = folder / "tidings.toml"
    subprocess.run([args.tidings, "import", "--urls", str(urls), "--out", str(config)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = config.read_text().replace("[limits]\nper_host = 8\n",
                                      f"[limits]\nper_host = {args.per_host}\n", 1)
    if args.minute_slots:
        # One shared schedule fires every watch in the same minute, and the
        # jitter (capped at a tenth of the gap) cannot spread them far. With
        # slots, watch i fires at minutes i mod M, i mod M + M, …: N / M
        # watches a minute, spread over it by a jitter of 1m, a steady rate.
        m = args.minute_slots
        lines, k = [], 0
        for line in text.splitlines():
            lines.append(line)
            if line.startswith("url = "):
                minutes = ",".join(str(x) for x in range(k % m, 60, m))
                lines.append(f'schedule = "{minutes} * * * *"')
                k += 1
        text = "\n".join(lines) + "\n"
    text += ("\n[defaults]\n"
             f"schedule = {json.dumps(args.schedule)}\n"
             'timezone = "UTC"\n'
             "\n[daemon]\n"
             f"max_jitter = {json.dumps(args.jitter)}\n")
    config.write_text(text)
    return config


def start(args, config: Path, state: Path, log: Path) -> tuple[subprocess.Popen, float]:
    env = dict(os.environ, RUST_LOG="tidings=info")
    env.pop("NOTIFY_SOCKET", None)
    t0 = time.monotonic()
    proc = subprocess.Popen([args.tidings, "run", "--config", str(config), "--state", str(state)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=log.open("ab"), env=env)
    starts = log.read_text(errors="replace").count("tidings daemon started") + 1 if log.exists() else 1
    if not wait_for(lambda: log_has(log, "tidings daemon started", starts) or proc.poll() is not None,
                    timeout=600, every=0.02) or proc.poll() is not None:
        raise RuntimeError(f"daemon did not start; see {log}")
    return proc, time.monotonic() - t0


def one_scale(args, n: int) -> dict:
    folder = Path(args.work) / f"N{n}"
    if folder.exists():
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    pages = min(n, args.pages)
    reset = http_get(args.port, f"/control/reset?n={pages}", timeout=3600)
    config = write_config(args, folder, n)
    state = folder / "state"
    state.mkdir()
    log = folder / "daemon.log"
    print(f"scale N={n}: {pages} distinct pages (prerendered in {reset.get('prerender_s')} s)",
          file=sys.stderr)

    validate = [timed([args.tidings, "validate", "--config", str(config)])
                for _ in range(args.repeat)]

    proc, startup_cold = start(args, config, state, log)
    pid = proc.pid
    t0 = time.monotonic()
    samples: list[dict] = []
    result: dict = {"watches": n, "distinct_pages": pages, "schedule": args.schedule,
                    "jitter": args.jitter, "validate": validate, "startup_cold_s": round(startup_cold, 3)}
    first_pass = None
    bumped = False
    status_cli: list[dict] = []
    status_all: list[dict] = []
    reloads: list[float] = []
    reloads_changed: list[float] = []
    reloads_added: list[float] = []
    last = {"checks": 0}
    # CPU the daemon spent answering this script's status requests: taken
    # out of the per-check figures (a 100,000-watch report is not free).
    status_cpu = 0.0
    stored = 0
    log_offset = 0
    try:
        while True:
            time.sleep(args.sample)
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode}; see {log}")
            now = time.monotonic() - t0
            st = status_fields(pid)
            sample = {"t": round(now, 1), "cpu_s": cpu_seconds(pid), **st}
            # The first pass is followed in the log ("first version stored",
            # one line per new watch), the rest through the status socket,
            # asked every --status-every samples only.
            with log.open("rb") as fh:
                fh.seek(log_offset)
                chunk = fh.read()
            cut = chunk.rfind(b"\n") + 1
            stored += chunk[:cut].count(b"first version stored")
            log_offset += cut
            if first_pass is not None and len(samples) % args.status_every == 0:
                c0 = cpu_seconds(pid)
                report = daemon_summary(state, timeout=60) or last
                status_cpu += cpu_seconds(pid) - c0
                last = report
                sample.update(checks=report.get("checks", 0), changes=report.get("changes", 0),
                              failures=report.get("failures", 0), in_flight=report.get("in_flight", 0))
            samples.append(sample)
            if first_pass is None and stored >= n:
                c0 = cpu_seconds(pid)
                last = daemon_summary(state, timeout=60) or last
                status_cpu += cpu_seconds(pid) - c0
                first_pass = {"seconds": round(now, 1), "cpu_s": round(sample["cpu_s"], 2),
                              "status_cpu_s": round(status_cpu, 2),
                              "checks": last["checks"], "failures": last.get("failures", 0),
                              "rss_kib": st["VmRSS"], "store_bytes": du(state)}
                print(f"  first pass: {n} checks in {now:.0f} s, {sample['cpu_s']:.1f} CPU s",
                      file=sys.stderr)
                c0 = cpu_seconds(pid)
                for _ in range(args.repeat):
                    status_cli.append(timed([args.tidings, "status", "--config", str(config),
                                             "--state", str(state)]))
                for _ in range(args.repeat):
                    status_all.append(timed([args.tidings, "status", "--all", "--config",
                                             str(config), "--state", str(state)]))
                for _ in range(args.repeat):
                    reloads.append(reload_once(pid, log, None))
                for _ in range(args.repeat):
                    reloads_changed.append(reload_once(pid, log, config))
                for _ in range(args.repeat):
                    reloads_added.append(reload_once(pid, log, config, add_watch=True))
                status_cpu += cpu_seconds(pid) - c0
                http_get(args.port, f"/control/bump?n={pages}&fraction={args.bump_fraction}")
                bumped = True
            if last.get("checks", 0) >= args.passes * n or now >= args.window:
                break
        end = samples[-1]
        end_cpu = end["cpu_s"] - status_cpu
        final = daemon_summary(state, timeout=60) or last
        status_after = [timed([args.tidings, "status", "--config", str(config), "--state", str(state)])
                        for _ in range(args.repeat)]
        status_all += [timed([args.tidings, "status", "--all", "--config", str(config),
                              "--state", str(state)]) for _ in range(args.repeat)]
        reloads_changed += [reload_once(pid, log, config) for _ in range(args.repeat)]
        reloads_added += [reload_once(pid, log, config, add_watch=True) for _ in range(args.repeat)]
        hwm_before_stop = status_fields(pid).get("VmHWM")
        stop = stop_daemon(proc, timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    store_end = du(state)
    proc2, startup_warm = start(args, config, state, log)
    stop2 = stop_daemon(proc2, timeout=120)

    checks = final.get("checks", 0)
    steady_checks = checks - (first_pass["checks"] if first_pass else 0)
    steady_cpu = end_cpu - (first_pass["cpu_s"] - first_pass["status_cpu_s"] if first_pass else 0)
    steady_per_check = steady_cpu / steady_checks if steady_checks > 0 else None
    result.update({
        "seconds": end["t"],
        "checks": checks,
        "changes": final.get("changes", 0),
        "failures": final.get("failures", 0),
        "bumped": bumped,
        "first_pass": first_pass,
        "cpu_s": round(end["cpu_s"], 2),
        "status_and_reload_cpu_s": round(status_cpu, 2),
        "first_pass_cpu_ms_per_check": round(
            1000 * (first_pass["cpu_s"] - first_pass["status_cpu_s"]) / first_pass["checks"], 3)
        if first_pass else None,
        "steady_checks": steady_checks,
        "steady_cpu_s": round(steady_cpu, 2),
        "steady_cpu_ms_per_check": round(1000 * steady_per_check, 3) if steady_per_check else None,
        "watches_per_core_6h": int(6 * 3600 / steady_per_check) if steady_per_check else None,
        "rss_max_kib": max(s["VmRSS"] for s in samples),
        "rss_after_first_pass_kib": spread([s["VmRSS"] for s in samples
                                            if first_pass and s["t"] >= first_pass["seconds"]]
                                           or [0]),
        "rss_end_kib": end["VmRSS"],
        "vmhwm_kib": end.get("VmHWM"),
        "vmhwm_end_kib": hwm_before_stop,
        "store_bytes_end": store_end,
        "status_cli": status_cli + status_after,
        "status_cli_wall": spread([s["wall_s"] for s in status_cli + status_after]) if status_cli else None,
        "reload_s": spread(reloads) if reloads else None,
        "reload_changed_s": spread(reloads_changed) if reloads_changed else None,
        "reload_added_s": spread(reloads_added) if reloads_added else None,
        "status_all_cli": status_all,
        "status_all_wall": spread([s["wall_s"] for s in status_all]) if status_all else None,
        "status_all_cpu": spread([s["cpu_s"] for s in status_all]) if status_all else None,
        "status_cli_cpu": spread([s["cpu_s"] for s in status_cli + status_after]) if status_cli else None,
        "validate_wall": spread([v["wall_s"] for v in validate]),
        "validate_cpu": spread([v["cpu_s"] for v in validate]),
        "startup_warm_s": round(startup_warm, 3),
        "stop": stop,
        "stop_after_restart": stop2,
        "samples": samples,
    })
    return result


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def markdown(results: list[dict]) -> str:
    out = ["| measure | " + " | ".join(f"{r['watches']:,} watches" for r in results) + " |",
           "|---|" + "---|" * len(results)]

    def row(name, fn):
        cells = []
        for r in results:
            try:
                cells.append(fn(r))
            except (KeyError, TypeError):
                cells.append("–")
        out.append(f"| {name} | " + " | ".join(cells) + " |")

    def mmm(d, unit="s"):
        return f"{d['median']} {unit} [{d['min']}–{d['max']}]"

    row("distinct pages (~20 KB)", lambda r: f"{r['distinct_pages']:,}")
    row("schedule, jitter", lambda r: f"`{r['schedule']}`, {r['jitter']}")
    row("`validate` wall, median [min–max]", lambda r: mmm(r["validate_wall"]))
    row("`validate` CPU", lambda r: mmm(r["validate_cpu"]))
    row("`validate` max RSS", lambda r: mib(max(v["max_rss_kib"] for v in r["validate"])))
    row("start-up, empty store", lambda r: f"{r['startup_cold_s']} s")
    row("start-up, full store (restart)", lambda r: f"{r['startup_warm_s']} s")
    row("first pass", lambda r: f"{r['first_pass']['checks']:,} checks in {r['first_pass']['seconds']} s, "
        f"{r['first_pass']['cpu_s']} CPU s")
    row("CPU per check, first pass (new pages)", lambda r: f"{r['first_pass_cpu_ms_per_check']} ms")
    row("checks after the first pass", lambda r: f"{r['steady_checks']:,} ({r['changes']} changes) "
        f"in {r['seconds'] - r['first_pass']['seconds']:.0f} s")
    row("CPU per check after it (304s, 10 % changed)", lambda r: f"{r['steady_cpu_ms_per_check']} ms")
    row("daemon CPU answering the bench's status/reloads (excluded above)",
        lambda r: f"{r['status_and_reload_cpu_s']} s")
    row("watches one core sustains, 6-hourly", lambda r: f"{r['watches_per_core_6h']:,}")
    row("failures", lambda r: f"{r['failures']}")
    row("RSS after the first pass, min / median / max",
        lambda r: " / ".join(mib(r["rss_after_first_pass_kib"][k]) for k in ("min", "median", "max")))
    row("RSS after the first pass / max / end",
        lambda r: f"{mib(r['first_pass']['rss_kib'])} / {mib(r['rss_max_kib'])} / {mib(r['rss_end_kib'])}")
    row("store after the first pass / at the end",
        lambda r: f"{r['first_pass']['store_bytes'] / 1e6:.1f} / {r['store_bytes_end'] / 1e6:.1f} MB")
    row("store per watch at the end", lambda r: f"{r['store_bytes_end'] / r['watches'] / 1e3:.1f} KB")
    row("VmHWM (peak RSS) at the end", lambda r: mib(r["vmhwm_end_kib"]))
    row("`tidings status` (summary) wall", lambda r: mmm(r["status_cli_wall"]))
    row("`tidings status` (summary) CLI CPU", lambda r: mmm(r["status_cli_cpu"]))
    row("`tidings status --all` wall", lambda r: mmm(r["status_all_wall"]))
    row("`tidings status --all` CLI CPU", lambda r: mmm(r["status_all_cpu"]))
    row("SIGHUP reload, file unchanged", lambda r: mmm(r["reload_s"]))
    row("SIGHUP reload, a comment appended (outside the blocks)", lambda r: mmm(r["reload_changed_s"]))
    row("SIGHUP reload, a watch appended", lambda r: mmm(r["reload_added_s"]))
    row("SIGTERM to exit", lambda r: f"{r['stop']['stop_seconds']} s, exit {r['stop']['exit_code']}")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tidings", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--port", type=int, default=18282)
    ap.add_argument("--watches", default="10000,100000")
    ap.add_argument("--pages", type=int, default=2_000, help="distinct pages at most")
    ap.add_argument("--min-kb", type=int, default=15)
    ap.add_argument("--max-kb", type=int, default=25)
    ap.add_argument("--schedule", default="*/5 * * * *")
    ap.add_argument("--jitter", default="5m")
    ap.add_argument("--minute-slots", type=int, default=0,
                    help="watch i fires at minutes i mod M (+M, …): a steady rate")
    ap.add_argument("--passes", type=int, default=2, help="stop after N × watches checks")
    ap.add_argument("--per-host", type=int, default=16)
    ap.add_argument("--window", type=float, default=1800, help="seconds per N at most")
    ap.add_argument("--sample", type=float, default=2)
    ap.add_argument("--status-every", type=int, default=10, help="ask the socket every K samples")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bump-fraction", type=float, default=0.1)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ready = work / "pageserver.ready"
    ready.unlink(missing_ok=True)
    server = subprocess.Popen(
        [sys.executable, str(Path(args.shared) / "bench" / "pageserver.py"), "--host", "127.0.0.1",
         "--port", str(args.port), "--ready-file", str(ready), "--max-seconds", str(6 * 3600),
         "--min-kb", str(args.min_kb), "--max-kb", str(args.max_kb)],
        stdin=subprocess.DEVNULL, stdout=(work / "pageserver.log").open("wb"), stderr=subprocess.STDOUT)
    results = []
    meta = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "version": subprocess.run([args.tidings, "--version"], capture_output=True,
                                      text=True).stdout.strip(),
            "cpus": os.cpu_count(), "args": vars(args)}
    try:
        if not wait_for(ready.exists, timeout=30, every=0.1):
            raise RuntimeError("page server did not start")
        for n in (int(x) for x in args.watches.split(",")):
            results.append(one_scale(args, n))
            Path(args.json).write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")
    finally:
        try:
            http_get(args.port, "/control/quit", timeout=5)
        except OSError:
            pass
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
