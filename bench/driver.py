#!/usr/bin/env python3
"""graft's benchmark suite: the driver (run through bench/run.sh).

Starts the benchmark programs under `graft run`, patches them with the real `graft` command
between measurement phases, and collects what the programs measure. Every comparison is made
side by side in the same run: a direct call against a patched call in the same loop rotation,
a patched process against an identical decoy process patched in the same way, etc.

    driver.py --build BUILD_DIR [--out FILE] [--quick] [--only SECTIONS]

Writes the results as JSON (bench/results/latest.json by default), prints them on stdout, then
runs report.py (plots + docs/performance.md). Progress goes to stderr.
"""
import argparse
import array
import json
import math
import os
import platform
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def log(*a):
    print("[bench %6.1fs]" % (time.monotonic() - T_START), *a, file=sys.stderr, flush=True)


T_START = time.monotonic()


# ---- statistics ----------------------------------------------------------------------------------

def quantile(v, q):
    v = sorted(v)
    if not v:
        return None
    pos = q * (len(v) - 1)
    i = int(math.floor(pos))
    if i + 1 < len(v):
        return v[i] + (v[i + 1] - v[i]) * (pos - i)
    return v[i]


def summary(v, digits=3):
    if not v:
        return None
    r = lambda x: round(x, digits)
    return {"median": r(quantile(v, 0.5)), "p10": r(quantile(v, 0.1)), "p90": r(quantile(v, 0.9)),
            "min": r(min(v)), "max": r(max(v)), "n": len(v)}


def loglog_slope(xs, ys):
    """Least-squares exponent b of y = a * x^b."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def linear_fit(xs, ys):
    """Least-squares y = a + b x; returns (a, b)."""
    n = len(xs)
    if n < 2:
        return None, None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None, None
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


# ---- talking to graft ---------------------------------------------------------------------------

class GraftError(Exception):
    pass


class Graft:
    def __init__(self, exe):
        self.exe = exe

    def cli(self, *args, check=True, timeout=120):
        """Runs the real `graft` command; returns (stdout, seconds)."""
        t0 = time.monotonic()
        r = subprocess.run([self.exe, *[str(a) for a in args]], capture_output=True, text=True, timeout=timeout)
        dt = time.monotonic() - t0
        if check and r.returncode != 0:
            raise GraftError("graft %s: exit %d: %s" % (" ".join(map(str, args)), r.returncode, r.stderr.strip()))
        return r.stdout, dt

    def req(self, pid, obj, timeout=60):
        """One request on the agent's control socket (the protocol of src/common/protocol.hpp),
        without the cost of starting the `graft` command."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        mem = -1
        try:
            s.connect("\0graft/%d" % pid)
            # The agent serves only a client that proves it may ptrace the process: a descriptor
            # of the process's memory goes with the request's first bytes (as src/cli/client.cpp).
            mem = os.open("/proc/%d/mem" % pid, os.O_RDONLY | os.O_CLOEXEC)
            data = (json.dumps(obj) + "\n").encode()
            n = s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [mem]))])
            if n < len(data):
                s.sendall(data[n:])
            buf = b""
            while not buf.endswith(b"\n"):
                d = s.recv(1 << 16)
                if not d:
                    break
                buf += d
        finally:
            s.close()
            if mem >= 0:
                os.close(mem)
        ans = json.loads(buf)
        if not ans.get("ok"):
            raise GraftError("agent: %s: %s" % (obj.get("op"), ans.get("error")))
        return ans

    def wait_transition(self, pid, timeout=60, interval=0.0005):
        """Polls the agent until no transition runs. Returns (monotonic time seen idle, polls,
        first pending list)."""
        end = time.monotonic() + timeout
        polls, first = 0, None
        while True:
            st = self.req(pid, {"op": "status"})
            now = time.monotonic()
            polls += 1
            tr = st.get("transition")
            if tr is None:
                return now, polls, first
            if first is None:
                first = tr.get("pending", [])
            if now > end:
                raise GraftError("transition of '%s' still pending after %.0f s: %s" % (
                    tr.get("patch"), timeout, [p.get("reason") for p in tr.get("pending", [])][:5]))
            time.sleep(interval)


# ---- benchmark processes ----------------------------------------------------------------------

class Proc:
    """A benchmark program, under `graft run` (graft=exe) or plain. Speaks JSON lines."""

    def __init__(self, argv, graft=None, name=None, env=None):
        cmd = ([graft, "run"] if graft else []) + argv
        self.name = name or os.path.basename(argv[0])
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                  env=dict(os.environ, **env) if env else None)
        self.q = queue.Queue()
        threading.Thread(target=self._reader, daemon=True).start()
        self.ready = self.line(timeout=120)
        if not self.ready.get("ready"):
            raise GraftError("%s did not start: %s" % (self.name, self.ready))
        self.pid = self.ready["pid"]
        PROCS.append(self)

    def _reader(self):
        for line in self.p.stdout:
            self.q.put(line)
        self.q.put(None)

    def line(self, timeout=300):
        try:
            l = self.q.get(timeout=timeout)
        except queue.Empty:
            raise GraftError("%s: no answer in %d s" % (self.name, timeout))
        if l is None:
            raise GraftError("%s exited (status %s)" % (self.name, self.p.wait()))
        return json.loads(l)

    def cmd(self, text, timeout=300):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()
        return self.line(timeout)

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("quit\n")
                self.p.stdin.flush()
                self.p.wait(timeout=10)
            except Exception:
                pass
        if self.p.poll() is None:
            self.p.kill()  # only this process, which we started
            self.p.wait()
        if self in PROCS:
            PROCS.remove(self)


PROCS = []


def smaps(pid):
    """Memory of a process (kB) from /proc/PID/smaps_rollup and status."""
    d = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for l in f:
            p = l.split()
            if len(p) >= 3 and p[2] == "kB":
                d[p[0].rstrip(":")] = int(p[1])
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("Threads:"):
                d["Threads"] = int(l.split()[1])
    return {k: d.get(k) for k in ("Rss", "Pss", "Anonymous", "Private_Dirty", "Threads")}


def worker_tid(pid):
    """The agent's worker thread (named graft-worker), or None."""
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                if open("/proc/%d/task/%s/comm" % (pid, t)).read().strip() == "graft-worker":
                    return int(t)
            except OSError:
                pass
    except OSError:
        pass
    return None


