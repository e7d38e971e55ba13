#include "diff/target_symbols.hpp"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>

#include "agent/process/elf_file.hpp"
#include "agent/process/symbols.hpp"

namespace graft::diff {

bool TargetSymbols::has(const std::string &name) const {
    for (const auto &s : syms)
        if (s.name == name) return true;
    return false;
}

bool TargetSymbols::sympos(const std::string &name, const std::string &unit, bool func_only,
                           unsigned long *pos, std::string *why) const {
    // The agent counts exactly these (elf_file.cpp, read_symbols; resolve_symbol's func_only).
    unsigned long count = 0, mine = 0, mine_count = 0;
    for (const auto &s : syms) {
        if (s.name != name || (func_only && !s.func)) continue;
        count++;
        if (!s.global && s.file == unit) {
            mine = count;
            mine_count++;
        }
    }
    if (count == 0) {
        *why = "'" + name + "' is not in the symbol table of '" + path + "'";
        return false;
    }
    if (count == 1) {
        *pos = 0;
        return true;
    }
    if (mine_count != 1) {
        *why = "'" + name + "' is defined " + std::to_string(count) + " times in '" + path +
               "' and the symbol table does not tell which one is " + unit + "'s";
        return false;
    }
    *pos = mine;
    return true;
}

bool read_target_symbols(const std::string &path, TargetSymbols *out, std::string *why) {
    *out = {};
    out->path = path;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = "cannot open target '" + path + "': " + std::strerror(errno);
        return false;
    }
    struct Closer {
        int fd;
        ~Closer() { close(fd); }
    } closer{fd};
    ElfFile f;  // the project's checked reader
    SymbolFile sf;
    if (!open_elf(fd, path, false, &f, why) || !read_elf(f, path, &sf, false, why)) {
        *why = "target " + *why;
        return false;
    }
    out->build_id = sf.build_id;
    out->soname = sf.soname;
    out->program = sf.has_interp;
    size_t nsec = 0;
    if (elf_getshdrnum(f.e, &nsec) != 0) {
        *why = "target '" + path + "' has no readable section table";
        return false;
    }
    for (size_t i = 1; i < nsec; i++) {
        Elf_Scn *scn = elf_getscn(f.e, i);
        GElf_Shdr sh;
        if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB) continue;
        Elf_Data *d = elf_getdata(scn, nullptr);
        if (!f.check_entries(sh, d, sizeof(Elf64_Sym), why)) return false;
        std::string file;
        const size_t n = d->d_size / sizeof(Elf64_Sym);
        for (size_t k = 0; k < n && k <= INT32_MAX; k++) {
            GElf_Sym s;
            if (!gelf_getsym(d, static_cast<int>(k), &s)) continue;
            const int type = GELF_ST_TYPE(s.st_info);
            const char *nm = elf_strptr(f.e, sh.sh_link, s.st_name);
            if (type == STT_FILE) {
                file = nm ? nm : "";
                if (file.rfind('/') != std::string::npos) file = file.substr(file.rfind('/') + 1);
                continue;
            }
            if (s.st_shndx == SHN_UNDEF || s.st_value == 0 || !nm || !*nm) continue;
            if (type != STT_FUNC && type != STT_OBJECT && type != STT_GNU_IFUNC) continue;
            const bool global = GELF_ST_BIND(s.st_info) != STB_LOCAL;
            out->syms.push_back({nm, global ? "" : file, type == STT_FUNC, global});
        }
        return true;
    }
    *why = "target '" + path +
           "' has no symbol table (.symtab): graft diff needs the unstripped build to find the "
           "functions and data the fix refers to";
    return false;
}

}  // namespace graft::diff
