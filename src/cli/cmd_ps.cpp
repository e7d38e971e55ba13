// graft ps: the processes of the caller's user whose agent answers.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <set>

#include "cli/client.hpp"
#include "cli/commands.hpp"

namespace graft::cli {

void add_ps(CLI::App &app) {
    auto *sub = app.add_subcommand("ps", "List the processes whose graft agent answers");
    static bool json = false;
    sub->add_flag("--json", json, "print JSON");
    sub->callback([] {
        // Agents listen on "@graft/<pid>" in the abstract namespace.
        std::ifstream f("/proc/net/unix");
        std::string line;
        std::set<pid_t> pids;
        while (std::getline(f, line)) {
            auto k = line.find("@graft/");
            if (k == std::string::npos) continue;
            pids.insert(static_cast<pid_t>(std::atoi(line.c_str() + k + 7)));
        }
        nlohmann::json out = nlohmann::json::array();
        for (pid_t pid : pids) {
            struct stat st {};
            std::string proc = "/proc/" + std::to_string(pid);
            if (stat(proc.c_str(), &st) != 0 || (getuid() != 0 && st.st_uid != getuid())) continue;
            std::string comm;
            std::ifstream(proc + "/comm") >> comm;
            bool connected = false;
            // An agent that does not answer is simply not listed.
            pid_t child = fork();
            if (child == 0) {
                auto j = request_raw(pid, {{"op", "ping"}}, "ps", &connected);
                _exit(j.value("ok", false) ? 0 : 1);
            }
            int status = 0;
            waitpid(child, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) continue;
            out.push_back({{"pid", pid}, {"comm", comm}});
        }
        if (json) {
            std::cout << out.dump(2) << std::endl;
            return;
        }
        std::cout << "PID\tCOMMAND" << std::endl;
        for (auto &p : out)
            std::cout << p["pid"].get<int>() << "\t" << p["comm"].get<std::string>() << std::endl;
    });
}

}  // namespace graft::cli
