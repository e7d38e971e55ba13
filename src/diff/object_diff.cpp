#include "diff/object_diff.hpp"

#include "agent/process/elf_file.hpp"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace graft::diff {

unsigned relocation_field_size(uint32_t type) {
    switch (type) {
        case R_X86_64_NONE:
        case R_X86_64_TLSDESC_CALL:  // marks an instruction, fills nothing
            return 0;
        case R_X86_64_8:
        case R_X86_64_PC8:
            return 1;
        case R_X86_64_16:
        case R_X86_64_PC16:
            return 2;
        case R_X86_64_SIZE64:
        case R_X86_64_64:
        case R_X86_64_PC64:
        case R_X86_64_GOTOFF64:
        case R_X86_64_GOTPC64:
        case R_X86_64_GOTPCREL64:
        case R_X86_64_DTPOFF64:
        case R_X86_64_TPOFF64:
            return 8;
        case R_X86_64_PC32:
        case R_X86_64_PLT32:
        case R_X86_64_32:
        case R_X86_64_32S:
        case R_X86_64_GOTPCREL:
        case R_X86_64_GOTPCRELX:
        case R_X86_64_REX_GOTPCRELX:
        case R_X86_64_TLSGD:
        case R_X86_64_TLSLD:
        case R_X86_64_DTPOFF32:
        case R_X86_64_GOTTPOFF:
        case R_X86_64_TPOFF32:
        case R_X86_64_GOTPC32:
        case R_X86_64_GOTPC32_TLSDESC:
        case R_X86_64_SIZE32:
            return 4;
        default:
            return UINT32_MAX;
    }
}

namespace {

struct Section {
    std::string name;
    uint64_t flags = 0;
    uint32_t type = 0;
    std::vector<uint8_t> data;  // empty for SHT_NOBITS
    uint64_t size = 0;
};

struct Symbol {
    std::string name;
    unsigned type = 0, bind = 0;
    size_t shndx = 0;
    uint64_t value = 0, size = 0;
};

// The string literal a relocation against a mergeable string section points into: its whole text
// and the position inside it (where the instruction's own adjustment puts the pointer; it is the
// same on both sides because the instruction bytes are compared too).
std::string string_at(const Section &s, int64_t off) {
    if (off < 0 || static_cast<uint64_t>(off) >= s.data.size()) return "?@" + std::to_string(off);
    size_t start = static_cast<size_t>(off);
    while (start > 0 && s.data[start - 1] != 0) start--;
    size_t end = static_cast<size_t>(off);
    while (end < s.data.size() && s.data[end] != 0) end++;
    return std::string(reinterpret_cast<const char *>(s.data.data()) + start, end - start) + "@" +
           std::to_string(static_cast<size_t>(off) - start);
}

bool is_string_section(const Section &s) {
    return (s.flags & SHF_MERGE) && (s.flags & SHF_STRINGS) && s.type == SHT_PROGBITS;
}

// How a relocation names its target, independent of where either build put things. A section
// symbol's addend is part of what it names (an offset inside that section); a string literal is
// named by its text, which may move between builds.
void describe_target(const std::vector<Section> &secs, const std::vector<Symbol> &syms, size_t symi,
                     int64_t addend, Reloc *r) {
    if (symi >= syms.size()) {
        r->target = "sym:?";
        r->addend = addend;
        return;
    }
    const Symbol &s = syms[symi];
    const Section *sec = s.shndx < secs.size() ? &secs[s.shndx] : nullptr;
    // A string literal, through its section or a compiler's local name for it (gcc's `.LC0`,
    // clang's `.L.str.1`): named by its text.
    if (sec && is_string_section(*sec) && (s.type == STT_SECTION || s.bind == STB_LOCAL)) {
        // PC-relative references point 4 bytes (the field) before the text: the usual case.
        // Addresses wrap as the linker's do: a hostile object's value and addend must not overflow.
        const auto at =
            static_cast<int64_t>(static_cast<uint64_t>(s.value) + static_cast<uint64_t>(addend) +
                                 (r->type == R_X86_64_PC32 || r->type == R_X86_64_PLT32 ? 4u : 0u));
        r->target = "str:" + string_at(*sec, at);
        r->addend = 0;
        return;
    }
    if (s.type == STT_SECTION && sec) {
        r->target = "sec:" + normalise_name(sec->name);
        r->addend = static_cast<int64_t>(static_cast<uint64_t>(s.value) + static_cast<uint64_t>(addend));
        return;
    }
    r->target = "sym:" + normalise_name(s.name);
    r->addend = addend;
}

}  // namespace

