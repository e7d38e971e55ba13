// The comparison at the heart of `graft diff` (kpatch's create-diff-object idea, for processes):
// two relocatable objects of one translation unit, built before and after a fix with
// -ffunction-sections -fdata-sections, are compared function by function and data object by data
// object. Code is compared modulo relocations: the bytes a relocation fills are masked, and the
// relocations are compared by what they refer to (a symbol's name with the compiler's clone and
// static-local numbering taken out, a string literal by its text), never by where the linker
// will put it. So a function whose code is unchanged but whose string literals moved, or whose
// static callee was renumbered (`f.isra.0` -> `f.isra.1`), is not reported; a function that holds
// an inlined copy of a changed static function is, because its own bytes changed.
//
// Runs in the `graft` command (never in a host process); reads object files with libelf and
// checks every offset against its section before use: an object file is a build product, but a
// truncated or foreign one must give an error, not a crash.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace graft::diff {

// A relocation inside a piece: where (from the piece's start), its type, and what it refers to.
struct Reloc {
    uint64_t offset = 0;
    uint32_t type = 0;
    std::string target;  // "sym:NAME", "str:TEXT@POS" (a string literal), "sec:NAME" (a section)
    int64_t addend = 0;  // compared only for "sec:" and "sym:" targets

    bool operator==(const Reloc &) const = default;
};

// A function or a data object of the object file.
struct Piece {
    std::string name;     // as in the symbol table
    std::string key;      // the name, normalised (clone and static-local numbers taken out)
    bool func = false;    // STT_FUNC (else STT_OBJECT)
    bool local = false;   // STB_LOCAL
    bool tls = false;     // STT_TLS
    std::string section;  // the name of the section that holds it
    uint64_t size = 0;
    std::vector<uint8_t> bytes;  // its bytes, relocated fields zeroed (zeros for .bss)
    std::vector<Reloc> relocs;   // sorted by offset
};

struct ObjectPieces {
    std::string path;
    std::vector<Piece> pieces;
};

// The width of the field an x86-64 relocation type fills; UINT32_MAX for a type graft does not
// know (the object is refused: a field it cannot mask would be compared as code).
unsigned relocation_field_size(uint32_t type);

// Reads the functions and data objects of the relocatable x86-64 object at `path`. False with a
// sentence naming the file and the reason when it is not one or is malformed.
bool read_object(const std::string &path, ObjectPieces *out, std::string *why);

// The normalised name of a symbol: every ".<digits>" suffix component becomes ".N", so that
// `f.isra.0` / `f.isra.1`, `f.constprop.0.isra.0`, `counter.1` / `counter.2` correlate.
std::string normalise_name(const std::string &name);

enum class Change { kSame, kChanged, kNew, kRemoved };
const char *change_name(Change c);  // "same", "changed", "new", "removed"

struct PieceDiff {
    std::string name;         // the after build's name (the before build's for a removed piece)
    std::string before_name;  // the before build's name (empty for a new piece)
    bool func = false;
    bool local = false;
    bool tls = false;
    Change change = Change::kSame;
    std::string why;                   // for a changed piece: what differs, one phrase
    std::string note;                  // for a piece taken as the same although its bytes differ: why
    std::vector<std::string> inlines;  // for a changed function: inlined functions the fix changes
};

struct ObjectDiff {
    std::vector<PieceDiff> pieces;  // every piece of either build, in the after build's order
    size_t count(Change c, bool funcs) const;
};

// Correlates the pieces of the two builds by normalised name (in order of appearance when a
// name repeats) and compares each pair.
ObjectDiff diff_objects(const ObjectPieces &before, const ObjectPieces &after);

}  // namespace graft::diff
