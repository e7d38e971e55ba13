// Whether a process's seccomp filters let the agent start and patch. A filter may kill the whole
// process at a system call it does not expect (SECCOMP_RET_KILL_PROCESS): the agent's calls are
// run through the filters, as the kernel runs them, before any of the process changes.
#pragma once
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace graft::cli {

using SeccompFilter = std::vector<sock_filter>;

// The action the kernel would take for `call` under `filters` (all of them run; the most
// restrictive action wins): SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | errno, ... A malformed
// program (a jump or a memory slot out of range) counts as killing the process, as the kernel
// would never have installed it.
uint32_t seccomp_action(const std::vector<SeccompFilter> &filters, const seccomp_data &call);

// For the agent's calls (those its start-up and a patch make, with the arguments filters look
// at): "" if every one is allowed (or only logged), else a sentence naming the first call a
// filter refuses and what it would do.
std::string seccomp_refusal(const std::vector<SeccompFilter> &filters);

// The filters of ptrace-stopped thread `tid` (PTRACE_SECCOMP_GET_FILTER; needs CAP_SYS_ADMIN).
// False with *err if they cannot be read.
bool read_seccomp_filters(pid_t tid, std::vector<SeccompFilter> *out, std::string *err);

}  // namespace graft::cli
