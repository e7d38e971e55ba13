// The kernel selftests' harness (tools/testing/selftests/livepatch/functions.sh), for graft:
// one klp_host process per test plays the kernel, and the agent's log plays kmsg. Every action
// writes its "% command" line into that log first (as the kernel's scripts write into kmsg), so
// check() compares one transcript, in order, line by line, against the expected text
// (reference: ../shared/reference/kernel-livepatch.md, section 8).
//
// Kernel -> graft: insmod of a target module -> load_mod (the host dlopens NAME.so); insmod of
// a livepatch -> load_lp (`graft load`); echo 0 > enabled -> disable_lp (`graft disable`);
// rmmod of a livepatch -> unload_lp (`graft unload`); module parameters -> set_env (patches and
// libraries read them with getenv()); vmlinux -> the host executable (object "main").
#pragma once
#include <string>
#include <vector>

#include "harness.hpp"

namespace graft::test {

// The transcript of process `pid`: its agent's log lines that start with "% ", "graft: " or one
// of `prefixes` (the test modules' names), as the kernel's check_result filters kmsg; without
// the lines an attach logs first.
std::vector<std::string> klp_transcript(pid_t pid, const std::vector<std::string> &prefixes = {"test_klp"});
// Lines joined, each ended by "\n".
std::string join_lines(const std::vector<std::string> &lines);
// Patch names in `graft status`, in stack order (the kernel's /sys/kernel/livepatch/*).
std::vector<std::string> patch_names(pid_t pid);

class KlpSession {
  public:
    // `attached`: klp_host is started without graft and `graft attach`ed to, so the patches and
    // objects meet the agent's attached paths (the loader's debugger hook instead of the audit
    // module); the transcript is the same.
    explicit KlpSession(bool attached = false);
    pid_t pid() const { return host_.pid(); }
    Target &host() { return host_; }

    // A line of the transcript: "% TEXT" in the agent's log.
    void mark(const std::string &text);
    // "% dlopen NAME.so" / "% dlclose NAME.so": the host loads or unloads a library (the
    // library's constructor and destructor log through graft_log). Fails the test on error.
    void load_mod(const std::string &name);
    void unload_mod(const std::string &name);
    // "% graft load NAME.so": loads the patch build/tests/patches/NAME.so and waits for the end of its
    // transition; load_lp_nowait returns once it started (--no-wait).
    void load_lp(const std::string &name);
    void load_lp_nowait(const std::string &name);
    // The load must fail: its error line (graft's stderr) goes into the transcript after the
    // "% graft load" line, as insmod's error does in the kernel's.
    void load_failing_lp(const std::string &name);
    // "% graft disable NAME", then waits until NAME finished unpatching (it left the list).
    void disable_lp(const std::string &name);
    // "% graft unload NAME".
    void unload_lp(const std::string &name);
    // "% setenv KEY VALUE" in the host (the kernel's module parameters).
    void set_env(const std::string &key, const std::string &value);
    // What the host's cmdline_proc_show() / meminfo_proc_show() return now.
    std::string cmdline();
    std::string meminfo();
    // Waits until NAME is the patch in transition (`transition` true in `graft list --json`).
    void wait_in_transition(const std::string &name);
    // Waits until no transition is in progress.
    void wait_idle();

    // The transcript so far: the agent's log lines that start with "% ", "graft: " or one of
    // `prefixes` (the test modules' names).
    std::vector<std::string> transcript(const std::vector<std::string> &prefixes);
    // Compares the transcript with `expected` (one line per line of text) and reports the first
    // difference with both texts in full.
    void check(const std::string &expected, const std::vector<std::string> &prefixes = {"test_klp"});

  private:
    std::string ask_ok(const std::string &cmd);
    Target host_;
};

}  // namespace graft::test
