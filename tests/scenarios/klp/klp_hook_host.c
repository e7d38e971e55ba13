/* klp_hook_host: a process in which another tool has hooked a function the way graft would:
 * through its patchable entry (tests/scenarios/klp/klp_entry_conflict_test.cpp, the stand-in for
 * the kernel's test-ftrace.sh and test-kprobe.sh: a second ftrace user on the same function).
 * On "hook" it writes, like such a tool, a 5-byte `jmp other_hook` into the nop padding before
 * hooked_show() and turns the 2-byte nop at its entry into a short jump back to it; from then on
 * hooked_show() runs other_hook(). unhooked_show() nobody touches.
 * stdin commands (each answered by one line starting with "ok " or "error "):
 *   log TEXT    graft_log("%s", TEXT): the selftest's "% command" lines
 *   hook        installs the other tool's hook on hooked_show()
 *   hooked      "ok hooked: <what hooked_show() returns>"
 *   unhooked    "ok unhooked: <what unhooked_show() returns>"
 *   entry       "ok entry: <hex of hooked_show's padding and entry>" (to prove it unchanged)
 * Prints "ready PID" once started. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fixture.h"

extern void graft_log(const char *fmt, ...) __attribute__((weak));

enum { kPad = 14, kGate = 2 };

__attribute__((noinline)) const char *hooked_show(void) { return "klp_hook_host: original hooked_show"; }

__attribute__((noinline)) const char *unhooked_show(void) { return "klp_hook_host: original unhooked_show"; }

/* The other tool's replacement. */
__attribute__((noinline)) const char *other_hook(void) { return "other tool: hooked_show intercepted"; }

/* The code bytes at a function's address: laundered through asm so that the compiler does not
 * treat them as an object of size 0 (the padding lies before it). */
static uint8_t *code_at(const void *func) {
    uintptr_t a = (uintptr_t)func;
    __asm__("" : "+r"(a));
    return (uint8_t *)a;
}

static uint8_t *gate_of(const void *func) {
    static const uint8_t endbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};
    uint8_t *f = code_at(func);
    return memcmp(f, endbr64, 4) == 0 ? f + 4 : f;
}

static const char *install_hook(void) {
    uint8_t *pad = code_at((const void *)hooked_show) - kPad;
    uint8_t *gate = gate_of((const void *)hooked_show);
    for (int i = 0; i < kPad; i++)
        if (pad[i] != 0x90) return "the padding before hooked_show is not nops";
    if (!((gate[0] == 0x66 && gate[1] == 0x90) || (gate[0] == 0x90 && gate[1] == 0x90)))
        return "the entry of hooked_show is not a nop";
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)pad & ~(uintptr_t)(pg - 1);
    size_t len = (uintptr_t)(gate + kGate) - start;
    /* Never without PROT_EXEC: this page holds code that may be running. */
    if (mprotect((void *)start, len, PROT_READ | PROT_WRITE | PROT_EXEC)) return "mprotect failed";
    int32_t rel = (int32_t)((intptr_t)other_hook - (intptr_t)(pad + 5));
    pad[0] = 0xe9;
    memcpy(pad + 1, &rel, 4);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    int8_t back = (int8_t)(pad - (gate + kGate));
    uint8_t jmp[2] = {0xeb, (uint8_t)back};
    memcpy(gate, jmp, 2); /* no other thread of this program calls hooked_show */
    if (mprotect((void *)start, len, PROT_READ | PROT_EXEC)) return "mprotect back failed";
    return NULL;
}

static void entry_hex(char *out, size_t size) {
    const uint8_t *p = code_at((const void *)hooked_show) - kPad;
    const uint8_t *end = gate_of((const void *)hooked_show) + kGate;
    size_t n = 0;
    for (; p < end && n + 3 < size; p++) n += (size_t)snprintf(out + n, size - n, "%02x", *p);
}

int main(void) {
    announce_ready();
    char line[512];
    while (next_command(line, sizeof line)) {
        if (!strncmp(line, "log ", 4)) {
            if (graft_log) graft_log("%s", line + 4);
            printf("ok log\n");
        } else if (!strcmp(line, "hook")) {
            const char *err = install_hook();
            if (err) printf("error hook: %s\n", err);
            else printf("ok hook\n");
        } else if (!strcmp(line, "hooked")) {
            printf("ok hooked: %s\n", hooked_show());
        } else if (!strcmp(line, "unhooked")) {
            printf("ok unhooked: %s\n", unhooked_show());
        } else if (!strcmp(line, "entry")) {
            char hex[128] = "";
            entry_hex(hex, sizeof hex);
            printf("ok entry: %s\n", hex);
        } else {
            printf("error unknown command '%s'\n", line);
        }
    }
    return 0;
}