def thread_cpu_ns(pid, tid):
    """CPU time of one thread in ns (/proc/.../schedstat: time on CPU)."""
    try:
        return int(open("/proc/%d/task/%d/schedstat" % (pid, tid)).read().split()[0])
    except (OSError, ValueError, TypeError):
        return None


# ---- 1. call cost -------------------------------------------------------------------------------

def s_callcost(g, art, cfg):
    reps, loop_us = cfg["cc_reps"], cfg["cc_loop_us"]
    p = Proc([art["bin"] + "/callcost"], g.exe, "callcost")
    pid = p.pid
    out = {"loop_us": loop_us, "reps": reps, "pid_threads": p.ready}
    checks = []

    def M(key, name, expect, held=False):
        r = p.cmd("%s %s %d %g" % ("measure_held" if held else "measure", name, reps, loop_us))
        if "error" in r:
            raise GraftError("callcost: %s" % r["error"])
        r["expected_check"] = expect
        r["valid"] = abs(r["check"] - expect) < 1e-6 and abs(r["check_base"] - 1) < 1e-6
        if not r["valid"]:
            checks.append("%s: ran the version returning x+%g, expected x+%g" % (key, r["check"], expect))
        out[key] = r
        log("  %-34s direct %6.2f ns  variant %6.2f ns  delta %+6.2f ns [%+.2f, %+.2f]" % (
            key, r["base_ns"], r["var_ns"], r["delta_ns"], r["delta_p10"], r["delta_p90"]))
        return r

    M("aa_direct_vs_direct", "direct", 1)
    M("gate_closed", "gate", 1)
    M("ordinary_entry_unpatched", "odone", 1)
    M("ordinary_entry_lib_unpatched", "lodone", 1)
    M("gate_layout_lib_unpatched", "lgate", 1)
    M("jump_layout_lib_unpatched", "ljump", 1)
    M("jump_layout_unpatched", "jdone", 1)
    M("ref_jmp_rel32", "jmp5", 2)
    M("ref_graft_entry_by_hand", "g2", 2)
    M("kernel_ref", "kref", 2)
    p.cmd("kref_transition 1")
    M("kernel_ref_in_transition", "kref", 2)
    p.cmd("kref_transition 0")

    _, t = g.cli("load", pid, art["patches"] + "/p_done.so")
    M("completed", "done", 2)
    M("ordinary_entry_completed", "odone", 2)
    M("ordinary_entry_lib_completed", "lodone", 2)
    M("gate_layout_lib_completed", "lgate", 2)
    M("jump_layout_lib_completed", "ljump", 2)
    M("jump_layout_completed", "jdone", 2)
    for k in range(1, 6):
        g.cli("load", pid, art["patches"] + "/p_stack%d.so" % k)
        if k in (1, 2, 5):
            M("stacked_%d" % k, "stack", 10 + k)

    # A transition kept pending: the blocker sleeps inside blocker_fn(), the held thread lives in
    # hold_frame(); both are functions of p_trans.
    g.cli("load", pid, art["patches"] + "/p_trans.so", "--no-wait")
    st = g.req(pid, {"op": "status"})
    tr = st.get("transition") or {}
    pend = {t["tid"]: t["reason"] for t in tr.get("pending", [])}
    out["pending_at_start"] = [{"tid": k, "reason": v} for k, v in pend.items()]
    if tr.get("patch") != "p_trans" or p.ready["tid_blocker"] not in pend:
        checks.append("p_trans's transition was not pending as intended: %s" % tr)
    M("transition_switched", "trans", 2)
    M("transition_not_switched", "trans", 1, held=True)
    M("transition_lib_switched", "ltrans", 2)
    M("transition_lib_not_switched", "ltrans", 1, held=True)
    M("transition_gate_layout_lib_switched", "lgtrans", 2)
    M("transition_gate_layout_lib_not_switched", "lgtrans", 1, held=True)
    M("transition_jump_layout_lib_switched", "ljtrans", 2)
    M("transition_jump_layout_lib_not_switched", "ljtrans", 1, held=True)
    M("completed_while_other_in_transition", "done", 2)
    thr, _ = g.cli("threads", pid, "--json")
    states = {t["tid"]: t["patch_state"] for t in json.loads(thr)}
    out["thread_states_during_transition"] = {
        "main (measures switched)": states.get(p.ready["tid_main"]),
        "held (measures not switched)": states.get(p.ready["tid_held"]),
        "blocker": states.get(p.ready["tid_blocker"])}
    st = g.req(pid, {"op": "status"})
    if (st.get("transition") or {}).get("patch") != "p_trans":
        checks.append("p_trans's transition ended during the measurement")
    g.cli("disable", pid, "p_trans", "--wait")
    g.cli("unload", pid, "p_trans")
    M("after_unpatch", "trans", 1)
    p.close()
    out["check_failures"] = checks
    return out


# ---- 2. transition time -------------------------------------------------------------------------

