/* access_fake_agent PID: not an agent. Binds the abstract name "@graft/PID" of another process
 * (one that runs no agent) and answers every line with {"ok":true}, as a hostile user could, to
 * show that `graft` refuses to talk to it. Prints "listening" once bound. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "graft/%s", argv[1]);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    if (l < 0 || bind(l, (struct sockaddr *)&a, len) != 0 || listen(l, 16) != 0) {
        perror("bind");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) continue;
        char buf[4096];
        ssize_t got;
        while ((got = read(c, buf, sizeof buf)) > 0)
            if (memchr(buf, '\n', (size_t)got)) break;
        const char ok[] = "{\"ok\":true,\"patch\":\"fake\",\"patches\":[],\"transition\":null}\n";
        (void)!write(c, ok, sizeof ok - 1);
        close(c);
    }
}
