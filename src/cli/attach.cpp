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
#include <sched.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/process/elf_file.hpp"
#include "arch/remote.hpp"
#include "cli/client.hpp"
#include "cli/namespaces.hpp"
#include "cli/remote_stack.hpp"
#include "cli/seccomp_check.hpp"
#include "cli/target_root.hpp"
#include "cli/thread_files.hpp"

namespace graft::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct Range {
    uint64_t lo = 0, hi = 0;
    bool has(uint64_t a) const { return a >= lo && a < hi; }
};

struct LibcFunction {
    uint64_t lo = 0, hi = 0;  // in the process
    uint32_t name = 0;        // offset of its name in Target::libc_names
};

struct Target {
    pid_t pid = 0;
    std::string proc;
    std::string libc_path;
    uint64_t libc_base = 0;
    std::vector<Range> libc_code, loader_code;  // executable mappings of libc.so.6 and ld.so
    std::vector<LibcFunction> libc_functions;   // sorted by lo
    std::string libc_names;                     // their names, each ended by a NUL
    std::string maps;                           // /proc/PID/maps as read by read_maps
    std::unique_ptr<RemoteStack> stack;         // made before any thread is stopped
    uint64_t dlopen_at = 0, sigreturn_at = 0;
    int64_t errno_tpoff = 0;  // errno's offset from the thread pointer (0: unknown)
    int mem_fd = -1;
    int task_fd = -1;             // /proc/PID/task
    bool seccomp_filter = false;  // /proc: the process runs under seccomp filters
};

[[noreturn]] void refuse(pid_t pid, const std::string &why, int err) {
    die("attach " + std::to_string(pid), why + ": " + errno_text(err));
}

// A /proc file's text ("" if it cannot be read): read() into a string, without a stream's
// buffers and locale (the maps of a process with 1000 threads are 100 KB).
std::string read_text(const std::string &path) {
    std::string out;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    char buf[16384];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
}

std::string status_field(const std::string &status, const std::string &key) {
    size_t at = status.find("\n" + key + ":");
    if (at == std::string::npos) return {};
    size_t b = status.find_first_not_of(" \t", at + key.size() + 2);
    size_t e = status.find('\n', b);
    return b == std::string::npos ? std::string() : status.substr(b, e - b);
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

// One line of /proc/PID/maps: "lo-hi perms offset dev inode   path".
struct MapsLine {
    uint64_t lo = 0, hi = 0, offset = 0;
    bool exec = false;
    std::string_view path;
};

bool parse_maps_line(std::string_view line, MapsLine *out) {
    auto hex = [&](char end, uint64_t *v) {
        const auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), *v, 16);
        if (ec != std::errc() || p == line.data() + line.size() || *p != end) return false;
        line.remove_prefix(static_cast<size_t>(p - line.data()) + 1);
        return true;
    };
    auto skip_field = [&] {
        const size_t sp = line.find(' ');
        line.remove_prefix(sp == std::string_view::npos ? line.size() : sp + 1);
    };
    if (!hex('-', &out->lo) || !hex(' ', &out->hi) || line.size() < 5) return false;
    out->exec = line[2] == 'x';
    line.remove_prefix(5);
    if (!hex(' ', &out->offset)) return false;
    skip_field();  // device
    skip_field();  // inode
    const size_t path_at = line.find_first_not_of(' ');
    out->path = path_at == std::string_view::npos ? std::string_view() : line.substr(path_at);
    return true;
}

// Its libc.so.6 (where dlopen and the signal-return stub are) and the code no thread may be
// borrowed in. At 1000 threads the file is 100 KB (two mappings a thread stack): read once, kept
// for loaded_agent(), parsed without a copy of each line.
void read_maps(Target &t) {
    t.maps = read_text(t.proc + "/maps");
    bool musl = false;
    std::string_view rest(t.maps);
    while (!rest.empty()) {
        const size_t nl = rest.find('\n');
        const std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
        MapsLine m;
        if (!parse_maps_line(line, &m) || m.path.empty()) continue;
        const std::string_view base = m.path.substr(m.path.rfind('/') + 1);
        if (base.starts_with("ld-musl") || base.starts_with("libc.musl")) musl = true;
        const bool libc = base == "libc.so.6", ld = base.starts_with("ld-linux");
        if (libc && m.offset == 0 && t.libc_path.empty()) t.libc_path = m.path, t.libc_base = m.lo;
        if (libc && m.exec) t.libc_code.push_back({m.lo, m.hi});
        if (ld && m.exec) t.loader_code.push_back({m.lo, m.hi});
    }
    if (musl) refuse(t.pid, "it uses musl libc (graft supports glibc 2.34 or newer)", ENOTSUP);
    if (t.libc_path.empty())
        refuse(t.pid, "it has no libc.so.6 mapped (statically linked, or not a glibc program)", ENOTSUP);
}