std::string normalise_name(const std::string &name) {
    std::string out;
    size_t i = 0;
    while (i < name.size()) {
        if (name[i] == '.' && i + 1 < name.size() && name[i + 1] >= '0' && name[i + 1] <= '9') {
            size_t j = i + 1;
            while (j < name.size() && name[j] >= '0' && name[j] <= '9') j++;
            if (j == name.size() || name[j] == '.') {
                out += ".N";
                i = j;
                continue;
            }
        }
        out += name[i++];
    }
    return out;
}

const char *change_name(Change c) {
    switch (c) {
        case Change::kSame:
            return "same";
        case Change::kChanged:
            return "changed";
        case Change::kNew:
            return "new";
        case Change::kRemoved:
            return "removed";
    }
    return "?";
}

bool read_object(const std::string &path, ObjectPieces *out, std::string *why) {
    out->path = path;
    out->pieces.clear();
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = "cannot open object file '" + path + "': " + std::strerror(errno);
        return false;
    }
    // The project's checked reader: header, sections and segments inside the file before libelf
    // reads any of them.
    // libelf reads through the descriptor (ELF_C_READ) for as long as the ElfFile lives.
    struct Closer {
        int fd;
        ~Closer() { close(fd); }
    } closer{fd};
    ElfFile f;
    const bool opened = open_elf(fd, path, false, &f, why);
    auto fail = [&](const std::string &reason) {
        *why = "object file '" + path + "' " + reason;
        return false;
    };
    if (!opened) {
        *why = "object file " + *why;
        return false;
    }
    Elf *e = f.e;
    const uint64_t file_size = f.size;
    GElf_Ehdr eh;
    if (!gelf_getehdr(e, &eh)) return fail("is not an ELF file");
    if (eh.e_type != ET_REL) return fail("is not a relocatable object (.o)");
    size_t nsec = 0, shstr = 0;
    if (elf_getshdrnum(e, &nsec) != 0 || elf_getshdrstrndx(e, &shstr) != 0 || nsec > 1000000)
        return fail("has no readable section table");

    std::vector<Section> secs(nsec);
    std::vector<Symbol> syms;
    std::vector<size_t> rela_secs;
    for (size_t i = 1; i < nsec; i++) {
        Elf_Scn *scn = elf_getscn(e, i);
        GElf_Shdr sh;
        if (!scn || !gelf_getshdr(scn, &sh))
            return fail("has an unreadable section header " + std::to_string(i));
        const char *nm = elf_strptr(e, shstr, sh.sh_name);
        secs[i].name = nm ? nm : "";
        secs[i].flags = sh.sh_flags;
        secs[i].type = sh.sh_type;
        secs[i].size = sh.sh_size;
        if (sh.sh_type == SHT_NOBITS) continue;
        if (sh.sh_offset > file_size || sh.sh_size > file_size - sh.sh_offset)
            return fail("is truncated: section '" + secs[i].name + "' ends past the end of the file");
        if (sh.sh_type == SHT_RELA) rela_secs.push_back(i);
        if (sh.sh_type == SHT_PROGBITS || sh.sh_type == SHT_INIT_ARRAY || sh.sh_type == SHT_FINI_ARRAY) {
            Elf_Data *d = elf_rawdata(scn, nullptr);
            if (d && d->d_buf && d->d_size == sh.sh_size) {
                auto *p = static_cast<const uint8_t *>(d->d_buf);
                secs[i].data.assign(p, p + d->d_size);
            } else if (sh.sh_size) {
                return fail("has an unreadable section '" + secs[i].name + "'");
            }
        }
        if (sh.sh_type == SHT_SYMTAB) {
            Elf_Data *d = elf_getdata(scn, nullptr);
            if (!d || sh.sh_entsize != sizeof(Elf64_Sym)) return fail("has an unreadable symbol table");
            size_t n = sh.sh_size / sizeof(Elf64_Sym);
            syms.resize(n);
            for (size_t k = 0; k < n; k++) {
                GElf_Sym s;
                if (!gelf_getsym(d, static_cast<int>(k), &s)) return fail("has an unreadable symbol");
                const char *sn = elf_strptr(e, sh.sh_link, s.st_name);
                syms[k] = {sn ? sn : "",
                           static_cast<unsigned>(GELF_ST_TYPE(s.st_info)),
                           static_cast<unsigned>(GELF_ST_BIND(s.st_info)),
                           s.st_shndx,
                           s.st_value,
                           s.st_size};
            }
        }
    }
    if (syms.empty()) return fail("has no symbol table (was it stripped?)");

    // The pieces: every defined function and data object with a size.
    std::map<size_t, std::vector<size_t>> by_section;  // section -> indices into out->pieces
    std::vector<uint64_t> start;                       // each piece's value: where relocations fall
    for (const Symbol &s : syms) {
        const bool func = s.type == STT_FUNC, obj = s.type == STT_OBJECT || s.type == STT_TLS;
        if ((!func && !obj) || s.shndx == SHN_UNDEF || s.shndx >= nsec || s.size == 0 || s.name.empty())
            continue;
        const Section &sec = secs[s.shndx];
        if (is_string_section(sec)) continue;  // string literals: compared by text where used
        // Within what was read of it (only code and data sections are read).
        const uint64_t extent = sec.type == SHT_NOBITS ? sec.size : sec.data.size();
        if (s.value > extent || s.size > extent - s.value)
            return fail("is malformed: symbol '" + s.name + "' lies outside its section '" + sec.name + "'");
        Piece p;
        p.name = s.name;
        p.key = normalise_name(s.name);
        p.func = func;
        p.local = s.bind == STB_LOCAL;
        p.tls = s.type == STT_TLS;
        p.section = sec.name;
        p.size = s.size;
        if (sec.type == SHT_NOBITS)
            p.bytes.assign(s.size, 0);
        else
            p.bytes.assign(sec.data.begin() + static_cast<long>(s.value),
                           sec.data.begin() + static_cast<long>(s.value + s.size));
        by_section[s.shndx].push_back(out->pieces.size());
        start.push_back(s.value);
        out->pieces.push_back(std::move(p));
    }
    for (size_t ri : rela_secs) {
        Elf_Scn *scn = elf_getscn(e, ri);
        GElf_Shdr sh;
        if (!scn || !gelf_getshdr(scn, &sh)) return fail("has an unreadable relocation section");
        auto it = by_section.find(sh.sh_info);
        if (it == by_section.end()) continue;  // relocations of a section no piece lies in
        Elf_Data *d = elf_getdata(scn, nullptr);
        if (!d || sh.sh_entsize != sizeof(Elf64_Rela)) return fail("has an unreadable relocation section");
        size_t n = sh.sh_size / sizeof(Elf64_Rela);
        for (size_t k = 0; k < n; k++) {
            GElf_Rela ra;
            if (!gelf_getrela(d, static_cast<int>(k), &ra)) return fail("has an unreadable relocation");
            const uint32_t type = static_cast<uint32_t>(GELF_R_TYPE(ra.r_info));
            const unsigned width = relocation_field_size(type);
            if (width == UINT32_MAX)
                return fail("has a relocation of type " + std::to_string(type) + " graft diff does not know");
            for (size_t pi : it->second) {
                Piece &p = out->pieces[pi];
                if (ra.r_offset < start[pi] || ra.r_offset >= start[pi] + p.size) continue;
                Reloc r;
                r.offset = ra.r_offset - start[pi];
                r.type = type;
                describe_target(secs, syms, GELF_R_SYM(ra.r_info), ra.r_addend, &r);
                if (r.offset + width > p.size)
                    return fail("is malformed: a relocation of '" + p.name + "' runs past its end");
                std::fill(p.bytes.begin() + static_cast<long>(r.offset),
                          p.bytes.begin() + static_cast<long>(r.offset + width), 0);
                p.relocs.push_back(std::move(r));
            }
        }
    }
    for (Piece &p : out->pieces)
        std::sort(p.relocs.begin(), p.relocs.end(),
                  [](const Reloc &a, const Reloc &b) { return a.offset < b.offset; });
    return true;
}

