/* consistency: the record that producer(), consumer() and printer() share within one round.
 * Shared by tests/scenarios/consistency/consistency.c (v1 functions) and tests/scenarios/consistency/consistency_v2.c.
 *
 * Layout v1: producer stores the value in `a`, consumer stores 3*a in `sum`, printer copies
 *            `sum` to `out`.
 * Layout v2: producer stores 2*value+1 in `b`, consumer stores -(3*value) in `neg_sum`, printer
 *            copies -neg_sum to `out`.
 * The caller (unpatched code) zeroes the record before each round and checks out == 3*value:
 * any round that mixes v1 and v2 functions reads a field the other version never wrote, so it
 * gets a wrong `out`, and the per-function version fields (pv, cv, qv) differ. */
#ifndef CONSISTENCY_H
#define CONSISTENCY_H

struct record {
    volatile long value;    /* what next_value() returned (written by the caller's helper) */
    volatile long a;        /* v1 */
    volatile long b;        /* v2: 2*value+1 */
    volatile long sum;      /* v1: 3*value */
    volatile long neg_sum;  /* v2: -3*value */
    volatile long out;      /* both: 3*value */
    volatile int pv, cv, qv;   /* version of producer/consumer/printer that ran */
    volatile int pdone, cdone; /* set after the nested call returned (keeps calls out of tail position) */
    volatile int pause;     /* consumer sleeps a little in this round (while producer is on the stack) */
    volatile long round;
};

#endif
