// Every lock the agent's code runs under, in the one order they nest in: a thread holding one of
// them takes only locks further down this list. fork.cpp takes 1-5 in this order before fork()
// (so that the child inherits none held by a thread it does not have); each lock's declaration
// says what it protects and who may skip it.
//
//  0. The dynamic linker's lock (glibc's, not graft's). Held by the loader around the object
//     events (object_events.hpp), which then take the core mutex. So nothing holding a lock
//     below may call into the dynamic linker (dlopen, dlclose, dlsym, dladdr) or make a thread's
//     first access to a library's thread-local storage. dl_iterate_phdr takes another linker
//     lock that the loader never holds around these events: it is allowed under any of them.
//     graft never takes it itself, so fork.cpp does not either: a child forked while another
//     thread was inside dlopen inherits it as glibc leaves it. Without the audit module, a
//     thread inside dlclose holds the core mutex from the loader's RT_DELETE to its RT_CONSISTENT
//     (loader_watch.cpp) while ld.so unmaps, frees and takes its list lock: all of that is below
//     the core mutex for every other holder too.
//  1. g_core_mutex (core.hpp): patches, objects, the transition, per-object state; recursive.
//  2. g_shadow_mutex (shadow.hpp): shadow variable writers; graft_shadow_get never takes it.
//  3. g_grace_period_mutex (thread_state.hpp): one grace period at a time; readers never take it.
//  4. g_sym_cache_mutex (symbols.hpp): the symbol cache of symbols_of().
//  5. g_log_mutex (log.hpp): the log ring and GRAFT_LOG_FILE; a leaf.
//
// Not locks, by design: the selector, read-side sections and the transition signal's handler
// (async-signal-safe, on the call path of patched functions) take none of these.
#pragma once
