// The agent's control server and worker thread (the kernel's sysfs interface plus
// klp_transition_work): it answers `graft` requests and retries the transition in progress.
// Who may control the process, and how clients are served without one delaying another: see
// "Security" in docs/design.md.
#pragma once
#include <string>

namespace graft {
// `first_step` (may be null) runs on the worker before it serves anyone, with the core mutex
// held: what start-up needs that can wait while the thread that started the agent goes back to
// its work (under attach, a borrowed thread). If it fails, the agent refuses every operation.
bool control_start(std::string *why, bool (*first_step)(std::string *why) = nullptr);
// In a fork() child: drop the parent's socket and clients, listen under the child's pid, start a
// worker.
bool control_restart_in_child(std::string *why);
}  // namespace graft
