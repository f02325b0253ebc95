#!/usr/bin/env python3
"""Resource benchmark of `tidings run` (the daemon): idle and soak.

Called by benches/daemon.sh, which builds the binary and (as root) puts this
whole run in a loopback-only network namespace. Python 3 standard library
only. Every request goes to the page server of ../shared/bench on 127.0.0.1.

idle   N watches (default 1000) whose schedule fires once a day, 12 hours
       from now. The daemon runs its first pass (every watch is new, so every
       one is due at once); once the status socket reports N checks and
       nothing in flight, it is left alone for IDLE seconds and its CPU time
       (utime+stime from /proc/PID/stat) and VmRSS are sampled. Nothing talks
       to the daemon during that window, not even this script's status poll.

soak   M watches (default 100) on a six-field schedule firing every second,
       max_jitter 0s, per_host_interval 0s. Every BUMP seconds the server
       changes a fraction of the pages, so the soak includes real changes
       (fetch 200, extract, diff, store), not only 304s. Runs until the
       status socket reports CHECKS completed checks, or CAP seconds.
       VmRSS is sampled every SAMPLE seconds; reported: RSS at start (after
       the first pass), middle, end, max, and the least-squares slope.

Writes a JSON file of every sample and prints a Markdown summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        stat = fh.read()
    # Field 2 (comm) may contain spaces; split after its closing paren.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def status_fields(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile, VmHWM (KiB), Threads, context switches."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0])
            elif key == "Threads":
                out[key] = int(value.split()[0])
    return out


def thread_switches(pid: int) -> dict[int, int]:
    """Context switches (voluntary + involuntary) of each live thread."""
    out: dict[int, int] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as fh:
                out[int(task)] = sum(int(line.split()[1]) for line in fh
                                     if line.startswith(("voluntary_ctxt", "nonvoluntary_ctxt")))
        except OSError:
            pass  # the thread ended meanwhile
    return out


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# ---------------------------------------------------------------- helpers


def http_get(port: int, path: str, timeout: float = 30.0) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
        return json.loads(resp.read())


def daemon_status(state: Path, timeout: float = 10.0, request: bytes | None = None) -> dict | None:
    """One status document from the daemon's socket, or None. With no
    request the daemon waits a moment for one and then sends the full report
    of every watch; `b'{"request":"summary"}\n'` asks for the counters only."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(state / "tidings.sock"))
        if request is not None:
            sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        return json.loads(b"".join(chunks))
    except (OSError, ValueError):
        return None
    finally:
        sock.close()


def write_config(tidings: str, work: Path, name: str, port: int, n: int, schedule: str,
                 per_host: int) -> tuple[Path, Path]:
    """`tidings import` for N page URLs, then the daemon tables appended."""
    folder = work / name
    if folder.exists():
        shutil.rmtree(folder)
    state = folder / "state"
    state.mkdir(parents=True)
    urls = folder / "urls.txt"
    urls.write_text("".join(f"http://127.0.0.1:{port}/page/{i}\n" for i in range(n)))
    config = folder / "tidings.toml"
    subprocess.run([tidings, "import", "--urls", str(urls), "--out", str(config)],
                   check=True, stderr=subprocess.DEVNULL)
    text = config.read_text()
    # import writes `[limits] per_host = 8`; the soak wants more in flight.
    text = text.replace("[limits]\nper_host = 8\n", f"[limits]\nper_host = {per_host}\n", 1)
    # Tables after the [[watch]] array are still top-level tables in TOML.
    text += (
        "\n[defaults]\n"
        f"schedule = {json.dumps(schedule)}\n"
        'timezone = "UTC"\n'
        "\n[daemon]\n"
        'max_jitter = "0s"\n'
    )
    config.write_text(text)
    subprocess.run([tidings, "validate", "--config", str(config)], check=True,
                   stdout=subprocess.DEVNULL)
    return config, state


