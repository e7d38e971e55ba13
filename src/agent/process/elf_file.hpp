// The checked ELF reader (elf_file.cpp) as the process layer uses it: an ELF file opened through
// a descriptor, its layout checked before libelf reads any of it. The public readers built on it
// (symbols_of, describe_fd, check_loadable...) are declared in symbols.hpp.
#pragma once
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

#include "agent/process/symbols.hpp"

namespace graft {

// [off, off + len) lies inside [0, limit), without the sum overflowing.
inline bool fits(uint64_t off, uint64_t len, uint64_t limit) {
    return off <= limit && len <= limit - off;
}

std::string quoted(const std::string &name);  // 'name', for errors

// An ELF file opened for reading through a descriptor, its layout checked against the file's size
// before libelf reads any of it: libelf reading through a descriptor (ELF_C_READ, pread) does not
// know the file's size, and would allocate whatever a header claims.
struct ElfFile {
    Elf *e = nullptr;
    uint64_t size = 0;
    size_t phnum = 0;
    size_t shstrndx = 0;
    std::string q;  // the file's name, quoted, for errors
    ElfFile() = default;
    ElfFile(const ElfFile &) = delete;
    ElfFile &operator=(const ElfFile &) = delete;
    ~ElfFile() {
        if (e) elf_end(e);
    }
    bool fail(std::string *err, const std::string &why) const {
        *err = q + " " + why;
        return false;
    }
    const char *section_name(const GElf_Shdr &sh) const {
        const char *n = elf_strptr(e, shstrndx, sh.sh_name);
        return n ? n : "?";
    }
    // A section's entries are `want` bytes each, and its data a whole number of them.
    bool check_entries(const GElf_Shdr &sh, const Elf_Data *d, size_t want, std::string *err) const {
        if (sh.sh_entsize != want)
            return fail(err, "is malformed: its section '" + std::string(section_name(sh)) +
                                 "' has entries of " + std::to_string(sh.sh_entsize) + " bytes, not " +
                                 std::to_string(want));
        if (!d || d->d_size % want != 0)
            return fail(err, "is malformed: its section '" + std::string(section_name(sh)) +
                                 "' is not a whole number of entries");
        return true;
    }
};

// `shared_object`: the file must be an x86-64 shared object with program headers (a patch), else
// any x86-64 ELF file.
bool open_elf(int fd, const std::string &name, bool shared_object, ElfFile *f, std::string *err);
// Its build-id, soname and interpreter; its symbols and patchable entries if want_syms, its
// patchable entries alone if want_entries.
bool read_elf(ElfFile &f, const std::string &name, SymbolFile *out, bool want_syms, std::string *err,
              bool want_entries = false);
// Calls visit(name, value, size, is_function) for each symbol read_elf would keep (defined
// functions, IFUNCs and data objects of .symtab, else .dynsym), with the same checks but without
// building a SymbolFile: for a caller that keeps a few facts of thousands of symbols (graft attach
// reading a C library, the loader hook checking ld.so). `name` lives as long as `f`.
bool visit_symbols(const ElfFile &f, const std::function<void(const char *, uint64_t, uint64_t, bool)> &visit,
                   std::string *err);
// open_elf + read_elf, out of memory reported as an error.
bool read_elf_fd(int fd, const std::string &name, SymbolFile *out, bool want_syms, std::string *err,
                 bool want_entries = false);

// `read(fd)` on `path` opened read-only (and closed after); false with *err naming the file if
// it cannot be opened. The path-taking readers are this around their descriptor-taking forms.
template <class Read>
bool with_file(const std::string &path, std::string *err, Read read) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = "cannot open '" + path + "': " + std::strerror(errno);
        return false;
    }
    const bool ok = read(fd);
    close(fd);
    return ok;
}

}  // namespace graft
