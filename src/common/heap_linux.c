/* heap_linux.c — heap-block checks for glibc's malloc, or for the sanitizer's
 * allocator when ASan/TSan replaced it (found at run time through weak symbols).
 *
 * Rule: memory is read directly only where it is known to be readable, so a
 * wild, freed or interior pointer gives MS_ENOTHEAP and never a crash:
 * - the brk heap, [start_brk, sbrk(0)): glibc's main arena, readable throughout;
 * - glibc's thread-arena heaps: 64 MiB-aligned regions starting with a
 *   heap_info whose first `size` bytes are readable. An arena's first heap
 *   holds the arena itself and is never unmapped, so once validated (through a
 *   safe read) it is remembered;
 * - anywhere else (mmapped large blocks, wild pointers), words are copied with
 *   process_vm_readv, which fails with EFAULT instead of faulting: one system
 *   call, for blocks whose allocation already cost an mmap. */
#include "common/heap.h"

#include "common/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <memscope.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/atomic.h"

// Present only when a sanitizer runtime is linked in.
extern int __sanitizer_get_ownership(const volatile void *p) __attribute__((weak));
extern size_t __sanitizer_get_allocated_size(const volatile void *p) __attribute__((weak));
// The GNU linker defines these for every executable, PIE or not.
extern char __executable_start __attribute__((weak));
extern char _end __attribute__((weak));

#define PAGE ((uintptr_t)4096)
#define MAX_STACK ((size_t)1 << 30) /* 1 GiB */

static _Thread_local uintptr_t stack_lo, stack_hi;
static _Thread_local bool stack_known;
static uintptr_t brk_start; /* 0: unknown, so no fast path */
static pthread_once_t brk_once = PTHREAD_ONCE_INIT;

/* While the thread is inside pthread_getattr_np (capture interposes it:
 * capture/real_glibc.c), which holds the thread's lock as it allocates: asking it again
 * from a hook there would deadlock. */
static _Thread_local unsigned attr_held;

void ms__thread_stack_hold(int delta) { attr_held += (unsigned)delta; }

MS_COLD static void learn_stack(void)
{
    if (attr_held) // unknown for now: the walk takes the unwinder; asked again later
        return;
    pthread_attr_t attr;
    int saved = errno;
    stack_known = true;
    ms__internal_enter(); // glibc may allocate (the main thread reads /proc/self/maps)
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *addr;
        size_t size;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            // Under `ulimit -s unlimited` glibc gives the main thread all the
            // room down to the mapping below, which may be the brk heap:
            // its blocks then looked like stack. No stack here is bigger.
            stack_hi = (uintptr_t)addr + size;
            stack_lo = stack_hi - (size > MAX_STACK ? MAX_STACK : size);
        }
        pthread_attr_destroy(&attr);
    }
    ms__internal_leave();
    errno = saved;
}

void ms__thread_stack(uintptr_t *lo, uintptr_t *hi)
{
    if (ms_unlikely(!stack_known))
        learn_stack();
    *lo = stack_lo;
    *hi = stack_hi;
}

/* start_brk is field 47 of /proc/self/stat (Linux 3.5+). Read into a stack
 * buffer: no allocation. */
static void learn_brk(void)
{
    char buf[2048];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    // Field 2 (comm) may hold spaces: count fields after its closing ')'.
    char *p = strrchr(buf, ')');
    if (!p)
        return;
    int field = 2;
    for (p++; *p && field < 47; p++)
        if (*p == ' ')
            field++;
    if (field == 47)
        brk_start = (uintptr_t)strtoull(p, NULL, 10);
}

/* Is [lo, hi) inside the brk heap, which is mapped throughout? */
static bool in_brk_heap(uintptr_t lo, uintptr_t hi)
{
    if (brk_start == 0 || lo < brk_start)
        return false;
    uintptr_t top = (uintptr_t)sbrk(0); // glibc caches the break: no system call
    return top != (uintptr_t)-1 && hi <= top;
}

/* Copy n bytes at addr, or fail (EFAULT) if any of them is unreadable. */
static bool safe_read(uintptr_t addr, void *out, size_t n)
{
    struct iovec local = {out, n}, remote = {(void *)addr, n};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n;
}

/* glibc's heap_info, at the start of each thread-arena heap (malloc/arena.c). */
typedef struct glibc_heap_info {
    void *ar_ptr, *prev;
    size_t size, mprotect_size, pagesize;
    size_t pad;
} glibc_heap_info;
#define ARENA_HEAP_MAX ((uintptr_t)64 << 20) /* HEAP_MAX_SIZE on 64-bit */
#define MAX_HEAPS 256u

static _Atomic uintptr_t heap_bases[MAX_HEAPS]; /* validated first heaps */
static _Atomic unsigned heap_count;
static _Thread_local uintptr_t last_heap;

static bool is_known_heap(uintptr_t base)
{
    if (base == last_heap)
        return true;
    unsigned n = ms_atomic_load_acquire(&heap_count);
    for (unsigned i = 0; i < n && i < MAX_HEAPS; i++)
        if (ms_atomic_load_relaxed(&heap_bases[i]) == base) {
            last_heap = base;
            return true;
        }
    return false;
}

