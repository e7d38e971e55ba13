// The objects of the process (the kernel's vmlinux and modules): the main executable and every
// loaded shared object, named by soname, else by the file's basename; and their symbols.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace graft {

struct Symbol {
    std::string name;
    uintptr_t value;  // link-time address
    size_t size;
    bool func;
};

struct SymbolFile {
    std::string path;
    std::string soname;
    std::string build_id;           // hex
    bool has_interp = false;        // a program (has PT_INTERP), not a library
    bool text_relocations = false;  // DT_TEXTREL: ld.so makes its code writable to relocate it
    std::vector<Symbol> syms;       // .symtab if present, else .dynsym, in file order
    bool full_symtab = false;       // syms come from a .symtab (the file's, or its debug file's)
    std::string debuglink;          // the .gnu_debuglink file name, if any
    std::string symbols_from;       // the separate debug file syms were read from, if any
    std::string symbols_refused;    // named symbol files that are not this object's build, and why
    std::multimap<std::string, size_t> by_name;
    std::map<uintptr_t, size_t> funcs_by_addr;  // function symbols by value
    // Link-time addresses of the patchable entries the compiler emitted (the contents of
    // __patchable_function_entries: the start of each function's padding), sorted.
    std::vector<uintptr_t> patchable_entries;
};

struct LoadedObject {
    std::string name;  // "main" for the executable
    std::string path;
    uintptr_t base = 0;    // load bias
    std::string build_id;  // hex, read from the mapped PT_NOTE (what actually runs)
    bool is_main = false;
    uintptr_t text_lo = 0, text_hi = 0;  // executable PT_LOAD span
};

// Every object currently mapped (dl_iterate_phdr). Worker only (may allocate). With `entries`,
// each object's patchable entries too (entries[i] for the i-th object, empty if its file cannot
// be read), from the same read of its file.
std::vector<LoadedObject> loaded_objects(std::vector<std::vector<uintptr_t>> *entries = nullptr);
// nullptr-named = main executable. False if not loaded.
bool find_loaded_object(const char *name, LoadedObject *out);
// The shared object (not the executable) whose load bias is `base`; with `entries`, its
// patchable entries too, from the same read of its file.
bool loaded_object_at(uintptr_t base, LoadedObject *out, std::vector<uintptr_t> *entries = nullptr);
// The same from the file, for an object dl_iterate_phdr does not list to the agent (it lists
// only the caller's namespace: objects of dlmopen).
bool loaded_object_from_file(uintptr_t base, const char *name, LoadedObject *out);
// Every reader below treats the file as hostile: it is read through a descriptor with pread (a
// file truncated under a mapping would raise SIGBUS), each header, segment and section must lie
// inside the file, entry sizes must be the ones of x86-64 ELF, and a file that breaks a rule is
// refused with an error naming it and the rule; none of them faults or throws.

// The patchable entries of an object file alone (sorted link-time addresses), its symbols not
// read: the start-up reads every loaded object's, and most have none.
bool patchable_entries_of(const std::string &path, std::vector<uintptr_t> *out, std::string *err);
// Reads (and caches by path and the file's identity) the symbol table of an object file. A file
// with only .dynsym (stripped, as distributions ship) takes its .symtab from its separate debug
// file, found as debuggers find it and accepted only with the same build-id:
//   <debug dir>/.build-id/xx/yyyy.debug, then by .gnu_debuglink in <debug dir>/<file's dir>/,
//   <file's dir>/.debug/ and <file's dir>/
// <debug dir> is /usr/lib/debug (Debian's -dbg and -dbgsym packages), or GRAFT_DEBUG_DIR.
std::shared_ptr<const SymbolFile> symbols_of(const std::string &path, std::string *err);
// The same from a descriptor the caller owns (read with pread: its offset is not used), never
// cached: the caller holds the one file it checked. `name` names the file in errors.
std::shared_ptr<const SymbolFile> symbols_of_fd(int fd, const std::string &name, std::string *err);
// Reads the build-id and naming facts of a file without caching (graft build --target).
bool describe_file(const std::string &path, SymbolFile *out, std::string *err);
bool describe_fd(int fd, const std::string &name, SymbolFile *out, std::string *err);
// Checks, without running anything of it, that a file is a complete x86-64 shared object (every
// segment and section inside the file) that exports `symbol` in its dynamic symbol table.
bool check_loadable(const std::string &path, const char *symbol, std::string *err);
bool check_loadable_fd(int fd, const std::string &name, const char *symbol, std::string *err);

// The symbol cache of symbols_of() keeps at most this many files, dropping the least recently
// used: objects come and go for the life of a process.
constexpr size_t kSymbolCacheMax = 256;
// Drops every cached entry for `path` (an object unloaded that no patch is bound to; a patch
// image closed). Any thread; takes g_sym_cache_mutex, so the caller must not hold it (the core
// mutex may be held: core before symbol cache). Never allocates or throws.
void symbol_cache_forget(const std::string &path) noexcept;
size_t symbol_cache_size();  // for tests
// Drops every cached entry without a full symbol table (user_symbols_add: a stripped object may
// now find its symbols). Takes g_sym_cache_mutex.
void symbol_cache_forget_stripped() noexcept;

// The hex build-id in a run of ELF notes (a PT_NOTE segment or SHT_NOTE section's bytes) whose
// entries are padded to `align` (4, or 8 for 8-aligned note segments); empty if none. Any bytes:
// sizes are checked in 64-bit arithmetic and nothing outside [p, p + len) is read. *malformed
// (optional): a note's name or descriptor runs past the end (the notes after it are not read).
std::string build_id_from_notes(const uint8_t *p, size_t len, size_t align = 4, bool *malformed = nullptr);

struct Resolved {
    uintptr_t addr = 0;
    size_t size = 0;
};
// The kernel's klp_find_object_symbol rules: sympos 0 = the name must be unique; N = the Nth
// occurrence in symbol-table order. Error text follows the kernel's.
bool resolve_symbol(const LoadedObject &obj, const std::string &name, unsigned long sympos, bool func_only,
                    Resolved *out, std::string *err);

std::string object_display_name(const char *name);  // NULL -> "main"

// Protects the symbol cache of symbols_of(); only the log mutex is taken under it (lock_order.hpp).
extern std::mutex g_sym_cache_mutex;

}  // namespace graft
