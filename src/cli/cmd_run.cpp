// graft run [--] PROGRAM [ARGS...]: exec the program with the agent preloaded. exec, not fork:
// stdio, signals, the pid and the exit status are the program's own.
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "cli/client.hpp"
#include "cli/commands.hpp"

namespace graft::cli {

void add_run(CLI::App &app) {
    auto *sub = app.add_subcommand("run", "Run a program with the graft agent loaded");
    static std::vector<std::string> argv_;
    sub->add_option("program", argv_, "program and its arguments")->required();
    sub->prefix_command();
    sub->callback([sub] {
        for (auto &e : sub->remaining()) argv_.push_back(e);
        std::string agent = agent_path();
        const char *old = std::getenv("LD_PRELOAD");
        std::string pre = old && *old ? std::string(old) + ":" + agent : agent;
        setenv("LD_PRELOAD", pre.c_str(), 1);
        std::vector<char *> args;
        for (auto &a : argv_) args.push_back(const_cast<char *>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        die("run", "cannot run '" + argv_[0] + "': " + errno_text(errno), 127);
    });
}

}  // namespace graft::cli
