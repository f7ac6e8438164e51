/* probe.c — test_cfi's probe, built with frame pointers (as memscope's hooks
 * are): the stack of the call to it, walked by ms__cfi_walk from its frame
 * as src/stack/stack.c does, and by glibc's backtrace() for comparison. */
#include "cfi/probe.h"

#include <execinfo.h>

#include "common/heap.h"
#include "stack/cfi.h"

/* backtrace()'s frames from ret on. */
static void by_backtrace(cfi_walk *w, uintptr_t ret)
{
    void *tmp[CFI_MAX + 16];
    int got = backtrace(tmp, (int)(sizeof tmp / sizeof *tmp));
    w->nbt = 0;
    for (int i = 0; i < got; i++) {
        if ((uintptr_t)tmp[i] != ret)
            continue;
        for (int j = i; j < got && w->nbt < CFI_MAX; j++)
            w->bt[w->nbt++] = (uintptr_t)tmp[j];
        break;
    }
}

__attribute__((noinline)) void cfi_probe(cfi_walk *w)
{
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    uintptr_t ret = (uintptr_t)__builtin_return_address(0);
    uintptr_t lo, hi;
    ms__thread_stack(&lo, &hi);
    if (w->keep)
        hi = fp + w->keep;
    w->ncfi = ms__cfi_walk(ret, fp + 16, *(const uintptr_t *)fp, lo, hi, w->cfi,
                           w->max ? w->max : CFI_MAX);
    by_backtrace(w, ret);
}

__attribute__((noinline)) void cfi_probe_frame(cfi_walk *w)
{
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    static ms__cfi_memo memo; // one thread's, as in its store buffer
    w->ncfi = ms__cfi_walk_frame(fp, 0, w->cfi, w->max ? w->max : CFI_MAX, &memo);
    by_backtrace(w, (uintptr_t)__builtin_return_address(0));
}
