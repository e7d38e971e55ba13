/* gconv_fix: graft_map_char() of the gconv module gconv_graft.so, which glibc loads itself for
 * iconv, maps ASCII lower-case letters to upper case. */
#include <graft/graft.h>

static int graft_map_char_v2(int c) { return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c; }

static struct graft_func funcs[] = {{"graft_map_char", (void *)graft_map_char_v2, 0}, {0}};
static struct graft_object objs[] = {{"gconv_graft.so", funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
