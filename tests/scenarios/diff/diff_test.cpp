// graft diff from a source tree and a fix (tests/scenarios/diff/): proj, a two-unit program, is
// built from its compilation database with $(graft flags target) and started; each fix is
// compared unit by unit with the real `graft diff`, the unfixed build checked against the
// running process, and the tree must be exactly as it was afterwards (bytes and times). With -o,
// the patch graft diff writes is loaded into the running program (started without graft).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.hpp"

using namespace graft::test;
namespace fs = std::filesystem;

namespace diff_scenario {

const std::string kHere = std::string(GRAFT_TEST_SOURCE_DIR) + "/scenarios/diff";

struct Proj {
    std::string dir;
    ~Proj() {
        if (!dir.empty()) fs::remove_all(dir);
    }
};

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// A copy of proj built as its compilation database says; `opt`: the optimisation level.
void make_proj(Proj *p, const std::string &opt = "-O2") {
    char tmpl[] = "/tmp/graft-proj-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    p->dir = tmpl;
    fs::copy(kHere + "/proj", p->dir, fs::copy_options::recursive);
    fs::create_directories(p->dir + "/build");
    const std::string cc = GRAFT_TEST_CC;
    Cmd flags = graft_cmd({"flags", "target", "--cc", cc});
    ASSERT_EQ(flags.rc, 0) << flags.err;
    const std::string common =
        cc + " " + opt + " " + trimmed(flags.out) + " -Iinclude -DPROJ_NAME='\"proj x\"'";
    // One entry as a shell command line (quotes and all), one as an argument list with the build's
    // dependency-file options, which graft diff must not write.
    nlohmann::json db = nlohmann::json::array();
    db.push_back({{"directory", p->dir},
                  {"file", "src/server.c"},
                  {"command", common + " -c src/server.c -o build/server.o"}});
    std::vector<std::string> args;
    for (std::string a : {cc, opt}) args.push_back(a);
    std::istringstream fl(trimmed(flags.out));
    for (std::string f; fl >> f;) args.push_back(f);
    for (std::string a : {"-Iinclude", "-DPROJ_NAME=\"proj x\"", "-MD", "-MF", "build/util.d", "-c",
                          "src/util.c", "-o", "build/util.o"})
        args.push_back(a);
    db.push_back({{"directory", p->dir}, {"file", p->dir + "/src/util.c"}, {"arguments", args}});
    std::ofstream(p->dir + "/compile_commands.json") << db.dump(1);
    Cmd b =
        run({"sh", "-c",
             "cd " + p->dir + " && " + common + " -c src/server.c -o build/server.o && " + common +
                 " -c src/util.c -o build/util.o && " + cc + " build/server.o build/util.o -o build/proj"});
    ASSERT_EQ(b.rc, 0) << b.out << b.err;
}

struct FileState {
    std::string bytes;
    struct timespec mtime {};
};

FileState state_of(const std::string &path) {
    FileState s;
    std::ifstream in(path, std::ios::binary);
    s.bytes.assign(std::istreambuf_iterator<char>(in), {});
    struct stat st {};
    stat(path.c_str(), &st);
    s.mtime = st.st_mtim;
    return s;
}

void expect_same(const FileState &a, const FileState &b, const std::string &what) {
    EXPECT_EQ(a.bytes, b.bytes) << what << "'s contents changed";
    EXPECT_EQ(a.mtime.tv_sec, b.mtime.tv_sec) << what << "'s time changed";
    EXPECT_EQ(a.mtime.tv_nsec, b.mtime.tv_nsec) << what << "'s time changed";
}

}  // namespace diff_scenario

using namespace diff_scenario;

