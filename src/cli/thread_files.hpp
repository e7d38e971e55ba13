// A process that is not dumpable (a daemon that switched users itself) may not open its own
// threads' /proc/PID/task/TID/syscall files: the kernel gives them to root. `graft` running as
// root opens them and passes the descriptors to the agent (request "task_files", SCM_RIGHTS),
// which then checks blocked threads where they stand as in any other process
// (src/agent/proc/passed_task_files.hpp).
#pragma once
#include <sys/types.h>

#include <string>

namespace graft::cli {

// Whether the process's /proc files are its own (a process not running as root whose
// /proc/PID/syscall is root's is not dumpable).
bool process_dumpable(pid_t pid);

// For a process that is not dumpable, when this `graft` may open its threads' files: passes
// them to its agent, as many as its descriptor limit leaves room for (a warning on stderr names
// how many when not all). Silent and harmless otherwise: the agent then waits for such threads
// as before. `what` names the command in the one error line if the agent cannot be reached.
void pass_thread_files(pid_t pid, const std::string &what);

}  // namespace graft::cli
