// Objects coming and going (the kernel's klp_module_coming / klp_module_going and its
// mod->klp_alive rule; docs/design.md §4.11).
//
// The audit module (src/audit/audit.c) calls graft_object_event() in the loading or unloading
// thread, with the dynamic linker's lock held: COMING once an object is mapped, before it is
// relocated and before its constructors; GOING after its destructors, before it is unmapped.
// Both take the core mutex, so a patch operation happens entirely before or entirely after each
// event. An object is "live" from its COMING event (or from the agent's start) to its GOING
// event; patches bind only to live objects, so a patch enabled while an object is half-way
// through loading is applied by the COMING event, in stack order, and never twice.
//
// Lock order (lock_order.hpp): the dynamic linker's lock, then the core mutex. Nothing holding the core mutex
// may call into the dynamic linker (dlopen, dlclose, dlsym, dladdr): core.cpp does those before taking it or
// after releasing it. Nor may it make a thread's first access to a library's thread-local storage, which may
// take the linker's lock: the worker touches the TLS of the libraries it uses before it first takes the core
// mutex (stack_check_init_worker). dl_iterate_phdr takes another lock, never held by the loader around these
// events, and is allowed (it lists only the agent's own namespace: objects of other namespaces are described
// from their files).
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "agent/process/symbols.hpp"
#include "graft/graft.h"

struct link_map;  // <link.h>

namespace graft {

// At start-up (the agent's constructor, or under attach its worker): every object now mapped is
// live; prepares their entries and attaches to the audit module if the process runs with it.
// The caller makes the entries' new bytes visible to every core (arch::sync_cores()) once the
// process is registered for membarrier. `alone`: no other thread can be running the objects'
// code (the agent's start under `graft run`); false under attach, where only entry changes that
// are safe under running threads are made.
void object_events_init(bool alone);
// True when loads and unloads are reported: by the audit module (libgraft-audit.so, under
// `graft run`), else by the loader's debugger hook (loader_watch.hpp).
bool objects_watched();
// A gate of gcc's `90 90` entry merged while the program's threads ran (attach): before it first
// opens, every thread must be seen off its second byte (apply_routes, wait_threads_outside).
// gate_probed() records that it was. Core mutex.
bool gate_needs_probe(uintptr_t gate);
void gate_probed(uintptr_t gate);
// The events as the loader hook reports them, core mutex held: an object in another namespace
// found at start-up (live, not coming), one coming (mapped, not yet relocated).
void object_adopt(struct link_map *map);
bool object_is_live(uintptr_t base);
void object_coming(struct link_map *map);
// After a change (RT_CONSISTENT): the load biases of every object the loader lists now; a live
// object missing from them is GOING (already unmapped).
void objects_present(const std::set<uintptr_t> &bases);
// At RT_DELETE: the objects whose destructors have run (fini_watch.hpp) are GOING, still mapped.
void objects_finished();
// A patch was bound to the live object `lo` (bind_object): without the audit module, its
// destructors are watched, so that its GOING comes before it is unmapped.
void object_bound(const LoadedObject &lo);
// The live object named `name` (nullptr: the executable); core mutex held. Without the audit
// module, whatever the dynamic linker lists now.
bool find_live_object(const char *name, LoadedObject *out);
// Process exit: from now on events are ignored (the agent's own destructors may have run).
void object_events_stop();
// For graft_object_state(): the state of the object `desc` names (LIVE unless it is coming or
// going right now); core mutex held by the setter, and by the callbacks that ask.
enum graft_object_state object_state_of(const graft_object *desc);
void set_object_state_name(const std::string &object, enum graft_object_state st);

}  // namespace graft
