#include "agent/process/user_symbols.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "agent/process/elf_file.hpp"

namespace graft {
namespace {

// The files named so far, in the order named, and what was decided with them since the last
// user_symbols_take_notes() (g_sym_cache_mutex).
std::vector<std::string> &g_user_files = *new std::vector<std::string>;
std::vector<std::string> &g_notes = *new std::vector<std::string>;

struct Section {
    uint32_t type = 0;
    uint64_t flags = 0, addr = 0, size = 0, offset = 0;
};

// The allocated sections of an ELF file by name, notes left out (the build-id is one).
bool alloc_sections(const ElfFile &f, std::map<std::string, Section> *out, std::string *err) {
    for (Elf_Scn *scn = elf_nextscn(f.e, nullptr); scn; scn = elf_nextscn(f.e, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh)) return f.fail(err, "has a section header libelf cannot read");
        if (!(sh.sh_flags & SHF_ALLOC) || sh.sh_type == SHT_NOTE) continue;
        Section s{sh.sh_type, sh.sh_flags, sh.sh_addr, sh.sh_size, sh.sh_offset};
        if (!out->emplace(f.section_name(sh), s).second)
            return f.fail(err, "has two allocated sections named '" + std::string(f.section_name(sh)) + "'");
    }
    return true;
}

bool same_bytes(int fa, int fb, uint64_t off_a, uint64_t off_b, uint64_t len) {
    std::vector<unsigned char> va(65536), vb(65536);
    unsigned char *a = va.data(), *b = vb.data();
    for (uint64_t done = 0; done < len;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(va.size(), len - done));
        if (pread(fa, a, n, static_cast<off_t>(off_a + done)) != static_cast<ssize_t>(n) ||
            pread(fb, b, n, static_cast<off_t>(off_b + done)) != static_cast<ssize_t>(n) ||
            std::memcmp(a, b, n))
            return false;
        done += n;
    }
    return true;
}

}  // namespace

bool same_code_and_data(int fd_a, const std::string &name_a, int fd_b, const std::string &name_b,
                        std::string *detail) {
    try {
        ElfFile fa, fb;
        std::map<std::string, Section> sa, sb;
        if (!open_elf(fd_a, name_a, false, &fa, detail) || !open_elf(fd_b, name_b, false, &fb, detail) ||
            !alloc_sections(fa, &sa, detail) || !alloc_sections(fb, &sb, detail))
            return false;
        for (const auto &[name, s] : sa)
            if (!sb.count(name)) {
                *detail = "its section '" + name + "' is missing from " + fb.q;
                return false;
            }
        uint64_t bytes = 0;
        for (const auto &[name, t] : sb) {
            auto it = sa.find(name);
            if (it == sa.end()) {
                *detail = fb.q + " has a section '" + name + "' the running object does not";
                return false;
            }
            const Section &s = it->second;
            if (s.type != t.type || s.addr != t.addr || s.size != t.size || s.flags != t.flags) {
                *detail = "section '" + name + "' lies elsewhere or has another size";
                return false;
            }
            if (s.type == SHT_NOBITS) continue;
            // open_elf checked that every section lies inside its file.
            if (!same_bytes(fd_a, fd_b, s.offset, t.offset, s.size)) {
                *detail = "section '" + name + "' differs";
                return false;
            }
            bytes += s.size;
        }
        *detail = std::to_string(sb.size()) + " allocated sections, " + std::to_string(bytes) +
                  " bytes of code and data, identical";
        return true;
    } catch (const std::bad_alloc &) {
        *detail = "out of memory while comparing " + quoted(name_a) + " and " + quoted(name_b);
        return false;
    }
}

bool user_symbols_add(const std::vector<std::string> &paths, std::string *err) {
    for (const auto &p : paths) {
        int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            *err = "cannot open the symbols file '" + p + "': " + std::strerror(errno);
            return false;
        }
        SymbolFile facts;
        std::string why;
        bool ok = read_elf_fd(fd, p, &facts, true, &why);
        close(fd);
        if (!ok) {
            *err = "symbols file: " + why;
            return false;
        }
        if (!facts.full_symtab) {
            *err = "the symbols file '" + p + "' has no symbol table (.symtab): it is stripped too";
            return false;
        }
    }
    {
        std::lock_guard<std::mutex> g(g_sym_cache_mutex);
        for (const auto &p : paths)
            if (std::find(g_user_files.begin(), g_user_files.end(), p) == g_user_files.end())
                g_user_files.push_back(p);
    }
    symbol_cache_forget_stripped();
    return true;
}

void user_symbols_apply(SymbolFile *sf) {
    std::string refused;
    for (const auto &c : g_user_files) {
        if (c == sf->path) continue;
        int fd = open(c.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        std::string why;
        SymbolFile cand;
        bool ok = read_elf_fd(fd, c, &cand, true, &why);
        std::string how;
        if (ok && cand.full_symtab && !sf->build_id.empty() && cand.build_id == sf->build_id) {
            how = "same build-id";
        } else if (ok && cand.full_symtab) {
            int own = open(sf->path.c_str(), O_RDONLY | O_CLOEXEC);
            std::string detail;
            bool same = own >= 0 && same_code_and_data(own, sf->path, fd, c, &detail);
            if (own >= 0) close(own);
            if (same) {
                how = "build-id " + cand.build_id + ", not the running " + sf->build_id + ", but " + detail;
            } else {
                refused += (refused.empty() ? "" : "; ") + std::string("'") + c + "' is another build (" +
                           (own < 0 ? "the object's file cannot be read" : detail) + ")";
            }
        }
        close(fd);
        if (how.empty()) continue;
        sf->syms = std::move(cand.syms);
        sf->by_name = std::move(cand.by_name);
        sf->funcs_by_addr = std::move(cand.funcs_by_addr);
        sf->full_symtab = true;
        sf->symbols_from = c;
        g_notes.push_back("symbols of '" + sf->path + "' from '" + c + "' (" + how + ")");
        return;
    }
    sf->symbols_refused = refused;
}

std::vector<std::string> user_symbols_take_notes() {
    std::lock_guard<std::mutex> g(g_sym_cache_mutex);
    std::vector<std::string> out;
    out.swap(g_notes);
    return out;
}

}  // namespace graft
