// The ELF reader for untrusted files: every header, segment and section checked against the
// file's size before libelf reads it, through a descriptor with pread (a file truncated under a
// mapping would raise SIGBUS). Patch files, loaded objects and .debug files all come through here.
#include "agent/process/elf_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <mutex>
#include <new>

namespace graft {
namespace {

std::string hex(const uint8_t *p, size_t n) {
    static const char *d = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; i++) {
        s += d[p[i] >> 4];
        s += d[p[i] & 15];
    }
    return s;
}

uint64_t align_up(uint64_t v, uint64_t a) {
    return v > UINT64_MAX - (a - 1) ? UINT64_MAX : (v + a - 1) & ~(a - 1);
}

// Longer than any hash a linker writes (sha1: 20 bytes): anything longer is not a build-id.
constexpr uint64_t kMaxBuildIdBytes = 64;

bool pread_all(int fd, void *buf, size_t n, uint64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, static_cast<char *>(buf) + got, n - got, static_cast<off_t>(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        got += static_cast<size_t>(r);
    }
    return true;
}

}  // namespace

std::string quoted(const std::string &name) {
    return "'" + name + "'";
}

std::string build_id_from_notes(const uint8_t *p, size_t len, size_t align, bool *malformed) {
    // Every size is a 32-bit field of the file: sums are taken in 64 bits and each compared with
    // what is left, so that no value wraps around into a read outside the buffer.
    const uint64_t a = align == 8 ? 8 : 4;
    const uint64_t n = p ? len : 0;
    uint64_t off = 0;
    if (malformed) *malformed = false;
    while (n - off >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        std::memcpy(&nh, p + off, sizeof nh);  // the bytes may be unaligned
        const uint64_t name_off = off + sizeof nh;
        const uint64_t desc_off = align_up(name_off + nh.n_namesz, a);
        if (nh.n_namesz > n - name_off || desc_off > n || nh.n_descsz > n - desc_off) {
            if (malformed) *malformed = true;
            break;
        }
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && std::memcmp(p + name_off, "GNU", 4) == 0 &&
            nh.n_descsz <= kMaxBuildIdBytes)
            return hex(p + desc_off, nh.n_descsz);
        const uint64_t next = align_up(desc_off + nh.n_descsz, a);
        if (next >= n) break;
        off = next;
    }
    return {};
}

namespace {

// The header and the extent of the header tables, read with pread before libelf sees the file:
// *phnum is the program header count (extended numbering resolved).
bool check_elf_header(int fd, bool shared_object, ElfFile *f, uint64_t *phnum_out, std::string *err) {
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        *err = "cannot read " + f->q + ": " + std::strerror(errno);
        return false;
    }
    if (!S_ISREG(st.st_mode)) return f->fail(err, "is not an ELF file (not a regular file)");
    f->size = static_cast<uint64_t>(st.st_size);
    Elf64_Ehdr eh;
    if (f->size < sizeof eh || !pread_all(fd, &eh, sizeof eh, 0) ||
        std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        (eh.e_ident[EI_CLASS] != ELFCLASS32 && eh.e_ident[EI_CLASS] != ELFCLASS64) ||
        (eh.e_ident[EI_DATA] != ELFDATA2LSB && eh.e_ident[EI_DATA] != ELFDATA2MSB))
        return f->fail(err, "is not an ELF file");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64 || (shared_object && eh.e_type != ET_DYN))
        return f->fail(err, shared_object ? "is not an x86-64 shared object" : "is not an x86-64 ELF object");
    // The counts too large for the header are in section 0 (ELF's extended numbering).
    uint64_t shnum = eh.e_shnum, phnum = eh.e_phnum, shstrndx = eh.e_shstrndx;
    if (eh.e_shoff != 0 && (shnum == 0 || phnum == PN_XNUM || shstrndx == SHN_XINDEX)) {
        Elf64_Shdr s0;
        if (eh.e_shentsize != sizeof s0 || !fits(eh.e_shoff, sizeof s0, f->size) ||
            !pread_all(fd, &s0, sizeof s0, eh.e_shoff))
            return f->fail(err, "is truncated (section headers past the end of the file)");
        if (shnum == 0) shnum = s0.sh_size;
        if (phnum == PN_XNUM) phnum = s0.sh_info;
        if (shstrndx == SHN_XINDEX) shstrndx = s0.sh_link;
    }
    if (shared_object && phnum == 0) return f->fail(err, "has no program headers (truncated?)");
    if (phnum != 0) {
        if (eh.e_phentsize != sizeof(Elf64_Phdr))
            return f->fail(err, "is malformed: its program headers are " + std::to_string(eh.e_phentsize) +
                                    " bytes each, not " + std::to_string(sizeof(Elf64_Phdr)));
        if (phnum > f->size / sizeof(Elf64_Phdr) || !fits(eh.e_phoff, phnum * sizeof(Elf64_Phdr), f->size))
            return f->fail(err, "is truncated (program headers past the end of the file)");
    }
    if (eh.e_shoff != 0 && shnum != 0) {
        if (eh.e_shentsize != sizeof(Elf64_Shdr))
            return f->fail(err, "is malformed: its section headers are " + std::to_string(eh.e_shentsize) +
                                    " bytes each, not " + std::to_string(sizeof(Elf64_Shdr)));
        if (shnum > f->size / sizeof(Elf64_Shdr) || !fits(eh.e_shoff, shnum * sizeof(Elf64_Shdr), f->size))
            return f->fail(err, "is truncated (section headers past the end of the file)");
    }
    *phnum_out = phnum;
    return true;
}

