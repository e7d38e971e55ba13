// A thread checking its own stack (the transition signal's handler, the selector's self-check):
// first with the rows the worker publishes (frame_rules.hpp), libgcc's walk for what they miss.
// Async-signal-safe: no allocation, no lock, no guarded static on any path here.
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <unwind.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "agent/service/hold_stats.hpp"
#include "agent/unwind/frame_rules.hpp"
#include "agent/unwind/stack_check.hpp"
#include "agent/unwind/walk_common.hpp"

namespace graft {

_Unwind_Reason_Code collect(struct _Unwind_Context *ctx, void *arg) {
    auto *w = static_cast<OwnWalk *>(arg);
    if (w->n >= kMaxFrames) {
        w->overflow = true;
        return _URC_END_OF_STACK;
    }
    // One clock read per frame (vDSO, tens of ns) against the walk's ~1 µs per frame.
    if (w->deadline_ns && hold_now_ns() > w->deadline_ns) {
        w->timed_out = true;
        return _URC_END_OF_STACK;
    }
    int before = 0;
    uintptr_t ip = _Unwind_GetIPInfo(ctx, &before);
    if (ip == 0) return _URC_NO_REASON;  // the frame past the outermost one (rip undefined)
    // A return address points after the call: look the caller up at ip - 1. A signal-interrupted
    // frame reports the exact pc: it is kept as is, with the top bit set to say so.
    w->cfa[w->n] = _Unwind_GetCFA(ctx);
    w->pc[w->n++] = before ? (ip | 1ull << 63) : ip - 1;
    // Callers' frames lie above their callees': a CFA that does not grow is a broken walk, and
    // stopping here keeps the unwinder from reading through it.
    uintptr_t cfa = _Unwind_GetCFA(ctx);
    if (w->last_cfa && cfa < w->last_cfa) {
        w->bad_cfa = true;
        return _URC_END_OF_STACK;
    }
    w->last_cfa = cfa;
    return _URC_NO_REASON;
}

namespace {

// ---- the signal handler's walk with the worker's rows ----------------------------------------
//
// The handler knows the interrupted frame's registers exactly (the ucontext), so it climbs from
// there with the rows frame_rules.hpp publishes: per frame, a binary search, one or two loads
// from its own stack. It reads the same slots libgcc's walk would read for the same CFI, and
// stops at the first frame the rows do not describe simply; libgcc's walk then decides.
// Counters for status; relaxed. [0]: the transition signal's handler, [1]: the selector's self-check.
std::atomic<uint64_t> g_walks_cached[2], g_walks_full[2], g_walks_timed_out[2];
int g_verify_fd = -1;  // GRAFT_VERIFY_HANDLER_WALK: both walks, disagreements written here
// GRAFT_OWN_WALK=libgcc: threads checking themselves never use the rows (a way out should they
// ever be doubted, and bench/'s side-by-side measurement of both). Set by the worker before
// its first transition; relaxed: nothing else is published with it.
std::atomic<bool> g_rows_walk{true};

enum class HandlerWalk { kDone, kMissed, kOther };

__attribute__((no_sanitize("address")))  // reads the return-address slots of other frames
HandlerWalk
handler_walk(const InterruptedRegs &regs, const ForbiddenTable *table, StackResult *out) {
    const FrameRuleSnapshot *rows = frame_rules_current();
    uintptr_t sp = regs.sp, bp = regs.bp;
    // An interrupted pc is exact; a return address is looked up at the call before it.
    uintptr_t look = regs.pc_is_return_address ? regs.pc - 1 : regs.pc;
    bool bp_known = true;
    StackResult r;
    for (int n = 1; n <= kMaxFrames; n++) {
        if ((n > 1 || regs.pc_is_return_address) && in_graft_hot_code(look)) return HandlerWalk::kOther;
        FrameRule rule;
        if (!frame_rules_lookup(rows, look, &rule)) {
            frame_rules_record_miss({look, sp, bp, bp_known});
            return HandlerWalk::kMissed;
        }
        uintptr_t cfa = 0;
        if (rule.kind == FrameRule::kRspCfa || rule.kind == FrameRule::kOutermost)
            cfa = sp + static_cast<uintptr_t>(rule.cfa_offset);
        else if (rule.kind == FrameRule::kRbpCfa && bp_known)
            cfa = bp + static_cast<uintptr_t>(rule.cfa_offset);
        else
            return HandlerWalk::kOther;
        if (const char *hit = find_forbidden(look, table); hit && !r.busy_in) {
            r.busy_in = hit;
            r.busy_cfa = cfa;
        }
        if (rule.kind == FrameRule::kOutermost) {
            if (!is_root(look)) return HandlerWalk::kOther;
            r.verdict = r.busy_in ? StackVerdict::kBusy : StackVerdict::kClean;
            *out = r;
            return HandlerWalk::kDone;
        }
        // Callers' frames lie above their callees': anything else is not a stack this walk
        // understands, and it must not read through it.
        if (cfa <= sp) return HandlerWalk::kOther;
        const uintptr_t ra = *reinterpret_cast<const uintptr_t *>(cfa - 8);
        if (rule.rbp == FrameRule::kRbpAtCfa)
            bp = *reinterpret_cast<const uintptr_t *>(
                cfa + static_cast<uintptr_t>(static_cast<intptr_t>(rule.rbp_offset)));
        else if (rule.rbp == FrameRule::kRbpUnknown)
            bp_known = false;
        if (ra == 0) return HandlerWalk::kOther;
        sp = cfa;
        look = ra - 1;  // a return address: the call lies before it
    }
    return HandlerWalk::kOther;
}

// Async-signal-safe formatting for the verification mode.
size_t put_str(char *b, size_t at, size_t cap, const char *s) {
    while (*s && at + 1 < cap) b[at++] = *s++;
    return at;
}
size_t put_hex(char *b, size_t at, size_t cap, uintptr_t v) {
    char tmp[17];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v && n < 16);
    at = put_str(b, at, cap, "0x");
    while (n > 0 && at + 1 < cap) b[at++] = tmp[--n];
    return at;
}
size_t put_dec(char *b, size_t at, size_t cap, uintptr_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    while (n > 0 && at + 1 < cap) b[at++] = tmp[--n];
    return at;
}
const char *verdict_name(StackVerdict v) {
    return v == StackVerdict::kClean ? "clean" : v == StackVerdict::kBusy ? "busy" : "unreliable";
}

// " <label>: <verdict>[ in F] cfa 0x...[ (why)]"
size_t put_walk(char *b, size_t n, size_t cap, const char *label, const StackResult &r) {
    n = put_str(b, n, cap, label);
    n = put_str(b, n, cap, verdict_name(r.verdict));
    n = put_str(b, n, cap, r.busy_in ? " in " : "");
    n = put_str(b, n, cap, r.busy_in ? r.busy_in : "");
    n = put_str(b, n, cap, " cfa ");
    n = put_hex(b, n, cap, r.busy_cfa);
    n = put_str(b, n, cap, r.why ? " (" : "");
    n = put_str(b, n, cap, r.why ? r.why : "");
    return put_str(b, n, cap, r.why ? ")" : "");
}

void verify_handler_walk(const InterruptedRegs &regs, const StackResult &fast, const StackResult &full) {
    const bool same = fast.verdict == full.verdict && fast.busy_in == full.busy_in &&
                      (fast.verdict != StackVerdict::kBusy || fast.busy_cfa == full.busy_cfa);
    char b[256];
    size_t n = put_str(b, 0, sizeof b, same ? "graft-verify: same " : "graft-verify: MISMATCH ");
    n = put_str(b, n, sizeof b, "tid ");
    n = put_dec(b, n, sizeof b, static_cast<uintptr_t>(syscall(SYS_gettid)));
    n = put_str(b, n, sizeof b, " pc ");
    n = put_hex(b, n, sizeof b, regs.pc);
    n = put_walk(b, n, sizeof b, " rows: ", fast);
    n = put_walk(b, n, sizeof b, " libgcc: ", full);
    n = put_str(b, n, sizeof b, regs.pc_is_return_address ? " [self-check]" : "");
    b[n++] = '\n';
    (void)!write(g_verify_fd, b, n);
}

StackResult libgcc_own_walk(SelfContext ctx, const ForbiddenTable *table, const InterruptedRegs *regs,
                            bool record_misses, uint64_t deadline_ns);

}  // namespace

