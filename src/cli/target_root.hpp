// The target's filesystem as the target sees it (a container's root, its own mounts): reading
// its files, and putting graft's own files (the agent, a patch) where it can load them.
#pragma once
#include <sys/types.h>

#include <string>

namespace graft::cli {

// Opens the regular file `path` (absolute) as process `pid` would find it, read-only, or returns
// -1 with errno. Resolved inside the process's root: a symbolic link in a container's files
// cannot lead out of it to this machine's files (openat2 RESOLVE_IN_ROOT), and anything but a
// regular file (a FIFO, a device: a read could block) is refused with ENXIO.
int open_in_target(pid_t pid, const std::string &path);

// A path under which process `pid` finds the same bytes as this process finds at `path`: `path`
// itself when it names the same file there; otherwise a copy made in a new directory
// `graft-<random>` under the first of the target's /tmp, /var/tmp, /run or /dev/shm that is
// writable and allows execution (*copied then true). Dies naming `what` ("attach PID", "load"...)
// and the reason if there is none.
std::string path_for_target(pid_t pid, const std::string &path, const std::string &what,
                            bool *copied = nullptr);

// Removes a copy path_for_target made (the file and its directory), once the process no longer
// needs it by its path.
void remove_target_copy(pid_t pid, const std::string &copy);

}  // namespace graft::cli