// libelf's view of the file, each segment and section checked to lie inside it.
bool check_elf_layout(int fd, uint64_t phnum, ElfFile *f, std::string *err) {
    f->e = elf_begin(fd, ELF_C_READ, nullptr);
    if (!f->e || elf_kind(f->e) != ELF_K_ELF)
        return f->fail(err, std::string("is not a valid ELF file (") + elf_errmsg(-1) + ")");
    if (elf_getphdrnum(f->e, &f->phnum) != 0 || f->phnum != phnum)
        return f->fail(err, "is malformed: its program header count is unreadable");
    for (size_t i = 0; i < f->phnum; i++) {
        GElf_Phdr ph;
        if (i > INT_MAX || !gelf_getphdr(f->e, static_cast<int>(i), &ph))
            return f->fail(err, "is malformed: program header " + std::to_string(i) + " is unreadable");
        if (!fits(ph.p_offset, ph.p_filesz, f->size))
            return f->fail(err, "is truncated (a segment ends past the end of the file)");
    }
    if (elf_getshdrstrndx(f->e, &f->shstrndx) != 0) f->shstrndx = 0;  // no section names
    for (Elf_Scn *scn = elf_nextscn(f->e, nullptr); scn; scn = elf_nextscn(f->e, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            return f->fail(
                err, "is malformed: section header " + std::to_string(elf_ndxscn(scn)) + " is unreadable");
        if (sh.sh_type != SHT_NOBITS && !fits(sh.sh_offset, sh.sh_size, f->size))
            return f->fail(err, "is truncated (a section ends past the end of the file)");
    }
    return true;
}

}  // namespace

// `shared_object`: the file must be an x86-64 shared object with program headers (a patch), else
// any x86-64 ELF file.
bool open_elf(int fd, const std::string &name, bool shared_object, ElfFile *f, std::string *err) {
    static std::once_flag once;
    std::call_once(once, [] { elf_version(EV_CURRENT); });
    f->q = quoted(name);
    uint64_t phnum = 0;
    return check_elf_header(fd, shared_object, f, &phnum, err) && check_elf_layout(fd, phnum, f, err);
}

