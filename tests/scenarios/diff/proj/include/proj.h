/* proj: a two-unit program graft diff is tried on (tests/scenarios/diff/diff_test.cpp). */
#pragma once

/* Inlined into every caller: a fix here changes each unit that includes it. */
static inline int clamp_len(int n) {
    return n > 64 ? 64 : n;
}

int parse_len(const char *s);
int handle(const char *request);
const char *check_name(const char *s);
long util_refused(void);
struct session *session_open(int id);
void session_close(struct session *s);
long util_log_lines(void);
