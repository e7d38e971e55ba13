// graft list PID / graft status PID [--json]: the patches in stack order (the kernel's
// /sys/kernel/livepatch/<patch>/{enabled,transition,force,replace,stack_order} and
// <object>/patched); status adds the transition and every pending thread with its reason.
#include <iostream>
#include <memory>

#include "cli/client.hpp"
#include "cli/commands.hpp"

namespace graft::cli {

namespace {
void print_patch(const nlohmann::json &p, bool verbose) {
    std::cout << p.value("name", "") << "\tenabled=" << p.value("enabled", false)
              << " transition=" << p.value("transition", false) << " replace=" << p.value("replace", false)
              << " forced=" << p.value("forced", false) << " stack_order=" << p.value("stack_order", 0)
              << std::endl;
    for (auto &o : p["objects"]) {
        std::cout << "  " << o.value("name", "") << "\tpatched=" << o.value("patched", false) << std::endl;
        if (verbose)
            for (auto &f : o["funcs"])
                std::cout << "    " << f.value("name", "") << "," << f.value("sympos", 1)
                          << "\tpatched=" << f.value("patched", false) << std::endl;
    }
}

void show(const std::string &pid_s, bool json, bool verbose) {
    auto st = request(parse_pid(pid_s), {{"op", "status"}}, verbose ? "status" : "list");
    st.erase("ok");
    if (json) {
        std::cout << st.dump(2) << std::endl;
        return;
    }
    if (st["patches"].empty() && st["unloadable"].empty()) std::cout << "no patches" << std::endl;
    for (auto &p : st["patches"]) print_patch(p, verbose);
    for (auto &p : st["unloadable"]) {
        std::cout << p.value("name", "") << "\tdisabled (unload with `graft unload`)"
                  << (p.value("forced", false) ? ", forced: cannot be unloaded" : "") << std::endl;
    }
    if (!st["refusing"].is_null())
        std::cout << "agent refuses patching: " << st["refusing"].get<std::string>() << std::endl;
    const auto &tr = st["transition"];
    if (tr.is_null()) return;
    std::cout << "transition: '" << tr.value("patch", "") << "' "
              << (tr.value("target", "") == "patched" ? "patching" : "unpatching") << ", "
              << tr.value("elapsed", 0.0) << " s, " << tr["pending"].size() << " thread(s) pending"
              << std::endl;
    for (auto &t : tr["pending"])
        std::cout << "  thread " << t.value("tid", 0) << " (" << t.value("name", "")
                  << "): " << t.value("reason", "") << std::endl;
}
}  // namespace

void add_list(CLI::App &app) {
    for (const char *n : {"list", "status"}) {
        bool verbose = std::string(n) == "status";
        auto *sub = app.add_subcommand(
            n, verbose ? "Patches, objects, functions and the transition" : "Patches in stack order");
        // The options bind to these; the callback owns them, and the callback lives as long as sub.
        auto pid_s = std::make_shared<std::string>();
        auto json = std::make_shared<bool>(false);
        sub->add_option("pid", *pid_s)->required();
        sub->add_flag("--json", *json, "print JSON");
        sub->callback([=] { show(*pid_s, *json, verbose); });
    }
}

}  // namespace graft::cli
