/* hooks.c — the malloc family for the whole process (glibc's "Replacing
 * malloc" rules: malloc, free, calloc and realloc, plus the optional aligned
 * and size functions, all defined together), each forwarding to glibc's own
 * allocator (real.h) and recording into the global tracker.
 *
 * The recording path: no lock, no system call, no string copy. An allocation
 * is recorded after the real one returns; a free before the real free; a
 * realloc takes its moment before the old block is released. The library's own
 * calls (ms__tl_internal) are forwarded unrecorded, so nothing recurses. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/capture.h"
#include "capture/real.h"
#include "common/alloc.h"
#include "store/filter.h"

#define HOOK __attribute__((visibility("default"), noinline))
#define CALLER ((uintptr_t)__builtin_return_address(0))
#define FRAME __builtin_frame_address(0)

/* ms__capture_anchor is what `-u` names so a static link pulls this file in
 * even when the program itself never calls malloc. */
__attribute__((visibility("default"))) const char ms__capture_anchor = 1;

#define rec_enter ms__store_tbuf

/* A record of a thread that has handed its buffer back (it is exiting).
 * @return whether it was recorded. */
MS_COLD static bool record_late(ms_event_store *s, unsigned type, uintptr_t p, uintptr_t old,
                                uint64_t size, uint64_t flags)
{
    return ms__store_thread_exited() &&
           ms__store_push_late(s, type, p, old, size, MS__RF_CAPTURED | flags);
}

MS_COLD static void count_failed(void)
{
    ms__tbuf *b = ms__store_tbuf(ms__cap_tracker->store);
    if (b)
        ms_atomic_add_relaxed(&b->failed_allocs, 1);
}

/* Record the allocation of `n` bytes at p by the caller (fp, ret). */
static inline void record_alloc(void *p, size_t n, const void *fp, uintptr_t ret)
{
    if (ms_unlikely(ms__tl_internal))
        return;
    ms__internal_enter();
    if (ms_unlikely(!p)) {
        count_failed();
        ms__internal_leave();
        return;
    }
    ms_tracker *t = ms__cap_tracker;
    ms_event_store *s = t->store;
    ms__tbuf *b = rec_enter(s);
    if (ms_likely(b)) {
        uint64_t flags = MS__RF_CAPTURED;
        if (ms_unlikely(ms_atomic_load_relaxed(&t->sampling_on))) {
            if (ms__tracker_skip(t, b))
                goto out;
            ms__filter_add(s->filter, (uintptr_t)p);
            flags |= MS__RF_FILTERED;
        }
        uint32_t stack = ms__tracker_stack(t, b, fp, ret, true);
        ms__store_push(s, b, b->slot, MS_EVENT_ALLOCATE, (uintptr_t)p, 0, n,
                       ms__rec_extra(stack, flags), NULL);
    } else if (!ms_atomic_load_relaxed(&t->sampling_on)) {
        record_late(s, MS_EVENT_ALLOCATE, (uintptr_t)p, 0, n, 0);
    }
out:
    ms__internal_leave();
}

/* Record the free of p (before the real free). */
static inline void record_free(void *p)
{
    if (ms_unlikely(ms__tl_internal))
        return;
    ms_tracker *t = ms__cap_tracker;
    ms_event_store *s = t->store;
    if (ms_unlikely(!p)) {
        ms__internal_enter();
        ms__tbuf *b = rec_enter(s);
        if (b)
            ms_atomic_store_relaxed(&b->null_frees, ms_atomic_load_relaxed(&b->null_frees) + 1);
        else if (ms__store_thread_exited())
            ms_atomic_add_relaxed(&s->late_null_frees, 1);
        ms__internal_leave();
        return;
    }
    // While sampling, a block that was not sampled is skipped for one load; a
    // sampled one leaves the filter now, before its address can be reused.
    uint64_t flags = MS__RF_CAPTURED;
    if (ms_unlikely(ms_atomic_load_relaxed(&t->sampling_on))) {
        unsigned v = ms__filter_take(s->filter, (uintptr_t)p);
        if (v == MS__FILTER_NO)
            return;
        if (v == MS__FILTER_TAKEN)
            flags |= MS__RF_TAKEN;
    }
    ms__internal_enter();
    ms__tbuf *b = rec_enter(s);
    uint64_t tick;
    bool recorded;
    if (ms_likely(b)) {
        recorded = ms__store_begin(s, b, MS_EVENT_DEALLOCATE, &tick);
        if (ms_likely(recorded))
            ms__store_commit(b, tick, b->slot, MS_EVENT_DEALLOCATE, (uintptr_t)p, 0, 0, flags,
                             NULL);
    } else {
        recorded = record_late(s, MS_EVENT_DEALLOCATE, (uintptr_t)p, 0, 0, flags & MS__RF_TAKEN);
    }
    // Dropped (counted as such): the live state still holds the block, so the
    // filter must too, or a later free at this address could not heal it.
    if (ms_unlikely(!recorded) && (flags & MS__RF_TAKEN))
        ms__filter_add(s->filter, (uintptr_t)p);
    ms__internal_leave();
}