void own_walk_init() {
    if (const char *v = std::getenv("GRAFT_OWN_WALK"); v && std::strcmp(v, "libgcc") == 0)
        g_rows_walk.store(false, std::memory_order_relaxed);
    if (const char *v = std::getenv("GRAFT_VERIFY_HANDLER_WALK"); v && *v)
        g_verify_fd = open(v, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

HandlerWalkStats stack_check_handler_stats() {
    return {g_walks_cached[0].load(std::memory_order_relaxed),
            g_walks_full[0].load(std::memory_order_relaxed),
            g_walks_cached[1].load(std::memory_order_relaxed),
            g_walks_full[1].load(std::memory_order_relaxed),
            g_walks_timed_out[0].load(std::memory_order_relaxed),
            g_walks_timed_out[1].load(std::memory_order_relaxed),
            frame_rules_count()};
}

StackResult check_own_stack(SelfContext ctx, const ForbiddenTable *table, const InterruptedRegs *regs,
                            uint64_t deadline_ns) {
    StackResult r;
    bool missed = false;
    if (ctx == SelfContext::kSignalHandler) {
        if (!regs) {
            r.why = "no interrupted context";
            return r;
        }
        const uintptr_t interrupted_pc = regs->pc;
        dl_find_object fo{};
        if (_dl_find_object(reinterpret_cast<void *>(interrupted_pc), &fo) != 0) {
            r.why = "interrupted in code of no known object";
            return r;
        }
        if (fo.dlfo_link_map == g_unwinder_map.load(std::memory_order_acquire) ||
            fo.dlfo_link_map == g_loader_map.load(std::memory_order_acquire)) {
            r.why = "interrupted inside the unwinder or the dynamic loader";
            return r;
        }
        if (in_graft_hot_code(interrupted_pc)) {
            r.why = "interrupted inside graft's trampoline";
            return r;
        }
    }
    if (ctx == SelfContext::kDirect) return libgcc_own_walk(ctx, table, regs, false, deadline_ns);
    const int k = ctx == SelfContext::kSignalHandler ? 0 : 1;
    if (regs && g_rows_walk.load(std::memory_order_relaxed)) {
        StackResult fast;
        switch (handler_walk(*regs, table, &fast)) {
            case HandlerWalk::kDone:
                g_walks_cached[k].fetch_add(1, std::memory_order_relaxed);
                if (g_verify_fd >= 0)
                    verify_handler_walk(*regs, fast, libgcc_own_walk(ctx, table, regs, false, 0));
                return fast;
            case HandlerWalk::kMissed:
                missed = true;
                break;
            case HandlerWalk::kOther:
                break;
        }
    }
    g_walks_full[k].fetch_add(1, std::memory_order_relaxed);
    r = libgcc_own_walk(ctx, table, regs, missed, deadline_ns);
    if (r.timed_out) g_walks_timed_out[k].fetch_add(1, std::memory_order_relaxed);
    return r;
}

namespace {
// The first frame that is not graft's own: past the handler up to the interrupted frame, or
// past the selector and the trampoline up to the caller of the patched function; -1 if none.
int first_own_frame(SelfContext ctx, const OwnWalk &w) {
    int i = 0;
    if (ctx == SelfContext::kSignalHandler) {
        while (i < w.n && !(w.pc[i] >> 63)) i++;
    } else if (ctx == SelfContext::kSelector) {
        // _dl_find_object is lock-free (glibc >= 2.35), unlike dladdr.
        while (i < w.n) {
            dl_find_object fo{};
            if (_dl_find_object(reinterpret_cast<void *>(w.pc[i] & ~(1ull << 63)), &fo) != 0 ||
                fo.dlfo_link_map != g_self_map.load(std::memory_order_acquire))
                break;
            i++;
        }
    }
    return i < w.n ? i : -1;
}

// Hands the worker every frame of the walk from `first` on that the rows do not cover, each with
// its sp where known: libgcc reports, for each frame, the CFA of its callee, which is this
// frame's sp — except for a frame a signal interrupted (its pc exact, marked), whose callee is
// the kernel's signal frame; for the first frame, `regs` has it exactly.
void record_walk_misses(const OwnWalk &w, int first, const InterruptedRegs *regs) {
    const FrameRuleSnapshot *rows = frame_rules_current();
    FrameRule unused;
    for (int i = first; i < w.n; i++) {
        const uintptr_t pc = w.pc[i] & ~(1ull << 63);
        if (frame_rules_lookup(rows, pc, &unused)) continue;
        uintptr_t sp = 0;
        if (i == first && regs)
            sp = regs->sp;
        else if (i > first && !(w.pc[i] >> 63))
            sp = w.cfa[i];
        frame_rules_record_miss({pc, sp, 0, false});
    }
}

StackResult libgcc_own_walk(SelfContext ctx, const ForbiddenTable *table, const InterruptedRegs *regs,
                            bool record_misses, uint64_t deadline_ns) {
    StackResult r;
    OwnWalk w;
    w.deadline_ns = deadline_ns;
    _Unwind_Reason_Code rc = _Unwind_Backtrace(collect, &w);
    if (w.timed_out) {
        // Bounded hold: give up, and let the worker prepare the rows of the frames seen so far
        // and of the rest of the stack above them, so that the next check walks with them.
        if (int first = first_own_frame(ctx, w); first >= 0) record_walk_misses(w, first, regs);
        r.why = "its walk ran out of time; the rows for its stack are being prepared";
        r.timed_out = true;
        return r;
    }
    if (rc != _URC_END_OF_STACK || w.overflow || w.bad_cfa || w.n == 0) {
        r.why = "the unwinder stopped early";
        return r;
    }
    const int first = first_own_frame(ctx, w);
    if (first < 0) {
        r.why = ctx == SelfContext::kSignalHandler ? "no signal frame" : "no frame outside graft";
        return r;
    }
    for (int i = first; i < w.n; i++) {
        uintptr_t pc = w.pc[i] & ~(1ull << 63);
        // Every frame must be code of a known object with an FDE: libgcc's walk treats a missing
        // FDE as the end of the stack, so it is the root check below that catches it.
        if (i > first && in_graft_hot_code(pc)) {
            r.why = "a frame inside graft's trampoline";
            return r;
        }
        if (i == first && in_graft_hot_code(pc)) {
            r.why = "interrupted inside graft's trampoline";
            return r;
        }
        if (const char *hit = find_forbidden(pc, table); hit && !r.busy_in) {
            r.busy_in = hit;
            // libgcc reports, for each frame, the CFA of the frame it was unwound from (the
            // callee's): this frame's own CFA is what the walk reports for its caller.
            r.busy_cfa = i + 1 < w.n ? w.cfa[i + 1] : 0;
        }
    }
    // The rows missed the stack somewhere: hand every frame of it they do not cover to the
    // worker, so that the next signal to this thread finds all of them at once.
    if (record_misses) record_walk_misses(w, first, regs);
    if (!is_root(w.pc[w.n - 1] & ~(1ull << 63))) {
        r.why = "the stack does not end at a thread's start";
        r.busy_in = nullptr;
        return r;
    }
    r.verdict = r.busy_in ? StackVerdict::kBusy : StackVerdict::kClean;
    return r;
}
}  // namespace

}  // namespace graft
