// Binding a patch's objects to the objects the process has loaded (klp_init_object_loaded), and
// what happens to every patch when an object comes or goes (klp_module_coming/going). Core mutex
// held by every caller.
#pragma once
#include <string>

namespace graft {

struct Object;
struct LoadedObject;

// Resolves every function of `o` in `lo` and finds or makes its func stack. On failure nothing
// of `o` is bound, *why names the patch, object, function and reason, and *err (if given) is the
// request's errno: EBUSY when another tool owns the function's entry, EINVAL otherwise.
bool bind_object(Object *o, const LoadedObject &lo, std::string *why, int *err = nullptr);
void unbind_object(Object *o);

// An object was loaded (object_events.cpp): every patch that names it is applied to it, oldest
// first. False when a patch failed for it: it is then left with none of them.
bool livepatch_object_coming(const LoadedObject &lo);
// An object is being unloaded, after its destructors ran: every patch is reverted from it.
void livepatch_object_going(const LoadedObject &lo);

}  // namespace graft
