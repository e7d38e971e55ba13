// Ordinary entries: functions built without graft's patchable entry get a 5-byte jmp at their
// entry (after endbr64) to a relocation block (arch/x86_64/relocate.hpp), written while other
// threads keep running the function (docs/design.md, "Ordinary entries").
//
// The write protocol, for a batch of entries to open (original -> jmp) or close (jmp ->
// original):
//   1. an int3 over each entry's first byte; every core serialised (sync_cores)
//   2. every other thread seen once with no frame inside any entry's changing bytes: asleep in
//      the kernel (/proc/self/task/T/syscall says where, without waking it; its stack is scanned
//      for a saved pc inside), at an int3 (the trap handler records it), or interrupted by the
//      transition signal (only threads the kernel shows busy on a CPU get it). A thread that was inside moves
//      on as soon as it runs, and none can enter again: the int3 stands at the only way in
//   3. bytes 1..4 written; every core serialised
//   4. the first byte written; every core serialised
// A thread meeting an int3 is sent by the SIGTRAP handler to the block's jump, which goes where
// the slot says: the selector, a new function or the relocated original, correct whichever state
// the entry is in. If step 2 does not finish in time the first bytes are put back: nothing changed.
// Core mutex.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "arch/arch.hpp"
#include "arch/x86_64/relocate.hpp"

namespace graft {

// Builds the relocation block of the function [func, func+size) and describes its entry in *out
// (closed: nothing in the function changed yet). False and the reason when it cannot be done.
bool prepare_ordinary_entry(uintptr_t func, size_t size, arch::EntryLayout *out, std::string *why,
                            const std::vector<arch::CodeRange> &cold = {});

// One entry's change. An open entry's jmp leads to its block (jump_to == 0), or straight to the
// block's own destination when that is within a rel32's reach (the selector's stub while the
// function is in a transition, the new function once it settled): one jump instead of two. A
// change of destination alone (was_open && open) needs no wait: no thread can stand inside the
// bytes of a jmp, only before it, and the int3 sends one that meets it through the block, whose
// slot already holds the new destination.
struct EntryFlip {
    const arch::EntryLayout *entry;
    bool open;
    bool was_open = false;
    uintptr_t jump_to = 0;  // where it leads, if open (0: the block)
};
// Where an entry's jmp can lead for a block destination `target`: the target itself if a rel32
// reaches it, else 0 (the block).
uintptr_t ordinary_jump_destination(const arch::EntryLayout &e, uintptr_t target);
// Step 2 above on its own: returns once every other thread was seen outside every range, with no
// frame inside one; false, naming a thread, after 2 s. Only for bytes no thread can enter any more
// (behind an int3, or inside an instruction that now starts before them). Core mutex.
bool wait_threads_outside(const std::vector<arch::CodeRange> &ranges, std::string *why);
// Runs the write protocol above for every flip; on failure nothing changed.
bool flip_ordinary_entries(const std::vector<EntryFlip> &flips, std::string *why);

// The transition signal's handler calls this first: while a rewrite waits for threads (step 2),
// it records the interrupted thread if it stands outside the changing bytes. Async-signal-safe.
void entry_rewrite_on_signal(uintptr_t pc, uintptr_t sp, uintptr_t fp);

}  // namespace graft
