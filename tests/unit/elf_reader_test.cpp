// The ELF reader on hostile bytes (src/agent/process/symbols.cpp): crafted note buffers, and real objects
// corrupted in memory and read through a memfd. Nothing may fault; each refusal names the file
// and the rule it broke.
#include <elf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "agent/process/symbols.hpp"

namespace {

using Bytes = std::vector<uint8_t>;

void put_note(Bytes &b, uint32_t namesz, uint32_t descsz, uint32_t type, const char *name,
              const Bytes &desc) {
    Elf64_Nhdr nh{namesz, descsz, type};
    const auto *p = reinterpret_cast<const uint8_t *>(&nh);
    b.insert(b.end(), p, p + sizeof nh);
    size_t n = std::strlen(name) + 1;
    b.insert(b.end(), name, name + n);
    while (b.size() % 4) b.push_back(0);
    b.insert(b.end(), desc.begin(), desc.end());
    while (b.size() % 4) b.push_back(0);
}

const Bytes kId = {0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                   0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};
const char *const kIdHex = "deadbeef0102030405060708090a0b0c0d0e0f10";

Bytes read_all(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string lib_path() {
    return std::string(GRAFT_TEST_PROGS) + "/unit_patchlike.so";
}

struct Memfd {
    int fd = -1;
    explicit Memfd(const Bytes &b) {
        fd = memfd_create("elf_reader_test", MFD_CLOEXEC);
        if (fd >= 0 && !b.empty() && write(fd, b.data(), b.size()) != static_cast<ssize_t>(b.size())) {
            close(fd);
            fd = -1;
        }
    }
    ~Memfd() {
        if (fd >= 0) close(fd);
    }
};

struct Section {
    size_t header;  // offset of its header in the file
    Elf64_Shdr sh;
};

std::vector<Section> sections(const Bytes &b) {
    Elf64_Ehdr eh;
    std::memcpy(&eh, b.data(), sizeof eh);
    std::vector<Section> v;
    for (size_t i = 0; i < eh.e_shnum; i++) {
        Section s{eh.e_shoff + i * sizeof(Elf64_Shdr), {}};
        std::memcpy(&s.sh, b.data() + s.header, sizeof s.sh);
        v.push_back(s);
    }
    return v;
}

Section first_of_type(const Bytes &b, uint32_t type) {
    for (auto &s : sections(b))
        if (s.sh.sh_type == type) return s;
    ADD_FAILURE() << "no section of type " << type;
    return {};
}

template <typename T>
void poke(Bytes &b, size_t off, T v) {
    std::memcpy(b.data() + off, &v, sizeof v);
}

// Every reader on the bytes: all refuse, each with an error naming the file and `why`.
void expect_refused(const Bytes &b, const std::string &why) {
    Memfd m(b);
    ASSERT_GE(m.fd, 0);
    std::string err;
    graft::SymbolFile sf;
    EXPECT_FALSE(graft::describe_fd(m.fd, "crafted.so", &sf, &err));
    EXPECT_NE(err.find("'crafted.so'"), std::string::npos) << err;
    EXPECT_NE(err.find(why), std::string::npos) << err;
    err.clear();
    EXPECT_FALSE(graft::symbols_of_fd(m.fd, "crafted.so", &err));
    EXPECT_NE(err.find(why), std::string::npos) << err;
    err.clear();
    EXPECT_FALSE(graft::check_loadable_fd(m.fd, "crafted.so", "graft_patch_descriptor", &err));
    EXPECT_NE(err.find(why), std::string::npos) << err;
}

}  // namespace

TEST(ElfNotes, FindsTheBuildId) {
    Bytes b;
    put_note(b, 4, 16, 1, "GNU", Bytes(16, 7));  // an ABI tag first
    put_note(b, 4, 20, NT_GNU_BUILD_ID, "GNU", kId);
    bool bad = true;
    EXPECT_EQ(graft::build_id_from_notes(b.data(), b.size(), 4, &bad), kIdHex);
    EXPECT_FALSE(bad);
}

TEST(ElfNotes, WrappingSizesAreRefusedNotRead) {
    Bytes b;
    put_note(b, 4, 20, NT_GNU_BUILD_ID, "GNU", kId);
    for (uint32_t descsz : {0xfffffffdu, 0xffffffffu, 0x80000000u, 21u}) {
        Bytes c = b;
        poke<uint32_t>(c, 4, descsz);
        bool bad = false;
        EXPECT_EQ(graft::build_id_from_notes(c.data(), c.size(), 4, &bad), "") << descsz;
        EXPECT_TRUE(bad) << descsz;
    }
    for (uint32_t namesz : {0xfffffffdu, 0xffffffffu, 200u}) {
        Bytes c = b;
        poke<uint32_t>(c, 0, namesz);
        bool bad = false;
        EXPECT_EQ(graft::build_id_from_notes(c.data(), c.size(), 4, &bad), "") << namesz;
        EXPECT_TRUE(bad) << namesz;
    }
}

TEST(ElfNotes, EveryTruncationIsSafe) {
    Bytes b;
    put_note(b, 4, 20, NT_GNU_BUILD_ID, "GNU", kId);
    for (size_t len = 0; len < b.size(); len++) {
        // A copy of exactly `len` bytes: a sanitizer build sees any read past it.
        Bytes c(b.begin(), b.begin() + static_cast<long>(len));
        EXPECT_EQ(graft::build_id_from_notes(c.data(), c.size()), "") << len;
    }
    EXPECT_EQ(graft::build_id_from_notes(nullptr, 100), "");
    EXPECT_EQ(graft::build_id_from_notes(b.data(), b.size()), kIdHex);
}

TEST(ElfNotes, EightByteAlignedNotes) {
    Bytes b;
    Elf64_Nhdr nh{4, 20, NT_GNU_BUILD_ID};
    const auto *p = reinterpret_cast<const uint8_t *>(&nh);
    b.insert(b.end(), p, p + sizeof nh);
    b.insert(b.end(), {'G', 'N', 'U', 0});  // 16: already 8-aligned
    b.insert(b.end(), kId.begin(), kId.end());
    b.resize(40, 0);
    EXPECT_EQ(graft::build_id_from_notes(b.data(), b.size(), 8), kIdHex);
}

TEST(ElfReader, GoodObjectThroughADescriptor) {
    Bytes b = read_all(lib_path());
    ASSERT_GT(b.size(), sizeof(Elf64_Ehdr));
    Memfd m(b);
    std::string err;
    graft::SymbolFile sf;
    ASSERT_TRUE(graft::describe_fd(m.fd, "good.so", &sf, &err)) << err;
    EXPECT_FALSE(sf.build_id.empty());
    auto syms = graft::symbols_of_fd(m.fd, "good.so", &err);
    ASSERT_TRUE(syms) << err;
    EXPECT_FALSE(syms->syms.empty());
    EXPECT_EQ(syms->build_id, sf.build_id);
    // The same answers through the path.
    auto by_path = graft::symbols_of(lib_path(), &err);
    ASSERT_TRUE(by_path) << err;
    EXPECT_EQ(by_path->syms.size(), syms->syms.size());
    EXPECT_EQ(by_path->patchable_entries, syms->patchable_entries);
}

TEST(ElfReader, DynamicEntrySizeZero) {
    Bytes b = read_all(lib_path());
    Section s = first_of_type(b, SHT_DYNAMIC);
    poke<uint64_t>(b, s.header + offsetof(Elf64_Shdr, sh_entsize), 0);
    expect_refused(b, "section '.dynamic' has entries of 0 bytes, not 16");
}

TEST(ElfReader, SymbolEntrySizeWrong) {
    for (uint64_t entsize : {uint64_t{0}, uint64_t{1}, uint64_t{23}, ~uint64_t{0}}) {
        Bytes b = read_all(lib_path());
        Section s = first_of_type(b, SHT_SYMTAB);
        poke<uint64_t>(b, s.header + offsetof(Elf64_Shdr, sh_entsize), entsize);
        Memfd m(b);
        std::string err;
        EXPECT_FALSE(graft::symbols_of_fd(m.fd, "crafted.so", &err));
        EXPECT_NE(err.find("section '.symtab' has entries of"), std::string::npos) << err;
    }
}

TEST(ElfReader, BuildIdNoteSizeWraps) {
    Bytes b = read_all(lib_path());
    bool done = false;
    for (auto &s : sections(b)) {
        if (s.sh.sh_type != SHT_NOTE) continue;
        for (size_t off = s.sh.sh_offset; off + sizeof(Elf64_Nhdr) <= s.sh.sh_offset + s.sh.sh_size;) {
            Elf64_Nhdr nh;
            std::memcpy(&nh, b.data() + off, sizeof nh);
            if (nh.n_type == NT_GNU_BUILD_ID) {
                poke<uint32_t>(b, off + offsetof(Elf64_Nhdr, n_descsz), 0xfffffffdu);
                done = true;
                break;
            }
            off += sizeof nh + ((nh.n_namesz + 3) & ~3u) + ((nh.n_descsz + 3) & ~3u);
        }
        if (done) break;
    }
    ASSERT_TRUE(done);
    expect_refused(b, "runs past the end of the section");
}

TEST(ElfReader, SectionPastTheEnd) {
    Bytes b = read_all(lib_path());
    Section s = first_of_type(b, SHT_STRTAB);
    poke<uint64_t>(b, s.header + offsetof(Elf64_Shdr, sh_size), uint64_t{1} << 40);
    expect_refused(b, "is truncated (a section ends past the end of the file)");
    b = read_all(lib_path());
    poke<uint64_t>(b, s.header + offsetof(Elf64_Shdr, sh_offset), ~uint64_t{0} - 2);
    expect_refused(b, "is truncated (a section ends past the end of the file)");
}

TEST(ElfReader, HeaderCountsAndSizes) {
    Bytes good = read_all(lib_path());
    Bytes b = good;
    poke<uint16_t>(b, offsetof(Elf64_Ehdr, e_shentsize), 1);
    expect_refused(b, "section headers are 1 bytes each, not 64");
    b = good;
    poke<uint16_t>(b, offsetof(Elf64_Ehdr, e_phentsize), 0);
    expect_refused(b, "program headers are 0 bytes each, not 56");
    b = good;
    poke<uint16_t>(b, offsetof(Elf64_Ehdr, e_shnum), 0xfff0);
    expect_refused(b, "is truncated (section headers past the end of the file)");
    b = good;
    poke<uint64_t>(b, offsetof(Elf64_Ehdr, e_phoff), ~uint64_t{0} - 8);
    expect_refused(b, "is truncated (program headers past the end of the file)");
    // Extended numbering: the count in section 0, as large as it goes.
    b = good;
    Elf64_Ehdr eh;
    std::memcpy(&eh, b.data(), sizeof eh);
    poke<uint16_t>(b, offsetof(Elf64_Ehdr, e_shnum), 0);
    poke<uint64_t>(b, eh.e_shoff + offsetof(Elf64_Shdr, sh_size), ~uint64_t{0});
    expect_refused(b, "is truncated (section headers past the end of the file)");
}

TEST(ElfReader, EveryTruncation) {
    Bytes good = read_all(lib_path());
    for (size_t len = 0; len < good.size(); len += 97) {
        Bytes b(good.begin(), good.begin() + static_cast<long>(len));
        Memfd m(b);
        std::string err;
        graft::SymbolFile sf;
        EXPECT_FALSE(graft::describe_fd(m.fd, "cut.so", &sf, &err)) << len;
        EXPECT_NE(err.find("'cut.so'"), std::string::npos) << err;
        EXPECT_FALSE(graft::check_loadable_fd(m.fd, "cut.so", "graft_patch_descriptor", &err)) << len;
    }
}

TEST(ElfReader, NotARegularFile) {
    std::string err;
    graft::SymbolFile sf;
    EXPECT_FALSE(graft::describe_file("/tmp", &sf, &err));
    EXPECT_NE(err.find("is not an ELF file"), std::string::npos) << err;
}

TEST(SymbolCache, BoundedAndForgets) {
    char tmpl[] = "/tmp/graft-elf-reader-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    const std::string dir = tmpl;
    std::vector<std::string> links;
    for (size_t i = 0; i < graft::kSymbolCacheMax + 20; i++) {
        links.push_back(dir + "/lib" + std::to_string(i) + ".so");
        ASSERT_EQ(symlink(lib_path().c_str(), links.back().c_str()), 0);
    }
    std::string err;
    for (auto &l : links) ASSERT_TRUE(graft::symbols_of(l, &err)) << err;
    EXPECT_LE(graft::symbol_cache_size(), graft::kSymbolCacheMax);
    // The most recent is still cached (the same table), and forgetting drops it.
    auto a = graft::symbols_of(links.back(), &err);
    auto b = graft::symbols_of(links.back(), &err);
    EXPECT_EQ(a.get(), b.get());
    size_t before = graft::symbol_cache_size();
    graft::symbol_cache_forget(links.back());
    EXPECT_EQ(graft::symbol_cache_size(), before - 1);
    auto c = graft::symbols_of(links.back(), &err);
    EXPECT_NE(a.get(), c.get());
    for (auto &l : links) {
        graft::symbol_cache_forget(l);
        unlink(l.c_str());
    }
    rmdir(dir.c_str());
}
