/* A program that uses the cJSON library the way a service does: requests on stdin, one JSON
 * document each; answers on stdout. "load" starts a thread that parses and prints a document
 * again and again and checks every result (the client that keeps using the library while it is
 * patched). */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_long checked, errors;

static void *load(void *arg) {
    (void)arg;
    const char *doc =
        "{\"id\":12345,\"price\":-3.25e2,\"tags\":[\"a\",\"b\",null,true],\"nested\":{\"x\":[1,2,3]}}";
    for (;;) {
        cJSON *j = cJSON_Parse(doc);
        char *out = j ? cJSON_PrintUnformatted(j) : NULL;
        if (!out || strcmp(out,
                           "{\"id\":12345,\"price\":-325,\"tags\":[\"a\",\"b\",null,true],\"nested\":{\"x\":["
                           "1,2,3]}}") != 0)
            errors++;
        checked++;
        free(out);
        cJSON_Delete(j);
    }
    return NULL;
}

int main(void) {
    char line[4096];
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (strcmp(line, "load") == 0) {
            pthread_t t;
            pthread_create(&t, NULL, load, NULL);
            printf("loading\n");
        } else if (strcmp(line, "stats") == 0) {
            printf("stats checked=%ld errors=%ld\n", (long)checked, (long)errors);
        } else if (strncmp(line, "parse ", 6) == 0) {
            cJSON *j = cJSON_Parse(line + 6);
            char *out = j ? cJSON_PrintUnformatted(j) : NULL;
            printf("parse %s\n", out ? out : "error");
            free(out);
            cJSON_Delete(j);
        }
        fflush(stdout);
    }
    return 0;
}
