// User story: three patches of one function, loaded in order a, b, c (value() returns 1, 2, 3;
// 0 unpatched). Disabled in any order, callers always see the value of the top enabled patch, or
// the original when none is left: only the top of the function's func_stack counts
// (kernel-livepatch.md 2.12), so disabling a lower patch changes nothing for callers.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>

#include "harness.hpp"

using namespace graft::test;

namespace {

const std::array<std::string, 3> kNames = {"stacking_a", "stacking_b", "stacking_c"};
const std::map<std::string, int> kValue = {{"stacking_a", 1}, {"stacking_b", 2}, {"stacking_c", 3}};

std::string order_text(const std::vector<std::string> &order) {
    std::string s;
    for (auto &n : order) s += (s.empty() ? "" : ",") + n;
    return s;
}

// What value() returns to the main thread and to both workers, as "value M S1 S2".
std::string values_seen(Target &t) {
    size_t from = t.line_count();
    t.send("get\n");
    int i = t.wait_line("value ", 30, from);
    return i < 0 ? std::string("(no answer)") : t.lines()[static_cast<size_t>(i)];
}

std::string expect_line(int v) {
    return "value " + std::to_string(v) + " " + std::to_string(v) + " " + std::to_string(v);
}

// Loads a, b, c; disables them in `order`; after each step checks what callers see and the
// patch list; finally unloads all three so the process is as it started.
void run_order(Target &t, const std::vector<std::string> &order) {
    SCOPED_TRACE("disable order " + order_text(order));
    const std::string pid = std::to_string(t.pid());
    ASSERT_EQ(values_seen(t), expect_line(0));
    std::vector<std::string> enabled;
    for (auto &n : kNames) {
        Cmd load = graft_cmd({"load", pid, patch_path(n), "--timeout", "60"});
        ASSERT_EQ(load.rc, 0) << n << ": " << load.err;
        enabled.push_back(n);
        EXPECT_EQ(values_seen(t), expect_line(kValue.at(n))) << "after loading " << n;
    }
    auto st = status(t.pid());
    ASSERT_EQ(st["patches"].size(), 3u) << st.dump(2);
    for (int i = 0; i < 3; i++) {
        EXPECT_EQ(st["patches"][i]["name"], kNames[static_cast<size_t>(i)]) << st.dump(2);
        EXPECT_EQ(st["patches"][i]["stack_order"], i + 1) << st.dump(2);
        EXPECT_EQ(st["patches"][i]["enabled"], true) << st.dump(2);
    }

    for (auto &n : order) {
        Cmd dis = graft_cmd({"disable", pid, n, "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << n << ": " << dis.err;
        enabled.erase(std::find(enabled.begin(), enabled.end(), n));
        int expected = enabled.empty() ? 0 : kValue.at(enabled.back());
        EXPECT_EQ(values_seen(t), expect_line(expected)) << "after disabling " << n;
        st = status(t.pid());
        EXPECT_TRUE(st["transition"].is_null()) << st.dump(2);
        ASSERT_EQ(st["patches"].size(), enabled.size()) << st.dump(2);
        for (size_t i = 0; i < enabled.size(); i++) {
            EXPECT_EQ(st["patches"][i]["name"], enabled[i]) << st.dump(2);
            EXPECT_EQ(st["patches"][i]["enabled"], true) << st.dump(2);
            EXPECT_EQ(st["patches"][i]["stack_order"], static_cast<int>(i) + 1) << st.dump(2);
        }
        bool listed = false;
        for (auto &p : st["unloadable"]) listed = listed || p["name"] == n;
        EXPECT_TRUE(listed) << n << " is not unloadable: " << st.dump(2);
    }
    for (auto &n : kNames) {
        Cmd unl = graft_cmd({"unload", pid, n});
        EXPECT_EQ(unl.rc, 0) << n << ": " << unl.err;
    }
    st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
    EXPECT_TRUE(st["unloadable"].empty()) << st.dump(2);
    EXPECT_EQ(values_seen(t), expect_line(0));
}

std::vector<std::vector<std::string>> all_orders() {
    std::vector<std::string> o(kNames.begin(), kNames.end());
    std::vector<std::vector<std::string>> v;
    do v.push_back(o);
    while (std::next_permutation(o.begin(), o.end()));
    return v;
}

void start(Target &t) {
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
}

}  // namespace

class StackingOrder : public ::testing::TestWithParam<int> {};

// Each order from a fresh process.
TEST_P(StackingOrder, TopEnabledPatchWins) {
    auto order = all_orders()[static_cast<size_t>(GetParam())];
    Target t(prog_path("stacking"));
    start(t);
    ASSERT_FALSE(HasFatalFailure());
    run_order(t, order);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

INSTANTIATE_TEST_SUITE_P(Stacking, StackingOrder, ::testing::Range(0, 6));

// All six orders one after another in one process, unloading in between.
TEST(Stacking, AllOrdersInOneProcess) {
    Target t(prog_path("stacking"));
    start(t);
    ASSERT_FALSE(HasFatalFailure());
    auto orders = all_orders();
    ASSERT_EQ(orders.size(), 6u);
    for (auto &o : orders) {
        run_order(t, o);
        ASSERT_FALSE(HasFatalFailure());
    }
    // Nothing of the patches is left in the log's account: 18 enables, 18 unpatchings.
    int enables = 0, unpatched = 0;
    for (auto &l : log_lines(t.pid())) {
        enables += l.rfind("graft: enabling patch 'stacking_", 0) == 0;
        unpatched += l.find("': unpatching complete") != std::string::npos;
    }
    EXPECT_EQ(enables, 18);
    EXPECT_EQ(unpatched, 18);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}
