#include "agent/process/entry_rewrite.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "agent/livepatch/transition.hpp"
#include "agent/proc/mappings.hpp"
#include "agent/proc/task_files.hpp"
#include "agent/process/code_blocks.hpp"
#include "agent/process/code_writer.hpp"
#include "agent/service/hold_stats.hpp"
#include "agent/threads/thread_state.hpp"
#include "agent/unwind/stack_check.hpp"
#include "arch/x86_64/relocate.hpp"

namespace graft {
namespace {

// Every ordinary entry graft ever prepared, for the SIGTRAP handler: where its int3 may stand
// and where a thread that meets it goes. Append-only: written under the core mutex, then
// published by the release increment of g_entry_count, which the handler loads with acquire.
// An entry is never removed (a thread may take its trap long after the batch that wrote it).
struct TrapEntry {
    uintptr_t at;
    uintptr_t block;
};
constexpr uint32_t kMaxEntries = arch::kStubCount;
TrapEntry g_entries[kMaxEntries];
std::atomic<uint32_t> g_entry_count{0};

// The SIGTRAP action found before graft's: traps that are not graft's go there. Written under
// the core mutex before sigaction() installs the handler that reads it.
struct sigaction g_prev_trap {};

// How long a rewrite waits for every thread to be seen outside the changing bytes before it gives
// up (nothing changed). 2 s was once too short for a spinning thread under AddressSanitizer on a
// loaded two-CPU CI machine (it gets the transition signal only when it had a fair share of a
// CPU); a refusal costs the user a retry, a longer wait nothing while threads are seen at once.
constexpr auto kWait = std::chrono::milliseconds(5000);
// How long a thread must be seen on a CPU without sleeping before it is signalled.
constexpr auto kBusyBeforeSignal = std::chrono::milliseconds(2);

// The probe of step 2 (wait_threads_clear): which threads have been seen outside the changing
// bytes since the int3s went in. A thread that is seen once is done: it can only come back
// through an int3, which sends it elsewhere.
//   g_probe_gen: odd while a probe runs. The worker fills g_probe_table and clears g_seen, then
//   stores an odd value with release; handlers load it with acquire, read the table, and load
//   it again before they record: a change in between (the worker's release store of the next
//   even value at the probe's end) means the table may have been rewritten, and nothing is
//   recorded (a seqlock).
//   g_seen: open-addressed by tid; each slot holds (gen << 32 | tid), CAS-inserted by handlers;
//   the worker counts only entries of the current generation.
constexpr size_t kProbeRanges = 4096;
constexpr size_t kSeenSlots = 4096;
std::atomic<uint64_t> g_probe_gen{0};
alignas(
    ForbiddenTable) unsigned char g_probe_buf[sizeof(ForbiddenTable) + sizeof(ForbiddenRange) * kProbeRanges];
ForbiddenTable *const g_probe_table = reinterpret_cast<ForbiddenTable *>(g_probe_buf);
std::atomic<uint64_t> g_seen[kSeenSlots];

pid_t own_tid() {
    return static_cast<pid_t>(syscall(SYS_gettid));
}

void note_seen(uint64_t gen, pid_t tid) {
    const uint64_t v = gen << 32 | static_cast<uint32_t>(tid);
    for (size_t i = 0; i < kSeenSlots; i++) {
        auto &slot = g_seen[(static_cast<size_t>(tid) + i) % kSeenSlots];
        uint64_t cur = slot.load(std::memory_order_relaxed);
        while (cur == 0 || static_cast<uint32_t>(cur) == static_cast<uint32_t>(tid)) {
            if (cur == v) return;
            // Release: pairs with the worker's acquire load in seen_now().
            if (slot.compare_exchange_weak(cur, v, std::memory_order_release, std::memory_order_relaxed))
                return;
        }
    }
}

bool seen_now(uint64_t gen, pid_t tid) {
    const uint64_t v = gen << 32 | static_cast<uint32_t>(tid);
    for (size_t i = 0; i < kSeenSlots; i++) {
        uint64_t cur = g_seen[(static_cast<size_t>(tid) + i) % kSeenSlots].load(std::memory_order_acquire);
        if (cur == v) return true;
        if (cur == 0) return false;
    }
    return false;
}

bool in_probe(uintptr_t pc) {
    for (size_t i = 0; i < g_probe_table->count; i++)
        if (pc >= g_probe_table->ranges[i].lo && pc < g_probe_table->ranges[i].hi) return true;
    return false;
}

void on_trap(int sig, siginfo_t *si, void *uc) {
    int saved = errno;
    uintptr_t at = arch::trap_pc(uc) - arch::kBreakpointSize;
    // Only an int3 the thread executed (the kernel reports it as SI_KERNEL): a single-step or a
    // hardware breakpoint right after an entry's first instruction has the same pc, and a
    // SIGTRAP sent by kill() any pc.
    uint32_t n = si && si->si_code == SI_KERNEL ? g_entry_count.load(std::memory_order_acquire) : 0;
    for (uint32_t i = 0; i < n; i++) {
        if (g_entries[i].at != at) continue;
        // Still the int3: go where the entry leads in either state. Already rewritten (the trap
        // was taken before the last byte changed, the signal delivered after): run it again.
        uint8_t now = __atomic_load_n(reinterpret_cast<const uint8_t *>(at), __ATOMIC_RELAXED);
        arch::set_trap_pc(uc, now == arch::kBreakpoint ? g_entries[i].block : at);
        // At an entry's first byte: outside every changing range, and it cannot re-enter one.
        uint64_t gen = g_probe_gen.load(std::memory_order_acquire);
        if (gen & 1) note_seen(gen, own_tid());
        errno = saved;
        return;
    }
    // Not graft's: what the process would have done without graft.
    if (g_prev_trap.sa_flags & SA_SIGINFO) {
        if (g_prev_trap.sa_sigaction) g_prev_trap.sa_sigaction(sig, si, uc);
    } else if (g_prev_trap.sa_handler == SIG_DFL) {
        // The default action (a core dump) once this handler returns: the signal stays blocked
        // until then, and the re-raised one finds the default disposition.
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGTRAP, &dfl, nullptr);
        raise(SIGTRAP);
    } else if (g_prev_trap.sa_handler != SIG_IGN) {
        g_prev_trap.sa_handler(sig);
    }
    errno = saved;
}

bool ensure_trap_handler(std::string *why) {
    struct sigaction cur {};
    if (sigaction(SIGTRAP, nullptr, &cur) != 0) {
        *why = std::string("cannot read the SIGTRAP action: ") + std::strerror(errno);
        return false;
    }
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_trap) return true;
    g_prev_trap = cur;
    struct sigaction sa {};
    sa.sa_sigaction = on_trap;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    // The transition signal waits until this handler returned: a thread that took the trap
    // stands at the entry's second byte, where the function's unwind information describes a
    // frame after its first instruction, which did not run; a walk from a handler nested here
    // would read a wrong return address. After the return its pc is the block's jump.
    if (int ts = transition_signal(); ts > 0) sigaddset(&sa.sa_mask, ts);
    if (sigaction(SIGTRAP, &sa, nullptr) != 0) {
        *why = std::string("cannot install graft's SIGTRAP handler: ") + std::strerror(errno);
        return false;
    }
    return true;
}

