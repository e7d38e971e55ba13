// The `--all` form of a subcommand: the processes it concerns, one job per process run in a
// child of its own (several at a time), and one line per process with a final count.
#pragma once
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace graft::cli {

struct ProcessRef {
    pid_t pid = 0;
    std::string comm;
};

// Every process the caller may control: its own (root: every one), graft itself excepted.
std::vector<ProcessRef> controllable_processes();
// Those of them whose agent listens (on @graft/PID, PID as their own pid namespace names them, in
// their network namespace: containers included).
std::vector<ProcessRef> agent_processes();

// The two operands of `OP PID NAME` / `OP --all NAME` (CLI11 fills the first positional first):
// moves NAME into place for --all, dies with a clear line when one is missing or extra. True.
bool resolve_all_operands(const std::string &op, bool all, std::string *pid_s, std::string *name);
// The processes whose agent has patch `name` loaded (`op` names the subcommand in errors).
std::vector<ProcessRef> processes_with_patch(const std::string &name, const std::string &op);

enum class Outcome { kDone, kSkipped, kFailed };

struct ProcessResult {
    ProcessRef process;
    Outcome outcome = Outcome::kFailed;
    std::string reason;     // skipped or failed: why, one sentence
    bool attached = false;  // the job attached the agent first
    std::string output;     // what the job printed
};

// The exit status of a job that found nothing to do (its last line says why).
constexpr int kSkipExit = 3;

// Runs `job(pid)` for each process in a forked child, `jobs` children at a time, capturing what
// each prints. A child that exits 0 did its work, kSkipExit skipped, anything else failed; its
// last line is the reason.
std::vector<ProcessResult> run_per_process(const std::vector<ProcessRef> &procs, int jobs,
                                           const std::function<void(pid_t)> &job);

// `op` as the user typed it ("load --all"); `done` names a success ("applied"). Prints one line
// per process and the final count (or the JSON document); the exit status: 0 unless one failed.
int report_per_process(const std::string &op, const std::string &done, std::vector<ProcessResult> results,
                       const std::vector<ProcessResult> &skipped_before, bool json);

}  // namespace graft::cli
