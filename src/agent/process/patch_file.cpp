#include "agent/process/patch_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace graft {
namespace {

// A patch is code and a few tables; a file this large is a mistake, and copying it would cost
// the host that much memory.
constexpr off_t kMaxPatchBytes = 256 << 20;

std::string quoted(const std::string &path) {
    return "patch file '" + path + "'";
}

std::string octal(unsigned v) {
    char b[16];
    std::snprintf(b, sizeof b, "%04o", v & 07777);
    return b;
}

// Test hook (GRAFT_TEST_HOOK_DIR, for tests/scenarios/patch_file/patch_file_test.cpp only): at `point`, the
// agent creates DIR/POINT and waits up to 20 s for DIR/go-POINT, so that a test can change the
// file at exactly that moment.
void test_hook(const char *point) {
    const char *dir = std::getenv("GRAFT_TEST_HOOK_DIR");
    if (!dir || !*dir) return;
    std::string mark = std::string(dir) + "/" + point, go = std::string(dir) + "/go-" + point;
    int fd = open(mark.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    for (int i = 0; i < 4000 && access(go.c_str(), F_OK) != 0; i++) {
        timespec ts{0, 5'000'000};
        nanosleep(&ts, nullptr);
    }
}

// Copies `src` (from offset 0 until its end, whatever its size is now) into a sealed memfd.
// Returns the memfd, or -1 with errno set (0: the file is too large).
int sealed_copy(int src, const std::string &path) {
    std::string name = "graft-patch:" + path;
    if (name.size() > 240) name.resize(240);  // memfd names are at most 249 bytes
    int m = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (m < 0) return -1;
    char buf[65536];
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(src, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            close(m);
            errno = e;
            return -1;
        }
        if (n == 0) break;
        if (off + n > kMaxPatchBytes) {
            close(m);
            errno = 0;
            return -1;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(m, buf + done, static_cast<size_t>(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                int e = w < 0 ? errno : EIO;
                close(m);
                errno = e;
                return -1;
            }
            done += w;
        }
        off += n;
    }
    if (fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        int e = errno;
        close(m);
        errno = e;
        return -1;
    }
    return m;
}

// The rules for who may have written the file and how large it may be, on its descriptor: 0,
// or the errno value with *why.
int check_patch_file(int fd, const std::string &path, std::string *why) {
    auto refuse = [&](int err, const std::string &msg) {
        *why = msg;
        return err;
    };
    struct stat st {};
    if (fstat(fd, &st) != 0)
        return refuse(errno, "cannot read " + quoted(path) + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return refuse(EINVAL, quoted(path) + " is not a regular file");
    // Whoever may write the file decides what runs in the process: only root and the process's
    // own user may, as for anything else it runs.
    const uid_t me = geteuid();
    if (st.st_uid != 0 && st.st_uid != me)
        return refuse(EACCES, quoted(path) + " is owned by uid " + std::to_string(st.st_uid) +
                                  "; a patch file must be owned by root or by the process's user (uid " +
                                  std::to_string(me) + ")");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return refuse(
            EACCES, quoted(path) + " is writable by " +
                        ((st.st_mode & S_IWOTH) ? std::string("others") : std::string("its group")) +
                        " (mode " + octal(st.st_mode) + "); a patch file may be writable by its owner only");
    if (st.st_size > kMaxPatchBytes)
        return refuse(EFBIG,
                      quoted(path) + " is larger than " + std::to_string(kMaxPatchBytes >> 20) + " MiB");
    return 0;
}

// The image's ELF checks, on the bytes dlopen will map: 0, or ENOEXEC with *why.
int check_patch_image(int image, const std::string &label, PatchImage *out, std::string *why) {
    SymbolFile facts;
    if (!describe_fd(image, label, &facts, why)) return ENOEXEC;
    // Nothing of a file that is not a complete patch may run in the process (dlopen would run
    // its constructors).
    if (!check_loadable_fd(image, label, "graft_patch_descriptor", why)) return ENOEXEC;
    out->text_relocations = facts.text_relocations;
    auto syms = symbols_of_fd(image, label, why);
    if (!syms) return ENOEXEC;
    out->syms = std::move(syms);
    return 0;
}

}  // namespace

int open_patch_file(const std::string &path, PatchImage *out, std::string *why) {
    if (path.empty() || path[0] != '/') {
        *why = quoted(path) + " is not an absolute path (the agent does not search for patch files)";
        return EINVAL;
    }
    // O_NONBLOCK: a FIFO put in the file's place must not hang the worker in open().
    int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        *why = e == ELOOP ? quoted(path) + " is a symbolic link (name the file itself)"
                          : "cannot open " + quoted(path) + ": " + std::strerror(e);
        return e;
    }
    if (int err = check_patch_file(fd, path, why)) {
        close(fd);
        return err;
    }
    test_hook("opened");

    int image = sealed_copy(fd, path);
    if (image < 0 && errno == 0) {
        close(fd);
        *why = quoted(path) + " grew past " + std::to_string(kMaxPatchBytes >> 20) + " MiB while it was read";
        return EFBIG;
    }
    if (image >= 0) {
        close(fd);
    } else {
        // No memfd here (an old kernel, or a seccomp filter): the file's own descriptor, checked
        // and loaded as the same file. Only its owner (root or this user) can still change it.
        image = fd;
    }
    PatchImage img;
    if (int err = check_patch_image(image, path, &img, why)) {
        close(image);
        return err;
    }
    test_hook("checked");
    out->fd = image;
    out->dl_path = "/proc/self/fd/" + std::to_string(image);
    out->syms = std::move(img.syms);
    out->text_relocations = img.text_relocations;
    return 0;
}

void close_patch_image(int fd) {
    if (fd >= 0) close(fd);
}

}  // namespace graft
