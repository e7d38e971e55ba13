#include "klp_session.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace graft::test {

KlpSession::KlpSession(bool attached) : host_(prog_path("klp_host"), {}, {}, /*under_graft=*/!attached) {
    EXPECT_GE(host_.wait_line("ready"), 0) << target_state(host_);
    if (attached) {
        Cmd a = graft_cmd({"attach", std::to_string(host_.pid())});
        EXPECT_EQ(a.rc, 0) << a.out << a.err;
    }
    EXPECT_TRUE(host_.wait_agent()) << target_state(host_);
}

std::string KlpSession::ask_ok(const std::string &cmd) {
    size_t from = host_.line_count();
    host_.send(cmd + "\n");
    std::string answer;
    host_.wait_lines(
        [&](const std::vector<std::string> &l) {
            for (size_t i = from; i < l.size(); i++)
                if (l[i].rfind("ok", 0) == 0 || l[i].rfind("error", 0) == 0) {
                    answer = l[i];
                    return true;
                }
            return false;
        },
        60);
    if (answer.empty()) answer = "<no answer: " + target_state(host_) + ">";
    EXPECT_EQ(answer.rfind("ok", 0), 0u) << "klp_host: " << cmd << " -> " << answer;
    return answer;
}

void KlpSession::mark(const std::string &text) {
    ask_ok("log % " + text);
}

void KlpSession::load_mod(const std::string &name) {
    mark("dlopen " + name + ".so");
    ask_ok("load " + name);
}

void KlpSession::unload_mod(const std::string &name) {
    mark("dlclose " + name + ".so");
    ask_ok("unload " + name);
}

void KlpSession::load_lp(const std::string &name) {
    mark("graft load " + name + ".so");
    Cmd c = graft_cmd({"load", std::to_string(pid()), patch_path(name)});
    EXPECT_EQ(c.rc, 0) << "graft load " << name << ": " << c.err;
}

void KlpSession::load_lp_nowait(const std::string &name) {
    mark("graft load --no-wait " + name + ".so");
    Cmd c = graft_cmd({"load", std::to_string(pid()), patch_path(name), "--no-wait"});
    EXPECT_EQ(c.rc, 0) << "graft load --no-wait " << name << ": " << c.err;
}

void KlpSession::load_failing_lp(const std::string &name) {
    mark("graft load " + name + ".so");
    Cmd c = graft_cmd({"load", std::to_string(pid()), patch_path(name)});
    EXPECT_NE(c.rc, 0) << "graft load " << name << " should have failed: " << c.out;
    std::string first = c.err.substr(0, c.err.find('\n'));
    mark(first);
}

void KlpSession::disable_lp(const std::string &name) {
    mark("graft disable " + name);
    Cmd c = graft_cmd({"disable", std::to_string(pid()), name});
    EXPECT_EQ(c.rc, 0) << "graft disable " << name << ": " << c.err;
    EXPECT_TRUE(wait_status(pid(),
                            [&](const nlohmann::json &st) {
                                for (auto &p : st["patches"])
                                    if (p["name"] == name) return false;
                                return true;
                            }))
        << name << " did not finish unpatching";
}

void KlpSession::unload_lp(const std::string &name) {
    mark("graft unload " + name);
    Cmd c = graft_cmd({"unload", std::to_string(pid()), name});
    EXPECT_EQ(c.rc, 0) << "graft unload " << name << ": " << c.err;
}

void KlpSession::set_env(const std::string &key, const std::string &value) {
    mark("setenv " + key + " " + value);
    ask_ok("setenv " + key + " " + value);
}

std::string KlpSession::cmdline() {
    std::string a = ask_ok("cmdline");
    return a.rfind("ok cmdline: ", 0) == 0 ? a.substr(12) : a;
}

std::string KlpSession::meminfo() {
    std::string a = ask_ok("meminfo");
    return a.rfind("ok meminfo: ", 0) == 0 ? a.substr(12) : a;
}

void KlpSession::wait_in_transition(const std::string &name) {
    EXPECT_TRUE(wait_status(pid(),
                            [&](const nlohmann::json &st) {
                                return st["transition"].is_object() && st["transition"]["patch"] == name;
                            }))
        << name << " never was in transition";
}

void KlpSession::wait_idle() {
    EXPECT_TRUE(graft::test::wait_idle(pid())) << "the transition did not end";
}

std::vector<std::string> klp_transcript(pid_t pid, const std::vector<std::string> &prefixes) {
    std::vector<std::string> v;
    for (auto &l : log_lines(pid)) {
        if (l.rfind("graft: attached to a running process", 0) == 0 ||
            l.find(" pthread_create call slot") != std::string::npos)
            continue;
        bool keep = l.rfind("% ", 0) == 0 || l.rfind("graft: ", 0) == 0;
        for (auto &p : prefixes) keep = keep || l.rfind(p, 0) == 0;
        if (keep) v.push_back(l);
    }
    return v;
}

std::string join_lines(const std::vector<std::string> &lines) {
    std::string s;
    for (auto &l : lines) s += l + "\n";
    return s;
}

std::vector<std::string> patch_names(pid_t pid) {
    std::vector<std::string> v;
    auto st = status(pid);  // not a temporary: the loop holds a reference into it
    for (auto &p : st["patches"]) v.push_back(p["name"]);
    return v;
}

std::vector<std::string> KlpSession::transcript(const std::vector<std::string> &prefixes) {
    return klp_transcript(pid(), prefixes);
}

void KlpSession::check(const std::string &expected, const std::vector<std::string> &prefixes) {
    std::vector<std::string> want;
    std::istringstream is(expected);
    for (std::string l; std::getline(is, l);)
        if (!l.empty()) want.push_back(l);
    auto got = transcript(prefixes);
    auto join = [](const std::vector<std::string> &v) {
        std::string s;
        for (auto &l : v) s += "  " + l + "\n";
        return s;
    };
    size_t i = 0;
    while (i < want.size() && i < got.size() && want[i] == got[i]) i++;
    if (i == want.size() && i == got.size()) return;
    ADD_FAILURE() << "transcript differs at line " << i + 1
                  << ":\n  expected: " << (i < want.size() ? want[i] : "<end>")
                  << "\n  got:      " << (i < got.size() ? got[i] : "<end>") << "\nexpected:\n"
                  << join(want) << "got:\n"
                  << join(got);
}

}  // namespace graft::test
