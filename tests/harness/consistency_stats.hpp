// The consistency program's "stats" answer ("stats rounds R v1 A v2 B mixed M bad X"), read by
// the consistency scenario and stress tests.
#pragma once
#include <sstream>
#include <string>

#include "harness.hpp"

namespace graft::test {

struct Stats {
    long rounds = -1, v1 = -1, v2 = -1, mixed = -1, bad = -1;
};

inline Stats read_stats(Target &t) {
    Stats s;
    std::istringstream is(ask(t, "stats", "stats rounds "));
    std::string w;
    if (!(is >> w >> w >> s.rounds >> w >> s.v1 >> w >> s.v2 >> w >> s.mixed >> w >> s.bad)) return Stats{};
    return s;
}

}  // namespace graft::test
