#include "diff/source_tree.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace graft::diff {
namespace {

bool read_file(const std::string &p, std::string *out) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    *out = ss.str();
    return true;
}

bool write_file(const std::string &p, const std::string &bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << bytes;
    return static_cast<bool>(out);
}

}  // namespace

int run_in(const std::string &dir, const std::vector<std::string> &argv, std::string *output) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        if (chdir(dir.c_str()) != 0) _exit(126);
        std::vector<char *> a;
        for (const auto &s : argv) a.push_back(const_cast<char *>(s.c_str()));
        a.push_back(nullptr);
        execvp(a[0], a.data());
        _exit(127);
    }
    close(pipefd[1]);
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = read(pipefd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (out.size() < 64 * 1024) out.append(buf, static_cast<size_t>(n));
    }
    close(pipefd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (output) *output = out;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool AppliedFix::apply(const std::string &dir, const FixFiles &files, const std::string &fix_path,
                       const std::string &save_dir, std::string *why) {
    // Held back until restore(): an interrupted run must still put the tree back.
    sigset_t hold;
    sigemptyset(&hold);
    sigaddset(&hold, SIGINT);
    sigaddset(&hold, SIGTERM);
    sigaddset(&hold, SIGHUP);
    sigprocmask(SIG_BLOCK, &hold, &old_mask_);
    saved_.clear();
    int k = 0;
    for (const auto &f : files.files) {
        Saved s;
        s.path = dir + "/" + f.path;
        struct stat st {};
        s.existed = stat(s.path.c_str(), &st) == 0;
        if (s.existed) {
            if (!read_file(s.path, &s.bytes)) {
                *why = "cannot read '" + s.path + "' to save it before applying the fix";
                sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
                return false;
            }
            s.times[0] = st.st_atim;
            s.times[1] = st.st_mtim;
            write_file(save_dir + "/saved-" + std::to_string(k++) + "-" +
                           std::filesystem::path(f.path).filename().string(),
                       s.bytes);
        }
        saved_.push_back(std::move(s));
    }
    applied_ = true;
    std::string out;
    int rc = run_in(dir,
                    {"patch", "-p" + std::to_string(files.strip), "--batch", "--forward", "--silent",
                     "--no-backup-if-mismatch", "-r", "-", "-i", fix_path},
                    &out);
    if (rc != 0) {
        restore();
        while (!out.empty() && out.back() == '\n') out.pop_back();
        *why = "the fix does not apply to '" + dir + "'" + (out.empty() ? "" : ": " + out);
        return false;
    }
    return true;
}

void AppliedFix::restore() {
    if (!applied_) return;
    for (const auto &s : saved_) {
        if (!s.existed) {
            unlink(s.path.c_str());
            continue;
        }
        write_file(s.path, s.bytes);
        // Its times too: a build system must not take the file for changed.
        utimensat(AT_FDCWD, s.path.c_str(), s.times, 0);
    }
    applied_ = false;
    sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
}

}  // namespace graft::diff
