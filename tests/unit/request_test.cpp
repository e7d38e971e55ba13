// parse_request: every request the agent acts on is typed and within range; everything else is
// refused with a sentence naming the field, never an exception.
#include <gtest/gtest.h>

#include <string>

#include "agent/service/request.hpp"

namespace graft {
namespace {

struct Parsed {
    bool ok;
    Request req;
    std::string err;
};

Parsed parse(std::string_view line) {
    Parsed p{};
    p.ok = parse_request(line, &p.req, &p.err);
    return p;
}

TEST(UnitRequest, WellFormedRequestsAreTyped) {
    auto load = parse(R"({"op":"load","path":"/srv/fix.so"})");
    ASSERT_TRUE(load.ok) << load.err;
    EXPECT_EQ(load.req.op, Op::kLoad);
    EXPECT_EQ(load.req.path, "/srv/fix.so");
    EXPECT_TRUE(load.req.symbols.empty());
    auto with_symbols =
        parse(R"({"op":"load","path":"/srv/fix.so","symbols":["/a/memcached","/b/libz.so"]})");
    ASSERT_TRUE(with_symbols.ok) << with_symbols.err;
    EXPECT_EQ(with_symbols.req.symbols, (std::vector<std::string>{"/a/memcached", "/b/libz.so"}));

    auto force = parse(R"({"op":"force","name":"fix"})");
    ASSERT_TRUE(force.ok) << force.err;
    EXPECT_EQ(force.req.op, Op::kForce);
    EXPECT_EQ(force.req.name, "fix");

    auto log = parse(R"({"op":"log","since":42})");
    ASSERT_TRUE(log.ok) << log.err;
    EXPECT_EQ(log.req.op, Op::kLog);
    EXPECT_EQ(log.req.since, 42u);

    auto set = parse(R"({"op":"set","signal_timeout":2.5})");
    ASSERT_TRUE(set.ok) << set.err;
    EXPECT_EQ(set.req.op, Op::kSet);
    ASSERT_TRUE(set.req.signal_timeout.has_value());
    EXPECT_DOUBLE_EQ(*set.req.signal_timeout, 2.5);

    auto files = parse(R"({"op":"task_files","tids":[101,7,4194304]})");
    ASSERT_TRUE(files.ok) << files.err;
    EXPECT_EQ(files.req.op, Op::kTaskFiles);
    EXPECT_EQ(files.req.tids, (std::vector<pid_t>{101, 7, 4194304}));

    auto status = parse(R"({"op":"status"})");
    ASSERT_TRUE(status.ok) << status.err;
    EXPECT_EQ(status.req.op, Op::kStatus);
}

TEST(UnitRequest, MalformedLinesAreRefusedWithTheReason) {
    struct Case {
        const char *line;
        const char *reason;
    } cases[] = {
        {"", "not a JSON object on one line"},
        {"{\"op\":", "not a JSON object on one line"},
        {"[1,2]", "expected {\"op\": ...}"},
        {"{\"op\":7}", "expected {\"op\": ...}"},
        {"{\"op\":\"reboot\"}", "unknown request 'reboot'"},
        {"{\"op\":\"load\"}", "missing string field 'path'"},
        {"{\"op\":\"load\",\"path\":5}", "missing string field 'path'"},
        {"{\"op\":\"load\",\"path\":\"/a\\u0000b\"}", "field 'path' contains a NUL byte"},
        {"{\"op\":\"disable\",\"name\":\"\"}", "field 'name' is empty"},
        {"{\"op\":\"load\",\"path\":\"/f\",\"symbols\":\"/s\"}", "'symbols' must be an array of at most 16"},
        {"{\"op\":\"load\",\"path\":\"/f\",\"symbols\":[5]}", "missing string field 'symbols'"},
        {"{\"op\":\"load\",\"path\":\"/f\",\"symbols\":[\"rel/x\"]}",
         "symbol file 'rel/x' is not an absolute path"},
        {"{\"op\":\"load\",\"path\":\"/f\",\"symbols\":[\"/1\",\"/2\",\"/3\",\"/4\",\"/5\",\"/6\",\"/7\",\"/"
         "8\",\"/9\",\"/10\",\"/11\",\"/12\",\"/13\",\"/14\",\"/15\",\"/16\",\"/17\"]}",
         "'symbols' must be an array of at most 16"},
        {"{\"op\":\"log\",\"since\":-1}", "'since' must be a non-negative integer"},
        {"{\"op\":\"log\",\"since\":1.5}", "'since' must be a non-negative integer"},
        {"{\"op\":\"set\"}", "nothing to set"},
        {"{\"op\":\"set\",\"signal_timeout\":\"5\"}", "'signal_timeout' must be a number of seconds"},
        {"{\"op\":\"set\",\"signal_timeout\":-1}", "from 0 to 86400"},
        {"{\"op\":\"set\",\"signal_timeout\":86401}", "from 0 to 86400"},
        {"{\"op\":\"set\",\"signal_timeout\":1e400}", ""},
        {"{\"op\":\"task_files\"}", "'tids' must be an array of at most 1024"},
        {"{\"op\":\"task_files\",\"tids\":7}", "'tids' must be an array of at most 1024"},
        {"{\"op\":\"task_files\",\"tids\":[0]}", "a thread id in 'tids' is not a positive integer"},
        {"{\"op\":\"task_files\",\"tids\":[-5]}", "a thread id in 'tids' is not a positive integer"},
        {"{\"op\":\"task_files\",\"tids\":[\"12\"]}", "a thread id in 'tids' is not a positive integer"},
        {"{\"op\":\"task_files\",\"tids\":[1073741824]}", "a thread id in 'tids' is not a positive integer"},
    };
    for (const auto &c : cases) {
        auto p = parse(c.line);
        EXPECT_FALSE(p.ok) << c.line;
        EXPECT_NE(p.err.find(c.reason), std::string::npos) << c.line << " -> " << p.err;
        EXPECT_FALSE(p.err.empty()) << c.line;
    }
}

TEST(UnitRequest, LongStringsAndLinesAreRefused) {
    std::string path(5000, 'a');
    path[0] = '/';
    auto p = parse("{\"op\":\"load\",\"path\":\"" + path + "\"}");
    EXPECT_FALSE(p.ok);
    EXPECT_NE(p.err.find("longer than 4096 bytes"), std::string::npos) << p.err;

    std::string line(kMaxRequestBytes + 1, ' ');
    auto q = parse(line);
    EXPECT_FALSE(q.ok);
    EXPECT_NE(q.err.find("longer than"), std::string::npos) << q.err;
}

TEST(UnitRequest, AnUnknownOpIsQuotedShort) {
    std::string op(1000, 'x');
    auto p = parse("{\"op\":\"" + op + "\"}");
    EXPECT_FALSE(p.ok);
    EXPECT_LT(p.err.size(), 120u) << p.err;
    EXPECT_NE(p.err.find("..."), std::string::npos) << p.err;
}

}  // namespace
}  // namespace graft
