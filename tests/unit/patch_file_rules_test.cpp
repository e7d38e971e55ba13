// The rules for opening a patch file (patch_file.hpp), on real files: an absolute path, no
// symbolic link, a regular file, owned by root or the process's user and writable by its owner
// only; what is checked and loaded is a sealed copy that later changes to the file cannot reach.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <gtest/gtest.h>

#include "agent/process/patch_file.hpp"

namespace fs = std::filesystem;

namespace {
struct Dir {
    std::string path;
    Dir() {
        char t[] = "/tmp/graft-unit-patch-file-XXXXXX";
        path = mkdtemp(t) ? t : "";
    }
    ~Dir() {
        if (!path.empty()) fs::remove_all(path);
    }
};

std::string a_patch() {
    return std::string(GRAFT_TEST_PROGS) + "/unit_patchlike.so";
}

int open_it(const std::string &p, graft::PatchImage *img, std::string *why) {
    int rc = graft::open_patch_file(p, img, why);
    if (rc == 0) {
        EXPECT_GE(img->fd, 0);
    }
    return rc;
}
}  // namespace

TEST(UnitPatchFile, RelativePathIsRefused) {
    graft::PatchImage img;
    std::string why;
    EXPECT_EQ(open_it("fix.so", &img, &why), EINVAL);
    EXPECT_EQ(why, "patch file 'fix.so' is not an absolute path (the agent does not search for patch files)");
}

TEST(UnitPatchFile, SymlinkFifoAndDirectoryAreRefused) {
    Dir d;
    graft::PatchImage img;
    std::string why;
    std::string link = d.path + "/link.so";
    ASSERT_EQ(symlink(a_patch().c_str(), link.c_str()), 0);
    EXPECT_EQ(open_it(link, &img, &why), ELOOP);
    EXPECT_EQ(why, "patch file '" + link + "' is a symbolic link (name the file itself)");
    std::string fifo = d.path + "/fifo.so";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_EQ(open_it(fifo, &img, &why), EINVAL);
    EXPECT_EQ(why, "patch file '" + fifo + "' is not a regular file");
    EXPECT_EQ(open_it(d.path, &img, &why), EINVAL);
    EXPECT_EQ(img.fd, -1);
}

TEST(UnitPatchFile, GroupOrOtherWritableIsRefused) {
    Dir d;
    std::string p = d.path + "/fix.so";
    fs::copy_file(a_patch(), p);
    graft::PatchImage img;
    std::string why;
    chmod(p.c_str(), 0620);
    EXPECT_EQ(open_it(p, &img, &why), EACCES);
    EXPECT_NE(why.find("is writable by its group (mode 0620)"), std::string::npos) << why;
    chmod(p.c_str(), 0602);
    EXPECT_EQ(open_it(p, &img, &why), EACCES);
    EXPECT_NE(why.find("is writable by others (mode 0602)"), std::string::npos) << why;
}

TEST(UnitPatchFile, TheImageIsASealedCopyOfWhatWasChecked) {
    Dir d;
    std::string p = d.path + "/fix.so";
    fs::copy_file(a_patch(), p);
    chmod(p.c_str(), 0644);
    graft::PatchImage img;
    std::string why;
    ASSERT_EQ(open_it(p, &img, &why), 0) << why;
    ASSERT_TRUE(img.syms);
    EXPECT_EQ(img.dl_path, "/proc/self/fd/" + std::to_string(img.fd));
    struct stat before {};
    ASSERT_EQ(fstat(img.fd, &before), 0);
    EXPECT_EQ(static_cast<uintmax_t>(before.st_size), fs::file_size(a_patch()));
    // The file on disk changes; the image does not, and cannot be changed through its descriptor.
    ASSERT_EQ(truncate(p.c_str(), 10), 0);
    struct stat after {};
    ASSERT_EQ(fstat(img.fd, &after), 0);
    EXPECT_EQ(after.st_size, before.st_size);
    EXPECT_NE(ftruncate(img.fd, 10), 0);
    EXPECT_GE(fcntl(img.fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
    graft::close_patch_image(img.fd);
}

TEST(UnitPatchFile, NotAPatchIsRefusedAndNothingStaysOpen) {
    Dir d;
    std::string p = d.path + "/prog.so";
    fs::copy_file(std::string(GRAFT_TEST_PROGS) + "/unit_syms", p);
    chmod(p.c_str(), 0755);
    int probe = open("/dev/null", O_RDONLY);
    close(probe);
    graft::PatchImage img;
    std::string why;
    EXPECT_EQ(open_it(p, &img, &why), ENOEXEC);
    EXPECT_FALSE(why.empty());
    EXPECT_EQ(img.fd, -1);
    int again = open("/dev/null", O_RDONLY);  // the lowest free descriptor is the same as before
    EXPECT_EQ(again, probe);
    close(again);
}