def transition_config(g, art, cfg, kind, n, depth, reps):
    spin = cfg["spinners"]
    args = ["--blocked=%d" % n, "--depth=%d" % depth]
    if kind == "spin_unpatched":
        args.append("--spin-unpatched=%d" % spin)
    elif kind == "spin_patched":
        args.append("--spin-patched=%d" % spin)
    t0 = time.monotonic()
    p = Proc([art["bin"] + "/threads", *args], g.exe, "threads")
    start_s = time.monotonic() - t0
    pid = p.pid
    so = art["patches"] + "/p_threads.so"
    mem_ready = smaps(pid)
    res = {"kind": kind, "threads": n + (spin if kind != "blocked" else 0), "blocked": n, "depth": depth,
           "spawn_s": round(start_s, 3), "mem_ready": mem_ready}
    wtid = worker_tid(pid)
    cli_patch, cli_unpatch, cli_cmd, cli_after = [], [], [], []
    worker_patch_cpu = []
    ag_patch, ag_unpatch, ag_load_req = [], [], []
    first_pending = []
    floor = []
    for i in range(reps):
        # the `graft` command, as a user runs it
        w0 = thread_cpu_ns(pid, wtid)
        t0 = time.monotonic()
        g.cli("load", pid, so, "--no-wait")
        t1 = time.monotonic()
        t2, polls, first = g.wait_transition(pid, cfg["transition_timeout"])
        w1 = thread_cpu_ns(pid, wtid)
        if w0 is not None and w1 is not None:
            worker_patch_cpu.append((w1 - w0) / 1e6)
        cli_patch.append((t2 - t0) * 1e3)
        cli_cmd.append((t1 - t0) * 1e3)
        cli_after.append((t2 - t1) * 1e3)
        if first:
            first_pending.append(len(first))
        t0 = time.monotonic()
        g.cli("disable", pid, "p_threads")
        t2, _, _ = g.wait_transition(pid, cfg["transition_timeout"])
        cli_unpatch.append((t2 - t0) * 1e3)
        g.cli("unload", pid, "p_threads")
        # the same requests straight on the control socket: the agent's part alone
        t0 = time.monotonic()
        g.req(pid, {"op": "load", "path": so})
        t1 = time.monotonic()
        t2, _, _ = g.wait_transition(pid, cfg["transition_timeout"])
        ag_patch.append((t2 - t0) * 1e3)
        ag_load_req.append((t1 - t0) * 1e3)
        t0 = time.monotonic()
        g.req(pid, {"op": "disable", "name": "p_threads"})
        t2, _, _ = g.wait_transition(pid, cfg["transition_timeout"])
        ag_unpatch.append((t2 - t0) * 1e3)
        g.req(pid, {"op": "unload", "name": "p_threads"})
        _, dt = g.cli("status", pid)
        floor.append(dt * 1e3)
    res.update({
        "cli_patch_total_ms": summary(cli_patch), "cli_load_cmd_ms": summary(cli_cmd),
        "cli_after_return_ms": summary(cli_after), "cli_unpatch_total_ms": summary(cli_unpatch),
        "agent_patch_ms": summary(ag_patch), "agent_load_request_ms": summary(ag_load_req),
        "agent_unpatch_ms": summary(ag_unpatch), "cli_floor_status_ms": summary(floor),
        "pending_at_first_poll": summary(first_pending) if first_pending else None,
        "worker_cpu_patch_ms": summary(worker_patch_cpu) if worker_patch_cpu else None,
        "mem_after": smaps(pid)})
    p.close()
    log("  %-15s N=%-6d depth=%-3d patch: cli %8.1f ms (cmd %.1f + after %.1f)  agent %8.1f ms  unpatch %8.1f ms  worker CPU %s ms" % (
        kind, n, depth, res["cli_patch_total_ms"]["median"], res["cli_load_cmd_ms"]["median"],
        res["cli_after_return_ms"]["median"], res["agent_patch_ms"]["median"], res["cli_unpatch_total_ms"]["median"],
        "%.1f" % res["worker_cpu_patch_ms"]["median"] if res["worker_cpu_patch_ms"] else "?"))
    return res


def read_ahead_ab(g, art, cfg):
    """The read-ahead helper (src/agent/proc/read_ahead.hpp) on and off, side by side: two identical
    processes with 1000 blocked threads, the second with GRAFT_READ_AHEAD=off, patched and
    unpatched in alternation (which goes first alternates too), straight on the control socket;
    the time from the load request's answer ("started") to the end of the transition."""
    n = cfg["read_ahead_threads"]
    so = art["patches"] + "/p_threads.so"
    procs = {}
    try:
        for mode in ("on", "off"):
            procs[mode] = Proc([art["bin"] + "/threads", "--blocked=%d" % n, "--depth=10"], g.exe,
                               "threads-ra-" + mode, env=None if mode == "on" else {"GRAFT_READ_AHEAD": "off"})
        ms = {"on": [], "off": []}
        for i in range(cfg["read_ahead_reps"]):
            for mode in (("on", "off") if i % 2 == 0 else ("off", "on")):
                pid = procs[mode].pid
                g.req(pid, {"op": "load", "path": so})
                t1 = time.monotonic()
                t2, _, _ = g.wait_transition(pid, cfg["transition_timeout"])
                ms[mode].append((t2 - t1) * 1e3)
                g.req(pid, {"op": "disable", "name": "p_threads"})
                g.wait_transition(pid, cfg["transition_timeout"])
                g.req(pid, {"op": "unload", "name": "p_threads"})
        st = g.req(procs["on"].pid, {"op": "status"})
        ra = st.get("read_ahead", {})
        out = {"threads": n, "depth": 10, "reps": cfg["read_ahead_reps"],
               "on_ms": summary(ms["on"]), "off_ms": summary(ms["off"]),
               "ratio_on_off": round(quantile(ms["on"], 0.5) / quantile(ms["off"], 0.5), 3),
               "helper_passes": ra.get("passes"), "helper_threads": ra.get("threads"),
               "passes_threads_looked_at_note": "threads whose first reads the helper did, over all passes of "
                                                "the 'on' process (load and disable)"}
        log("  read-ahead at %d blocked threads: on %.1f ms, off %.1f ms (ratio %.2f)" % (
            n, out["on_ms"]["median"], out["off_ms"]["median"], out["ratio_on_off"]))
        return out
    finally:
        for p in procs.values():
            p.close()


def frame_pointer_ab(g, art, cfg):
    """Blocked threads in code built with and without frame pointers, side by side: two processes
    of the same program (bench/progs/threads.c, 1000 threads blocked 10 frames deep), the second
    built with -fno-omit-frame-pointer, patched and unpatched in alternation (which goes first
    alternates too), straight on the control socket; the time from the load request's answer to the
    end of the transition, and how many times a thread was held by the transition signal."""
    n = cfg["read_ahead_threads"]
    procs = {}
    try:
        for mode, prog in (("omit", "threads"), ("fp", "threads_fp")):
            procs[mode] = Proc([art["bin"] + "/" + prog, "--blocked=%d" % n, "--depth=10"], g.exe, prog)
        ms = {"omit": [], "fp": []}
        signals = {"omit": 0, "fp": 0}
        for i in range(cfg["read_ahead_reps"]):
            for mode in (("omit", "fp") if i % 2 == 0 else ("fp", "omit")):
                pid = procs[mode].pid
                name = "p_threads" if mode == "omit" else "p_threads_fp"
                before = g.req(pid, {"op": "status"})["holds"]["signal"]["count"]
                g.req(pid, {"op": "load", "path": art["patches"] + "/" + name + ".so"})
                t1 = time.monotonic()
                t2, _, _ = g.wait_transition(pid, cfg["transition_timeout"])
                ms[mode].append((t2 - t1) * 1e3)
                signals[mode] += g.req(pid, {"op": "status"})["holds"]["signal"]["count"] - before
                g.req(pid, {"op": "disable", "name": name})
                g.wait_transition(pid, cfg["transition_timeout"])
                g.req(pid, {"op": "unload", "name": name})
        out = {"threads": n, "depth": 10, "reps": cfg["read_ahead_reps"],
               "omit_ms": summary(ms["omit"]), "fp_ms": summary(ms["fp"]),
               "ratio_fp_omit": round(quantile(ms["fp"], 0.5) / quantile(ms["omit"], 0.5), 3),
               "signals_omit": signals["omit"], "signals_fp": signals["fp"]}
        log("  frame pointers at %d blocked threads: %.1f ms, without %.1f ms (ratio %.2f); signals %d / %d" % (
            n, out["fp_ms"]["median"], out["omit_ms"]["median"], out["ratio_fp_omit"], signals["fp"],
            signals["omit"]))
        return out
    finally:
        for p in procs.values():
            p.close()


