#!/usr/bin/env python3
"""`graft load --all` over many processes started without graft: the time to patch 200
processes (each one attached, then patched, its transition waited for), with 1, 4, 8 and 16
processes handled at a time, and the same load once the agents are in (no attach).

The processes are the benchmark program bench/progs/threads.c, run plain with four threads
blocked in read, futex and epoll_wait (`--blocked=4`); the patch is bench/patches/p_threads.c,
built with `--target` so that it records the program's build-id.

    bench/fleet.py [--build DIR] [--procs N]      (default: build-bench, 200 processes)

Prints JSON and writes bench/results/fleet.json, which bench/report.py renders in
docs/performance.md. Every row is measured in this one run; the ratios compare its rows.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from driver import Proc, machine  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(argv):
    t0 = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    ms = (time.monotonic() - t0) * 1e3
    if out.returncode != 0:
        raise RuntimeError("%s failed: %s%s" % (" ".join(argv), out.stdout[-2000:], out.stderr[-2000:]))
    return ms, json.loads(out.stdout)


def ours(doc, pids, result):
    return sum(1 for p in doc["processes"] if p["pid"] in pids and p["result"] == result)


def one(graft, threads_bin, patch, n, jobs):
    procs = [Proc([threads_bin, "--blocked=4"]) for _ in range(n)]
    pids = {p.pid for p in procs}
    try:
        time.sleep(0.5)  # every blocked thread is asleep
        attach_ms, doc = timed([graft, "load", "--all", patch, "--json", "--jobs", str(jobs)])
        applied = ours(doc, pids, "applied")
        attached = sum(1 for p in doc["processes"] if p["pid"] in pids and p["attached"])
        timed([graft, "disable", "--all", "p_threads", "--wait", "--json", "--jobs", str(jobs)])
        timed([graft, "unload", "--all", "p_threads", "--json", "--jobs", str(jobs)])
        again_ms, doc2 = timed([graft, "load", "--all", patch, "--json", "--jobs", str(jobs)])
        timed([graft, "disable", "--all", "p_threads", "--wait", "--json", "--jobs", str(jobs)])
        timed([graft, "unload", "--all", "p_threads", "--json", "--jobs", str(jobs)])
        row = {"processes": n, "jobs": jobs, "applied": applied, "attached": attached,
               "failed": ours(doc, pids, "failed") + ours(doc2, pids, "failed"),
               "attach_and_load_ms": attach_ms, "load_with_agent_ms": again_ms,
               "attach_and_load_per_process_ms": attach_ms / n, "load_with_agent_per_process_ms": again_ms / n}
        print("fleet: %d processes, %d at a time: attach+load %.0f ms, load %.0f ms" % (
            n, jobs, attach_ms, again_ms), file=sys.stderr)
        return row
    finally:
        for p in procs:
            p.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build-bench"))
    ap.add_argument("--procs", type=int, default=200)
    ap.add_argument("--base", help="another build (bench/compare.sh's build-bench-base/build): each row is also "
                    "measured with its graft right after, and the ratios are this build's over it")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    graft = os.path.join(build, "bin", "graft")
    threads_bin = os.path.join(build, "bench", "bin", "threads")
    patch = os.path.join(build, "bench", "patches", "p_threads.so")
    base_graft = os.path.join(os.path.abspath(a.base), "bin", "graft") if a.base else None
    rows, base_rows = [], []
    for jobs in (1, 4, 8, 16):
        rows.append(one(graft, threads_bin, patch, a.procs, jobs))
        if base_graft:  # the same program and patch, the other build's graft and agent
            base_rows.append(one(base_graft, threads_bin, patch, a.procs, jobs))
    by = {r["jobs"]: r for r in rows}
    res = {"schema": 1, "command": "bench/fleet.py", "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
           "machine": machine(build), "rows": rows,
           "ratios": {"attach_and_load_8_over_1": by[8]["attach_and_load_ms"] / by[1]["attach_and_load_ms"],
                      "load_with_agent_8_over_1": by[8]["load_with_agent_ms"] / by[1]["load_with_agent_ms"],
                      "attach_and_load_over_load_with_agent_at_8":
                          by[8]["attach_and_load_ms"] / by[8]["load_with_agent_ms"]}}
    if base_graft:
        res["command"] += " --base " + a.base
        res["base"] = {"build": os.path.abspath(a.base), "rows": base_rows}
        res["ratios"]["over_base"] = {
            "%d at a time" % r["jobs"]: {"attach_and_load": r["attach_and_load_ms"] / b["attach_and_load_ms"],
                                         "load_with_agent": r["load_with_agent_ms"] / b["load_with_agent_ms"]}
            for r, b in zip(rows, base_rows)}
    with open(os.path.join(HERE, "results", "fleet.json"), "w") as f:
        json.dump(res, f, indent=1)
    json.dump(res, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
