/* test_klp_shadow_vars (kernel: test_modules/test_klp_shadow_vars.c): not a patch but a target
 * library whose constructor (the kernel module's init) exercises the shadow variable API the
 * agent exports — get, alloc, get_or_alloc, free, free_all — and logs every call and result
 * through graft_log (tests/scenarios/klp/klp_shadow_vars_test.cpp compares the transcript).
 * Pointers are logged as PTR<n>, n given in first-seen order (PTR0 is NULL), so the transcript
 * does not depend on addresses. The graft API has no gfp flags: the kernel's "gfp_flags=" part
 * of the lines is left out. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include <graft/graft.h>

#define pr_info(fmt, ...) graft_log("test_klp_shadow_vars: " fmt, ##__VA_ARGS__)

/* Keep a small list of pointers so that address-agnostic values can be printed, as the kernel's
 * module does (and, like it, without leaning on the shadow variable API it tests). */
struct shadow_ptr {
    void *ptr;
    int id;
    struct shadow_ptr *next;
};
static struct shadow_ptr *ptr_list;

static void free_ptr_list(void) {
    while (ptr_list) {
        struct shadow_ptr *sp = ptr_list;
        ptr_list = sp->next;
        free(sp);
    }
}

static int ptr_id(void *ptr) {
    static int count;
    for (struct shadow_ptr *sp = ptr_list; sp; sp = sp->next)
        if (sp->ptr == ptr) return sp->id;
    struct shadow_ptr *sp = malloc(sizeof(*sp));
    if (!sp) return -ENOMEM;
    sp->ptr = ptr;
    sp->id = count++;
    sp->next = ptr_list;
    ptr_list = sp;
    return sp->id;
}

/* Wrappers that echo the function, its arguments and its result to the log. */
static void *shadow_get(void *obj, unsigned long id) {
    int **sv = graft_shadow_get(obj, id);
    pr_info("graft_%s(obj=PTR%d, id=0x%lx) = PTR%d", "shadow_get", ptr_id(obj), id, ptr_id(sv));
    return sv;
}

static void *shadow_alloc(void *obj, unsigned long id, size_t size, graft_shadow_ctor_t ctor, void *ctor_data) {
    int **var = ctor_data;
    int **sv = graft_shadow_alloc(obj, id, size, ctor, var);
    pr_info("graft_%s(obj=PTR%d, id=0x%lx, size=%zx), ctor=PTR%d, ctor_data=PTR%d = PTR%d", "shadow_alloc",
            ptr_id(obj), id, size, ptr_id((void *)ctor), ptr_id(*var), ptr_id(sv));
    return sv;
}

static void *shadow_get_or_alloc(void *obj, unsigned long id, size_t size, graft_shadow_ctor_t ctor,
                                 void *ctor_data) {
    int **var = ctor_data;
    int **sv = graft_shadow_get_or_alloc(obj, id, size, ctor, var);
    pr_info("graft_%s(obj=PTR%d, id=0x%lx, size=%zx), ctor=PTR%d, ctor_data=PTR%d = PTR%d",
            "shadow_get_or_alloc", ptr_id(obj), id, size, ptr_id((void *)ctor), ptr_id(*var), ptr_id(sv));
    return sv;
}

static void shadow_free(void *obj, unsigned long id, graft_shadow_dtor_t dtor) {
    graft_shadow_free(obj, id, dtor);
    pr_info("graft_%s(obj=PTR%d, id=0x%lx, dtor=PTR%d)", "shadow_free", ptr_id(obj), id, ptr_id((void *)dtor));
}

static void shadow_free_all(unsigned long id, graft_shadow_dtor_t dtor) {
    graft_shadow_free_all(id, dtor);
    pr_info("graft_%s(id=0x%lx, dtor=PTR%d)", "shadow_free_all", id, ptr_id((void *)dtor));
}

/* Shadow variable constructor - remember simple pointer data */
static int shadow_ctor(void *obj, void *shadow_data, void *ctor_data) {
    int **sv = shadow_data;
    int **var = ctor_data;
    (void)obj;
    if (!var) return -EINVAL;
    *sv = *var;
    pr_info("%s: PTR%d -> PTR%d", __func__, ptr_id(sv), ptr_id(*var));
    return 0;
}

/* With more than one item to free in the list, order is not determined and shadow_dtor will not
 * be passed to shadow_free_all() which would make the test fail. (see pass 6) */
static void shadow_dtor(void *obj, void *shadow_data) {
    int **sv = shadow_data;
    pr_info("%s(obj=PTR%d, shadow_data=PTR%d)", __func__, ptr_id(obj), ptr_id(sv));
}

/* number of objects we simulate that need shadow vars */
#define NUM_OBJS 3

/* dynamically created obj fields have the following shadow var id values */
#define SV_ID1 0x1234
#define SV_ID2 0x1235

/* The shadow variables added to and removed from these instances stand for new fields
 * (char nfield1; int nfield2;). */
struct test_object {
    struct shadow_ptr sp; /* anything, to avoid an empty struct */
};

