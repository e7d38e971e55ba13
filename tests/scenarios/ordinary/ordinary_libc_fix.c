/* ordinary_libc_fix: libc's strlen, every IFUNC variant Debian's libc.so.6 has (local symbols:
 * not in .dynsym, only in the debug file Debian's libc6-dbg installs under /usr/lib/debug). The
 * new version counts the same bytes, except for the test's probe string, whose length it reports
 * as 4242: the visible sign of which version ran. It must not call strlen itself (that would be a
 * call into the patched function), hence the volatile reads, which also keep gcc from turning the
 * loop back into a strlen call. */
#include <graft/graft.h>
#include <stddef.h>

static size_t strlen_v2(const char *s) {
    const volatile char *p = s;
    size_t n = 0;
    while (p[n]) n++;
    static const char probe[] = "graft-probe";
    if (n == sizeof probe - 1) {
        size_t i = 0;
        while (i < n && p[i] == probe[i]) i++;
        if (i == n) return 4242;
    }
    return n;
}

static struct graft_func libc_funcs[] = {{"__strlen_sse2", (void *)strlen_v2, 0},
                                         {"__strlen_avx2", (void *)strlen_v2, 0},
                                         {"__strlen_avx2_rtm", (void *)strlen_v2, 0},
                                         {"__strlen_evex", (void *)strlen_v2, 0},
                                         {"__strlen_evex512", (void *)strlen_v2, 0},
                                         {0}};
static struct graft_object objs[] = {{"libc.so.6", libc_funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
