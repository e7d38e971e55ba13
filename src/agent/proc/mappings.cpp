#include "agent/proc/mappings.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace graft {

std::string read_self_maps() {
    std::string text;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return text;
    char buf[65536];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
    close(fd);
    return text;
}

std::vector<std::pair<uintptr_t, uintptr_t>> process_mappings() {
    std::vector<std::pair<uintptr_t, uintptr_t>> v;
    const std::string text = read_self_maps();
    for (size_t pos = 0; pos < text.size();) {
        size_t eol = text.find('\n', pos);
        if (eol == std::string::npos) eol = text.size();
        unsigned long a = 0, b = 0;
        if (std::sscanf(text.c_str() + pos, "%lx-%lx", &a, &b) == 2) v.emplace_back(a, b);
        pos = eol + 1;
    }
    return v;
}

}  // namespace graft
