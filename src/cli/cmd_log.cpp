// graft log PID [--follow]: the agent's log (the kernel's livepatch dmesg lines).
#include <chrono>
#include <iostream>
#include <thread>

#include "cli/client.hpp"
#include "cli/commands.hpp"

namespace graft::cli {

void add_log(CLI::App &app) {
    auto *sub = app.add_subcommand("log", "Print the agent's log");
    static std::string pid_s;
    static bool follow = false;
    sub->add_option("pid", pid_s)->required();
    sub->add_flag("-f,--follow", follow, "keep printing new lines");
    sub->callback([] {
        pid_t pid = parse_pid(pid_s);
        uint64_t since = 0;
        for (;;) {
            auto r = request(pid, {{"op", "log"}, {"since", since}}, "log");
            for (auto &l : r["lines"]) std::cout << l.get<std::string>() << "\n";
            std::cout.flush();
            since = r.value("next", since);
            if (r.value("more", false)) continue;
            if (!follow) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
}

}  // namespace graft::cli
