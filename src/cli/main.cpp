// graft: live patching for running processes. See docs/commands.md.
#include <iostream>

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
