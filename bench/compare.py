#!/usr/bin/env python3
"""Two builds of graft side by side in one run (bench/compare.sh): the call-cost and transition
rows of bench/run.sh, each measured on a process of build A and one of build B in alternation,
so that the machine's drift falls on both alike. Used to show that a change which should not
change performance did not (e.g. a refactor against the commit before it).

    compare.py --a BUILD_A --b BUILD_B [--label-a NAME] [--label-b NAME] [--rounds N]

Prints JSON: per row, each build's median and the ratio B/A (call costs also as the difference
in ns of the per-round deltas against a direct call).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from driver import Graft, GraftError, Proc, PROCS, log, quantile, summary  # noqa: E402


def artifacts(build):
    build = os.path.abspath(build)
    return {"graft": Graft(os.path.join(build, "bin", "graft")), "bin": os.path.join(build, "bench", "bin"),
            "patches": os.path.join(build, "bench", "patches")}


def callcost_rows(builds, rounds, reps, loop_us):
    """Per build, one callcost process with p_done loaded (a completed patch) and p_trans held in
    transition (its blocker and held thread, as in driver.s_callcost); each round measures every
    row in each process, the order of the builds alternating round by round."""
    procs = {}
    for k, b in builds.items():
        p = Proc([b["bin"] + "/callcost"], b["graft"].exe, "callcost-" + k)
        b["graft"].cli("load", p.pid, b["patches"] + "/p_done.so")
        b["graft"].cli("load", p.pid, b["patches"] + "/p_trans.so", "--no-wait")
        st = b["graft"].req(p.pid, {"op": "status"})
        if (st.get("transition") or {}).get("patch") != "p_trans":
            raise GraftError("build %s: p_trans is not in transition: %s" % (k, st.get("transition")))
        procs[k] = p
    rows = [("completed", "measure done", 2), ("transition_switched", "measure trans", 2),
            ("transition_not_switched", "measure_held trans", 1)]
    deltas = {k: {r[0]: [] for r in rows} for k in builds}
    order = list(builds)
    for i in range(rounds):
        for k in (order if i % 2 == 0 else order[::-1]):
            for name, cmd, expect in rows:
                r = procs[k].cmd("%s %d %g" % (cmd, reps, loop_us))
                if "error" in r or abs(r["check"] - expect) > 1e-6:
                    raise GraftError("build %s, %s: %s" % (k, name, r))
                deltas[k][name].append(r["delta_ns"])
    for k, p in procs.items():
        p.close()
    out = {}
    for name, _, _ in rows:
        a, b = (deltas[k][name] for k in order)
        out[name] = {order[0]: summary(a), order[1]: summary(b),
                     "difference_ns_b_minus_a": round(quantile(b, 0.5) - quantile(a, 0.5), 3)}
        log("  %-26s %s %+.2f ns   %s %+.2f ns   (B-A %+.2f ns)" % (
            name, order[0], quantile(a, 0.5), order[1], quantile(b, 0.5), out[name]["difference_ns_b_minus_a"]))
    return out


def transition_rows(builds, threads, reps, timeout=60):
    """Per build, one `threads` process with `threads` threads blocked at depth 10: patched and
    unpatched in alternation (the build that goes first alternates too), straight on the control
    socket; the time from the load request's answer ("started") to the end of the transition, and
    for the disable, from its request (its first pass runs before it answers) to the end."""
    procs = {}
    for k, b in builds.items():
        procs[k] = Proc([b["bin"] + "/threads", "--blocked=%d" % threads, "--depth=10"], b["graft"].exe,
                        "threads-" + k)
    ms = {k: {"patch": [], "unpatch": []} for k in builds}
    order = list(builds)
    for i in range(reps):
        for k in (order if i % 2 == 0 else order[::-1]):
            g, pid = builds[k]["graft"], procs[k].pid
            so = builds[k]["patches"] + "/p_threads.so"
            g.req(pid, {"op": "load", "path": so})
            t1 = time.monotonic()
            t2, _, _ = g.wait_transition(pid, timeout)
            ms[k]["patch"].append((t2 - t1) * 1e3)
            t1 = time.monotonic()  # a disable runs its first pass before it answers
            g.req(pid, {"op": "disable", "name": "p_threads"})
            t2, _, _ = g.wait_transition(pid, timeout)
            ms[k]["unpatch"].append((t2 - t1) * 1e3)
            g.req(pid, {"op": "unload", "name": "p_threads"})
    for p in procs.values():
        p.close()
    out = {"threads": threads, "depth": 10, "reps": reps}
    for row in ("patch", "unpatch"):
        a, b = (ms[k][row] for k in order)
        out[row + "_ms"] = {order[0]: summary(a), order[1]: summary(b),
                            "ratio_b_over_a": round(quantile(b, 0.5) / quantile(a, 0.5), 3)}
        log("  %d blocked threads, %-8s %s %.1f ms   %s %.1f ms   (B/A %.2f)" % (
            threads, row, order[0], quantile(a, 0.5), order[1], quantile(b, 0.5), out[row + "_ms"]["ratio_b_over_a"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="build directory A (e.g. the commit before)")
    ap.add_argument("--b", required=True, help="build directory B (e.g. this tree)")
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--rounds", type=int, default=60, help="call-cost rounds (each: every row, both builds)")
    ap.add_argument("--transition-reps", type=int, default=40)
    ap.add_argument("--threads", default="100,1000", help="blocked threads, comma-separated")
    a = ap.parse_args()
    builds = {a.label_a: artifacts(a.a), a.label_b: artifacts(a.b)}
    res = {"a": {"label": a.label_a, "build": os.path.abspath(a.a)},
           "b": {"label": a.label_b, "build": os.path.abspath(a.b)},
           "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    try:
        log("call cost (delta against a direct call in the same loop rotation)")
        res["callcost"] = callcost_rows(builds, a.rounds, 41, 300)
        res["transition"] = []
        for n in [int(x) for x in a.threads.split(",") if x]:
            log("transition, %d blocked threads" % n)
            res["transition"].append(transition_rows(builds, n, a.transition_reps))
    finally:
        for p in list(PROCS):
            p.close()
    res["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    json.dump(res, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
