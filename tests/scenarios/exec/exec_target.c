/* exec_target: what exec_host execs. f() returns 0 (exec_target_fix: 2). Prints
 * "exec_target ready PID f=N" (its own f()) once started.
 * stdin commands:  call -> "f=N";  quit */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

volatile int f_value = 0;

__attribute__((noinline)) int f(void) { return f_value; }

int main(void) {
    printf("exec_target ready %d f=%d\n", (int)getpid(), f());
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (!strcmp(line, "quit")) break;
        if (!strcmp(line, "call")) printf("f=%d\n", f());
        fflush(stdout);
    }
    return 0;
}