static int test_klp_shadow_vars_init(void) {
    struct test_object objs[NUM_OBJS];
    char nfields1[NUM_OBJS], *pnfields1[NUM_OBJS], **sv1[NUM_OBJS];
    char *pndup[NUM_OBJS];
    int nfields2[NUM_OBJS], *pnfields2[NUM_OBJS], **sv2[NUM_OBJS];
    void **sv;
    int ret;
    int i;

    ptr_id(NULL);

    /* With an empty shadow variable hash table, expect not to find any matches. */
    sv = shadow_get(&objs[0], SV_ID1);
    if (!sv) pr_info("  got expected NULL result");

    /* pass 1: init & alloc a char+int pair of svars for each objs */
    for (i = 0; i < NUM_OBJS; i++) {
        pnfields1[i] = &nfields1[i];
        ptr_id(pnfields1[i]);
        if (i % 2)
            sv1[i] = shadow_alloc(&objs[i], SV_ID1, sizeof(pnfields1[i]), shadow_ctor, &pnfields1[i]);
        else
            sv1[i] = shadow_get_or_alloc(&objs[i], SV_ID1, sizeof(pnfields1[i]), shadow_ctor, &pnfields1[i]);
        if (!sv1[i]) {
            ret = -ENOMEM;
            goto out;
        }
        pnfields2[i] = &nfields2[i];
        ptr_id(pnfields2[i]);
        sv2[i] = shadow_alloc(&objs[i], SV_ID2, sizeof(pnfields2[i]), shadow_ctor, &pnfields2[i]);
        if (!sv2[i]) {
            ret = -ENOMEM;
            goto out;
        }
    }

    /* pass 2: verify we find allocated svars and where they point to */
    for (i = 0; i < NUM_OBJS; i++) {
        /* check the "char" svar for all objects */
        sv = shadow_get(&objs[i], SV_ID1);
        if (!sv) {
            ret = -EINVAL;
            goto out;
        }
        if ((char **)sv == sv1[i] && *sv1[i] == pnfields1[i])
            pr_info("  got expected PTR%d -> PTR%d result", ptr_id(sv1[i]), ptr_id(*sv1[i]));

        /* check the "int" svar for all objects */
        sv = shadow_get(&objs[i], SV_ID2);
        if (!sv) {
            ret = -EINVAL;
            goto out;
        }
        if ((int **)sv == sv2[i] && *sv2[i] == pnfields2[i])
            pr_info("  got expected PTR%d -> PTR%d result", ptr_id(sv2[i]), ptr_id(*sv2[i]));
    }

    /* pass 3: verify that 'get_or_alloc' returns already allocated svars */
    for (i = 0; i < NUM_OBJS; i++) {
        pndup[i] = &nfields1[i];
        ptr_id(pndup[i]);
        sv = shadow_get_or_alloc(&objs[i], SV_ID1, sizeof(pndup[i]), shadow_ctor, &pndup[i]);
        if (!sv) {
            ret = -EINVAL;
            goto out;
        }
        if ((char **)sv == sv1[i] && *sv1[i] == pnfields1[i])
            pr_info("  got expected PTR%d -> PTR%d result", ptr_id(sv1[i]), ptr_id(*sv1[i]));
    }

    /* pass 4: free <objs[*], SV_ID1> pairs of svars, verify removal */
    for (i = 0; i < NUM_OBJS; i++) {
        shadow_free(&objs[i], SV_ID1, shadow_dtor); /* 'char' pairs */
        sv = shadow_get(&objs[i], SV_ID1);
        if (!sv) pr_info("  got expected NULL result");
    }

    /* pass 5: check we still find <objs[*], SV_ID2> svar pairs */
    for (i = 0; i < NUM_OBJS; i++) {
        sv = shadow_get(&objs[i], SV_ID2); /* 'int' pairs */
        if (!sv) {
            ret = -EINVAL;
            goto out;
        }
        if ((int **)sv == sv2[i] && *sv2[i] == pnfields2[i])
            pr_info("  got expected PTR%d -> PTR%d result", ptr_id(sv2[i]), ptr_id(*sv2[i]));
    }

    /* pass 6: free all the <objs[*], SV_ID2> svar pairs too. */
    shadow_free_all(SV_ID2, NULL); /* 'int' pairs */
    for (i = 0; i < NUM_OBJS; i++) {
        sv = shadow_get(&objs[i], SV_ID2);
        if (!sv) pr_info("  got expected NULL result");
    }

    free_ptr_list();
    return 0;
out:
    shadow_free_all(SV_ID1, NULL); /* 'char' pairs */
    shadow_free_all(SV_ID2, NULL); /* 'int' pairs */
    free_ptr_list();
    return ret;
}

/* module_init: a library's constructor cannot fail its dlopen; a failure shows as a missing
 * line of the transcript, and this line. */
__attribute__((constructor)) static void test_klp_shadow_vars_ctor(void) {
    int ret = test_klp_shadow_vars_init();
    if (ret) pr_info("test_klp_shadow_vars_init failed: %d", ret);
}
