/* libgraft-audit.so: the rtld-audit module that tells the agent when a shared object comes and
 * goes (the kernel's klp_module_coming / klp_module_going notifier).
 *
 * The dynamic linker calls la_objopen() once an object is mapped and listed, before it is
 * relocated and before any of its constructors run, and la_objclose() after its destructors
 * ran and before it is unmapped, both with the loader's lock held, for every object of every
 * namespace: the program's dlopen and dlmopen, the dependencies of a load, and the loads glibc
 * makes itself (NSS, gconv). Those are exactly the two points where graft must patch or unpatch
 * an object, and no other interface gives both.
 *
 * An audit module lives in a link-map namespace of its own, with its own copy of libc, so it
 * keeps to plain C and calls nothing: it forwards each event to the handler the agent attached
 * (graft_audit_attach(), called from the agent's constructor). Until then events are dropped:
 * the agent takes every object it finds at start-up as already loaded. */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>

typedef void (*graft_audit_handler)(int event, struct link_map *map, Lmid_t lmid);

/* Written once by graft_audit_attach() (release); read by the callbacks (acquire), so that the
 * handler's code and data, set up by the agent before attaching, are visible to them. */
static graft_audit_handler g_handler;

__attribute__((visibility("default"))) void graft_audit_attach(graft_audit_handler h) {
    __atomic_store_n(&g_handler, h, __ATOMIC_RELEASE);
}

__attribute__((visibility("default"))) unsigned int la_version(unsigned int version) {
    /* Only la_objopen and la_objclose are used: interface version 1 has both. */
    return version < LAV_CURRENT ? version : LAV_CURRENT;
}

__attribute__((visibility("default"))) unsigned int la_objopen(struct link_map *map, Lmid_t lmid,
                                                               uintptr_t *cookie) {
    *cookie = (uintptr_t)map;
    graft_audit_handler h = __atomic_load_n(&g_handler, __ATOMIC_ACQUIRE);
    if (h) h(0, map, lmid);
    return 0; /* no symbol binding audit: PLT calls stay as fast as without auditing */
}

__attribute__((visibility("default"))) unsigned int la_objclose(uintptr_t *cookie) {
    graft_audit_handler h = __atomic_load_n(&g_handler, __ATOMIC_ACQUIRE);
    if (h) h(1, (struct link_map *)*cookie, 0);
    return 0;
}
