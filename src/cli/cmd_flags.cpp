// graft flags target|patch [--cc gcc|clang]: compiler and linker flags, on one line.
#include <cstdlib>
#include <iostream>

#include "cli/client.hpp"
#include "cli/commands.hpp"

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
        if (kind == "target") {
            // A 16-byte aligned patchable entry (14 bytes before the symbol, a 2-byte gate at it);
            // and no interprocedural change that lets callers depend on a function's body
            // (register usage, cloned signatures, identical-code folding, partial inlining).
            f = "-fpatchable-function-entry=16,14 -falign-functions=16 -fasynchronous-unwind-tables";
            // gcc: -flive-patching=inline-only-static turns off every interprocedural analysis a
            // caller could depend on (ipa-ra, pure-const, modref, ipa-vrp, icf, cloning...).
            // clang has no equivalent: see docs/limitations.md.
            // clang: no such switch, but -fPIC -fsemantic-interposition makes every global
            // function interposable, and clang then assumes nothing of a callee's body (it
            // reloads memory after a call instead of trusting an inferred attribute). Static
            // functions stay exposed: see docs/limitations.md.
            if (!is_clang(cc))
                f += " -flive-patching=inline-only-static -fno-reorder-blocks-and-partition";
            else
                f += " -fPIC -fsemantic-interposition";
        } else {
            f = "-shared -fPIC -fasynchronous-unwind-tables -I" + include_dir();
        }
        std::cout << f << std::endl;
    });
}

}  // namespace graft::cli