// A tracer (a debugger, strace -k...) receives the SIGTRAP of an int3 before the process does
// and, not knowing it, would resume the thread past it into bytes being rewritten.
bool traced(pid_t *tracer) {
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = 0;
    const char *p = std::strstr(buf, "TracerPid:");
    *tracer = p ? static_cast<pid_t>(std::atoi(p + 10)) : 0;
    return *tracer != 0;
}

void pause_briefly() {
    timespec ts{0, 50 * 1000};
    nanosleep(&ts, nullptr);
}

// Whether any aligned word of a sleeping thread's stack, from `sp` up, is an address inside the
// changing bytes: where a signal frame keeps the pc of the code it interrupted. A conservative
// test (any word with such a value counts, whatever frame holds it) that needs no unwinding, so
// it holds for frames no unwinder can climb. Unreadable: counted as holding one.
bool holds_probe_address(const std::vector<std::pair<uintptr_t, uintptr_t>> &maps, uintptr_t sp) {
    sp &= ~uintptr_t{7};
    uintptr_t end = 0;
    for (const auto &[a, b] : maps)
        if (sp >= a && sp < b) end = b;
    if (!end) return true;
    static uint64_t chunk[8192];  // worker (or the one thread holding the core mutex) only
    for (uintptr_t at = sp; at < end;) {
        size_t len = end - at < sizeof chunk ? end - at : sizeof chunk;
        iovec local{chunk, len};
        iovec remote{reinterpret_cast<void *>(at), len};
        if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != static_cast<ssize_t>(len)) return true;
        for (size_t i = 0; i < len / 8; i++)
            if (in_probe(static_cast<uintptr_t>(chunk[i]))) return true;
        at += len;
    }
    return false;
}

