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

#include "agent/livepatch/core.hpp"
#include "agent/livepatch/transition.hpp"
#include "agent/process/code_writer.hpp"
#include "agent/process/entry_rewrite.hpp"
#include "agent/process/object_events.hpp"
#include "agent/process/symbols.hpp"
#include "agent/service/attached.hpp"
#include "agent/service/control.hpp"
#include "agent/service/hold_stats.hpp"
#include "agent/service/log.hpp"
#include "agent/threads/fork.hpp"
#include "agent/threads/thread_state.hpp"
#include "arch/arch.hpp"
#include "graft/graft.h"

namespace graft {
namespace {

void on_transition_signal(int, siginfo_t *, void *uc) {
    int saved = errno;
    const uint64_t start = hold_now_ns();
    const arch::SignalRegs r = arch::signal_regs(uc);
    const InterruptedRegs regs{r.pc, r.sp, r.fp};
    entry_rewrite_on_signal(r.pc, r.sp, r.fp);
    transition_self_check(SelfContext::kSignalHandler, &regs);
    hold_record(HoldKind::kSignal, start);
    errno = saved;
}

}  // namespace

bool transition_handler_installed() {
    struct sigaction cur {};
    return sigaction(transition_signal(), nullptr, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
           cur.sa_sigaction == on_transition_signal;
}

namespace {

// What must be in place before the first patch: the membarrier registration and the objects
// (their entries prepared, the audit module found).
bool memory_and_objects_init(std::string *why) {
    if (!arch::init_membarrier(why)) return false;
    object_events_init(!attached_to_running_process());
    arch::sync_cores();
    return true;
}

__attribute__((constructor)) void agent_init() {
    std::string why;
    elf_version(EV_CURRENT);
    thread_birth_init();
    self_slot();  // the main thread (under attach: the thread graft borrowed)
    // Under attach, the constructor runs on a thread borrowed from the program, which waits for
    // it inside dlopen: the registration (an RCU grace period in a process with threads)
    // and the objects' preparation are left to the worker, which serves nobody before they are
    // done. Under `graft run` the process has one thread: registering costs nothing.
    const bool attached = attached_to_running_process();
    if (attached) {
        attach_init();
    } else if (!memory_and_objects_init(&why)) {
        core_refuse(why);
        return;
    }
    fork_handlers_init();
    if (const char *t = std::getenv("GRAFT_SIGNAL_TIMEOUT"); t && *t && !set_signal_timeout(std::atof(t)))
        log_fmt("graft: ignoring GRAFT_SIGNAL_TIMEOUT=%s (seconds from 0 to %.0f)", t, kMaxSignalTimeout);
    if (const char *b = std::getenv("GRAFT_OWN_WALK_BUDGET_US"); b && *b)
        set_own_walk_budget_us(std::atof(b));
    if (const char *r = std::getenv("GRAFT_READ_AHEAD"); r && *r)
        set_read_ahead_min(std::strcmp(r, "off") == 0 ? 0
                                                      : static_cast<size_t>(std::strtoul(r, nullptr, 10)));
    struct sigaction sa {};
    sa.sa_sigaction = on_transition_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(transition_signal(), &sa, nullptr);
    if (!control_start(&why, attached ? memory_and_objects_init : nullptr)) core_refuse(why);
}

// Runs when the process exits (or the agent is unloaded): objects closed after this point are
// not unpatched, since the agent's own state may already be gone.
__attribute__((destructor)) void agent_fini() {
    object_events_stop();
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
    try {  // the line's std::string: a patch's C caller must never see an exception
        graft::log_line(buf);
    } catch (...) {
    }
}

__attribute__((visibility("default"))) void graft_quiescent(void) {
    if (graft::g_view.target_state.load(std::memory_order_acquire) == graft::kIdle) return;
    graft::transition_self_check(graft::SelfContext::kDirect);
}

__attribute__((visibility("default"))) enum graft_object_state graft_object_state(
    const struct graft_object *obj) {
    return graft::object_state_of(obj);
}

}  // extern "C"
