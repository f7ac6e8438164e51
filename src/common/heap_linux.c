/* heap_linux.c — heap-block checks for glibc's malloc, or for the sanitizer's
 * allocator when ASan/TSan replaced it (found at run time through weak symbols). */
#include "common/heap.h"

#include <memscope.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/atomic.h"

// Present only when a sanitizer runtime is linked in.
extern int __sanitizer_get_ownership(const volatile void *p) __attribute__((weak));
extern size_t __sanitizer_get_allocated_size(const volatile void *p) __attribute__((weak));
// The GNU linker defines these for every executable, PIE or not.
extern char __executable_start __attribute__((weak));
extern char _end __attribute__((weak));

static _Thread_local uintptr_t stack_lo, stack_hi;
static _Thread_local bool stack_known;

MS_COLD static void learn_stack(void)
{
    pthread_attr_t attr;
    stack_known = true;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return;
    void *addr;
    size_t size;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
        stack_lo = (uintptr_t)addr;
        stack_hi = (uintptr_t)addr + size;
    }
    pthread_attr_destroy(&attr);
}

static bool page_is_mapped(uintptr_t addr)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char vec;
    void *base = (void *)(addr & ~((uintptr_t)page - 1));
    return mincore(base, (size_t)page, &vec) == 0;
}

int ms__heap_block_size(const void *p, size_t *size)
{
    uintptr_t a = (uintptr_t)p;
    if (__sanitizer_get_ownership) {
        // Every 64-bit malloc aligns to 8 at least. (TSan's ownership check
        // accepts interior pointers, so this is what catches malloc() + 1 there.)
        if (a % 8 != 0 || !__sanitizer_get_ownership(p))
            return MS_ENOTHEAP;
        *size = __sanitizer_get_allocated_size(p);
        return 0;
    }
    // glibc returns blocks aligned to 2 * sizeof(size_t).
    if (a % (2 * sizeof(size_t)) != 0)
        return MS_ENOTHEAP;
    if (ms_unlikely(!stack_known))
        learn_stack();
    if (a >= stack_lo && a < stack_hi)
        return MS_ENOTHEAP;
    if (&__executable_start && &_end && a >= (uintptr_t)&__executable_start && a < (uintptr_t)&_end)
        return MS_ENOTHEAP;
    // The chunk header sits just below the block; for a page-aligned pointer it
    // is on the previous page, which may not be mapped at all.
    if (a % 4096 == 0 && !page_is_mapped(a - sizeof(size_t)))
        return MS_ENOTHEAP;
    const size_t *hdr = (const size_t *)p - 1;
    size_t csize = *hdr & ~(size_t)7;
    if (*hdr & 2) { // IS_MMAPPED: the chunk and its span are page-aligned
        size_t prev = hdr[-1];
        uintptr_t chunk = a - 2 * sizeof(size_t);
        if (csize < 4096 || (chunk - prev) % 4096 != 0 || (prev + csize) % 4096 != 0)
            return MS_ENOTHEAP;
    } else if (csize < 4 * sizeof(size_t) || csize % (2 * sizeof(size_t)) != 0 ||
               csize > ((size_t)1 << 40)) {
        return MS_ENOTHEAP;
    }
    size_t usable = malloc_usable_size((void *)(uintptr_t)p);
    if (usable == 0) // a freed chunk
        return MS_ENOTHEAP;
    *size = usable;
    return 0;
}
