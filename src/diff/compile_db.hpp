// How the target was built: a compilation database (compile_commands.json, written by CMake with
// CMAKE_EXPORT_COMPILE_COMMANDS, by Meson, or by Bear around any other build), one entry per
// translation unit. `graft diff` compiles the units a fix touches again with exactly these
// arguments, only its own output, no dependency files, and each function and data object in its
// own section.
#pragma once
#include <string>
#include <vector>

namespace graft::diff {

struct CompileCommand {
    std::string directory;          // where the compiler ran
    std::string file;               // the source, absolute
    std::vector<std::string> args;  // argv, the compiler first
};

// Reads the database at `path`. False with a sentence naming the file and the entry when it is
// not a database graft can use.
bool read_compile_db(const std::string &path, std::vector<CompileCommand> *out, std::string *why);

// Splits a shell command line as the database's "command" field holds it (quotes and backslashes,
// no expansions). False when a quote is not closed.
bool split_command(const std::string &cmd, std::vector<std::string> *out);

// The arguments to compile `c` into the object `output`: the same, without its -o and its
// dependency-file options (-M, -MD, -MF FILE...), with -c, -ffunction-sections and
// -fdata-sections, and any `extra` before the source.
std::vector<std::string> recompile_args(const CompileCommand &c, const std::string &output,
                                        const std::vector<std::string> &extra = {});

// `path` made absolute against `dir` and lexically normalised (no symlinks resolved).
std::string absolute_in(const std::string &dir, const std::string &path);

}  // namespace graft::diff
