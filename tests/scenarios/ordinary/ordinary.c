/* ordinary: a program built as distributions build (no graft flags), whose functions and whose
 * libraries' functions have no patchable entry. Worker threads call them in tight loops and
 * check every result against the two versions that may run; sleeper threads block in system
 * calls and count EINTR; spinner threads compute without calling anything. Commands on stdin:
 *   tick   -> "scale S counter C version V abs A wrong W eintr E calls N"
 *   jump   -> "jump scale S jl J entries E1 E2 wrong W eintr E" (E1, E2: the first 5 bytes of scale
 *             and jl_scale after endbr64, in hex; J: jl_scale(7), or 36 without the library)
 * S: scale(7) (3*7+1 = 22 unpatched, 3*7+2 = 23 patched, 24 stacked), C: read_counter() (41 / 42 / 43),
 * V: zlibVersion() through libz.so.1, A: libc's abs(INT_MIN) (INT_MIN unpatched, INT_MAX with the
 * fix), W: wrong results seen by workers, E: EINTR seen. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "fixture.h"

volatile int counter_base = 41;
atomic_long wrong, eintr_seen, calls, spins;

/* A prologue of several instructions (it keeps values across a call): the entry graft rewrites
 * displaces more than one of them. */
__attribute__((noinline)) int scale(int x) {
    int r = x * 3;
    if (x < 0) {
        char buf[64];
        snprintf(buf, sizeof buf, "%d", x);
        r += (int)strlen(buf);
    }
    return r + 1;
}

/* Its first instruction reads memory relative to the pc: relocation re-encodes it. */
__attribute__((noinline)) int read_counter(void) { return counter_base; }

/* libc's own abs(), not the compiler's builtin. */
int (*volatile abs_p)(int) = abs;
/* libc's strlen as the loader resolved its IFUNC: one of __strlen_sse2/avx2/evex..., local
 * symbols found only in libc's debug file (Debian's libc6-dbg). */
size_t (*volatile strlen_p)(const char *) = strlen;

/* Debian's libcrypto.so.3 (libssl3), opened at start without its headers: OpenSSL_version_num (a
 * 5-byte mov then ret: the jump displaces exactly one instruction) and CRYPTO_memcmp (hand-written
 * assembly with endbr64). */
static unsigned long (*ossl_version)(void);
static int (*ossl_memcmp)(const void *, const void *, size_t);

/* Shapes graft must refuse (ordinary_shapes.S). */
int tiny_ret(void);
int loop_entry(int);
int cold_entry(int);
int table_entry(int);
int (*volatile keep[])(int) = {loop_entry, table_entry, cold_entry};

#ifdef JUMP_LIB
/* ordinary_jump: the program and ordinary_jumplib.so are built with `graft flags target --entry
 * jump`. jl_scale(7): 36, 37 patched. */
int jl_scale(int);
#define JL_SCALE() jl_scale(7)
#else
#define JL_SCALE() 36
#endif

/* The first bytes of `f` after its endbr64, in hex: "entry" shows what graft made of the jump
 * layout's 5-byte entry (gcc emits five 1-byte nops, which graft merges into one nop). */
