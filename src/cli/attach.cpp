// graft attach: the agent enters a running process through one of its own threads, borrowed for
// the few microseconds it takes to write a call frame (docs/design.md, "Attach").
//
// Which thread: one running user code, else one blocked in a system call that the kernel restarts
// by itself after a stop (read, futex, nanosleep...): never one in a call that a stop makes fail
// with EINTR (epoll_wait, semop, sigtimedwait...), never one stopped inside the C library or the
// dynamic loader outside a system call (it may hold their locks, which dlopen takes). The thread
// is stopped with PTRACE_INTERRUPT only (PTRACE_SEIZE sends no SIGSTOP) and no other thread is
// touched. Its registers are set to call dlopen(agent), returning through glibc's signal-return
// stub over a frame holding its own registers, vector state and signal mask; graft detaches
// before the call runs. If graft dies at any point, the thread either was never changed or runs
// the call and resumes exactly where it was.
#include "cli/attach.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "agent/process/elf_file.hpp"
#include "arch/remote.hpp"
#include "cli/client.hpp"
#include "cli/namespaces.hpp"
#include "cli/remote_stack.hpp"
#include "cli/seccomp_check.hpp"
#include "cli/target_root.hpp"

namespace graft::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct Range {
    uint64_t lo = 0, hi = 0;
    bool has(uint64_t a) const { return a >= lo && a < hi; }
};

struct LibcFunction {
    uint64_t lo = 0, hi = 0;  // in the process
    std::string name;
};

struct Target {
    pid_t pid = 0;
    std::string proc;
    std::string libc_path;
    uint64_t libc_base = 0;
    std::vector<Range> libc_code, loader_code;  // executable mappings of libc.so.6 and ld.so
    std::vector<LibcFunction> libc_functions;   // sorted by lo
    std::unique_ptr<RemoteStack> stack;         // made before any thread is stopped
    uint64_t dlopen_at = 0, sigreturn_at = 0;
    int64_t errno_tpoff = 0;  // errno's offset from the thread pointer (0: unknown)
    int mem_fd = -1;
    bool seccomp_filter = false;  // /proc: the process runs under seccomp filters
};

[[noreturn]] void refuse(pid_t pid, const std::string &why, int err) {
    die("attach " + std::to_string(pid), why + ": " + errno_text(err));
}

