#include "agent/objects.hpp"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>

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

// Build-id from a note segment or section's bytes.
std::string build_id_from_notes(const uint8_t *p, size_t len) {
    size_t off = 0;
    while (off + sizeof(ElfW(Nhdr)) <= len) {
        auto *nh = reinterpret_cast<const ElfW(Nhdr) *>(p + off);
        size_t name_off = off + sizeof(ElfW(Nhdr));
        size_t desc_off = name_off + ((nh->n_namesz + 3) & ~3u);
        size_t next = desc_off + ((nh->n_descsz + 3) & ~3u);
        if (next > len) break;
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && std::memcmp(p + name_off, "GNU", 4) == 0)
            return hex(p + desc_off, nh->n_descsz);
        off = next;
    }
    return {};
}

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

}  // namespace
std::mutex g_sym_cache_mutex;  // protects g_sym_cache; taken by symbols_of() only
namespace {
// Never destroyed: the worker may still use it while the process exits.
auto &g_sym_cache = *new std::map<std::string, std::shared_ptr<const SymbolFile>>;

bool read_file(const std::string &path, SymbolFile *out, bool want_syms, std::string *err) {
    static std::once_flag once;
    std::call_once(once, [] { elf_version(EV_CURRENT); });
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = "cannot open '" + path + "': " + std::strerror(errno);
        return false;
    }
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    if (!e || elf_kind(e) != ELF_K_ELF) {
        *err = "'" + path + "' is not an ELF file";
        if (e) elf_end(e);
        close(fd);
        return false;
    }
    GElf_Ehdr eh;
    if (!gelf_getehdr(e, &eh) || eh.e_machine != EM_X86_64 || gelf_getclass(e) != ELFCLASS64) {
        *err = "'" + path + "' is not an x86-64 ELF object";
        elf_end(e);
        close(fd);
        return false;
    }
    out->path = path;
    size_t phnum = 0;
    elf_getphdrnum(e, &phnum);
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(e, static_cast<int>(i), &ph) && ph.p_type == PT_INTERP) out->has_interp = true;
    }
    size_t shstrndx = 0;
    elf_getshdrstrndx(e, &shstrndx);
    Elf_Scn *symtab = nullptr, *dynsym = nullptr, *dynamic = nullptr;
    for (Elf_Scn *scn = elf_nextscn(e, nullptr); scn; scn = elf_nextscn(e, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh)) continue;
        if (sh.sh_type == SHT_SYMTAB) symtab = scn;
        if (sh.sh_type == SHT_DYNSYM) dynsym = scn;
        if (sh.sh_type == SHT_DYNAMIC) dynamic = scn;
        const char *sname = elf_strptr(e, shstrndx, sh.sh_name);
        if (want_syms && sh.sh_type != SHT_NOBITS && sname &&
            std::strcmp(sname, "__patchable_function_entries") == 0) {
            Elf_Data *d = elf_getdata(scn, nullptr);
            for (size_t i = 0; d && d->d_buf && i < d->d_size / 8; i++)
                if (uint64_t v = static_cast<const uint64_t *>(d->d_buf)[i])
                    out->patchable_entries.push_back(v);
        }
        if (sh.sh_type == SHT_NOTE && out->build_id.empty()) {
            Elf_Data *d = elf_getdata(scn, nullptr);
            if (d && d->d_buf)
                out->build_id = build_id_from_notes(static_cast<const uint8_t *>(d->d_buf), d->d_size);
        }
    }
    if (dynamic) {
        GElf_Shdr sh;
        gelf_getshdr(dynamic, &sh);
        Elf_Data *d = elf_getdata(dynamic, nullptr);
        for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Dyn dyn;
            if (gelf_getdyn(d, static_cast<int>(i), &dyn) && dyn.d_tag == DT_SONAME) {
                const char *n = elf_strptr(e, sh.sh_link, dyn.d_un.d_val);
                if (n) out->soname = n;
            }
        }
    }
    if (want_syms) {
        Elf_Scn *scn = symtab ? symtab : dynsym;
        if (scn) {
            GElf_Shdr sh;
            gelf_getshdr(scn, &sh);
            Elf_Data *d = elf_getdata(scn, nullptr);
            size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
            for (size_t i = 0; d && i < n; i++) {
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
    elf_end(e);
    close(fd);
    return true;
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
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const auto &ph = info->dlpi_phdr[i];
        if (ph.p_type == PT_NOTE && o.build_id.empty())
            o.build_id =
                build_id_from_notes(reinterpret_cast<const uint8_t *>(o.base + ph.p_vaddr), ph.p_memsz);
        if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) {
            o.text_lo = o.base + ph.p_vaddr;
            o.text_hi = o.text_lo + ph.p_memsz;
        }
    }
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
}  // namespace

std::vector<LoadedObject> loaded_objects() {
    std::vector<LoadedObject> v;
    IterCtx c{&v, self_exe()};
    dl_iterate_phdr(iter_cb, &c);
    for (auto &o : v) name_object(o);
    return v;
}

