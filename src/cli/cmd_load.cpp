// graft load PID PATCH.so [--no-wait] [--timeout SECONDS]   (insmod)
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/client.hpp"
#include "cli/commands.hpp"

namespace graft::cli {

int wait_transition(pid_t pid, const std::string &name, const std::string &what, double timeout, bool quiet) {
    auto start = std::chrono::steady_clock::now();
    int last_pending = -1;
    std::string last_target;
    for (;;) {
        auto st = request(pid, {{"op", "status"}}, what);
        const auto &tr = st["transition"];
        if (tr.is_null() || tr.value("patch", "") != name) {
            bool enabled = false, listed = false;
            for (auto &p : st["patches"])
                if (p.value("name", "") == name) {
                    listed = true;
                    enabled = p.value("enabled", false);
                }
            if (!quiet)
                std::cout << "graft: '" << name << "': " << (listed && enabled ? "patching" : "unpatching")
                          << " complete" << std::endl;
            return 0;
        }
        int pending = static_cast<int>(tr["pending"].size());
        std::string target = tr.value("target", "");
        if (!quiet && (pending != last_pending || target != last_target)) {
            std::cout << "graft: '" << name << "': " << (target == "patched" ? "patching" : "unpatching")
                      << " transition: " << pending << " thread" << (pending == 1 ? "" : "s") << " pending";
            if (pending > 0 && pending <= 3) {
                const char *sep = " (";
                for (auto &t : tr["pending"]) {
                    std::cout << sep << t.value("tid", 0) << " " << t.value("name", "") << ": "
                              << t.value("reason", "");
                    sep = "; ";
                }
                std::cout << ")";
            }
            std::cout << std::endl;
            last_pending = pending;
            last_target = target;
        }
        double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (timeout > 0 && el >= timeout) {
            for (auto &t : tr["pending"])
                std::cerr << "graft:   thread " << t.value("tid", 0) << " (" << t.value("name", "")
                          << "): " << t.value("reason", "") << std::endl;
            die(what, "patch '" + name + "': transition still pending after " + std::to_string(timeout) +
                          " s (reverse it with `graft " +
                          (tr.value("target", "") == "patched" ? "disable" : "enable") +
                          "`, or `graft force` it): " + errno_text(ETIME));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(el < 0.1 ? 2 : 20));
    }
}

void add_load(CLI::App &app) {
    auto *sub = app.add_subcommand("load", "Load a patch into a process and enable it");
    static std::string pid_s, path;
    static bool no_wait = false;
    static double timeout = 0;
    sub->add_option("pid", pid_s)->required();
    sub->add_option("patch", path, "the patch .so")->required();
    sub->add_flag("--no-wait", no_wait, "return once the transition started");
    sub->add_option("--timeout", timeout, "give up waiting after SECONDS (the transition keeps running)");
    sub->callback([] {
        pid_t pid = parse_pid(pid_s);
        char abs[PATH_MAX];
        if (!realpath(path.c_str(), abs)) die("load", "'" + path + "': " + errno_text(errno));
        attach_if_needed(pid);
        auto reply = request(pid, {{"op", "load"}, {"path", abs}}, "load");
        // The agent names the patch it loaded. An older agent did not: then it is the newest
        // entry of the list (asking costs a round trip that waits for the first try).
        std::string name = reply.value("patch", "");
        if (name.empty()) {
            auto st = request(pid, {{"op", "status"}}, "load");
            for (auto &p : st["patches"]) name = p.value("name", "");
            if (!st["transition"].is_null()) name = st["transition"].value("patch", name);
        }
        if (no_wait) {
            std::cout << "graft: '" << name << "': patching transition started" << std::endl;
            return;
        }
        std::exit(wait_transition(pid, name, "load", timeout, false));
    });
}

}  // namespace graft::cli
