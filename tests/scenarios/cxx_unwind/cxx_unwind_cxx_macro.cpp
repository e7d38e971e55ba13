// cxx_unwind_cxx_macro: a C++ patch written exactly as a C one, GRAFT_PATCH(patch) at file
// scope (DESIGN.md section 2: the authoring API is for C and C++). may_throw() returns x + 3.
#include <graft/graft.h>

static int may_throw_v3(int x) { return x + 3; }

static struct graft_func funcs[] = {{"may_throw", (void *)may_throw_v3, 0}, {}};
static struct graft_object objs[] = {{NULL, funcs, {}}, {}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
