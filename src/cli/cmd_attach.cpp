// graft attach PID [--json]: put the agent into a process started without `graft run`.
#include <iostream>

#include "cli/attach.hpp"
#include "cli/client.hpp"
#include "cli/commands.hpp"

namespace graft::cli {

void attach_if_needed(pid_t pid) {
    // Only where nobody listens: a socket held by another process is refused by the request.
    if (probe_agent(pid, nullptr) == AgentSocket::kNobody) attach_agent(pid);
}

void add_attach(CLI::App &app) {
    auto *sub = app.add_subcommand("attach", "Load the agent into a process started without graft");
    static std::string pid_s;
    static bool json = false;
    sub->add_option("pid", pid_s)->required();
    sub->add_flag("--json", json, "print what the attach did as JSON (the thread borrowed, how long)");
    sub->callback([] {
        pid_t pid = parse_pid(pid_s);
        AttachReport r = attach_agent(pid);
        if (json) {
            std::cout << nlohmann::json{{"pid", pid},
                                        {"already", r.already},
                                        {"borrowed_tid", r.borrowed_tid},
                                        {"borrowed", r.borrowed_how},
                                        {"held_us", r.held_us},
                                        {"stop_wait_us", r.stop_wait_us},
                                        {"total_ms", r.total_ms},
                                        {"detour_ms", r.detour_ms},
                                        {"threads_tried", r.threads_tried},
                                        {"phases_ms",
                                         {{"checks", r.checks_ms},
                                          {"libc", r.libc_ms},
                                          {"stack", r.stack_ms},
                                          {"borrow", r.borrow_ms},
                                          {"detour", r.detour_ms},
                                          {"ready", r.ready_ms}}}}
                      << std::endl;
        } else if (r.already) {
            std::cout << "graft: " << pid << ": the agent is already loaded; nothing to do" << std::endl;
        } else {
            std::cout << "graft: " << pid << ": agent loaded (thread " << r.borrowed_tid << ", "
                      << r.borrowed_how << ", held " << static_cast<long>(r.held_us) << " us)" << std::endl;
        }
    });
}

}  // namespace graft::cli