/* Is `base` the first heap of a glibc thread arena? A safe read decides, and
 * a yes is remembered (such a heap lives as long as the process). */
MS_COLD static bool learn_heap(uintptr_t base)
{
    glibc_heap_info h;
    if (!safe_read(base, &h, sizeof h))
        return false;
    if (h.ar_ptr != (void *)(base + sizeof h) || h.prev != NULL || h.size == 0 ||
        h.size > ARENA_HEAP_MAX || h.pagesize != (size_t)sysconf(_SC_PAGESIZE))
        return false;
    unsigned i = ms_atomic_add_acq_rel(&heap_count, 1);
    if (i < MAX_HEAPS)
        ms_atomic_store_release(&heap_bases[i], base);
    last_heap = base;
    return true;
}

/* Is [lo, hi) inside the readable part of a known thread-arena heap? */
static bool in_arena_heap(uintptr_t lo, uintptr_t hi)
{
    uintptr_t base = lo & ~(ARENA_HEAP_MAX - 1);
    if (base == 0 || (hi - 1) - base >= ARENA_HEAP_MAX)
        return false;
    if (!is_known_heap(base) && !learn_heap(base))
        return false;
    // The owning arena grows `size` under its lock; a stale value is smaller,
    // never larger than what is readable.
    size_t size = ((volatile const glibc_heap_info *)base)->size;
    return lo >= base + sizeof(glibc_heap_info) && hi <= base + size;
}

/* Copy the words at [lo, hi) into out, reading directly where that is known
 * to be safe and through process_vm_readv elsewhere. */
static bool read_words(uintptr_t lo, uintptr_t hi, size_t *out)
{
    if (in_brk_heap(lo, hi) || in_arena_heap(lo, hi)) {
        memcpy(out, (const void *)lo, hi - lo);
        return true;
    }
    return safe_read(lo, out, hi - lo);
}

static int glibc_block_size(uintptr_t a, size_t *size, bool inner);

int ms__heap_block_size(uintptr_t a, size_t *size) { return glibc_block_size(a, size, false); }

/* `inner`: a is the glibc block below a sampled block's pointer. */
static int glibc_block_size(uintptr_t a, size_t *size, bool inner)
{
    const void *p = (const void *)a;
    const size_t W = sizeof(size_t);
    if (__sanitizer_get_ownership) {
        // Every 64-bit malloc aligns to 8 at least. (TSan's ownership check
        // accepts interior pointers, so this is what catches malloc() + 1 there.)
        if (a % 8 != 0 || !__sanitizer_get_ownership(p))
            return MS_ENOTHEAP;
        *size = __sanitizer_get_allocated_size(p);
        return 0;
    }
    // glibc returns blocks aligned to 2 * sizeof(size_t).
    if (a % (2 * W) != 0 || a < PAGE)
        return MS_ENOTHEAP;
    if (ms_unlikely(!stack_known))
        learn_stack();
    if (a >= stack_lo && a < stack_hi)
        return MS_ENOTHEAP;
    if (&__executable_start && &_end && a >= (uintptr_t)&__executable_start && a < (uintptr_t)&_end)
        return MS_ENOTHEAP;
    pthread_once(&brk_once, learn_brk);

    // The chunk header: prev_size and size, just below the block.
    uintptr_t chunk = a - 2 * W;
    size_t hdr[2];
    if (!read_words(chunk, a, hdr))
        return MS_ENOTHEAP;
    if (hdr[1] == MS__SAMPLED_MAGIC && !inner) {
        // A block capture sampled: its header says where glibc's block starts.
        size_t off = hdr[0];
        if (off < 2 * W || off % (2 * W) != 0 || off > MS__SAMPLED_MAX_OFF || off >= a ||
            glibc_block_size(a - off, size, true) != 0 || *size < off)
            return MS_ENOTHEAP;
        *size -= off;
        return 0;
    }
    size_t csize = hdr[1] & ~(size_t)7;
    if (hdr[1] & 2) { // IS_MMAPPED: the chunk and its span are page-aligned
        size_t prev = hdr[0];
        if (csize < PAGE || (chunk - prev) % PAGE != 0 || (prev + csize) % PAGE != 0 ||
            in_brk_heap(chunk, a))
            return MS_ENOTHEAP;
        *size = csize - 2 * W; // what malloc_usable_size says of an mmapped chunk
        return 0;
    }
    if (csize < 4 * W || csize % (2 * W) != 0 || csize > ((size_t)1 << 40))
        return MS_ENOTHEAP;
    // Whether the chunk is in use is the PREV_INUSE bit of the next chunk's
    // size, which must be readable too.
    uintptr_t next = chunk + csize;
    size_t next_hdr[2];
    if (next < chunk || !read_words(next, next + 2 * W, next_hdr) || !(next_hdr[1] & 1))
        return MS_ENOTHEAP; // not in use: a freed chunk
    *size = csize - W;
    return 0;
}
