// graft disable PID NAME [--wait] [--timeout SECONDS]
#include <cstdlib>
#include <iostream>

#include "cli/client.hpp"
#include "cli/commands.hpp"

namespace graft::cli {

void add_disable(CLI::App &app) {
    auto *sub =
        app.add_subcommand("disable", "Disable a patch (echo 0 > enabled): reverses a patching transition");
    static std::string pid_s, name;
    static bool wait = false;
    static double timeout = 0;
    sub->add_option("pid", pid_s)->required();
    sub->add_option("name", name, "the patch's name")->required();
    sub->add_flag("--wait", wait, "wait until the transition completes");
    sub->add_option("--timeout", timeout, "with --wait: give up after SECONDS");
    sub->callback([] {
        pid_t pid = parse_pid(pid_s);
        request(pid, {{"op", "disable"}, {"name", name}}, "disable");
        if (wait) std::exit(wait_transition(pid, name, "disable", timeout, false));
    });
}

}  // namespace graft::cli
