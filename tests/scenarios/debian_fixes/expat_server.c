/* A program that uses the expat library the way a service does: requests on stdin, one document
 * each ("parse DOC", or "parse-len N DOC": DOC handed to XML_ParseBuffer with length N), answers on
 * stdout with the number of elements or the parser's error. "load" starts a thread that parses a
 * document again and again and checks every result. */
#include <expat.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_long checked, errors;

static void XMLCALL on_start(void *data, const XML_Char *name, const XML_Char **attrs) {
    (void)name;
    (void)attrs;
    (*(int *)data)++;
}

static void parse(const char *doc, int len, char *out, size_t size) {
    XML_Parser p = XML_ParserCreate(NULL);
    int elements = 0;
    XML_SetUserData(p, &elements);
    XML_SetStartElementHandler(p, on_start);
    void *buf = XML_GetBuffer(p, (int)strlen(doc) + 1);
    memcpy(buf, doc, strlen(doc));
    if (XML_ParseBuffer(p, len, 1) == XML_STATUS_OK)
        snprintf(out, size, "ok %d", elements);
    else
        snprintf(out, size, "error %s", XML_ErrorString(XML_GetErrorCode(p)));
    XML_ParserFree(p);
}

static void *load(void *arg) {
    (void)arg;
    const char *doc = "<order id='17'><item/><item/><item>x</item><note>&lt;ok&gt;</note></order>";
    char out[128];
    for (;;) {
        parse(doc, (int)strlen(doc), out, sizeof out);
        if (strcmp(out, "ok 5") != 0) errors++;
        checked++;
    }
    return NULL;
}

int main(void) {
    char line[4096], out[256];
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
        } else if (strncmp(line, "parse-len ", 10) == 0) {
            char *doc = NULL;
            long n = strtol(line + 10, &doc, 10);
            parse(doc + 1, (int)n, out, sizeof out);
            printf("parse %s\n", out);
        } else if (strncmp(line, "parse ", 6) == 0) {
            parse(line + 6, (int)strlen(line + 6), out, sizeof out);
            printf("parse %s\n", out);
        }
        fflush(stdout);
    }
    return 0;
}