// The file's executable segments that lie inside it: (address, file offset, size).
struct CodeSegment {
    uint64_t vaddr = 0, offset = 0, size = 0;
};

std::vector<CodeSegment> code_segments(const ElfFile &f) {
    std::vector<CodeSegment> out;
    for (size_t i = 0; i < f.phnum; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(f.e, static_cast<int>(i), &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X) &&
            fits(ph.p_offset, ph.p_filesz, f.size))
            out.push_back({ph.p_vaddr, ph.p_offset, ph.p_filesz});
    }
    return out;
}

// The address (in the file's terms) of glibc's signal-return stub, 0 if none. Megabytes of code
// are read through one 64 KiB window, overlapping by more than the stub's length: a copy of the
// whole text costs tens of milliseconds of page faults on a virtual machine.
uint64_t find_sigreturn(int fd, const std::vector<CodeSegment> &segs) {
    constexpr size_t kWindow = 64 << 10, kOverlap = 64;
    static uint8_t buf[kWindow];
    for (const CodeSegment &s : segs)
        for (uint64_t pos = 0; pos < s.size; pos += kWindow - kOverlap) {
            const size_t want = static_cast<size_t>(std::min<uint64_t>(kWindow, s.size - pos));
            const ssize_t n = pread(fd, buf, want, static_cast<off_t>(s.offset + pos));
            if (n <= 0) break;
            if (long at = arch::find_sigreturn_stub(buf, static_cast<size_t>(n)); at >= 0)
                return s.vaddr + pos + static_cast<uint64_t>(at);
            if (static_cast<size_t>(n) < want || pos + want >= s.size) break;
        }
    return 0;
}

// errno's offset from the thread pointer, read from the process through __errno_location's GOT
// slot; 0 if its code has a shape graft does not know (errno is then not put back).
int64_t errno_tpoff(const Target &t, int fd, uint64_t errno_location, const std::vector<CodeSegment> &segs) {
    for (const CodeSegment &s : segs) {
        if (errno_location < s.vaddr || errno_location >= s.vaddr + s.size) continue;
        uint8_t code[64];
        const auto want =
            static_cast<size_t>(std::min<uint64_t>(sizeof code, s.vaddr + s.size - errno_location));
        const ssize_t n = pread(fd, code, want, static_cast<off_t>(s.offset + (errno_location - s.vaddr)));
        long slot = n > 0 ? arch::errno_tpoff_slot(code, static_cast<size_t>(n)) : -1;
        int64_t tpoff = 0;
        if (slot >= 0 && pread(t.mem_fd, &tpoff, sizeof tpoff,
                               static_cast<off_t>(t.libc_base + errno_location + slot)) == sizeof tpoff)
            return tpoff;
    }
    return 0;
}

// dlopen and __errno_location in libc's symbols, glibc's signal-return stub in its code. The file
// comes from the process's own root (a container's, perhaps): it is read with the checked ELF
// reader, like every ELF file the agent reads. Only what the attach uses is kept: the functions'
// ranges and names in two flat arrays (a SymbolFile's maps of 3000 strings cost milliseconds).
void resolve_libc(Target &t) {
    int fd = open_in_target(t.pid, t.libc_path);
    if (fd < 0) refuse(t.pid, "cannot open its C library " + t.libc_path, errno);
    ElfFile f;
    SymbolFile layout;  // the headers, notes and .dynamic, checked as read_elf checks them
    std::string err;
    std::vector<CodeSegment> segs;
    uint64_t dlopen_v = 0, errno_v = 0, sigreturn_v = 0;
    try {
        auto visit = [&](const char *name, uint64_t value, uint64_t size, bool func) {
            if (!func) return;
            if (!dlopen_v && std::strcmp(name, "dlopen") == 0) dlopen_v = value;
            if (!errno_v && std::strcmp(name, "__errno_location") == 0) errno_v = value;
            if (!size) return;
            t.libc_functions.push_back({t.libc_base + value, t.libc_base + value + size,
                                        static_cast<uint32_t>(t.libc_names.size())});
            t.libc_names.append(name).push_back('\0');
        };
        if (!open_elf(fd, t.libc_path, true, &f, &err) || !read_elf(f, t.libc_path, &layout, false, &err) ||
            !visit_symbols(f, visit, &err))
            refuse(t.pid, "cannot read its C library: " + err, ENOEXEC);
        segs = code_segments(f);
    } catch (const std::bad_alloc &) {
        refuse(t.pid, "cannot read its C library " + t.libc_path, ENOMEM);
    }
    sigreturn_v = find_sigreturn(fd, segs);
    if (errno_v) t.errno_tpoff = errno_tpoff(t, fd, errno_v, segs);
    close(fd);
    std::sort(t.libc_functions.begin(), t.libc_functions.end(),
              [](const LibcFunction &a, const LibcFunction &b) { return a.lo < b.lo; });
    if (dlopen_v) t.dlopen_at = t.libc_base + dlopen_v;
    if (sigreturn_v) t.sigreturn_at = t.libc_base + sigreturn_v;
    if (!t.dlopen_at) refuse(t.pid, "its glibc is older than 2.34 (libc.so.6 has no dlopen)", ENOTSUP);
    if (!t.sigreturn_at) refuse(t.pid, "its libc.so.6 has no signal-return stub graft recognises", ENOTSUP);
}