TEST(Diff, SourceFixComparedUnitByUnitAgainstTheRunningProgram) {
    Proj p;
    make_proj(&p);
    Target t(p.dir + "/build/proj", {}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    EXPECT_EQ(ask(t, "len -5", "len "), "len -5");  // the bug
    const std::string pid = std::to_string(t.pid());
    const FileState util0 = state_of(p.dir + "/src/util.c"), header0 = state_of(p.dir + "/include/proj.h");

    // A fix of one function of one unit.
    Cmd c = graft_cmd({"diff", "--source", p.dir, "--fix", kHere + "/fix_parse.patch", "--target", pid});
    ASSERT_EQ(c.rc, 0) << c.err;
    EXPECT_NE(c.out.find("graft: diff: unit 'src/util.c': 1 function(s) changed, 0 new, 0 removed, "),
              std::string::npos)
        << c.out;
    // util_line() returns its __LINE__, which the fix's added line moved: noted, not a change.
    EXPECT_NE(
        c.out.find("note\tfunction util_line: only constants that are lines of src/util.c moved by the fix "
                   "differ ("),
        std::string::npos)
        << c.out;
    EXPECT_NE(c.out.find("changed\tfunction parse_len: "), std::string::npos) << c.out;
    EXPECT_EQ(c.out.find("server.c"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("graft: diff: the before build matches '" + pid + "' (build-id "), std::string::npos)
        << c.out;
    EXPECT_NE(c.err.find("graft: diff: [1/1] before: src/util.c\ngraft: diff: [1/1] after: src/util.c\n"),
              std::string::npos)
        << c.err;
    expect_same(util0, state_of(p.dir + "/src/util.c"), "src/util.c");
    EXPECT_FALSE(fs::exists(p.dir + "/build/util.d")) << "graft diff wrote the build's dependency file";

    // A fix of a header's inline function: every unit that includes it is compiled; only the
    // function that inlined it changed.
    Cmd h = graft_cmd(
        {"diff", "--source", p.dir, "--fix", kHere + "/fix_clamp.patch", "--target", pid, "--json"});
    ASSERT_EQ(h.rc, 0) << h.err;
    auto doc = nlohmann::json::parse(h.out);
    ASSERT_EQ(doc["units"].size(), 2u) << h.out;
    EXPECT_EQ(doc["headers"][0], "include/proj.h: 2 unit(s)") << h.out;
    EXPECT_EQ(doc["summary"]["functions"]["changed"], 1) << h.out;
    for (auto &u : doc["units"])
        for (auto &f : u["functions"]) {
            EXPECT_EQ(f["change"], f["name"] == "parse_len" ? "changed" : "same")
                << u["file"] << ": " << f.dump();
            // Why parse_len changed although the fix does not touch it: DWARF says it inlines clamp_len.
            if (f["name"] == "parse_len") {
                EXPECT_EQ(f["inlines"], nlohmann::json::array({"clamp_len"})) << f.dump();
            }
        }
    EXPECT_EQ(doc["target"]["matched"], 1) << h.out;
    expect_same(header0, state_of(p.dir + "/include/proj.h"), "include/proj.h");

    // A fix that does not compile, and one made against other sources: one clear error each,
    // the tree as it was.
    Cmd broken = graft_cmd({"diff", "--source", p.dir, "--fix", kHere + "/fix_broken.patch"});
    EXPECT_EQ(broken.rc, 1);
    EXPECT_NE(broken.err.find("graft: diff: the after build of '" + p.dir + "/src/util.c' failed:\n"),
              std::string::npos)
        << broken.err;
    expect_same(util0, state_of(p.dir + "/src/util.c"), "src/util.c");
    Cmd stale = graft_cmd({"diff", "--source", p.dir, "--fix", kHere + "/fix_stale.patch"});
    EXPECT_EQ(stale.rc, 1);
    EXPECT_NE(stale.err.find("graft: diff: the fix does not apply to '" + p.dir + "'"), std::string::npos)
        << stale.err;
    expect_same(util0, state_of(p.dir + "/src/util.c"), "src/util.c");
    EXPECT_EQ(ask(t, "len -5", "len "), "len -5");  // nothing touched the process
}

// The unfixed build compiled otherwise than the running program (-O0 here): refused, naming the
// function, before anything is reported as the fix's.
TEST(Diff, AnotherBuildOfTheSourcesIsRefusedByTheRunningBinary) {
    Proj running, other;
    make_proj(&running, "-O0");
    make_proj(&other, "-O2");
    Cmd c = graft_cmd({"diff", "--source", other.dir, "--fix", kHere + "/fix_parse.patch", "--target",
                       running.dir + "/build/proj"});
    EXPECT_EQ(c.rc, 1);
    EXPECT_NE(
        c.err.find("graft: diff: your build does not match the running binary: function parse_len differs\n"),
        std::string::npos)
        << c.err;
    // No compilation database: where to get one.
    fs::remove(other.dir + "/compile_commands.json");
    Cmd none = graft_cmd({"diff", "--source", other.dir, "--fix", kHere + "/fix_parse.patch"});
    EXPECT_EQ(none.rc, 1);
    EXPECT_NE(none.err.find("no compile_commands.json in '" + other.dir + "'"), std::string::npos)
        << none.err;
}

// From a fix to a loaded patch in one command: fix_name.patch changes check_name() (which calls
// the static name_limit() and counts into the static `refused`) and adds blank(). The generated
// patch must replace check_name in the running program, carry blank(), and use the program's own
// name_limit() and `refused` (the count the unpatched code made goes on; server.c has a static
// `refused` too, and the patch must pick util.c's by its position); disable brings the bug back;
// another build of the program refuses the patch by build-id.
TEST(Diff, PatchFromAFixRunsInTheProcessAndSharesItsData) {
    Proj p, other;
    make_proj(&p);
    make_proj(&other, "-O0");
    Target t(p.dir + "/build/proj", {}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    EXPECT_EQ(ask(t, "name 12345678", "name "), "name ok");  // the bug: 8 characters pass
    EXPECT_EQ(ask(t, "name 123456789", "name "), "name refused: too long");
    EXPECT_EQ(ask(t, "refused", "refused "), "refused 1 0");
    const std::string pid = std::to_string(t.pid()), so = p.dir + "/fix_name.so";

    Cmd c =
        graft_cmd({"diff", "--source", p.dir, "--fix", kHere + "/fix_name.patch", "--target", pid, "-o", so});
    ASSERT_EQ(c.rc, 0) << c.err << c.out;
    EXPECT_NE(c.out.find("patch\tcheck_name: changed\n"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("patch\tblank: new\n"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("graft: diff: wrote '" + so + "': 1 function(s) of main replaced, 1 more carried, "),
              std::string::npos)
        << c.out;
    EXPECT_NE(c.err.find("graft: diff: [1/1] patch: src/util.c\n"), std::string::npos) << c.err;
    EXPECT_EQ(ask(t, "name 12345678", "name "), "name ok") << "graft diff changed the process";

    Cmd l = graft_cmd({"load", pid, so});
    ASSERT_EQ(l.rc, 0) << l.err;
    EXPECT_EQ(ask(t, "name 12345678", "name "), "name refused: too long");  // fixed
    EXPECT_EQ(ask(t, "name    ", "name "), "name refused: too long");       // blank(), the new function
    EXPECT_EQ(ask(t, "name abc", "name "), "name ok");
    EXPECT_EQ(ask(t, "refused", "refused "), "refused 3 0");  // util.c's own counter, not server.c's
    EXPECT_EQ(ask(t, "len -5", "len "), "len -5");            // the rest untouched

    Cmd d = graft_cmd({"disable", pid, "fix_name"});
    ASSERT_EQ(d.rc, 0) << d.err;
    ASSERT_TRUE(wait_idle(t.pid()));
    EXPECT_EQ(ask(t, "name 12345678", "name "), "name ok");  // the bug is back
    EXPECT_EQ(ask(t, "refused", "refused "), "refused 3 0");

    // The same patch into another build of the program: refused by build-id, nothing changed.
    Target o(other.dir + "/build/proj", {}, {}, /*under_graft=*/false);
    ASSERT_GE(o.wait_line("ready"), 0) << o.all_output();
    Cmd lo = graft_cmd({"load", std::to_string(o.pid()), so});
    EXPECT_NE(lo.rc, 0);
    EXPECT_NE(lo.err.find("patch 'fix_name', object 'main': build-id mismatch: the process runs "),
              std::string::npos)
        << lo.err;
    EXPECT_EQ(ask(o, "name 12345678", "name "), "name ok");
}

// What a function-level patch cannot carry is refused by name, and no patch is written: a changed
// initial value of data, a change to main (it runs once), a changed structure layout.
TEST(Diff, FixesAPatchCannotCarryAreRefusedByName) {
    Proj p;
    make_proj(&p);
    const std::string so = p.dir + "/refused.so", target = p.dir + "/build/proj";
    Cmd data = graft_cmd(
        {"diff", "--source", p.dir, "--fix", kHere + "/fix_data.patch", "--target", target, "-o", so});
    EXPECT_EQ(data.rc, 1);
    EXPECT_NE(data.err.find(
                  "graft: diff: the fix cannot be a live patch:\n  src/util.c: refused: changed data (its "
                  "layout or initial value): the running process keeps the old value; keep the old data "
                  "and add what the fix needs in a shadow variable\n"),
              std::string::npos)
        << data.err;
    Cmd main_fix = graft_cmd(
        {"diff", "--source", p.dir, "--fix", kHere + "/fix_main.patch", "--target", target, "-o", so});
    EXPECT_EQ(main_fix.rc, 1);
    EXPECT_NE(
        main_fix.err.find("graft: diff: function main runs only at start-up (a constructor, or main): the "
                          "running process will not call it again"),
        std::string::npos)
        << main_fix.err;
    // The upstream form of fix_leak: a new field in struct session, which the running code and the
    // sessions already open do not have.
    Cmd layout = graft_cmd(
        {"diff", "--source", p.dir, "--fix", kHere + "/fix_layout.patch", "--target", target, "-o", so});
    EXPECT_EQ(layout.rc, 1);
    EXPECT_NE(
        layout.err.find("  src/util.c: struct session: its size changed (4 to 16 bytes): code the patch does "
                        "not replace, and every object the process holds, keep the old layout; keep the type "
                        "as it is and add what the fix needs in a shadow variable\n"),
        std::string::npos)
        << layout.err;
    Cmd no_target = graft_cmd({"diff", "--source", p.dir, "--fix", kHere + "/fix_name.patch", "-o", so});
    EXPECT_EQ(no_target.rc, 1);
    EXPECT_NE(no_target.err.find("graft: diff: -o needs --target"), std::string::npos) << no_target.err;
    EXPECT_FALSE(fs::exists(so));
}

// A fix in its live-patch form with a part written by hand (the kernel's shadow-variable sample,
// livepatch-shadow-fix1): session_open() leaks a log line; fix_leak.patch keeps the line beside its
// session in a shadow variable and session_close() frees it; fix_leak_callbacks.c, linked with
// --with, frees the lines of the sessions still open when the patch is disabled.
TEST(Diff, FixWithAShadowVariableAndCallbacksWrittenByHand) {
    Proj p;
    make_proj(&p);
    Target t(p.dir + "/build/proj", {}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    EXPECT_EQ(ask(t, "open 3", "open "), "open 3");
    EXPECT_EQ(ask(t, "close", "closed"), "closed");
    EXPECT_EQ(ask(t, "loglines", "loglines "), "loglines 3");  // the leak
    const std::string pid = std::to_string(t.pid()), so = p.dir + "/fix_leak.so";

    Cmd c = graft_cmd({"diff", "--source", p.dir, "--fix", kHere + "/fix_leak.patch", "--target", pid, "-o",
                       so, "--with", kHere + "/fix_leak_callbacks.c"});
    ASSERT_EQ(c.rc, 0) << c.err << c.out;
    EXPECT_NE(c.out.find("patch\tsession_open: changed\n"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("patch\tsession_close: changed\n"), std::string::npos) << c.out;
    Cmd l = graft_cmd({"load", pid, so});
    ASSERT_EQ(l.rc, 0) << l.err;
    EXPECT_EQ(ask(t, "open 4", "open "), "open 4");
    EXPECT_EQ(ask(t, "loglines", "loglines "), "loglines 7");
    EXPECT_EQ(ask(t, "close", "closed"), "closed");
    EXPECT_EQ(ask(t, "loglines", "loglines "), "loglines 3");  // fixed: freed with their sessions

    // Sessions opened under the patch and still open when it goes: the callback frees their lines.
    EXPECT_EQ(ask(t, "open 2", "open "), "open 2");
    EXPECT_EQ(ask(t, "loglines", "loglines "), "loglines 5");
    Cmd d = graft_cmd({"disable", pid, "fix_leak"});
    ASSERT_EQ(d.rc, 0) << d.err;
    ASSERT_TRUE(wait_idle(t.pid()));
    EXPECT_EQ(ask(t, "loglines", "loglines "), "loglines 3");
    EXPECT_EQ(ask(t, "close", "closed"), "closed");
    EXPECT_EQ(ask(t, "loglines", "loglines "), "loglines 3");
    Cmd log = graft_cmd({"log", pid});
    EXPECT_NE(log.out.find("fix_leak: the log lines of the sessions still open are freed"), std::string::npos)
        << log.out;
}

// No compilation database: --build names the command that builds the tree, which graft diff runs
// under Bear to learn each unit's compiler command. A command that compiles nothing (the tree is
// built already) is refused with the way out. `make -B` also relinks the running program's file:
// the agent must still read the program that runs (/proc/self/exe), not the new file.
TEST(Diff, BuildCommandRunUnderBearInsteadOfADatabase) {
    Proj p;
    make_proj(&p);
    fs::remove(p.dir + "/compile_commands.json");
    const std::string cc = GRAFT_TEST_CC;
    Cmd flags = graft_cmd({"flags", "target", "--cc", cc});
    ASSERT_EQ(flags.rc, 0) << flags.err;
    std::ofstream(p.dir + "/Makefile") << "CFLAGS = -O2 " << trimmed(flags.out)
                                       << " -Iinclude\n"
                                          "build/proj: build/server.o build/util.o\n\t"
                                       << cc
                                       << " $^ -o $@\n"
                                          "build/%.o: src/%.c\n\t"
                                       << cc << " $(CFLAGS) -c $< -o $@\n";
    Cmd b = run({"make", "-s", "-B", "-C", p.dir});
    ASSERT_EQ(b.rc, 0) << b.out << b.err;
    Target t(p.dir + "/build/proj", {}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    const std::string pid = std::to_string(t.pid());

    Cmd none = graft_cmd({"diff", "--source", p.dir, "--fix", kHere + "/fix_parse.patch", "--build", "make"});
    EXPECT_EQ(none.rc, 1);
    EXPECT_NE(none.err.find("graft: diff: the build command 'make' compiled nothing"), std::string::npos)
        << none.err;
    Cmd c = graft_cmd({"diff", "--source", p.dir, "--fix", kHere + "/fix_parse.patch", "--build", "make -B",
                       "--target", pid, "-o", p.dir + "/fix_parse.so"});
    ASSERT_EQ(c.rc, 0) << c.err << c.out;
    EXPECT_NE(
        c.err.find("graft: diff: running the build under bear to learn its compiler commands: make -B\n"),
        std::string::npos)
        << c.err;
    EXPECT_NE(c.out.find("patch\tparse_len: changed\n"), std::string::npos) << c.out;
    EXPECT_EQ(ask(t, "len -5", "len "), "len -5");
    Cmd l = graft_cmd({"load", pid, p.dir + "/fix_parse.so"});
    ASSERT_EQ(l.rc, 0) << l.err;
    EXPECT_EQ(ask(t, "len -5", "len "), "len 0");  // fixed
}
