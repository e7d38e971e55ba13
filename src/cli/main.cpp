// graft: live patching for running processes. See docs/commands.md.
#include <iostream>
#include <string>

#include "cli/client.hpp"
#include "cli/commands.hpp"

int main(int argc, char **argv) {
    CLI::App app{"graft: live-patch functions of running multi-threaded processes"};
    app.require_subcommand(1);
    app.fallthrough(false);
    graft::cli::add_flags(app);
    graft::cli::add_build(app);
    graft::cli::add_run(app);
    graft::cli::add_ps(app);
    graft::cli::add_load(app);
    graft::cli::add_disable(app);
    graft::cli::add_enable(app);
    graft::cli::add_force(app);
    graft::cli::add_unload(app);
    graft::cli::add_list(app);
    graft::cli::add_threads(app);
    graft::cli::add_log(app);
    graft::cli::add_attach(app);
    graft::cli::add_diff(app);
    // `graft run [--] PROGRAM ARGS...`: the program's command line is passed on untouched.
    if (argc > 2 && std::string(argv[1]) == "run" && std::string(argv[2]) != "--help" &&
        std::string(argv[2]) != "-h") {
        std::vector<std::string> prog(argv + 2, argv + argc);
        if (!prog.empty() && prog[0] == "--") prog.erase(prog.begin());
        graft::cli::run_program(prog);
    }
    // `graft build ... -- COMPILER_ARGS`: what follows `--` is the compiler's, not ours.
    if (argc > 1 && std::string(argv[1]) == "build") {
        for (int i = 2; i < argc; i++) {
            if (std::string(argv[i]) != "--") continue;
            for (int j = i + 1; j < argc; j++) graft::cli::build_passthrough().push_back(argv[j]);
            argc = i;
            break;
        }
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        std::string what = app.get_subcommands().empty() ? "usage" : app.get_subcommands()[0]->get_name();
        graft::cli::die(what, std::string(e.what()) + ": Invalid argument", 2);
    }
    return 0;
}
