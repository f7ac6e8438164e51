/* pages.c — the one place that maps and unmaps memory. */
#include "common/pages.h"

#include <string.h>
#include <sys/mman.h>

void *ms__pages_alloc(size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    // Large tables are probed at random: huge pages spare a TLB miss per probe
    // and most page faults (a hint; the kernel may decline).
    if (bytes >= ((size_t)4 << 20))
        madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

void *ms__pages_alloc_written(size_t bytes)
{
    char *p = ms__pages_alloc(bytes);
    for (size_t off = 0; p && off < bytes; off += 4096)
        ((volatile char *)p)[off] = 0;
    return p;
}

void ms__pages_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes ? bytes : 1);
}

void *ms__pages_realloc(void *p, size_t old_bytes, size_t new_bytes)
{
    void *n = ms__pages_alloc(new_bytes);
    if (!n)
        return NULL;
    if (p) {
        memcpy(n, p, old_bytes < new_bytes ? old_bytes : new_bytes);
        ms__pages_free(p, old_bytes);
    }
    return n;
}
