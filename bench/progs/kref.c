/* The C half of the kernel-style reference (kref.S): klp_ftrace_handler() as in
 * kernel/livepatch/patch.c, with the same loads, barriers and recursion guard. Data: one ops
 * with a func_stack holding one klp_func whose new function is f_kref_new (x + 2). */
#include <stdint.h>

#define NOPATCH __attribute__((noipa, patchable_function_entry(0, 0)))

struct kref_func {
    void *new_func;
    int transition;
    int nop;
    struct kref_func *next; /* the next lower entry of the func_stack */
};
struct kref_ops {
    struct kref_func *func_stack; /* top */
};

NOPATCH uint64_t f_kref_new(uint64_t x) { return x + 2; }

static struct kref_func g_func = {(void *)f_kref_new, 0, 0, 0};
struct kref_ops kref_ops = {&g_func};

/* current->patch_state and current->trace_recursion: thread-local, local-exec (as cheap as the
 * kernel's per-cpu `current`). */
static __thread int t_patch_state = 1;
static __thread unsigned t_recursion;

NOPATCH void kref_set_transition(int on) { __atomic_store_n(&g_func.transition, on, __ATOMIC_RELEASE); }

NOPATCH void kref_handler(uintptr_t ip, uintptr_t parent_ip, struct kref_ops *ops, uintptr_t *regs_ip) {
    (void)ip;
    (void)parent_ip;
    /* ftrace_test_recursion_trylock() */
    if (t_recursion) return;
    t_recursion = 1;
    __asm__ volatile("" ::: "memory"); /* preempt_disable_notrace() */
    struct kref_func *func = __atomic_load_n(&ops->func_stack, __ATOMIC_ACQUIRE);
    if (!func) goto unlock;
    if (__atomic_load_n(&func->transition, __ATOMIC_RELAXED)) {
        __atomic_thread_fence(__ATOMIC_ACQUIRE); /* smp_rmb() */
        int patch_state = t_patch_state;
        if (patch_state == 0) { /* KLP_UNPATCHED */
            func = func->next;
            if (!func) goto unlock;
        }
    }
    if (func->nop) goto unlock;
    *regs_ip = (uintptr_t)func->new_func; /* ftrace_regs_set_instruction_pointer() */
unlock:
    __asm__ volatile("" ::: "memory");
    t_recursion = 0;
}
