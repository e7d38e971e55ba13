/* klp_host: the "kernel" of the ported kernel selftests (tests/scenarios/klp/klp_*_test.cpp).
 * The executable plays vmlinux (object "main"): it has the functions the kernel's test modules
 * patch (cmdline_proc_show, meminfo_proc_show). The selftests' "modules" are shared objects next
 * to it that it loads and unloads on command, as insmod/rmmod load kernel modules. Every line
 * the selftests compare goes through the agent's log (graft_log), so the transcript keeps one
 * order, as kmsg does for the kernel's selftests.
 * stdin commands (each answered by one line starting with "ok " or "error "):
 *   log TEXT          graft_log("%s", TEXT): the selftests' "% command" lines
 *   load NAME         dlopen("NAME.so" next to the executable)
 *   unload NAME       dlclose it
 *   setenv KEY VALUE  the selftests' module parameters: patches read them with getenv()
 *   cmdline           "ok cmdline: <what cmdline_proc_show() returns>"
 *   meminfo           "ok meminfo: <what meminfo_proc_show() returns>"
 *   call NAME FUNC    "ok call: <what FUNC() of NAME.so returns>" (a const char *(void))
 *   quit
 * Prints "ready PID" once started. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

/* The agent's graft_log, looked up at each use: the program also runs without the agent (it then
 * logs nothing), and an agent graft attaches later is found once it is there. */
typedef void (*log_fn)(const char *fmt, ...);
static log_fn agent_log(void) {
    return (log_fn)dlsym(RTLD_DEFAULT, "graft_log");
}

__attribute__((noinline)) const char *cmdline_proc_show(void) {
    return "BOOT_IMAGE=/vmlinuz root=/dev/sda1";
}

__attribute__((noinline)) const char *meminfo_proc_show(void) {
    return "MemTotal: 24576 MB";
}

enum { kMaxLibs = 16 };
static struct {
    char name[64];
    void *handle;
} libs[kMaxLibs];

static int find_lib(const char *name) {
    for (int i = 0; i < kMaxLibs; i++)
        if (libs[i].handle && !strcmp(libs[i].name, name)) return i;
    return -1;
}

static void load(const char *name) {
    if (find_lib(name) >= 0) {
        printf("error load %s: already loaded\n", name);
        return;
    }
    int slot = -1;
    for (int i = 0; i < kMaxLibs && slot < 0; i++)
        if (!libs[i].handle) slot = i;
    char file[80], path[PATH_MAX];
    snprintf(file, sizeof file, "%s.so", name);
    sibling_path(path, sizeof path, file);
    void *h = slot < 0 ? NULL : dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("error load %s: %s\n", name, slot < 0 ? "too many libraries" : dlerror());
        return;
    }
    snprintf(libs[slot].name, sizeof libs[slot].name, "%s", name);
    libs[slot].handle = h;
    printf("ok load %s\n", name);
}

static void unload(const char *name) {
    int i = find_lib(name);
    if (i < 0) {
        printf("error unload %s: not loaded\n", name);
        return;
    }
    int rc = dlclose(libs[i].handle);
    libs[i].handle = NULL;
    if (rc) printf("error unload %s: %s\n", name, dlerror());
    else printf("ok unload %s\n", name);
}

int main(void) {
    announce_ready();
    char line[512];
    while (next_command(line, sizeof line)) {
        char a[128] = "", b[128] = "";
        if (!strncmp(line, "log ", 4)) {
            log_fn lg = agent_log();
            if (lg) lg("%s", line + 4);
            printf("ok log\n");
        } else if (sscanf(line, "load %127s", a) == 1) {
            load(a);
        } else if (sscanf(line, "unload %127s", a) == 1) {
            unload(a);
        } else if (sscanf(line, "setenv %127s %127s", a, b) == 2) {
            setenv(a, b, 1);
            printf("ok setenv\n");
        } else if (!strcmp(line, "cmdline")) {
            printf("ok cmdline: %s\n", cmdline_proc_show());
        } else if (!strcmp(line, "meminfo")) {
            printf("ok meminfo: %s\n", meminfo_proc_show());
        } else if (sscanf(line, "call %127s %127s", a, b) == 2) {
            int i = find_lib(a);
            const char *(*fn)(void) = i < 0 ? NULL : (const char *(*)(void))dlsym(libs[i].handle, b);
            if (fn) printf("ok call: %s\n", fn());
            else printf("error call %s %s: not found\n", a, b);
        } else {
            printf("error unknown command '%s'\n", line);
        }
    }
    return 0;
}
