/* p_server_offpath: replaces server_maintenance(), a function of bench/progs/server.c that no
 * request calls. Patching it exercises everything graft does to the process (dlopen, code
 * writes, the transition's thread checks, signals, membarriers) but puts nothing on the
 * request path: the server-latency section compares it with p_server, which does. */
#include <stdint.h>
#include <graft/graft.h>

static uint64_t server_maintenance_v2(uint64_t x) { return x * 31 + 8; }

static struct graft_func funcs[] = {{"server_maintenance", (void *)server_maintenance_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