def s_transition(g, art, cfg):
    out = {"spinners": cfg["spinners"], "configs": []}
    try:
        out["frame_pointer"] = frame_pointer_ab(g, art, cfg)
    except Exception as e:
        log("  frame-pointer comparison failed: %s" % e)
        out["frame_pointer"] = {"error": str(e)}
    try:
        out["read_ahead"] = read_ahead_ab(g, art, cfg)
    except Exception as e:
        log("  read-ahead comparison failed: %s" % e)
        out["read_ahead"] = {"error": str(e)}
    for kind, depth, ns in cfg["transition_matrix"]:
        for n in ns:
            reps = cfg["transition_reps"] if n < 10000 else cfg["transition_reps_10k"]
            try:
                out["configs"].append(transition_config(g, art, cfg, kind, n, depth, reps))
            except Exception as e:  # record and go on with the next configuration
                log("  %s N=%d depth=%d failed: %s" % (kind, n, depth, e))
                out["configs"].append({"kind": kind, "threads": n, "depth": depth, "error": str(e)})
                for p in list(PROCS):
                    p.close()
    return out


# ---- 3a. disturbance: how long is one thread held -----------------------------------------------

def interval_stats(windows, which):
    """Gaps of the gap thread inside the given kind of intervals ("patching": transitions of this
    process, "control": transitions of the decoy). windows: [(events, [(mode, a_ns, b_ns)])].
    Each gap (end time t, wall, cpu) is assigned to the interval it overlaps, if any."""
    per, gaps, total = [], [], 0.0
    for events, ivs in windows:
        ivs = sorted((a, b) for m, a, b in ivs if m == which)
        total += sum(b - a for a, b in ivs)
        j = 0
        cur = [[0, 0, 0.0] for _ in ivs]  # max wall, max cpu, sum cpu
        for t, wall, cpu in events:  # events are in time order
            while j < len(ivs) and ivs[j][1] < t - wall:
                j += 1
            if j < len(ivs) and t >= ivs[j][0]:
                c = cur[j]
                c[0] = max(c[0], wall)
                c[1] = max(c[1], cpu)
                c[2] += cpu
                gaps.append(cpu)
        per += [(b - a, c[0], c[1], c[2]) for (a, b), c in zip(ivs, cur)]
    return per, gaps, total / 1e9


def agent_holds(before, after):
    """The agent's own account of how long it held a thread (src/agent/service/hold_stats.hpp), between
    two status answers: per kind, how many holds, their mean and the longest (since the process
    started: the measured process is started for this section)."""
    out = {}
    for k, a in after.items():
        b = before.get(k, {"count": 0, "total_us": 0.0})
        n = a["count"] - b["count"]
        hb = {str(e): c for e, c in b.get("histogram_us", [])}
        hist = [[e, c - hb.get(str(e), 0)] for e, c in a.get("histogram_us", [])]
        out[k] = {"count": n, "mean_us": round((a["total_us"] - b["total_us"]) / n, 2) if n else None,
                  "max_us": round(a["max_us"], 1), "histogram_us": hist,
                  "over_50us": sum(c for e, c in hist if e is None or e > 50)}
    return out


