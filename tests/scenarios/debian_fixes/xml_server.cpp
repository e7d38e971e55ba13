// A program that uses the TinyXML library the way a service does: each request on stdin is a
// document (hex-encoded bytes), parsed in a child process so that a document that crashes or
// hangs the parser is reported instead of taking the service down; "load" starts a thread that
// parses a valid document in this process again and again and checks each result.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "tinyxml.h"

static std::atomic<long> checked{0}, errors{0};

static void load() {
    const char *doc =
        "<?xml version=\"1.0\"?><order id=\"17\"><item sku=\"a1\">3</item><item sku=\"b2\">5</item></order>";
    for (;;) {
        TiXmlDocument d;
        d.Parse(doc, nullptr, TIXML_ENCODING_UTF8);
        int id = 0, total = 0;
        const TiXmlElement *o = d.Error() ? nullptr : d.RootElement();
        if (o) o->QueryIntAttribute("id", &id);
        for (const TiXmlElement *i = o ? o->FirstChildElement("item") : nullptr; i;
             i = i->NextSiblingElement("item"))
            total += std::atoi(i->GetText());
        if (id != 17 || total != 8) errors++;
        checked++;
    }
}

static std::string unhex(const std::string &h) {
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2)
        out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
}

// Parses `doc` in a child: "ok", "error <description>", "crash <signal>" or "hang".
static std::string parse_in_child(const std::string &doc) {
    int fds[2];
    if (pipe(fds) != 0) return "pipe failed";
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        TiXmlDocument d;
        d.Parse(doc.c_str(), nullptr, TIXML_ENCODING_UTF8);
        std::string r = d.Error() ? std::string("error ") + d.ErrorDesc() : "ok";
        (void)!write(fds[1], r.data(), r.size());
        _exit(0);
    }
    close(fds[1]);
    int st = 0;
    for (int i = 0; i < 200; i++) {  // 2 s
        if (waitpid(pid, &st, WNOHANG) == pid) {
            char buf[256];
            ssize_t n = read(fds[0], buf, sizeof buf);
            close(fds[0]);
            if (WIFSIGNALED(st)) return std::string("crash ") + strsignal(WTERMSIG(st));
            return n > 0 ? std::string(buf, n) : "no answer";
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    close(fds[0]);
    return "hang";
}

int main() {
    std::printf("ready %d\n", (int)getpid());
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line == "load") {
            std::thread(load).detach();
            std::printf("loading\n");
        } else if (line == "stats") {
            std::printf("stats checked=%ld errors=%ld\n", checked.load(), errors.load());
        } else if (line.rfind("parse ", 0) == 0) {
            std::printf("parse %s\n", parse_in_child(unhex(line.substr(6))).c_str());
        }
        std::fflush(stdout);
    }
}
