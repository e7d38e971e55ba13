// graft flags target|patch [--cc gcc|clang] [--entry gate|jump]: compiler and linker flags, on one
// line.
#include <cstdlib>
#include <iostream>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "graft_flags.h"

namespace graft::cli {

namespace {
bool is_clang(const std::string &cc) {
    return cc.find("clang") != std::string::npos;
}
}  // namespace

void add_flags(CLI::App &app) {
    auto *sub = app.add_subcommand("flags", "Print the flags a patchable target, or a patch, is built with");
    static std::string kind, cc, entry = "gate";
    sub->add_option("kind", kind, "target or patch")->required()->check(CLI::IsMember({"target", "patch"}));
    sub->add_option("--cc", cc, "compiler the flags are for (default: $CC, else gcc)");
    sub->add_option("--entry", entry,
                    "a target's entry layout: gate (16 bytes, a 2-byte gate at the entry) or jump (5 bytes "
                    "at the entry: one direct jump once a patch settled)")
        ->check(CLI::IsMember({"gate", "jump"}));
    sub->callback([] {
        if (cc.empty()) cc = std::getenv("CC") ? std::getenv("CC") : "gcc";
        std::string f;
        if (kind == "target")
            // The flags and why each is there: cmake/GraftFlags.cmake (their one source).
            f = entry == "jump" ? (is_clang(cc) ? GRAFT_FLAGS_TARGET_CLANG_JUMP : GRAFT_FLAGS_TARGET_GCC_JUMP)
                                : (is_clang(cc) ? GRAFT_FLAGS_TARGET_CLANG : GRAFT_FLAGS_TARGET_GCC);
        else
            f = GRAFT_FLAGS_PATCH " -I" + include_dir();
        std::cout << f << std::endl;
    });
}

}  // namespace graft::cli
