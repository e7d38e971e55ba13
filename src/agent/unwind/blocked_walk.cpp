// The worker checking a thread blocked in a system call where it stands (klp_check_stack on a
// sleeping task): its stack is copied with process_vm_readv and climbed with cached CFI rules,
// libdwfl for unusual frames. Also the rows the worker prepares for the threads' own walks.
// Worker only, with the core mutex held.
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <libelf.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "agent/process/symbols.hpp"
#include "agent/unwind/frame_rules.hpp"
#include "agent/unwind/stack_check.hpp"
#include "agent/unwind/walk_common.hpp"
#include "arch/x86_64/stack_height.hpp"

namespace graft {
namespace {

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
// CFA - sp from the code, per pc (code_cfa_offset); INT32_MIN: no certain answer. Worker only;
// cleared with the session.
auto &g_heights = *new std::unordered_map<Dwarf_Addr, int32_t>;

// The process's modules, from its maps. libdwfl's own report first reads /proc/PID/auxv (for the
// vDSO's address), which a process that is not dumpable may not open (its /proc files are root's;
// maps stays readable by everyone): it then reads the maps alone, without the vDSO, whose code
// has no blocking calls to be found in.
bool report_modules(Dwfl *d) {
    int rc = dwfl_linux_proc_report(d, getpid());
    if (rc == EACCES || rc == EPERM) {
        FILE *f = std::fopen("/proc/self/maps", "re");
        if (!f) return false;
        rc = dwfl_linux_proc_maps_report(d, f);
        std::fclose(f);
    }
    return rc == 0 && dwfl_report_end(d, nullptr, nullptr) == 0;
}

bool ensure_dwfl() {
    if (g_dw.dwfl && g_dw.refresh) {
        // Objects were only added: report the modules again into the same session. Modules
        // reported again unchanged (same name and range) keep what libdwfl already parsed of
        // them (their ELF, their CFI); only the new ones are read.
        g_dw.refresh = false;
        dwfl_report_begin(g_dw.dwfl);
        if (!report_modules(g_dw.dwfl)) {
            dwfl_end(g_dw.dwfl);
            g_dw.dwfl = nullptr;
            g_cfi_known.clear();
            g_rules.clear();
            g_heights.clear();
        }
    }
    if (g_dw.dwfl) return true;
    Dwfl *d = dwfl_begin(&kDwflCallbacks);
    if (!d) return false;
    if (!report_modules(d)) {
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
//
// Frames of code built with frame pointers say "CFA = rbp + 16" instead, and the worker does not
// know the blocked thread's rbp (/proc/T/syscall gives only sp and pc). rbp becomes known once a
// frame below saved it (its CFI says where); until then, the frame's CFA comes from the height
// of its stack at pc, derived from the function's code (arch/x86_64/stack_height.hpp, the
// kernel's ORC idea), and is accepted only when the code's own distance from CFA to rbp there is
// the one CFI states. The first frame that is anything else (a signal frame, a pc without CFI, a
// return address saved elsewhere, code whose height is not certain) sends the whole check to the
// libdwfl walk below: the cache only ever repeats what libdw said, and decides nothing libdwfl
// would not.
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
    return out->kind != FrameRule::kOther;
}

// CFA - sp at `pc` (exact, or a return address - 1) from the code of its function, checked
// against the CFI row `rule` (CFA = rbp + rule.cfa_offset); INT32_MIN when there is no certain
// answer. Cached per pc for the session (g_heights).
int32_t code_cfa_offset(Dwarf_Addr pc, const FrameRule &rule) {
    auto it = g_heights.find(pc);
    if (it != g_heights.end()) return it->second;
    if (g_heights.size() >= 65536) g_heights.clear();
    int32_t off = INT32_MIN;
    uintptr_t lo = 0, hi = 0;
    FrameRule first;
    arch::FrameHeight h;
    // The function must begin as every function does (CFA = rsp + 8): a .cold part continues
    // its parent's frame, and its height at its first byte is not in its own code.
    if (fde_range(pc, &lo, &hi) && rule_for(lo, &first) && first.kind == FrameRule::kRspCfa &&
        first.cfa_offset == 8 && arch::frame_height_at(lo, hi - lo, pc, &h) && h.bp_known &&
        h.cfa_minus_bp == rule.cfa_offset && h.cfa_minus_sp > 0)
        off = h.cfa_minus_sp;
    if (g_debug)
        std::fprintf(stderr, "graft-unwind: code height at %#lx (function %#lx-%#lx): %d\n",
                     (unsigned long)pc, (unsigned long)lo, (unsigned long)hi, off);
    g_heights.emplace(pc, off);
    return off;
}

// True and a verdict when every frame from sp/pc to the thread's root has a simple rule.
bool cached_walk(uintptr_t sp, uintptr_t pc, const ForbiddenTable *table, StackResult *out) {
    StackResult r;
    Dwarf_Addr look = pc;  // the first frame's pc is exact (where the system call returns)
    uintptr_t bp = 0;
    bool bp_known = false;  // the thread's rbp is not in /proc
    for (int n = 1;; n++) {
        if (n > kMaxFrames) return false;
        FrameRule rule;
        if (!rule_for(look, &rule)) return false;
        if (n > 1 && in_graft_hot_code(look)) return false;
        if (const char *hit = find_forbidden(look, table); hit && !r.busy_in) r.busy_in = hit;
        if (rule.kind == FrameRule::kOutermost) {
            if (!is_root(look)) return false;
            r.verdict = r.busy_in ? StackVerdict::kBusy : StackVerdict::kClean;
            *out = r;
            return true;
        }
        uintptr_t cfa = 0;
        if (!frame_cfa(rule, sp, bp, bp_known, &cfa)) {
            const int32_t off = rule.kind == FrameRule::kRbpCfa ? code_cfa_offset(look, rule) : INT32_MIN;
            if (off == INT32_MIN) return false;
            cfa = sp + static_cast<uintptr_t>(off);
        }
        Dwarf_Word ra = 0;
        if (cfa <= sp || !dw_memory_read(nullptr, cfa - 8, &ra, nullptr) || ra == 0) return false;
        frame_caller_rbp(
            rule, cfa,
            [](uintptr_t a, uintptr_t *w) {
                Dwarf_Word v = 0;
                const bool ok = dw_memory_read(nullptr, a, &v, nullptr);
                *w = v;
                return ok;
            },
            &bp, &bp_known);
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
        if (!frame_cfa(rule, sp, bp, bp_known, &cfa)) return;  // the root, or a frame only libgcc can climb
        uintptr_t ra = 0;
        if (cfa <= sp || !read_own_word(cfa - 8, &ra) || ra == 0) return;
        frame_caller_rbp(rule, cfa, read_own_word, &bp, &bp_known);
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

void stack_check_after_fork_child() {
    g_pid = getpid();
    stack_check_invalidate();  // the unwinder was attached to the parent
}

void stack_check_invalidate() {
    g_cfi_known.clear();
    g_rules.clear();
    g_heights.clear();
    if (g_dw.dwfl) dwfl_end(g_dw.dwfl);
    g_dw.dwfl = nullptr;
    g_dw.refresh = false;
}

void stack_check_objects_added() {
    g_dw.refresh = true;
}

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
