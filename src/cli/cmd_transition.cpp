// graft disable|enable|force PID NAME [--wait] [--timeout SECONDS], or --all NAME: the three requests that
// act on a patch's transition (the kernel's `enabled` and `force` attributes). One shape, three verbs.
#include <cstdlib>
#include <deque>
#include <string>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "cli/every_process.hpp"

namespace graft::cli {
namespace {

// The options of one such subcommand (CLI11 writes into them).
struct TransitionOp {
    std::string op, pid_s, name;
    bool wait = false, all = false, json = false;
    double timeout = 0;
    int jobs = 16;
};

void add_transition_op(CLI::App &app, const char *op, const char *description) {
    // A deque keeps its elements in place as it grows: the app keeps pointers into them.
    static std::deque<TransitionOp> s_ops;
    TransitionOp *o = &s_ops.emplace_back();
    o->op = op;
    auto *sub = app.add_subcommand(op, description);
    sub->add_option("pid", o->pid_s, "the process (with --all: omitted)");
    sub->add_option("name", o->name, "the patch's name");
    sub->add_flag("--wait", o->wait, "wait until the transition completes");
    sub->add_option("--timeout", o->timeout, "with --wait: give up after SECONDS");
    sub->add_flag("--all", o->all, "every process (root: all; others: their own) that has the patch loaded");
    sub->add_option("--jobs", o->jobs, "with --all: how many processes at a time (default 16)");
    sub->add_flag("--json", o->json, "with --all: print the outcome for each process as JSON");
    sub->callback([o] {
        if (!resolve_all_operands(o->op, o->all, &o->pid_s, &o->name)) return;
        auto one = [o](pid_t pid) {
            request(pid, {{"op", o->op}, {"name", o->name}}, o->op);
            if (o->wait)
                if (int rc = wait_transition(pid, o->name, o->op, o->timeout, o->all); rc != 0) std::exit(rc);
        };
        if (!o->all) {
            one(parse_pid(o->pid_s));
            std::exit(0);
        }
        const char *done = o->op == "disable" ? "disabled" : o->op == "enable" ? "enabled" : "forced";
        std::exit(report_per_process(o->op + " --all", done,
                                     run_per_process(processes_with_patch(o->name, o->op), o->jobs, one), {},
                                     o->json));
    });
}

}  // namespace

void add_disable(CLI::App &app) {
    add_transition_op(app, "disable", "Disable a patch (echo 0 > enabled): reverses a patching transition");
}

void add_enable(CLI::App &app) {
    add_transition_op(app, "enable", "Re-enable a patch in an unpatching transition (reverses it)");
}

void add_force(CLI::App &app) {
    add_transition_op(app, "force", "Force the transition of a patch to complete (echo 1 > force)");
}

}  // namespace graft::cli