// The process's threads, from a rotating start: the scan below stops at the first thread it may
// borrow, and a fixed order (oldest first) would make every attach read the same threads first.
std::vector<pid_t> thread_ids(const Target &t) {
    std::vector<pid_t> tids;
    const int fd = openat(t.task_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : nullptr;
    if (!d) {
        if (fd >= 0) close(fd);
        return tids;
    }
    while (dirent *e = readdir(d))
        if (pid_t tid = static_cast<pid_t>(std::atoi(e->d_name)); tid > 0) tids.push_back(tid);
    closedir(d);
    if (!tids.empty()) {
        const auto spin = static_cast<size_t>(Clock::now().time_since_epoch().count()) % tids.size();
        std::rotate(tids.begin(), tids.begin() + static_cast<std::ptrdiff_t>(spin), tids.end());
    }
    return tids;
}

// What /proc says thread `tid` is doing: running (or waiting for a CPU), blocked in system call
// *nr (with its first argument in *arg0 if asked: ~0 if unreadable), or gone. One small read
// through the task directory's descriptor: at 1000 threads the scan's cost is these reads (about
// 10 us each here), so it ends at the first thread it may use.
enum class ThreadNow { kRunning, kBlocked, kGone };
ThreadNow thread_now(const Target &t, pid_t tid, long *nr, unsigned long long *arg0 = nullptr) {
    char path[32], buf[128];
    std::snprintf(path, sizeof path, "%d/syscall", tid);
    const int fd = openat(t.task_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ThreadNow::kGone;
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return ThreadNow::kGone;
    buf[n] = 0;
    if (std::strncmp(buf, "running", 7) == 0) return ThreadNow::kRunning;
    *nr = arch::blocked_syscall_nr(buf);
    if (arg0) {
        // "NR 0xARG0 0xARG1 ...": the first argument, in hex.
        const char *sp = std::strchr(buf, ' ');
        char *end = nullptr;
        *arg0 = sp ? std::strtoull(sp + 1, &end, 16) : ~0ULL;
        if (!sp || *end != ' ') *arg0 = ~0ULL;
    }
    return ThreadNow::kBlocked;
}

// What thread `tid`, seen blocked in call `nr` (one that restarts after a stop), waits on, as far
// as a stop is concerned: signal(7) says a stop ends recv, accept, send and connect (and read and
// write, which take the same path) with EINTR when the socket has a timeout (SO_RCVTIMEO,
// SO_SNDTIMEO). graft would issue such a call again, but with its whole timeout. The socket is
// asked through a copy of the thread's descriptor (pidfd_getfd, allowed to whoever may ptrace
// the process): kUnknown when that cannot be done (a kernel before 5.6, a seccomp filter), or when
// the thread's descriptor table is not the process's.
enum class SocketWait { kNone, kUnknown, kTimeout };
SocketWait socket_wait_of(const Target &t, pid_t tid, long nr) {
    const int option = arch::socket_timeout_option(nr);
    if (!option) return SocketWait::kNone;
    long now_nr = -1;
    unsigned long long fd = ~0ULL;
    if (thread_now(t, tid, &now_nr, &fd) != ThreadNow::kBlocked || now_nr != nr || fd > INT32_MAX)
        return SocketWait::kUnknown;  // it moved on, or its argument cannot be read
    auto link_of = [](const std::string &p) {
        char l[64] = {};
        return readlink(p.c_str(), l, sizeof l - 1) > 0 ? std::string(l) : std::string();
    };
    const std::string mine = link_of(t.proc + "/task/" + std::to_string(tid) + "/fd/" + std::to_string(fd));
    if (mine.empty()) return SocketWait::kUnknown;
    if (mine.rfind("socket:", 0) != 0) return SocketWait::kNone;
    if (link_of(t.proc + "/fd/" + std::to_string(fd)) != mine) return SocketWait::kUnknown;
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, t.pid, 0));
    if (pidfd < 0) return SocketWait::kUnknown;
    const int copy = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, static_cast<int>(fd), 0));
    close(pidfd);
    if (copy < 0) return SocketWait::kUnknown;
    timeval tv{};
    socklen_t len = sizeof tv;
    const int r = getsockopt(copy, SOL_SOCKET, option, &tv, &len);
    close(copy);
    if (r != 0) return SocketWait::kUnknown;
    return tv.tv_sec != 0 || tv.tv_usec != 0 ? SocketWait::kTimeout : SocketWait::kNone;
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
// So is the refill of a FILE's buffer that getc_unlocked() and libstdc++'s std::cin (its stdio
// filebuf) call directly (__uflow, which jumps to _IO_default_uflow: the outermost libc frame of
// a program idle in std::getline).
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
        "__isoc99_scanf __isoc99_fscanf __uflow __underflow _IO_default_uflow _IO_file_underflow "
        "__wuflow __wunderflow _IO_wdefault_uflow _IO_wfile_underflow ";
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
        if (pc >= it->lo && pc < it->hi) out.emplace_back(t.libc_names.c_str() + it->name);
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

