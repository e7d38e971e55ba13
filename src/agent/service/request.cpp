#include "agent/service/request.hpp"

#include <cmath>
#include <new>

#include <nlohmann/json.hpp>

#include "agent/livepatch/transition.hpp"  // kMaxSignalTimeout (a constant: nothing to link)

namespace graft {
namespace {

// Longest path or patch name accepted (PATH_MAX): past it no file or patch can match anyway.
constexpr size_t kMaxString = 4096;

// For error messages: a client's string, cut short so that an answer stays small.
std::string quoted(const std::string &s) {
    constexpr size_t kShown = 64;
    return "'" + (s.size() > kShown ? s.substr(0, kShown) + "..." : s) + "'";
}

bool string_field(const nlohmann::json &req, const char *key, std::string *out, std::string *err) {
    auto it = req.find(key);
    if (it == req.end() || !it->is_string()) {
        *err = std::string("malformed request: missing string field '") + key + "'";
        return false;
    }
    const auto &s = it->get_ref<const std::string &>();
    // A NUL would make the C string the agent opens differ from the string it checked.
    if (s.find('\0') != std::string::npos) {
        *err = std::string("malformed request: field '") + key + "' contains a NUL byte";
        return false;
    }
    if (s.empty() || s.size() > kMaxString) {
        *err = std::string("malformed request: field '") + key + "' is empty or longer than " +
               std::to_string(kMaxString) + " bytes";
        return false;
    }
    *out = s;
    return true;
}

// "since" of a log request: optional, a non-negative integer.
bool parse_since(const nlohmann::json &req, Request *out, std::string *err) {
    if (auto it = req.find("since"); it != req.end()) {
        if (!it->is_number_unsigned()) {
            *err = "malformed request: 'since' must be a non-negative integer";
            return false;
        }
        out->since = it->get<uint64_t>();
    }
    return true;
}

// "symbols" of a load request: optional, an array of at most kMaxSymbolFiles absolute paths.
bool parse_symbols(const nlohmann::json &req, Request *out, std::string *err) {
    auto it = req.find("symbols");
    if (it == req.end()) return true;
    if (!it->is_array() || it->size() > kMaxSymbolFiles) {
        *err = "malformed request: 'symbols' must be an array of at most " + std::to_string(kMaxSymbolFiles) +
               " paths";
        return false;
    }
    for (const auto &v : *it) {
        nlohmann::json one = {{"symbols", v}};
        std::string s;
        if (!string_field(one, "symbols", &s, err)) return false;
        if (s[0] != '/') {
            *err = "malformed request: symbol file " + (quoted)(s) + " is not an absolute path";
            return false;
        }
        out->symbols.push_back(s);
    }
    return true;
}

// "signal_timeout" of a set request: a finite number of seconds in [0, kMaxSignalTimeout].
bool parse_signal_timeout(const nlohmann::json &req, Request *out, std::string *err) {
    auto it = req.find("signal_timeout");
    if (it == req.end()) {
        *err = "malformed request: nothing to set";
        return false;
    }
    if (!it->is_number()) {
        *err = "malformed request: 'signal_timeout' must be a number of seconds";
        return false;
    }
    double v = it->get<double>();
    // The negated comparison also refuses NaN; a huge integer converts to a huge double.
    if (!std::isfinite(v) || !(v >= 0 && v <= kMaxSignalTimeout)) {
        *err = "malformed request: 'signal_timeout' must be a number of seconds from 0 to " +
               std::to_string(static_cast<int>(kMaxSignalTimeout));
        return false;
    }
    out->signal_timeout = v;
    return true;
}

// "tids" of a task_files request: an array of at most kMaxTaskFileTids thread ids (> 0).
bool parse_tids(const nlohmann::json &req, Request *out, std::string *err) {
    auto it = req.find("tids");
    if (it == req.end() || !it->is_array() || it->size() > kMaxTaskFileTids) {
        *err = "malformed request: 'tids' must be an array of at most " + std::to_string(kMaxTaskFileTids) +
               " thread ids";
        return false;
    }
    for (const auto &v : *it) {
        if (!v.is_number_unsigned() || v.get<uint64_t>() == 0 || v.get<uint64_t>() > 0x3fffffff) {
            *err = "malformed request: a thread id in 'tids' is not a positive integer";
            return false;
        }
        out->tids.push_back(static_cast<pid_t>(v.get<uint64_t>()));
    }
    return true;
}

bool parse_json(const nlohmann::json &req, Request *out, std::string *err) {
    if (!req.is_object()) {
        *err = "malformed request: expected {\"op\": ...}";
        return false;
    }
    auto op_it = req.find("op");
    if (op_it == req.end() || !op_it->is_string()) {
        *err = "malformed request: expected {\"op\": ...}";
        return false;
    }
    const auto &op = op_it->get_ref<const std::string &>();
    *out = Request{};
    if (op == "ping") {
        out->op = Op::kPing;
    } else if (op == "status") {
        out->op = Op::kStatus;
    } else if (op == "threads") {
        out->op = Op::kThreads;
    } else if (op == "load") {
        out->op = Op::kLoad;
        if (!string_field(req, "path", &out->path, err)) return false;
        if (!parse_symbols(req, out, err)) return false;
    } else if (op == "disable" || op == "enable" || op == "force" || op == "unload") {
        out->op = op == "disable"  ? Op::kDisable
                  : op == "enable" ? Op::kEnable
                  : op == "force"  ? Op::kForce
                                   : Op::kUnload;
        if (!string_field(req, "name", &out->name, err)) return false;
    } else if (op == "log") {
        out->op = Op::kLog;
        if (!parse_since(req, out, err)) return false;
    } else if (op == "set") {
        out->op = Op::kSet;
        if (!parse_signal_timeout(req, out, err)) return false;
    } else if (op == "task_files") {
        out->op = Op::kTaskFiles;
        if (!parse_tids(req, out, err)) return false;
    } else {
        *err = "unknown request " + quoted(op);
        return false;
    }
    return true;
}

}  // namespace

bool parse_request(std::string_view line, Request *out, std::string *err) {
    try {
        if (line.size() > kMaxRequestBytes) {
            *err = "malformed request: longer than " + std::to_string(kMaxRequestBytes) + " bytes";
            return false;
        }
        // No exceptions from the parser: a syntax error is an ordinary outcome here.
        auto req = nlohmann::json::parse(line, nullptr, false);
        if (req.is_discarded()) {
            *err = "malformed request: not a JSON object on one line";
            return false;
        }
        return parse_json(req, out, err);
    } catch (const std::exception &e) {
        // bad_alloc, or a conversion the checks above did not foresee: refuse, never throw.
        try {
            *err = std::string("malformed request: ") + e.what();
        } catch (...) {
        }
        return false;
    }
}

}  // namespace graft
