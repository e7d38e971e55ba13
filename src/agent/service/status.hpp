// The answers to `graft status` and `graft threads`, shaped here from what the livepatch core,
// the transition and the walkers report (docs/commands.md gives the fields). Each takes the core
// mutex for one consistent snapshot.
#pragma once
#include <nlohmann/json.hpp>

namespace graft {

nlohmann::json status_json();
nlohmann::json threads_json();

}  // namespace graft
