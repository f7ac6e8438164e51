/* hooks.c — the malloc family for the whole process (glibc's "Replacing
 * malloc" rules: malloc, free, calloc and realloc, plus the optional aligned
 * and size functions, all defined together), each forwarding to glibc's own
 * allocator (real.h) and recording into the global tracker.
 *
 * The recording path: no lock, no system call, no string copy. An allocation
 * is recorded after the real one returns; a free before the real free; a
 * realloc takes its moment before the old block is released. The library's own
 * calls (ms__tl.internal) are forwarded unrecorded, so nothing recurses. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/capture.h"
#include "capture/real.h"
#include "common/alloc.h"
#include "common/heap.h"
#include "store/filter.h"

#define HOOK __attribute__((visibility("default"), noinline))
#define CALLER ((uintptr_t)__builtin_return_address(0))
#define FRAME __builtin_frame_address(0)

/* ms__capture_anchor is what `-u` names so a static link pulls this file in
 * even when the program itself never calls malloc. */
__attribute__((visibility("default"))) const char ms__capture_anchor = 1;

/* The calling thread's buffer in the capture tracker's store (s, the global
 * tracker's), or NULL. */
static inline ms__tbuf *rec_enter(ms_event_store *s)
{
    ms__tbuf *b = ms__tl.gbuf;
    if (ms_likely(b))
        return b;
    return ms__store_tbuf_slow(s);
}

/* The hooks' state word (tracker/tracker.h): capture's mode, the global
 * tracker's sampling, and whether a sampled header exists. ON_SAMPLING:
 * recording sampled blocks only, with no sampled filter (the frees of
 * unsampled blocks are skipped), once sampled blocks exist: what the hooks
 * see while they sample, almost from the start. */
static inline unsigned hook_state(void) { return ms_atomic_load_relaxed(&ms__hook_state); }
#define ON_SAMPLING (MS__CAP_ON | MS__GS_SAMPLING | MS__HS_HEADERS)

/* Is the capture tracker sampling? Does its sampled filter hold blocks? */
static inline bool sampling_on(void) { return hook_state() & MS__GS_SAMPLING; }
static inline bool filter_used(void) { return hook_state() & MS__GS_FILTER; }

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

/* record_alloc for a hook that has seen ms__tl.internal down. The record
 * itself runs with the mark down: the paths under it that may allocate
 * (a thread's first buffer, a new segment, a stack walk, a record of an
 * exiting thread) put it up themselves, and a signal handler that allocates
 * in the middle of a push finds the push's own mark (ms__store_begin: dropped,
 * counted). */
static inline void record_alloc_here(void *p, size_t n, const void *fp, uintptr_t ret)
{
    if (ms_unlikely(!p)) {
        count_failed();
        return;
    }
    ms_tracker *t = ms__cap_tracker;
    ms_event_store *s = t->store;
    ms__tbuf *b = rec_enter(s);
    if (ms_likely(b)) {
        uint32_t stack = ms__tracker_stack(t, b, fp, ret, true);
        ms__store_push(s, b, b->slot, MS_EVENT_ALLOCATE, (uintptr_t)p, 0, n,
                       ms__rec_extra(stack, MS__RF_CAPTURED), NULL);
    } else if (!sampling_on()) {
        record_late(s, MS_EVENT_ALLOCATE, (uintptr_t)p, 0, n, 0);
    }
}

/* Record the allocation of `n` bytes at p by the caller (fp, ret): every
 * allocation under full capture, a sampled one while sampling. */
static inline void record_alloc(void *p, size_t n, const void *fp, uintptr_t ret)
{
    if (ms_likely(!ms__tl.internal))
        record_alloc_here(p, n, fp, ret);
}

/* Record the free of p (before the real free). `sampled`: p carries a
 * sampled header, so it was recorded whatever the sampling is now. */
