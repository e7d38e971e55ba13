#include "agent/proc/passed_task_files.hpp"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

namespace graft {
namespace {

// Sorted by tid (passed_task_files.hpp says who writes and reads it).
std::vector<std::pair<pid_t, int>> g_files;

// Whether `fd` is the syscall file of this process's thread `tid`: a descriptor of anything else
// (a FIFO, a FUSE file, another process's file) could block the worker's reads or lie to them.
bool is_syscall_file_of(int fd, pid_t tid) {
    struct statfs sf {};
    struct stat got {
    }, want{};
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
    return tid > 0 && fstatfs(fd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC && fstat(fd, &got) == 0 &&
           stat(path, &want) == 0 && S_ISREG(got.st_mode) && got.st_dev == want.st_dev &&
           got.st_ino == want.st_ino;
}

}  // namespace

PassedTaskFiles passed_task_files_replace(const std::vector<pid_t> &tids, std::vector<int> *fds) {
    passed_task_files_clear();
    PassedTaskFiles r;
    std::vector<std::pair<pid_t, int>> files;
    // Reserved first: past this line nothing throws, so every descriptor is kept or closed once
    // (if this throws, the caller still holds them all and closes them).
    files.reserve(std::min(fds->size(), kMaxPassedTaskFiles));
    for (size_t i = 0; i < fds->size(); i++) {
        const int fd = (*fds)[i];
        const bool ok =
            i < tids.size() && files.size() < kMaxPassedTaskFiles && is_syscall_file_of(fd, tids[i]);
        if (ok) {
            files.emplace_back(tids[i], fd);
            r.kept++;
        } else {
            close(fd);
            r.refused++;
        }
    }
    fds->clear();
    std::sort(files.begin(), files.end());
    // A tid named twice keeps its first descriptor.
    for (size_t i = 1; i < files.size();) {
        if (files[i].first == files[i - 1].first) {
            close(files[i].second);
            files.erase(files.begin() + static_cast<std::ptrdiff_t>(i));
            r.kept--;
            r.refused++;
        } else {
            i++;
        }
    }
    g_files = std::move(files);
    return r;
}

void passed_task_files_clear() {
    for (auto &[tid, fd] : g_files) close(fd);
    g_files.clear();
}

size_t passed_task_files_count() {
    return g_files.size();
}

int passed_syscall_file(pid_t tid) {
    auto it = std::lower_bound(g_files.begin(), g_files.end(), std::make_pair(tid, -1));
    return it != g_files.end() && it->first == tid ? it->second : -1;
}

}  // namespace graft
