#include "agent/process/symbols.hpp"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <list>
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

// [off, off + len) lies inside [0, limit), without the sum overflowing.
bool fits(uint64_t off, uint64_t len, uint64_t limit) {
    return off <= limit && len <= limit - off;
}

uint64_t align_up(uint64_t v, uint64_t a) {
    return v > UINT64_MAX - (a - 1) ? UINT64_MAX : (v + a - 1) & ~(a - 1);
}

// Longer than any hash a linker writes (sha1: 20 bytes): anything longer is not a build-id.
constexpr uint64_t kMaxBuildIdBytes = 64;
// More than any object's notes; bounds what is copied from a mapped image.
constexpr uint64_t kMaxMappedNotes = 64 * 1024;

}  // namespace

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

std::string basename_of(const std::string &p) {
    auto k = p.rfind('/');
    return k == std::string::npos ? p : p.substr(k + 1);
}

std::string self_exe() {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return {};
    buf[n] = 0;
    return buf;
}

std::string quoted(const std::string &name) {
    return "'" + name + "'";
}

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
bool open_elf(int fd, const std::string &name, bool shared_object, ElfFile *f, std::string *err) {
    static std::once_flag once;
    std::call_once(once, [] { elf_version(EV_CURRENT); });
    f->q = quoted(name);
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

bool read_elf(ElfFile &f, const std::string &name, SymbolFile *out, bool want_syms, std::string *err) {
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
        if (want_syms && sh.sh_type != SHT_NOBITS && sname &&
            std::strcmp(sname, "__patchable_function_entries") == 0) {
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
        }
        if (sh.sh_type == SHT_NOTE) {
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
        }
    }
    if (dynamic) {
        GElf_Shdr sh;
        Elf_Data *d = elf_getdata(dynamic, nullptr);
        if (!gelf_getshdr(dynamic, &sh) || !f.check_entries(sh, d, sizeof(Elf64_Dyn), err)) return false;
        const size_t n = d->d_size / sizeof(Elf64_Dyn);
        for (size_t i = 0; i < n && i <= INT_MAX; i++) {
            GElf_Dyn dyn;
            if (!gelf_getdyn(d, static_cast<int>(i), &dyn)) break;
            if (dyn.d_tag == DT_NULL) break;
            if (dyn.d_tag == DT_SONAME) {
                const char *n = elf_strptr(e, sh.sh_link, dyn.d_un.d_val);
                if (n) out->soname = n;
            }
        }
    }
    if (want_syms) {
        Elf_Scn *scn = symtab ? symtab : dynsym;
        if (scn) {
            GElf_Shdr sh;
            Elf_Data *d = elf_getdata(scn, nullptr);
            if (!gelf_getshdr(scn, &sh) || !f.check_entries(sh, d, sizeof(Elf64_Sym), err)) return false;
            const size_t n = d->d_size / sizeof(Elf64_Sym);
            for (size_t i = 0; i < n && i <= INT_MAX; i++) {
                GElf_Sym s;
                if (!gelf_getsym(d, static_cast<int>(i), &s)) continue;
                int type = GELF_ST_TYPE(s.st_info);
                if (s.st_shndx == SHN_UNDEF || s.st_value == 0) continue;
                if (type != STT_FUNC && type != STT_OBJECT && type != STT_GNU_IFUNC) continue;
                const char *nm = elf_strptr(e, sh.sh_link, s.st_name);
                if (!nm || !*nm) continue;
                out->syms.push_back(Symbol{nm, s.st_value, s.st_size, type == STT_FUNC});
            }
            for (size_t i = 0; i < out->syms.size(); i++) {
                out->by_name.emplace(out->syms[i].name, i);
                if (out->syms[i].func) out->funcs_by_addr.emplace(out->syms[i].value, i);
            }
        }
    }
    std::sort(out->patchable_entries.begin(), out->patchable_entries.end());
    return true;
}

bool read_fd(int fd, const std::string &name, SymbolFile *out, bool want_syms, std::string *err) {
    try {
        ElfFile f;
        return open_elf(fd, name, false, &f, err) && read_elf(f, name, out, want_syms, err);
    } catch (const std::bad_alloc &) {
        *err = "out of memory while reading " + quoted(name);
        return false;
    }
}

// The build-id in the notes of an image mapped at `base`, given its program headers. A note is
// read only where a PT_LOAD maps file bytes, and copied with process_vm_readv, which fails with
// EFAULT where a load would fault (a page past the end of a truncated file raises SIGBUS).
// `layout_is_mapped`: the headers are the loader's own (else they come from the file on disk,
// which may no longer be what is mapped: then nothing is read without process_vm_readv).
std::string mapped_build_id(uintptr_t base, const std::vector<GElf_Phdr> &phdrs, bool layout_is_mapped) {
    for (const auto &note : phdrs) {
        if (note.p_type != PT_NOTE) continue;
        bool inside = false;
        for (const auto &load : phdrs)
            if (load.p_type == PT_LOAD && note.p_vaddr >= load.p_vaddr &&
                fits(note.p_vaddr - load.p_vaddr, note.p_memsz, load.p_filesz))
                inside = true;
        if (!inside) continue;
        const size_t n = static_cast<size_t>(std::min<uint64_t>(note.p_memsz, kMaxMappedNotes));
        std::vector<uint8_t> buf(n);
        const uintptr_t at = base + note.p_vaddr;
        iovec local{buf.data(), n}, remote{reinterpret_cast<void *>(at), n};
        ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
        if (got != static_cast<ssize_t>(n)) {
            if (!(got < 0 && (errno == ENOSYS || errno == EPERM)) || !layout_is_mapped) continue;
            std::memcpy(buf.data(), reinterpret_cast<const void *>(at), n);  // seccomp forbids the call
        }
        std::string id = build_id_from_notes(buf.data(), n, note.p_align == 8 ? 8 : 4);
        if (!id.empty()) return id;
    }
    return {};
}