static inline __attribute__((always_inline)) void record_free(void *p, bool sampled)
{
    if (ms_unlikely(ms__tl.internal))
        return;
    ms_tracker *t = ms__cap_tracker;
    ms_event_store *s = t->store;
    if (ms_unlikely(!p)) {
        ms__tbuf *b = rec_enter(s);
        if (b)
            ms_atomic_store_relaxed(&b->null_frees, ms_atomic_load_relaxed(&b->null_frees) + 1);
        else if (ms__store_thread_exited())
            ms_atomic_add_relaxed(&s->late_null_frees, 1);
        return;
    }
    // While sampling, a block without a header was not sampled, unless the
    // filter holds it (recorded before sampling began): it leaves the filter
    // now, before its address can be reused. (So does a sampled block that
    // sampling, switched off and on again, put there.)
    uint64_t flags = MS__RF_CAPTURED;
    unsigned w = hook_state();
    bool filter_decides = !sampled && ms_unlikely(w & MS__GS_SAMPLING);
    if (ms_unlikely(w & MS__GS_FILTER) && (sampled || filter_decides)) {
        unsigned v = ms__filter_take(s->filter, (uintptr_t)p);
        if (v == MS__FILTER_NO && filter_decides)
            return;
        if (v == MS__FILTER_TAKEN)
            flags |= MS__RF_TAKEN;
    } else if (filter_decides) {
        return; // no filter: not sampled
    }
    // With the mark down, as record_alloc_here.
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
}

/* ------------------------------------------------------ sampled blocks
 *
 * While capture samples, the decision is taken before the real allocation,
 * and a sampled block is made `off` bytes larger: the program's pointer is
 * `off` bytes into glibc's block (16, or the alignment asked for), with
 * {off, MS__SAMPLED_MAGIC} in the two words below it (common/heap.h). free()
 * tells a sampled block by the word below the pointer, which glibc's free
 * reads next anyway (its chunk size): no table, nothing of ours to miss in
 * the cache, and exact. A block keeps its header, and so its sampling, through
 * realloc, and after sampling is switched off. */

/* Is the capture hook of this thread sampling? */
static inline bool sampling_now(void) { return !ms__tl.internal && sampling_on(); }

/* While sampling: is the allocation about to be made sampled? (Not: counted
 * as sampled out.) ms__tracker_skip, out of line. */
MS_COLD static bool sample_slow(void)
{
    ms_tracker *t = ms__cap_tracker;
    ms__internal_enter();
    ms__tbuf *b = rec_enter(t->store);
    bool yes = b && !ms__tracker_skip(t, b);
    ms__internal_leave();
    return yes;
}

/* One step of ms__tracker_skip's countdown, on the thread's buffer.
 * @return false, and no step, when it has run out or the thread has no
 * buffer yet. */
static inline bool countdown_step(void)
{
    ms__tbuf *b = ms__tl.gbuf;
    if (ms_likely(b)) {
        uint64_t left = ms_atomic_load_relaxed(&b->skips_left);
        if (ms_likely(left > 0)) {
            ms_atomic_store_relaxed(&b->skips_left, left - 1);
            return true;
        }
    }
    return false;
}

static inline bool sample_next(void) { return !countdown_step() && sample_slow(); }

/* While sampling, the inline part of an allocating hook's decision: forward
 * this call unrecorded? Yes for the library's own calls and for a step of the
 * countdown; otherwise the hook's out-of-line path decides. */
static inline bool sampled_out(void) { return ms_unlikely(ms__tl.internal) || countdown_step(); }

/* While sampling, is p's free skipped? (It has no header, and the filter
 * holds no block: p was not sampled.) */
static inline bool skip_free(void)
{
    return (hook_state() & (MS__GS_SAMPLING | MS__GS_FILTER)) == MS__GS_SAMPLING;
}

/* The offset of p into glibc's block when p is a sampled block, else 0.
 * While sampling it looks whatever the headers bit says: another thread's
 * first sampled block may reach this thread before the bit does, when the
 * program hands it over with a relaxed or consume store (weakly ordered
 * CPUs). */
static inline size_t header_off(const void *p)
{
    if (ms_likely(!(hook_state() & (MS__HS_HEADERS | MS__GS_SAMPLING))) || !p)
        return 0;
    return ms__sampled_off(p);
}

/* The offset that keeps a block aligned to `align` (a power of two) with room
 * for the header. */
static inline size_t header_room(size_t align) { return align < 16 ? 16 : align; }

static inline void *put_header(void *q, size_t off)
{
    uint64_t *p = (uint64_t *)(void *)((char *)q + off); // off keeps it aligned
    p[-2] = off;
    p[-1] = MS__SAMPLED_MAGIC;
    if (!(hook_state() & MS__HS_HEADERS)) // before p reaches any free
        ms__hook_set(MS__HS_HEADERS, MS__HS_HEADERS);
    return p;
}

/* A sampled block: `room` usable bytes aligned to `align` (zeroed when
 * `zero`), recorded as an allocation of `n` bytes. */