// Step 2 of the protocol: every thread but this one seen outside the changing bytes, with no
// frame of its stack inside them, once after the int3s went in.
//  - A thread asleep in the kernel: /proc/self/task/T/syscall says where it stopped (never
//    signalled: it may be in a system call that a signal would interrupt).
//  - A thread that meets an int3: the trap handler records it.
//  - A thread on a CPU (or ready to run: the kernel shows neither's registers): the transition
//    signal, whose handler looks at where it interrupted the thread (entry_rewrite_on_signal).
// A sleeping thread's stack is scanned for such a pc rather than walked (holds_probe_address);
// an interrupted one must have a walk that reaches its root.
bool wait_threads_clear(std::string *why) {
    const pid_t self = own_tid();
    const auto stacks = process_mappings();
    const int sig = transition_signal();
    const uint64_t gen = g_probe_gen.load(std::memory_order_relaxed);
    // A thread the kernel shows running gets the signal only once it has stayed on a CPU for a
    // while without sleeping: a thread between two system calls could be interrupted in the
    // next one (poll() returns EINTR after any handler), a busy one is in its own code.
    struct Watch {
        pid_t tid;
        std::chrono::steady_clock::time_point running_since{};
        unsigned long long voluntary = 0, cpu_ns = 0;
        bool running = false;
    };
    std::vector<Watch> pending;
    for (pid_t t : list_tids())
        if (t != self) pending.push_back({t});
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + kWait;
    for (;;) {
        const auto now = std::chrono::steady_clock::now();
        std::vector<Watch> left;
        for (Watch w : pending) {
            const pid_t t = w.tid;
            if (seen_now(gen, t)) continue;
            Frozen fz;
            int err = read_syscall_err(t, &fz);
            if (err && thread_gone(err)) continue;
            if (err) {
                left.push_back(w);
                continue;
            }
            if (!fz.sleeping) {
                Frozen st;
                if (!read_status(t, 0, &st)) {
                    left.push_back(w);
                    continue;
                }
                unsigned long long cpu_ns = 0, slices = 0;
                if (!read_schedstat(t, &cpu_ns, &slices)) cpu_ns = 0;
                if (!w.running || st.voluntary != w.voluntary) {
                    w.running = true;
                    w.running_since = now;
                    w.voluntary = st.voluntary;
                    w.cpu_ns = cpu_ns;
                } else if (now - w.running_since >= kBusyBeforeSignal && sig > 0) {
                    // On a CPU for a fair share of that time (a thread woken from a system call, waiting
                    // for a CPU, shows "running" too, gains no CPU time and is still inside the call).
                    auto window = std::chrono::duration_cast<std::chrono::nanoseconds>(now - w.running_since);
                    if (cpu_ns - w.cpu_ns >= static_cast<unsigned long long>(window.count()) / 8)
                        syscall(SYS_tgkill, getpid(), t, sig);
                    w.running_since = now;  // the next look after as long again
                    w.cpu_ns = cpu_ns;
                }
                left.push_back(w);
                continue;
            }
            w.running = false;
            if (in_probe(fz.pc)) {
                left.push_back(w);  // it leaves at its next instructions once it runs
                continue;
            }
            if (holds_probe_address(stacks, fz.sp)) {
                left.push_back(w);  // a signal frame interrupted it inside: wait for its return
                continue;
            }
        }
        if (left.empty()) return true;
        if (std::chrono::steady_clock::now() > deadline) {
            *why = "thread " + std::to_string(left.front().tid) + " ('" + read_thread_name(left.front().tid) +
                   "') could not be seen outside the entries' first bytes within " +
                   std::to_string(kWait.count()) + " ms";
            return false;
        }
        pending.swap(left);
        pause_briefly();
    }
}

