// Which running processes a patch is for: those that run every object the patch's target records
// name, with the build-id the patch was made for (`graft load --all`).
#pragma once
#include <sys/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "agent/process/patch_targets.hpp"
#include "agent/process/symbols.hpp"

namespace graft::cli {

enum class Match {
    kUnconcerned,  // runs none of the named objects (or another program): not listed
    kOtherBuild,   // runs an object of that name, of another build: listed as skipped
    kMatches,
};

// Reads each mapped file once per (device, inode) for all the processes asked about.
class TargetMatcher {
  public:
    explicit TargetMatcher(std::vector<PatchTarget> targets) : targets_(std::move(targets)) {}
    // *why: for kOtherBuild, which object runs which build.
    Match match(pid_t pid, std::string *why);

  private:
    struct Facts {
        bool ok = false;
        std::string name, build_id;
    };
    const Facts &facts_of_fd(int fd, const std::string &path);
    std::vector<PatchTarget> targets_;
    std::map<std::pair<dev_t, ino_t>, Facts> cache_;
};

}  // namespace graft::cli
