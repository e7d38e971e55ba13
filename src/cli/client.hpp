// What every `graft` subcommand shares: talking to an agent, and failing the one documented way
// (`graft: <what>: <why>` on stderr, non-zero exit).
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace graft::cli {

[[noreturn]] void die(const std::string &what, const std::string &why, int code = 1);
// Sends one request to the agent of `pid`; dies with a clear line if it cannot, or if the agent
// answers with an error (`what` names the operation).
nlohmann::json request(pid_t pid, const nlohmann::json &req, const std::string &what);
// Like request() but returns the error answer instead of dying on it.
nlohmann::json request_raw(pid_t pid, const nlohmann::json &req, const std::string &what, bool *connected);
// Like request_raw, with descriptors passed after the proof of access, in order (task_files).
nlohmann::json request_with_fds(pid_t pid, const nlohmann::json &req, const std::vector<int> &fds,
                                const std::string &what, bool *connected);
// Who holds the control socket of `pid`: its agent, nobody, or another process (*holder).
enum class AgentSocket { kAnswers, kNobody, kForeign };
AgentSocket probe_agent(pid_t pid, pid_t *holder);
// Whether the agent of `pid` listens on its control socket (the socket's peer is `pid` itself).
bool agent_answers(pid_t pid);
pid_t parse_pid(const std::string &s);
std::string errno_text(int err);
// Where libgraft.so and the public headers are, relative to this executable.
std::string agent_path();
// libgraft-audit.so next to the agent (GRAFT_AUDIT overrides; empty if there is none).
std::string audit_path(const std::string &agent);
std::string include_dir();

}  // namespace graft::cli
