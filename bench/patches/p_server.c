/* p_server: replaces the request path of bench/progs/server.c with equivalent code (the same
 * answers), as a real fix of a request handler would. Loaded and disabled in a loop while the
 * load generator measures latency. */
#include <stdint.h>
#include <string.h>
#include <graft/graft.h>

struct msg {
    uint64_t id;
    uint64_t value;
    uint8_t payload[48];
};

static uint64_t compute_v2(const uint8_t *p, size_t n, uint64_t seed) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (int round = 0; round < 24; round++)
        for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void handle_request_v2(const struct msg *rq, struct msg *rs) {
    rs->id = rq->id;
    rs->value = compute_v2(rq->payload, sizeof rq->payload, rq->id);
    memcpy(rs->payload, rq->payload, sizeof rs->payload);
}

static struct graft_func funcs[] = {{"handle_request", (void *)handle_request_v2, 0},
                                    {"compute", (void *)compute_v2, 0},
                                    {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
