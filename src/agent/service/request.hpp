// Parsing and validating one control request (one line of JSON, src/common/protocol.hpp) into a
// typed Request. Pure: no I/O, no global state, never throws, so that it can be fuzzed on its own
// (fuzz/request_fuzz.cpp) and every check on untrusted bytes lives in one place.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace graft {

enum class Op { kPing, kLoad, kDisable, kEnable, kForce, kUnload, kStatus, kThreads, kLog, kSet, kTaskFiles };

struct Request {
    Op op = Op::kPing;
    std::string path;                  // load: an absolute path, no NUL byte
    std::vector<std::string> symbols;  // load: symbol files named by the user (at most kMaxSymbolFiles)
    std::string name;                  // disable, enable, force, unload: a patch name, no NUL byte
    uint64_t since = 0;                // log: the first sequence number wanted
    // set: seconds, finite, 0 <= v <= kMaxSignalTimeout (one day, transition.hpp).
    std::optional<double> signal_timeout;
    // task_files: the thread ids of the descriptors sent with the request, in their order (at
    // most kMaxTaskFileTids, each > 0).
    std::vector<pid_t> tids;
};

constexpr size_t kMaxTaskFileTids = 1024;

// A load names at most this many symbol files.
constexpr size_t kMaxSymbolFiles = 16;

// A request line is at most this long (the agent stops reading a client past it).
constexpr size_t kMaxRequestBytes = 1 << 20;

// Parses `line` (without its newline). On failure returns false and sets `err` to a sentence
// saying what is wrong (the answer's errno is EINVAL); `out` is then unspecified.
bool parse_request(std::string_view line, Request *out, std::string *err);

}  // namespace graft
