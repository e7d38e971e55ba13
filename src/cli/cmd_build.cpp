// graft build -o PATCH.so [--target FILE]... SOURCE... [-- COMPILER_ARGS]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "agent/process/symbols.hpp"
#include "cli/client.hpp"
#include "cli/commands.hpp"

namespace graft::cli {

namespace {
bool is_cxx(const std::string &s) {
    for (const char *ext : {".cc", ".cpp", ".cxx", ".C", ".c++"}) {
        std::string e(ext);
        if (s.size() > e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0) return true;
    }
    return false;
}
std::string basename_of(const std::string &p) {
    return p.substr(p.rfind('/') == std::string::npos ? 0 : p.rfind('/') + 1);
}
std::string c_escape(const std::string &s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        o += c;
    }
    return o;
}
}  // namespace

std::vector<std::string> &build_passthrough() {
    static std::vector<std::string> v;
    return v;
}

namespace {

// A C file that records each target's object name and build-id (graft_patch_targets), read from
// the files now, so that they travel inside the patch; its path (the caller removes it).
std::string write_target_records(const std::vector<std::string> &targets) {
    std::string src =
        "struct graft_target_record { const char *object; const char *build_id; };\n"
        "__attribute__((visibility(\"default\"))) const struct graft_target_record "
        "graft_patch_targets[] = {\n";
    for (auto &t : targets) {
        SymbolFile sf;
        std::string err;
        if (!describe_file(t, &sf, &err)) die("build", err + ": " + errno_text(ENOEXEC));
        if (sf.build_id.empty())
            die("build", "'" + t + "' has no build-id (link it with -Wl,--build-id): " + errno_text(EINVAL));
        std::string name = sf.has_interp ? "" : (!sf.soname.empty() ? sf.soname : basename_of(t));
        src += "  {" + (name.empty() ? std::string("0") : "\"" + c_escape(name) + "\"") + ", \"" +
               sf.build_id + "\"},\n";
    }
    src += "  {0, 0}};\n";
    char tmpl[] = "/tmp/graft-targets-XXXXXX.c";
    int fd = mkstemps(tmpl, 2);
    if (fd < 0) die("build", "cannot write a temporary file: " + errno_text(errno));
    close(fd);
    std::ofstream(tmpl) << src;
    return tmpl;
}

// Runs the compiler; its exit status (or 127 if it cannot be run).
int run_compiler(const std::vector<std::string> &args) {
    pid_t pid = fork();
    if (pid == 0) {
        std::vector<char *> argv;
        for (auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        execvp(argv[0], argv.data());
        std::cerr << "graft: build: cannot run " << args[0] << ": " << errno_text(errno) << std::endl;
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

}  // namespace

void add_build(CLI::App &app) {
    auto *sub = app.add_subcommand("build", "Compile a patch shared object");
    static std::string out;
    static std::vector<std::string> targets, sources, extra;
    sub->add_option("-o,--output", out, "the patch .so to write")->required();
    sub->add_option("--target", targets, "an object the patch is for: its build-id is recorded");
    sub->add_option("sources", sources, "C or C++ sources")->required();
    sub->add_option("--cc-args", extra, "extra compiler arguments (or after --)");
    sub->callback([] {
        for (auto &e : build_passthrough()) extra.push_back(e);
        bool cxx = false;
        for (auto &s : sources) cxx = cxx || is_cxx(s);
        std::string cc = cxx ? (std::getenv("CXX") ? std::getenv("CXX") : "c++")
                             : (std::getenv("CC") ? std::getenv("CC") : "cc");
        // $CC may carry arguments ("ccache gcc", "cc -m64"), as make passes it on.
        std::vector<std::string> args;
        std::istringstream words(cc);
        for (std::string w; words >> w;) args.push_back(w);
        if (args.empty()) args.push_back(cxx ? "c++" : "cc");
        args.insert(args.end(), {"-shared", "-fPIC", "-O2", "-g", "-fasynchronous-unwind-tables",
                                 "-Wl,--build-id", "-I" + include_dir(), "-o", out});
        const std::string gen = targets.empty() ? std::string() : write_target_records(targets);
        for (auto &s : sources) args.push_back(s);
        if (!gen.empty()) {
            if (cxx)
                args.insert(args.end(), {"-x", "c", gen, "-x", "none"});
            else
                args.push_back(gen);
        }
        for (auto &e : extra) args.push_back(e);
        const int status = run_compiler(args);
        if (!gen.empty()) unlink(gen.c_str());
        if (status != 0) die("build", "the compiler failed: " + errno_text(EINVAL));
    });
}

}  // namespace graft::cli
