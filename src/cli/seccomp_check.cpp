#include "cli/seccomp_check.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "arch/x86_64/remote_call.hpp"

namespace graft::cli {
namespace {

// The classic BPF machine the kernel runs a filter on (accumulator A, index X, 16 scratch words),
// over the 64-byte seccomp_data. Programs come from the kernel, which checked them when they were
// installed; every access is bounds-checked all the same: false stops the program as malformed.
struct Machine {
    uint8_t data[sizeof(seccomp_data)];
    uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {};

    bool load(const sock_filter &in) {
        uint32_t v = 0;
        switch (BPF_MODE(in.code)) {
            case BPF_ABS:
                if (BPF_SIZE(in.code) != BPF_W || in.k % 4 || in.k + 4 > sizeof data) return false;
                std::memcpy(&v, data + in.k, 4);
                break;
            case BPF_LEN:
                v = sizeof data;
                break;
            case BPF_IMM:
                v = in.k;
                break;
            case BPF_MEM:
                if (in.k >= BPF_MEMWORDS) return false;
                v = mem[in.k];
                break;
            default:
                return false;
        }
        (BPF_CLASS(in.code) == BPF_LD ? a : x) = v;
        return true;
    }
    bool alu(const sock_filter &in) {
        const uint32_t src = BPF_SRC(in.code) == BPF_X ? x : in.k;
        switch (BPF_OP(in.code)) {
            case BPF_ADD:
                a += src;
                return true;
            case BPF_SUB:
                a -= src;
                return true;
            case BPF_MUL:
                a *= src;
                return true;
            case BPF_DIV:
                if (!src) return false;
                a /= src;
                return true;
            case BPF_MOD:
                if (!src) return false;
                a %= src;
                return true;
            case BPF_OR:
                a |= src;
                return true;
            case BPF_AND:
                a &= src;
                return true;
            case BPF_XOR:
                a ^= src;
                return true;
            case BPF_LSH:
                a = src < 32 ? a << src : 0;
                return true;
            case BPF_RSH:
                a = src < 32 ? a >> src : 0;
                return true;
            case BPF_NEG:
                a = 0u - a;
                return true;
            default:
                return false;
        }
    }
    // How many instructions a jump skips; false for an unknown condition.
    bool jump(const sock_filter &in, size_t *skip) const {
        const uint32_t src = BPF_SRC(in.code) == BPF_X ? x : in.k;
        bool taken;
        switch (BPF_OP(in.code)) {
            case BPF_JA:
                *skip = in.k;
                return true;
            case BPF_JEQ:
                taken = a == src;
                break;
            case BPF_JGT:
                taken = a > src;
                break;
            case BPF_JGE:
                taken = a >= src;
                break;
            case BPF_JSET:
                taken = (a & src) != 0;
                break;
            default:
                return false;
        }
        *skip = taken ? in.jt : in.jf;
        return true;
    }
};

uint32_t run_filter(const SeccompFilter &f, const seccomp_data &d) {
    constexpr uint32_t kBad = SECCOMP_RET_KILL_PROCESS;
    Machine m;
    std::memcpy(m.data, &d, sizeof m.data);
    for (size_t pc = 0; pc < f.size(); pc++) {
        const sock_filter &in = f[pc];
        switch (BPF_CLASS(in.code)) {
            case BPF_LD:
            case BPF_LDX:
                if (!m.load(in)) return kBad;
                break;
            case BPF_ST:
            case BPF_STX:
                if (in.k >= BPF_MEMWORDS) return kBad;
                m.mem[in.k] = BPF_CLASS(in.code) == BPF_ST ? m.a : m.x;
                break;
            case BPF_ALU:
                if (!m.alu(in)) return kBad;
                break;
            case BPF_JMP: {
                size_t skip = 0;
                if (!m.jump(in, &skip) || skip >= f.size() - pc) return kBad;
                pc += skip;
                break;
            }
            case BPF_RET:
                return BPF_RVAL(in.code) == BPF_A ? m.a : in.k;
            case BPF_MISC:
                (BPF_MISCOP(in.code) == BPF_TAX ? m.x : m.a) = BPF_MISCOP(in.code) == BPF_TAX ? m.a : m.x;
                break;
            default:
                return kBad;
        }
    }
    return kBad;  // fell off the end
}

// The kernel's precedence: the action with the lowest value as a signed number wins
// (KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, USER_NOTIF, TRACE, LOG, ALLOW).
int32_t rank(uint32_t ret) {
    return static_cast<int32_t>(ret & SECCOMP_RET_ACTION_FULL);
}

std::string action_text(uint32_t ret) {
    switch (ret & SECCOMP_RET_ACTION_FULL) {
        case SECCOMP_RET_KILL_PROCESS:
            return "kill the process";
        case SECCOMP_RET_KILL_THREAD:
            return "kill the thread";
        case SECCOMP_RET_TRAP:
            return "send SIGSYS";
        case SECCOMP_RET_ERRNO:
            return std::string("fail it with ") + std::strerror(static_cast<int>(ret & SECCOMP_RET_DATA));
        case SECCOMP_RET_USER_NOTIF:
            return "hand it to a supervisor";
        case SECCOMP_RET_TRACE:
            return "hand it to a tracer";
        default:
            return "refuse it";
    }
}

struct Call {
    const char *what;  // as the refusal names it
    long nr;
    uint64_t args[6];
    // Failing with an errno is not in the way: the agent then writes code through /proc/self/mem
    // (kWriteThroughMem), as in a process with MDWE (systemd's MemoryDenyWriteExecute= is such a
    // filter).
    bool errno_ok = false;
};

// The calls of the agent's start-up (dlopen of the agent and its libraries, the worker and its
// socket, membarrier, /proc) and of a patch (the sealed copy of the patch file, code writes, the
// transition's signal), with the arguments seccomp filters commonly test.
const Call kCalls[] = {
    {"openat", SYS_openat, {0, 0, O_RDONLY | O_CLOEXEC}},
    {"read", SYS_read, {}},
    {"pread64", SYS_pread64, {}},
    {"close", SYS_close, {}},
    {"newfstatat", SYS_newfstatat, {}},
    {"fstatfs", SYS_fstatfs, {}},
    {"readlink", SYS_readlink, {}},
    {"getdents64", SYS_getdents64, {}},
    {"mmap of code", SYS_mmap, {0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, 3, 0}},
    {"mmap of data",
     SYS_mmap,
     {0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, static_cast<uint64_t>(-1), 0}},
    {"mprotect", SYS_mprotect, {0, 4096, PROT_READ}},
    {"mprotect of code to write it (PROT_WRITE|PROT_EXEC)",
     SYS_mprotect,
     {0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC},
     true},
    {"mprotect of new code to run it (PROT_EXEC)", SYS_mprotect, {0, 4096, PROT_READ | PROT_EXEC}, true},
    {"munmap", SYS_munmap, {}},
    {"membarrier", SYS_membarrier, {}},
    {"socket", SYS_socket, {AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0}},
    {"bind", SYS_bind, {}},
    {"listen", SYS_listen, {}},
    {"accept4", SYS_accept4, {}},
    {"poll", SYS_poll, {}},
    {"recvmsg", SYS_recvmsg, {}},
    {"sendto", SYS_sendto, {}},
    {"getsockopt", SYS_getsockopt, {}},
    {"clone3", SYS_clone3, {}},
    {"rt_sigaction", SYS_rt_sigaction, {}},
    {"rt_sigprocmask", SYS_rt_sigprocmask, {}},
    {"futex", SYS_futex, {}},
    {"gettid", SYS_gettid, {}},
    {"getpid", SYS_getpid, {}},
    {"tgkill", SYS_tgkill, {}},
    {"memfd_create", SYS_memfd_create, {}},
    {"fcntl", SYS_fcntl, {}},
    {"process_vm_readv", SYS_process_vm_readv, {}},
};

// What the agent writes code with when the filter fails the mprotects above with an errno.
const Call kWriteThroughMem[] = {
    {"opening /proc/self/mem for writing", SYS_openat, {0, 0, O_RDWR | O_CLOEXEC}},
    {"pwrite64 (code written through /proc/self/mem)", SYS_pwrite64, {}},
};

}  // namespace

uint32_t seccomp_action(const std::vector<SeccompFilter> &filters, const seccomp_data &call) {
    uint32_t best = SECCOMP_RET_ALLOW;
    for (const auto &f : filters) {
        const uint32_t r = run_filter(f, call);
        if (rank(r) < rank(best)) best = r;
    }
    return best;
}

std::string seccomp_refusal(const std::vector<SeccompFilter> &filters) {
    bool code_locked = false;
    auto refusal = [&](const Call &c) -> std::string {
        seccomp_data d{};
        d.nr = static_cast<int>(c.nr);
        d.arch = arch::kSeccompArch;
        std::memcpy(d.args, c.args, sizeof d.args);
        const uint32_t r = seccomp_action(filters, d);
        const uint32_t act = r & SECCOMP_RET_ACTION_FULL;
        if (act == SECCOMP_RET_ALLOW || act == SECCOMP_RET_LOG) return "";
        if (c.errno_ok && act == SECCOMP_RET_ERRNO) {
            code_locked = true;
            return "";
        }
        return std::string("its seccomp filter forbids ") + c.what +
               ", which the agent needs (the filter would " + action_text(r) + ")";
    };
    for (const Call &c : kCalls)
        if (std::string why = refusal(c); !why.empty()) return why;
    if (code_locked)
        for (const Call &c : kWriteThroughMem)
            if (std::string why = refusal(c); !why.empty())
                return why +
                       "; its code may not be made writable, so the agent writes it through /proc/self/mem";
    return "";
}

bool read_seccomp_filters(pid_t tid, std::vector<SeccompFilter> *out, std::string *err) {
    out->clear();
    for (unsigned long i = 0;; i++) {
        long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, reinterpret_cast<void *>(i), nullptr);
        if (n < 0) {
            if (errno == ENOENT) return true;  // past the last filter
            *err = errno == EACCES || errno == EPERM
                       ? std::string(
                             "its seccomp filter can be read only with CAP_SYS_ADMIN (run graft as root)")
                       : std::string("its seccomp filter cannot be read: ") + std::strerror(errno);
            return false;
        }
        if (n == 0 || n > BPF_MAXINSNS) {
            *err = "its seccomp filter cannot be read: a filter of " + std::to_string(n) + " instructions";
            return false;
        }
        SeccompFilter f(static_cast<size_t>(n));
        if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, reinterpret_cast<void *>(i), f.data()) != n) {
            *err = std::string("its seccomp filter cannot be read: ") + std::strerror(errno);
            return false;
        }
        out->push_back(std::move(f));
    }
}

}  // namespace graft::cli
