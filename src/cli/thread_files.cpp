#include "cli/thread_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/client.hpp"
#include "cli/namespaces.hpp"
#include "cli/target_root.hpp"

namespace graft::cli {
namespace {

// Must match the agent's kMaxPassedTaskFiles (src/agent/proc/passed_task_files.hpp).
constexpr size_t kMaxPassed = 1024;

std::string read_small(const std::string &path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<pid_t> task_ids(pid_t pid) {
    std::vector<pid_t> v;
    DIR *d = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
    if (!d) return v;
    while (dirent *e = readdir(d))
        if (e->d_name[0] != '.') v.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
    closedir(d);
    std::sort(v.begin(), v.end());
    return v;
}

// How many more descriptors the process can hold and keep a margin for its own work: a quarter
// of its soft limit, at least 64, stays free.
size_t descriptor_room(pid_t pid) {
    const std::string proc = "/proc/" + std::to_string(pid);
    std::istringstream limits(read_small(proc + "/limits"));
    unsigned long long soft = 0;
    for (std::string line; std::getline(limits, line);) {
        if (line.rfind("Max open files", 0) != 0) continue;
        std::istringstream in(line.substr(14));
        std::string s;
        in >> s;
        soft = s == "unlimited" ? ~0ull : std::strtoull(s.c_str(), nullptr, 10);
    }
    size_t open_now = 0;
    DIR *d = opendir((proc + "/fd").c_str());
    if (!d) return 0;
    while (dirent *e = readdir(d))
        if (e->d_name[0] != '.') open_now++;
    closedir(d);
    const unsigned long long margin = std::max<unsigned long long>(64, soft / 4);
    return soft > open_now + margin
               ? static_cast<size_t>(std::min<unsigned long long>(soft - open_now - margin, kMaxPassed))
               : 0;
}

// A thread's syscall file, opened through the procfs that the process itself sees when it runs
// in another mount namespace (the agent compares the descriptor with its own /proc's file).
int open_syscall_file(pid_t pid, pid_t tid, bool other_mounts, pid_t inner_pid, pid_t inner_tid) {
    if (other_mounts)
        return open_in_target(
            pid, "/proc/" + std::to_string(inner_pid) + "/task/" + std::to_string(inner_tid) + "/syscall");
    return open(("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall").c_str(),
                O_RDONLY | O_CLOEXEC);
}

}  // namespace

bool process_dumpable(pid_t pid) {
    const std::string proc = "/proc/" + std::to_string(pid);
    std::istringstream status(read_small(proc + "/status"));
    long euid = -1;
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("Uid:", 0) != 0) continue;
        std::istringstream in(line.substr(4));
        long real = -1;
        in >> real >> euid;
    }
    struct stat st {};
    return euid < 0 || stat((proc + "/syscall").c_str(), &st) != 0 || euid == 0 || st.st_uid != 0;
}

void pass_thread_files(pid_t pid, const std::string &what) {
    if (process_dumpable(pid)) return;
    const std::vector<pid_t> tids = task_ids(pid);
    if (tids.empty()) return;
    const bool other_mounts = other_mount_namespace(pid);
    const pid_t inner_pid = pid_in_own_namespace(pid);
    std::vector<int> fds;
    nlohmann::json tid_list = nlohmann::json::array();
    struct Close {
        std::vector<int> &v;
        ~Close() {
            for (int fd : v) close(fd);
        }
    } closer{fds};
    size_t room = 1;  // until the first file is open: whether this graft may open them at all
    for (pid_t tid : tids) {
        if (fds.size() == room) break;
        const pid_t inner_tid = pid_in_own_namespace(tid);
        const int fd = open_syscall_file(pid, tid, other_mounts, inner_pid, inner_tid);
        if (fd < 0) {
            if (errno == EACCES || errno == EPERM) return;  // not root: nothing this graft can pass
            continue;                                       // the thread is gone
        }
        if (fds.empty()) {
            room = std::min(descriptor_room(pid), tids.size());
            if (room == 0) {
                close(fd);
                std::cerr << "graft: " << pid
                          << ": warning: the process is not dumpable and has no descriptors to spare: its "
                             "blocked threads are checked only when they wake up"
                          << std::endl;
                return;
            }
        }
        fds.push_back(fd);
        // The id the agent finds in its own /proc: the process's namespace's where it mounted
        // its own procfs, else this one's.
        tid_list.push_back(other_mounts ? inner_tid : tid);
    }
    if (fds.empty()) return;
    bool connected = false;
    auto a = request_with_fds(pid, {{"op", "task_files"}, {"tids", tid_list}}, fds, what, &connected);
    if (!a.value("ok", false)) return;  // an agent that does not know the request: as before
    const size_t kept = a.value("kept", size_t{0});
    if (kept < tids.size() && room < tids.size())
        std::cerr << "graft: " << pid
                  << ": warning: the process is not dumpable; graft passed its agent the /proc "
                  << "files of " << kept << " of its " << tids.size()
                  << " threads (its descriptor limit): the others are checked only when they wake up"
                  << std::endl;
}

}  // namespace graft::cli