size_t ObjectDiff::count(Change c, bool funcs) const {
    return static_cast<size_t>(std::count_if(
        pieces.begin(), pieces.end(), [&](const PieceDiff &d) { return d.change == c && d.func == funcs; }));
}

namespace {

// What differs between two pieces of the same name, one phrase; empty when nothing does.
std::string difference(const Piece &a, const Piece &b) {
    if (a.func != b.func) return a.func ? "it became a data object" : "it became a function";
    if (a.size != b.size)
        return "its size changed (" + std::to_string(a.size) + " to " + std::to_string(b.size) + " bytes)";
    if (a.bytes != b.bytes) {
        size_t i = 0;
        while (a.bytes[i] == b.bytes[i]) i++;
        return std::string(a.func ? "its code differs" : "its contents differ") + " from byte " +
               std::to_string(i);
    }
    if (a.relocs.size() != b.relocs.size()) return "it refers to other things (a reference added or removed)";
    for (size_t i = 0; i < a.relocs.size(); i++) {
        const Reloc &x = a.relocs[i], &y = b.relocs[i];
        if (x == y) continue;
        if (x.target != y.target)
            return "a reference at byte " + std::to_string(y.offset) + " now names " + y.target.substr(4) +
                   " instead of " + x.target.substr(4);
        return "a reference at byte " + std::to_string(y.offset) + " to " + y.target.substr(4) + " changed";
    }
    return "";
}

}  // namespace

