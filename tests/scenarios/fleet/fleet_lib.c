/* libfleet.so: built twice (FLEET_BUILD "a" and "b"), so that the two files differ and carry
 * different build-ids under one soname, as two releases of a distribution's library do. */
#include <graft/graft.h>

const char *fleet_build(void) { return "build " FLEET_BUILD; }

int fleet_value(void) { return 1; }
