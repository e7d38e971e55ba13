#include "cli/target_root.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "cli/client.hpp"
#include "cli/namespaces.hpp"

namespace graft::cli {
namespace {

// Closes a descriptor when it goes out of scope.
struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0) close(fd);
    }
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
};

// openat2(root of `pid`, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS); a kernel without
// openat2 (before 5.6) gets the plain path through /proc/PID/root, which follows links as they are.
int open_under_root(pid_t pid, const std::string &path, int flags, mode_t mode = 0) {
    const std::string root = "/proc/" + std::to_string(pid) + "/root";
    Fd dir(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dir.fd < 0) return -1;
    open_how how{};
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    const std::string rel = path.empty() || path[0] != '/' ? path : path.substr(1);
    long fd = syscall(SYS_openat2, dir.fd, rel.c_str(), &how, sizeof how);
    if (fd < 0 && errno == ENOSYS) fd = openat(dir.fd, rel.c_str(), flags | O_CLOEXEC, mode);
    return static_cast<int>(fd);
}

bool same_file(const struct stat &a, const struct stat &b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

std::string random_name() {
    unsigned char r[6] = {};
    if (getrandom(r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) {
        const auto t = static_cast<unsigned long>(getpid()) ^ static_cast<unsigned long>(time(nullptr));
        std::snprintf(reinterpret_cast<char *>(r), sizeof r, "%lx", t);
    }
    char out[32];
    std::snprintf(out, sizeof out, "graft-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5]);
    return out;
}

bool copy_all(int from, int to) {
    char buf[1 << 16];
    for (off_t off = 0;;) {
        ssize_t n = pread(from, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) return true;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(to, buf + done, static_cast<size_t>(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return false;
            done += w;
        }
        off += n;
    }
}

}  // namespace

int open_in_target(pid_t pid, const std::string &path) {
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
    int fd = open_under_root(pid, path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return -1;
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = ENXIO;
        return -1;
    }
    return fd;
}

std::string path_for_target(pid_t pid, const std::string &path, const std::string &what, bool *copied) {
    if (copied) *copied = false;
    if (!other_mount_namespace(pid)) return path;
    Fd src(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat mine {};
    if (src.fd < 0 || fstat(src.fd, &mine) != 0)
        die(what, "cannot read '" + path + "': " + errno_text(errno));
    {
        Fd theirs(open_in_target(pid, path));
        struct stat st {};
        if (theirs.fd >= 0 && fstat(theirs.fd, &st) == 0 && same_file(st, mine)) return path;
    }
    const std::string base = path.substr(path.rfind('/') + 1);
    std::string tried;
    for (const char *dir : {"/tmp", "/var/tmp", "/run", "/dev/shm"}) {
        Fd d(open_under_root(pid, dir, O_PATH | O_DIRECTORY));
        struct statvfs vfs {};
        if (d.fd < 0 || fstatvfs(d.fd, &vfs) != 0) continue;
        if (vfs.f_flag & (ST_RDONLY | ST_NOEXEC)) {
            tried += std::string(tried.empty() ? "" : ", ") + dir +
                     ((vfs.f_flag & ST_RDONLY) ? " read-only" : " noexec");
            continue;
        }
        const std::string name = random_name();
        // 0755 and 0644: the process may run as another user than graft, and must read both.
        if (mkdirat(d.fd, name.c_str(), 0755) != 0) {
            tried += std::string(tried.empty() ? "" : ", ") + dir + " " + errno_text(errno);
            continue;
        }
        Fd sub(openat(d.fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        Fd out(sub.fd < 0 ? -1
                          : openat(sub.fd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                   0644));
        if (out.fd < 0 || fchmod(out.fd, 0644) != 0 || !copy_all(src.fd, out.fd)) {
            tried += std::string(tried.empty() ? "" : ", ") + dir + " " + errno_text(errno);
            if (sub.fd >= 0) unlinkat(sub.fd, base.c_str(), 0);
            unlinkat(d.fd, name.c_str(), AT_REMOVEDIR);
            continue;
        }
        if (copied) *copied = true;
        return std::string(dir) + "/" + name + "/" + base;
    }
    die(what, "'" + path + "' is not in the mount namespace of process " + std::to_string(pid) +
                  " and no directory there can take a copy (" + (tried.empty() ? "none found" : tried) +
                  "): " + errno_text(EACCES));
}

void remove_target_copy(pid_t pid, const std::string &copy) {
    const size_t file_at = copy.rfind('/');
    const size_t dir_at =
        file_at == std::string::npos || file_at == 0 ? std::string::npos : copy.rfind('/', file_at - 1);
    if (dir_at == std::string::npos || copy.compare(dir_at + 1, 6, "graft-") != 0) return;
    Fd d(open_under_root(pid, copy.substr(0, file_at), O_PATH | O_DIRECTORY | O_NOFOLLOW));
    if (d.fd < 0) return;
    unlinkat(d.fd, copy.substr(file_at + 1).c_str(), 0);
    Fd parent(open_under_root(pid, copy.substr(0, dir_at), O_PATH | O_DIRECTORY));
    if (parent.fd >= 0)
        unlinkat(parent.fd, copy.substr(dir_at + 1, file_at - dir_at - 1).c_str(), AT_REMOVEDIR);
}

}  // namespace graft::cli