std::string read_text(const std::string &path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string status_field(const std::string &status, const std::string &key) {
    size_t at = status.find("\n" + key + ":");
    if (at == std::string::npos) return {};
    size_t b = status.find_first_not_of(" \t", at + key.size() + 2);
    size_t e = status.find('\n', b);
    return b == std::string::npos ? std::string() : status.substr(b, e - b);
}

// The kernel gives a non-dumpable process's /proc files (not its directories) to root, or to the
// owner of its user namespace: a process that does not run as root but whose /proc/PID/syscall
// is root's is not dumpable, and its agent cannot open its own threads' files.
bool dumpable(const Target &t) {
    struct stat st {};
    const std::string uids = status_field("\n" + read_text(t.proc + "/status"), "Uid");
    const auto euid =
        static_cast<uid_t>(std::strtoul(uids.substr(uids.find_first_of(" \t") + 1).c_str(), nullptr, 10));
    return uids.empty() || stat((t.proc + "/syscall").c_str(), &st) != 0 || euid == 0 || st.st_uid != 0;
}

void check_process(Target &t) {
    std::string st = read_text(t.proc + "/status");
    if (st.empty()) refuse(t.pid, "no such process", ESRCH);
    std::string state = status_field("\n" + st, "State");
    if (!state.empty() && (state[0] == 'Z' || state[0] == 'X'))
        refuse(t.pid, "the process is a zombie or exiting", ESRCH);
    if (!state.empty() && state[0] == 't') refuse(t.pid, "the process is stopped by a debugger", EBUSY);
    if (!state.empty() && state[0] == 'T') refuse(t.pid, "the process is stopped (SIGSTOP)", EBUSY);
    std::string tracer = status_field("\n" + st, "TracerPid");
    if (!tracer.empty() && tracer != "0")
        refuse(t.pid, "the process is already traced by process " + tracer, EBUSY);
    const std::string seccomp = status_field("\n" + st, "Seccomp");
    if (seccomp == "1")
        refuse(t.pid, "it runs in seccomp strict mode (only read, write and exit are allowed)", EPERM);
    t.seccomp_filter = seccomp == "2";
}

// A filter the borrowed thread runs under must allow every call the agent makes: a call it
// refuses could kill the process. Checked while the thread is stopped (the only way to read its
// filters); "" if they allow the agent.
std::string seccomp_check(const Target &t, pid_t tid) {
    if (!t.seccomp_filter) return "";
    std::vector<SeccompFilter> filters;
    std::string err;
    if (!read_seccomp_filters(tid, &filters, &err))
        return err + "; the agent's calls could not be checked against it";
    return seccomp_refusal(filters);
}

std::string ptrace_refusal(int err) {
    if (err != EPERM) return "cannot trace it";
    std::string scope = read_text("/proc/sys/kernel/yama/ptrace_scope");
    while (!scope.empty() && (scope.back() == '\n' || scope.back() == ' ')) scope.pop_back();
    if (!scope.empty() && scope != "0")
        return "no permission to trace it (Yama ptrace_scope is " + scope +
               " in /proc/sys/kernel/yama/ptrace_scope; run as root or set it to 0)";
    return "no permission to trace it (another user's process needs root or CAP_SYS_PTRACE)";
}

void check_exe(Target &t) {
    unsigned char h[EI_NIDENT + 4] = {};
    int fd = open((t.proc + "/exe").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        refuse(t.pid, e == EACCES || e == EPERM ? ptrace_refusal(EPERM) : "cannot read its executable", e);
    }
    ssize_t n = pread(fd, h, sizeof h, 0);
    close(fd);
    if (n < static_cast<ssize_t>(sizeof h) || std::memcmp(h, ELFMAG, SELFMAG) != 0)
        refuse(t.pid, "its executable is not an ELF file", ENOEXEC);
    if (h[EI_CLASS] != ELFCLASS64) refuse(t.pid, "it is a 32-bit program (graft supports x86-64)", ENOEXEC);
    uint16_t machine = 0;
    std::memcpy(&machine, h + EI_NIDENT + 2, 2);
    if (machine != EM_X86_64) refuse(t.pid, "it is not an x86-64 program", ENOEXEC);
}

// Its libc.so.6 (where dlopen and the signal-return stub are) and the code no thread may be
// borrowed in.
void read_maps(Target &t) {
    std::ifstream maps(t.proc + "/maps");
    std::string line;
    bool musl = false;
    while (std::getline(maps, line)) {
        unsigned long lo, hi, off;
        char perms[8] = {};
        int path_at = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx %7s %lx %*s %*s %n", &lo, &hi, perms, &off, &path_at) < 4)
            continue;
        std::string path = path_at > 0 ? line.substr(static_cast<size_t>(path_at)) : std::string();
        std::string base = path.substr(path.rfind('/') + 1);
        if (base.find("ld-musl") == 0 || base.find("libc.musl") == 0) musl = true;
        bool libc = base == "libc.so.6", ld = base.find("ld-linux") == 0;
        if (libc && off == 0 && t.libc_path.empty()) t.libc_path = path, t.libc_base = lo;
        if (libc && perms[2] == 'x') t.libc_code.push_back({lo, hi});
        if (ld && perms[2] == 'x') t.loader_code.push_back({lo, hi});
    }
    if (musl) refuse(t.pid, "it uses musl libc (graft supports glibc 2.34 or newer)", ENOTSUP);
    if (t.libc_path.empty())
        refuse(t.pid, "it has no libc.so.6 mapped (statically linked, or not a glibc program)", ENOTSUP);
}

// The file's bytes of each executable segment, with the segment's address (segments that do not
// lie inside the file are left out).
std::vector<std::pair<uint64_t, std::vector<uint8_t>>> code_segments(const ElfFile &f, int fd) {
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> out;
    for (size_t i = 0; i < f.phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(f.e, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X) ||
            !fits(ph.p_offset, ph.p_filesz, f.size))
            continue;
        std::vector<uint8_t> code(ph.p_filesz);
        if (pread(fd, code.data(), code.size(), static_cast<off_t>(ph.p_offset)) ==
            static_cast<ssize_t>(code.size()))
            out.emplace_back(ph.p_vaddr, std::move(code));
    }
    return out;
}

// The value of function symbol `name` in `sf`, or 0.
uint64_t function_symbol(const SymbolFile &sf, const char *name) {
    auto [b, e] = sf.by_name.equal_range(name);
    for (auto it = b; it != e; ++it)
        if (sf.syms[it->second].func && sf.syms[it->second].value) return sf.syms[it->second].value;
    return 0;
}

