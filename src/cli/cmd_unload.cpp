// graft unload PID NAME   (rmmod); graft unload --all NAME
#include <cstdlib>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "cli/every_process.hpp"

namespace graft::cli {

void add_unload(CLI::App &app) {
    auto *sub = app.add_subcommand("unload", "Remove a patch that finished unpatching or was replaced");
    static std::string pid_s, name;
    static bool all = false, json = false;
    static int jobs = 16;
    sub->add_option("pid", pid_s, "the process (with --all: omitted)");
    sub->add_option("name", name, "the patch's name");
    sub->add_flag("--all", all, "every process (root: all; others: their own) that has the patch loaded");
    sub->add_option("--jobs", jobs, "with --all: how many processes at a time (default 16)");
    sub->add_flag("--json", json, "with --all: print the outcome for each process as JSON");
    sub->callback([] {
        if (!resolve_all_operands("unload", all, &pid_s, &name)) return;
        auto one = [](pid_t pid) { request(pid, {{"op", "unload"}, {"name", name}}, "unload"); };
        if (!all) return one(parse_pid(pid_s));
        std::exit(report_per_process("unload --all", "unloaded",
                                     run_per_process(processes_with_patch(name, "unload"), jobs, one), {},
                                     json));
    });
}

}  // namespace graft::cli
