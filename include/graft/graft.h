/* graft — live patching for running processes. Public patch-authoring API.
 *
 * A patch is a shared object that carries exactly one `struct graft_patch`, exported with
 * GRAFT_PATCH(). The agent inside the target process resolves every `struct graft_func` by name
 * in its object, then moves each thread to the new functions once none of the replaced functions
 * is on its stack (the Linux kernel livepatch consistency model). */
#ifndef GRAFT_GRAFT_H
#define GRAFT_GRAFT_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct graft_object;

struct graft_func {
    const char *old_name;     /* function in the target object */
    void *new_func;           /* replacement */
    unsigned long old_sympos; /* 0: name must be unique; N: the Nth symbol of that name */
};

struct graft_callbacks {
    int (*pre_patch)(struct graft_object *obj);
    void (*post_patch)(struct graft_object *obj);
    void (*pre_unpatch)(struct graft_object *obj);
    void (*post_unpatch)(struct graft_object *obj);
};

struct graft_object {
    const char *name;         /* NULL: the main executable; else soname or basename */
    struct graft_func *funcs; /* array ended by an all-zero entry; may be empty, not NULL */
    struct graft_callbacks callbacks;
};

struct graft_state {
    unsigned long id; /* non-zero */
    unsigned int version;
    void *data;
};

struct graft_patch {
    const char *name;           /* NULL: the patch file's basename without ".so" */
    struct graft_object *objs;  /* ended by an entry with name == NULL and funcs == NULL */
    struct graft_state *states; /* ended by id == 0; may be NULL */
    bool replace;               /* atomic replace (cumulative patch) */
};

/* A reference from a patch to a symbol of its target that the patch cannot link against
 * (a static function, static data, or anything not exported). The agent resolves it with the
 * same rules as graft_func (object by name, NULL for the main executable; sympos 0 = unique)
 * and stores the address into *addr before any callback or new function can run.
 * Declare them with GRAFT_REF(); see docs/patch-authors-guide.md. */
struct graft_ref {
    const char *object; /* NULL: the main executable */
    const char *name;
    unsigned long sympos;
    void **addr;
};

/* A field of a patch made by `graft diff` that holds the address of a target's symbol: 8 bytes
 * at `where` (inside the patch) receive the symbol's address plus `addend`, resolved with the
 * rules of graft_ref, before any callback or new function can run. Patches written by hand use
 * GRAFT_REF instead; `graft diff` lists these in the function graft_patch_relocs it exports. */
struct graft_reloc {
    void *where;
    const char *object; /* NULL: the main executable */
    const char *name;
    unsigned long sympos;
    long addend;
};

#define GRAFT_ABI_VERSION 1

#define GRAFT_CONCAT_(a, b) a##b
#define GRAFT_CONCAT(a, b) GRAFT_CONCAT_(a, b)

#ifdef __cplusplus
#define GRAFT_EXTERN_C extern "C"
#define GRAFT_EXTERN_C_BEGIN extern "C" {
#define GRAFT_EXTERN_C_END }
#else
#define GRAFT_EXTERN_C
#define GRAFT_EXTERN_C_BEGIN
#define GRAFT_EXTERN_C_END
#endif

/* Exactly one per patch .so (C or C++): exports the descriptor under a fixed C name, with the
 * ABI version and the bounds of the patch's GRAFT_REF table. */
#define GRAFT_PATCH(patch_variable)                                                                         \
    GRAFT_EXTERN_C_BEGIN                                                                                    \
    extern __attribute__((weak, visibility("hidden"))) const struct graft_ref __start_graft_refs[];         \
    extern __attribute__((weak, visibility("hidden"))) const struct graft_ref __stop_graft_refs[];          \
    GRAFT_EXTERN_C_END                                                                                      \
    GRAFT_EXTERN_C __attribute__((visibility("default"), used)) struct graft_patch *graft_patch_descriptor( \
        void) {                                                                                             \
        return &(patch_variable);                                                                           \
    }                                                                                                       \
    GRAFT_EXTERN_C __attribute__((visibility("default"), used)) const struct graft_ref *graft_patch_refs(   \
        const struct graft_ref **end) {                                                                     \
        *end = __stop_graft_refs;                                                                           \
        return __start_graft_refs;                                                                          \
    }                                                                                                       \
    GRAFT_EXTERN_C __attribute__((visibility("default"), used)) const unsigned graft_patch_abi =            \
        GRAFT_ABI_VERSION

/* GRAFT_REF(object, "symbol", sympos, pointer_variable): after the patch is loaded,
 * pointer_variable holds the address of `symbol` in `object` (NULL: the main executable).
 *   static int (*orig_helper)(int);   GRAFT_REF(NULL, "helper", 0, orig_helper);
 *   static long *hits;                GRAFT_REF(NULL, "hits", 0, hits);                      */
#define GRAFT_REF(object, symbol, sympos, pointer_variable)                            \
    __attribute__((section("graft_refs"), used)) static struct graft_ref GRAFT_CONCAT( \
        graft_ref_, __COUNTER__) = {(object), (symbol), (sympos), (void **)(void *)&(pointer_variable)}

/* Object state for callbacks: */
enum graft_object_state { GRAFT_OBJECT_LIVE, GRAFT_OBJECT_COMING, GRAFT_OBJECT_GOING };
enum graft_object_state graft_object_state(const struct graft_object *obj);

/* Shadow variables (semantics of klp_shadow_*): */
typedef int (*graft_shadow_ctor_t)(void *obj, void *shadow_data, void *ctor_data);
typedef void (*graft_shadow_dtor_t)(void *obj, void *shadow_data);
void *graft_shadow_get(void *obj, unsigned long id);
void *graft_shadow_alloc(void *obj, unsigned long id, size_t size, graft_shadow_ctor_t ctor, void *ctor_data);
void *graft_shadow_get_or_alloc(void *obj, unsigned long id, size_t size, graft_shadow_ctor_t ctor,
                                void *ctor_data);
void graft_shadow_free(void *obj, unsigned long id, graft_shadow_dtor_t dtor);
void graft_shadow_free_all(unsigned long id, graft_shadow_dtor_t dtor);

/* System states (semantics of klp_get_state / klp_get_prev_state): */
struct graft_state *graft_get_state(struct graft_patch *patch, unsigned long id);
struct graft_state *graft_get_prev_state(unsigned long id);

/* Log a line into the agent's log (pr_info for patches and tests): */
void graft_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* For event loops: a point where this thread holds no patched function on its stack. */
void graft_quiescent(void);

#ifdef __cplusplus
}
#endif

#endif /* GRAFT_GRAFT_H */
