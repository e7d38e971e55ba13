/* gconv_graft: a minimal glibc gconv module for the 8-bit charset GRAFTTEST (a byte is the
 * code point, 0-255), which glibc loads itself, with its own dlopen, the first time a program
 * opens a conversion from or to GRAFTTEST (iconv_open). GCONV_PATH names the directory holding
 * this module and the `gconv-modules` file that declares it (tests/scenarios/gconv/gconv.cmake).
 *
 * Every character goes through graft_map_char() (identity; gconv_fix: ASCII upper case), in
 * both directions. The module follows glibc's iconv/skeleton.c for the protocol: the step
 * converts into its output buffer, and when it is not the last step passes that output to the
 * next step, resuming the input where the next step stopped. The steps next to ours are
 * glibc's built-in INTERNAL (UCS-4, host byte order) conversions, whose function pointers are
 * not mangled (only those of loaded modules are). */
#include <gconv.h>
#include <stdint.h>
#include <string.h>

__attribute__((noinline)) int graft_map_char(int c) { return c; }

#define FROM_GRAFTTEST ((void *)1) /* GRAFTTEST -> INTERNAL */
#define TO_GRAFTTEST ((void *)2)   /* INTERNAL -> GRAFTTEST */

int gconv_init(struct __gconv_step *step);
int gconv(struct __gconv_step *step, struct __gconv_step_data *data, const unsigned char **inptrp,
          const unsigned char *inend, unsigned char **outbufstart, size_t *irreversible, int do_flush,
          int consume_incomplete);

int gconv_init(struct __gconv_step *step) {
    if (!strcmp(step->__from_name, "GRAFTTEST//")) {
        step->__data = FROM_GRAFTTEST;
        step->__min_needed_from = step->__max_needed_from = 1;
        step->__min_needed_to = step->__max_needed_to = 4;
    } else if (!strcmp(step->__to_name, "GRAFTTEST//")) {
        step->__data = TO_GRAFTTEST;
        step->__min_needed_from = step->__max_needed_from = 4;
        step->__min_needed_to = step->__max_needed_to = 1;
    } else {
        return __GCONV_NOCONV;
    }
    step->__stateful = 0;
    return __GCONV_OK;
}

/* Converts from *inptrp up to inend into *outbufp up to outend; advances both. */
static int convert(int from, const unsigned char **inptrp, const unsigned char *inend, unsigned char **outbufp,
                   unsigned char *outend, int ignore_errors, size_t *lirreversible) {
    const unsigned char *in = *inptrp;
    unsigned char *out = *outbufp;
    int status = __GCONV_EMPTY_INPUT;
    if (from) {
        for (; in < inend; in++) {
            if (outend - out < 4) {
                status = __GCONV_FULL_OUTPUT;
                break;
            }
            uint32_t c = (uint32_t)graft_map_char(*in);
            memcpy(out, &c, 4);
            out += 4;
        }
    } else {
        for (; in < inend; in += 4) {
            if (inend - in < 4) {
                status = __GCONV_INCOMPLETE_INPUT;
                break;
            }
            if (out >= outend) {
                status = __GCONV_FULL_OUTPUT;
                break;
            }
            uint32_t c;
            memcpy(&c, in, 4);
            int m = c > 0xff ? -1 : graft_map_char((int)c);
            if (m < 0 || m > 0xff) {
                if (!ignore_errors) {
                    status = __GCONV_ILLEGAL_INPUT;
                    break;
                }
                ++*lirreversible;
                continue;
            }
            *out++ = (unsigned char)m;
        }
    }
    *inptrp = in;
    *outbufp = out;
    return status;
}

int gconv(struct __gconv_step *step, struct __gconv_step_data *data, const unsigned char **inptrp,
          const unsigned char *inend, unsigned char **outbufstart, size_t *irreversible, int do_flush,
          int consume_incomplete) {
    struct __gconv_step *next_step = step + 1;
    struct __gconv_step_data *next_data = data + 1;
    int last = (data->__flags & __GCONV_IS_LAST) != 0;
    __gconv_fct fct = last ? NULL : next_step->__fct;
    int from = step->__data == FROM_GRAFTTEST;

    if (do_flush) {
        /* Stateless: nothing to emit; reset and pass the flush on. */
        memset(data->__statep, 0, sizeof *data->__statep);
        if (!last) return fct(next_step, next_data, NULL, NULL, NULL, irreversible, do_flush, consume_incomplete);
        return __GCONV_OK;
    }

    unsigned char *outbuf = outbufstart ? *outbufstart : data->__outbuf;
    unsigned char *outend = data->__outbufend;
    int ignore = (data->__flags & __GCONV_IGNORE_ERRORS) != 0;
    size_t lirreversible = 0;
    int status;
    for (;;) {
        const unsigned char *inptr = *inptrp;
        unsigned char *outstart = outbuf;
        status = convert(from, inptrp, inend, &outbuf, outend, ignore, &lirreversible);
        if (outbufstart) {
            *outbufstart = outbuf;
            return status;
        }
        ++data->__invocation_counter;
        if (last) {
            data->__outbuf = outbuf;
            if (irreversible) *irreversible += lirreversible;
            break;
        }
        if (outbuf > outstart) {
            const unsigned char *outerr = data->__outbuf;
            int result = fct(next_step, next_data, &outerr, outbuf, NULL, irreversible, 0, consume_incomplete);
            if (result != __GCONV_EMPTY_INPUT) {
                if (outerr != outbuf) {
                    /* The next step stopped early: take back the input it did not consume. Every
                     * output unit came from one input unit (none skipped in this direction). */
                    size_t units = (size_t)(outerr - outstart) / (from ? 4 : 1);
                    *inptrp = inptr + units * (from ? 1 : 4);
                }
                status = result;
            } else if (status == __GCONV_FULL_OUTPUT) {
                status = __GCONV_OK;
            }
        }
        if (status != __GCONV_OK) break;
        outbuf = data->__outbuf;
    }
    return status;
}
