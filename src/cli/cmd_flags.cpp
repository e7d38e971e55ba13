// graft flags target|patch [--cc gcc|clang]: compiler and linker flags, on one line.
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
    static std::string kind, cc;
    sub->add_option("kind", kind, "target or patch")->required()->check(CLI::IsMember({"target", "patch"}));
    sub->add_option("--cc", cc, "compiler the flags are for (default: $CC, else gcc)");
    sub->callback([] {
        if (cc.empty()) cc = std::getenv("CC") ? std::getenv("CC") : "gcc";
        std::string f;
        if (kind == "target")
            // The flags and why each is there: cmake/GraftFlags.cmake (their one source).
            f = is_clang(cc) ? GRAFT_FLAGS_TARGET_CLANG : GRAFT_FLAGS_TARGET_GCC;
        else
            f = GRAFT_FLAGS_PATCH " -I" + include_dir();
        std::cout << f << std::endl;
    });
}

}  // namespace graft::cli
