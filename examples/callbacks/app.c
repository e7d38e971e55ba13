/* An application with a global setting and a plugin it loads on demand. Commands on stdin:
 *   show     "max_workers N, settings locked|unlocked, plugin: none|<what the plugin says>"
 *   lock     lock the settings (an administrator froze them): "settings locked"
 *   unlock   "settings unlocked"
 *   load     dlopen plugin.so (next to the program): "plugin loaded"
 *   unload   dlclose it: "plugin unloaded"
 *   quit
 * It prints "ready" once started. A worker thread uses max_workers all the time. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Static: the patch reaches them by name with GRAFT_REF, not by linking. */
static volatile int max_workers = 4;
static volatile int settings_locked;

static void *plugin;

static void *worker(void *arg) {
    (void)arg;
    for (volatile long sum = 0;; sum += max_workers) usleep(1000); /* a pace, not a synchronisation */
    return NULL;
}

static void plugin_path(char *out, size_t size) {
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    out[n < 0 ? 0 : n] = 0;
    char *slash = strrchr(out, '/');
    snprintf(slash ? slash + 1 : out, size - (size_t)((slash ? slash + 1 : out) - out), "plugin.so");
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    printf("ready\n");
    fflush(stdout);
    char line[64], path[PATH_MAX];
    plugin_path(path, sizeof path);
    while (fgets(line, sizeof line, stdin) && strcmp(line, "quit\n") != 0) {
        if (!strcmp(line, "show\n")) {
            const char *(*hello)(void) = plugin ? (const char *(*)(void))dlsym(plugin, "plugin_hello") : NULL;
            printf("max_workers %d, settings %s, plugin: %s\n", max_workers,
                   settings_locked ? "locked" : "unlocked", hello ? hello() : "none");
        } else if (!strcmp(line, "lock\n") || !strcmp(line, "unlock\n")) {
            settings_locked = line[0] == 'l';
            printf("settings %s\n", settings_locked ? "locked" : "unlocked");
        } else if (!strcmp(line, "load\n") && !plugin) {
            plugin = dlopen(path, RTLD_NOW);
            if (plugin) printf("plugin loaded\n");
            else printf("error: %s\n", dlerror());
        } else if (!strcmp(line, "unload\n") && plugin) {
            dlclose(plugin);
            plugin = NULL;
            printf("plugin unloaded\n");
        } else {
            printf("bad command\n");
        }
        fflush(stdout);
    }
    return 0;
}
