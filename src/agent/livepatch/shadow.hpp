// Shadow variables (klp_shadow_*): the writers' lock, for fork.cpp. The rest of the concept is
// the public C API in graft.h, implemented in shadow.cpp.
#pragma once
#include <mutex>

namespace graft {
// Serialises alloc/free; graft_shadow_get never takes it. Order: lock_order.hpp (free waits for
// a grace period with it held).
extern std::mutex g_shadow_mutex;
}  // namespace graft