/* ------------------------------------------------------------ the hooks */

HOOK void *malloc(size_t n)
{
    unsigned m = ms__cap_state();
    if (ms_unlikely(m == MS__CAP_ARENA))
        return ms__arena_alloc(n, 16);
    void *p = ms__real_malloc(n);
    if (m == MS__CAP_ON)
        record_alloc(p, n, FRAME, CALLER);
    return p;
}

HOOK void free(void *p)
{
    unsigned m = ms__cap_state();
    if (ms_unlikely(m == MS__CAP_ARENA))
        return; // the process is about to die: never touch glibc's heap again
    if (m == MS__CAP_ON)
        record_free(p);
    ms__real_free(p);
}

HOOK void *calloc(size_t count, size_t size)
{
    unsigned m = ms__cap_state();
    if (ms_unlikely(m == MS__CAP_ARENA)) {
        size_t n;
        if (__builtin_mul_overflow(count, size, &n)) {
            errno = ENOMEM;
            return NULL;
        }
        return ms__arena_alloc(n, 16); // fresh pages are zero
    }
    void *p = ms__real_calloc(count, size);
    if (m == MS__CAP_ON)
        record_alloc(p, count * size, FRAME, CALLER);
    return p;
}

/* realloc(p, n) of a block: the record's tick is taken before the old block
 * can be handed to another thread. */
static void *realloc_recorded(void *p, size_t n, const void *fp, uintptr_t ret)
{
    ms_tracker *t = ms__cap_tracker;
    ms_event_store *s = t->store;
    bool sampling = ms_atomic_load_relaxed(&t->sampling_on);
    // While sampling, a block that was not sampled stays unsampled when it
    // moves; a sampled one leaves the filter before the call (its address may
    // be reused at once) and comes back if the call fails.
    uint64_t taken = 0;
    if (sampling) {
        unsigned v = ms__filter_take(s->filter, (uintptr_t)p);
        if (v == MS__FILTER_NO)
            return ms__real_realloc(p, n);
        if (v == MS__FILTER_TAKEN)
            taken = MS__RF_TAKEN;
    }
    ms__internal_enter();
    ms__tbuf *b = rec_enter(s);
    uint64_t tick;
    if (!b || !ms__store_begin(s, b, MS_EVENT_REALLOCATE, &tick)) {
        // Exiting thread: free then allocate, each recorded on its side of the call.
        if (!b && !sampling && ms__store_thread_exited()) {
            record_late(s, MS_EVENT_DEALLOCATE, (uintptr_t)p, 0, 0, 0);
            void *q = ms__real_realloc(p, n);
            if (q)
                record_late(s, MS_EVENT_ALLOCATE, (uintptr_t)q, 0, n, 0);
            ms__internal_leave();
            return q;
        }
        if (taken) // unrecorded: the live state still holds p, so the filter does
            ms__filter_add(s->filter, (uintptr_t)p);
        ms__internal_leave();
        return ms__real_realloc(p, n);
    }
    // p's address is recorded, never read after the real call.
    uintptr_t old = (uintptr_t)p;
    void *q = ms__real_realloc(p, n);
    if (!q) { // failed: the old block is untouched, nothing happened
        ms__store_abort(b);
        if (taken)
            ms__filter_add(s->filter, old);
        ms_atomic_add_relaxed(&b->failed_allocs, 1);
        ms__internal_leave();
        return NULL;
    }
    uint64_t flags = MS__RF_CAPTURED;
    if (sampling) { // after a "maybe" the move is counted: the fold may take it back
        if (taken)
            ms__filter_add(s->filter, (uintptr_t)q);
        else
            ms__filter_add_counted(s->filter, (uintptr_t)q);
        flags |= MS__RF_FILTERED;
    }
    // The stack is walked after the record's moment: the walk only reads the
    // caller's frames, which the realloc did not change.
    uint32_t stack = ms__tracker_stack(t, b, fp, ret, true);
    if ((uintptr_t)q == old) {
        ms__store_commit(b, tick, b->slot, MS_EVENT_REALLOCATE, (uintptr_t)q, old, n,
                         ms__rec_extra(stack, flags | taken), NULL);
    } else {
        // Moved: the old block ended at the moment taken before the call; the
        // new one begins now (another thread may have freed this address while
        // realloc ran).
        ms__store_commit(b, tick, b->slot, MS_EVENT_REALLOCATE, 0, old, 0,
                         MS__RF_CAPTURED | MS__RF_MOVE | taken, NULL);
        ms__store_push(s, b, b->slot, MS_EVENT_REALLOCATE, (uintptr_t)q, 0, n,
                       ms__rec_extra(stack, flags | MS__RF_MOVE), NULL);
    }
    ms__internal_leave();
    return q;
}

