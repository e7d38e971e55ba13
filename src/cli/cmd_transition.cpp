// graft disable|enable|force PID NAME [--wait] [--timeout SECONDS]: the three requests that act on
// a patch's transition (the kernel's `enabled` and `force` attributes). One shape, three verbs.
#include <cstdlib>
#include <deque>
#include <string>

#include "cli/client.hpp"
#include "cli/commands.hpp"

namespace graft::cli {
namespace {

// The options of one such subcommand (CLI11 writes into them).
struct TransitionOp {
    std::string op, pid_s, name;
    bool wait = false;
    double timeout = 0;
};

void add_transition_op(CLI::App &app, const char *op, const char *description) {
    // A deque keeps its elements in place as it grows: the app keeps pointers into them.
    static std::deque<TransitionOp> s_ops;
    TransitionOp *o = &s_ops.emplace_back();
    o->op = op;
    auto *sub = app.add_subcommand(op, description);
    sub->add_option("pid", o->pid_s)->required();
    sub->add_option("name", o->name, "the patch's name")->required();
    sub->add_flag("--wait", o->wait, "wait until the transition completes");
    sub->add_option("--timeout", o->timeout, "with --wait: give up after SECONDS");
    sub->callback([o] {
        pid_t pid = parse_pid(o->pid_s);
        request(pid, {{"op", o->op}, {"name", o->name}}, o->op);
        if (o->wait) std::exit(wait_transition(pid, o->name, o->op, o->timeout, false));
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