// errno's offset from the thread pointer, read from the process through __errno_location's GOT
// slot; 0 if its code has a shape graft does not know (errno is then not put back).
int64_t errno_tpoff(const Target &t, uint64_t errno_location,
                    const std::vector<std::pair<uint64_t, std::vector<uint8_t>>> &code) {
    for (auto &[vaddr, bytes] : code) {
        if (errno_location < vaddr || errno_location >= vaddr + bytes.size()) continue;
        const size_t off = errno_location - vaddr;
        long slot = arch::errno_tpoff_slot(bytes.data() + off, bytes.size() - off);
        int64_t tpoff = 0;
        if (slot >= 0 && pread(t.mem_fd, &tpoff, sizeof tpoff,
                               static_cast<off_t>(t.libc_base + errno_location + slot)) == sizeof tpoff)
            return tpoff;
    }
    return 0;
}

// dlopen and __errno_location in libc's symbols, glibc's signal-return stub in its code. The file
// comes from the process's own root (a container's, perhaps): it is read with the checked ELF
// reader, like every ELF file the agent reads.
void resolve_libc(Target &t) {
    int fd = open_in_target(t.pid, t.libc_path);
    if (fd < 0) refuse(t.pid, "cannot open its C library " + t.libc_path, errno);
    ElfFile f;
    SymbolFile sf;
    std::string err;
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> code;
    try {
        if (!open_elf(fd, t.libc_path, true, &f, &err) || !read_elf(f, t.libc_path, &sf, true, &err))
            refuse(t.pid, "cannot read its C library: " + err, ENOEXEC);
        code = code_segments(f, fd);
    } catch (const std::bad_alloc &) {
        refuse(t.pid, "cannot read its C library " + t.libc_path, ENOMEM);
    }
    close(fd);
    for (auto &[vaddr, bytes] : code) {
        long at = arch::find_sigreturn_stub(bytes.data(), bytes.size());
        if (at >= 0 && !t.sigreturn_at) t.sigreturn_at = t.libc_base + vaddr + static_cast<uint64_t>(at);
    }
    for (const Symbol &s : sf.syms)
        if (s.func && s.value && s.size)
            t.libc_functions.push_back({t.libc_base + s.value, t.libc_base + s.value + s.size, s.name});
    std::sort(t.libc_functions.begin(), t.libc_functions.end(),
              [](const LibcFunction &a, const LibcFunction &b) { return a.lo < b.lo; });
    if (uint64_t dl = function_symbol(sf, "dlopen")) t.dlopen_at = t.libc_base + dl;
    if (uint64_t el = function_symbol(sf, "__errno_location")) t.errno_tpoff = errno_tpoff(t, el, code);
    if (!t.dlopen_at) refuse(t.pid, "its glibc is older than 2.34 (libc.so.6 has no dlopen)", ENOTSUP);
    if (!t.sigreturn_at) refuse(t.pid, "its libc.so.6 has no signal-return stub graft recognises", ENOTSUP);
}

// The threads worth trying: running ones, then (`blocked`) those blocked in calls that restart.
std::vector<std::pair<pid_t, std::string>> candidates(const Target &t, bool blocked_too) {
    std::vector<std::pair<pid_t, std::string>> running, blocked;
    DIR *d = opendir((t.proc + "/task").c_str());
    if (!d) return {};
    while (dirent *e = readdir(d)) {
        pid_t tid = static_cast<pid_t>(std::atoi(e->d_name));
        if (tid <= 0) continue;
        std::string sc = read_text(t.proc + "/task/" + std::to_string(tid) + "/syscall");
        if (sc.rfind("running", 0) == 0) {
            running.emplace_back(tid, "running");
        } else if (long nr = arch::blocked_syscall_nr(sc);
                   blocked_too && nr >= 0 && arch::syscall_restarts_after_stop(nr)) {
            blocked.emplace_back(tid, "blocked in system call " + std::to_string(nr));
        }
    }
    closedir(d);
    running.insert(running.end(), blocked.begin(), blocked.end());
    return running;
}

struct Signals {
    uint64_t blocked = 0;
    bool pending = false;  // a signal it does not block waits for it (or for the process)
};

Signals signals_of(const Target &t, pid_t tid) {
    std::string st = "\n" + read_text(t.proc + "/task/" + std::to_string(tid) + "/status");
    auto hex = [&](const char *k) { return std::strtoull(status_field(st, k).c_str(), nullptr, 16); };
    Signals s;
    s.blocked = hex("SigBlk");
    s.pending = ((hex("SigPnd") | hex("ShdPnd")) & ~s.blocked) != 0;
    return s;
}

