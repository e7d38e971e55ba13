#include "diff/compile_db.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace graft::diff {

std::string absolute_in(const std::string &dir, const std::string &path) {
    std::filesystem::path p(path);
    if (p.is_relative()) p = std::filesystem::path(dir) / p;
    return p.lexically_normal().string();
}

bool split_command(const std::string &cmd, std::vector<std::string> *out) {
    out->clear();
    std::string cur;
    bool have = false;
    char quote = 0;
    for (size_t i = 0; i < cmd.size(); i++) {
        char c = cmd[i];
        if (quote == '\'') {
            if (c == '\'')
                quote = 0;
            else
                cur += c;
            continue;
        }
        if (quote == '"') {
            if (c == '"') {
                quote = 0;
            } else if (c == '\\' && i + 1 < cmd.size() &&
                       (cmd[i + 1] == '"' || cmd[i + 1] == '\\' || cmd[i + 1] == '$' || cmd[i + 1] == '`')) {
                cur += cmd[++i];
            } else {
                cur += c;
            }
            continue;
        }
        if (c == '\'' || c == '"') {
            quote = c;
            have = true;
        } else if (c == '\\' && i + 1 < cmd.size()) {
            cur += cmd[++i];
            have = true;
        } else if (c == ' ' || c == '\t' || c == '\n') {
            if (have) out->push_back(cur);
            cur.clear();
            have = false;
        } else {
            cur += c;
            have = true;
        }
    }
    if (quote) return false;
    if (have) out->push_back(cur);
    return true;
}

bool read_compile_db(const std::string &path, std::vector<CompileCommand> *out, std::string *why) {
    out->clear();
    std::ifstream in(path);
    if (!in) {
        *why = "cannot read the compilation database '" + path + "'";
        return false;
    }
    nlohmann::json db = nlohmann::json::parse(in, nullptr, false);
    if (db.is_discarded() || !db.is_array()) {
        *why = "the compilation database '" + path + "' is not a JSON array of entries";
        return false;
    }
    for (size_t i = 0; i < db.size(); i++) {
        const auto &e = db[i];
        auto bad = [&](const std::string &what) {
            *why = "the compilation database '" + path + "', entry " + std::to_string(i) + ": " + what;
            return false;
        };
        if (!e.is_object() || !e.contains("directory") || !e["directory"].is_string() ||
            !e.contains("file") || !e["file"].is_string())
            return bad("it has no \"directory\" or no \"file\"");
        CompileCommand c;
        c.directory = e["directory"].get<std::string>();
        c.file = absolute_in(c.directory, e["file"].get<std::string>());
        if (e.contains("arguments") && e["arguments"].is_array()) {
            for (const auto &a : e["arguments"]) {
                if (!a.is_string()) return bad("an argument is not a string");
                c.args.push_back(a.get<std::string>());
            }
        } else if (e.contains("command") && e["command"].is_string()) {
            if (!split_command(e["command"].get<std::string>(), &c.args))
                return bad("its command has an open quote");
        } else {
            return bad("it has neither \"arguments\" nor \"command\"");
        }
        if (c.args.empty()) return bad("its command is empty");
        out->push_back(std::move(c));
    }
    return true;
}

std::vector<std::string> recompile_args(const CompileCommand &c, const std::string &output,
                                        const std::vector<std::string> &extra) {
    std::vector<std::string> a{c.args.front()};
    for (size_t i = 1; i < c.args.size(); i++) {
        const std::string &s = c.args[i];
        // Options that take the next argument and that graft replaces or drops.
        if (s == "-o" || s == "-MF" || s == "-MT" || s == "-MQ") {
            i++;
            continue;
        }
        if (s == "-M" || s == "-MM" || s == "-MD" || s == "-MMD" || s == "-MP" || s == "-MG" || s == "-c" ||
            (s.size() > 2 && s.rfind("-o", 0) == 0) || s.rfind("-MF", 0) == 0 || s.rfind("-MT", 0) == 0 ||
            s.rfind("-MQ", 0) == 0)
            continue;
        a.push_back(s);
    }
    // Before the source and the rest: later options win, so these come last.
    a.push_back("-ffunction-sections");
    a.push_back("-fdata-sections");
    for (const auto &x : extra) a.push_back(x);
    a.push_back("-c");
    a.push_back("-o");
    a.push_back(output);
    return a;
}

}  // namespace graft::diff
