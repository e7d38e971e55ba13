// Objects coming and going without LD_AUDIT: the dynamic loader's debugger interface.
//
// ld.so calls _dl_debug_state(), an empty function kept for debuggers, each time it changes its
// lists, after setting the namespace's r_debug.r_state: RT_ADD before a dlopen maps objects,
// RT_CONSISTENT once it has mapped them (before it relocates them and runs their constructors),
// RT_DELETE once a dlclose has run the destructors of the objects it removes, RT_CONSISTENT again
// once they are unmapped. gdb puts a breakpoint there; graft, inside the process, puts a jump to
// its handler (docs/design.md §4.11), which at each RT_CONSISTENT compares the loader's lists
// with the live objects: a new object is COMING, at the audit module's point; a live object that
// is no longer listed is GOING, later than under the audit module: its code is unmapped by then
// (the unloading thread holds the core mutex from RT_DELETE to RT_CONSISTENT, so no patch
// operation sees it half gone), which means a patch's unpatch callbacks for it must not touch its
// data (docs/limitations.md).
#pragma once
#include <string>

namespace graft {

// Installs the hook; false (with *why) if ld.so's _dl_debug_state is not the one-byte function
// this relies on, or was changed by another tool. Called once, from object_events_init().
bool loader_watch_start(std::string *why);

}  // namespace graft