bool loaded_object_from_file(uintptr_t base, const char *name, LoadedObject *out) {
    char real[4096];
    if (!name || !std::strchr(name, '/') || !realpath(name, real)) return false;
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    size_t phnum = 0;
    bool ok = e && elf_kind(e) == ELF_K_ELF && elf_getphdrnum(e, &phnum) == 0;
    LoadedObject o;
    o.base = base;
    o.path = real;
    for (size_t i = 0; ok && i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(e, static_cast<int>(i), &ph)) continue;
        // The notes and text as mapped: the file's program headers at the object's load bias.
        if (ph.p_type == PT_NOTE && o.build_id.empty())
            o.build_id =
                build_id_from_notes(reinterpret_cast<const uint8_t *>(base + ph.p_vaddr), ph.p_memsz);
        if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) {
            o.text_lo = base + ph.p_vaddr;
            o.text_hi = o.text_lo + ph.p_memsz;
        }
    }
    if (e) elf_end(e);
    close(fd);
    if (!ok || !o.text_hi) return false;
    name_object(o);
    *out = std::move(o);
    return true;
}

bool loaded_object_at(uintptr_t base, LoadedObject *out) {
    std::vector<LoadedObject> v;
    IterCtx c{&v, self_exe()};
    dl_iterate_phdr(iter_cb, &c);
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

std::shared_ptr<const SymbolFile> symbols_of(const std::string &path, std::string *err) {
    // Keyed by the file's identity too: a file rebuilt or replaced at the same path is read anew.
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
        *err = "cannot open '" + path + "': " + std::strerror(errno);
        return nullptr;
    }
    std::string key = path + "|" + std::to_string(st.st_ino) + "|" + std::to_string(st.st_mtim.tv_sec) + "." +
                      std::to_string(st.st_mtim.tv_nsec) + "|" + std::to_string(st.st_size);
    std::lock_guard<std::mutex> g(g_sym_cache_mutex);
    auto it = g_sym_cache.find(key);
    if (it != g_sym_cache.end()) return it->second;
    auto sf = std::make_shared<SymbolFile>();
    if (!read_file(path, sf.get(), true, err)) return nullptr;
    g_sym_cache[key] = sf;
    return sf;
}

bool check_loadable(const std::string &path, const char *symbol, std::string *err) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = "cannot open '" + path + "': " + std::strerror(errno);
        return false;
    }
    struct stat st {};
    fstat(fd, &st);
    const auto size = static_cast<uint64_t>(st.st_size);
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    bool ok = false;
    GElf_Ehdr eh;
    auto finish = [&](bool r) {
        if (e) elf_end(e);
        close(fd);
        return r;
    };
    if (!e || elf_kind(e) != ELF_K_ELF || !gelf_getehdr(e, &eh)) {
        *err = "'" + path + "' is not an ELF file";
        return finish(false);
    }
    if (eh.e_machine != EM_X86_64 || gelf_getclass(e) != ELFCLASS64 || eh.e_type != ET_DYN) {
        *err = "'" + path + "' is not an x86-64 shared object";
        return finish(false);
    }
    size_t phnum = 0;
    if (elf_getphdrnum(e, &phnum) != 0 || phnum == 0) {
        *err = "'" + path + "' has no program headers (truncated?)";
        return finish(false);
    }
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(e, static_cast<int>(i), &ph) || ph.p_offset + ph.p_filesz > size) {
            *err = "'" + path + "' is truncated (a segment ends past the end of the file)";
            return finish(false);
        }
    }
    if (eh.e_shoff + static_cast<uint64_t>(eh.e_shnum) * eh.e_shentsize > size) {
        *err = "'" + path + "' is truncated (section headers past the end of the file)";
        return finish(false);
    }
    for (Elf_Scn *scn = elf_nextscn(e, nullptr); scn && !ok; scn = elf_nextscn(e, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh)) continue;
        if (sh.sh_type != SHT_NOBITS && sh.sh_offset + sh.sh_size > size) {
            *err = "'" + path + "' is truncated (a section ends past the end of the file)";
            return finish(false);
        }
        if (sh.sh_type != SHT_DYNSYM) continue;
        Elf_Data *d = elf_getdata(scn, nullptr);
        size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
        for (size_t i = 0; d && i < n; i++) {
            GElf_Sym sym;
            if (!gelf_getsym(d, static_cast<int>(i), &sym) || sym.st_shndx == SHN_UNDEF) continue;
            const char *nm = elf_strptr(e, sh.sh_link, sym.st_name);
            if (nm && std::strcmp(nm, symbol) == 0) ok = true;
        }
    }
    if (!ok) *err = "'" + path + "' is not a graft patch (it exports no " + symbol + ")";
    return finish(ok);
}

bool describe_file(const std::string &path, SymbolFile *out, std::string *err) {
    return read_file(path, out, false, err);
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
