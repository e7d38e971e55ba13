// One function per subcommand; each registers itself on the CLI11 app (src/cli/cmd_*.cpp).
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace graft::cli {
void add_flags(CLI::App &app);
void add_build(CLI::App &app);
// Arguments after `--` on a `graft build` command line, passed to the compiler as they are.
std::vector<std::string> &build_passthrough();
void add_run(CLI::App &app);
[[noreturn]] void run_program(const std::vector<std::string> &argv);
void add_ps(CLI::App &app);
void add_load(CLI::App &app);
void add_disable(CLI::App &app);
void add_enable(CLI::App &app);
void add_force(CLI::App &app);
void add_unload(CLI::App &app);
void add_list(CLI::App &app);
void add_threads(CLI::App &app);
void add_log(CLI::App &app);
void add_attach(CLI::App &app);
void add_diff(CLI::App &app);
// Attaches the agent to `pid` (one line on stderr) unless it answers already: `graft load`.
void attach_if_needed(pid_t pid);
// Shared by load/disable/enable/force: waits for the transition of `name` to end.
int wait_transition(pid_t pid, const std::string &name, const std::string &what, double timeout, bool quiet);
}  // namespace graft::cli
