/* A session server. Each session is a struct session the program allocates; commands on stdin:
 *   open NAME     "session ID opened for NAME"
 *   send ID TEXT  "session ID: sent TEXT"
 *   close ID      "session ID closed"
 *   quit
 * It prints "ready" once started. A worker thread opens, uses and closes sessions of its own all
 * the time (quietly), so the patched functions run on more than one thread.
 *
 * The bug: a session may send any number of messages; the policy says 3. struct session has no
 * field to count them, and it cannot get one while the program runs: sessions already open have
 * the old layout. fix_quota.c adds the counter as a shadow variable. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct session {
    int id;
    char name[16];
};

__attribute__((noinline)) struct session *session_open(int id, const char *name) {
    struct session *s = calloc(1, sizeof *s);
    s->id = id;
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

/* Returns 0 if the message was sent, -1 if it was refused (the original never refuses). */
__attribute__((noinline)) int session_send(struct session *s, const char *text, int quiet) {
    if (!quiet) printf("session %d: sent %s\n", s->id, text);
    return 0;
}

__attribute__((noinline)) void session_close(struct session *s, int quiet) {
    if (!quiet) printf("session %d closed\n", s->id);
    free(s);
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        struct session *s = session_open(0, "worker");
        for (int i = 0; i < 5; i++) session_send(s, "ping", 1);
        session_close(s, 1);
        usleep(1000); /* a client's pace, not a synchronisation */
    }
    return NULL;
}

#define MAX_SESSIONS 16
static struct session *sessions[MAX_SESSIONS + 1]; /* by id, from 1 */

static int valid(int id) { return id > 0 && id <= MAX_SESSIONS && sessions[id]; }

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    printf("ready\n");
    fflush(stdout);
    char line[128], arg[64];
    int id;
    while (fgets(line, sizeof line, stdin) && strcmp(line, "quit\n") != 0) {
        if (sscanf(line, "open %63s", arg) == 1) {
            for (id = 1; id <= MAX_SESSIONS && sessions[id]; id++) {
            }
            if (id > MAX_SESSIONS) {
                printf("too many sessions\n");
            } else {
                sessions[id] = session_open(id, arg);
                printf("session %d opened for %s\n", id, sessions[id]->name);
            }
        } else if (sscanf(line, "send %d %63s", &id, arg) == 2 && valid(id)) {
            session_send(sessions[id], arg, 0);
        } else if (sscanf(line, "close %d", &id) == 1 && valid(id)) {
            session_close(sessions[id], 0);
            sessions[id] = NULL;
        } else {
            printf("bad command\n");
        }
        fflush(stdout);
    }
    return 0;
}
