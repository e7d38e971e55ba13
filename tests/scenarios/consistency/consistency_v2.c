/* consistency_v2: the record's v2 layout (see tests/scenarios/consistency/consistency.h) for producer(),
 * consumer() and printer() together. The new functions call the target's own entries (through
 * GRAFT_REF), so each call is routed by graft for the calling thread, as in the kernel. */
#include <graft/graft.h>

#include "consistency.h"

static long (*next_value)(struct record *);
static void (*round_pause)(struct record *);
static void (*consumer_entry)(struct record *);
static void (*printer_entry)(struct record *);
GRAFT_REF(NULL, "next_value", 0, next_value);
GRAFT_REF(NULL, "round_pause", 0, round_pause);
GRAFT_REF(NULL, "consumer", 0, consumer_entry);
GRAFT_REF(NULL, "printer", 0, printer_entry);

__attribute__((noinline)) static void printer_v2(struct record *r) {
    r->qv = 2;
    r->out = -r->neg_sum;
}

__attribute__((noinline)) static void consumer_v2(struct record *r) {
    r->cv = 2;
    r->neg_sum = -3 * ((r->b - 1) / 2);
    round_pause(r);
    printer_entry(r);
    r->cdone = 1;
}

__attribute__((noinline)) static void producer_v2(struct record *r) {
    r->pv = 2;
    long v = next_value(r);
    r->b = 2 * v + 1;
    consumer_entry(r);
    r->pdone = 1;
}

static struct graft_func funcs[] = {
    {"producer", (void *)producer_v2, 0},
    {"consumer", (void *)consumer_v2, 0},
    {"printer", (void *)printer_v2, 0},
    {0},
};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
