// fork(): the child keeps its patches and gets a working agent (klp_copy_process for the one
// thread a child has, plus a new control server and worker under the child's pid).
#pragma once

namespace graft {
// Registers the pthread_atfork handlers (agent constructor).
void fork_handlers_init();
}  // namespace graft
