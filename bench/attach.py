#!/usr/bin/env python3
"""`graft attach` on processes started without graft: how long the borrowed thread is stopped,
how many threads are stopped at all, and the time until the agent answers, at 10, 100 and 1000
threads (two spinning in user code, then one, the rest blocked in read, futex and epoll_wait:
the benchmark program bench/progs/threads.c, run plain). With --base, every attach is also made
by another build's graft in alternation (the same processes' shapes, the same minutes).

    bench/attach.py [--build DIR] [--base DIR] [--reps N]   (default: build-bench; bench/run.sh builds it)

Prints JSON and writes bench/results/attach.json, which bench/report.py renders in
docs/performance.md. Every row is measured in this one run; the ratios compare its rows with
each other (1000 threads against 10), never with figures of another run.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from driver import Proc, machine  # noqa: E402  (the benchmark programs' JSON-lines protocol)

HERE = os.path.dirname(os.path.abspath(__file__))


def blocked_threads_stopped(pid, before):
    """Threads of `pid` blocked in a system call before the attach whose voluntary context switch
    count moved by more than their own wake-ups would explain: none of them ever wakes up, so any
    change means they were stopped (a ptrace stop is a context switch)."""
    moved = 0
    for tid, ctx in before.items():
        try:
            with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
                now = [l for l in f if l.startswith("nonvoluntary_ctxt_switches") or l.startswith("voluntary")]
        except OSError:
            continue
        if tuple(now) != ctx:
            moved += 1
    return moved


def blocked_snapshot(pid):
    snap = {}
    for t in os.listdir("/proc/%d/task" % pid):
        tid = int(t)
        try:
            with open("/proc/%d/task/%d/syscall" % (pid, tid)) as f:
                if f.read().startswith("running"):
                    continue
            with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
                snap[tid] = tuple(l for l in f if l.startswith("nonvoluntary_ctxt_switches") or l.startswith("voluntary"))
        except OSError:
            pass
    return snap


def one(graft, threads_bin, n, spinning):
    p = Proc([threads_bin, "--blocked=%d" % (n - 1 - spinning), "--spin-unpatched=%d" % spinning])  # + main
    try:
        time.sleep(0.2)  # every blocked thread is asleep
        before = blocked_snapshot(p.pid)
        t0 = time.monotonic()
        out = subprocess.run([graft, "attach", str(p.pid), "--json"], capture_output=True, text=True, timeout=120)
        wall_ms = (time.monotonic() - t0) * 1e3
        if out.returncode != 0:
            raise RuntimeError("graft attach failed: " + out.stderr)
        r = json.loads(out.stdout)
        # The borrowed thread (if it was a blocked one) does not count as disturbed by accident.
        before.pop(r["borrowed_tid"], None)
        r["blocked_stopped"] = blocked_threads_stopped(p.pid, before)
        r["blocked"] = len(before)
        r["command_ms"] = wall_ms
        return r
    finally:
        p.close()


PHASES = ("checks", "libc", "stack", "borrow", "detour", "ready")


def row(runs, n, spinning):
    med = statistics.median
    held = [r["held_us"] for r in runs]
    total = [r["total_ms"] for r in runs]
    out = {
        "threads": n, "spinning": spinning, "reps": len(runs),
        "held_us_median": med(held), "held_us_max": max(held),
        "stop_wait_us_median": med(r["stop_wait_us"] for r in runs),
        "stop_wait_us_max": max(r["stop_wait_us"] for r in runs),
        "total_ms_median": med(total), "total_ms_max": max(total),
        "detour_ms_median": med(r["detour_ms"] for r in runs),
        "detour_ms_max": max(r["detour_ms"] for r in runs),
        "command_ms_median": med(r["command_ms"] for r in runs),
        "threads_stopped_max": max(r["threads_tried"] + 1 for r in runs),
        "borrowed_running": sum(r["borrowed"] == "running" for r in runs),
        "blocked_threads": runs[0]["blocked"],
        "blocked_stopped_max": max(r["blocked_stopped"] for r in runs),
    }
    if all("phases_ms" in r for r in runs):
        out["phases_ms_median"] = {k: med(r["phases_ms"][k] for r in runs) for k in PHASES}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build-bench"))
    ap.add_argument("--base", help="another build (bench/compare.sh's build-bench-base/build): every row is "
                    "also measured with its graft, in alternation, and the ratios are this build's over it")
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    graft = os.path.join(build, "bin", "graft")
    threads_bin = os.path.join(build, "bench", "bin", "threads")
    base_graft = os.path.join(os.path.abspath(a.base), "bin", "graft") if a.base else None
    rows, base_rows = [], []
    # Two spinning threads on a two-CPU machine leave no CPU idle: graft and the agent's start-up
    # share the CPUs with them. One spinning thread leaves a CPU for them.
    for spinning in (2, 1):
        for n in (10, 100, 1000):
            runs, base_runs = [], []
            for _ in range(a.reps):
                runs.append(one(graft, threads_bin, n, spinning))
                if base_graft:
                    base_runs.append(one(base_graft, threads_bin, n, spinning))
            rows.append(row(runs, n, spinning))
            msg = "attach: %d threads, %d spinning: held %.0f us (max %.0f), total %.1f ms (max %.1f)" % (
                n, spinning, rows[-1]["held_us_median"], rows[-1]["held_us_max"], rows[-1]["total_ms_median"],
                rows[-1]["total_ms_max"])
            if base_graft:
                base_rows.append(row(base_runs, n, spinning))
                msg += "; base: total %.1f ms" % base_rows[-1]["total_ms_median"]
            print(msg, file=sys.stderr)

    def at(rs, n, spinning):
        return next(r for r in rs if r["threads"] == n and r["spinning"] == spinning)

    ratios = {"total_1000_over_10": at(rows, 1000, 2)["total_ms_median"] / at(rows, 10, 2)["total_ms_median"],
              "held_1000_over_10": at(rows, 1000, 2)["held_us_median"] / at(rows, 10, 2)["held_us_median"],
              "total_2_spinning_over_1_at_1000": at(rows, 1000, 2)["total_ms_median"] /
              at(rows, 1000, 1)["total_ms_median"]}
    res = {"schema": 2, "command": "bench/attach.py" + (" --base " + a.base if a.base else ""),
           "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(build), "rows": rows,
           "ratios": ratios}
    if base_graft:
        res["base"] = {"build": os.path.abspath(a.base), "rows": base_rows}
        res["ratios"]["total_over_base"] = {
            "%d threads, %d spinning" % (r["threads"], r["spinning"]):
            r["total_ms_median"] / at(base_rows, r["threads"], r["spinning"])["total_ms_median"] for r in rows}
    with open(os.path.join(HERE, "results", "attach.json"), "w") as f:
        json.dump(res, f, indent=1)
    json.dump(res, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
