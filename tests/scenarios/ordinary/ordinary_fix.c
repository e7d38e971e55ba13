/* ordinary_fix: new versions of functions that have no patchable entry: two of the program's own,
 * two of Debian's libz.so.1, one of its libc.so.6 and two of its libcrypto.so.3. */
#include <graft/graft.h>
#include <limits.h>
#include <stddef.h>
#include <zlib.h>

static int scale_v2(int x) { return x * 3 + 2; }
static int read_counter_v2(void) { return 42; }
static const char *zlib_version_v2(void) { return "graft-patched"; }
/* The same result by another path: the library's own adler32_z (a different function). */
static uLong adler32_v2(uLong adler, const Bytef *buf, uInt len) { return adler32_z(adler, buf, len); }

/* A fix of libc's abs(): |INT_MIN| saturates instead of staying negative. */
static int abs_v2(int x) { return x == INT_MIN ? INT_MAX : (x < 0 ? -x : x); }

/* libcrypto: a version number the test can see, and a constant-time compare written in C with the
 * same results as the library's assembly. */
static unsigned long openssl_version_num_v2(void) { return 0x30000ff0ul; }
static int crypto_memcmp_v2(const void *a, const void *b, size_t len) {
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < len; i++) d |= x[i] ^ y[i];
    return d != 0;
}
static struct graft_func crypto_funcs[] = {
    {"OpenSSL_version_num", (void *)openssl_version_num_v2, 0}, {"CRYPTO_memcmp", (void *)crypto_memcmp_v2, 0}, {0}};

static struct graft_func libc_funcs[] = {{"abs", (void *)abs_v2, 0}, {0}};
static struct graft_func main_funcs[] = {
    {"scale", (void *)scale_v2, 0}, {"read_counter", (void *)read_counter_v2, 0}, {0}};
static struct graft_func zlib_funcs[] = {
    {"zlibVersion", (void *)zlib_version_v2, 0}, {"adler32", (void *)adler32_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, main_funcs, {0}}, {"libz.so.1", zlib_funcs, {0}},
                                     {"libc.so.6", libc_funcs, {0}}, {"libcrypto.so.3", crypto_funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
