#include "diff/unified_diff.hpp"

#include <sstream>

namespace graft::diff {
namespace {

// The path of a `--- ` or `+++ ` line: up to a tab (a timestamp follows in diff -u's format).
std::string header_path(const std::string &line) {
    std::string p = line.substr(4);
    auto tab = p.find('\t');
    if (tab != std::string::npos) p.erase(tab);
    while (!p.empty() && (p.back() == '\r' || p.back() == ' ')) p.pop_back();
    return p;
}

std::string strip_components(const std::string &p, int n) {
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        auto slash = p.find('/', at);
        if (slash == std::string::npos) return "";
        at = slash + 1;
    }
    return p.substr(at);
}

}  // namespace

bool parse_fix(const std::string &text, FixFiles *out, std::string *why) {
    *out = {};
    std::istringstream in(text);
    std::string line, old_path;
    std::vector<std::pair<std::string, std::string>> pairs;  // (old, new) as written
    bool have_old = false;
    while (std::getline(in, line)) {
        if (line.rfind("--- ", 0) == 0) {
            old_path = header_path(line);
            have_old = true;
        } else if (line.rfind("+++ ", 0) == 0 && have_old) {
            pairs.emplace_back(old_path, header_path(line));
            have_old = false;
        } else {
            have_old = false;
        }
    }
    if (pairs.empty()) {
        *why = "the fix is not a unified diff (no '--- file' / '+++ file' header)";
        return false;
    }
    // git's a/ and b/ prefixes (and quilt's and Debian's usual dir/ and dir.orig/): strip one.
    bool prefixed = true;
    for (auto &[o, n] : pairs) {
        const std::string &p = n == "/dev/null" ? o : n;
        if (p.find('/') == std::string::npos) prefixed = false;
    }
    out->strip = prefixed ? 1 : 0;
    for (auto &[o, n] : pairs) {
        TouchedFile f;
        f.created = o == "/dev/null";
        f.deleted = n == "/dev/null";
        f.path = strip_components(f.deleted ? o : n, out->strip);
        if (f.path.empty() || f.path[0] == '/' || f.path.find("..") != std::string::npos) {
            *why = "the fix names a file outside the source tree: '" + (f.deleted ? o : n) + "'";
            return false;
        }
        out->files.push_back(f);
    }
    return true;
}

}  // namespace graft::diff
