#include "agent/unwind/stack_check.hpp"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <libelf.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <unwind.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <unordered_map>
#include <unordered_set>

#include "agent/process/symbols.hpp"
#include "agent/service/hold_stats.hpp"
#include "agent/unwind/frame_rules.hpp"
#include "arch/arch.hpp"

extern "C" {
// libgcc: FDE lookup for a pc (uses _dl_find_object; lock-free unless frames were registered
// by hand with __register_frame).
struct dwarf_eh_bases {
    void *tbase;
    void *dbase;
    void *func;
};
const void *_Unwind_Find_FDE(void *pc, struct dwarf_eh_bases *bases);
extern char __start_graft_select_text[] __attribute__((weak));
extern char __stop_graft_select_text[] __attribute__((weak));
}

namespace graft {
namespace {

constexpr int kMaxFrames = 256;

// Functions whose CFI ends the stack (rip undefined): _start of the executable, the clone
// helpers that start threads. Written once by the worker before any check runs.
std::atomic<uintptr_t> g_roots[4];
std::atomic<link_map *> g_self_map{nullptr};

uintptr_t fde_func(uintptr_t pc) {
    dwarf_eh_bases b{};
    if (!_Unwind_Find_FDE(reinterpret_cast<void *>(pc), &b)) return 0;
    return reinterpret_cast<uintptr_t>(b.func);
}

bool is_root(uintptr_t pc) {
    uintptr_t f = fde_func(pc);
    if (!f) return false;
    for (auto &r : g_roots)
        if (r.load(std::memory_order_acquire) == f) return true;
    return false;
}

bool in_graft_hot_code(uintptr_t pc) {
    auto p = reinterpret_cast<char *>(pc);
    if (arch::in_trampoline(pc)) return true;
    return __start_graft_select_text && p >= __start_graft_select_text && p < __stop_graft_select_text;
}

const char *find_forbidden(uintptr_t pc, const ForbiddenTable *t) {
    if (!t) return nullptr;
    for (size_t i = 0; i < t->count; i++)
        if (pc >= t->ranges[i].lo && pc < t->ranges[i].hi) return t->ranges[i].name;
    return nullptr;
}

struct OwnWalk {
    uintptr_t pc[kMaxFrames];
    uintptr_t cfa[kMaxFrames];
    int n = 0;
    bool overflow = false;
    bool bad_cfa = false;
    uintptr_t last_cfa = 0;
    uint64_t deadline_ns = 0;  // 0: none
    bool timed_out = false;
};

// Objects whose code may be interrupted at points where its CFI does not describe the stack
// (the unwinder installing a context for a C++ exception, the dynamic loader): a signal that
// lands there is answered "unreliable" before any walk starts.
std::atomic<link_map *> g_unwinder_map{nullptr}, g_loader_map{nullptr};

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

// ---- libdwfl for frozen threads -------------------------------------------------------------

struct RemoteTarget {
    pid_t tid;
    uintptr_t sp, pc;
};

struct DwflState {
    Dwfl *dwfl = nullptr;
    RemoteTarget target{};
    bool attached = false;
    bool refresh = false;  // objects were added since the modules were reported
};
DwflState g_dw;  // worker only
const bool g_debug = std::getenv("GRAFT_DEBUG_UNWIND") != nullptr;

pid_t dw_next_thread(Dwfl *, void *arg, void **thread_argp) {
    auto *st = static_cast<DwflState *>(arg);
    if (*thread_argp) return 0;
    *thread_argp = st;
    return st->target.tid;
}

// The frozen thread's stack, copied as the walk climbs it: most reads of a walk fall inside it,
// and copying with process_vm_readv cannot fault, whatever the addresses (worker only). It grows
// from sp in steps of a few pages, so a shallow stack costs one or two system calls rather than
// a copy of the whole window.
struct StackWindow {
    uintptr_t lo = 0;
    size_t len = 0;
    bool ended = false;  // a read stopped short: the mapping ends there
    unsigned char bytes[128 * 1024];
};
StackWindow *g_window = new StackWindow;
pid_t g_pid = getpid();  // re-read in a fork() child
constexpr size_t kPage = 4096;
// Read at least this far past the word asked for, up to a page boundary: the next frames lie
// just above, and one system call copying a little more costs less than another call.
constexpr size_t kAhead = 1024;

void load_window(uintptr_t sp, const StackPrefix *prefix) {
    g_window->lo = sp;
    g_window->len = 0;
    g_window->ended = false;
    if (prefix && prefix->bytes && prefix->len <= sizeof g_window->bytes) {
        std::memcpy(g_window->bytes, prefix->bytes, prefix->len);
        g_window->len = prefix->len;
        g_window->ended = prefix->ended;
    }
}

// The end of the first copy grow_window() makes for a walk from sp.
uintptr_t first_copy_end(uintptr_t sp) {
    return (sp + sizeof(uintptr_t) + kAhead + kPage - 1) & ~(kPage - 1);
}

// Extends the window until it covers [.., end) or cannot grow; true if it covers it.
bool grow_window(uintptr_t end) {
    StackWindow &w = *g_window;
    const uintptr_t cap = w.lo + sizeof w.bytes;
    if (end > cap) return false;
    while (w.lo + w.len < end) {
        if (w.ended) return false;
        uintptr_t from = w.lo + w.len;
        // A little past what is needed, to a page boundary (kAhead).
        uintptr_t to = std::min(cap, (end + kAhead + kPage - 1) & ~(kPage - 1));
        iovec local{w.bytes + w.len, to - from};
        iovec remote{reinterpret_cast<void *>(from), to - from};
        ssize_t n = process_vm_readv(g_pid, &local, 1, &remote, 1, 0);
        if (n > 0) w.len += static_cast<size_t>(n);
        if (n < static_cast<ssize_t>(to - from)) w.ended = true;
    }
    return true;
}

bool dw_memory_read(Dwfl *, Dwarf_Addr addr, Dwarf_Word *result, void *) {
    if (addr >= g_window->lo && grow_window(addr + sizeof(*result))) {
        std::memcpy(result, g_window->bytes + (addr - g_window->lo), sizeof(*result));
        return true;
    }
    iovec local{result, sizeof(*result)};
    iovec remote{reinterpret_cast<void *>(addr), sizeof(*result)};
    return process_vm_readv(g_pid, &local, 1, &remote, 1, 0) == sizeof(*result);
}

bool dw_set_initial_registers(Dwfl_Thread *thread, void *arg) {
    auto *st = static_cast<DwflState *>(arg);
    Dwarf_Word sp = st->target.sp;
    if (!dwfl_thread_state_registers(thread, 7 /* DWARF rsp */, 1, &sp)) return false;
    dwfl_thread_state_register_pc(thread, st->target.pc);
    return true;
}

const Dwfl_Thread_Callbacks kThreadCallbacks = {
    dw_next_thread, nullptr, dw_memory_read, dw_set_initial_registers, nullptr, nullptr,
};

// Separate debug information by build-id under the local debug directories only.
// dwfl_standard_find_debuginfo would end by asking the debuginfod servers named in the target's
// DEBUGINFOD_URLS: a network request from inside someone else's process, with the core lock held.
// The unwinder needs only the objects' own .eh_frame, so nothing is lost for it.
int find_local_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                         const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                         char **debuginfo_file_name) {
    return dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                        debuglink_crc, debuginfo_file_name);
}