static void *sampled_alloc(size_t room, size_t align, bool zero, size_t n, const void *fp,
                           uintptr_t ret)
{
    while (align & (align - 1)) // memalign rounds an odd alignment up to a power of two
        align += align & -align;
    size_t off = header_room(align);
    void *q = NULL;
    if (room > SIZE_MAX - off)
        errno = ENOMEM;
    else if (off > 16)
        q = ms__real_memalign(off, room + off);
    else
        q = zero ? ms__real_calloc(1, room + off) : ms__real_malloc(room + off);
    void *p = q ? put_header(q, off) : NULL;
    record_alloc(p, n, fp, ret);
    return p;
}

/* malloc(n) while sampling, for the caller (fp, ret). */
static inline void *malloc_sampling(size_t n, const void *fp, uintptr_t ret)
{
    return sample_next() ? sampled_alloc(n, 16, false, n, fp, ret) : ms__real_malloc(n);
}

/* realloc of a sampled block, unrecorded: it keeps its header. */
static void *realloc_header(void *p, size_t n, size_t off)
{
    void *q = (char *)p - off;
    if (n == 0) { // glibc's realloc(p, 0) frees p and returns NULL
        ms__real_free(q);
        return NULL;
    }
    if (n > SIZE_MAX - off) {
        errno = ENOMEM;
        return NULL;
    }
    q = ms__real_realloc(q, n + off); // the header moves with the contents
    return q ? (char *)q + off : NULL;
}

/* ------------------------------------------------------------ the hooks */

/* Each hook keeps inline only what it does most: forward (capture off), and,
 * while sampling, forward an allocation the countdown samples out or the free
 * of a block that was not sampled. Everything else is out of line, so those
 * paths save at most the frame pointer and end in a jump to glibc. A function given the
 * hook's frame (FRAME) must not be tail-called: the frame has to outlive the
 * walk of the stack above it (NO_TAIL after the call). */
#define NO_TAIL() __asm__ volatile("")

/* What an allocating hook does. */
enum { FORWARD, RECORD, ARENA };

/* The route of an allocation, from the state word. The cheapest tests come
 * first for the states where the hook costs least: sampling, then off; then
 * full capture, which costs hundreds of instructions anyway. */
static inline int alloc_route(void)
{
    unsigned w = hook_state();
    if (ms_likely(w == ON_SAMPLING))
        return sampled_out() ? FORWARD : RECORD;
    if (ms_likely(w == MS__CAP_OFF))
        return FORWARD;
    if (ms_likely(w == MS__CAP_ON))
        return RECORD;
    unsigned m = w & MS__HOOK_MODE;
    if (m == MS__CAP_OFF)
        return FORWARD;
    if (m == MS__CAP_ON) // sampling with a filter, or a filter with no sampling
        return (w & MS__GS_SAMPLING) && sampled_out() ? FORWARD : RECORD;
    m = ms__cap_slow_state(); // start-up, crash
    return m == MS__CAP_ON ? RECORD : m == MS__CAP_ARENA ? ARENA : FORWARD;
}

MS_NOINLINE static void *malloc_on(size_t n, const void *fp, uintptr_t ret)
{
    if (ms_unlikely(ms__tl.internal))
        return ms__real_malloc(n);
    if (ms_unlikely(sampling_on()))
        return malloc_sampling(n, fp, ret);
    void *p = ms__real_malloc(n);
    record_alloc_here(p, n, fp, ret);
    return p;
}

HOOK void *malloc(size_t n)
{
    int r = alloc_route();
    if (ms_likely(r == FORWARD))
        return ms__real_malloc(n);
    if (ms_unlikely(r == ARENA))
        return ms__arena_alloc(n, 16);
    void *p = malloc_on(n, FRAME, CALLER);
    NO_TAIL();
    return p;
}

/* free(p) of a sampled block, `off` bytes into glibc's, in mode m. */
MS_NOINLINE static void free_sampled(void *p, size_t off, unsigned m)
{
    if (m == MS__CAP_ON)
        record_free(p, true);
    ms__real_free((char *)p - off);
}

MS_NOINLINE static void free_on(void *p)
{
    record_free(p, false);
    ms__real_free(p);
}

