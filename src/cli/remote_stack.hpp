// The frames of a stopped thread of another process, found with the call-frame information of
// its objects (libdw, which reads the files the process maps) and its stack read through
// /proc/PID/mem. `graft attach` uses it to see what a thread it might borrow was doing: which C
// library function the program called, and whether the dynamic loader is on the stack.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <vector>

struct Dwfl;

namespace graft::cli {

class RemoteStack {
  public:
    // `mem_fd`: the process's /proc/PID/mem, open for reading; not owned. Reads every object's
    // CFI (milliseconds): make it before stopping a thread.
    RemoteStack(pid_t pid, int mem_fd);
    ~RemoteStack();
    RemoteStack(const RemoteStack &) = delete;
    RemoteStack &operator=(const RemoteStack &) = delete;

    // The pcs of the thread's frames, innermost first, from its registers: the first is `pc`
    // itself, each next a return address. At most `max`; the walk ends early where the CFI does
    // (no CFI, a rule it cannot follow, an unreadable stack, the thread's root).
    std::vector<uint64_t> walk(uint64_t pc, uint64_t sp, uint64_t bp, size_t max) const;

  private:
    int mem_fd_;
    Dwfl *dwfl_ = nullptr;  // the process's modules as /proc/PID/maps lists them; null if unreadable
};

}  // namespace graft::cli
