#include "cli/target_match.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

namespace graft::cli {
namespace {

std::string basename_of(const std::string &p) {
    size_t s = p.rfind('/');
    return s == std::string::npos ? p : p.substr(s + 1);
}

// The files `pid` maps with execute permission (its objects' code), as "start-end" ranges and
// paths; data files (locales, caches) are left out.
std::vector<std::pair<std::string, std::string>> code_files(pid_t pid) {
    std::vector<std::pair<std::string, std::string>> out;
    std::set<std::string> seen;
    std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
    std::string range, perms, off, dev, inode, path;
    for (std::string line; std::getline(f, line);) {
        size_t slash = line.find('/');
        if (slash == std::string::npos) continue;
        std::istringstream ls(line.substr(0, slash));
        if (!(ls >> range >> perms >> off >> dev >> inode) || perms.size() < 3 || perms[2] != 'x') continue;
        path = line.substr(slash);
        if (seen.insert(path).second) out.emplace_back(range, path);
    }
    return out;
}

}  // namespace

const TargetMatcher::Facts &TargetMatcher::facts_of_fd(int fd, const std::string &path) {
    static const Facts kNone;
    struct stat st {};
    if (fstat(fd, &st) != 0) return kNone;
    auto [it, fresh] = cache_.try_emplace({st.st_dev, st.st_ino});
    if (!fresh) return it->second;
    SymbolFile sf;
    std::string err;
    if (describe_fd(fd, path, &sf, &err)) {
        it->second.ok = true;
        it->second.name = sf.has_interp ? "" : !sf.soname.empty() ? sf.soname : basename_of(path);
        it->second.build_id = sf.build_id;
    }
    return it->second;
}

Match TargetMatcher::match(pid_t pid, std::string *why) {
    const std::string proc = "/proc/" + std::to_string(pid);
    // name -> build-ids running under it in this process (a library can be there twice).
    std::map<std::string, std::set<std::string>> running;
    // The file as the process maps it: through map_files (root: the very file, even if it was
    // deleted or lives in another mount namespace), else by its path in the process's root.
    for (auto &[range, path] : code_files(pid)) {
        int fd = open((proc + "/map_files/" + range).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) fd = open((proc + "/root" + path).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        const Facts &f = facts_of_fd(fd, path);
        close(fd);
        if (f.ok && !f.name.empty()) running[f.name].insert(f.build_id);
    }
    int fd = open((proc + "/exe").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        const Facts &f = facts_of_fd(fd, "/proc/" + std::to_string(pid) + "/exe");
        close(fd);
        if (f.ok) running[""].insert(f.build_id);
    }
    bool other = false;
    for (const auto &t : targets_) {
        auto it = running.find(t.object);
        if (it == running.end()) return Match::kUnconcerned;
        if (it->second.count(t.build_id)) continue;
        // The main executable has no name to compare: another program, not another build.
        if (t.object.empty()) return Match::kUnconcerned;
        if (!other)
            *why = "it runs " + t.object +
                   (it->second.begin()->empty() ? " without a build-id"
                                                : " with build-id " + *it->second.begin()) +
                   "; the patch is for build-id " + t.build_id;
        other = true;
    }
    return other ? Match::kOtherBuild : Match::kMatches;
}

}  // namespace graft::cli
