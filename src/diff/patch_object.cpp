#include "diff/patch_object.hpp"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <filesystem>

#include "agent/process/elf_file.hpp"
#include "diff/source_tree.hpp"

namespace graft::diff {
namespace {

struct Sym {
    std::string name;
    int type = 0, bind = 0;
    uint16_t shndx = 0;
    uint64_t value = 0, size = 0;
    uint64_t file_off = 0;  // of its Elf64_Sym in the file
};

struct Rela {
    uint64_t offset = 0;
    uint32_t type = 0, sym = 0;
    int64_t addend = 0;
    uint64_t file_off = 0;  // of its Elf64_Rela in the file
};

struct Sec {
    std::string name;
    uint32_t type = 0;
    uint64_t flags = 0;
    std::vector<Rela> relas;  // the relocations that apply to it
};

struct Obj {
    std::vector<Sec> secs;
    std::vector<Sym> syms;
};

bool read_obj(int fd, const std::string &path, Obj *o, std::string *why) {
    ElfFile f;
    if (!open_elf(fd, path, false, &f, why)) return false;
    GElf_Ehdr eh;
    if (!gelf_getehdr(f.e, &eh) || eh.e_type != ET_REL || eh.e_machine != EM_X86_64)
        return f.fail(why, "is not an x86-64 relocatable object");
    size_t nsec = 0;
    if (elf_getshdrnum(f.e, &nsec) != 0 || nsec > 1000000)
        return f.fail(why, "has no readable section table");
    o->secs.resize(nsec);
    for (size_t i = 1; i < nsec; i++) {
        GElf_Shdr sh;
        Elf_Scn *scn = elf_getscn(f.e, i);
        if (!scn || !gelf_getshdr(scn, &sh)) return f.fail(why, "has an unreadable section header");
        o->secs[i] = {f.section_name(sh), sh.sh_type, sh.sh_flags, {}};
    }
    for (size_t i = 1; i < nsec; i++) {
        GElf_Shdr sh;
        Elf_Scn *scn = elf_getscn(f.e, i);
        if (!gelf_getshdr(scn, &sh)) continue;
        if (sh.sh_type == SHT_SYMTAB) {
            Elf_Data *d = elf_getdata(scn, nullptr);
            if (!f.check_entries(sh, d, sizeof(Elf64_Sym), why)) return false;
            for (size_t k = 0; k < d->d_size / sizeof(Elf64_Sym) && k <= INT32_MAX; k++) {
                GElf_Sym s;
                if (!gelf_getsym(d, static_cast<int>(k), &s)) return f.fail(why, "has an unreadable symbol");
                const char *nm = elf_strptr(f.e, sh.sh_link, s.st_name);
                o->syms.push_back({nm ? nm : "", GELF_ST_TYPE(s.st_info), GELF_ST_BIND(s.st_info), s.st_shndx,
                                   s.st_value, s.st_size, sh.sh_offset + k * sizeof(Elf64_Sym)});
            }
        }
    }
    for (size_t i = 1; i < nsec; i++) {
        GElf_Shdr sh;
        Elf_Scn *scn = elf_getscn(f.e, i);
        if (!gelf_getshdr(scn, &sh)) continue;
        if (sh.sh_type == SHT_REL) return f.fail(why, "has REL relocations (x86-64 objects use RELA)");
        if (sh.sh_type != SHT_RELA || sh.sh_info == 0 || sh.sh_info >= nsec) continue;
        Elf_Data *d = elf_getdata(scn, nullptr);
        if (!f.check_entries(sh, d, sizeof(Elf64_Rela), why)) return false;
        for (size_t k = 0; k < d->d_size / sizeof(Elf64_Rela) && k <= INT32_MAX; k++) {
            GElf_Rela r;
            if (!gelf_getrela(d, static_cast<int>(k), &r)) return f.fail(why, "has an unreadable relocation");
            if (GELF_R_SYM(r.r_info) >= o->syms.size()) return f.fail(why, "has a relocation to no symbol");
            o->secs[sh.sh_info].relas.push_back({r.r_offset, static_cast<uint32_t>(GELF_R_TYPE(r.r_info)),
                                                 static_cast<uint32_t>(GELF_R_SYM(r.r_info)), r.r_addend,
                                                 sh.sh_offset + k * sizeof(Elf64_Rela)});
        }
    }
    return true;
}

// The function or data object of section `sec` that holds offset `off` (the last one starting at
// or before it), or -1.
long piece_at(const Obj &o, uint16_t sec, uint64_t off) {
    long best = -1;
    for (size_t i = 0; i < o.syms.size(); i++) {
        const Sym &s = o.syms[i];
        if (s.shndx != sec || (s.type != STT_FUNC && s.type != STT_OBJECT) || s.value > off) continue;
        if (best < 0 || s.value > o.syms[best].value) best = static_cast<long>(i);
    }
    return best;
}

bool put_bytes(int fd, uint64_t off, const void *p, size_t n) {
    return pwrite(fd, p, n, static_cast<off_t>(off)) == static_cast<ssize_t>(n);
}

}  // namespace

bool make_patch_object(const std::string &in, const std::string &out, const PatchObjectPlan &plan,
                       const TargetSymbols &target, PatchObject *result, std::string *why) {
    *result = {};
    std::error_code ec;
    std::filesystem::copy_file(in, out, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) {
        *why = "cannot write '" + out + "': " + ec.message();
        return false;
    }
    int fd = open(out.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        *why = "cannot open '" + out + "': " + std::strerror(errno);
        return false;
    }
    struct Closer {
        int fd;
        ~Closer() { close(fd); }
    } closer{fd};
    Obj o;
    if (!read_obj(fd, in, &o, why)) return false;

    std::vector<bool> kept(o.secs.size(), false);
    std::deque<size_t> work;
    auto keep_sec = [&](size_t s) {
        if (s == 0 || s >= o.secs.size() || kept[s]) return;
        kept[s] = true;
        work.push_back(s);
    };
    // Sections that start-up code reaches: constructors are listed in .init_array (and the older
    // .ctors), and gcc puts them and main in .text.startup.
    std::set<size_t> startup;
    for (const Sec &sec : o.secs) {
        if (sec.name.rfind(".init_array", 0) != 0 && sec.name.rfind(".preinit_array", 0) != 0 &&
            sec.name.rfind(".ctors", 0) != 0)
            continue;
        for (const Rela &r : sec.relas) startup.insert(o.syms[r.sym].shndx);
    }
    for (const Sym &s : o.syms) {
        if (s.type != STT_FUNC || s.shndx == SHN_UNDEF || s.shndx >= o.secs.size() ||
            !plan.keep.count(s.name))
            continue;
        if (o.secs[s.shndx].name.rfind(".text.startup", 0) == 0 || s.name == "main" ||
            startup.count(s.shndx)) {
            *why =
                "function " + s.name +
                " runs only at start-up (a constructor, or main): the running process will not call it "
                "again, so a patch cannot bring the fix to it (move the fixed code into a function it calls)";
            return false;
        }
        keep_sec(s.shndx);
    }
    std::vector<uint64_t> neutralise;  // file offsets of Elf64_Rela entries
    std::set<std::string> holders;
    auto mapped = [&](const std::string &n) {
        auto it = plan.target_name.find(n);
        return it == plan.target_name.end() ? n : it->second;
    };
    while (!work.empty()) {
        const size_t s = work.front();
        work.pop_front();
        const Sec &sec = o.secs[s];
        const bool code = sec.flags & SHF_EXECINSTR;
        for (const Rela &r : sec.relas) {
            const Sym &sym = o.syms[r.sym];
            const long holder = piece_at(o, static_cast<uint16_t>(s), r.offset);
            const std::string where = holder >= 0 ? o.syms[holder].name : sec.name;
            auto refer = [&](const std::string &name, bool func, bool global, int64_t addend) {
                unsigned long pos = 0;
                if (!target.sympos(name, global ? "" : plan.unit, func, &pos, why)) return false;
                if (holder < 0) {
                    *why = "the reference to '" + name + "' in section " + sec.name +
                           " is in no function or data object the patch could name";
                    return false;
                }
                result->refs.push_back(
                    {o.syms[holder].name, r.offset - o.syms[holder].value, name, pos, addend, code});
                holders.insert(o.syms[holder].name);
                neutralise.push_back(r.file_off);
                return true;
            };
            if (sym.type == STT_TLS || (sym.shndx < o.secs.size() && (o.secs[sym.shndx].flags & SHF_TLS))) {
                *why = where + " uses thread-local data '" + sym.name +
                       "': a generated patch cannot reach the target's thread-local storage (keep that code "
                       "out of the fix, or write that part of the patch by hand)";
                return false;
            }
            if (sym.shndx == SHN_COMMON) {
                *why = where + " uses common symbol '" + sym.name + "' (build with -fno-common)";
                return false;
            }
            if (sym.shndx == SHN_ABS || r.sym == 0) continue;
            if (sym.shndx == SHN_UNDEF) {
                // Defined elsewhere in the target (another unit): the target's; else a library's,
                // which the dynamic linker finds as for any shared object.
                if (r.type == R_X86_64_64 && target.has(sym.name)) {
                    if (!refer(sym.name, sym.type == STT_FUNC, true, r.addend)) return false;
                }
                continue;
            }
            if (sym.shndx >= o.secs.size()) continue;
            const Sec &t = o.secs[sym.shndx];
            // What the field points at: a symbol's own address, or a place in a section.
            const uint64_t at = sym.type == STT_SECTION ? static_cast<uint64_t>(r.addend) : sym.value;
            const long piece = (sym.type == STT_FUNC || sym.type == STT_OBJECT) ? static_cast<long>(r.sym)
                                                                                : piece_at(o, sym.shndx, at);
            if (kept[sym.shndx]) continue;
            const bool absolute = r.type == R_X86_64_64;
            if (t.flags & SHF_EXECINSTR) {
                const Sym *p = piece >= 0 ? &o.syms[piece] : nullptr;
                if (p && absolute && !plan.keep.count(p->name) && target.has(mapped(p->name))) {
                    const int64_t add =
                        sym.type == STT_SECTION ? r.addend - static_cast<int64_t>(p->value) : r.addend;
                    if (!refer(mapped(p->name), true, p->bind != STB_LOCAL, add)) return false;
                    continue;
                }
                if (p && !plan.keep.count(p->name)) result->copied.push_back(p->name);
                keep_sec(sym.shndx);
                continue;
            }
            if (t.flags & SHF_WRITE) {
                const Sym *p = piece >= 0 ? &o.syms[piece] : nullptr;
                if (p && plan.new_data.count(p->name)) {
                    keep_sec(sym.shndx);
                    continue;
                }
                if (p && absolute && target.has(mapped(p->name))) {
                    const int64_t add =
                        sym.type == STT_SECTION ? r.addend - static_cast<int64_t>(p->value) : r.addend;
                    if (!refer(mapped(p->name), false, p->bind != STB_LOCAL, add)) return false;
                    continue;
                }
                if (t.name.rfind(".data.rel.ro", 0) == 0) {  // constant once relocated: a copy is the same
                    keep_sec(sym.shndx);
                    continue;
                }
                *why = where + " uses data '" + (p ? p->name : t.name) + "' that '" + target.path +
                       "' does not have (it would need the target's own copy)";
                return false;
            }
            keep_sec(sym.shndx);  // read-only data: string literals, tables, constants
        }
    }
    for (uint64_t off : neutralise) {
        const uint64_t info = ELF64_R_INFO(0, R_X86_64_NONE);
        if (!put_bytes(fd, off + offsetof(Elf64_Rela, r_info), &info, sizeof info)) {
            *why = "cannot write '" + out + "': " + std::strerror(errno);
            return false;
        }
    }
    // The patch's names for what the descriptor refers to: unique across units, and never a name
    // the process has (a patch function called like the one it replaces would confuse every reader).
    std::set<std::string> rename(holders);
    for (const auto &k : plan.keep) rename.insert(k);
    std::vector<std::string> redefine{"objcopy"}, globalise{"objcopy"};
    size_t n = 0;
    for (const auto &name : rename) {
        bool present = false;
        for (const Sym &s : o.syms) present = present || (s.name == name && s.shndx != SHN_UNDEF);
        if (!present) continue;
        const std::string nn = "__graft_" + plan.tag + "_" + std::to_string(n++);
        result->renamed[name] = nn;
        redefine.push_back("--redefine-sym=" + name + "=" + nn);
        globalise.push_back("--globalize-symbol=" + nn);
    }
    for (auto &r : result->refs) r.holder = result->renamed[r.holder];
    // Start-up code of the unit must not run again when the patch is loaded.
    for (const char *s : {".init_array", ".fini_array", ".ctors", ".dtors", ".preinit_array"}) {
        redefine.push_back(std::string("--remove-section=") + s + "*");
        redefine.push_back(std::string("--remove-section=.rela") + s + "*");
    }
    redefine.push_back(out);
    globalise.push_back(out);
    std::string log;
    if (run_in(".", redefine, &log) != 0 || run_in(".", globalise, &log) != 0) {
        *why = "objcopy failed on '" + out + "': " + log.substr(0, log.find('\n'));
        return false;
    }
    return hide_globals(out, why);
}

bool hide_globals(const std::string &path, std::string *why) {
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        *why = "cannot open '" + path + "': " + std::strerror(errno);
        return false;
    }
    struct Closer {
        int fd;
        ~Closer() { close(fd); }
    } closer{fd};
    Obj o;
    if (!read_obj(fd, path, &o, why)) return false;
    for (const Sym &s : o.syms) {
        if (s.bind == STB_LOCAL || s.shndx == SHN_UNDEF || s.type == STT_FILE || s.type == STT_SECTION)
            continue;
        const uint8_t other = STV_HIDDEN;
        if (!put_bytes(fd, s.file_off + offsetof(Elf64_Sym, st_other), &other, 1)) {
            *why = "cannot write '" + path + "': " + std::strerror(errno);
            return false;
        }
    }
    return true;
}

}  // namespace graft::diff
