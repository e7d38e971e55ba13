// graft load PID PATCH.so [--symbols FILE]... [--no-wait] [--timeout SECONDS]   (insmod)
// graft load --all PATCH.so [--symbols FILE]... [--jobs N] [--json] [--no-wait] [--timeout SECONDS]
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "cli/every_process.hpp"
#include "cli/target_match.hpp"
#include "cli/target_root.hpp"

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

namespace {

// The options of `graft load` (CLI11 writes into them).
struct LoadOptions {
    std::string pid_s, path;
    std::vector<std::string> symbols;  // absolute paths
    bool no_wait = false, all = false, json = false;
    double timeout = 0;
    int jobs = 16;
};

// Loads the patch at `abs` into `pid` (attaching first if needed) and waits for its transition
// unless no_wait; `quiet`: no progress lines. Dies with the reason if it cannot.
void load_one(pid_t pid, const std::string &abs, const LoadOptions &o, bool quiet) {
    attach_if_needed(pid);
    bool connected = false;
    // The agent opens the files by these paths in its own mount namespace (a container's), and
    // reads them during the request only (the patch into a sealed copy of its own).
    std::vector<std::string> copies;
    auto in_target = [&](const std::string &f) {
        bool copied = false;
        std::string p = path_for_target(pid, f, "load", &copied);
        if (copied) copies.push_back(p);
        return p;
    };
    nlohmann::json req = {{"op", "load"}, {"path", in_target(abs)}};
    if (!o.symbols.empty()) {
        std::vector<std::string> symbols;
        for (const auto &f : o.symbols) symbols.push_back(in_target(f));
        req["symbols"] = symbols;
    }
    auto reply = request_raw(pid, req, "load", &connected);
    for (const auto &c : copies) remove_target_copy(pid, c);
    if (!reply.value("ok", false)) {
        const std::string e = reply.value("error", std::string("failed"));
        // --all: a process that has the patch already is skipped, not failed (runs can repeat).
        if (quiet && e.find("is already loaded") != std::string::npos) {
            std::cerr << "graft: load: " << e << std::endl;
            std::exit(kSkipExit);
        }
        die("load", e + ": " + errno_text(reply.value("errno", EIO)));
    }
    if (!quiet && reply.contains("notes") && reply["notes"].is_array())
        for (const auto &n : reply["notes"])
            if (n.is_string()) std::cout << "graft: " << n.get<std::string>() << std::endl;
    // The agent names the patch it loaded. An older agent did not: then it is the newest
    // entry of the list (asking costs a round trip that waits for the first try).
    std::string name = reply.value("patch", "");
    if (name.empty()) {
        auto st = request(pid, {{"op", "status"}}, "load");
        for (auto &p : st["patches"]) name = p.value("name", "");
        if (!st["transition"].is_null()) name = st["transition"].value("patch", name);
    }
    if (o.no_wait) {
        if (!quiet) std::cout << "graft: '" << name << "': patching transition started" << std::endl;
        return;
    }
    if (int rc = wait_transition(pid, name, "load", o.timeout, quiet); rc != 0) std::exit(rc);
}

// graft load --all PATCH.so: every process that runs the objects the patch records, with the
// build-ids it records.
int load_all(const std::string &abs, const LoadOptions &o) {
    std::vector<PatchTarget> targets;
    std::string err;
    if (!read_patch_targets(abs, &targets, &err)) die("load --all", err + ": " + errno_text(ENOEXEC));
    if (targets.empty())
        die("load --all",
            "patch '" + abs +
                "' records no target build-id; --all picks processes by build-id (build the patch with "
                "`graft build --target BINARY_OR_SO`): " +
                errno_text(EINVAL));
    TargetMatcher matcher(targets);
    std::vector<ProcessRef> chosen;
    std::vector<ProcessResult> other_builds;
    for (const auto &p : controllable_processes()) {
        std::string why;
        switch (matcher.match(p.pid, &why)) {
            case Match::kMatches:
                chosen.push_back(p);
                break;
            case Match::kOtherBuild:
                other_builds.push_back({p, Outcome::kSkipped, why, false, {}});
                break;
            case Match::kUnconcerned:
                break;
        }
    }
    auto results = run_per_process(chosen, o.jobs, [&](pid_t pid) { load_one(pid, abs, o, true); });
    return report_per_process("load --all", "applied", results, other_builds, o.json);
}

}  // namespace

void add_load(CLI::App &app) {
    auto *sub = app.add_subcommand("load", "Load a patch into a process and enable it");
    static LoadOptions o;
    sub->add_option("pid", o.pid_s, "the process (with --all: omitted)");
    sub->add_option("patch", o.path, "the patch .so");
    sub->add_option("--symbols", o.symbols,
                    "an unstripped build of a stripped object the patch targets (repeatable); used only "
                    "if it has the object's build-id or identical code and data")
        ->check(CLI::ExistingFile);
    sub->add_flag("--no-wait", o.no_wait, "return once the transition started");
    sub->add_option("--timeout", o.timeout, "give up waiting after SECONDS (the transition keeps running)");
    sub->add_flag("--all", o.all,
                  "every process (root: all; others: their own) that runs the objects the patch was built "
                  "for, matched by build-id; attaches where needed");
    sub->add_option("--jobs", o.jobs, "with --all: how many processes at a time (default 16)");
    sub->add_flag("--json", o.json, "with --all: print the outcome for each process as JSON");
    sub->callback([] {
        if (o.all && o.path.empty()) std::swap(o.pid_s, o.path);  // `load --all PATCH.so`
        if (o.all && !o.pid_s.empty())
            die("load", "with --all, name only the patch, not a process: " + errno_text(EINVAL), 2);
        if (o.path.empty())
            die("load", "name a process and a patch (or --all and a patch): " + errno_text(EINVAL), 2);
        char abs[PATH_MAX];
        if (!realpath(o.path.c_str(), abs)) die("load", "'" + o.path + "': " + errno_text(errno));
        for (auto &f : o.symbols) {
            char sym[PATH_MAX];
            if (!realpath(f.c_str(), sym)) die("load", "symbols file '" + f + "': " + errno_text(errno));
            f = sym;
        }
        if (o.all) std::exit(load_all(abs, o));
        load_one(parse_pid(o.pid_s), abs, o, false);
        std::exit(0);
    });
}

}  // namespace graft::cli