ObjectDiff diff_objects(const ObjectPieces &before, const ObjectPieces &after) {
    ObjectDiff d;
    // Correlation: by (kind, normalised name), the k-th occurrence with the k-th.
    std::map<std::pair<bool, std::string>, std::vector<const Piece *>> old_by_key;
    for (const Piece &p : before.pieces) old_by_key[{p.func, p.key}].push_back(&p);
    std::map<std::pair<bool, std::string>, size_t> used;
    for (const Piece &p : after.pieces) {
        PieceDiff pd{p.name, "", p.func, p.local, p.tls, Change::kNew, "", "", {}};
        auto it = old_by_key.find({p.func, p.key});
        size_t &k = used[{p.func, p.key}];
        if (it != old_by_key.end() && k < it->second.size()) {
            const Piece &o = *it->second[k++];
            pd.before_name = o.name;
            pd.why = difference(o, p);
            pd.change = pd.why.empty() ? Change::kSame : Change::kChanged;
        }
        d.pieces.push_back(std::move(pd));
    }
    for (auto &[key, v] : old_by_key) {
        size_t k = used.count(key) ? used[key] : 0;
        for (size_t i = k; i < v.size(); i++)
            d.pieces.push_back(
                {v[i]->name, v[i]->name, v[i]->func, v[i]->local, v[i]->tls, Change::kRemoved, "", "", {}});
    }
    return d;
}

}  // namespace graft::diff