def s_disturbance(g, art, cfg):
    """How long one running thread is held during a transition. The driver runs load (waiting) /
    disable (waiting) / unload cycles without pause, alternating cycle by cycle between this
    process and an identical decoy process, and records when each transition ran. Transitions of
    the decoy are the control: same machine, same moment, same `graft` commands, nothing done to
    this process. Interleaving cycle by cycle cancels the slow changes of the background load.
    Figures are normalised by time spent in transitions, since this process's transitions can
    last longer than the decoy's (the spinning thread has to be signalled)."""
    so = art["patches"] + "/p_threads.so"
    blocked = cfg["dist_blocked"]
    out = {"blocked_threads": blocked, "window_s": cfg["dist_window_s"], "windows": cfg["dist_windows"], "kinds": {}}
    for kind in ("unpatched", "patched"):
        meas = Proc([art["bin"] + "/threads", "--blocked=%d" % blocked, "--gap-%s=1" % kind], g.exe, "threads-gap")
        decoy = Proc([art["bin"] + "/threads", "--blocked=%d" % blocked], g.exe, "threads-decoy")
        meas.cmd("window")  # start the first window
        holds0 = g.req(meas.pid, {"op": "status"}).get("holds", {})
        wins, cycles = [], {"patching": 0, "control": 0}
        for wi in range(cfg["dist_windows"]):
            ivs = []
            end = time.monotonic() + cfg["dist_window_s"]
            i = 0
            while time.monotonic() < end:
                mode = "patching" if i % 2 == 0 else "control"
                target = meas if mode == "patching" else decoy
                t0 = time.monotonic()
                g.cli("load", target.pid, so)
                t1 = time.monotonic()
                g.cli("disable", target.pid, "p_threads", "--wait")
                t2 = time.monotonic()
                g.cli("unload", target.pid, "p_threads")
                ivs += [(mode, t0 * 1e9, t1 * 1e9), (mode, t1 * 1e9, t2 * 1e9)]
                cycles[mode] += 1
                i += 1
            w = meas.cmd("window")["gaps"][0]
            if w["lost"]:
                log("  gap thread %s: %d gap events lost (buffer full)" % (kind, w["lost"]))
            wins.append((w["events"], ivs))
        sc = meas.cmd("sigcost 3000").get("sigcost")
        log("  gap thread %-9s the kernel's signal round trip (no-op handler): %s" % (kind, sc))
        res = {"cycles": cycles, "kernel_signal": sc, "agent_holds": agent_holds(holds0, g.req(meas.pid, {"op": "status"}).get("holds", {}))}
        for mode in ("patching", "control"):
            per, gaps, secs = interval_stats(wins, mode)
            n = len(per)
            lost = [x[3] for x in per]
            dur = [x[0] for x in per]
            tot_lost, tot_dur = sum(lost), sum(dur)
            frac = tot_lost / tot_dur if tot_dur else 0.0  # ns of CPU lost per ns of transition
            # standard error of the ratio estimator
            md = tot_dur / n if n else 1
            se = (math.sqrt(sum((l - frac * d) ** 2 for l, d in zip(lost, dur)) / max(1, n - 1)) / md / math.sqrt(n)) if n > 1 else 0
            big = sum(1 for c in gaps if c > 50000)
            res[mode] = {
                "transitions": n, "seconds": round(secs, 3),
                "transition_ms": summary([d / 1e6 for d in dur], 2),
                "cpu_lost_us_per_ms": round(frac * 1e3, 3), "cpu_lost_us_per_ms_se": round(se * 1e3, 3),
                "gaps_over_50us": big, "gaps_over_50us_per_s": round(big / secs, 3) if secs else None,
                "max_cpu_gap_us": round(max(gaps, default=0) / 1e3, 1),
                "max_wall_gap_us": round(max((x[1] for x in per), default=0) / 1e3, 1),
                "per_transition_max_cpu_gap_us": summary([x[2] / 1e3 for x in per], 1),
                # gaps per second of transition longer than x (x in us), for the plot
                "gap_rate_ccdf": [[x, round(sum(1 for c in gaps if c > x * 1e3) / secs, 3)]
                                  for x in (2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000,
                                            1500, 2000, 3000, 5000)] if secs else [],
            }
        p, c = res["patching"], res["control"]
        mean_ms = p["seconds"] * 1e3 / max(1, p["transitions"])  # mean duration of this process's transitions
        res["mean_transition_ms"] = round(mean_ms, 3)
        res["hold_per_transition_us"] = round((p["cpu_lost_us_per_ms"] - c["cpu_lost_us_per_ms"]) * mean_ms, 2)
        res["hold_per_transition_us_se"] = round(
            math.sqrt(p["cpu_lost_us_per_ms_se"] ** 2 + c["cpu_lost_us_per_ms_se"] ** 2) * mean_ms, 2)
        for hk, h in res["agent_holds"].items():
            log("  gap thread %-9s agent's %s holds: %d, mean %s us, longest %s us" % (kind, hk, h["count"], h["mean_us"], h["max_us"]))
        log("  gap thread %-9s %d/%d cycles: CPU lost %.2f vs %.2f us per ms of transition (graft: %+.1f +- %.1f us per transition); gaps > 50 us %.2f/s vs %.2f/s; max %.0f vs %.0f us" % (
            kind, cycles["patching"], cycles["control"], p["cpu_lost_us_per_ms"], c["cpu_lost_us_per_ms"],
            res["hold_per_transition_us"], res["hold_per_transition_us_se"], p["gaps_over_50us_per_s"] or 0,
            c["gaps_over_50us_per_s"] or 0, p["max_cpu_gap_us"], c["max_cpu_gap_us"]))
        out["kinds"][kind] = res
        meas.close()
        decoy.close()
    return out


# ---- 3c. the two walks a thread checks itself with, side by side --------------------------------

def s_walks(g, art, cfg):
    """How long a thread is held by one check of its own stack: with the rows the worker
    publishes (the default) against libgcc's unwinder alone (GRAFT_OWN_WALK=libgcc), in two
    otherwise identical processes patched cycle by cycle in turn. The agent times each hold on
    the thread itself (holds in status): the transition signal's handler for a thread spinning in
    unpatched code, the selector's self-checks for one calling the patched function."""
    so = art["patches"] + "/p_threads.so"
    out = {"seconds": cfg["walk_ab_s"], "configs": []}
    for kind, depth in cfg["walk_ab"]:
        argv = [art["bin"] + "/threads", "--blocked=10", "--depth=%d" % depth, "--gap-%s=1" % kind]
        procs = {"rows": Proc(argv, g.exe, "threads-rows"),
                 "libgcc": Proc(argv, g.exe, "threads-libgcc", env={"GRAFT_OWN_WALK": "libgcc"})}
        before = {w: g.req(p.pid, {"op": "status"}) for w, p in procs.items()}
        end, cycles = time.monotonic() + cfg["walk_ab_s"], 0
        while time.monotonic() < end:
            for p in procs.values():
                g.cli("load", p.pid, so)
                g.cli("disable", p.pid, "p_threads", "--wait")
                g.cli("unload", p.pid, "p_threads")
            cycles += 1
        res = {"kind": kind, "depth": depth, "cycles": cycles}
        for w, p in procs.items():
            st = g.req(p.pid, {"op": "status"})
            which = "signal" if kind == "unpatched" else "self_check"
            walks = "signal_walks" if kind == "unpatched" else "self_check_walks"
            res[w] = {"holds": agent_holds(before[w].get("holds", {}), st.get("holds", {}))[which],
                      "walks": {k: st.get(walks, {}).get(k, 0) - before[w].get(walks, {}).get(k, 0)
                                for k in ("with_rows", "with_libgcc")}}
            p.close()
        a, b = res["rows"]["holds"], res["libgcc"]["holds"]
        if a.get("mean_us") and b.get("mean_us"):
            res["mean_ratio"] = round(b["mean_us"] / a["mean_us"], 2)  # over all holds, walking or not
        wa = sum(res["rows"]["walks"].values())
        wb = sum(res["libgcc"]["walks"].values())
        if wa and wb and a.get("mean_us") and b.get("mean_us"):
            res["per_walk_ratio"] = round((b["count"] * b["mean_us"] / wb) / (a["count"] * a["mean_us"] / wa), 2)
        log("  walks %-9s depth %3d, %d cycles: rows mean %s max %s us (%s) | libgcc mean %s max %s us (%s)" % (
            kind, depth, cycles, a.get("mean_us"), a.get("max_us"), res["rows"]["walks"], b.get("mean_us"),
            b.get("max_us"), res["libgcc"]["walks"]))
        out["configs"].append(res)
    return out


# ---- 3b. server latency ---------------------------------------------------------------------------