namespace {

// The addresses in a __patchable_function_entries section (its entries' padding starts).
bool read_patchable_entries(const ElfFile &f, Elf_Scn *scn, SymbolFile *out, std::string *err) {
    Elf_Data *d = elf_getdata(scn, nullptr);
    if (d && d->d_size % sizeof(uint64_t) != 0)
        return f.fail(err,
                      "is malformed: its section '__patchable_function_entries' is not a whole "
                      "number of 8-byte addresses");
    const auto *bytes = d ? static_cast<const uint8_t *>(d->d_buf) : nullptr;
    for (size_t i = 0; bytes && i < d->d_size / sizeof(uint64_t); i++) {
        uint64_t v;
        std::memcpy(&v, bytes + i * sizeof v, sizeof v);
        if (v) out->patchable_entries.push_back(v);
    }
    return true;
}

// The first build-id of a note section.
bool read_note_section(const ElfFile &f, Elf_Scn *scn, const GElf_Shdr &sh, SymbolFile *out,
                       std::string *err) {
    Elf_Data *d = elf_getdata(scn, nullptr);
    bool malformed = false;
    std::string id;
    if (d && d->d_buf)
        id = build_id_from_notes(static_cast<const uint8_t *>(d->d_buf), d->d_size,
                                 sh.sh_addralign == 8 ? 8 : 4, &malformed);
    if (malformed)
        return f.fail(err, "is malformed: a note in its section '" + std::string(f.section_name(sh)) +
                               "' runs past the end of the section");
    if (out->build_id.empty()) out->build_id = id;
    return true;
}

// The facts of .dynamic graft uses: the soname, and whether ld.so must write the code to relocate
// it (DT_TEXTREL, or DF_TEXTREL in DT_FLAGS).
bool read_dynamic(const ElfFile &f, Elf_Scn *dynamic, SymbolFile *out, std::string *err) {
    GElf_Shdr sh;
    Elf_Data *d = elf_getdata(dynamic, nullptr);
    if (!gelf_getshdr(dynamic, &sh) || !f.check_entries(sh, d, sizeof(Elf64_Dyn), err)) return false;
    const size_t n = d->d_size / sizeof(Elf64_Dyn);
    for (size_t i = 0; i < n && i <= INT_MAX; i++) {
        GElf_Dyn dyn;
        if (!gelf_getdyn(d, static_cast<int>(i), &dyn)) break;
        if (dyn.d_tag == DT_NULL) break;
        if (dyn.d_tag == DT_TEXTREL || (dyn.d_tag == DT_FLAGS && (dyn.d_un.d_val & DF_TEXTREL)))
            out->text_relocations = true;
        if (dyn.d_tag == DT_SONAME) {
            const char *n = elf_strptr(f.e, sh.sh_link, dyn.d_un.d_val);
            if (n) out->soname = n;
        }
    }
    return true;
}

using SymbolVisit = std::function<void(const char *, uint64_t, uint64_t, bool)>;

// visit(name, value, size, is_function) for each defined function, object and ifunc of table
// `scn`: the one reading of a symbol table, for read_symbols() and visit_symbols().
bool each_symbol(const ElfFile &f, Elf_Scn *scn, const SymbolVisit &visit, std::string *err) {
    GElf_Shdr sh;
    Elf_Data *d = elf_getdata(scn, nullptr);
    if (!gelf_getshdr(scn, &sh) || !f.check_entries(sh, d, sizeof(Elf64_Sym), err)) return false;
    const size_t n = d->d_size / sizeof(Elf64_Sym);
    for (size_t i = 0; i < n && i <= INT_MAX; i++) {
        GElf_Sym s;
        if (!gelf_getsym(d, static_cast<int>(i), &s) || s.st_shndx == SHN_UNDEF || s.st_value == 0) continue;
        const int type = GELF_ST_TYPE(s.st_info);
        if (type != STT_FUNC && type != STT_OBJECT && type != STT_GNU_IFUNC) continue;
        const char *nm = elf_strptr(f.e, sh.sh_link, s.st_name);
        if (nm && *nm) visit(nm, s.st_value, s.st_size, type == STT_FUNC);
    }
    return true;
}

// Functions, objects and ifuncs of a symbol table, indexed by name and (functions) by address.
bool read_symbols(const ElfFile &f, Elf_Scn *scn, SymbolFile *out, std::string *err) {
    auto keep = [&](const char *nm, uint64_t value, uint64_t size, bool func) {
        out->syms.push_back(Symbol{nm, value, size, func});
    };
    if (!each_symbol(f, scn, keep, err)) return false;
    for (size_t i = 0; i < out->syms.size(); i++) {
        out->by_name.emplace(out->syms[i].name, i);
        if (out->syms[i].func) out->funcs_by_addr.emplace(out->syms[i].value, i);
    }
    return true;
}

}  // namespace

