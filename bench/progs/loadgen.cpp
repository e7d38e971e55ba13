// loadgen: the client of bench/progs/server.c (not run under graft). C connections to
// 127.0.0.1:PORT, each sending one 64-byte request every PERIOD microseconds (paced, never more
// than one outstanding) for SECONDS, timing each request from send to complete response.
//
//   loadgen PORT CONNECTIONS PERIOD_US SECONDS [RAW_FILE]
//
// Prints one JSON line: count, errors, percentiles (ns) and a CCDF on a log grid. RAW_FILE, if
// given, receives every latency as a native uint32 (ns), for merging windows.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

struct Msg {
    uint64_t id;
    uint64_t value;
    uint8_t payload[48];
};
static_assert(sizeof(Msg) == 64);

uint64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

bool io_full(int fd, void *buf, size_t n, bool wr) {
    size_t off = 0;
    while (off < n) {
        ssize_t r = wr ? write(fd, static_cast<char *>(buf) + off, n - off)
                       : read(fd, static_cast<char *>(buf) + off, n - off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        off += size_t(r);
    }
    return true;
}

std::atomic<long> g_errors{0};

void run_conn(int port, uint64_t period_ns, uint64_t end, int idx, std::vector<uint32_t> *out) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        g_errors++;
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Msg m{};
    for (int i = 0; i < 48; i++) m.payload[i] = uint8_t(i * 7 + idx);
    uint64_t next = now_ns() + period_ns * uint64_t(idx) / 4;  // spread the connections
    for (uint64_t id = 0;; id++) {
        timespec ts{time_t(next / 1000000000ull), long(next % 1000000000ull)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
        }
        uint64_t t0 = now_ns();
        if (t0 >= end) break;
        m.id = id;
        if (!io_full(fd, &m, sizeof m, true) || !io_full(fd, &m, sizeof m, false)) {
            g_errors++;
            break;
        }
        uint64_t lat = now_ns() - t0;
        out->push_back(uint32_t(std::min<uint64_t>(lat, UINT32_MAX)));
        next += period_ns;
        if (next < t0) next = t0;  // fell behind: do not send a burst
    }
    close(fd);
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        std::fprintf(stderr, "usage: loadgen PORT CONNECTIONS PERIOD_US SECONDS [RAW_FILE]\n");
        return 2;
    }
    int port = std::atoi(argv[1]), conns = std::atoi(argv[2]);
    uint64_t period = uint64_t(std::atof(argv[3]) * 1000);
    uint64_t start = now_ns();
    uint64_t end = start + uint64_t(std::atof(argv[4]) * 1e9);
    std::vector<std::vector<uint32_t>> lat(static_cast<size_t>(conns));
    std::vector<std::thread> ts;
    for (int i = 0; i < conns; i++) ts.emplace_back(run_conn, port, period, end, i, &lat[size_t(i)]);
    for (auto &t : ts) t.join();
    std::vector<uint32_t> all;
    for (auto &v : lat) all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    if (argc == 6) {
        FILE *f = std::fopen(argv[5], "wb");
        if (!f || std::fwrite(all.data(), sizeof(uint32_t), all.size(), f) != all.size()) {
            std::perror("loadgen: raw file");
            return 1;
        }
        std::fclose(f);
    }
    auto q = [&](double p) -> double {
        if (all.empty()) return 0;
        size_t i = size_t(std::min<double>(double(all.size() - 1), std::floor(p * double(all.size()))));
        return all[i];
    };
    std::printf("{\"count\":%zu,\"errors\":%ld,\"start_ns\":%llu,\"seconds\":%.3f,\"p50_ns\":%.0f,\"p90_ns\":%.0f,"
                "\"p99_ns\":%.0f,\"p999_ns\":%.0f,\"p9999_ns\":%.0f,\"max_ns\":%.0f,\"ccdf\":[",
                all.size(), g_errors.load(), (unsigned long long)start, (now_ns() - start) / 1e9, q(0.5), q(0.9),
                q(0.99), q(0.999), q(0.9999), all.empty() ? 0.0 : double(all.back()));
    // CCDF: fraction of requests slower than x, on a log grid of x from 1 us to the maximum.
    bool first = true;
    if (!all.empty()) {
        double lo = 1000, hi = double(all.back()) * 1.01;
        int points = 160;
        for (int i = 0; i <= points; i++) {
            double x = lo * std::pow(hi / lo, double(i) / points);
            size_t above = size_t(all.end() - std::upper_bound(all.begin(), all.end(), uint32_t(std::min(x, 4e9))));
            std::printf("%s[%.0f,%.8g]", first ? "" : ",", x, double(above) / double(all.size()));
            first = false;
        }
    }
    std::printf("]}\n");
    return 0;
}
