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
    std::string build_id;      // hex
    bool has_interp = false;   // a program (has PT_INTERP), not a library
    std::vector<Symbol> syms;  // .symtab if present, else .dynsym, in file order
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

// Every object currently mapped (dl_iterate_phdr). Worker only (may allocate).
std::vector<LoadedObject> loaded_objects();
// nullptr-named = main executable. False if not loaded.
bool find_loaded_object(const char *name, LoadedObject *out);
// The shared object (not the executable) whose load bias is `base`.
bool loaded_object_at(uintptr_t base, LoadedObject *out);
// The same from the file, for an object dl_iterate_phdr does not list to the agent (it lists
// only the caller's namespace: objects of dlmopen).
bool loaded_object_from_file(uintptr_t base, const char *name, LoadedObject *out);
// Reads (and caches by path and build-id) the symbol table of an object file.
std::shared_ptr<const SymbolFile> symbols_of(const std::string &path, std::string *err);
// Reads the build-id and naming facts of a file without caching (graft build --target).
bool describe_file(const std::string &path, SymbolFile *out, std::string *err);
// Checks, without running anything of it, that a file is a complete x86-64 shared object (every
// segment and section inside the file) that exports `symbol` in its dynamic symbol table.
bool check_loadable(const std::string &path, const char *symbol, std::string *err);

struct Resolved {
    uintptr_t addr = 0;
    size_t size = 0;
};
// The kernel's klp_find_object_symbol rules: sympos 0 = the name must be unique; N = the Nth
// occurrence in symbol-table order. Error text follows the kernel's.
bool resolve_symbol(const LoadedObject &obj, const std::string &name, unsigned long sympos, bool func_only,
                    Resolved *out, std::string *err);

std::string object_display_name(const char *name);  // NULL -> "main"

// Protects the symbol cache of symbols_of(); a leaf lock except for the log (fork.cpp).
extern std::mutex g_sym_cache_mutex;

}  // namespace graft
