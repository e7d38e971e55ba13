// graft run [--] PROGRAM [ARGS...]: exec the program with the agent preloaded. exec, not fork:
// stdio, signals, the pid and the exit status are the program's own.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "cli/client.hpp"
#include "cli/commands.hpp"

namespace graft::cli {

void add_run(CLI::App &app) {
    auto *sub = app.add_subcommand("run", "Run a program with the graft agent loaded");
    // Everything after `run` (and an optional `--`) is the program's command line, untouched.
    sub->prefix_command();
    sub->callback([sub] {
        std::vector<std::string> argv_ = sub->remaining();
        if (!argv_.empty() && argv_[0] == "--") argv_.erase(argv_.begin());
        run_program(argv_);
    });
}

void run_program(const std::vector<std::string> &argv_) {
    {
        if (argv_.empty()) die("run", "no program to run: " + errno_text(EINVAL), 2);
        std::string agent = agent_path();
        const char *old = std::getenv("LD_PRELOAD");
        std::string pre = old && *old ? std::string(old) + ":" + agent : agent;
        setenv("LD_PRELOAD", pre.c_str(), 1);
        // The audit module next to the agent tells it about objects coming and going (dlopen,
        // dlclose); without it patches apply only to the objects loaded when they are enabled.
        std::string audit = audit_path(agent);
        if (!audit.empty()) {
            const char *oa = std::getenv("LD_AUDIT");
            std::string au = oa && *oa ? std::string(oa) + ":" + audit : audit;
            setenv("LD_AUDIT", au.c_str(), 1);
        }
        std::vector<char *> args;
        for (auto &a : argv_) args.push_back(const_cast<char *>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        die("run", "cannot run '" + argv_[0] + "': " + errno_text(errno), 127);
    }
}

}  // namespace graft::cli
