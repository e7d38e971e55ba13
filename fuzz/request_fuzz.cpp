// The control-request parser (src/agent/service/request.cpp) on arbitrary bytes: it must never crash,
// hang or throw, and what it accepts must satisfy the invariants the agent relies on.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/service/request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    graft::Request req;
    std::string err;
    std::string_view line(reinterpret_cast<const char *>(data), size);
    if (!graft::parse_request(line, &req, &err)) {
        if (err.empty()) std::abort();  // every refusal says why
        return 0;
    }
    // What the parser accepts is what the agent may act on without further checks.
    if (req.path.find('\0') != std::string::npos || req.name.find('\0') != std::string::npos) std::abort();
    if (req.op == graft::Op::kLoad && req.path.empty()) std::abort();
    if (req.op == graft::Op::kSet && (!req.signal_timeout || !std::isfinite(*req.signal_timeout) ||
                                      *req.signal_timeout < 0 || *req.signal_timeout > 86400))
        std::abort();
    return 0;
}
