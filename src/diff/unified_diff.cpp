#include "diff/unified_diff.hpp"

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
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

// "@@ -a[,b] +c[,d] @@": a count left out is 1.
bool parse_hunk(const std::string &line, Hunk *h) {
    if (line.rfind("@@ -", 0) != 0) return false;
    const char *p = line.c_str() + 4;
    auto number = [&](int *out) {
        char *end = nullptr;
        long v = std::strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX / 2) return false;
        *out = static_cast<int>(v);
        p = end;
        return true;
    };
    if (!number(&h->old_start)) return false;
    h->old_len = 1;
    if (*p == ',' && (++p, !number(&h->old_len))) return false;
    if (std::strncmp(p, " +", 2) != 0) return false;
    p += 2;
    if (!number(&h->new_start)) return false;
    h->new_len = 1;
    if (*p == ',' && (++p, !number(&h->new_len))) return false;
    return std::strncmp(p, " @@", 3) == 0;
}

}  // namespace

int line_shift(const TouchedFile &f, int old_line) {
    long shift = 0;
    for (const Hunk &h : f.hunks) {
        const int first = h.old_len ? h.old_start : h.old_start + 1;
        if (old_line >= first && old_line < first + h.old_len) {
            for (const auto &[o, n] : h.context)
                if (o == old_line) return n - o;
            return INT32_MIN;  // a line the fix removes or changes
        }
        if (first + h.old_len <= old_line) shift += h.new_len - h.old_len;
    }
    return shift > INT32_MAX || shift < INT32_MIN + 1 ? INT32_MIN : static_cast<int>(shift);
}

bool parse_fix(const std::string &text, FixFiles *out, std::string *why) {
    *out = {};
    std::istringstream in(text);
    std::string line, old_path;
    std::vector<std::pair<std::string, std::string>> pairs;  // (old, new) as written
    std::vector<std::vector<Hunk>> hunks;                    // each pair's
    bool have_old = false;
    int old_left = 0, new_left = 0, old_at = 0, new_at = 0;  // inside a hunk's body
    while (std::getline(in, line)) {
        if (old_left > 0 || new_left > 0) {
            const char c = line.empty() ? ' ' : line[0];
            if (c == ' ' && old_left > 0 && new_left > 0) {
                hunks.back().back().context.push_back({old_at++, new_at++});
                old_left--;
                new_left--;
                continue;
            }
            if (c == '-' && old_left > 0) {
                old_at++;
                old_left--;
                continue;
            }
            if (c == '+' && new_left > 0) {
                new_at++;
                new_left--;
                continue;
            }
            if (c == '\\') continue;  // "\ No newline at end of file"
            old_left = new_left = 0;  // a malformed body: what follows is read as headers
        }
        if (line.rfind("--- ", 0) == 0) {
            old_path = header_path(line);
            have_old = true;
        } else if (line.rfind("+++ ", 0) == 0 && have_old) {
            pairs.emplace_back(old_path, header_path(line));
            hunks.emplace_back();
            have_old = false;
        } else {
            have_old = false;
            Hunk h;
            if (!hunks.empty() && parse_hunk(line, &h)) {
                hunks.back().push_back(h);
                old_left = h.old_len;
                new_left = h.new_len;
                old_at = h.old_start;
                new_at = h.new_start;
            }
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
    for (size_t i = 0; i < pairs.size(); i++) {
        const auto &[o, n] = pairs[i];
        TouchedFile f;
        f.hunks = hunks[i];
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