void first_byte_writes(const std::vector<EntryFlip> &flips, bool breakpoint, std::vector<CodeWrite> *out) {
    for (const auto &f : flips) {
        const arch::EntryLayout &e = *f.entry;
        // Restoring: what the first byte was before this batch.
        uint8_t b = breakpoint ? arch::kBreakpoint : (f.was_open ? e.jump[0] : e.original[0]);
        out->push_back({e.gate, 1, {b}});
    }
}

// The first bytes as they were before the batch, over int3s whose tails never changed.
void remove_breakpoints(const std::vector<EntryFlip> &flips) {
    std::vector<CodeWrite> undo;
    first_byte_writes(flips, false, &undo);
    std::string why;
    if (!write_code(undo, &why))
        code_writer_mark_broken("an entry's int3 could not be removed after a failed rewrite: " + why);
    arch::sync_cores();
}

}  // namespace

void entry_rewrite_on_signal(uintptr_t pc, uintptr_t sp, uintptr_t fp) {
    uint64_t gen = g_probe_gen.load(std::memory_order_acquire);
    if (!(gen & 1) || in_probe(pc)) return;
    const InterruptedRegs regs{pc, sp, fp};
    StackResult r = check_own_stack(SelfContext::kSignalHandler, g_probe_table, &regs, hold_now_ns() + 25000);
    // Only a walk that reached the thread's root proves that no signal frame below holds a pc
    // inside: anything else leaves the thread to another sighting (asleep, or at an int3).
    if (r.verdict != StackVerdict::kClean) return;
    if (g_probe_gen.load(std::memory_order_acquire) != gen) return;  // the table changed meanwhile
    note_seen(gen, own_tid());
}

bool prepare_ordinary_entry(uintptr_t func, size_t size, arch::EntryLayout *out, std::string *why,
                            const std::vector<arch::CodeRange> &cold) {
    if (g_entry_count.load(std::memory_order_relaxed) >= kMaxEntries) {
        *why = "graft's table of rewritten entries is full";
        return false;
    }
    uintptr_t block = alloc_code_block(func, arch::kBlockSize, why);
    if (!block) return false;
    arch::EntryRewrite r;
    if (!arch::plan_entry_rewrite(func, size, block, &r, why, cold.data(), cold.size())) return false;
    std::vector<CodeWrite> writes;
    for (size_t off = 0; off < r.block_len; off += 16) {
        CodeWrite w{block + off, 16, {}};
        std::memcpy(w.bytes, r.block + off, 16);
        writes.push_back(w);
    }
    // The slot is data (code_blocks.hpp): first the copy of the old start, like a closed gate.
    const uintptr_t slot = block + arch::kBlockSlotDistance;
    __atomic_store_n(reinterpret_cast<uintptr_t *>(slot), block + arch::kBlockCopyOffset, __ATOMIC_RELAXED);
    // No thread can reach the block or its slot before the entry's jump is written (step 4 of a
    // later flip, after a core-serialising barrier).
    if (!write_code(writes, why)) return false;
    arch::EntryLayout e;
    e.func = func;
    e.prefix = block;
    e.slot = slot;
    e.gate = r.at;
    e.body = block + arch::kBlockCopyOffset;
    e.prefix_ours = true;
    e.gate_open = false;
    e.ordinary = true;
    e.displaced = r.displaced;
    e.one_instruction = r.one_instruction;
    std::memcpy(e.original, r.original, arch::kEntryJumpSize);
    arch::entry_jump_bytes(r, block, e.jump);
    e.copy_end = block + r.block_len;
    uint32_t i = g_entry_count.load(std::memory_order_relaxed);
    g_entries[i] = {r.at, block};
    // Pairs with the acquire load in on_trap().
    g_entry_count.store(i + 1, std::memory_order_release);
    *out = e;
    return true;
}

