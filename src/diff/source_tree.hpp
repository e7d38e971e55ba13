// The fix applied to the user's source tree for as long as `graft diff` compiles the "after"
// build, then taken back out. In place, so that every path, include search and __FILE__ is the
// one the target was built with. Before anything changes, each file the fix touches is saved
// (its bytes and times, in memory and under the work directory); restore() puts them back,
// and SIGINT, SIGTERM and SIGHUP are held back meanwhile so that an interrupted run still
// restores. Only a SIGKILL can leave the tree patched: the saved copies say what to put back.
#pragma once
#include <signal.h>

#include <string>
#include <vector>

#include "diff/unified_diff.hpp"

namespace graft::diff {

class AppliedFix {
  public:
    AppliedFix() = default;
    AppliedFix(const AppliedFix &) = delete;
    AppliedFix &operator=(const AppliedFix &) = delete;
    ~AppliedFix() { restore(); }

    // Applies `fix_path` to `dir` with `patch -p<strip>`; `save_dir` receives the saved copies.
    // False with the reason (and the tree unchanged) when the fix does not apply.
    bool apply(const std::string &dir, const FixFiles &files, const std::string &fix_path,
               const std::string &save_dir, std::string *why);
    // Puts every touched file back as it was (created files removed). Idempotent.
    void restore();

  private:
    struct Saved {
        std::string path;
        bool existed = false;
        std::string bytes;
        struct timespec times[2]{};
    };
    std::vector<Saved> saved_;
    bool applied_ = false;
    sigset_t old_mask_{};
};

// Runs `argv` in `dir`, its output captured; the exit status (or -1 when it could not run), and
// the output's first lines in *output. Signals graft holds back are open in the child.
int run_in(const std::string &dir, const std::vector<std::string> &argv, std::string *output);

}  // namespace graft::diff
