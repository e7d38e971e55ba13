// graft threads PID [--json]: per thread: tid, name, patch state (-1/0/1), pending
// (/proc/<pid>/task/<tid>/patch_state).
#include <iostream>

#include "cli/client.hpp"
#include "cli/commands.hpp"

namespace graft::cli {

void add_threads(CLI::App &app) {
    auto *sub = app.add_subcommand("threads", "Per-thread patch state");
    static std::string pid_s;
    static bool json = false;
    sub->add_option("pid", pid_s)->required();
    sub->add_flag("--json", json, "print JSON");
    sub->callback([] {
        auto r = request(parse_pid(pid_s), {{"op", "threads"}}, "threads");
        if (json) {
            std::cout << r["threads"].dump(2) << std::endl;
            return;
        }
        std::cout << "TID\tNAME\tSTATE\tPENDING\tREASON" << std::endl;
        for (auto &t : r["threads"])
            std::cout << t.value("tid", 0) << "\t" << t.value("name", "") << "\t"
                      << t.value("patch_state", -1) << "\t" << (t.value("pending", false) ? 1 : 0) << "\t"
                      << t.value("reason", "") << std::endl;
    });
}

}  // namespace graft::cli
