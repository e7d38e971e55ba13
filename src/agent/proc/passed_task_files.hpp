// Descriptors of this process's /proc/self/task/TID/syscall files that a root `graft` opened
// and passed over the control socket (SCM_RIGHTS, request "task_files"), for a process that may
// not open them itself.
//
// A daemon that switched users itself (started as root, then setuid) is not dumpable: the
// kernel gives its /proc files to root, and `syscall` is readable by its owner only, so the
// agent's open() fails with EACCES and no blocked thread can be checked where it stands. The
// read itself is allowed (the kernel's ptrace check passes within one thread group); only the
// open is not. A descriptor root opened reads the same file.
//
// The table is written only with the core mutex held (passed_task_files_replace/_clear, on the
// worker or a fork child); it is read under the core mutex, or by the read-ahead helper of a
// transition pass, which runs only while the worker holds the core mutex for that pass.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <vector>

namespace graft {

// The most descriptors kept at once: each one is a slot of the host's descriptor table.
constexpr size_t kMaxPassedTaskFiles = 1024;

struct PassedTaskFiles {
    size_t kept = 0;
    size_t refused = 0;  // not this process's syscall file of that thread, or beyond the limit
};

// Replaces the table with fds[i] for tids[i] (the descriptors are taken: kept or closed). Each
// descriptor must be procfs's syscall file of that thread of this process (same device and
// inode as /proc/self/task/TID/syscall, which stat() reaches without read permission).
PassedTaskFiles passed_task_files_replace(const std::vector<pid_t> &tids, std::vector<int> *fds);
// Closes every descriptor of the table.
void passed_task_files_clear();
size_t passed_task_files_count();
// The descriptor passed for `tid`, or -1.
int passed_syscall_file(pid_t tid);

}  // namespace graft