def s_server(g, art, cfg):
    patches = {"control": ("p_server", art["patches"] + "/p_server.so"),
               "patching": ("p_server", art["patches"] + "/p_server.so"),
               "offpath": ("p_server_offpath", art["patches"] + "/p_server_offpath.so")}
    idle = cfg["srv_idle"]
    srv = Proc([art["bin"] + "/server", "--idle=%d" % idle], g.exe, "server")
    decoy = Proc([art["bin"] + "/server", "--idle=%d" % idle], g.exe, "server-decoy")
    # The decoy gets as many (idle) connections as the measured server, so it has the same threads.
    hold = []
    for _ in range(cfg["srv_conns"]):
        s = socket.create_connection(("127.0.0.1", decoy.ready["port"]))
        hold.append(s)
    time.sleep(0.2)
    lat = {m: array.array("I") for m in ("control", "patching", "offpath")}
    windows = []
    tmp = tempfile.mkdtemp(prefix="graft-bench-")
    try:
        for wi, mode in enumerate(cfg["srv_modes"]):
            target = decoy if mode == "control" else srv
            pname, so = patches[mode]
            raw = os.path.join(tmp, "lat%d.bin" % wi)
            lg = subprocess.Popen([art["bin"] + "/loadgen", str(srv.ready["port"]), str(cfg["srv_conns"]),
                                   str(cfg["srv_period_us"]), str(cfg["srv_window_s"]), raw],
                                  stdout=subprocess.PIPE, text=True)
            cycles = 0
            while lg.poll() is None:
                g.cli("load", target.pid, so)
                g.cli("disable", target.pid, pname, "--wait")
                g.cli("unload", target.pid, pname)
                cycles += 1
            o = json.loads(lg.stdout.read())
            a = array.array("I")
            with open(raw, "rb") as f:
                a.frombytes(f.read())
            lat[mode].extend(a)
            windows.append({"mode": mode, "cycles": cycles, "count": o["count"], "errors": o["errors"],
                            "p50_us": o["p50_ns"] / 1e3, "p99_us": o["p99_ns"] / 1e3, "p999_us": o["p999_ns"] / 1e3,
                            "max_us": o["max_ns"] / 1e3})
            log("  server %-8s %3d patch cycles: %6d requests  p50 %7.1f us  p99 %8.1f us  p99.9 %8.1f us" % (
                mode, cycles, o["count"], o["p50_ns"] / 1e3, o["p99_ns"] / 1e3, o["p999_ns"] / 1e3))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for s in hold:
            s.close()
        srv.close()
        decoy.close()
    out = {"connections": cfg["srv_conns"], "period_us": cfg["srv_period_us"], "window_s": cfg["srv_window_s"],
           "idle_threads": idle, "windows": windows}
    for mode, a in lat.items():
        v = sorted(a)
        if not v:
            continue
        q = lambda p: v[min(len(v) - 1, int(p * len(v)))] / 1e3
        # CCDF on a log grid, for the plot
        lo, hi = 1.0, v[-1] / 1e3 * 1.01
        grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        import bisect
        ccdf = [[round(x, 2), (len(v) - bisect.bisect_right(v, x * 1e3)) / len(v)] for x in grid]
        out[mode] = {"count": len(v), "p50_us": q(0.5), "p90_us": q(0.9), "p99_us": q(0.99), "p999_us": q(0.999),
                     "p9999_us": q(0.9999), "max_us": v[-1] / 1e3, "ccdf_us": ccdf,
                     "cycles": sum(w["cycles"] for w in windows if w["mode"] == mode)}
    return out


# ---- 4. load cost and memory --------------------------------------------------------------------

def s_loadcost(g, art, cfg):
    out = {"sizes": []}
    for n in cfg["load_sizes"]:
        p = Proc([art["bin"] + "/loadtarget"], g.exe, "loadtarget")
        pid = p.pid
        so = art["patches"] + "/load_%d.so" % n
        name = "load_%d" % n
        time.sleep(0.05)
        m0 = smaps(pid)
        loads, disables, unloads, floor, wcpu = [], [], [], [], []
        m1 = m2 = None
        wtid = worker_tid(pid)
        for i in range(cfg["load_reps"]):
            w0 = thread_cpu_ns(pid, wtid)
            _, t = g.cli("load", pid, so)
            w1 = thread_cpu_ns(pid, wtid)
            if w0 is not None and w1 is not None:
                wcpu.append((w1 - w0) / 1e6)
            loads.append(t * 1e3)
            if i == 0:
                m1 = smaps(pid)
            _, t = g.cli("disable", pid, name, "--wait")
            disables.append(t * 1e3)
            _, t = g.cli("unload", pid, name)
            unloads.append(t * 1e3)
            if i == 0:
                m2 = smaps(pid)
            _, t = g.cli("status", pid)
            floor.append(t * 1e3)
        p.close()
        r = {"funcs": n, "patch_file_bytes": os.path.getsize(so),
             "load_first_ms": round(loads[0], 2), "load_warm_ms": summary(loads[1:]),
             "disable_ms": summary(disables), "unload_ms": summary(unloads), "cli_floor_status_ms": summary(floor),
             "worker_cpu_load_ms": summary(wcpu) if wcpu else None,
             "mem_before": m0, "mem_loaded": m1, "mem_after_unload": m2,
             "delta_rss_kb": m1["Rss"] - m0["Rss"], "delta_anon_kb": m1["Anonymous"] - m0["Anonymous"]}
        out["sizes"].append(r)
        log("  load %4d funcs: first %7.1f ms, warm %7.1f ms, disable %7.1f ms, unload %5.1f ms; dRSS %5d kB dAnon %5d kB" % (
            n, r["load_first_ms"], r["load_warm_ms"]["median"], r["disable_ms"]["median"], r["unload_ms"]["median"],
            r["delta_rss_kb"], r["delta_anon_kb"]))
    xs = [s["funcs"] for s in out["sizes"]]
    a, b = linear_fit(xs, [s["delta_anon_kb"] for s in out["sizes"]])
    out["anon_kb_per_func"] = round(b, 3) if b is not None else None
    a, b = linear_fit(xs, [s["delta_rss_kb"] for s in out["sizes"]])
    out["rss_kb_per_func"] = round(b, 3) if b is not None else None
    a, b = linear_fit(xs, [s["load_warm_ms"]["median"] for s in out["sizes"]])
    out["load_ms_fixed"], out["load_ms_per_func"] = (round(a, 3), round(b, 4)) if b is not None else (None, None)
    out["load_exponent"] = loglog_slope(xs, [s["load_warm_ms"]["median"] for s in out["sizes"]])
    return out