/* free(p) in a state other than ON_SAMPLING, MS__CAP_OFF and MS__CAP_ON. */
MS_NOINLINE static void free_other(void *p, unsigned w)
{
    unsigned m = w & MS__HOOK_MODE;
    if (m != MS__CAP_ON && m != MS__CAP_OFF) {
        m = ms__cap_slow_state(); // start-up, crash
        if (m == MS__CAP_ARENA)
            return; // the process is about to die: never touch glibc's heap again
        if (ms__arena_owns(p))
            return; // the reporting thread's block, freed by another (the trace's writer)
    }
    size_t off = header_off(p);
    if (ms_unlikely(off))
        free_sampled(p, off, m);
    else if (m == MS__CAP_ON && !skip_free())
        free_on(p);
    else
        ms__real_free(p);
}

HOOK void free(void *p)
{
    unsigned w = hook_state();
    if (ms_likely(w == ON_SAMPLING)) {
        // Sampled blocks exist: the word below p tells (one glibc's free
        // reads next).
        size_t off = p ? ms__sampled_off(p) : 0;
        if (ms_unlikely(off))
            free_sampled(p, off, MS__CAP_ON);
        else
            ms__real_free(p); // not sampled
        return;
    }
    if (ms_likely(w == MS__CAP_OFF)) { // and no sampled block exists
        ms__real_free(p);
        return;
    }
    if (ms_likely(w == MS__CAP_ON)) { // and no sampled block exists
        free_on(p);
        return;
    }
    free_other(p, w);
}

MS_NOINLINE static void *calloc_on(size_t count, size_t size, const void *fp, uintptr_t ret)
{
    if (ms_unlikely(ms__tl.internal))
        return ms__real_calloc(count, size);
    if (ms_unlikely(sampling_on())) {
        if (!sample_next())
            return ms__real_calloc(count, size);
        size_t n;
        if (__builtin_mul_overflow(count, size, &n)) {
            errno = ENOMEM;
            record_alloc(NULL, 0, fp, ret); // counted as failed
            return NULL;
        }
        return sampled_alloc(n, 16, true, n, fp, ret);
    }
    void *p = ms__real_calloc(count, size);
    record_alloc_here(p, count * size, fp, ret);
    return p;
}

HOOK void *calloc(size_t count, size_t size)
{
    int r = alloc_route();
    if (ms_likely(r == FORWARD))
        return ms__real_calloc(count, size);
    if (ms_unlikely(r == ARENA)) {
        size_t n;
        if (__builtin_mul_overflow(count, size, &n)) {
            errno = ENOMEM;
            return NULL;
        }
        return ms__arena_alloc(n, 16); // fresh pages are zero
    }
    void *p = calloc_on(count, size, FRAME, CALLER);
    NO_TAIL();
    return p;
}

/* The real realloc of p (with a header `off` bytes below it, or none). */
static inline void *real_realloc_at(void *p, size_t n, size_t off)
{
    return off ? realloc_header(p, n, off) : ms__real_realloc(p, n);
}

/* realloc(p, n) of a block, n > 0: the record's tick is taken before the old
 * block can be handed to another thread. `off`: p's sampled header, or 0. */