struct IterCtx {
    std::vector<LoadedObject> *out;
    std::string exe;
};

int iter_cb(dl_phdr_info *info, size_t, void *arg) {
    auto *c = static_cast<IterCtx *>(arg);
    LoadedObject o;
    o.base = info->dlpi_addr;
    const char *nm = info->dlpi_name;
    o.is_main = c->out->empty() && (!nm || !*nm);
    if (o.is_main) {
        o.path = c->exe;
        o.name = "main";
    } else {
        char real[4096];
        if (nm && nm[0] != '/' && std::strchr(nm, '/') && realpath(nm, real)) {
            o.path = real;  // dlopen("./x.so"): the loader keeps the name as given
        } else {
            // vdso and similar have no file to read symbols from; keep them for naming only.
            o.path = nm ? nm : "";
        }
    }
    std::vector<GElf_Phdr> phdrs;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const auto &ph = info->dlpi_phdr[i];
        phdrs.push_back(GElf_Phdr{ph.p_type, ph.p_flags, ph.p_offset, ph.p_vaddr, ph.p_paddr, ph.p_filesz,
                                  ph.p_memsz, ph.p_align});
        if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) {
            o.text_lo = o.base + ph.p_vaddr;
            o.text_hi = o.text_lo + ph.p_memsz;
        }
    }
    o.build_id = mapped_build_id(o.base, phdrs, true);
    c->out->push_back(std::move(o));
    return 0;
}

}  // namespace

std::string object_display_name(const char *name) {
    return name ? name : "main";
}

namespace {
void name_object(LoadedObject &o) {
    if (o.is_main || o.path.empty() || o.path[0] != '/') {
        if (!o.is_main) o.name = basename_of(o.path);
        return;
    }
    std::string err;
    auto sf = symbols_of(o.path, &err);
    o.name = sf && !sf->soname.empty() ? sf->soname : basename_of(o.path);
}

// dl_iterate_phdr holds the loader's lock while it calls back: nothing may unwind through it.
int iter_cb_noexcept(dl_phdr_info *info, size_t size, void *arg) {
    try {
        return iter_cb(info, size, arg);
    } catch (...) {
        return 1;  // out of memory: stop with what is listed
    }
}
}  // namespace

std::vector<LoadedObject> loaded_objects() {
    std::vector<LoadedObject> v;
    IterCtx c{&v, self_exe()};
    dl_iterate_phdr(iter_cb_noexcept, &c);
    for (auto &o : v) name_object(o);
    return v;
}

bool loaded_object_from_file(uintptr_t base, const char *name, LoadedObject *out) {
    char real[4096];
    if (!name || !std::strchr(name, '/') || !realpath(name, real)) return false;
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    LoadedObject o;
    o.base = base;
    o.path = real;
    std::vector<GElf_Phdr> phdrs;
    {
        ElfFile f;
        std::string err;
        bool ok = open_elf(fd, real, false, &f, &err);
        for (size_t i = 0; ok && i < f.phnum; i++) {
            GElf_Phdr ph;
            if (!gelf_getphdr(f.e, static_cast<int>(i), &ph)) continue;
            phdrs.push_back(ph);
            if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) {
                o.text_lo = base + ph.p_vaddr;
                o.text_hi = o.text_lo + ph.p_memsz;
            }
        }
    }
    close(fd);
    if (!o.text_hi) return false;
    // The notes as mapped (what runs): the file's program headers at the object's load bias.
    o.build_id = mapped_build_id(base, phdrs, false);
    name_object(o);
    *out = std::move(o);
    return true;
}

bool loaded_object_at(uintptr_t base, LoadedObject *out) {
    std::vector<LoadedObject> v;
    IterCtx c{&v, self_exe()};
    dl_iterate_phdr(iter_cb_noexcept, &c);
    for (auto &o : v) {
        if (o.is_main || o.base != base) continue;
        name_object(o);
        *out = std::move(o);
        return true;
    }
    return false;
}

bool find_loaded_object(const char *name, LoadedObject *out) {
    for (auto &o : loaded_objects()) {
        if ((!name && o.is_main) || (name && !o.is_main && o.name == name)) {
            *out = o;
            return true;
        }
    }
    return false;
}

std::mutex g_sym_cache_mutex;

