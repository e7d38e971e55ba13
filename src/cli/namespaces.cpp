#include "cli/namespaces.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace graft::cli {
namespace {

// Whether /proc/self/ns/KIND and /proc/PID/ns/KIND are the same namespace (an unreadable link
// counts as the same: nothing can be entered then anyway).
bool same_namespace(pid_t pid, const char *kind) {
    struct stat mine {
    }, theirs{};
    const std::string self = std::string("/proc/self/ns/") + kind;
    const std::string other = "/proc/" + std::to_string(pid) + "/ns/" + kind;
    if (stat(self.c_str(), &mine) != 0 || stat(other.c_str(), &theirs) != 0) return true;
    return mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino;
}

}  // namespace

pid_t pid_in_own_namespace(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("NSpid:", 0) != 0) continue;
        std::istringstream in(line.substr(6));
        long v = 0, last = 0;
        while (in >> v) last = v;
        return last > 0 ? static_cast<pid_t>(last) : pid;
    }
    return pid;
}

int unix_socket_in_net_namespace_of(pid_t pid) {
    if (same_namespace(pid, "net")) return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int ns = open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) return -1;
    // setns(CLONE_NEWNET) moves only the calling thread; a socket keeps the namespace it was
    // made in after its thread is gone.
    int fd = -1, err = 0;
    std::thread t([&] {
        if (setns(ns, CLONE_NEWNET) != 0) {
            err = errno;
            return;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) err = errno;
    });
    t.join();
    close(ns);
    if (fd < 0) errno = err;
    return fd;
}

bool other_mount_namespace(pid_t pid) {
    return !same_namespace(pid, "mnt");
}

}  // namespace graft::cli
