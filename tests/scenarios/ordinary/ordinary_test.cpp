// Functions built without graft's patchable entry (issue: unmodified code): graft rewrites their
// own entry (a 5-byte jmp over relocated instructions, written by the int3 protocol of
// src/agent/process/entry_rewrite.hpp) while worker threads call them in tight loops and sleeper
// threads block in system calls. Every result a worker sees must be the old or the new version's
// (0 wrong), and no system call may be interrupted (0 EINTR).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

std::string zlib_version_of(Target &t) {
    std::string line = ask(t, "tick", "scale ");
    auto p = line.find("version ");
    if (p == std::string::npos) return "";
    auto e = line.find(' ', p + 8);
    return line.substr(p + 8, e - p - 8);
}

// Loads, checks the new behaviour, disables, checks the old one, unloads: `rounds` times while the
// workers keep calling, then checks the counters.
void patch_in_a_loop(const std::string &prog, const std::vector<std::string> &args, int rounds) {
    Target t(prog_path(prog), args);
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    const std::string v0 = zlib_version_of(t);
    ASSERT_FALSE(v0.empty());
    std::string first = ask(t, "tick", "scale ");
    EXPECT_EQ(first.rfind("scale 22 counter 41 version " + v0 + " abs -2147483648 wrong 0 eintr 0 calls ", 0),
              0u)
        << first;
    for (int r = 0; r < rounds; r++) {
        Cmd load = graft_cmd({"load", pid, patch_path("ordinary_fix")});
        ASSERT_EQ(load.rc, 0) << "round " << r << ": " << load.err << t.all_output();
        EXPECT_NE(load.out.find("graft: 'ordinary_fix': patching complete"), std::string::npos) << load.out;
        if (r == 0) {
            // Every function of the fix has no patchable entry: each one's own entry was rewritten.
            auto st = status(t.pid());
            int rewritten = 0, direct = 0;
            for (auto &o : st["patches"][0]["objects"])
                for (auto &f : o["funcs"]) {
                    EXPECT_EQ(f["entry"], "rewritten") << f.dump();
                    rewritten++;
                    // The libraries and the patch are mapped in the same region: once settled,
                    // their entries jump straight to the new functions.
                    if (o["name"] != "main") {
                        EXPECT_TRUE(f["direct"].get<bool>()) << o["name"] << ": " << f.dump();
                    }
                    direct += f["direct"].get<bool>();
                }
            EXPECT_EQ(rewritten, 7) << st.dump();
            EXPECT_GE(direct, 5) << st.dump();
        }
        std::string now = ask(t, "tick", "scale ");
        EXPECT_EQ(
            now.rfind("scale 23 counter 42 version graft-patched abs 2147483647 wrong 0 eintr 0 calls ", 0),
            0u)
            << "round " << r << ": " << now;
        EXPECT_NE(now.find(" openssl 30000ff0"), std::string::npos) << now;
        Cmd dis = graft_cmd({"disable", pid, "ordinary_fix", "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << "round " << r << ": " << dis.err;
        now = ask(t, "tick", "scale ");
        EXPECT_EQ(
            now.rfind("scale 22 counter 41 version " + v0 + " abs -2147483648 wrong 0 eintr 0 calls ", 0), 0u)
            << "round " << r << ": " << now;
        EXPECT_EQ(now.find(" openssl 30000ff0"), std::string::npos) << now;
        Cmd unl = graft_cmd({"unload", pid, "ordinary_fix"});
        ASSERT_EQ(unl.rc, 0) << unl.err;
    }
    auto st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump();
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// Starts the stripped `prog` with GRAFT_DEBUG_DIR=`debug_dir`, loads entry_park_fix and checks
// that the program's own (static-symbol) scale() now runs the new version.
void patched_with_found_symbols(const std::string &prog, const std::string &debug_dir) {
    Target t(prog_path(prog), {"2", "1", "0"}, {"GRAFT_DEBUG_DIR=" + debug_dir});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    Cmd load = graft_cmd({"load", std::to_string(t.pid()), patch_path("entry_park_fix")});
    ASSERT_EQ(load.rc, 0) << load.err;
    std::string now = ask(t, "tick", "scale ");
    EXPECT_EQ(now.rfind("scale 23 counter 41 ", 0), 0u) << now;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// The jump layout (`graft flags target --entry jump`): 5 bytes of nop at each entry. Under `graft
// run` graft makes them one nop before any thread runs (gcc emits five); attached to a running
// process it leaves gcc's five, and their rewrite waits for threads. Either way the entry is then
// rewritten into a jmp rel32 by the ordinary entries' protocol with nothing to relocate, and in
// the shared object the settled entry jumps straight to the new function. Workers call both
// functions all along, sleepers block (0 wrong, 0 EINTR); disabling puts the first bytes back.
void jump_layout_patched(bool under_graft) {
    Target t(prog_path("ordinary_jump"), {"4", "4"}, {}, under_graft);
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    if (under_graft) {
        ASSERT_TRUE(t.wait_agent());
    }
    const std::string pid = std::to_string(t.pid());
    // The two entries' hex, "E1 E2".
    auto entries = [](const std::string &line) {
        auto p = line.find(" entries ");
        return p == std::string::npos ? std::string() : line.substr(p + 9, 21);
    };
    std::string now = ask(t, "jump", "jump ");
    EXPECT_EQ(now.rfind("jump scale 22 jl 36 entries ", 0), 0u) << now;
    const std::string before = entries(now);
    const bool five_nops = before == "9090909090 9090909090";
    if (under_graft || !five_nops) {
        EXPECT_TRUE(before.rfind("0f1f44", 0) == 0 && before.compare(11, 6, "0f1f44") == 0)
            << "not one 5-byte nop each: " << now;
    }
    for (int r = 0; r < scaled(6, 2); r++) {
        Cmd load = graft_cmd({"load", pid, patch_path("ordinary_jump_fix")});
        ASSERT_EQ(load.rc, 0) << "round " << r << ": " << load.err << t.all_output();
        EXPECT_NE(load.out.find("graft: 'ordinary_jump_fix': patching complete"), std::string::npos)
            << load.out;
        auto lib = object_of(status(t.pid()), "ordinary_jump_fix", "ordinary_jumplib.so");
        ASSERT_EQ(lib["funcs"].size(), 1u) << lib.dump();
        EXPECT_EQ(lib["funcs"][0]["entry"], "rewritten") << lib.dump();
        EXPECT_TRUE(lib["funcs"][0]["direct"].get<bool>()) << lib.dump();
        now = ask(t, "jump", "jump ");
        EXPECT_EQ(now.rfind("jump scale 23 jl 37 entries e9", 0), 0u) << "round " << r << ": " << now;
        EXPECT_EQ(entries(now).compare(11, 2, "e9"), 0) << "not a jmp rel32 each: " << now;
        EXPECT_NE(now.find(" wrong 0 eintr 0"), std::string::npos) << now;
        Cmd dis = graft_cmd({"disable", pid, "ordinary_jump_fix", "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << "round " << r << ": " << dis.err;
        now = ask(t, "jump", "jump ");
        EXPECT_EQ(now.rfind("jump scale 22 jl 36 entries ", 0), 0u) << "round " << r << ": " << now;
        EXPECT_EQ(entries(now), before) << now;
        Cmd unl = graft_cmd({"unload", pid, "ordinary_jump_fix"});
        ASSERT_EQ(unl.rc, 0) << unl.err;
    }
    now = ask(t, "jump", "jump ");
    EXPECT_NE(now.find(" wrong 0 eintr 0"), std::string::npos) << now;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

}  // namespace

// -O2, no frame pointer: what Debian's gcc and clang emit by default.
TEST(Ordinary, PlainBuildPatchedUnderLoadWithBlockedThreads) {
    patch_in_a_loop("ordinary_plain", {"4", "4"}, scaled(6, 2));
}

// -fcf-protection: every entry starts with endbr64; the jump goes after it.
TEST(Ordinary, CetBuildPatchedUnderLoadWithBlockedThreads) {
    patch_in_a_loop("ordinary_cet", {"4", "4"}, scaled(6, 2));
}

// -fno-omit-frame-pointer: the entry's displaced instructions are `push %rbp; mov %rsp,%rbp`,
// and the sleepers block under frames whose CFI finds the CFA through rbp, which /proc does not
// give: their stacks are climbed with heights derived from the code, so they switch where they
// stand (0 EINTR; a signal would interrupt their poll).
TEST(Ordinary, FramePointerBuildPatchedUnderLoadWithBlockedThreads) {
    patch_in_a_loop("ordinary_fp", {"4", "4"}, scaled(6, 2));
}

TEST(Ordinary, JumpLayoutIsOneNopThenOneDirectJump) {
    jump_layout_patched(true);
}

// Attached to (started without graft): gcc's five nops stay five instructions, and threads may
// stand between them; the rewrite waits until none does (design.md §2.7).
TEST(Ordinary, JumpLayoutPatchedAfterAttach) {
    jump_layout_patched(false);
}

// Each refused shape gets one line naming the function and the reason, and the process is left
// as it was: the program still runs its own code, no patch is recorded.
TEST(Ordinary, UnsafeEntriesAreRefusedWithTheirReason) {
    Target t(prog_path("ordinary_plain"), {"2", "1"});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"tiny_ret", "it is shorter than the 5-byte jump graft writes at its entry (3 bytes)"},
        {"loop_entry", "jumps back to its entry (a loop through its first instruction)"},
        {"table_entry", "its jump table at 0x"},
        {"cold_entry", "a branch in its .cold part at +4 lands inside the 5 bytes"},
    };
    for (const auto &[victim, reason] : cases) {
        Cmd load = graft_cmd({"load", pid, patch_path("ordinary_refused_" + victim)});
        expect_refusal(load, {"function '" + victim + "' cannot be patched", reason});
        auto st = status(t.pid());
        EXPECT_TRUE(st["patches"].empty()) << victim << ": " << st.dump();
    }
    EXPECT_EQ(ask(t, "tiny", "tiny "), "tiny 0");
    std::string now = ask(t, "tick", "scale ");
    EXPECT_EQ(now.rfind("scale 22 counter 41 version ", 0), 0u) << now;
    EXPECT_NE(now.find(" wrong 0 eintr 0 "), std::string::npos) << now;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// A tracer would receive the int3s graft writes and resume the thread past them: a traced process
// is refused, untouched; once the tracer is gone the same patch loads.
TEST(Ordinary, TracedProcessIsRefusedUntilItsTracerLeaves) {
    Target t(prog_path("ordinary_plain"), {"2", "1", "0"});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    pid_t tracer = fork();
    ASSERT_GE(tracer, 0);
    if (tracer == 0) {
        // PTRACE_SEIZE does not stop the tracee: the program keeps running, traced.
        char ok = ptrace(PTRACE_SEIZE, t.pid(), nullptr, nullptr) == 0 ? 'y' : 'n';
        (void)!write(ready[1], &ok, 1);
        pause();
        _exit(0);
    }
    char ok = 0;
    ASSERT_EQ(read(ready[0], &ok, 1), 1);
    close(ready[0]);
    close(ready[1]);
    ASSERT_EQ(ok, 'y') << "cannot trace the target";
    Cmd load = graft_cmd({"load", pid, patch_path("ordinary_fix")});
    expect_refusal(load, {"the process is traced by pid " + std::to_string(tracer),
                          "would take the breakpoints graft writes"});
    auto st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump();
    std::string now = ask(t, "tick", "scale ");
    EXPECT_EQ(now.rfind("scale 22 counter 41 version ", 0), 0u) << now;
    kill(tracer, SIGKILL);
    waitpid(tracer, nullptr, 0);
    Cmd again = graft_cmd({"load", pid, patch_path("ordinary_fix")});
    ASSERT_EQ(again.rc, 0) << again.err;
    now = ask(t, "tick", "scale ");
    EXPECT_EQ(now.rfind("scale 23 counter 42 version graft-patched ", 0), 0u) << now;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// A stripped program (only .dynsym, where scale() is not): its static symbols come from its
// separate debug file, found by build-id under the debug directory, and only from that one.
TEST(Ordinary, StrippedProgramTakesItsSymbolsFromItsDebugFileByBuildId) {
    {
        Target t(prog_path("ordinary_stripped"), {"2", "1", "0"}, {"GRAFT_DEBUG_DIR=/nonexistent"});
        ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
        ASSERT_TRUE(t.wait_agent());
        Cmd load = graft_cmd({"load", std::to_string(t.pid()), patch_path("entry_park_fix")});
        expect_refusal(load, {"symbol 'scale' not found"});
        t.send("quit\n");
        EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
    }
    patched_with_found_symbols("ordinary_stripped", prog_path("debug"));
}

// The same found through .gnu_debuglink, in the .debug folder next to the program.
TEST(Ordinary, StrippedProgramTakesItsSymbolsFromItsDebugLink) {
    patched_with_found_symbols("ordinary_debuglink", "/nonexistent");
}

// A stripped program with no debug file: its symbols come from a file the user names. Another
// build (other flags, other code) is refused, naming the first difference, and leaves the process
// as it was; a build with another build-id but identical code and data is accepted, and graft says
// how it proved it.
TEST(Ordinary, StrippedProgramTakesItsSymbolsFromANamedFileWithIdenticalCode) {
    Target t(prog_path("ordinary_nosyms"), {"2", "1", "0"}, {"GRAFT_DEBUG_DIR=/nonexistent"});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    Cmd bare = graft_cmd({"load", pid, patch_path("entry_park_fix")});
    expect_refusal(bare, {"symbol 'scale' not found"});

    Cmd other = graft_cmd(
        {"load", pid, patch_path("entry_park_fix"), "--symbols", prog_path("symbols/ordinary_nosyms.other")});
    expect_refusal(other, {"symbol 'scale' not found", "ordinary_nosyms.other' is another build (section '"});
    EXPECT_TRUE(status(t.pid())["patches"].empty());
    std::string now = ask(t, "tick", "scale ");
    EXPECT_EQ(now.rfind("scale 22 counter 41 ", 0), 0u) << now;

    Cmd stripped_too =
        graft_cmd({"load", pid, patch_path("entry_park_fix"), "--symbols", prog_path("ordinary_nosyms")});
    expect_refusal(stripped_too, {"has no symbol table (.symtab): it is stripped too"});

    Cmd load = graft_cmd({"load", pid, patch_path("entry_park_fix"), "--symbols",
                          prog_path("symbols/ordinary_nosyms.other"), "--symbols",
                          prog_path("symbols/ordinary_nosyms.rebuild")});
    ASSERT_EQ(load.rc, 0) << load.err;
    EXPECT_NE(load.out.find("graft: symbols of '" + prog_path("ordinary_nosyms") + "' from '" +
                            prog_path("symbols/ordinary_nosyms.rebuild") +
                            "' (build-id abababababababababababababababababababab, not the running "),
              std::string::npos)
        << load.out;
    EXPECT_NE(load.out.find(" bytes of code and data, identical)"), std::string::npos) << load.out;
    now = ask(t, "tick", "scale ");
    EXPECT_EQ(now.rfind("scale 23 counter 41 ", 0), 0u) << now;
    Cmd log = graft_cmd({"log", pid});
    EXPECT_NE(log.out.find("graft: symbols of '"), std::string::npos) << log.out;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// Debian's libc6-dbg: libc's own strlen variants (__strlen_avx2, __strlen_evex...: local symbols,
// in no .dynsym) named by a patch, found in libc's debug file under /usr/lib/debug by build-id,
// their entries rewritten while every thread of the process — graft's own worker included —
// keeps calling strlen. Workers check every length (0 wrong); the probe shows which version ran.
TEST(Ordinary, LibcInternalFunctionsNamedThroughLibc6Dbg) {
    Target t(prog_path("ordinary_plain"), {"4", "2"});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    std::string now = ask(t, "tick", "scale ");
    EXPECT_NE(now.find(" probe 11"), std::string::npos) << now;
    for (int r = 0; r < scaled(4, 2); r++) {
        Cmd load = graft_cmd({"load", pid, patch_path("ordinary_libc_fix")});
        ASSERT_EQ(load.rc, 0) << "round " << r << ": " << load.err;
        now = ask(t, "tick", "scale ");
        EXPECT_NE(now.find(" wrong 0 eintr 0 "), std::string::npos) << now;
        EXPECT_NE(now.find(" probe 4242"), std::string::npos) << now;
        Cmd dis = graft_cmd({"disable", pid, "ordinary_libc_fix", "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << dis.err;
        now = ask(t, "tick", "scale ");
        EXPECT_NE(now.find(" probe 11"), std::string::npos) << now;
        EXPECT_NE(now.find(" wrong 0 eintr 0 "), std::string::npos) << now;
        Cmd unl = graft_cmd({"unload", pid, "ordinary_libc_fix"});
        ASSERT_EQ(unl.rc, 0) << unl.err;
    }
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// The rest of the model on rewritten entries: a second patch stacked on the same functions (its
// versions win, the first patch's come back when it is disabled, and go again when it is loaded
// anew), then a cumulative patch that
// replaces both: what it does not name runs the original code again (nops), and the replaced
// patches can be unloaded. Workers check every result meanwhile (0 wrong).
TEST(Ordinary, StackingAndCumulativeReplaceOnRewrittenEntries) {
    Target t(prog_path("ordinary_plain"), {"4", "2"});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    const std::string v0 = zlib_version_of(t);
    auto tick_starts = [&](const std::string &want) {
        std::string now = ask(t, "tick", "scale ");
        EXPECT_EQ(now.rfind(want, 0), 0u) << now;
        EXPECT_NE(now.find(" wrong 0 eintr 0 "), std::string::npos) << now;
    };
    ASSERT_EQ(graft_cmd({"load", pid, patch_path("ordinary_fix")}).rc, 0);
    tick_starts("scale 23 counter 42 version graft-patched ");
    ASSERT_EQ(graft_cmd({"load", pid, patch_path("ordinary_stack_b")}).rc, 0);
    tick_starts("scale 24 counter 42 version graft-b ");
    ASSERT_EQ(graft_cmd({"disable", pid, "ordinary_stack_b", "--wait", "--timeout", "60"}).rc, 0);
    tick_starts("scale 23 counter 42 version graft-patched ");
    // As in the kernel, a disabled patch is not enabled again: it is unloaded and loaded anew.
    ASSERT_EQ(graft_cmd({"unload", pid, "ordinary_stack_b"}).rc, 0);
    ASSERT_EQ(graft_cmd({"load", pid, patch_path("ordinary_stack_b")}).rc, 0);
    tick_starts("scale 24 counter 42 version graft-b ");

    Cmd c = graft_cmd({"load", pid, patch_path("ordinary_replace_c")});
    ASSERT_EQ(c.rc, 0) << c.err;
    tick_starts("scale 22 counter 43 version " + v0 + " abs -2147483648 ");
    auto st = status(t.pid());
    for (auto &p : st["patches"])
        EXPECT_EQ(p["enabled"].get<bool>(), p["name"] == "ordinary_replace_c") << st.dump();
    for (const char *replaced : {"ordinary_stack_b", "ordinary_fix"}) {
        Cmd unl = graft_cmd({"unload", pid, replaced});
        EXPECT_EQ(unl.rc, 0) << replaced << ": " << unl.err;
    }
    ASSERT_EQ(graft_cmd({"disable", pid, "ordinary_replace_c", "--wait", "--timeout", "60"}).rc, 0);
    tick_starts("scale 22 counter 41 version " + v0 + " abs -2147483648 ");
    ASSERT_EQ(graft_cmd({"unload", pid, "ordinary_replace_c"}).rc, 0);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}
