// A target in other namespaces (a container): its pid as its agent sees it, and a socket made in
// its network namespace, where its agent's abstract control socket lives.
#pragma once
#include <sys/types.h>

namespace graft::cli {

// `pid` (as this process sees it) in the target's own pid namespace: the last NSpid field of its
// status, which its agent's getpid() returns and names its control socket by. `pid` itself when
// the field is missing or the process shares ours.
pid_t pid_in_own_namespace(pid_t pid);

// A Unix stream socket in the network namespace of `pid` (a plain one when it shares ours), or -1
// with errno. Entering another namespace needs CAP_SYS_ADMIN; it is done by a short-lived thread,
// so this process stays where it is.
int unix_socket_in_net_namespace_of(pid_t pid);

// Whether `pid` runs in another mount namespace than this process (false if unknown).
bool other_mount_namespace(pid_t pid);

}  // namespace graft::cli