enum class Borrow { kDone, kUnsuitable, kGone };

// The C library functions a program may be blocked in, called by its own code, while the library
// holds none of its own locks: the borrowed thread's dlopen and the agent's constructor take the
// loader's locks (recursive: a thread that holds one would re-enter the loader half-way through
// its own dlopen or dlclose, and corrupt it), malloc's (a thread in malloc's mmap would deadlock on
// itself), the stack cache's (pthread_create). A thread blocked anywhere else (malloc, dlopen,
// pthread_create, fork, getaddrinfo, output to a FILE...) is not borrowed. Input from a FILE is
// here: it holds that FILE's lock only, and nothing the agent's constructor runs reads a FILE.
bool blocks_without_library_locks(const std::string &name) {
    static const char kNames[] =
        "read __read pread pread64 __pread64 readv preadv preadv64 preadv2 preadv64v2 write "
        "__write pwrite pwrite64 __pwrite64 writev pwritev pwritev64 pwritev2 pwritev64v2 "
        "recv __recv recvfrom recvmsg __recvmsg recvmmsg send __send sendto sendmsg "
        "__sendmsg sendmmsg accept accept4 connect __connect poll __poll ppoll select "
        "__select pselect epoll_wait epoll_pwait epoll_pwait2 nanosleep __nanosleep "
        "clock_nanosleep __clock_nanosleep sleep usleep pause sigsuspend __sigsuspend "
        "sigwait sigwaitinfo sigtimedwait pthread_cond_wait pthread_cond_timedwait "
        "pthread_cond_clockwait pthread_mutex_lock __pthread_mutex_lock "
        "pthread_mutex_timedlock pthread_mutex_clocklock pthread_rwlock_rdlock "
        "pthread_rwlock_wrlock pthread_rwlock_timedrdlock pthread_rwlock_timedwrlock "
        "pthread_rwlock_clockrdlock pthread_rwlock_clockwrlock pthread_join "
        "pthread_timedjoin_np pthread_clockjoin_np pthread_barrier_wait sem_wait "
        "sem_timedwait sem_clockwait wait waitpid __waitpid wait3 wait4 waitid open open64 "
        "__open __open64 openat openat64 fsync fdatasync sync syncfs flock lockf lockf64 "
        "fcntl fcntl64 __fcntl ioctl msgrcv msgsnd mq_receive mq_timedreceive mq_send "
        "mq_timedsend semop semtimedop syscall splice tee vmsplice sendfile sendfile64 "
        "copy_file_range getrandom sched_yield fgets fgets_unlocked getline getdelim "
        "__getdelim fread fread_unlocked getc _IO_getc fgetc getchar getc_unlocked "
        "getchar_unlocked fgetc_unlocked fgetws getwc fgetwc getwchar scanf fscanf "
        "__isoc99_scanf __isoc99_fscanf ";
    static const std::set<std::string> names = [] {
        std::set<std::string> out;
        std::istringstream in(kNames);
        for (std::string n; in >> n;) out.insert(n);
        return out;
    }();
    return names.count(name) != 0;
}

bool in_any(const std::vector<Range> &rs, uint64_t a) {
    return std::any_of(rs.begin(), rs.end(), [&](const Range &r) { return r.has(a); });
}

// The names of the libc functions whose code holds `pc` (aliases share code).
std::vector<std::string> libc_names_at(const Target &t, uint64_t pc) {
    std::vector<std::string> out;
    auto it = std::upper_bound(t.libc_functions.begin(), t.libc_functions.end(), pc,
                               [](uint64_t a, const LibcFunction &f) { return a < f.lo; });
    // Functions do not nest, but sizes may overlap a little (aliases, padding): look back a few.
    for (int n = 0; it != t.libc_functions.begin() && n < 16; n++) {
        --it;
        if (pc >= it->lo && pc < it->hi) out.push_back(it->name);
    }
    return out;
}

