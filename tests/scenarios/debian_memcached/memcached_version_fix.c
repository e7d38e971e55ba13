/* memcached_version_fix: out_string() of memcached 1.6.18 (memcached.c), the function every ASCII
 * reply goes through, answers the `version` command with "VERSION 1.6.18-graft" and every other
 * reply as before. Its callees and `settings` are the running server's (GRAFT_REF): the server is
 * not linked with -rdynamic, so the patch cannot name them directly. */
#define HAVE_CONFIG_H 1 /* as memcached's own build defines it */
#include <string.h>

#include "memcached.h"
#include <graft/graft.h>

static void (*p_resp_reset)(mc_resp *);
static void (*p_conn_set_state)(conn *, enum conn_states);
static void (*p_resp_add_iov)(mc_resp *, const void *, int);
static struct settings *p_settings;
GRAFT_REF(NULL, "resp_reset", 0, p_resp_reset);
GRAFT_REF(NULL, "conn_set_state", 0, p_conn_set_state);
GRAFT_REF(NULL, "resp_add_iov", 0, p_resp_add_iov);
GRAFT_REF(NULL, "settings", 0, p_settings);

static void out_string_v2(conn *c, const char *str) {
    if (strncmp(str, "VERSION ", 8) == 0) str = "VERSION 1.6.18-graft";
    mc_resp *resp = c->resp;
    p_resp_reset(resp);
    if (c->noreply) {
        resp->skip = true;
        p_conn_set_state(c, conn_new_cmd);
        return;
    }
    size_t len = strlen(str);
    if ((len + 2) > WRITE_BUFFER_SIZE) {
        str = "SERVER_ERROR output line too long";
        len = strlen(str);
    }
    memcpy(resp->wbuf, str, len);
    memcpy(resp->wbuf + len, "\r\n", 2);
    p_resp_add_iov(resp, resp->wbuf, (int)len + 2);
    p_conn_set_state(c, conn_new_cmd);
}

static struct graft_func funcs[] = {{"out_string", (void *)out_string_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {"memcached_version_fix", objs, NULL, false};
GRAFT_PATCH(patch);
