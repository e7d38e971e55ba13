#include "diff/target_check.hpp"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>

#include "agent/process/elf_file.hpp"
#include "agent/process/symbols.hpp"

namespace graft::diff {
namespace {

// Bytes of `p` the comparison skips: relocated fields, and the opcode bytes before a GOT load the
// linker may relax (`mov foo@GOTPCREL(%rip),%reg` becomes `lea foo(%rip),%reg`; `call *foo@GOTPCREL`
// becomes `addr32 call foo`; the REX form may lose its REX.W).
std::vector<bool> masked(const Piece &p) {
    std::vector<bool> m(p.bytes.size(), false);
    for (const Reloc &r : p.relocs) {
        unsigned w = relocation_field_size(r.type);
        if (w == UINT32_MAX) w = 0;
        uint64_t lo = r.offset, hi = r.offset + w;
        if (r.type == R_X86_64_GOTPCRELX) lo = lo >= 2 ? lo - 2 : 0;
        if (r.type == R_X86_64_REX_GOTPCRELX) lo = lo >= 3 ? lo - 3 : 0;
        for (uint64_t i = lo; i < hi && i < m.size(); i++) m[i] = true;
    }
    return m;
}

struct TargetFunc {
    uint64_t size = 0;
    std::vector<uint8_t> bytes;
};

}  // namespace

bool check_target(const ObjectPieces &before, const std::vector<std::string> &names, const std::string &path,
                  TargetCheck *out, std::string *why) {
    *out = {};
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = "cannot open target '" + path + "': " + std::strerror(errno);
        return false;
    }
    // libelf reads through the descriptor (ELF_C_READ) for as long as the ElfFile lives.
    struct Closer {
        int fd;
        ~Closer() { close(fd); }
    } closer{fd};
    ElfFile f;  // the project's checked reader: layout inside the file before libelf reads it
    if (!open_elf(fd, path, false, &f, why)) {
        *why = "target " + *why;
        return false;
    }
    Elf *e = f.e;
    const uint64_t file_size = f.size;
    auto done = [&](bool ok, const std::string &reason) {
        if (!ok) *why = "target '" + path + "' " + reason;
        return ok;
    };
    GElf_Ehdr eh;
    if (!gelf_getehdr(e, &eh) || (eh.e_type != ET_EXEC && eh.e_type != ET_DYN))
        return done(false, "is not an x86-64 program or shared object");
    const std::set<std::string> wanted(names.begin(), names.end());
    std::multimap<std::string, TargetFunc> funcs;
    bool have_symtab = false;
    size_t nsec = 0;
    if (elf_getshdrnum(e, &nsec) != 0 || nsec > 1000000) return done(false, "has no readable section table");
    // Pass 1: the symbol table (the full one if the file has it, else the dynamic one).
    for (int pass = 0; pass < 2 && !have_symtab; pass++) {
        const uint32_t kind = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
        for (size_t i = 1; i < nsec; i++) {
            Elf_Scn *scn = elf_getscn(e, i);
            GElf_Shdr sh;
            if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != kind) continue;
            if (sh.sh_offset > file_size || sh.sh_size > file_size - sh.sh_offset ||
                sh.sh_entsize != sizeof(Elf64_Sym))
                return done(false, "has a malformed symbol table");
            Elf_Data *d = elf_getdata(scn, nullptr);
            if (!d) return done(false, "has an unreadable symbol table");
            have_symtab = true;
            const size_t n = sh.sh_size / sizeof(Elf64_Sym);
            for (size_t k = 0; k < n; k++) {
                GElf_Sym s;
                if (!gelf_getsym(d, static_cast<int>(k), &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC) continue;
                const char *nm = elf_strptr(e, sh.sh_link, s.st_name);
                if (!nm || !wanted.count(nm) || s.st_shndx == SHN_UNDEF || s.st_shndx >= nsec || !s.st_size)
                    continue;
                GElf_Shdr fsh;
                Elf_Scn *fscn = elf_getscn(e, s.st_shndx);
                if (!fscn || !gelf_getshdr(fscn, &fsh) || fsh.sh_type != SHT_PROGBITS) continue;
                if (s.st_value < fsh.sh_addr || s.st_size > fsh.sh_size ||
                    s.st_value - fsh.sh_addr > fsh.sh_size - s.st_size || fsh.sh_offset > file_size ||
                    fsh.sh_size > file_size - fsh.sh_offset)
                    continue;
                TargetFunc f;
                f.size = s.st_size;
                f.bytes.resize(s.st_size);
                if (pread(fd, f.bytes.data(), s.st_size,
                          static_cast<off_t>(fsh.sh_offset + (s.st_value - fsh.sh_addr))) !=
                    static_cast<ssize_t>(s.st_size))
                    continue;
                funcs.emplace(nm, std::move(f));
            }
        }
    }
    if (!have_symtab) return done(false, "has no symbol table");
    // Its build-id, recorded in the patch graft diff makes.
    for (size_t i = 1; i < nsec; i++) {
        Elf_Scn *scn = elf_getscn(e, i);
        GElf_Shdr sh;
        if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE) continue;
        Elf_Data *d = elf_getdata(scn, nullptr);
        if (!d || !d->d_buf) continue;
        std::string id = build_id_from_notes(static_cast<const uint8_t *>(d->d_buf), d->d_size,
                                             sh.sh_addralign == 8 ? 8 : 4);
        if (!id.empty()) {
            out->build_id = id;
            break;
        }
    }
    for (const std::string &name : names) {
        const Piece *p = nullptr;
        for (const Piece &q : before.pieces)
            if (q.func && q.name == name) p = &q;
        if (!p) continue;
        auto range = funcs.equal_range(name);
        if (range.first == range.second) {
            out->missing.push_back(name);
            continue;
        }
        const std::vector<bool> m = masked(*p);
        bool any = false;
        for (auto it = range.first; it != range.second && !any; ++it) {
            const TargetFunc &f = it->second;
            if (f.size != p->size) continue;
            bool same = true;
            for (size_t i = 0; i < f.bytes.size() && same; i++) same = m[i] || f.bytes[i] == p->bytes[i];
            any = same;
        }
        if (any)
            out->matched++;
        else
            out->differ.push_back(name);
    }
    return done(true, "");
}

}  // namespace graft::diff
