// graft unload PID NAME   (rmmod)
#include "cli/client.hpp"
#include "cli/commands.hpp"

namespace graft::cli {

void add_unload(CLI::App &app) {
    auto *sub = app.add_subcommand("unload", "Remove a patch that finished unpatching or was replaced");
    static std::string pid_s, name;
    sub->add_option("pid", pid_s)->required();
    sub->add_option("name", name, "the patch's name")->required();
    sub->callback([] { request(parse_pid(pid_s), {{"op", "unload"}, {"name", name}}, "unload"); });
}

}  // namespace graft::cli
