/* server: a small multi-threaded request/response server on 127.0.0.1, patched while it serves
 * (p_server replaces handle_request() and compute() with equivalent code; p_server_offpath
 * replaces server_maintenance(), which no request calls).
 *
 *   server [--idle=N]     (N extra threads asleep in a futex, like a real server's pools)
 *
 * One thread per connection; each request is 64 bytes, each response 64 bytes; a request costs
 * about a microsecond of work in compute(). Prints {"ready":true,"pid":P,"port":PORT} and serves
 * until stdin closes or says "quit". Loopback only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TARGET __attribute__((noipa))

struct msg {
    uint64_t id;
    uint64_t value;
    uint8_t payload[48];
};

TARGET uint64_t compute(const uint8_t *p, size_t n, uint64_t seed) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (int round = 0; round < 24; round++)
        for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

TARGET void handle_request(const struct msg *rq, struct msg *rs) {
    rs->id = rq->id;
    rs->value = compute(rq->payload, sizeof rq->payload, rq->id);
    memcpy(rs->payload, rq->payload, sizeof rs->payload);
}

/* Never called while serving: p_server_offpath replaces it, to tell the cost of patching the
 * process from the cost of patching the request path. */
TARGET uint64_t server_maintenance(uint64_t x) { return x * 31 + 7; }

static int read_full(int fd, void *buf, size_t n) {
    size_t off = 0;
    while (off < n) {
        ssize_t r = read(fd, (char *)buf + off, n - off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        off += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
    size_t off = 0;
    while (off < n) {
        ssize_t r = write(fd, (const char *)buf + off, n - off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        off += (size_t)r;
    }
    return 0;
}

TARGET void serve_conn(int fd) {
    struct msg rq, rs;
    while (read_full(fd, &rq, sizeof rq) == 0) {
        handle_request(&rq, &rs);
        if (write_full(fd, &rs, sizeof rs) != 0) break;
    }
    close(fd);
}

static void *conn_main(void *arg) {
    serve_conn((int)(intptr_t)arg);
    return NULL;
}

static int g_listen;

static void *accept_main(void *arg) {
    (void)arg;
    for (;;) {
        int c = accept4(g_listen, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return NULL;
        }
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        pthread_create(&t, NULL, conn_main, (void *)(intptr_t)c);
        pthread_detach(t);
    }
}

static uint32_t g_futex;
static void *idle_main(void *arg) {
    (void)arg;
    for (;;) syscall(SYS_futex, &g_futex, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

int main(int argc, char **argv) {
    int idle = 0;
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--idle=", 7)) idle = atoi(argv[i] + 7);
    g_listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(g_listen, (struct sockaddr *)&a, sizeof a) || listen(g_listen, 64) ||
        getsockname(g_listen, (struct sockaddr *)&a, &len)) {
        perror("server");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, accept_main, NULL);
    for (int i = 0; i < idle; i++) pthread_create(&t, NULL, idle_main, NULL);
    printf("{\"ready\":true,\"pid\":%d,\"port\":%d}\n", (int)getpid(), ntohs(a.sin_port));
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin))
        if (!strncmp(line, "quit", 4)) break;
    _exit(0);
}
