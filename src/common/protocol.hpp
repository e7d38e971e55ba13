// The control protocol between the `graft` command and the agent: one JSON object per line over
// a Unix stream socket in the abstract namespace, "\0graft/<pid>". A request is
// {"op": "...", ...}; the answer is {"ok": true, ...} or {"ok": false, "errno": N, "error": "..."}.
// One request per connection. Access (docs/design.md, "Security"): the agent checks the peer's
// credentials (SO_PEERCRED) right after accept, and the client sends, with the first bytes of its
// request (SCM_RIGHTS), a descriptor of /proc/<pid>/mem of the target, which the kernel let it
// open only if it may ptrace the target; the client checks that the socket's peer is <pid>.
#pragma once
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace graft::protocol {

inline socklen_t address(pid_t pid, sockaddr_un *a) {
    std::memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    std::string name = "graft/" + std::to_string(pid);
    std::memcpy(a->sun_path + 1, name.data(), name.size());
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
}

inline bool write_all(int fd, const std::string &s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

}  // namespace graft::protocol