bool read_elf(ElfFile &f, const std::string &name, SymbolFile *out, bool want_syms, std::string *err,
              bool want_entries) {
    Elf *e = f.e;
    out->path = name;
    for (size_t i = 0; i < f.phnum; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(e, static_cast<int>(i), &ph) && ph.p_type == PT_INTERP) out->has_interp = true;
    }
    Elf_Scn *symtab = nullptr, *dynsym = nullptr, *dynamic = nullptr;
    for (Elf_Scn *scn = elf_nextscn(e, nullptr); scn; scn = elf_nextscn(e, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh)) continue;
        if (sh.sh_type == SHT_SYMTAB && !symtab) symtab = scn;
        if (sh.sh_type == SHT_DYNSYM && !dynsym) dynsym = scn;
        if (sh.sh_type == SHT_DYNAMIC && !dynamic) dynamic = scn;
        const char *sname = elf_strptr(e, f.shstrndx, sh.sh_name);
        if ((want_syms || want_entries) && sh.sh_type != SHT_NOBITS && sname &&
            std::strcmp(sname, "__patchable_function_entries") == 0 &&
            !read_patchable_entries(f, scn, out, err))
            return false;
        if (sh.sh_type == SHT_NOTE && !read_note_section(f, scn, sh, out, err)) return false;
        if (sh.sh_type == SHT_PROGBITS && sname && std::strcmp(sname, ".gnu_debuglink") == 0) {
            // A file name, NUL-terminated, then padding and a CRC: only the name is used (the
            // debug file is accepted by build-id, not by CRC).
            Elf_Data *d = elf_getdata(scn, nullptr);
            if (d && d->d_buf && d->d_size > 1) {
                const char *name = static_cast<const char *>(d->d_buf);
                size_t len = strnlen(name, d->d_size);
                if (len < d->d_size && len < 256 && !std::memchr(name, '/', len))
                    out->debuglink.assign(name, len);
            }
        }
    }
    if (dynamic && !read_dynamic(f, dynamic, out, err)) return false;
    if (want_syms) {
        Elf_Scn *scn = symtab ? symtab : dynsym;
        if (scn && !read_symbols(f, scn, out, err)) return false;
        out->full_symtab = symtab != nullptr;
    }
    std::sort(out->patchable_entries.begin(), out->patchable_entries.end());
    return true;
}

bool visit_symbols(const ElfFile &f, const SymbolVisit &visit, std::string *err) {
    Elf_Scn *symtab = nullptr, *dynsym = nullptr;
    for (Elf_Scn *scn = elf_nextscn(f.e, nullptr); scn; scn = elf_nextscn(f.e, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh)) continue;
        if (sh.sh_type == SHT_SYMTAB && !symtab) symtab = scn;
        if (sh.sh_type == SHT_DYNSYM && !dynsym) dynsym = scn;
    }
    Elf_Scn *scn = symtab ? symtab : dynsym;
    return !scn || each_symbol(f, scn, visit, err);
}

bool read_elf_fd(int fd, const std::string &name, SymbolFile *out, bool want_syms, std::string *err,
                 bool want_entries) {
    try {
        ElfFile f;
        return open_elf(fd, name, false, &f, err) && read_elf(f, name, out, want_syms, err, want_entries);
    } catch (const std::bad_alloc &) {
        *err = "out of memory while reading " + quoted(name);
        return false;
    }
}

bool check_loadable_fd(int fd, const std::string &name, const char *symbol, std::string *err) {
    try {
        ElfFile f;
        SymbolFile layout;  // the notes and .dynamic: a malformed one is refused here too
        if (!open_elf(fd, name, true, &f, err) || !read_elf(f, name, &layout, false, err)) return false;
        for (Elf_Scn *scn = elf_nextscn(f.e, nullptr); scn; scn = elf_nextscn(f.e, scn)) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM) continue;
            Elf_Data *d = elf_getdata(scn, nullptr);
            if (!f.check_entries(sh, d, sizeof(Elf64_Sym), err)) return false;
            const size_t n = d->d_size / sizeof(Elf64_Sym);
            for (size_t i = 0; i < n && i <= INT_MAX; i++) {
                GElf_Sym sym;
                if (!gelf_getsym(d, static_cast<int>(i), &sym) || sym.st_shndx == SHN_UNDEF) continue;
                const char *nm = elf_strptr(f.e, sh.sh_link, sym.st_name);
                if (nm && std::strcmp(nm, symbol) == 0) return true;
            }
        }
        return f.fail(err, std::string("is not a graft patch (it exports no ") + symbol + ")");
    } catch (const std::bad_alloc &) {
        *err = "out of memory while reading " + quoted(name);
        return false;
    }
}

bool check_loadable(const std::string &path, const char *symbol, std::string *err) {
    return with_file(path, err, [&](int fd) { return check_loadable_fd(fd, path, symbol, err); });
}

bool patchable_entries_of(const std::string &path, std::vector<uintptr_t> *out, std::string *err) {
    return with_file(path, err, [&](int fd) {
        SymbolFile sf;
        if (!read_elf_fd(fd, path, &sf, false, err, true)) return false;
        *out = std::move(sf.patchable_entries);
        return true;
    });
}

bool describe_fd(int fd, const std::string &name, SymbolFile *out, std::string *err) {
    return read_elf_fd(fd, name, out, false, err);
}

bool describe_file(const std::string &path, SymbolFile *out, std::string *err) {
    return with_file(path, err, [&](int fd) { return describe_fd(fd, path, out, err); });
}

}  // namespace graft