def s_memory(g, art, cfg, transition):
    """Agent memory per thread: the same program with and without the agent."""
    out = {"runs": []}
    for n in cfg["mem_threads"]:
        row = {"threads": n}
        for mode in ("plain", "graft"):
            p = Proc([art["bin"] + "/threads", "--blocked=%d" % n], g.exe if mode == "graft" else None, "threads-mem")
            time.sleep(0.1)
            row[mode] = smaps(p.pid)
            if mode == "graft":
                so = art["patches"] + "/p_threads.so"
                g.cli("load", p.pid, so)
                g.cli("disable", p.pid, "p_threads", "--wait")
                g.cli("unload", p.pid, "p_threads")
                row["graft_after_transitions"] = smaps(p.pid)
            p.close()
        out["runs"].append(row)
        log("  memory %5d threads: RSS plain %7d kB, graft %7d kB, after 2 transitions %7d kB" % (
            n, row["plain"]["Rss"], row["graft"]["Rss"], row["graft_after_transitions"]["Rss"]))
    if len(out["runs"]) >= 2:
        lo, hi = out["runs"][0], out["runs"][-1]
        dn = hi["threads"] - lo["threads"]
        for key, src in (("idle", "graft"), ("after_transition", "graft_after_transitions")):
            for m in ("Rss", "Anonymous"):
                d = ((hi[src][m] - hi["plain"][m]) - (lo[src][m] - lo["plain"][m])) / dn
                out["%s_%s_kb_per_thread" % (key, m.lower())] = round(d, 3)
    return out


# ---- where the time goes (optional perf profiles) -----------------------------------------------

def perf_profile(pid, seconds_fn, label, tid=None, want=()):
    """Runs perf record with DWARF call graphs on a process (or one thread) while seconds_fn()
    runs; returns the top entries of the inclusive ("children") profile, and the inclusive share
    of each symbol in `want`."""
    if not shutil.which("perf"):
        return {"skipped": "perf not installed"}
    data = tempfile.mktemp(prefix="graft-perf-", suffix=".data")
    target = ["-t", str(tid)] if tid else ["-p", str(pid)]
    pr = subprocess.Popen(["perf", "record", "-q", "--call-graph=dwarf,16384", "-F", "2000", "-o", data, *target],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)
    if pr.poll() is not None:
        return {"skipped": "perf record failed: %s" % pr.stderr.read().strip()[:200]}
    extra = None
    try:
        extra = seconds_fn()
    finally:
        pr.send_signal(signal.SIGINT)
        pr.wait()
    try:
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--children", "--sort", "sym", "-g", "none",
                              "--percent-limit", "0"], capture_output=True, text=True, timeout=300).stdout
    finally:
        try:
            os.unlink(data)
        except OSError:
            pass
    rows = []
    for l in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[[.k]\]\s+(.*)", l)
        if m:
            rows.append({"children_pct": float(m.group(1)), "self_pct": float(m.group(2)), "symbol": m.group(3).strip()})
    shares = {}
    for w in want:
        shares[w] = max((r["children_pct"] for r in rows if r["symbol"].startswith(w)), default=0.0)
    return {"label": label, "top": [r for r in rows if r["children_pct"] >= 1.5][:40], "shares_pct": shares,
            "extra": extra}


def s_profiles(g, art, cfg):
    out = {}
    # (a) the selector on the call path during a transition
    p = Proc([art["bin"] + "/callcost"], g.exe, "callcost-prof")
    g.cli("load", p.pid, art["patches"] + "/p_trans.so", "--no-wait")
    out["selector_fast_path"] = perf_profile(p.pid, lambda: p.cmd("measure trans 101 2000"),
                                             "callcost: switched thread calling f_trans during a transition",
                                             tid=p.ready["tid_main"])
    g.cli("disable", p.pid, "p_trans", "--wait")
    p.close()
    # (b) the agent's worker during transitions of 1000 blocked threads
    p = Proc([art["bin"] + "/threads", "--blocked=1000"], g.exe, "threads-prof")
    so = art["patches"] + "/p_threads.so"

    def cycles():
        for _ in range(3):
            g.cli("load", p.pid, so)
            g.cli("disable", p.pid, "p_threads", "--wait")
            g.cli("unload", p.pid, "p_threads")
    out["transition_1000_threads"] = perf_profile(p.pid, cycles, "threads --blocked=1000: the agent's worker thread "
                                                  "during 3 load/disable cycles", tid=worker_tid(p.pid))
    p.close()
    # (c) loading a 1000-function patch
    p = Proc([art["bin"] + "/loadtarget"], g.exe, "loadtarget-prof")

    def loads():
        g.cli("load", p.pid, art["patches"] + "/load_1000.so")
        g.cli("disable", p.pid, "load_1000", "--wait")
        g.cli("unload", p.pid, "load_1000")
    out["load_1000_funcs"] = perf_profile(p.pid, loads, "loadtarget: the agent's worker thread during load + "
                                          "disable of a 1000-function patch", tid=worker_tid(p.pid))
    p.close()
    # (d) graft's own code on a running thread during transitions: the share of the spinning
    # thread's CPU samples under the transition signal's handler and the selector
    want = ("graft::(anonymous namespace)::on_transition_signal", "arch_do_signal_or_restart",
            "__x64_sys_rt_sigreturn", "graft_select_slow", "graft_tramp_common", "graft_select_fast")
    for kind in ("unpatched", "patched"):
        p = Proc([art["bin"] + "/threads", "--blocked=%d" % cfg["dist_blocked"], "--gap-%s=1" % kind], g.exe, "threads-hold")
        gtid = p.cmd("window")["gaps"][0]["tid"]

        def cycles_for(seconds, p=p, gtid=gtid):
            c0 = thread_cpu_ns(p.pid, gtid)
            n, end = 0, time.monotonic() + seconds
            while time.monotonic() < end:
                g.cli("load", p.pid, so)
                g.cli("disable", p.pid, "p_threads", "--wait")
                g.cli("unload", p.pid, "p_threads")
                n += 2
            return {"transitions": n, "thread_cpu_ms": (thread_cpu_ns(p.pid, gtid) - c0) / 1e6}
        prof = perf_profile(p.pid, lambda: cycles_for(cfg["hold_profile_s"]),
                            "threads --gap-%s=1: the spinning thread, load/disable cycles" % kind, tid=gtid, want=want)
        if "extra" in prof and prof["extra"]:
            e = prof["extra"]
            sh = prof["shares_pct"]
            per = lambda pct: pct / 100 * e["thread_cpu_ms"] * 1e3 / max(1, e["transitions"])
            prof["us_per_transition"] = {
                "signal handler (graft code)": round(per(sh[want[0]]), 2),
                "signal delivery and return (kernel)": round(per(sh[want[1]] + sh[want[2]]), 2),
                "selector slow path": round(per(sh[want[3]]), 2),
                "trampoline + selector, every call": round(per(sh[want[4]]), 2)}
            log("  hold profile %-9s: %s over %d transitions" % (kind, prof["us_per_transition"], e["transitions"]))
        out["hold_%s" % kind] = prof
        p.close()
    return out


