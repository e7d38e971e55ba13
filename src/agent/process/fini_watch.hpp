// Which objects a dlclose removes, told while they are still mapped (no audit module).
//
// ld.so's debugger interface says RT_DELETE once a dlclose has run the destructors of the objects
// it removes, before it unmaps them, but not which objects those are (glibc keeps that in private
// link_map bits). The one thing the loader does to exactly those objects before that point is to
// run their destructors, and the last destructor it calls is the object's DT_FINI function (after
// its DT_FINI_ARRAY). So, for each object a patch is bound to, graft points its DT_FINI entry at a
// function of its own that calls the object's `_fini` and then records which thread ran it; at
// that thread's RT_DELETE the recorded objects are the ones going, and their GOING is reported
// then, as the audit module reports it under `graft run` (docs/design.md §4.11). The routing
// stays while the object is loaded (it costs the object's `_fini` one call), also after a patch
// that bound it failed or was unloaded.
//
// The functions are a fixed set compiled into the agent (one template instance per slot), so no
// code is generated at run time (a process under MDWE could not map it). An object without a
// DT_FINI entry, one in another link-map namespace that the agent has not seen through its
// link_map, one ld.so may still be relocating, or one beyond the slots is not watched: its GOING
// is seen after the unmap (docs/limitations.md).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace graft {

// Core mutex held, without the audit module: routes the DT_FINI of the object whose load bias is
// `base` through a slot of graft's. `dynamic`: its dynamic section as its link_map gives it, or
// nullptr to find it with dl_iterate_phdr (which lists the agent's namespace only). `loading`:
// the caller is the loading thread at the object's COMING (before ld.so relocates it); elsewhere
// an object whose dynamic section is still writable is not watched (ld.so may be relocating it).
// True if it is watched now (or was already); false (with *why) if it cannot be.
bool fini_watch(uintptr_t base, void *dynamic, bool loading, std::string *why);
// Core mutex held, at RT_DELETE: the watched objects whose DT_FINI this thread has run.
std::vector<uintptr_t> fini_watch_finished();
// At any other loader event: this thread's marks are stale (a dlclose that ended before its
// RT_DELETE, or a destructor's own dlopen in between): dropped. `every_thread`: a fork() child's
// (its parent's threads' marks).
void fini_watch_clear_marks(bool every_thread = false);
// Core mutex held: the load biases of the watched objects.
std::vector<uintptr_t> fini_watch_bases();
// Core mutex held: the object at `base` is unmapped (the loader lists it no more); its slot may
// serve another object.
void fini_watch_forget(uintptr_t base);

}  // namespace graft
