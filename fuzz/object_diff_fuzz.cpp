// graft diff's readers (src/diff/) on hostile bytes: every input is read as a relocatable object
// (from a memfd, through its /proc/self/fd path, as graft diff opens a file) and compared with
// itself, and its first half with it; and as a unified diff and a compilation database's command
// line. None may fault, hang, or allocate without bound.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "diff/compile_db.hpp"
#include "diff/object_diff.hpp"
#include "diff/unified_diff.hpp"

namespace {

std::string memfd_path(const uint8_t *data, size_t size, int *fd) {
    *fd = memfd_create("object_diff_fuzz", MFD_CLOEXEC);
    if (*fd < 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(*fd, data + done, size - done);
        if (n <= 0) abort();
        done += static_cast<size_t>(n);
    }
    return "/proc/self/fd/" + std::to_string(*fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int whole_fd = -1, half_fd = -1;
    const std::string whole = memfd_path(data, size, &whole_fd);
    const std::string half = memfd_path(data, size / 2, &half_fd);
    graft::diff::ObjectPieces a, b;
    std::string why;
    const bool ok_a = graft::diff::read_object(whole, &a, &why);
    const bool ok_b = graft::diff::read_object(half, &b, &why);
    if (ok_a) {
        auto same = graft::diff::diff_objects(a, a);
        for (const auto &p : same.pieces)
            if (p.change != graft::diff::Change::kSame) abort();  // an object equals itself
        if (ok_b) (void)graft::diff::diff_objects(b, a);
    }
    close(whole_fd);
    close(half_fd);
    const std::string text(reinterpret_cast<const char *>(data), size);
    graft::diff::FixFiles files;
    if (graft::diff::parse_fix(text, &files, &why))
        for (const auto &f : files.files)
            if (f.path.empty() || f.path[0] == '/' || f.path.find("..") != std::string::npos) abort();
    std::vector<std::string> args;
    if (graft::diff::split_command(text, &args)) {
        graft::diff::CompileCommand c{"/", "/x.c", args};
        if (!args.empty()) (void)graft::diff::recompile_args(c, "/tmp/o.o");
    }
    return 0;
}