// Whether stopped thread `rt` stands where it may be borrowed (see blocks_without_library_locks):
// - no signal waiting for it (its delivery decides whether an interrupted call restarts or fails
//   with EINTR: left to the kernel), and not inside a signal handler (what it interrupted is
//   unknown);
// - running: in the program's own code, not in libc or the loader;
// - in a system call: the libc function the program called is one of those that block without
//   a library lock;
// - either way, no frame of the loader on its stack (a constructor or an IFUNC resolver run by
//   dlopen, a destructor by dlclose) and no dl_iterate_phdr (its callback runs under the loader's
//   lock). The stack is walked with the CFI of the process's objects; a thread in a system call
//   whose walk does not get out of libc is not borrowed.
bool may_borrow(Target &t, const arch::RemoteThread &rt, int stop_sig, const Signals &sig) {
    if (stop_sig != 0 || sig.pending) return false;
    const uint64_t pc = arch::remote_pc(rt);
    const bool in_call = arch::syscall_exit_of(rt) != arch::SyscallExit::kNone;
    if (in_any(t.loader_code, pc) || (!in_call && in_any(t.libc_code, pc))) return false;
    const std::vector<uint64_t> frames = t.stack->walk(pc, arch::remote_sp(rt), arch::remote_fp(rt), 256);
    size_t first_own = frames.size();  // the first frame outside libc
    for (size_t i = 0; i < frames.size(); i++) {
        const uint64_t at = i == 0 ? frames[i] : frames[i] - 1;
        if (in_any(t.loader_code, at) || frames[i] == t.sigreturn_at) return false;
        if (!in_any(t.libc_code, at)) {
            first_own = std::min(first_own, i);
            continue;
        }
        for (const std::string &n : libc_names_at(t, at))
            if (n == "dl_iterate_phdr") return false;
    }
    if (!in_call || first_own == 0) return true;  // running own code, or a system call made by it
    if (first_own == frames.size()) return false;
    const uint64_t called = first_own == 1 ? frames[0] : frames[first_own - 1] - 1;
    for (const std::string &n : libc_names_at(t, called))
        if (blocks_without_library_locks(n)) return true;
    return false;
}

// Stops `tid`, and if it stands where it may be borrowed, sends it into dlopen(agent) and lets
// it go. Any other outcome lets it go unchanged.
Borrow borrow(Target &t, pid_t tid, const std::string &agent, AttachReport *rep) {
    const auto t0 = Clock::now();
    if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
        if (errno == ESRCH) return Borrow::kGone;
        refuse(t.pid, ptrace_refusal(errno), errno);
    }
    int st = 0;
    if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0 || waitpid(tid, &st, __WALL) != tid ||
        !WIFSTOPPED(st))
        return Borrow::kGone;  // it exited: the kernel ended the trace
    // Stopped from here (before, it ran or waited for a CPU to reach the stop).
    const auto stopped = Clock::now();
    rep->stop_wait_us = std::chrono::duration<double, std::micro>(stopped - t0).count();
    // A signal that arrived meanwhile stopped it first: passed on as it is let go.
    const int sig = (st >> 16) == PTRACE_EVENT_STOP ? 0 : WSTOPSIG(st);
    arch::RemoteThread rt;
    std::string err;
    const Signals sigs = signals_of(t, tid);
    if (const std::string no = seccomp_check(t, tid); !no.empty()) {
        ptrace(PTRACE_DETACH, tid, nullptr, reinterpret_cast<void *>(static_cast<long>(sig)));
        refuse(t.pid, no, EPERM);
    }
    const bool ok = arch::read_remote_thread(tid, &rt, &err) && may_borrow(t, rt, sig, sigs);
    arch::RemoteCall call{t.dlopen_at, agent, RTLD_NOW | RTLD_GLOBAL, t.sigreturn_at, sigs.blocked, nullptr};
    int saved_errno = 0;
    if (ok && t.errno_tpoff &&
        pread(t.mem_fd, &saved_errno, sizeof saved_errno,
              static_cast<off_t>(arch::thread_pointer(rt) + static_cast<uint64_t>(t.errno_tpoff))) ==
            sizeof saved_errno)
        call.saved_errno = &saved_errno;
    if (ok && !arch::prepare_call_then_return(tid, t.mem_fd, rt, call, &err)) {
        ptrace(PTRACE_DETACH, tid, nullptr, reinterpret_cast<void *>(static_cast<long>(sig)));
        refuse(t.pid, "thread " + std::to_string(tid) + ": " + err, EIO);
    }
    ptrace(PTRACE_DETACH, tid, nullptr, reinterpret_cast<void *>(static_cast<long>(sig)));
    rep->held_us = std::chrono::duration<double, std::micro>(Clock::now() - stopped).count();
    return ok ? Borrow::kDone : Borrow::kUnsuitable;
}