// While a thread is held graft must keep its CPU: a time slice lost to the process's own running
// threads (4 ms here) would be a 4 ms hold. Where it may (root, CAP_SYS_NICE or RLIMIT_RTPRIO),
// graft runs at the lowest real-time priority from the stop request until it lets the thread go;
// elsewhere it runs as it was.
class RealtimeWhileHeld {
  public:
    RealtimeWhileHeld() {
        const int policy = sched_getscheduler(0);
        if ((policy != SCHED_OTHER && policy != SCHED_BATCH) || sched_getparam(0, &old_) != 0) return;
        sched_param rt{};
        rt.sched_priority = 1;
        if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &rt) == 0) policy_ = policy;
    }
    ~RealtimeWhileHeld() {
        if (policy_ >= 0) sched_setscheduler(0, policy_, &old_);
    }
    RealtimeWhileHeld(const RealtimeWhileHeld &) = delete;
    RealtimeWhileHeld &operator=(const RealtimeWhileHeld &) = delete;

  private:
    int policy_ = -1;
    sched_param old_{};
};

// Stops `tid`, and if it stands where it may be borrowed, sends it into dlopen(agent) and lets
// it go. Any other outcome lets it go unchanged.
Borrow borrow(Target &t, pid_t tid, const std::string &agent, AttachReport *rep) {
    const RealtimeWhileHeld realtime;
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
bool loaded_agent(const Target &t, const std::string &maps, const std::string &agent) {
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

// Threads come and go and run or sleep: looks again until one can be borrowed. A running thread
// is borrowed as soon as the scan meets one; one blocked in a call that restarts only when no
// thread has been seen running for a while (it is woken by the stop, as a blocked thread should
// not be).
// The first threads of the scan below seen running, read while the C library and the CFI are (on
// another CPU where there is one: the scan is /proc reads only, 5 ms at 1000 threads here).
std::vector<pid_t> running_threads(const Target &t, size_t max) {
    std::vector<pid_t> out;
    for (pid_t tid : thread_ids(t)) {
        long nr = -1;
        if (thread_now(t, tid, &nr) == ThreadNow::kRunning) out.push_back(tid);
        if (out.size() == max) break;
    }
    return out;
}

bool borrow_some_thread(Target &t, const std::string &agent, Clock::time_point start,
                        const std::vector<pid_t> &seen_running, AttachReport *rep) {
    const auto deadline = start + std::chrono::seconds(10);
    const auto running_only_until = start + std::chrono::milliseconds(200);
    auto take = [&](pid_t tid, std::string how) {
        const Borrow b = borrow(t, tid, agent, rep);
        if (b == Borrow::kDone) rep->borrowed_tid = tid, rep->borrowed_how = std::move(how);
        if (b == Borrow::kUnsuitable) rep->threads_tried++;
        return b == Borrow::kDone;
    };
    for (pid_t tid : seen_running) {  // as long as /proc still says it runs
        long nr = -1;
        if (thread_now(t, tid, &nr) == ThreadNow::kRunning && take(tid, "running")) return true;
    }
    while (Clock::now() < deadline) {
        const bool blocked_too = Clock::now() > running_only_until;
        std::vector<std::pair<pid_t, long>> blocked;
        for (pid_t tid : thread_ids(t)) {
            long nr = -1;
            const ThreadNow now = thread_now(t, tid, &nr);
            if (now == ThreadNow::kRunning && take(tid, "running")) return true;
            if (now == ThreadNow::kBlocked && blocked_too && nr >= 0 && arch::syscall_restarts_after_stop(nr))
                blocked.emplace_back(tid, nr);
        }
        // A thread on a socket with a timeout only if no other can be borrowed, one whose socket
        // could not be asked before it; each asked just before it would be taken.
        std::vector<std::pair<pid_t, long>> later[2];
        auto take_blocked = [&](pid_t tid, long nr) {
            return take(tid, "blocked in system call " + std::to_string(nr));
        };
        for (auto [tid, nr] : blocked) {
            const SocketWait w = socket_wait_of(t, tid, nr);
            if (w == SocketWait::kNone && take_blocked(tid, nr)) return true;
            if (w != SocketWait::kNone) later[w == SocketWait::kUnknown ? 0 : 1].emplace_back(tid, nr);
        }
        for (auto &rest : later)
            for (auto [tid, nr] : rest)
                if (take_blocked(tid, nr)) return true;
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
    if (loaded_agent(t, t.maps, agent_path())) {
        rep.already = wait_for_present_agent(pid);
        return rep;
    }
    t.mem_fd = open((t.proc + "/mem").c_str(), O_RDWR | O_CLOEXEC);
    if (t.mem_fd < 0) refuse(pid, ptrace_refusal(errno), errno);
    t.task_fd = open((t.proc + "/task").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (t.task_fd < 0) refuse(pid, "cannot read its threads in " + t.proc + "/task", errno);
    auto since = [](Clock::time_point &mark) {
        const auto now = Clock::now();
        const double ms = std::chrono::duration<double, std::milli>(now - mark).count();
        mark = now;
        return ms;
    };
    auto mark = start;
    rep.checks_ms = since(mark);
    // Beside the reading below, a scout finds running threads. If graft refuses meanwhile it
    // exits with the scout still reading /proc: it touches nothing else.
    std::vector<pid_t> seen_running;
    std::thread scout([&] { seen_running = running_threads(t, 1); });
    resolve_libc(t);
    rep.libc_ms = since(mark);
    // Where the process finds the agent: a copy in its own files if it runs in another mount
    // namespace that does not show graft's (a container).
    const std::string agent = path_for_target(pid, agent_path(), "attach " + std::to_string(pid));
    t.stack = std::make_unique<RemoteStack>(t.pid, t.mem_fd);
    scout.join();
    rep.stack_ms = since(mark);
    std::cerr << "graft: " << pid << ": attaching the agent" << std::endl;
    if (!process_dumpable(pid))
        std::cerr << "graft: " << pid
                  << ": warning: the process is not dumpable (it changed its user itself): its agent "
                     "cannot open its threads' /proc files, which graft run as root passes to it with "
                     "each command that starts a transition (docs/limitations.md)"
                  << std::endl;
    const bool done = borrow_some_thread(t, agent, start, seen_running, &rep);
    const auto detached = Clock::now();
    rep.borrow_ms = since(mark);
    close(t.mem_fd);
    close(t.task_fd);
    if (!done)
        refuse(pid,
               "no thread could be borrowed for 10 s (every thread is blocked in a call a stop would "
               "interrupt, or inside the C library)",
               EBUSY);
    while (!agent_answers(pid)) {
        if (Clock::now() > start + std::chrono::seconds(20))
            refuse(pid,
                   loaded_agent(t, read_text(t.proc + "/maps"), agent)
                       ? "the agent was loaded but did not start (see the process's log)"
                       : "the process did not load the agent " + agent,
                   ETIMEDOUT);
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // a connect() a try: cheap
    }
    // The constructor's last step is to listen: the borrowed thread is back in its own code.
    rep.detour_ms = std::chrono::duration<double, std::milli>(Clock::now() - detached).count();
    mark = Clock::now();
    // The worker answers once the rest of the start-up is done (the membarrier registrations):
    // only then is the agent ready to patch.
    bool connected = false;
    auto pong = request_raw(pid, {{"op", "ping"}}, "attach " + std::to_string(pid), &connected);
    if (!pong.value("ok", false))
        refuse(pid, "the agent started but does not answer: " + pong.value("error", std::string("?")),
               EPROTO);
    rep.ready_ms = since(mark);
    rep.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    return rep;
}

}  // namespace graft::cli
