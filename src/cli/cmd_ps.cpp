// graft ps [--all] [--json]: the processes of the caller's user (root: every user's) whose agent
// answers; --all adds each one's patches and their state.
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "cli/every_process.hpp"

namespace graft::cli {
namespace {

// One answering process, as its job reports it: "pid" and, with patches, what `status` says.
nlohmann::json describe(const ProcessRef &p, const nlohmann::json &status, bool with_patches) {
    nlohmann::json j{{"pid", p.pid}, {"comm", p.comm}};
    if (!with_patches) return j;
    nlohmann::json patches = nlohmann::json::array();
    const auto &tr = status["transition"];
    for (auto &pt : status["patches"]) {
        std::string name = pt.value("name", "");
        std::string state = pt.value("enabled", false) ? "enabled" : "disabled";
        if (!tr.is_null() && tr.value("patch", "") == name)
            state = tr.value("target", "") == "patched" ? "patching" : "unpatching";
        patches.push_back({{"name", name}, {"state", state}});
    }
    for (auto &pt : status["unloadable"])
        patches.push_back({{"name", pt.value("name", "")}, {"state", "disabled"}});
    j["patches"] = patches;
    return j;
}

}  // namespace

void add_ps(CLI::App &app) {
    auto *sub = app.add_subcommand("ps", "List the processes whose graft agent answers");
    static bool json = false, all = false;
    sub->add_flag("--json", json, "print JSON");
    sub->add_flag("--all", all, "also list each process's patches and their state");
    sub->callback([] {
        // Each process is asked in a child of its own: an agent that does not answer is simply
        // not listed, and a slow one does not hold up the others. The child prints the status.
        auto procs = agent_processes();
        nlohmann::json out = nlohmann::json::array();
        for (const auto &r : run_per_process(procs, 8, [](pid_t pid) {
                 bool connected = false;
                 auto j = request_raw(pid, {{"op", all ? "status" : "ping"}}, "ps", &connected);
                 if (!j.value("ok", false)) std::exit(1);
                 std::cout << j.dump() << std::endl;
             })) {
            if (r.outcome != Outcome::kDone) continue;
            out.push_back(describe(r.process, nlohmann::json::parse(r.output, nullptr, false), all));
        }
        if (json) {
            std::cout << out.dump(2) << std::endl;
            return;
        }
        std::cout << (all ? "PID\tCOMMAND\tPATCHES" : "PID\tCOMMAND") << std::endl;
        for (auto &p : out) {
            std::cout << p["pid"].get<int>() << "\t" << p["comm"].get<std::string>();
            if (all) {
                const char *sep = "\t";
                for (auto &pt : p["patches"]) {
                    std::cout << sep << pt["name"].get<std::string>() << " ("
                              << pt["state"].get<std::string>() << ")";
                    sep = ", ";
                }
                if (p["patches"].empty()) std::cout << "\t-";
            }
            std::cout << std::endl;
        }
    });
}

}  // namespace graft::cli