static void *realloc_recorded(void *p, size_t n, size_t off, const void *fp, uintptr_t ret)
{
    ms_tracker *t = ms__cap_tracker;
    ms_event_store *s = t->store;
    // While sampling, a block without a header stays unsampled when it moves,
    // unless the filter holds it (recorded before sampling began): then it
    // leaves the filter before the call (its address may be reused at once)
    // and comes back, at its new address, after.
    bool filtered = !off && sampling_on();
    uint64_t taken = 0;
    if (filtered) {
        if (ms_likely(!filter_used()))
            return ms__real_realloc(p, n);
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
        if (!b && !filtered && ms__store_thread_exited()) {
            record_late(s, MS_EVENT_DEALLOCATE, (uintptr_t)p, 0, 0, 0);
            void *q = real_realloc_at(p, n, off);
            if (q)
                record_late(s, MS_EVENT_ALLOCATE, (uintptr_t)q, 0, n, 0);
            ms__internal_leave();
            return q;
        }
        if (taken) // unrecorded: the live state still holds p, so the filter does
            ms__filter_add(s->filter, (uintptr_t)p);
        ms__internal_leave();
        return real_realloc_at(p, n, off);
    }
    // p's address is recorded, never read after the real call.
    uintptr_t old = (uintptr_t)p;
    void *q = real_realloc_at(p, n, off);
    if (!q) { // failed: the old block is untouched, nothing happened
        ms__store_abort(b);
        if (taken)
            ms__filter_add(s->filter, old);
        ms_atomic_add_relaxed(&b->failed_allocs, 1);
        ms__internal_leave();
        return NULL;
    }
    uint64_t flags = MS__RF_CAPTURED;
    if (filtered) { // after a "maybe" the move is counted: the fold may take it back
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

/* realloc and reallocarray, for the caller (fp, ret). */
static inline void *realloc_hook(void *p, size_t n, const void *fp, uintptr_t ret)
{
    unsigned m = ms__cap_state();
    size_t off = header_off(p);
    if (ms_unlikely(m == MS__CAP_ARENA)) {
        void *q = ms__arena_alloc(n, 16);
        if (q && p) {
            size_t old = ms__arena_owns(p)  ? ms__arena_size(p)
                         : ms_unlikely(off) ? ms__real_usable_size((char *)p - off) - off
                                            : ms__real_usable_size(p);
            memcpy(q, p, old < n ? old : n);
        }
        return q;
    }
    if (ms_unlikely(ms__cap_mode() == MS__CAP_CRASH) && p && ms__arena_owns(p)) {
        // The reporting thread's block, grown by another (the trace's
        // writer): glibc must never see it. Unrecorded, as the arena's are.
        void *q = n ? ms__real_malloc(n) : NULL;
        if (q)
            memcpy(q, p, ms__arena_size(p) < n ? ms__arena_size(p) : n);
        return q;
    }
    if (m != MS__CAP_ON || ms__tl.internal)
        return real_realloc_at(p, n, off);
    if (!p) { // realloc(NULL, n) is malloc(n)
        if (ms_unlikely(sampling_on()))
            return malloc_sampling(n, fp, ret);
        void *q = ms__real_realloc(NULL, n);
        record_alloc(q, n, fp, ret);
        return q;
    }
    if (n == 0) { // glibc frees the block and returns NULL
        record_free(p, off != 0);
        return real_realloc_at(p, 0, off);
    }
    return realloc_recorded(p, n, off, fp, ret);
}

HOOK void *realloc(void *p, size_t n) { return realloc_hook(p, n, FRAME, CALLER); }

HOOK void *reallocarray(void *p, size_t count, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc_hook(p, n, FRAME, CALLER);
}

/* The aligned family: glibc's memalign does the work for all of them. `room`
 * is what to allocate (pvalloc rounds it up), `n` what to record. */
static inline void *aligned(size_t alignment, size_t room, size_t n, const void *fp, uintptr_t ret)
{
    unsigned m = ms__cap_state();
    if (ms_unlikely(m == MS__CAP_ARENA))
        return ms__arena_alloc(room, alignment);
    // Alignments above MS__SAMPLED_MAX_ALIGN are never sampled: the header
    // would cost a whole alignment of memory.
    if (m == MS__CAP_ON && ms_unlikely(sampling_now())) {
        if (alignment <= MS__SAMPLED_MAX_ALIGN && sample_next())
            return sampled_alloc(room, alignment, false, n, fp, ret);
        return ms__real_memalign(alignment, room);
    }
    void *p = ms__real_memalign(alignment, room);
    if (m == MS__CAP_ON)
        record_alloc(p, n, fp, ret);
    return p;
}

HOOK int posix_memalign(void **out, size_t alignment, size_t n)
{
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0)
        return EINVAL;
    int saved = errno;
    void *p = aligned(alignment, n, n, FRAME, CALLER);
    if (!p) {
        errno = saved; // posix_memalign reports through its result, not errno
        return ENOMEM;
    }
    *out = p;
    return 0;
}

HOOK void *aligned_alloc(size_t alignment, size_t n)
{
    return aligned(alignment, n, n, FRAME, CALLER);
}

HOOK void *memalign(size_t alignment, size_t n) { return aligned(alignment, n, n, FRAME, CALLER); }

HOOK void *valloc(size_t n) { return aligned((size_t)sysconf(_SC_PAGESIZE), n, n, FRAME, CALLER); }

HOOK void *pvalloc(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (n > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    size_t room = n ? (n + page - 1) & ~(page - 1) : page;
    return aligned(page, room, n, FRAME, CALLER);
}

HOOK size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (ms_unlikely(ms__arena_owns(p)))
        return ms__arena_size(p);
    size_t off = header_off(p);
    if (ms_unlikely(off))
        return ms__real_usable_size((char *)p - off) - off;
    return ms__real_usable_size(p);
}