// An object file of the process for libdwfl: read (ELF_C_READ, pread), never mapped, after the
// same checks as every ELF the agent reads (symbols.hpp), so that a file truncated or corrupted
// on disk cannot fault in the worker. Other modules ([vdso], deleted files) are libdwfl's.
int find_checked_elf(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                     char **file_name, Elf **elfp) {
    if (!modname || modname[0] != '/')
        return dwfl_linux_proc_find_elf(mod, userdata, modname, base, file_name, elfp);
    int fd = open(modname, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return dwfl_linux_proc_find_elf(mod, userdata, modname, base, file_name, elfp);
    SymbolFile facts;
    std::string why;
    Elf *e = nullptr;
    try {
        if (describe_fd(fd, modname, &facts, &why)) e = elf_begin(fd, ELF_C_READ, nullptr);
    } catch (...) {  // out of memory: this module is not unwound
    }
    if (!e) {
        close(fd);
        return -1;
    }
    *elfp = e;
    *file_name = strdup(modname);
    return fd;
}

char *g_debuginfo_path = nullptr;
const Dwfl_Callbacks kDwflCallbacks = {
    find_checked_elf,
    find_local_debuginfo,
    nullptr,
    &g_debuginfo_path,
};

// pcs already seen with unwind information in this session of the unwinder: the threads of a
// process mostly stand in the same few functions, so most frames hit. Cleared with the session
// (a module that goes away takes its pcs with it). Worker only.
auto &g_cfi_known = *new std::unordered_set<Dwarf_Addr>;

auto &g_rules = *new std::unordered_map<Dwarf_Addr, FrameRule>;  // worker only; cleared with the session

bool ensure_dwfl() {
    if (g_dw.dwfl && g_dw.refresh) {
        // Objects were only added: report the modules again into the same session. Modules
        // reported again unchanged (same name and range) keep what libdwfl already parsed of
        // them (their ELF, their CFI); only the new ones are read.
        g_dw.refresh = false;
        dwfl_report_begin(g_dw.dwfl);
        if (dwfl_linux_proc_report(g_dw.dwfl, getpid()) != 0 ||
            dwfl_report_end(g_dw.dwfl, nullptr, nullptr) != 0) {
            dwfl_end(g_dw.dwfl);
            g_dw.dwfl = nullptr;
            g_cfi_known.clear();
            g_rules.clear();
        }
    }
    if (g_dw.dwfl) return true;
    Dwfl *d = dwfl_begin(&kDwflCallbacks);
    if (!d) return false;
    if (dwfl_linux_proc_report(d, getpid()) != 0 || dwfl_report_end(d, nullptr, nullptr) != 0) {
        dwfl_end(d);
        return false;
    }
    if (!dwfl_attach_state(d, nullptr, getpid(), &kThreadCallbacks, &g_dw)) {
        dwfl_end(d);
        return false;
    }
    g_dw.dwfl = d;
    return true;
}

// ---- a cached walk for the common frame ----------------------------------------------------
//
// Most frames of a blocked thread have the simplest CFI there is: CFA = rsp + k, return address
// saved at CFA - 8, caller's rsp = CFA. For those, libdw's answer for a pc is remembered as the
// offset k, and a walk over them costs a hash lookup and a read of the copied stack per frame.
// The first frame that is anything else (a frame-pointer CFA, a signal frame, a pc without CFI,
// a return address saved elsewhere) sends the whole check to the libdwfl walk below: the cache
// only ever repeats what libdw said, and decides nothing libdwfl would not.
bool rule_for(Dwarf_Addr pc, FrameRule *out) {
    auto it = g_rules.find(pc);
    if (it == g_rules.end()) {
        if (g_rules.size() >= 65536) g_rules.clear();
        uintptr_t lo = 0, hi = 0;
        FrameRule rule = frame_rule_compute(g_dw.dwfl, pc, &lo, &hi);
        if (g_debug)
            std::fprintf(stderr, "graft-unwind: rule for pc %#lx: kind %d cfa +%d\n", (unsigned long)pc,
                         rule.kind, rule.cfa_offset);
        if (lo < hi) frame_rules_note(pc, hi, rule);  // shared with signal handlers at the next publish
        it = g_rules.emplace(pc, rule).first;
    }
    *out = it->second;
    // Only sp and pc are known here: a frame whose CFA is based on rbp goes to libdwfl.
    return out->kind == FrameRule::kRspCfa || out->kind == FrameRule::kOutermost;
}

// True and a verdict when every frame from sp/pc to the thread's root has a simple rule.
bool cached_walk(uintptr_t sp, uintptr_t pc, const ForbiddenTable *table, StackResult *out) {
    StackResult r;
    Dwarf_Addr look = pc;  // the first frame's pc is exact (where the system call returns)
    for (int n = 1;; n++) {
        if (n > kMaxFrames) return false;
        FrameRule rule;
        if (!rule_for(look, &rule)) return false;
        if (n > 1 && in_graft_hot_code(look)) return false;
        if (const char *hit = find_forbidden(look, table); hit && !r.busy_in) r.busy_in = hit;
        const uintptr_t cfa = sp + static_cast<uintptr_t>(rule.cfa_offset);
        if (rule.kind == FrameRule::kOutermost) {
            if (!is_root(look)) return false;
            r.verdict = r.busy_in ? StackVerdict::kBusy : StackVerdict::kClean;
            *out = r;
            return true;
        }
        Dwarf_Word ra = 0;
        if (cfa <= sp || !dw_memory_read(nullptr, cfa - 8, &ra, nullptr) || ra == 0) return false;
        sp = cfa;
        look = ra - 1;  // a return address: the call lies before it
    }
}

bool has_cfi_uncached(Dwfl_Module *m, Dwarf_Addr pc);
bool has_cfi(Dwfl_Module *m, Dwarf_Addr pc) {
    if (g_cfi_known.count(pc)) return true;
    if (!has_cfi_uncached(m, pc)) return false;
    if (g_cfi_known.size() < 65536) g_cfi_known.insert(pc);
    return true;
}

bool has_cfi_uncached(Dwfl_Module *m, Dwarf_Addr pc) {
    Dwarf_Addr bias = 0;
    Dwarf_Frame *fr = nullptr;
    Dwarf_CFI *cfi = dwfl_module_eh_cfi(m, &bias);
    if (cfi && dwarf_cfi_addrframe(cfi, pc - bias, &fr) == 0) {
        free(fr);
        return true;
    }
    cfi = dwfl_module_dwarf_cfi(m, &bias);
    if (cfi && dwarf_cfi_addrframe(cfi, pc - bias, &fr) == 0) {
        free(fr);
        return true;
    }
    return false;
}

struct RemoteWalk {
    const ForbiddenTable *table;
    StackResult result;
    uintptr_t last = 0;
    int n = 0;
    bool bad = false;
};

int remote_frame(Dwfl_Frame *state, void *arg) {
    auto *w = static_cast<RemoteWalk *>(arg);
    Dwarf_Addr pc = 0;
    bool activation = false;
    if (!dwfl_frame_pc(state, &pc, &activation)) {
        w->bad = true;
        w->result.why = "no pc for a frame";
        return DWARF_CB_ABORT;
    }
    if (pc == 0) return DWARF_CB_OK;  // past the outermost frame
    Dwarf_Addr look = activation ? pc : pc - 1;
    if (g_debug)
        std::fprintf(stderr, "graft-unwind: tid %d frame %d pc %#lx\n", g_dw.target.tid, w->n,
                     (unsigned long)pc);
    if (++w->n > kMaxFrames) {
        w->bad = true;
        w->result.why = "stack too deep";
        return DWARF_CB_ABORT;
    }
    Dwfl_Module *m = dwfl_addrmodule(g_dw.dwfl, look);
    if (!m || !has_cfi(m, look)) {
        w->bad = true;
        w->result.why = "a frame without unwind information";
        return DWARF_CB_ABORT;
    }
    if (w->n > 1 && in_graft_hot_code(look)) {
        w->bad = true;
        w->result.why = "a frame inside graft's trampoline";
        return DWARF_CB_ABORT;
    }
    if (const char *hit = find_forbidden(look, w->table); hit && !w->result.busy_in) w->result.busy_in = hit;
    w->last = look;
    return DWARF_CB_OK;
}

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

void stack_check_init_worker() {
    // The worker uses libelf, libdw and libdwfl with the core mutex held. Their error codes are
    // thread-local; a thread's first access to a module's thread-local block may allocate it
    // and take the dynamic linker's lock (tls_get_addr_tail), while a loading thread holds that
    // lock and waits for the core mutex (object_events.hpp): a deadlock, seen with the agent's
    // sanitizer build. Touch them here, before the worker ever takes the core mutex.
    (void)elf_errno();
    (void)dwarf_errno();
    (void)dwfl_errno();
    (void)std::uncaught_exceptions();  // libstdc++'s exception globals, for the same reason
    dl_find_object fo{};
    if (_dl_find_object(reinterpret_cast<void *>(&stack_check_init_worker), &fo) == 0)
        g_self_map.store(fo.dlfo_link_map, std::memory_order_release);
    if (_dl_find_object(reinterpret_cast<void *>(&_Unwind_RaiseException), &fo) == 0)
        g_unwinder_map.store(fo.dlfo_link_map, std::memory_order_release);
    // The dynamic loader: the object mapped at AT_BASE (_dl_find_object itself lives in libc).
    if (unsigned long base = getauxval(AT_BASE);
        base && _dl_find_object(reinterpret_cast<void *>(base), &fo) == 0)
        g_loader_map.store(fo.dlfo_link_map, std::memory_order_release);
    if (const char *v = std::getenv("GRAFT_OWN_WALK"); v && std::strcmp(v, "libgcc") == 0)
        g_rows_walk.store(false, std::memory_order_relaxed);
    if (const char *v = std::getenv("GRAFT_VERIFY_HANDLER_WALK"); v && *v)
        g_verify_fd = open(v, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    // This runs on a pthread: the outermost frame of its stack is the thread-start helper.
    OwnWalk w;
    _Unwind_Backtrace(collect, &w);
    if (w.n > 0) g_roots[0].store(fde_func(w.pc[w.n - 1] & ~(1ull << 63)));
    g_roots[1].store(fde_func(getauxval(AT_ENTRY)));
    if (void *c = dlsym(RTLD_DEFAULT, "clone")) g_roots[2].store(fde_func(reinterpret_cast<uintptr_t>(c)));
}

namespace {
// A word of this process's memory that may be unmapped or changing under us (another thread's
// live stack): process_vm_readv fails instead of faulting.
bool read_own_word(uintptr_t addr, uintptr_t *out) {
    iovec local{out, sizeof *out}, remote{reinterpret_cast<void *>(addr), sizeof *out};
    return process_vm_readv(g_pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(sizeof *out);
}

// From a frame a thread's own check missed, climb the rest of its stack as it stands now and
// queue the rows of every function on it. The thread is running, so what this reads may be
// stale or torn: that can only make it queue rows of the wrong functions (rows are always true
// of the code they describe), or stop early, never publish a wrong row.
void prepare_rows_from(const FrameMiss &m) {
    uintptr_t pc = m.pc, sp = m.sp, bp = m.bp;
    bool bp_known = m.bp_known;
    for (int n = 0; n < kMaxFrames && pc; n++) {
        if (!frame_rules_known(pc)) frame_rules_note_function(g_dw.dwfl, pc);
        if (sp == 0) return;
        FrameRule rule;
        rule_for(pc, &rule);
        uintptr_t cfa = 0;
        if (rule.kind == FrameRule::kRspCfa)
            cfa = sp + static_cast<uintptr_t>(rule.cfa_offset);
        else if (rule.kind == FrameRule::kRbpCfa && bp_known)
            cfa = bp + static_cast<uintptr_t>(rule.cfa_offset);
        else
            return;  // the root, or a frame only libgcc can climb
        uintptr_t ra = 0;
        if (cfa <= sp || !read_own_word(cfa - 8, &ra) || ra == 0) return;
        if (rule.rbp == FrameRule::kRbpAtCfa)
            bp_known =
                read_own_word(cfa + static_cast<uintptr_t>(static_cast<intptr_t>(rule.rbp_offset)), &bp);
        else if (rule.rbp == FrameRule::kRbpUnknown)
            bp_known = false;
        sp = cfa;
        pc = ra - 1;
    }
}
}  // namespace

void stack_check_share_rules() {
    FrameMiss missed[64];
    if (size_t n = frame_rules_take_misses(missed, 64); n && ensure_dwfl())
        for (size_t i = 0; i < n; i++) prepare_rows_from(missed[i]);
    frame_rules_publish();
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

void stack_check_after_fork_child() {
    g_pid = getpid();
    stack_check_invalidate();  // the unwinder was attached to the parent
}

void stack_check_invalidate() {
    g_cfi_known.clear();
    g_rules.clear();
    if (g_dw.dwfl) dwfl_end(g_dw.dwfl);
    g_dw.dwfl = nullptr;
    g_dw.refresh = false;
}

void stack_check_objects_added() {
    g_dw.refresh = true;
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

StackPrefix copy_stack_prefix(uintptr_t sp, unsigned char *buf) {
    StackPrefix p;
    const size_t want = std::min(kStackPrefixMax, static_cast<size_t>(first_copy_end(sp) - sp));
    iovec local{buf, want};
    iovec remote{reinterpret_cast<void *>(sp), want};
    ssize_t n = process_vm_readv(g_pid, &local, 1, &remote, 1, 0);
    p.bytes = buf;
    p.len = n > 0 ? static_cast<size_t>(n) : 0;
    p.ended = n < static_cast<ssize_t>(want);
    return p;
}

StackResult check_blocked_thread(pid_t tid, uintptr_t sp, uintptr_t pc, const ForbiddenTable *table,
                                 const StackPrefix *prefix) {
    StackResult r;
    if (!ensure_dwfl()) {
        r.why = "the unwinder could not read the process's modules";
        return r;
    }
    g_dw.target = RemoteTarget{tid, sp, pc};
    load_window(sp, prefix);
    if (cached_walk(sp, pc, table, &r)) return r;
    RemoteWalk w{table, {}, 0, 0, false};
    int rc = dwfl_getthread_frames(g_dw.dwfl, tid, remote_frame, &w);
    if (w.bad) {
        w.result.verdict = StackVerdict::kUnreliable;
        w.result.busy_in = nullptr;
        return w.result;
    }
    if (rc != 0 || w.n == 0 || !is_root(w.last)) {
        r.why = "the stack does not end at a thread's start";
        return r;
    }
    w.result.verdict = w.result.busy_in ? StackVerdict::kBusy : StackVerdict::kClean;
    return w.result;
}

}  // namespace graft