static void entry_hex(int (*f)(int), char out[11]) {
    const unsigned char *p = (const unsigned char *)f;
    if (p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa) p += 4;
    for (int i = 0; i < 5; i++) snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void *worker(void *arg) {
    (void)arg;
    const char *v0 = zlibVersion();
    const unsigned long ossl0 = ossl_version();
    unsigned char data[64];
    memset(data, 'g', sizeof data);
    const uLong want = adler32(adler32(0, NULL, 0), data, sizeof data);
    for (;;) {
        int s = scale(7);
        int c = read_counter();
        int j = JL_SCALE();
        const char *v = zlibVersion();
        uLong a = adler32(adler32(0, NULL, 0), data, sizeof data);
        unsigned long ov = ossl_version();
        data[5] = 'h';
        int differ = ossl_memcmp(data, data + 32, 16);
        data[5] = 'g';
        int same = ossl_memcmp(data, data + 32, 16);
        char text[24] = "the quick brown fox";
        size_t tl = strlen_p(text);
        if (s < 22 || s > 24 || c < 41 || c > 43 || a != want || abs_p(-5) != 5 || abs_p(7) != 7 ||
            (strcmp(v, v0) != 0 && strcmp(v, "graft-patched") != 0 && strcmp(v, "graft-b") != 0) ||
            (ov != ossl0 && ov != 0x30000ff0ul) ||
            differ == 0 || same != 0 || tl != 19 || j < 36 || j > 37)
            atomic_fetch_add(&wrong, 1);
        atomic_fetch_add(&calls, 1);
    }
    return NULL;
}

/* Blocked in system calls almost all the time: graft must switch them where they stand, and
 * never interrupt their calls (poll() is not restarted after a signal handler, even with
 * SA_RESTART: an interruption shows as EINTR). */
/* Blocked for a minute at a time and calling no patched function: the only ways to switch it are
 * a check of its stack where it stands, or the late signal, which its poll would report as EINTR. */
/* Two frames of this program's code over the system call (with frame pointers: the inner one's
 * CFA comes from its code's stack height, the outer one's from the rbp the inner one saved). */
__attribute__((noinline)) static int block_a_minute(int n) {
    volatile char local[64];
    local[n & 63] = 1;
    int rc = poll(NULL, 0, 60000);
    return rc + local[n & 63] - 1;
}

static void *sleeper(void *arg) {
    (void)arg;
    for (int n = 0;; n++)
        if (block_a_minute(n) < 0 && errno == EINTR) atomic_fetch_add(&eintr_seen, 1);
    return NULL;
}

/* Busy in its own code and never calling a patched function: graft must still see it outside
 * the rewritten entries (it interrupts it with a signal: it is in no system call). */
static void *spinner(void *arg) {
    (void)arg;
    for (;;) atomic_fetch_add(&spins, 1);
    return NULL;
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 4;
    int sleepers = argc > 2 ? atoi(argv[2]) : 4;
    int spinners = argc > 3 ? atoi(argv[3]) : 1;
    void *crypto = dlopen("libcrypto.so.3", RTLD_NOW);
    ossl_version = crypto ? (unsigned long (*)(void))dlsym(crypto, "OpenSSL_version_num") : NULL;
    ossl_memcmp = crypto ? (int (*)(const void *, const void *, size_t))dlsym(crypto, "CRYPTO_memcmp") : NULL;
    if (!ossl_version || !ossl_memcmp) {
        fprintf(stderr, "ordinary: libcrypto.so.3 (Debian's libssl3) is needed: %s\n", dlerror());
        return 1;
    }
    pthread_t t;
    for (int i = 0; i < spinners; i++) pthread_create(&t, NULL, spinner, NULL);
    for (int i = 0; i < workers; i++) pthread_create(&t, NULL, worker, NULL);
    for (int i = 0; i < sleepers; i++) pthread_create(&t, NULL, sleeper, NULL);
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (strcmp(line, "tick") == 0)
            say("scale %d counter %d version %s abs %d wrong %ld eintr %ld calls %ld openssl %lx probe %zu\n",
                scale(7), read_counter(), zlibVersion(), abs_p(INT_MIN), atomic_load(&wrong),
                atomic_load(&eintr_seen), atomic_load(&calls), ossl_version(), strlen_p("graft-probe"));
        else if (strcmp(line, "tiny") == 0)
            say("tiny %d\n", tiny_ret());
        else if (strcmp(line, "jump") == 0) {
            char a[11], b[11] = "-";
#ifdef JUMP_LIB
            entry_hex(jl_scale, b);
#endif
            entry_hex(scale, a);
            say("jump scale %d jl %d entries %s %s wrong %ld eintr %ld\n", scale(7), JL_SCALE(), a, b,
                atomic_load(&wrong), atomic_load(&eintr_seen));
        }
    }
    return 0;
}
