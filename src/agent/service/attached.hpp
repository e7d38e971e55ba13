// The agent in a process it was attached to (`graft attach`, docs/design.md §4.13) rather than
// preloaded by `graft run`.
#pragma once

namespace graft {

// Whether the agent was loaded into a running process: pthread_create then resolves to the C
// library's, not to thread_birth.cpp's.
bool attached_to_running_process();
// Gives every thread that existed before the agent its graft state, and arranges for the
// borrowed thread's errno to be put back as its call returns. Runs in the constructor, on the
// borrowed thread, before the transition signal's handler is installed.
void attach_init();

}  // namespace graft