HOOK void *realloc(void *p, size_t n)
{
    unsigned m = ms__cap_state();
    if (ms_unlikely(m == MS__CAP_ARENA)) {
        void *q = ms__arena_alloc(n, 16);
        if (q && p) {
            size_t old = ms__arena_owns(p) ? ms__arena_size(p) : ms__real_usable_size(p);
            memcpy(q, p, old < n ? old : n);
        }
        return q;
    }
    if (m != MS__CAP_ON || ms__tl_internal)
        return ms__real_realloc(p, n);
    if (!p) { // realloc(NULL, n) is malloc(n)
        void *q = ms__real_realloc(NULL, n);
        record_alloc(q, n, FRAME, CALLER);
        return q;
    }
    if (n == 0) { // glibc frees the block and returns NULL
        record_free(p);
        return ms__real_realloc(p, 0);
    }
    return realloc_recorded(p, n, FRAME, CALLER);
}

HOOK void *reallocarray(void *p, size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    unsigned m = ms__cap_state();
    if (ms_unlikely(m == MS__CAP_ARENA))
        return realloc(p, n);
    if (m != MS__CAP_ON || ms__tl_internal)
        return ms__real_realloc(p, n);
    if (!p) {
        void *q = ms__real_realloc(NULL, n);
        record_alloc(q, n, FRAME, CALLER);
        return q;
    }
    if (n == 0) {
        record_free(p);
        return ms__real_realloc(p, 0);
    }
    return realloc_recorded(p, n, FRAME, CALLER);
}

/* The aligned family: glibc's memalign does the work for all of them. */
static inline void *aligned(size_t alignment, size_t n, const void *fp, uintptr_t ret)
{
    unsigned m = ms__cap_state();
    if (ms_unlikely(m == MS__CAP_ARENA))
        return ms__arena_alloc(n, alignment);
    void *p = ms__real_memalign(alignment, n);
    if (m == MS__CAP_ON)
        record_alloc(p, n, fp, ret);
    return p;
}

HOOK int posix_memalign(void **out, size_t alignment, size_t n)
{
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0)
        return EINVAL;
    int saved = errno;
    void *p = aligned(alignment, n, FRAME, CALLER);
    if (!p) {
        errno = saved; // posix_memalign reports through its result, not errno
        return ENOMEM;
    }
    *out = p;
    return 0;
}

HOOK void *aligned_alloc(size_t alignment, size_t n)
{
    return aligned(alignment, n, FRAME, CALLER);
}

HOOK void *memalign(size_t alignment, size_t n) { return aligned(alignment, n, FRAME, CALLER); }

HOOK void *valloc(size_t n)
{
    unsigned m = ms__cap_state();
    if (ms_unlikely(m == MS__CAP_ARENA))
        return ms__arena_alloc(n, (size_t)sysconf(_SC_PAGESIZE));
    void *p = ms__real_valloc(n);
    if (m == MS__CAP_ON)
        record_alloc(p, n, FRAME, CALLER);
    return p;
}

HOOK void *pvalloc(size_t n)
{
    unsigned m = ms__cap_state();
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (ms_unlikely(m == MS__CAP_ARENA))
        return ms__arena_alloc(n ? (n + page - 1) & ~(page - 1) : page, page);
    void *p = ms__real_pvalloc(n);
    if (m == MS__CAP_ON)
        record_alloc(p, n, FRAME, CALLER);
    return p;
}

HOOK size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (ms_unlikely(ms__arena_owns(p)))
        return ms__arena_size(p);
    return ms__real_usable_size(p);
}
