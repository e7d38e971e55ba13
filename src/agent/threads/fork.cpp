#include "agent/threads/fork.hpp"

#include <pthread.h>

#include <new>
#include <string>

#include "agent/livepatch/core.hpp"
#include "agent/livepatch/shadow.hpp"
#include "agent/lock_order.hpp"
#include "agent/proc/passed_task_files.hpp"
#include "agent/process/fini_watch.hpp"
#include "agent/process/symbols.hpp"
#include "agent/service/control.hpp"
#include "agent/service/log.hpp"
#include "agent/threads/thread_state.hpp"
#include "agent/unwind/stack_check.hpp"
#include "arch/arch.hpp"

namespace graft {
namespace {

// Every lock of the agent (1-5 of lock_order.hpp), taken before fork() in the one order they nest
// in, so that the child never inherits a lock held by a thread it does not have. The parent
// releases them; the child re-creates them: its one thread holds them, but under a new tid,
// which a recursive mutex would not accept as their owner.
void prepare() {
    g_core_mutex.lock();
    g_shadow_mutex.lock();
    g_grace_period_mutex.lock();
    g_sym_cache_mutex.lock();
    g_log_mutex.lock();
}

void parent() {
    g_log_mutex.unlock();
    g_sym_cache_mutex.unlock();
    g_grace_period_mutex.unlock();
    g_shadow_mutex.unlock();
    g_core_mutex.unlock();
}

void child() {
    new (&g_log_mutex) std::mutex;
    new (&g_sym_cache_mutex) std::mutex;
    new (&g_grace_period_mutex) std::mutex;
    new (&g_shadow_mutex) std::mutex;
    new (&g_core_mutex) std::recursive_mutex;
    thread_state_after_fork_child();
    fini_watch_clear_marks(/*every_thread=*/true);  // the parent's threads' marks
    // Files of the parent's threads: of no use here, and slots of the child's descriptor table.
    passed_task_files_clear();
    stack_check_after_fork_child();
    std::string why;
    // membarrier registrations belong to the address space: a new one starts unregistered.
    if (!arch::init_membarrier(&why)) {
        core_refuse("after fork: " + why);
        return;
    }
    // The parent's worker did not come along; the transition in progress (if any) continues in
    // the child under a new worker, answering on the child's own socket.
    if (!control_restart_in_child(&why)) core_refuse("after fork: " + why);
}

}  // namespace

void fork_handlers_init() {
    pthread_atfork(prepare, parent, child);
}

}  // namespace graft
