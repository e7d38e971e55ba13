#include "agent/process/patch_targets.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <new>

#include "agent/process/elf_file.hpp"

namespace graft {
namespace {

constexpr const char *kSymbol = "graft_patch_targets";
constexpr uint64_t kRecordSize = 16;    // { const char *object; const char *build_id; }
constexpr uint64_t kMaxRecords = 4096;  // far more objects than a patch names
constexpr size_t kMaxString = 512;      // a soname or a hex build-id is much shorter

struct Segment {
    uint64_t vaddr, filesz, offset;
};

struct Reader {
    const ElfFile &f;
    int fd;
    std::vector<Segment> segs;
    std::map<uint64_t, uint64_t> relative;  // r_offset -> addend of R_X86_64_RELATIVE

    // The file offset of [vaddr, vaddr + len), which must lie in the file part of one PT_LOAD.
    bool offset_of(uint64_t vaddr, uint64_t len, uint64_t *off) const {
        for (const auto &s : segs)
            if (vaddr >= s.vaddr && fits(vaddr - s.vaddr, len, s.filesz)) {
                *off = s.offset + (vaddr - s.vaddr);
                return true;
            }
        return false;
    }
    // A pointer of the records: the addend of its RELATIVE relocation (RELA), else the value
    // in the file (an implicit addend: REL, RELR).
    bool pointer_at(uint64_t vaddr, uint64_t *value) const {
        auto it = relative.find(vaddr);
        if (it != relative.end()) {
            *value = it->second;
            return true;
        }
        uint64_t off;
        return offset_of(vaddr, 8, &off) && pread(fd, value, 8, static_cast<off_t>(off)) == 8;
    }
    bool string_at(uint64_t vaddr, std::string *out) const {
        for (const auto &s : segs) {
            if (vaddr < s.vaddr || vaddr - s.vaddr >= s.filesz) continue;
            char buf[kMaxString];
            const uint64_t n = std::min<uint64_t>(sizeof buf, s.filesz - (vaddr - s.vaddr));
            const uint64_t off = s.offset + (vaddr - s.vaddr);
            if (pread(fd, buf, n, static_cast<off_t>(off)) != static_cast<ssize_t>(n)) return false;
            const void *nul = std::memchr(buf, 0, n);
            if (!nul) return false;
            out->assign(buf, static_cast<size_t>(static_cast<const char *>(nul) - buf));
            return true;
        }
        return false;
    }
};

bool find_symbol(const ElfFile &f, GElf_Sym *found, std::string *err) {
    for (Elf_Scn *scn = elf_nextscn(f.e, nullptr); scn; scn = elf_nextscn(f.e, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM) continue;
        Elf_Data *d = elf_getdata(scn, nullptr);
        if (!f.check_entries(sh, d, sizeof(Elf64_Sym), err)) return false;
        for (size_t i = 0; i < d->d_size / sizeof(Elf64_Sym) && i <= INT_MAX; i++) {
            GElf_Sym s;
            if (!gelf_getsym(d, static_cast<int>(i), &s) || s.st_shndx == SHN_UNDEF) continue;
            const char *nm = elf_strptr(f.e, sh.sh_link, s.st_name);
            if (nm && std::strcmp(nm, kSymbol) == 0) {
                *found = s;
                return true;
            }
        }
    }
    found->st_size = 0;
    return true;
}

bool read_layout(Reader *r, uint64_t lo, uint64_t hi, std::string *err) {
    for (size_t i = 0; i < r->f.phnum && i <= INT_MAX; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(r->f.e, static_cast<int>(i), &ph) && ph.p_type == PT_LOAD)
            r->segs.push_back({ph.p_vaddr, ph.p_filesz, ph.p_offset});  // inside the file: open_elf
    }
    for (Elf_Scn *scn = elf_nextscn(r->f.e, nullptr); scn; scn = elf_nextscn(r->f.e, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA) continue;
        Elf_Data *d = elf_getdata(scn, nullptr);
        if (!r->f.check_entries(sh, d, sizeof(Elf64_Rela), err)) return false;
        for (size_t i = 0; i < d->d_size / sizeof(Elf64_Rela) && i <= INT_MAX; i++) {
            GElf_Rela rel;
            if (!gelf_getrela(d, static_cast<int>(i), &rel)) continue;
            if (GELF_R_TYPE(rel.r_info) == R_X86_64_RELATIVE && rel.r_offset >= lo && rel.r_offset < hi)
                r->relative[rel.r_offset] = static_cast<uint64_t>(rel.r_addend);
        }
    }
    return true;
}

bool is_hex(const std::string &s) {
    if (s.empty() || s.size() % 2) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

bool read_records(const ElfFile &f, int fd, std::vector<PatchTarget> *out, std::string *err) {
    GElf_Sym sym;
    if (!find_symbol(f, &sym, err)) return false;
    if (sym.st_size == 0) return true;  // a patch built without --target
    const std::string bad = std::string("is malformed: its ") + kSymbol + " ";
    if (sym.st_size % kRecordSize != 0 || sym.st_size / kRecordSize > kMaxRecords)
        return f.fail(err, bad + "is not a list of records");
    Reader r{f, fd, {}, {}};
    if (!read_layout(&r, sym.st_value, sym.st_value + sym.st_size, err)) return false;
    for (uint64_t at = sym.st_value; at < sym.st_value + sym.st_size; at += kRecordSize) {
        uint64_t object = 0, build_id = 0;
        if (!r.pointer_at(at, &object) || !r.pointer_at(at + 8, &build_id))
            return f.fail(err, bad + "lies outside the file's loaded segments");
        if (!build_id) return true;  // the terminating record
        PatchTarget t;
        if ((object && (!r.string_at(object, &t.object) || t.object.empty())) ||
            !r.string_at(build_id, &t.build_id))
            return f.fail(err, bad + "points at a string outside the file or without its end");
        if (!is_hex(t.build_id))
            return f.fail(err, bad + "holds a build-id that is not hexadecimal ('" + t.build_id + "')");
        out->push_back(t);
    }
    return f.fail(err, bad + "has no terminating record");
}

}  // namespace

bool read_patch_targets_fd(int fd, const std::string &name, std::vector<PatchTarget> *out, std::string *err) {
    try {
        ElfFile f;
        out->clear();
        return open_elf(fd, name, true, &f, err) && read_records(f, fd, out, err);
    } catch (const std::bad_alloc &) {
        *err = "out of memory while reading " + quoted(name);
        return false;
    }
}

bool read_patch_targets(const std::string &path, std::vector<PatchTarget> *out, std::string *err) {
    return with_file(path, err, [&](int fd) { return read_patch_targets_fd(fd, path, out, err); });
}

}  // namespace graft
