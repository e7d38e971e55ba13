/* Offsets of the fields the hand-written fast path of the selector reads
 * (src/arch/x86_64/trampoline.S). Included by that file and by src/agent/livepatch/selector.cpp, which
 * checks every value against the C++ definitions with static_assert: a change of layout fails
 * the build instead of the selector. Plain #defines: the assembler reads this file too. */
#ifndef GRAFT_ARCH_X86_64_SELECTOR_LAYOUT_H
#define GRAFT_ARCH_X86_64_SELECTOR_LAYOUT_H

/* The stub array of trampoline.S: how many stubs, and the bytes of each (src/arch/arch.hpp) */
#define GRAFT_STUB_COUNT 32768
#define GRAFT_STUB_SIZE 16

/* graft::ThreadSlot (src/agent/threads/thread_state.hpp) */
#define GRAFT_SLOT_SEQ 4
#define GRAFT_SLOT_NEST 8
#define GRAFT_SLOT_WORD 16
#define GRAFT_SLOT_APPROVED 24
#define GRAFT_SLOT_BUSY_RA 40
#define GRAFT_SLOT_COUNTDOWN 52
#define GRAFT_SLOT_SLOW_FORCED 60

/* graft::TransitionView (src/agent/threads/thread_state.hpp) */
#define GRAFT_VIEW_GEN 0
#define GRAFT_VIEW_INITIAL 4
#define GRAFT_VIEW_TARGET 8
#define GRAFT_VIEW_EPOCH 12

/* graft::FuncStack and graft::Func (src/agent/livepatch/patch.hpp): the selector's fields come first */
#define GRAFT_STACK_TOP 0
#define GRAFT_STACK_BODY 40
#define GRAFT_STACK_STUB 80
#define GRAFT_FUNC_NEW 0
#define GRAFT_FUNC_BELOW 8
#define GRAFT_FUNC_TRANSITION 16
#define GRAFT_FUNC_NOP 17

#endif