uintptr_t ordinary_jump_destination(const arch::EntryLayout &e, uintptr_t target) {
    uint8_t bytes[arch::kEntryJumpSize];
    return target && arch::jump_rel32_bytes(e.gate, target, bytes) ? target : 0;
}

bool wait_threads_outside(const std::vector<arch::CodeRange> &ranges, std::string *why) {
    if (ranges.size() > kProbeRanges) {
        *why = "too many entries to rewrite at once";
        return false;
    }
    for (size_t i = 0; i < ranges.size(); i++)
        g_probe_table->ranges[i] = {ranges[i].lo, ranges[i].lo + ranges[i].len, "an entry being rewritten"};
    g_probe_table->count = ranges.size();
    for (auto &slot : g_seen) slot.store(0, std::memory_order_relaxed);
    // Release: the table and the cleared slots before any handler sees the probe running (pairs
    // with the acquire loads in on_trap() and entry_rewrite_on_signal()).
    g_probe_gen.store(g_probe_gen.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    bool clear = wait_threads_clear(why);
    // Release: pairs with the handlers' second acquire load (the probe's end).
    g_probe_gen.store(g_probe_gen.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    return clear;
}

bool flip_ordinary_entries(const std::vector<EntryFlip> &flips, std::string *why) {
    if (flips.empty()) return true;
    pid_t tracer = 0;
    if (traced(&tracer)) {
        *why = "the process is traced by pid " + std::to_string(tracer) +
               ", which would take the breakpoints graft writes while it rewrites a function's entry";
        return false;
    }
    if (!ensure_trap_handler(why)) return false;
    // 1. The int3s.
    std::vector<CodeWrite> w;
    first_byte_writes(flips, true, &w);
    if (!write_code(w, why)) return false;
    arch::sync_cores();
    // 2. No thread inside the bytes that change: only where original instructions are replaced
    // or come back (a jmp's destination alone changes under threads that can only be before it),
    // and only where they are more than one instruction (a pc, or a return address a signal frame
    // saved, is always an instruction's start: with one instruction, and the jmp, there is no
    // start inside the changing bytes).
    std::vector<arch::CodeRange> changing;
    for (const auto &f : flips)
        if (f.open != f.was_open && !f.entry->one_instruction)
            changing.push_back({f.entry->gate + 1, f.entry->displaced - 1u});
    if (!changing.empty() && !wait_threads_outside(changing, why)) {
        remove_breakpoints(flips);
        return false;
    }
    // 3. The rest of each entry's new bytes; no thread can be executing them.
    std::vector<CodeWrite> tails;
    for (const auto &f : flips) {
        uint8_t bytes[arch::kEntryJumpSize];
        if (!f.open)
            std::memcpy(bytes, f.entry->original, sizeof bytes);
        else if (!f.jump_to || !arch::jump_rel32_bytes(f.entry->gate, f.jump_to, bytes))
            std::memcpy(bytes, f.entry->jump, sizeof bytes);
        CodeWrite t{f.entry->gate + 1, arch::kEntryJumpSize - 1, {}};
        std::memcpy(t.bytes, bytes + 1, arch::kEntryJumpSize - 1);
        tails.push_back(t);
    }
    if (!write_code(tails, why)) {
        // write_code() refuses before it stores anything: the old tails are still there.
        remove_breakpoints(flips);
        return false;
    }
    arch::sync_cores();
    // 4. The first bytes.
    std::vector<CodeWrite> heads;
    for (const auto &f : flips)
        heads.push_back({f.entry->gate, 1, {f.open ? f.entry->jump[0] : f.entry->original[0]}});
    if (!write_code(heads, why)) {
        // Every entry is an int3 over complete new bytes: a consistent state for the handler,
        // but not what graft's records say.
        code_writer_mark_broken("an entry's first byte could not be written after its int3: " + *why);
        return false;
    }
    arch::sync_cores();
    return true;
}

}  // namespace graft
