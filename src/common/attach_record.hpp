// What `graft attach` leaves for the agent on the borrowed thread's stack, next to the signal
// frame it returns through (docs/design.md §4.13): the thread's errno when it was stopped, which
// dlopen overwrites (its library search fails with ENOENT on the way), and where the frame's
// return address is, so that the agent can have errno put back just before the frame returns.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <cstring>

namespace graft::attach {

struct Record {
    char magic[16];
    uint64_t return_slot;  // address of the return address dlopen returns through
    int32_t saved_errno;
    int32_t tid;     // the borrowed thread
    uint64_t check;  // ties the fields together: a stale or foreign match fails it
};

inline constexpr char kMagic[16] = "graft-attach-v1";

inline uint64_t record_check(const Record &r) {
    return r.return_slot * 0x9e3779b97f4a7c15ull ^ static_cast<uint32_t>(r.saved_errno) ^
           (static_cast<uint64_t>(static_cast<uint32_t>(r.tid)) << 32);
}

inline Record make_record(uint64_t return_slot, int saved_errno, pid_t tid) {
    Record r{};
    std::memcpy(r.magic, kMagic, sizeof r.magic);
    r.return_slot = return_slot;
    r.saved_errno = saved_errno;
    r.tid = tid;
    r.check = record_check(r);
    return r;
}

}  // namespace graft::attach
