// The agent's start-up and the small public entry points (graft_log, graft_quiescent,
// graft_object_state). The agent runs inside someone else's process: nothing here aborts, exits
// or throws; a failed start leaves the program running unpatched and says why in the log.
#include <dlfcn.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <fcntl.h>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "agent/code_writer.hpp"
#include "agent/control.hpp"
#include "agent/core.hpp"
#include "agent/log.hpp"
#include "agent/objects.hpp"
#include "agent/thread_state.hpp"
#include "agent/transition.hpp"
#include "arch/x86_64/entry.hpp"
#include "graft/graft.h"

namespace graft {
namespace {

void on_transition_signal(int, siginfo_t *, void *uc) {
    int saved = errno;
    auto *ctx = static_cast<ucontext_t *>(uc);
    transition_self_check(SelfContext::kSignalHandler,
                          static_cast<uintptr_t>(ctx->uc_mcontext.gregs[REG_RIP]));
    errno = saved;
}

// gcc emits the 2-byte gate as two 1-byte nops; a thread could stop between them. Before any
// other thread exists, turn every such gate into one 2-byte nop (66 90): then no thread can ever
// stand on its second byte, and flipping it later with one store is safe.
void merge_entry_nops(const LoadedObject &o) {
    if (o.path.empty() || o.path[0] != '/') return;
    int fd = open(o.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    std::vector<CodeWrite> writes;
    size_t shstrndx = 0;
    if (e && elf_getshdrstrndx(e, &shstrndx) == 0) {
        for (Elf_Scn *scn = elf_nextscn(e, nullptr); scn; scn = elf_nextscn(e, scn)) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh)) continue;
            const char *name = elf_strptr(e, shstrndx, sh.sh_name);
            if (!name || std::strcmp(name, "__patchable_function_entries") != 0 || !(sh.sh_flags & SHF_ALLOC))
                continue;
            // Read the relocated entry addresses from memory.
            auto *entries = reinterpret_cast<const uintptr_t *>(o.base + sh.sh_addr);
            for (size_t i = 0; i < sh.sh_size / 8; i++) {
                uintptr_t func = entries[i] + arch::kPrefixSize;
                if (func < o.text_lo || func + 6 > o.text_hi) continue;
                arch::EntryLayout lay;
                std::string why;
                if (!arch::decode_entry(func, &lay, &why) || !lay.single_byte_nops) continue;
                CodeWrite w{lay.gate, 2, {}};
                uint16_t v = arch::gate_closed_word();
                std::memcpy(w.bytes, &v, 2);
                writes.push_back(w);
            }
        }
    }
    if (e) elf_end(e);
    close(fd);
    std::string why;
    if (!writes.empty() && !write_code(writes, &why))
        log_line("graft: cannot prepare the entries of object '" + o.name + "': " + why);
}

__attribute__((constructor)) void agent_init() {
    std::string why;
    elf_version(EV_CURRENT);
    thread_birth_init();
    self_slot();  // the main thread
    if (!arch::init_membarrier(&why)) {
        core_refuse(why);
        return;
    }
    for (const auto &o : loaded_objects()) merge_entry_nops(o);
    arch::sync_cores();
    if (const char *t = std::getenv("GRAFT_SIGNAL_TIMEOUT"); t && *t) set_signal_timeout(std::atof(t));
    struct sigaction sa {};
    sa.sa_sigaction = on_transition_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(transition_signal(), &sa, nullptr);
    if (!control_start(&why)) core_refuse(why);
}

}  // namespace
}  // namespace graft

extern "C" {

__attribute__((visibility("default"))) void graft_log(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    graft::log_line(buf);
}

__attribute__((visibility("default"))) void graft_quiescent(void) {
    if (graft::g_view.target_state.load(std::memory_order_acquire) == graft::kIdle) return;
    graft::transition_self_check(graft::SelfContext::kDirect);
}

__attribute__((visibility("default"))) enum graft_object_state graft_object_state(
    const struct graft_object *) {
    return GRAFT_OBJECT_LIVE;
}

}  // extern "C"
