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

#include "agent/process/elf_file.hpp"
#include "agent/process/user_symbols.hpp"

namespace graft {
namespace {

// More than any object's notes; bounds what is copied from a mapped image.
constexpr uint64_t kMaxMappedNotes = 64 * 1024;

std::string basename_of(const std::string &p) {
    auto k = p.rfind('/');
    return k == std::string::npos ? p : p.substr(k + 1);
}

std::string self_exe() {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return {};
    buf[n] = 0;
    // The program's file was replaced since it started (a rebuild in place): its name now names
    // another file, or none; /proc/self/exe still opens the one that runs.
    const std::string path = buf, gone = " (deleted)";
    if (path.size() > gone.size() && path.compare(path.size() - gone.size(), gone.size(), gone) == 0)
        return "/proc/self/exe";
    return path;
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
// Its name (the soname), and with `entries` its patchable entries, from one read of the file.
void name_object(LoadedObject &o, std::vector<uintptr_t> *entries = nullptr) {
    const bool file = !o.path.empty() && o.path[0] == '/';
    if (o.is_main || !file) {
        if (!o.is_main) o.name = basename_of(o.path);
        if (!o.is_main || !file || !entries) return;
    }
    // The soname only: its symbols are read when a patch names the object, not for every object.
    std::string err;
    SymbolFile sf;
    auto read = [&](bool want_entries) {
        sf = SymbolFile();
        return with_file(o.path, &err,
                         [&](int fd) { return read_elf_fd(fd, o.path, &sf, false, &err, want_entries); });
    };
    bool named = read(entries != nullptr);
    if (named && entries) *entries = std::move(sf.patchable_entries);
    if (!named && entries && !o.is_main) named = read(false);  // a malformed entry list: the name still
    if (!o.is_main) o.name = named && !sf.soname.empty() ? sf.soname : basename_of(o.path);
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

std::vector<LoadedObject> loaded_objects(std::vector<std::vector<uintptr_t>> *entries) {
    std::vector<LoadedObject> v;
    IterCtx c{&v, self_exe()};
    dl_iterate_phdr(iter_cb_noexcept, &c);
    if (entries) entries->assign(v.size(), {});
    for (size_t i = 0; i < v.size(); i++) name_object(v[i], entries ? &(*entries)[i] : nullptr);
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

bool loaded_object_at(uintptr_t base, LoadedObject *out, std::vector<uintptr_t> *entries) {
    std::vector<LoadedObject> v;
    IterCtx c{&v, self_exe()};
    dl_iterate_phdr(iter_cb_noexcept, &c);
    for (auto &o : v) {
        if (o.is_main || o.base != base) continue;
        name_object(o, entries);
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
        if (!read_elf_fd(fd, name, sf.get(), true, err)) return nullptr;
        return sf;
    } catch (const std::bad_alloc &) {
        *err = "out of memory while reading " + quoted(name);
        return nullptr;
    }
}

namespace {

// The separate debug file of a stripped object (symbols.hpp), or `sf` itself if none is found
// with the same build-id. Its .symtab replaces the object's .dynsym; everything else (entries,
// soname, build-id) stays the object's own.
std::shared_ptr<SymbolFile> with_debug_file_symbols(std::shared_ptr<SymbolFile> sf) {
    if (sf->build_id.size() < 4) return sf;
    const char *env = std::getenv("GRAFT_DEBUG_DIR");
    const std::string root = env && *env ? env : "/usr/lib/debug";
    std::vector<std::string> candidates = {root + "/.build-id/" + sf->build_id.substr(0, 2) + "/" +
                                           sf->build_id.substr(2) + ".debug"};
    if (!sf->debuglink.empty()) {
        std::string dir = sf->path.substr(0, sf->path.rfind('/') + 1);
        candidates.push_back(root + dir + sf->debuglink);
        candidates.push_back(dir + ".debug/" + sf->debuglink);
        candidates.push_back(dir + sf->debuglink);
    }
    for (const auto &c : candidates) {
        if (c == sf->path) continue;
        int fd = open(c.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        std::string why;
        auto dbg = std::make_shared<SymbolFile>();
        bool ok = read_elf_fd(fd, c, dbg.get(), true, &why);
        close(fd);
        // Only the debug file of this very build: same build-id, a real symbol table.
        if (!ok || dbg->build_id != sf->build_id || !dbg->full_symtab) continue;
        sf->syms = std::move(dbg->syms);
        sf->by_name = std::move(dbg->by_name);
        sf->funcs_by_addr = std::move(dbg->funcs_by_addr);
        sf->full_symtab = true;
        sf->symbols_from = c;
        return sf;
    }
    user_symbols_apply(sf.get());  // files named with `graft load --symbols`
    return sf;
}

}  // namespace

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
        auto raw = std::make_shared<SymbolFile>();
        bool ok = read_elf_fd(fd, path, raw.get(), true, err);
        close(fd);
        if (!ok) return nullptr;
        std::shared_ptr<const SymbolFile> sf = raw->full_symtab ? raw : with_debug_file_symbols(raw);
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

void symbol_cache_forget_stripped() noexcept {
    std::lock_guard<std::mutex> g(g_sym_cache_mutex);
    for (auto it = g_sym_lru.begin(); it != g_sym_lru.end();) {
        if (!it->syms->full_symtab) {
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
        if (!sf->symbols_refused.empty()) *err += " (symbol files not used: " + sf->symbols_refused + ")";
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