def start_daemon(tidings: str, config: Path, state: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, RUST_LOG=os.environ.get("BENCH_RUST_LOG", "tidings=info"))
    env.pop("NOTIFY_SOCKET", None)
    return subprocess.Popen(
        [tidings, "run", "--config", str(config), "--state", str(state)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env,
    )


def stop_daemon(proc: subprocess.Popen, timeout: float = 60.0) -> dict:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    return {"exit_code": code, "stop_seconds": round(time.monotonic() - started, 3)}


def wait_for(predicate, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None


def count_log(log: Path) -> dict[str, int]:
    counts = {"ERROR": 0, "WARN": 0}
    with log.open(errors="replace") as fh:
        for line in fh:
            for level in counts:
                if f" {level} " in line or line.startswith(level):
                    counts[level] += 1
    return counts


def slope_per_1000(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs, times 1000."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return 1000 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


# ---------------------------------------------------------------- phases


def idle_phase(args, work: Path) -> dict:
    n = args.idle_watches
    http_get(args.port, f"/control/reset?n={n}", timeout=600)
    # Once a day at a whole hour 12 hours from now (UTC): after the first
    # pass nothing is due for hours.
    hour = (dt.datetime.now(dt.timezone.utc).hour + 12) % 24
    config, state = write_config(args.tidings, work, "idle", args.port, n, f"0 {hour} * * *", 8)
    log = work / "idle" / "daemon.log"
    t0 = time.monotonic()
    proc = start_daemon(args.tidings, config, state, log)
    pid = proc.pid
    try:
        def first_pass_done():
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode}; see {log}")
            report = daemon_status(state)
            if report and report["checks"] >= n and report["in_flight"] == 0:
                return report
            return None

        report = wait_for(first_pass_done, timeout=args.first_pass_cap)
        if report is None:
            raise RuntimeError(f"first pass of {n} watches not done within {args.first_pass_cap}s")
        first_pass = time.monotonic() - t0
        cpu_first = cpu_seconds(pid)
        st_first = status_fields(pid)
        # Let the store's 500 ms flusher and any late work settle.
        time.sleep(args.settle)
        samples = []
        cpu0, w0 = cpu_seconds(pid), time.monotonic()
        x0 = thread_switches(pid)
        end = w0 + args.idle_seconds
        while True:
            now = time.monotonic()
            st = status_fields(pid)
            samples.append({"t": round(now - w0, 2), "cpu_s": cpu_seconds(pid), **st})
            if now >= end:
                break
            time.sleep(min(1.0, end - now))
        cpu1, w1 = cpu_seconds(pid), time.monotonic()
        s1 = status_fields(pid)
        x1 = thread_switches(pid)
        fds = fd_count(pid)
        # After the window: make sure the daemon is still healthy and nothing
        # ran during it.
        after = daemon_status(state) or {}
        stop = stop_daemon(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    window = w1 - w0
    rss = [s["VmRSS"] for s in samples]
    # Switches per thread, over the threads alive at both ends of the window
    # (tokio's idle blocking threads exit after 10 s and take their counts).
    switches = sum(c - x0[t] for t, c in x1.items() if t in x0)
    return {
        "watches": n,
        "first_pass_seconds": round(first_pass, 2),
        "first_pass_cpu_seconds": round(cpu_first, 2),
        "first_pass_checks": report["checks"],
        "first_pass_failures": report["failures"],
        "rss_after_first_pass_kib": st_first["VmRSS"],
        "peak_rss_kib": s1["VmHWM"],
        "idle_window_seconds": round(window, 2),
        "idle_cpu_seconds": round(cpu1 - cpu0, 3),
        "idle_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / window, 3),
        "idle_wakeups_per_second": round(switches / window, 2),
        "idle_rss_kib_min": min(rss),
        "idle_rss_kib_max": max(rss),
        "idle_rss_kib_end": rss[-1],
        "idle_rss_anon_kib_end": samples[-1].get("RssAnon"),
        "idle_rss_file_kib_end": samples[-1].get("RssFile"),
        "threads": s1["Threads"],
        "open_fds": fds,
        "checks_during_window": after.get("checks", -1) - report["checks"],
        "stop": stop,
        "log": count_log(log),
        "samples": samples,
    }


def soak_phase(args, work: Path) -> dict:
    n = args.soak_watches
    http_get(args.port, f"/control/reset?n={n}", timeout=600)
    http_get(args.port, "/control/stats?reset=1")
    config, state = write_config(args.tidings, work, "soak", args.port, n, "* * * * * *",
                                 args.soak_per_host)
    log = work / "soak" / "daemon.log"
    proc = start_daemon(args.tidings, config, state, log)
    pid = proc.pid
    samples = []
    bumps = 0
    t0 = time.monotonic()
    last_bump = t0
    report: dict = {}
    try:
        while True:
            time.sleep(args.sample)
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode}; see {log}")
            now = time.monotonic()
            if args.bump_every > 0 and now - last_bump >= args.bump_every:
                http_get(args.port, f"/control/bump?n={n}&fraction={args.bump_fraction}")
                bumps += 1
                last_bump = now
            report = daemon_status(state) or report
            st = status_fields(pid)
            samples.append({
                "t": round(now - t0, 2),
                "checks": report.get("checks", 0),
                "changes": report.get("changes", 0),
                "failures": report.get("failures", 0),
                "cpu_s": cpu_seconds(pid),
                "fds": fd_count(pid),
                **st,
            })
            if report.get("checks", 0) >= args.soak_checks or now - t0 >= args.soak_cap:
                break
        stop = stop_daemon(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    elapsed = samples[-1]["t"]
    server = http_get(args.port, "/control/stats")
    # "Start" is the first sample after the first pass (every watch checked
    # once, so every page has been parsed and stored at least once).
    warm = [s for s in samples if s["checks"] >= n] or samples
    mid = warm[len(warm) // 2]
    xs = [float(s["checks"]) for s in warm]
    ys = [float(s["VmRSS"]) for s in warm]
    half = warm[len(warm) // 2 :]
    return {
        "watches": n,
        "schedule": "* * * * * * (every second)",
        "seconds": elapsed,
        "checks": samples[-1]["checks"],
        "checks_per_second": round(samples[-1]["checks"] / elapsed, 1),
        "changes": samples[-1]["changes"],
        "failures": samples[-1]["failures"],
        "bumps": bumps,
        "cpu_seconds": round(samples[-1]["cpu_s"], 2),
        "cpu_percent_of_one_core": round(100 * samples[-1]["cpu_s"] / elapsed, 1),
        "rss_start_kib": warm[0]["VmRSS"],
        "rss_start_checks": warm[0]["checks"],
        "rss_mid_kib": mid["VmRSS"],
        "rss_mid_checks": mid["checks"],
        "rss_end_kib": warm[-1]["VmRSS"],
        "rss_max_kib": max(s["VmRSS"] for s in samples),
        "peak_rss_kib": samples[-1]["VmHWM"],
        "slope_kib_per_1000_checks": round(slope_per_1000(xs, ys), 1),
        "slope_second_half_kib_per_1000_checks": round(
            slope_per_1000([float(s["checks"]) for s in half], [float(s["VmRSS"]) for s in half]), 1),
        "threads_end": samples[-1]["Threads"],
        "fds_start": warm[0]["fds"],
        "fds_end": samples[-1]["fds"],
        "store_bytes": sum(f.stat().st_size for f in state.rglob("*") if f.is_file()),
        "server": {k: server.get(k) for k in ("requests", "status", "bytes_sent") if k in server},
        "stop": stop,
        "log": count_log(log),
        "samples": samples,
    }


# ---------------------------------------------------------------- report


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def markdown(result: dict) -> str:
    out = []
    idle, soak = result.get("idle"), result.get("soak")
    if idle:
        ok_cpu = idle["idle_cpu_percent_of_one_core"] < 0.5
        ok_rss = idle["idle_rss_kib_max"] < 40 * 1024
        out += [
            f"**Idle, {idle['watches']} watches** (daily schedule, nothing due for hours; "
            f"{idle['idle_window_seconds']:.0f} s window after the first pass):",
            "",
            "| measure | value | target |",
            "| --- | --- | --- |",
            f"| CPU while idle | {idle['idle_cpu_percent_of_one_core']:.3f} % of one core "
            f"({idle['idle_cpu_seconds']:.2f} s in {idle['idle_window_seconds']:.0f} s) | "
            f"< 0.5 % {'✓' if ok_cpu else '✗'} |",
            f"| RSS while idle | {mib(idle['idle_rss_kib_max'])} (anon {mib(idle['idle_rss_anon_kib_end'])}, "
            f"file {mib(idle['idle_rss_file_kib_end'])}) | < 40 MB {'✓' if ok_rss else '✗'} |",
            f"| wake-ups while idle | {idle['idle_wakeups_per_second']} context switches/s | |",
            f"| peak RSS (first pass) | {mib(idle['peak_rss_kib'])} | |",
            f"| first pass | {idle['first_pass_checks']} checks in {idle['first_pass_seconds']} s, "
            f"{idle['first_pass_cpu_seconds']} s CPU, {idle['first_pass_failures']} failures | |",
            f"| threads / open fds | {idle['threads']} / {idle['open_fds']} | |",
            f"| checks during the window | {idle['checks_during_window']} | 0 |",
            f"| SIGTERM to exit | {idle['stop']['stop_seconds']} s, exit {idle['stop']['exit_code']} | |",
            "",
        ]
    if soak:
        a = result["args"]
        changes = (f"{soak['bumps']} bumps of {a['bump_fraction']:.0%} of the pages, one every "
                   f"{a['bump_every']:g} s" if a["bump_every"] > 0 else "no page changes, every fetch a 304")
        out += [
            f"**Soak, {soak['watches']} watches every second** ({changes}):",
            "",
            "| measure | value |",
            "| --- | --- |",
            f"| checks | {soak['checks']} in {soak['seconds']:.0f} s ({soak['checks_per_second']}/s), "
            f"{soak['changes']} changes, {soak['failures']} failures |",
            f"| CPU | {soak['cpu_seconds']} s ({soak['cpu_percent_of_one_core']} % of one core) |",
            f"| RSS at start (after {soak['rss_start_checks']} checks) | {mib(soak['rss_start_kib'])} |",
            f"| RSS in the middle (after {soak['rss_mid_checks']} checks) | {mib(soak['rss_mid_kib'])} |",
            f"| RSS at the end (after {soak['checks']} checks) | {mib(soak['rss_end_kib'])} |",
            f"| RSS max sampled / VmHWM | {mib(soak['rss_max_kib'])} / {mib(soak['peak_rss_kib'])} |",
            f"| RSS slope, whole soak / second half | {soak['slope_kib_per_1000_checks']} / "
            f"{soak['slope_second_half_kib_per_1000_checks']} KiB per 1,000 checks |",
            f"| open fds start / end, threads | {soak['fds_start']} / {soak['fds_end']}, {soak['threads_end']} |",
            f"| store on disk at the end | {soak['store_bytes'] / 1e6:.1f} MB |",
            f"| SIGTERM to exit | {soak['stop']['stop_seconds']} s, exit {soak['stop']['exit_code']} |",
            "",
        ]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tidings", required=True)
    ap.add_argument("--shared", required=True, help="the shared folder (holds bench/pageserver.py)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--port", type=int, default=18181)
    ap.add_argument("--phase", choices=["idle", "soak", "both"], default="both")
    ap.add_argument("--idle-watches", type=int, default=1000)
    ap.add_argument("--idle-seconds", type=float, default=120)
    ap.add_argument("--settle", type=float, default=5)
    ap.add_argument("--first-pass-cap", type=float, default=600)
    ap.add_argument("--soak-watches", type=int, default=100)
    ap.add_argument("--soak-checks", type=int, default=10_000)
    ap.add_argument("--soak-cap", type=float, default=600)
    ap.add_argument("--soak-per-host", type=int, default=16)
    ap.add_argument("--sample", type=float, default=2)
    ap.add_argument("--bump-every", type=float, default=10)
    ap.add_argument("--bump-fraction", type=float, default=0.1)
    ap.add_argument("--json", required=True, help="where the results go")
    args = ap.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    server_log = work / "pageserver.log"
    ready = work / "pageserver.ready"
    ready.unlink(missing_ok=True)
    server = subprocess.Popen(
        [sys.executable, str(Path(args.shared) / "bench" / "pageserver.py"), "--host", "127.0.0.1",
         "--port", str(args.port), "--ready-file", str(ready), "--max-seconds", "3600"],
        stdin=subprocess.DEVNULL, stdout=server_log.open("wb"), stderr=subprocess.STDOUT,
    )
    result: dict = {
        "args": vars(args),
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "version": subprocess.run([args.tidings, "--version"], capture_output=True, text=True).stdout.strip(),
        "cpus": os.cpu_count(),
    }
    try:
        if not wait_for(ready.exists, timeout=30, every=0.1):
            raise RuntimeError(f"page server did not start; see {server_log}")
        if args.phase in ("idle", "both"):
            print(f"idle: {args.idle_watches} watches, first pass then {args.idle_seconds:.0f} s idle…",
                  file=sys.stderr)
            result["idle"] = idle_phase(args, work)
        if args.phase in ("soak", "both"):
            print(f"soak: {args.soak_watches} watches every second until {args.soak_checks} checks "
                  f"(cap {args.soak_cap:.0f} s)…", file=sys.stderr)
            result["soak"] = soak_phase(args, work)
    finally:
        try:
            http_get(args.port, "/control/quit", timeout=5)
        except OSError:
            pass
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
