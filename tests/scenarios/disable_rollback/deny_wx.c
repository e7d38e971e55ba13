/* deny_wx: value() returns 1 unpatched; a worker calls it all the time.
 * stdin: "tick" prints "value N" (what value() returns now); "deny" installs, for every thread, a
 * seccomp filter that fails mprotect() asking for both PROT_WRITE and PROT_EXEC with EPERM (what
 * a service gets from systemd's MemoryDenyWriteExecute=) and prints "denied"; "quit" exits.
 * Prints "ready PID" once started. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "fixture.h"

volatile int value_base = 1;

__attribute__((noinline)) int value(void) { return value_base; }

static void *worker(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "caller");
    for (;;) {
        (void)value();
        sched_yield();
    }
    return NULL;
}

static int deny_write_exec(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, PROT_WRITE | PROT_EXEC),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_WRITE | PROT_EXEC, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    /* TSYNC: graft's worker thread, which writes the code, gets the filter too. */
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (!strcmp(line, "tick")) say("value %d\n", value());
        if (!strcmp(line, "deny")) {
            if (deny_write_exec() == 0)
                say("denied\n");
            else
                say("deny failed: %s\n", strerror(errno));
        }
    }
    _exit(0);
}
