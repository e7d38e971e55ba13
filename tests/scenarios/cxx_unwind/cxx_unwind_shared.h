/* cxx_unwind: what the program and its patch (tests/scenarios/cxx_unwind/cxx_unwind_fix.cpp) share. */
#pragma once
#include <atomic>

/* One thread sent into blocker(): it blocks reading `fd` until it is cancelled. */
struct BlockSlot {
    int id;
    int fd;                     /* the read end of a pipe nobody writes */
    std::atomic<int> version;   /* which blocker() it entered: 1 or 2 */
    std::atomic<int> dtor;      /* version of the blocker() whose local object was destroyed */
    std::atomic<int> handler;   /* the thread's pthread_cleanup handler ran */
};

/* Counters of the program, updated by both versions (the patch reaches them with GRAFT_REF). */
struct UnwindCounters {
    std::atomic<long> guard_dtors[3];  /* [version]: locals destroyed by unwinding */
};
