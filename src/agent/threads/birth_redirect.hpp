// Threads born after an attach: pthread_create calls routed through thread_birth.cpp.
//
// Under `graft run` the agent's pthread_create interposes on the C library's for every object,
// so every new thread claims its slot and copies its creator's state before its start routine
// runs (klp_copy_process). An agent loaded into a running process comes after the C library in
// every lookup scope: each object's calls already go to the C library's pthread_create through
// its GOT slot. This points those slots at thread_birth's pthread_create, so that a thread born
// after the attach is known to the worker from its first instruction and can be checked where it
// blocks, like one seen at the attach (docs/design.md §4.13).
#pragma once
#include <cstddef>

namespace graft {

struct BirthRedirects {
    size_t redirected = 0;     // slots now pointing at thread_birth's pthread_create
    size_t read_only = 0;      // slots left alone: in a read-only page that could not be rewritten now
    size_t foreign = 0;        // slots left alone: holding neither the C library's function nor a PLT stub
    size_t left_writable = 0;  // RELRO pages whose protection could not be put back (mprotect failed)
};

// Points every GOT slot of pthread_create in every loaded object (other than the agent and the C
// library) at thread_birth's pthread_create, and makes that one call what the slots called.
// Only with the loader's lists stable: from the agent's constructor under attach, inside the
// dlopen that holds the loader's lock (`loader_locked`: no other load is in flight, so slots in
// RELRO pages, bound at load time by `-z now`, are rewritten too, the page made writable for the
// store), or with the core mutex held and loader_quiet() true (a dlopen may still be relocating
// an object: slots in read-only pages are left alone). Never changes a slot another tool already
// redirected.
BirthRedirects redirect_thread_births(bool loader_locked);

// Whether redirect_thread_births() ran (the agent was attached): later transitions redirect the
// slots of objects loaded since.
bool thread_births_redirected();

}  // namespace graft
