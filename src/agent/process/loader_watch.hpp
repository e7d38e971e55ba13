// Objects coming and going without LD_AUDIT: the dynamic loader's debugger interface.
//
// ld.so calls _dl_debug_state(), an empty function kept for debuggers, each time it changes its
// lists, after setting the namespace's r_debug.r_state: RT_ADD before a dlopen maps objects,
// RT_CONSISTENT once it has mapped them (before it relocates them and runs their constructors),
// RT_DELETE once a dlclose has run the destructors of the objects it removes, RT_CONSISTENT again
// once they are unmapped. gdb puts a breakpoint there; graft, inside the process, puts a jump to
// its handler (docs/design.md §4.11), which at each RT_CONSISTENT compares the loader's lists
// with the live objects: a new object is COMING, at the audit module's point. At RT_DELETE the
// objects whose destructors graft saw finish (fini_watch.hpp: those a patch is bound to) are
// GOING, at the audit module's point too; a live object that is no longer listed at the next
// RT_CONSISTENT is GOING then, later than under the audit module: its code is unmapped by then
// (the unloading thread holds the core mutex from RT_DELETE to RT_CONSISTENT, so no patch
// operation sees it half gone), which means a patch's unpatch callbacks for it must not touch its
// data (docs/limitations.md).
#pragma once
#include <string>

namespace graft {

// Installs the hook; false (with *why) if ld.so's _dl_debug_state is not the one-byte function
// this relies on, or was changed by another tool. Called once, from object_events_init(), without
// the core mutex (it asks the loader for the function: lock_order.hpp).
bool loader_watch_start(std::string *why);

// Core mutex held, hook installed: no dlopen or dlclose is between its first event and its last
// (every namespace's r_state is RT_CONSISTENT). While the core mutex stays held after this was
// true, no object can be unmapped or its link_map freed (an unload stops at its RT_DELETE for the
// core mutex), so the loader's lists may be walked and the objects' code read and written. A
// dlclose that began before the hook still unmaps: it is seen here as RT_DELETE.
bool loader_quiet();

// With loader_quiet(): every object of every namespace, as live (object_adopt).
void loader_adopt_all();

}  // namespace graft