namespace {
// The symbol cache, most recently used first. Never destroyed: the worker may still use it while
// the process exits.
struct CacheEntry {
    std::string key;   // path and the file's identity
    std::string path;  // for symbol_cache_forget
    std::shared_ptr<const SymbolFile> syms;
};
auto &g_sym_lru = *new std::list<CacheEntry>;
auto &g_sym_index = *new std::map<std::string, std::list<CacheEntry>::iterator>;
}  // namespace

std::shared_ptr<const SymbolFile> symbols_of_fd(int fd, const std::string &name, std::string *err) {
    try {
        auto sf = std::make_shared<SymbolFile>();
        if (!read_fd(fd, name, sf.get(), true, err)) return nullptr;
        return sf;
    } catch (const std::bad_alloc &) {
        *err = "out of memory while reading " + quoted(name);
        return nullptr;
    }
}

std::shared_ptr<const SymbolFile> symbols_of(const std::string &path, std::string *err) {
    try {
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            *err = "cannot open '" + path + "': " + std::strerror(errno);
            return nullptr;
        }
        // Keyed by the file's identity too: a file rebuilt or replaced at the same path is read anew.
        struct stat st {};
        if (fstat(fd, &st) != 0) {
            *err = "cannot open '" + path + "': " + std::strerror(errno);
            close(fd);
            return nullptr;
        }
        std::string key = path + "|" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + "|" +
                          std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "|" +
                          std::to_string(st.st_size);
        std::lock_guard<std::mutex> g(g_sym_cache_mutex);
        auto it = g_sym_index.find(key);
        if (it != g_sym_index.end()) {
            g_sym_lru.splice(g_sym_lru.begin(), g_sym_lru, it->second);
            close(fd);
            return it->second->syms;
        }
        auto sf = symbols_of_fd(fd, path, err);
        close(fd);
        if (!sf) return nullptr;
        g_sym_lru.push_front(CacheEntry{key, path, sf});
        try {
            g_sym_index[key] = g_sym_lru.begin();
        } catch (...) {
            g_sym_lru.pop_front();
            throw;
        }
        while (g_sym_lru.size() > kSymbolCacheMax) {
            g_sym_index.erase(g_sym_lru.back().key);
            g_sym_lru.pop_back();
        }
        return sf;
    } catch (const std::bad_alloc &) {
        *err = "out of memory while reading '" + path + "'";
        return nullptr;
    }
}

void symbol_cache_forget(const std::string &path) noexcept {
    std::lock_guard<std::mutex> g(g_sym_cache_mutex);
    for (auto it = g_sym_lru.begin(); it != g_sym_lru.end();) {
        if (it->path == path) {
            g_sym_index.erase(it->key);
            it = g_sym_lru.erase(it);
        } else {
            ++it;
        }
    }
}

size_t symbol_cache_size() {
    std::lock_guard<std::mutex> g(g_sym_cache_mutex);
    return g_sym_lru.size();
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
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = "cannot open '" + path + "': " + std::strerror(errno);
        return false;
    }
    bool ok = check_loadable_fd(fd, path, symbol, err);
    close(fd);
    return ok;
}

bool describe_fd(int fd, const std::string &name, SymbolFile *out, std::string *err) {
    return read_fd(fd, name, out, false, err);
}

bool describe_file(const std::string &path, SymbolFile *out, std::string *err) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = "cannot open '" + path + "': " + std::strerror(errno);
        return false;
    }
    bool ok = describe_fd(fd, path, out, err);
    close(fd);
    return ok;
}

bool resolve_symbol(const LoadedObject &obj, const std::string &name, unsigned long sympos, bool func_only,
                    Resolved *out, std::string *err) {
    auto sf = symbols_of(obj.path, err);
    if (!sf) return false;
    if (!obj.build_id.empty() && !sf->build_id.empty() && sf->build_id != obj.build_id) {
        *err = "the file '" + obj.path + "' on disk is not the object that runs (build-id " + sf->build_id +
               ", running " + obj.build_id + ")";
        return false;
    }
    unsigned long count = 0;
    const Symbol *found = nullptr;
    auto range = sf->by_name.equal_range(name);
    std::vector<const Symbol *> matches;
    for (auto it = range.first; it != range.second; ++it) {
        const Symbol &s = sf->syms[it->second];
        if (func_only && !s.func) continue;
        matches.push_back(&s);
    }
    std::sort(matches.begin(), matches.end(), [&](const Symbol *a, const Symbol *b) { return a < b; });
    for (const Symbol *s : matches) {
        count++;
        if ((sympos == 0 && count == 1) || (sympos != 0 && count == sympos)) found = s;
    }
    if (count == 0) {
        *err = "symbol '" + name + "' not found in symbol table";
        return false;
    }
    if (sympos == 0 && count > 1) {
        *err = "unresolvable ambiguity for symbol '" + name + "' in object '" + obj.name + "'";
        return false;
    }
    if (sympos != 0 && !found) {
        *err = "symbol position " + std::to_string(sympos) + " for symbol '" + name + "' in object '" +
               obj.name + "' not found";
        return false;
    }
    out->addr = obj.base + found->value;
    out->size = found->size;
    return true;
}

}  // namespace graft
