// The symbols of the object a generated patch is for, as the agent will count them: each
// function and data object the patch names or refers to is given the symbol position the agent's
// resolve_symbol() needs (0 when the name is unique, else its rank among the symbols of that name
// in symbol-table order), chosen by the unit that defines it when the name repeats (a static
// `helper` in two files: the one after the STT_FILE symbol of the unit being patched).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace graft::diff {

struct TargetSymbol {
    std::string name;
    std::string file;  // the STT_FILE before it (locals), empty for globals
    bool func = false;
    bool global = false;
};

struct TargetSymbols {
    std::string path;
    std::string build_id;            // hex
    std::string soname;              // empty for a program
    bool program = false;            // has PT_INTERP: the patch names it as the main executable
    std::vector<TargetSymbol> syms;  // defined FUNC/OBJECT/IFUNC symbols with a value, in file order

    bool has(const std::string &name) const;
    // The position of `name` (a function when func_only) defined by the unit whose source's base
    // name is `unit`: false with a sentence when it is not there or the unit cannot tell copies apart.
    bool sympos(const std::string &name, const std::string &unit, bool func_only, unsigned long *pos,
                std::string *why) const;
};

// Reads the full symbol table of the program or shared object at `path`. False with a sentence
// naming the file when it is not one or has no .symtab (a stripped file: name the unstripped build).
bool read_target_symbols(const std::string &path, TargetSymbols *out, std::string *why);

}  // namespace graft::diff