# ---- machine --------------------------------------------------------------------------------------

def machine(build):
    info = {"uname": " ".join(platform.uname()), "nproc": os.cpu_count()}
    try:
        cpu = open("/proc/cpuinfo").read()
        m = re.search(r"model name\s*:\s*(.*)", cpu)
        info["cpu_model"] = m.group(1).strip() if m else None
        m = re.search(r"cpu MHz\s*:\s*(.*)", cpu)
        info["cpu_mhz"] = float(m.group(1)) if m else None
        m = re.search(r"flags\s*:\s*(.*)", cpu)
        flags = m.group(1).split() if m else []
        info["hypervisor"] = "hypervisor" in flags
        info["cpu_flags_of_note"] = [f for f in ("avx512f", "avx512_fp16", "amx_tile", "serialize", "constant_tsc",
                                                 "tsc_known_freq", "pcid", "invpcid") if f in flags]
        m = re.search(r"cache size\s*:\s*(.*)", cpu)
        info["cache"] = m.group(1).strip() if m else None
    except OSError:
        pass
    try:
        for l in open("/proc/meminfo"):
            if l.startswith("MemTotal"):
                info["mem_total_kb"] = int(l.split()[1])
    except OSError:
        pass
    info["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
    try:
        info["gcc"] = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except Exception:
        pass
    try:
        info["clocksource"] = open("/sys/devices/system/clocksource/clocksource0/current_clocksource").read().strip()
    except OSError:
        pass
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src", "include"],
                               capture_output=True, text=True).stdout.strip()
        info["graft_commit"] = head + (" (src/ or include/ modified)" if dirty else "")
    except Exception:
        pass
    try:
        cache = open(os.path.join(build, "CMakeCache.txt")).read()
        m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", cache, re.M)
        info["build_type"] = m.group(1) if m else None
        m = re.search(r"^GRAFT_SANITIZE:\w+=(.*)$", cache, re.M)
        info["sanitize"] = m.group(1) if m else ""
    except OSError:
        pass
    return info


# ---- main ---------------------------------------------------------------------------------------

def config(quick):
    c = {
        "cc_reps": 201, "cc_loop_us": 300,
        "spinners": 2, "transition_reps": 5, "transition_reps_10k": 2, "transition_timeout": 60,
        "read_ahead_threads": 1000, "read_ahead_reps": 24,
        "transition_matrix": [
            ("blocked", 10, [10, 100, 1000, 10000]),
            ("blocked", 100, [10, 100, 1000, 10000]),
            ("spin_unpatched", 10, [10, 100, 1000]),
            ("spin_patched", 10, [10, 100, 1000]),
        ],
        "dist_blocked": 10, "dist_window_s": 8.0, "dist_windows": 3, "hold_profile_s": 5.0,
        "walk_ab": [("unpatched", 10), ("unpatched", 100), ("patched", 10), ("patched", 100)], "walk_ab_s": 5.0,
        "srv_idle": 50, "srv_conns": 4, "srv_period_us": 250, "srv_window_s": 3.0,
        "srv_modes": ["control", "patching", "offpath"] * 3,
        "load_sizes": [1, 10, 100, 1000, 10000], "load_reps": 5,
        "mem_threads": [10, 1000],
    }
    if quick:
        c.update({"cc_reps": 41, "transition_reps": 2, "transition_reps_10k": 1, "read_ahead_reps": 4,
                  "transition_matrix": [("blocked", 10, [10, 100, 1000]), ("blocked", 100, [100]),
                                        ("spin_unpatched", 10, [100]), ("spin_patched", 10, [100])],
                  "dist_window_s": 3.0, "dist_windows": 1, "srv_window_s": 1.5, "walk_ab_s": 2.0,
                  "srv_modes": ["control", "patching", "offpath"], "load_reps": 2})
    return c


SECTIONS = ["callcost", "transition", "disturbance", "walks", "server", "loadcost", "memory", "profiles"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and sizes (for trying the suite out)")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--command", default=None, help="the command line to record in the report")
    ap.add_argument("--no-report", action="store_true")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    g = Graft(os.path.join(build, "bin", "graft"))
    art = {"bin": os.path.join(build, "bench", "bin"), "patches": os.path.join(build, "bench", "patches")}
    cfg = config(a.quick)
    only = [s for s in a.only.split(",") if s]
    if os.environ.get("GRAFT_BENCH_PERF", "1") == "0" and "profiles" in only:
        only.remove("profiles")
    res = {"schema": 1, "command": a.command or "bench/run.sh " + build, "quick": a.quick,
           "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(build), "config": cfg,
           "sections_run": only, "errors": {}}
    fns = {"callcost": lambda: s_callcost(g, art, cfg), "transition": lambda: s_transition(g, art, cfg),
           "disturbance": lambda: s_disturbance(g, art, cfg), "walks": lambda: s_walks(g, art, cfg), "server": lambda: s_server(g, art, cfg),
           "loadcost": lambda: s_loadcost(g, art, cfg), "memory": lambda: s_memory(g, art, cfg, res.get("transition")),
           "profiles": lambda: s_profiles(g, art, cfg)}
    durations = {}
    try:
        for s in SECTIONS:
            if s not in only:
                continue
            log("section %s" % s)
            t0 = time.monotonic()
            try:
                res[s] = fns[s]()
            except Exception as e:
                import traceback
                log("section %s failed: %s" % (s, e))
                res["errors"][s] = "%s\n%s" % (e, traceback.format_exc())
            finally:
                for p in list(PROCS):
                    p.close()
            durations[s] = round(time.monotonic() - t0, 1)
    finally:
        for p in list(PROCS):
            p.close()
    res["durations_s"] = durations
    res["total_s"] = round(time.monotonic() - T_START, 1)
    res["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    json.dump(res, sys.stdout, indent=1)
    print()
    log("results: %s (%.0f s)" % (a.out, res["total_s"]))
    if not a.no_report:
        subprocess.run([sys.executable, os.path.join(HERE, "report.py"), a.out], check=False)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