// Whether the agent is mapped: by its path, or in another mount namespace (where it may be a
// copy, path_for_target) by its file name.
bool loaded_agent(const Target &t, const std::string &agent) {
    const std::string maps = read_text(t.proc + "/maps");
    if (!other_mount_namespace(t.pid)) return maps.find(agent) != std::string::npos;
    const std::string name = agent.substr(agent.rfind('/')) + "\n";
    return maps.find(name) != std::string::npos;
}

}  // namespace

namespace {

// Another attach got the agent in (or was killed after it did): it may still be starting.
bool wait_for_present_agent(pid_t pid) {
    for (auto until = Clock::now() + std::chrono::seconds(10); Clock::now() < until;) {
        if (agent_answers(pid)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    refuse(pid, "the agent is loaded but does not answer (see the process's stderr or GRAFT_LOG_FILE)",
           EPROTO);
}

// Threads come and go and run or sleep: looks again until one can be borrowed, a blocked one
// only when none has been seen running for a while.
bool borrow_some_thread(Target &t, const std::string &agent, Clock::time_point start, AttachReport *rep) {
    const auto deadline = start + std::chrono::seconds(10);
    const auto running_only_until = start + std::chrono::milliseconds(200);
    while (Clock::now() < deadline) {
        for (auto &[tid, how] : candidates(t, Clock::now() > running_only_until)) {
            Borrow b = borrow(t, tid, agent, rep);
            if (b == Borrow::kDone) {
                rep->borrowed_tid = tid, rep->borrowed_how = how;
                return true;
            }
            if (b == Borrow::kUnsuitable) rep->threads_tried++;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
}

}  // namespace

AttachReport attach_agent(pid_t pid) {
    const auto start = Clock::now();
    AttachReport rep;
    pid_t holder = 0;
    switch (probe_agent(pid, &holder)) {
        case AgentSocket::kAnswers:
            rep.already = true;
            return rep;
        case AgentSocket::kForeign:
            refuse(pid,
                   "its control socket is held by process " + std::to_string(holder) + ", not by " +
                       std::to_string(pid) + "'s agent",
                   EPERM);
        case AgentSocket::kNobody:
            break;
    }
    Target t;
    t.pid = pid;
    t.proc = "/proc/" + std::to_string(pid);
    check_process(t);
    check_exe(t);
    read_maps(t);
    if (loaded_agent(t, agent_path())) {
        rep.already = wait_for_present_agent(pid);
        return rep;
    }
    t.mem_fd = open((t.proc + "/mem").c_str(), O_RDWR | O_CLOEXEC);
    if (t.mem_fd < 0) refuse(pid, ptrace_refusal(errno), errno);
    resolve_libc(t);
    // Where the process finds the agent: a copy in its own files if it runs in another mount
    // namespace that does not show graft's (a container).
    const std::string agent = path_for_target(pid, agent_path(), "attach " + std::to_string(pid));
    t.stack = std::make_unique<RemoteStack>(t.pid, t.mem_fd);
    std::cerr << "graft: " << pid << ": attaching the agent" << std::endl;
    if (!dumpable(t))
        std::cerr << "graft: " << pid
                  << ": warning: the process is not dumpable (it changed its user itself): the agent "
                     "cannot read its threads' /proc files, so a transition waits for blocked threads "
                     "to wake up or for its signal (docs/limitations.md)"
                  << std::endl;
    const bool done = borrow_some_thread(t, agent, start, &rep);
    const auto detached = Clock::now();
    close(t.mem_fd);
    if (!done)
        refuse(pid,
               "no thread could be borrowed for 10 s (every thread is blocked in a call a stop would "
               "interrupt, or inside the C library)",
               EBUSY);
    while (!agent_answers(pid)) {
        if (Clock::now() > start + std::chrono::seconds(20))
            refuse(pid,
                   loaded_agent(t, agent) ? "the agent was loaded but did not start (see the process's log)"
                                          : "the process did not load the agent " + agent,
                   ETIMEDOUT);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    // The constructor's last step is to listen: the borrowed thread is back in its own code.
    rep.detour_ms = std::chrono::duration<double, std::milli>(Clock::now() - detached).count();
    // The worker answers once the rest of the start-up is done (the membarrier registrations):
    // only then is the agent ready to patch.
    bool connected = false;
    auto pong = request_raw(pid, {{"op", "ping"}}, "attach " + std::to_string(pid), &connected);
    if (!pong.value("ok", false))
        refuse(pid, "the agent started but does not answer: " + pong.value("error", std::string("?")),
               EPROTO);
    rep.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    return rep;
}

}  // namespace graft::cli
