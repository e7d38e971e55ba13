// The platform interface of `graft attach`: a call made in another process's thread that
// returns to where the thread was by itself (the command includes this, never the agent).
#pragma once

#if defined(__x86_64__)
#include "arch/x86_64/remote_call.hpp"
#else
#error "graft supports x86-64 only (docs/limitations.md)"
#endif
