/* store.c — per-thread segments, the fold (merge in tick order up to a safe
 * watermark), the retained log, thread exit and fork. See docs/design.md.
 *
 * Lock order: the registry lock, then a store's fold lock. */
#include "store/store.h"

#include <linux/membarrier.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/pages.h"

bool ms__need_fence;

static _Thread_local ms__tbuf *tl_list; /* this thread's buffers, all stores */
static _Thread_local bool tl_key_set;
static _Thread_local uint64_t tl_no_slot_store; /* a store whose slots ran out for us */
static _Thread_local unsigned tl_exit_round;    /* thread-exit destructor rounds seen */
static _Thread_local bool tl_exited;            /* past the last round: no new buffers */
static pthread_key_t tl_key;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t next_store_id = 1;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static ms_event_store *registry;
static ms_event_store *_Atomic global_store; /* the global tracker's (never freed) */

/* Segments in flight per store beyond which a full thread waits for a fold
 * (bounded: the fold lock holder does bounded work) instead of mapping more. */
#define MAX_SEGS_PER_STORE 1024u /* 192 MiB */
/* With a background folder, a thread appends up to this many segments before
 * it folds itself (the folder fell behind). */
#define BG_BACKLOG_SEGS 16u /* 3 MiB */
#define MAX_FREE_SEGS 16u
#define SPARE_CHAIN 8 /* segments handed to a thread at a time */
/* Spares parked with threads, all threads together (6 MiB): idle threads
 * keep theirs, and a program with many threads must not keep 8 each. */
#define MAX_PARKED_SEGS 32

struct ms__chunk {
    ms__chunk *next;
    size_t n;
    uint64_t seq0;        /* the store's seq of ev[0] */
    uint64_t lost_before; /* streaming: records lost just before ev[0] */
    ms__chunk *gone_next; /* evicted while pinned: the store's `pinned_gone` list */
    size_t gone_bytes;    /* ... and its size then */
    char pad[MS_CACHE_LINE - 2 * sizeof(void *) - 2 * sizeof(size_t) - 2 * sizeof(uint64_t)];
    ms__rec ev[];
};

typedef struct heap_item {
    uint64_t tick, order;
    ms__tbuf *b;
} heap_item;

/* ------------------------------------------------- process-wide set-up */

static void thread_exit(void *list);

/* ------------------------------------------------------- the fold lock
 *
 * A fatal signal handler (capture's) writes the report, which folds and so
 * takes the fold lock. On a thread inside a fold that would wait forever on
 * its own lock. So every taking of the lock here counts itself in tl_folding
 * (from before it waits to after it lets go), and a handler that finds the
 * count up defers an asynchronous signal (ms__store_defer_signal): the last
 * release raises it again, with the lock free. */
static _Thread_local unsigned tl_folding;
static _Thread_local volatile sig_atomic_t tl_deferred;

bool ms__store_folding_here(void) { return tl_folding != 0; }
void ms__store_defer_signal(int sig) { tl_deferred = sig; }

static void folding_done(void)
{
    if (--tl_folding == 0 && ms_unlikely(tl_deferred)) {
        int sig = tl_deferred;
        tl_deferred = 0;
        raise(sig);
    }
}

static void fold_lock(ms_event_store *s)
{
    tl_folding++;
    pthread_mutex_lock(&s->fold_lock);
}

static bool fold_trylock(ms_event_store *s)
{
    tl_folding++;
    if (pthread_mutex_trylock(&s->fold_lock) == 0)
        return true;
    folding_done();
    return false;
}

static bool fold_timedlock(ms_event_store *s, const struct timespec *until)
{
    tl_folding++;
    if (pthread_mutex_timedlock(&s->fold_lock, until) == 0)
        return true;
    folding_done();
    return false;
}

static void fold_unlock(ms_event_store *s)
{
    pthread_mutex_unlock(&s->fold_lock);
    folding_done();
}

static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

static void global_init(void)
{
    ms__clock_init();
    pthread_key_create(&tl_key, thread_exit);
    // The fold reads other threads' in-flight flags after a process-wide
    // barrier, so the recording path needs only a compiler barrier. Without
    // membarrier the owners fence instead (slower, still correct).
    ms__need_fence = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void heavy_barrier(void)
{
    if (!ms__need_fence)
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    else
        ms_fence_seq_cst();
}

/* ------------------------------------------------------------- segments */

static size_t seg_bytes(void) { return sizeof(ms__seg); }

static ms__seg *seg_new(ms_event_store *s)
{
    ms__seg *g = ms__pages_alloc(seg_bytes());
    if (g)
        ms_atomic_add_relaxed(&s->segs_allocated, 1);
    return g;
}

static void seg_release(ms_event_store *s, ms__seg *g)
{
    ms__pages_free(g, seg_bytes());
    ms_atomic_add_relaxed(&s->segs_allocated, (uint64_t)-1);
}

/* How many spare segments a thread may hold: several under a background
 * folder, which a thread may outrun between its folds; else one, as each full
 * segment folds. */
static uint32_t spare_cap(const ms_event_store *s)
{
    return ms_atomic_load_relaxed(&s->bg_fold) ? SPARE_CHAIN : 1;
}

/* Push g on b's spare chain unless b holds its share already. The folder is
 * the only pusher and the owner takes the whole chain, so a head seen here
 * cannot come back between the load and the compare-and-swap (no ABA).
 * pre: fold lock held. */
static bool give_spare(ms_event_store *s, ms__tbuf *b, ms__seg *g)
{
    if (ms_atomic_load_relaxed(&s->segs_parked) >= MAX_PARKED_SEGS)
        return false;
    ms__seg *head = ms_atomic_load_acquire(&b->spare);
    for (;;) {
        if (!head)
            b->spares_given = 0; // the owner took them all
        if (b->spares_given + ms_atomic_load_relaxed(&b->own_count) >= spare_cap(s))
            return false;
        ms_atomic_store_relaxed(&g->next, head);
        ms_atomic_add_relaxed(&s->segs_parked, 1); // before the owner can take it
        if (ms_atomic_cas_acq_rel(&b->spare, &head, g))
            break;
        ms_atomic_add_relaxed(&s->segs_parked, (uint64_t)-1);
    }
    b->spares_given++;
    return true;
}

/* Give g back to its owner (as a spare, so that a thread outrunning the
 * folder finds one instead of mapping a new segment while the folder unmaps
 * old ones), else keep it on the free list, else unmap it.
 * pre: fold lock held; the owner no longer writes g. */
static void seg_recycle(ms_event_store *s, ms__tbuf *b, ms__seg *g)
{
    ms_atomic_store_relaxed(&g->count, 0);
    ms_atomic_store_relaxed(&g->next, NULL);
    if (b && !(ms_atomic_load_acquire(&b->state) & MS__TB_THREAD_GONE) && give_spare(s, b, g)) {
        return;
    } else if (s->free_seg_count < MAX_FREE_SEGS) {
        ms_atomic_store_relaxed(&g->next, s->free_segs);
        s->free_segs = g;
        s->free_seg_count++;
    } else {
        seg_release(s, g);
    }
}

/* ------------------------------------------------------- retained log */

static size_t chunk_bytes(const ms_event_store *s)
{
    return sizeof(ms__chunk) + s->chunk_events * sizeof(ms__rec);
}

/* Free an evicted chunk, or, while a visit reads the log without the lock
 * (ms__store_visit_retained_and_unlock), keep it until the visit ends.
 * pre: fold lock held. */
static void chunk_drop(ms_event_store *s, ms__chunk *c)
{
    if (s->pins == 0) {
        ms__pages_free(c, chunk_bytes(s));
        return;
    }
    c->gone_bytes = chunk_bytes(s);
    c->gone_next = s->pinned_gone;
    s->pinned_gone = c;
}

/* Free a list of chunks evicted while pinned (taken off the store under the
 * fold lock; freed after it, so that folds do not wait for the unmapping). */
static void free_gone_chunks(ms__chunk *c)
{
    while (c) {
        ms__chunk *next = c->gone_next;
        ms__pages_free(c, c->gone_bytes);
        c = next;
    }
}

int ms__store_set_retained(ms_event_store *s, size_t bytes)
{
    fold_lock(s);
    if (s->streaming) { // the writer reads the chunks
        fold_unlock(s);
        return ms__fail(MS_EINVAL, "the retained log cannot change while the tracker streams");
    }
    // Drop what is retained: the budget applies from here on.
    while (s->oldest) {
        ms__chunk *c = s->oldest;
        s->oldest = c->next;
        s->evicted += c->n;
        chunk_drop(s, c);
    }
    s->newest = NULL;
    s->nchunks = 0;
    s->retained = 0;
    s->retained_budget = bytes;
    size_t per = sizeof(ms__rec);
    size_t ev = bytes / per / 8; // at least 8 chunks, so eviction is gradual
    if (ev > 16384)
        ev = 16384;
    if (ev < 16)
        ev = 16;
    s->chunk_events = ev;
    s->max_chunks = bytes / chunk_bytes(s);
    if (s->max_chunks == 0 && bytes > sizeof(ms__chunk) + per) {
        s->chunk_events = (bytes - sizeof(ms__chunk)) / per;
        s->max_chunks = 1;
    }
    fold_unlock(s);
    return 0;
}

/* Streaming: the oldest chunk may go once the writer has passed it. */
static bool stream_passed_oldest(ms_event_store *s)
{
    return s->oldest->seq0 + s->oldest->n <= ms_atomic_load_acquire(&s->stream_done);
}

/* Have the writer write the oldest chunk here, if the fold runs where it
 * can (its thread, or once it has stopped): then a writer at the end of its
 * chunk steps into the next (under the lock, so the links are safe to
 * read), passing it. */
static void stream_drain_here(ms_event_store *s)
{
    if (!s->stream_drain(s->stream_ctx, s->oldest->seq0 + s->oldest->n))
        return;
    ms__stream_pos *p = s->stream_pos;
    if (p->idx == s->chunk_events && p->c->next) {
        p->c = p->c->next;
        p->idx = 0;
        ms_atomic_store_release(&s->stream_done, p->c->seq0);
    }
}

/* Streaming, the log full of chunks the writer still needs: have it drain,
 * or wait for it while it moves; once it is stalled, not again until it
 * has passed the oldest chunk (a stalled disk costs each record nothing). */
static bool stream_make_room(ms_event_store *s)
{
    if (!stream_passed_oldest(s))
        stream_drain_here(s);
    if (stream_passed_oldest(s)) {
        s->stream_stalled = false;
        return true;
    }
    if (s->stream_stalled)
        return false;
    // Wait while the writer moves; a writer that has not moved for
    // MS__STREAM_WAIT_NS is stalled (its disk does not keep up). So is one
    // the threads' unfolded records pile up behind: the figures come first,
    // and they would be lost, not only the trace, once the segments run out.
    uint64_t deadline = ms__mono_ns() + MS__STREAM_WAIT_NS;
    uint64_t seen = ms_atomic_load_acquire(&s->stream_done);
    const struct timespec pause = {0, 20000};
    while (!stream_passed_oldest(s)) {
        uint64_t now = ms__mono_ns(), done = ms_atomic_load_acquire(&s->stream_done);
        if (ms_atomic_load_relaxed(&s->segs_allocated) > MAX_SEGS_PER_STORE / 4) {
            s->stream_stalled = true;
            return false;
        }
        if (done != seen) {
            seen = done;
            deadline = now + MS__STREAM_WAIT_NS;
        } else if (now > deadline) {
            s->stream_stalled = true;
            return false;
        }
        nanosleep(&pause, NULL);
    }
    return true;
}

/* A record the retained log cannot keep: the live state stays exact; a
 * stream counts it, and its next chunk says it is missing. */
static void lose(ms_event_store *s)
{
    s->evicted++;
    if (s->streaming) {
        s->stream_lost++;
        s->lost_pending++;
    }
}

/* c, empty, as the newest chunk: its first record will be the next seq. */
static void chunk_start(ms_event_store *s, ms__chunk *c)
{
    c->next = NULL;
    c->n = 0;
    c->seq0 = ms_atomic_load_relaxed(&s->seq);
    c->lost_before = s->lost_pending;
    s->lost_pending = 0;
    if (s->newest)
        s->newest->next = c;
    else
        s->oldest = c;
    s->newest = c;
    s->nchunks++;
}

static __attribute__((noinline)) void retain_in_log(ms_event_store *s, const ms__rec *r);

/* Keep r in the retained log (or count it evicted at once when there is none,
 * as under `memscope run`: that case stays inline in the fold's loop). */
static inline void retain(ms_event_store *s, const ms__rec *r)
{
    if (ms_likely(s->max_chunks == 0))
        s->evicted++;
    else
        retain_in_log(s, r);
}

static void retain_in_log(ms_event_store *s, const ms__rec *r)
{
    ms__chunk *c = s->newest;
    if (!c || c->n == s->chunk_events) {
        if (s->nchunks == s->max_chunks) {
            if (s->streaming && !stream_make_room(s)) {
                lose(s);
                return;
            }
            // Evict the oldest chunk and reuse its memory as the newest
            // (new memory while a visit may still read it).
            c = s->oldest;
            s->oldest = c->next;
            s->evicted += c->n;
            s->retained -= c->n;
            s->nchunks--;
            if (!s->oldest)
                s->newest = NULL;
            if (ms_unlikely(s->pins != 0)) {
                chunk_drop(s, c);
                if (!(c = ms__pages_alloc(chunk_bytes(s)))) {
                    lose(s);
                    return;
                }
            }
        } else {
            c = ms__pages_alloc(chunk_bytes(s));
            if (!c) {
                lose(s);
                return;
            }
        }
        chunk_start(s, c);
    }
    c->ev[c->n++] = *r;
    s->retained++;
    // The record and any new chunk's link before the count (the writer's acquire).
    ms_atomic_store_release(&s->seq, ms_atomic_load_relaxed(&s->seq) + 1);
}

/* ------------------------------------------------------------ streaming */

int ms__store_stream_begin(ms_event_store *s, size_t min_bytes, bool (*drain)(void *, uint64_t),
                           void *ctx, ms__stream_pos *pos)
{
    if (s->retained_budget < min_bytes || s->max_chunks < 2) {
        int rc = ms__store_set_retained(s, s->retained_budget < min_bytes ? min_bytes
                                                                          : s->retained_budget);
        if (rc < 0)
            return rc;
        if (s->max_chunks < 2)
            return ms__fail(MS_EINVAL, "a retained log of %zu bytes is too small to stream",
                            s->retained_budget);
    }
    fold_lock(s);
    if (s->streaming) {
        fold_unlock(s);
        return ms__fail(MS_EINVAL, "the tracker already streams");
    }
    if (!s->newest) { // the writer starts in a chunk, never at NULL
        ms__chunk *c = ms__pages_alloc(chunk_bytes(s));
        if (!c) {
            fold_unlock(s);
            return ms__fail(MS_ENOMEM, "cannot allocate the stream's buffer");
        }
        chunk_start(s, c);
    }
    for (ms__chunk *c = s->oldest; c; c = c->next)
        c->lost_before = 0;
    *pos = (ms__stream_pos){s->oldest, 0, s->oldest->seq0};
    s->stream_pos = pos;
    ms_atomic_store_relaxed(&s->stream_io_lost, 0);
    ms_atomic_store_release(&s->stream_done, pos->seq);
    s->streaming = true;
    s->stream_stalled = false;
    s->stream_drain = drain;
    s->stream_ctx = ctx;
    s->stream_lost = s->lost_pending = 0;
    s->evicted_before_stream = s->evicted;
    fold_unlock(s);
    return 0;
}

size_t ms__store_stream_take(ms_event_store *s, ms__stream_pos *pos, const ms__rec **run,
                             uint64_t *lost_before)
{
    *lost_before = 0;
    uint64_t end = ms_atomic_load_acquire(&s->seq);
    if (pos->seq == end)
        return 0;
    if (pos->idx == s->chunk_events) {
        // Linked before `end` counted past it. The chunk left behind may go.
        pos->c = pos->c->next;
        pos->idx = 0;
        ms_atomic_store_release(&s->stream_done, pos->c->seq0);
    }
    if (pos->idx == 0)
        *lost_before = pos->c->lost_before;
    size_t n = s->chunk_events - pos->idx;
    if (end - pos->seq < n)
        n = (size_t)(end - pos->seq);
    *run = &pos->c->ev[pos->idx];
    pos->idx += n;
    pos->seq += n;
    return n;
}

uint64_t ms__store_stream_take_lost(ms_event_store *s)
{
    uint64_t n = s->lost_pending;
    s->lost_pending = 0;
    return n;
}

void ms__store_stream_end(ms_event_store *s)
{
    s->streaming = false;
    s->stream_drain = NULL;
    s->stream_ctx = NULL;
    s->stream_pos = NULL;
}

void ms__store_visit_retained(ms_event_store *s, ms__rec_visit_fn fn, void *ctx)
{
    for (ms__chunk *c = s->oldest; c; c = c->next)
        for (size_t i = 0; i < c->n; i++)
            fn(&c->ev[i], ctx);
}

void ms__store_visit_retained_and_unlock(ms_event_store *s, ms__rec_visit_fn fn, void *ctx)
{
    // What is retained now: the chunks from the oldest to the newest, and the
    // newest's records so far. Folds go on meanwhile. They append to the
    // newest chunk only past `last_n`, and link a new chunk only to the
    // newest (whose link is not read here); every chunk before it is full and
    // stays as it is, since a pinned chunk is never reused (chunk_drop).
    //
    // One such visit at a time: a second visits under the lock, so that the
    // chunks set aside are freed at the end of each (overlapping visits
    // would keep some pin on the log, and its memory would grow for as long
    // as they overlap).
    if (s->pins != 0) {
        ms__store_visit_retained(s, fn, ctx);
        fold_unlock(s);
        return;
    }
    ms__chunk *c = s->oldest, *last = s->newest;
    size_t last_n = last ? last->n : 0;
    s->pins = 1;
    fold_unlock(s);
    for (; c; c = c->next) {
        size_t n = c == last ? last_n : c->n;
        for (size_t i = 0; i < n; i++)
            fn(&c->ev[i], ctx);
        if (c == last)
            break;
    }
    fold_lock(s);
    s->pins = 0;
    ms__chunk *gone = s->pinned_gone;
    s->pinned_gone = NULL;
    fold_unlock(s);
    free_gone_chunks(gone);
}

/* Raise the coarse clock to `to` unless it is already there. @return its
 * value after. Only ever raised (a compare-and-swap: the folder and the
 * recording threads both raise it). */
static uint64_t coarse_raise(ms_event_store *s, uint64_t to)
{
    uint64_t seen = ms_atomic_load_relaxed(&s->coarse);
    while (seen < to && !ms_atomic_cas_acq_rel(&s->coarse, &seen, to)) {
    }
    return seen < to ? to : seen;
}

/* ------------------------------------------------------------------ fold */

/* The next published, unfolded record of b, or NULL. Recycles segments the
 * owner has left behind. pre: fold lock held. */
static ms__rec *cursor_peek(ms_event_store *s, ms__tbuf *b)
{
    for (;;) {
        ms__seg *g = b->rd_seg;
        if (!g)
            return NULL;
        uint32_t count = ms_atomic_load_acquire(&g->count);
        if (b->rd_idx < count)
            return &g->ev[b->rd_idx];
        if (b->rd_idx < MS__SEG_EVENTS)
            return NULL;
        ms__seg *next = ms_atomic_load_acquire(&g->next);
        if (!next)
            return NULL;
        b->rd_seg = next;
        b->rd_idx = 0;
        seg_recycle(s, b, g);
    }
}

/* Tick of the newest record b has published (its in-flight record, if any,
 * will not be older). */
static uint64_t newest_published_tick(ms__tbuf *b)
{
    uint64_t t = b->last_folded_tick;
    ms__seg *g = b->rd_seg;
    uint32_t from = b->rd_idx;
    while (g) {
        uint32_t count = ms_atomic_load_acquire(&g->count);
        if (count > from)
            t = g->ev[count - 1].tick;
        ms__seg *next = count == MS__SEG_EVENTS ? ms_atomic_load_acquire(&g->next) : NULL;
        g = next;
        from = 0;
    }
    return t;
}

static bool heap_less(const heap_item *a, const heap_item *b)
{
    return a->tick < b->tick || (a->tick == b->tick && a->order < b->order);
}

static void heap_push(heap_item *h, size_t *n, heap_item it)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&it, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static void heap_sift_down(heap_item *h, size_t n, size_t i)
{
    heap_item it = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && heap_less(&h[c + 1], &h[c]))
            c++;
        if (!heap_less(&h[c], &it))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = it;
}

/* ------------------------------------------------------------ held frees
 *
 * An allocation reads the clock without a fence and a free reads it without
 * one too, so thread B's free of a block that thread A allocated and handed
 * over can carry a tick a little older than A's allocation (B's clock read ran
 * ahead of the load that gave it the pointer). In tick order the free then
 * comes first, for an address that is not live yet. The fold holds such a
 * free; if the allocation of that address arrives from another thread within
 * MS__HOLD_TICKS, the two are applied in their real order; otherwise the free
 * was unmatched (or, while sampling, of a block that was not sampled). The
 * retained log records the order applied, so a replay agrees. */

/* A held free and the recording buffer it came from (the same OS thread's
 * records are never reordered: they are in program order). */
typedef struct ms__held {
    ms__rec rec; /* rec.ptr == 0: empty slot (a free of NULL is never held) */
    uint64_t order;
} ms__held;

static ms__held *held_find(ms_event_store *s, uintptr_t ptr)
{
    if (s->held_count == 0 || ptr == 0)
        return NULL;
    for (size_t i = ms__hash_ptr(ptr, s->held_cap);; i = (i + 1) & (s->held_cap - 1)) {
        if (s->held[i].rec.ptr == 0)
            return NULL;
        if (s->held[i].rec.ptr == ptr)
            return &s->held[i];
    }
}

static void held_remove(ms_event_store *s, ms__held *h)
{
    size_t mask = s->held_cap - 1, hole = (size_t)(h - s->held);
    for (size_t i = (hole + 1) & mask; s->held[i].rec.ptr != 0; i = (i + 1) & mask) {
        size_t home = ms__hash_ptr(s->held[i].rec.ptr, s->held_cap);
        if (ms__probe_may_move(hole, i, home)) {
            s->held[hole] = s->held[i];
            hole = i;
        }
    }
    s->held[hole].rec.ptr = 0;
    s->held_count--;
}

static bool held_put(ms_event_store *s, const ms__rec *r, uint64_t order)
{
    if ((s->held_count + 1) * 2 > s->held_cap) {
        size_t ncap = s->held_cap ? s->held_cap * 2 : 64;
        ms__held *n = ms__pages_alloc_written(ncap * sizeof *n);
        if (!n)
            return false;
        for (size_t i = 0; i < s->held_cap; i++) {
            if (s->held[i].rec.ptr == 0)
                continue;
            size_t j = ms__hash_ptr(s->held[i].rec.ptr, ncap);
            while (n[j].rec.ptr != 0)
                j = (j + 1) & (ncap - 1);
            n[j] = s->held[i];
        }
        ms__pages_free(s->held, s->held_cap * sizeof *s->held);
        s->held = n;
        s->held_cap = ncap;
    }
    size_t i = ms__hash_ptr(r->ptr, s->held_cap);
    while (s->held[i].rec.ptr != 0)
        i = (i + 1) & (s->held_cap - 1);
    s->held[i] = (ms__held){*r, order};
    s->held_count++;
    return true;
}

/* The held free was what it looked like: a free of an unknown address. */
static void held_resolve_unknown(ms_event_store *s, ms__held *h)
{
    ms__rec r = h->rec;
    held_remove(s, h);
    ms__live_unknown_free(&s->live, &r);
    retain(s, &r);
}

/* Resolve held frees whose window closed before `watermark`. */
static void held_expire(ms_event_store *s, uint64_t watermark)
{
    for (size_t i = 0; i < s->held_cap && s->held_count > 0;) {
        ms__held *h = &s->held[i];
        if (h->rec.ptr != 0 && h->rec.tick + MS__HOLD_TICKS < watermark)
            held_resolve_unknown(s, h); // the slot may now hold a shifted entry
        else
            i++;
    }
}

/* @return whether a held free older than `tick` is still waiting. */
static bool held_waiting_before(const ms_event_store *s, uint64_t tick)
{
    for (size_t i = 0; i < s->held_cap && s->held_count > 0; i++)
        if (s->held[i].rec.ptr != 0 && s->held[i].rec.tick < tick)
            return true;
    return false;
}

/* ------------------------------------------------------ taken addresses
 *
 * Records that took the same tick from different threads are merged in
 * registration order, which need not be their real order: under capture many
 * share a tick (the coarse clock). When thread A frees p and thread B then gets
 * p from malloc at that tick, B's allocation can come first in the merge and
 * find A's block still live. Such a captured allocation waits: B's buffer
 * stops at it while the other buffers fold, and goes on once p is closed. If
 * the fold runs out of records below the watermark first, A's free was never
 * recorded (every record older than the watermark is published), and the
 * allocation replaces the block, as it would have at once. */

static bool fold_unapplied(ms_event_store *s, const ms__rec *x, uint64_t order, bool force);

/* ms__live_apply, a captured allocation at a taken address waiting unless `force`. */
static inline bool apply_live(ms_event_store *s, const ms__rec *x, bool force)
{
    s->live.wait_taken = !force;
    bool applied = ms__live_apply(&s->live, x);
    s->live.wait_taken = true;
    return applied;
}

/* The case of a held free (or the address of one), apart from the fold's loop. */
static __attribute__((noinline)) bool fold_apply_held(ms_event_store *s, const ms__rec *x,
                                                      uint64_t order, bool force)
{
    ms__held *h = held_find(s, x->ptr);
    unsigned type = ms__rec_type(x);
    if (h && type != MS_EVENT_DEALLOCATE && h->order != order &&
        x->tick <= h->rec.tick + MS__HOLD_TICKS) {
        // The allocation (or reallocation) this free belongs to, from another
        // thread: apply them in their real order.
        ms__rec f = h->rec;
        held_remove(s, h);
        (void)apply_live(s, x, true);
        retain(s, x);
        ms__live_apply(&s->live, &f);
        retain(s, &f);
        return true;
    }
    if (h) // same thread, too late, or a second free: the held one was unknown
        held_resolve_unknown(s, h);
    if (type == MS_EVENT_REALLOCATE && (h = held_find(s, x->old_ptr)) != NULL)
        held_resolve_unknown(s, h);
    if (apply_live(s, x, force)) {
        retain(s, x);
        return true;
    }
    return fold_unapplied(s, x, order, force);
}

/* Apply one record from the buffer registered `order`-th. @return false when
 * it must wait (a taken address), unless `force`. */
static inline bool fold_apply(ms_event_store *s, const ms__rec *x, uint64_t order, bool force)
{
    if (ms_unlikely(s->held_count != 0))
        return fold_apply_held(s, x, order, force);
    if (ms_likely(apply_live(s, x, force))) {
        retain(s, x);
        return true;
    }
    return fold_unapplied(s, x, order, force);
}

/* What becomes of a record ms__live_apply did not apply. */
static __attribute__((noinline)) bool fold_unapplied(ms_event_store *s, const ms__rec *x,
                                                     uint64_t order, bool force)
{
    if (s->live.taken) { // it waits (a taken address)
        s->live.taken = false;
        return false;
    } else if (s->coarse_fold && !force) {
        // A free of an address not live, under the coarse clock: its
        // allocation, if any, has an older or equal tick and is published, so
        // it comes in this fold, later in the merge only if its buffer waits
        // or merges later at the same tick. Wait for it, as for a taken address.
        return false;
    } else if (s->coarse_fold || !held_put(s, x, order)) {
        // Forced, or no memory to hold it: a free of an unknown block, now.
        ms__live_unknown_free(&s->live, x);
        retain(s, x);
    }
    return true;
}

static bool fold_one(ms_event_store *s, const ms__rec *x, uint64_t order, bool force)
{
    bool applied = fold_apply(s, x, order, force);
    if (applied && ms_unlikely(s->nwaiting))
        s->recheck = true; // this record may close what a waiting one needs
    return applied;
}

/* Fold b's published records while they stay before `bound` (a tick; equal
 * ticks go first when b registered first) and the watermark; stop early at a
 * record that must wait (b->waiting set) or after one that may end a wait
 * (s->recheck set). @return b's next record, or NULL when it has no more
 * published. */
static ms__rec *fold_run(ms_event_store *s, ms__tbuf *b, uint64_t bound, uint64_t bound_order,
                         uint64_t watermark)
{
    // b's records fold while their tick is below `stop`: below the watermark,
    // and before the bound (at it too, when b registered first).
    uint64_t stop = b->order > bound_order ? bound : bound == UINT64_MAX ? bound : bound + 1;
    if (watermark < stop)
        stop = watermark;
    for (;;) {
        ms__rec *r = cursor_peek(s, b);
        if (!r || s->recheck)
            return r;
        // Records of one segment are contiguous: fold them in a tight loop.
        ms__seg *g = b->rd_seg;
        uint32_t end = ms_atomic_load_acquire(&g->count);
        uint32_t i = b->rd_idx, from = i;
        for (; i < end; i++) {
            const ms__rec *x = &g->ev[i];
            if (i + 8 < end)
                ms__live_prefetch(&s->live, g->ev[i + 8].ptr);
            if (x->tick >= stop)
                break;
            // Most records take the inline path (live.h); held frees and
            // everything else take fold_one's.
            if (ms_likely(s->held_count == 0) && ms_likely(ms__live_apply_common(&s->live, x))) {
                retain(s, x);
                if (ms_unlikely(s->nwaiting))
                    s->recheck = true; // as fold_one
            } else if (!fold_one(s, x, b->order, false)) {
                b->waiting = true;
                break;
            }
            if (ms_unlikely(s->recheck)) {
                i++;
                break;
            }
        }
        if (i > from)
            b->last_folded_tick = g->ev[i - 1].tick;
        s->folded += i - from;
        b->rd_idx = i;
        if (i < end)
            return &g->ev[i];
    }
}

/* Put b's next record on the merge heap if it is below the watermark. */
static void heap_add(heap_item *heap, size_t *n, ms__tbuf *b, ms__rec *r, uint64_t watermark)
{
    if (r && r->tick < watermark)
        heap_push(heap, n, (heap_item){r->tick, b->order, b});
}

/* Buffers whose next record waits (a taken address) sit in
 * `wait[0..nwaiting)`: back on the heap with them, to try again (one that
 * still waits comes back here). */
static void recheck_waiting(ms_event_store *s, heap_item *heap, size_t *n, heap_item *wait,
                            uint64_t watermark)
{
    s->recheck = false;
    for (size_t i = 0; i < s->nwaiting; i++) {
        ms__tbuf *b = wait[i].b;
        b->waiting = false;
        heap_add(heap, n, b, cursor_peek(s, b), watermark);
    }
    s->nwaiting = 0;
}

static void free_tbuf_segments(ms_event_store *s, ms__tbuf *b)
{
    for (ms__seg *g = b->rd_seg; g;) {
        ms__seg *next = ms_atomic_load_acquire(&g->next);
        seg_release(s, g);
        g = next;
    }
    b->rd_seg = NULL;
    // The spares handed over, and those the owner took but has not used.
    ms__seg *lists[2] = {ms_atomic_exchange_acq_rel(&b->spare, NULL), b->own_spares};
    b->own_spares = NULL;
    ms_atomic_store_relaxed(&b->own_count, 0);
    for (int i = 0; i < 2; i++)
        for (ms__seg *g = lists[i]; g;) {
            ms__seg *next = ms_atomic_load_relaxed(&g->next);
            ms_atomic_add_relaxed(&s->segs_parked, (uint64_t)-1);
            seg_release(s, g);
            g = next;
        }
}

/* Unlink and free the buffers of exited threads that are fully folded. */
static void reap_gone(ms_event_store *s)
{
    ms__tbuf *head = ms_atomic_load_acquire(&s->tbufs);
    if (!head)
        return;
    // Never unlink the head: new threads push there concurrently.
    for (ms__tbuf *prev = head, *b = head->store_next; b; b = prev->store_next) {
        if ((ms_atomic_load_acquire(&b->state) & MS__TB_THREAD_GONE) && !cursor_peek(s, b)) {
            prev->store_next = b->store_next;
            s->gone_sampled_out +=
                ms_atomic_load_relaxed(&b->skips_drawn) - ms_atomic_load_relaxed(&b->skips_left);
            s->gone_errors += ms_atomic_load_relaxed(&b->errors);
            s->gone_null_frees += ms_atomic_load_relaxed(&b->null_frees);
            s->gone_failed_allocs += ms_atomic_load_relaxed(&b->failed_allocs);
            free_tbuf_segments(s, b);
            uint32_t prev_state = ms_atomic_or_acq_rel(&b->state, MS__TB_STORE_GONE);
            if (prev_state & MS__TB_THREAD_GONE)
                ms__pages_free(b, sizeof *b);
        } else {
            prev = b;
        }
    }
}

/* Hand each recording thread without spares a few segments from the free
 * list, as one chain (linked through `next`). */
static void refill_spares(ms_event_store *s)
{
    for (ms__tbuf *b = ms_atomic_load_acquire(&s->tbufs); b && s->free_segs; b = b->store_next) {
        if (ms_atomic_load_acquire(&b->spare) != NULL ||
            ms_atomic_load_relaxed(&b->own_count) > 1 ||
            (ms_atomic_load_acquire(&b->state) & MS__TB_THREAD_GONE))
            continue;
        ms__seg *chain = NULL;
        uint32_t k = 0;
        for (uint32_t want = spare_cap(s); k < want && s->free_segs; k++) {
            ms__seg *g = s->free_segs;
            s->free_segs = ms_atomic_load_relaxed(&g->next);
            s->free_seg_count--;
            ms_atomic_store_relaxed(&g->next, chain);
            chain = g;
        }
        b->spares_given = k;
        ms_atomic_add_relaxed(&s->segs_parked, k);
        ms_atomic_store_release(&b->spare, chain);
    }
}

/* The owner's next spare segment, or NULL. */
static ms__seg *take_spare(ms__tbuf *b)
{
    ms__seg *g = b->own_spares;
    uint32_t n = ms_atomic_load_relaxed(&b->own_count);
    if (!g) {
        g = ms_atomic_exchange_acq_rel(&b->spare, NULL);
        for (ms__seg *c = g; c; c = ms_atomic_load_relaxed(&c->next))
            n++;
    }
    if (g) {
        b->own_spares = ms_atomic_load_relaxed(&g->next);
        ms_atomic_store_relaxed(&g->next, NULL);
        n--;
        ms_atomic_add_relaxed(&b->store->segs_parked, (uint64_t)-1);
    }
    ms_atomic_store_relaxed(&b->own_count, n);
    return g;
}

/* Merge every thread's published records with a tick below the watermark into
 * the live state, in (tick, registration order) order.
 * pre: fold lock held. */
static uint64_t fold_locked_at(ms_event_store *s, bool fresh);
static uint64_t fold_locked(ms_event_store *s) { return fold_locked_at(s, false); }

/* With `fresh` false, a fold under the coarse clock less than a millisecond
 * after the last barrier folds up to the watermark that barrier proved,
 * without another: a barrier interrupts every CPU that runs the program, and
 * records newer than that watermark carry the coarse clock's current value,
 * which only the next barrier can prove. */
static uint64_t fold_locked_at(ms_event_store *s, bool fresh)
{
    // A record not yet published either started before the barrier (its
    // owner's in-flight flag is then visible, and its tick is not older than
    // the owner's newest published one) or after it (its tick is then not older
    // than `watermark`). So records older than the watermark are all
    // published, and folding them in tick order is final.
    uint64_t watermark = ms__ticks_ordered();
    uint64_t coarse = ms_atomic_load_relaxed(&s->coarse);
    s->coarse_fold = coarse != 0;
    bool barrier = true;
    if (coarse != 0) {
        if (!fresh && watermark - s->barrier_tick < ms__clock_ticks_per_ms_pow2()) {
            watermark = s->safe_watermark;
            barrier = false;
        } else {
            // Records take the coarse clock: advance it, and take it as the
            // watermark. A record the barrier does not show in flight reads
            // the new value or a later one.
            s->barrier_tick = watermark;
            watermark = coarse_raise(s, watermark > coarse ? watermark : coarse + 1);
        }
    }
    if (barrier)
        heavy_barrier();
    // After the barrier: a buffer registered before it is on the list.
    ms__tbuf *head = ms_atomic_load_acquire(&s->tbufs);
    if (barrier) {
        for (ms__tbuf *b = head; b; b = b->store_next) {
            if (ms_atomic_load_acquire(&b->inflight) == MS__IF_TICK) {
                uint64_t t = newest_published_tick(b);
                if (t < watermark)
                    watermark = t;
            }
        }
        // Every record older than this was published: it stays safe.
        if (watermark > s->safe_watermark)
            s->safe_watermark = watermark;
    }
    size_t nbufs = 0;
    for (ms__tbuf *b = head; b; b = b->store_next)
        nbufs++;
    if (nbufs > s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap : 16;
        while (cap < nbufs)
            cap *= 2;
        // The heap, then as many slots for waiting buffers.
        void *h = ms__pages_realloc(s->heap, 2 * s->heap_cap * sizeof(heap_item),
                                    2 * cap * sizeof(heap_item));
        if (!h)
            return 0; // cannot merge every buffer: fold nothing rather than out of order
        s->heap = h;
        s->heap_cap = cap;
    }
    heap_item *heap = s->heap, *wait = heap + s->heap_cap;
    size_t n = 0;
    s->nwaiting = 0;
    s->recheck = false;
    for (ms__tbuf *b = head; b; b = b->store_next) {
        b->waiting = false;
        heap_add(heap, &n, b, cursor_peek(s, b), watermark);
    }
    for (;;) {
        if (n == 0) {
            if (s->nwaiting == 0)
                break;
            // Nothing left below the watermark closes the address: the
            // oldest waiting allocation replaces the block.
            // Oldest first: a younger one may wait for a free behind it.
            size_t k = 0;
            for (size_t i = 1; i < s->nwaiting; i++)
                if (heap_less(&wait[i], &wait[k]))
                    k = i;
            ms__tbuf *b = wait[k].b;
            wait[k] = wait[--s->nwaiting];
            b->waiting = false;
            ms__rec *r = cursor_peek(s, b);
            fold_one(s, r, b->order, true);
            b->last_folded_tick = r->tick;
            b->rd_idx++;
            s->folded++;
            heap_add(heap, &n, b, cursor_peek(s, b), watermark);
            if (s->recheck)
                recheck_waiting(s, heap, &n, wait, watermark);
            continue;
        }
        // Take the oldest head; fold its run up to the next-oldest head.
        ms__tbuf *b = heap[0].b;
        heap[0] = heap[--n];
        if (n > 0)
            heap_sift_down(heap, n, 0);
        uint64_t bound = n > 0 ? heap[0].tick : UINT64_MAX;
        uint64_t bound_order = n > 0 ? heap[0].order : UINT64_MAX;
        ms__rec *r = fold_run(s, b, bound, bound_order, watermark);
        if (b->waiting)
            wait[s->nwaiting++] = (heap_item){r->tick, b->order, b};
        else
            heap_add(heap, &n, b, r, watermark);
        if (s->recheck)
            recheck_waiting(s, heap, &n, wait, watermark);
    }
    if (s->held_count)
        held_expire(s, watermark);
    reap_gone(s);
    refill_spares(s);
    return watermark;
}

void ms__store_lock_folded(ms_event_store *s)
{
    // Everything the caller recorded, and everything any thread finished
    // recording before this call, is older than `want`. Fold until the
    // watermark passes it and no free older than it is held. Another thread
    // in the middle of a record holds the watermark back for nanoseconds
    // (unless it is preempted there): retry, releasing the lock, for at most
    // 1 s, then settle for what is folded. (250 ms was seen to pass on a
    // loaded machine under ThreadSanitizer: a query then missed its own
    // thread's record.)
    uint64_t want = ms__ticks_ordered();
    uint64_t deadline = ms__mono_ns() + 1000000000u;
    fold_lock(s);
    for (;;) {
        uint64_t watermark = fold_locked_at(s, true);
        if ((watermark >= want && !held_waiting_before(s, want)) || ms__mono_ns() > deadline)
            return;
        fold_unlock(s);
        sched_yield();
        fold_lock(s);
    }
}

void ms__store_lock(ms_event_store *s) { fold_lock(s); }
void ms__store_unlock(ms_event_store *s) { fold_unlock(s); }

bool ms__store_lock_within(ms_event_store *s, uint64_t ns)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ns / 1000000000u);
    until.tv_nsec += (long)(ns % 1000000000u);
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    return fold_timedlock(s, &until);
}

void ms__store_try_fold(ms_event_store *s)
{
    if (!fold_trylock(s))
        return; // someone folds now
    fold_locked(s);
    fold_unlock(s);
}

uint64_t ms__store_bump_coarse(ms_event_store *s, ms__tbuf *b, uint64_t seen)
{
    b->coarse_left = MS__COARSE_BUMP - 1;
    uint64_t now = ms__ticks();
    // The record takes the clock's value after, which every record made
    // after it (on any thread that learns of this one) reads or passes.
    return now > seen ? coarse_raise(s, now) : seen;
}

/* Segments mapped and not parked as some thread's spare: what the backlog
 * limits count (spares that idle threads keep are no backlog). */
static uint64_t segs_in_flight(ms_event_store *s)
{
    uint64_t all = ms_atomic_load_relaxed(&s->segs_allocated);
    uint64_t parked = ms_atomic_load_relaxed(&s->segs_parked);
    return parked < all ? all - parked : 0; // read apart: parked may pass all for a moment
}

static bool next_segment(ms_event_store *s, ms__tbuf *b)
{
    ms__seg *g = take_spare(b);
    bool had_spare = g != NULL;
    if (ms_atomic_load_relaxed(&s->bg_fold)) {
        // The folder thread keeps up: just take the next segment. If it fell
        // behind, wait for it (at most 100 ms) rather than fold here: the
        // live state then stays in the cache of the folder's CPU, and the
        // folder gets this one.
        for (int waits = 0; !g && ms_atomic_load_relaxed(&s->bg_fold); waits++) {
            if (segs_in_flight(s) < BG_BACKLOG_SEGS + MAX_FREE_SEGS)
                g = seg_new(s);
            if (g || waits == 2000)
                break;
            const struct timespec pause = {0, 50000};
            nanosleep(&pause, NULL);
            g = take_spare(b);
        }
        if (g) {
            ms_atomic_store_release(&b->cur->next, g);
            b->cur = g;
            b->idx = 0;
            return true;
        }
    }
    if (!g && ms_atomic_load_relaxed(&s->segs_allocated) < MAX_SEGS_PER_STORE)
        g = seg_new(s);
    // Too much unfolded: fold now, which hands our old segments back. Wait
    // for the current folder only a bounded while (a signal handler may be
    // recording on a thread that holds the lock); then drop, counted.
    for (int tries = 0; !g && tries < 1000; tries++) {
        if (fold_trylock(s)) {
            fold_locked(s);
            fold_unlock(s);
            g = take_spare(b);
            if (!g && ms_atomic_load_relaxed(&s->segs_allocated) < MAX_SEGS_PER_STORE)
                g = seg_new(s);
            break;
        }
        sched_yield();
    }
    if (!g)
        return false;
    ms_atomic_store_release(&b->cur->next, g);
    b->cur = g;
    b->idx = 0;
    if (fold_trylock(s)) {
        fold_locked(s);
        fold_unlock(s);
    } else if (!had_spare) {
        // No spare came back: this thread records faster than the folds
        // consume. Wait for the fold lock (at most 100 ms) and fold, so the
        // backlog stays a few segments instead of growing to the limit.
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        if (fold_timedlock(s, &until)) {
            fold_locked(s);
            fold_unlock(s);
        }
    }
    return true;
}

/* Inside ms__internal_enter: a fold here must not record what it may
 * allocate, and a hook calls this with its own mark down. */
bool ms__store_next_segment(ms_event_store *s, ms__tbuf *b)
{
    ms__internal_enter();
    bool r = next_segment(s, b);
    ms__internal_leave();
    return r;
}

/* ------------------------------------------------------ background fold */

static void *folder_main(void *arg)
{
    ms_event_store *s = arg;
    ms__internal_enter(); // nothing this thread allocates is the program's
    const struct timespec pause = {0, 1000000};
    while (ms_atomic_load_relaxed(&s->bg_fold)) {
        fold_lock(s);
        uint64_t before = s->folded;
        fold_locked(s);
        uint64_t folded = s->folded - before;
        fold_unlock(s);
        // Fold again at once only when this fold had a segment's worth of
        // records: every fold costs a process-wide barrier, an interrupt on
        // each CPU that runs the program.
        if (folded < MS__SEG_EVENTS)
            nanosleep(&pause, NULL);
    }
    return NULL;
}

int ms__store_start_folder(ms_event_store *s)
{
    if (ms_atomic_exchange_acq_rel(&s->bg_fold, true))
        return 0;
    // From here records take the coarse clock, which each fold advances.
    fold_lock(s);
    ms_atomic_store_relaxed(&s->coarse, ms__ticks_ordered());
    fold_unlock(s);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); // the folder takes no signal of the program's
    pthread_t th;
    ms__internal_enter();
    int rc = pthread_create(&th, &attr, folder_main, s);
    ms__internal_leave();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        ms_atomic_store_relaxed(&s->coarse, 0);
        ms_atomic_store_relaxed(&s->bg_fold, false);
        return ms__fail(MS_ENOMEM, "cannot start the fold thread: %s", strerror(rc));
    }
    pthread_setname_np(th, "memscope-fold");
    return 0;
}

/* ------------------------------------------------------- thread buffers */

static void free_dead_entries(void)
{
    for (ms__tbuf **pp = &tl_list; *pp;) {
        ms__tbuf *b = *pp;
        if (ms_atomic_load_acquire(&b->state) & MS__TB_STORE_GONE) {
            *pp = b->thread_next;
            ms__pages_free(b, sizeof *b);
        } else {
            pp = &b->thread_next;
        }
    }
}

/* Remember b, the calling thread's buffer in s, in its TLS. */
static void cache(ms_event_store *s, ms__tbuf *b)
{
    ms__tl.id = s->id;
    ms__tl.buf = b;
    if (s == ms_atomic_load_relaxed(&global_store))
        ms__tl.gbuf = b;
}

static ms__tbuf *tbuf_slow(ms_event_store *s)
{
    for (ms__tbuf *b = tl_list; b; b = b->thread_next) {
        if (b->store_id == s->id) {
            cache(s, b);
            return b;
        }
    }
    if (tl_exited) // the caller records through ms__store_push_late, or drops (counted)
        return NULL;
    if (tl_no_slot_store == s->id) { // this store has no slot for this thread
        ms_atomic_add_relaxed(&s->dropped, 1);
        return NULL;
    }
    free_dead_entries();
    uint32_t slot = ms__tids_intern(s->tids, (uint64_t)syscall(SYS_gettid));
    if (slot == MS__TIDS_FULL) {
        tl_no_slot_store = s->id;
        ms_atomic_add_relaxed(&s->dropped, 1);
        return NULL;
    }
    ms__tbuf *b = ms__pages_alloc(sizeof *b);
    ms__seg *g = b ? seg_new(s) : NULL;
    if (!g) {
        ms__pages_free(b, sizeof *b);
        ms_atomic_add_relaxed(&s->dropped, 1);
        return NULL;
    }
    b->cur = g;
    b->rd_seg = g;
    b->slot = slot;
    b->ext_tid = UINT64_MAX;
    b->store_id = s->id;
    b->store = s;
    b->thread_next = tl_list;
    tl_list = b;
    if (!tl_key_set) {
        tl_key_set = true;
        pthread_setspecific(tl_key, &tl_list);
    }
    b->order = ms_atomic_add_relaxed(&s->next_order, 1);
    ms__tbuf *head = ms_atomic_load_relaxed(&s->tbufs);
    do {
        b->store_next = head;
    } while (!atomic_compare_exchange_weak_explicit(&s->tbufs, &head, b, memory_order_release,
                                                    memory_order_relaxed));
    cache(s, b);
    return b;
}

/* Inside ms__internal_enter: pthread_setspecific may allocate, and a hook
 * calls this with its own mark down. */
ms__tbuf *ms__store_tbuf_slow(ms_event_store *s)
{
    ms__internal_enter();
    ms__tbuf *r = tbuf_slow(s);
    ms__internal_leave();
    return r;
}

bool ms__store_thread_exited(void) { return tl_exited; }

static bool push_late(ms_event_store *s, unsigned type, uintptr_t ptr, uintptr_t old_ptr,
                      uint64_t size, uint64_t old_size)
{
    uint32_t slot = ms__tids_intern(s->tids, (uint64_t)syscall(SYS_gettid));
    while (ms_atomic_exchange_acq_rel(&s->late_lock, true))
        sched_yield();
    ms__tbuf *b = s->late;
    if (!b) {
        b = ms__pages_alloc(sizeof *b);
        ms__seg *g = b ? seg_new(s) : NULL;
        if (g) {
            b->cur = b->rd_seg = g;
            b->store_id = s->id;
            b->store = s;
            b->order = ms_atomic_add_relaxed(&s->next_order, 1);
            ms__tbuf *head = ms_atomic_load_relaxed(&s->tbufs);
            do {
                b->store_next = head;
            } while (!atomic_compare_exchange_weak_explicit(
                &s->tbufs, &head, b, memory_order_release, memory_order_relaxed));
            s->late = b;
        } else {
            ms__pages_free(b, sizeof *b);
            b = NULL;
        }
    }
    uint64_t tick;
    bool recorded = b && slot != MS__TIDS_FULL && ms__store_begin(s, b, type, &tick);
    if (recorded)
        ms__store_commit(b, tick, slot, type, ptr, old_ptr, size, old_size, NULL);
    else if (!b || slot == MS__TIDS_FULL)
        ms_atomic_add_relaxed(&s->dropped, 1);
    ms_atomic_store_release(&s->late_lock, false);
    return recorded;
}

/* Inside ms__internal_enter: nothing may allocate while the late lock is
 * held (the allocation's hook would spin on it). */
bool ms__store_push_late(ms_event_store *s, unsigned type, uintptr_t ptr, uintptr_t old_ptr,
                         uint64_t size, uint64_t old_size)
{
    ms__internal_enter();
    bool r = push_late(s, type, ptr, old_ptr, size, old_size);
    ms__internal_leave();
    return r;
}

static void thread_exit(void *arg)
{
    // Other keys' destructors may still allocate and free (capture records
    // them): stay registered through glibc's destructor rounds and let go in
    // the one before the last (sanitizer runtimes tear a thread down in the
    // last). Capture records what comes later through ms__store_push_late.
    if (++tl_exit_round < PTHREAD_DESTRUCTOR_ITERATIONS - 1) {
        pthread_setspecific(tl_key, arg);
        return;
    }
    tl_exited = true;
    ms__tl.id = 0;
    ms__tl.buf = NULL;
    ms__tl.gbuf = NULL;
    ms__tbuf *b = tl_list;
    tl_list = NULL;
    tl_key_set = false;
    while (b) {
        ms__tbuf *next = b->thread_next;
        // Read before letting go: b may be freed once it is marked gone. The
        // global store is never freed, so it can be used after.
        ms_event_store *g = ms_atomic_load_relaxed(&global_store);
        bool fold_here = b->store == g && !ms_atomic_load_relaxed(&g->bg_fold);
        uint32_t prev = ms_atomic_or_acq_rel(&b->state, MS__TB_THREAD_GONE);
        if (prev & MS__TB_STORE_GONE)
            ms__pages_free(b, sizeof *b);
        else if (fold_here)
            // No fold thread (capture while sampling): fold now, so that the
            // buffer's segments are freed rather than kept until the report.
            ms__store_try_fold(g);
        b = next;
    }
}

/* ------------------------------------------------------------------ fork */

static void fork_prepare(void)
{
    pthread_mutex_lock(&registry_lock);
    for (ms_event_store *s = registry; s; s = s->reg_next)
        pthread_mutex_lock(&s->fold_lock);
}

static void fork_parent(void)
{
    for (ms_event_store *s = registry; s; s = s->reg_next)
        pthread_mutex_unlock(&s->fold_lock);
    pthread_mutex_unlock(&registry_lock);
}

static void fork_child(void)
{
    // Only the forking thread exists in the child: every other buffer's owner
    // is gone, possibly in the middle of a record that will never finish.
    for (ms_event_store *s = registry; s; s = s->reg_next) {
        ms_atomic_store_relaxed(&s->bg_fold, false);       // the folder thread is not in the child
        ms_atomic_store_relaxed(&s->folder_wanted, false); // and the child folds inline
        ms_atomic_store_relaxed(&s->coarse, 0);            // nor its clock: read the tick counter
        if (ms_atomic_load_relaxed(&s->late_lock) && s->late) {
            // Its holder is not in the child either, and may have left the
            // shared late buffer in the middle of a record: drop that record
            // (it was never published; counted) and clear its marks, or the
            // child's exiting threads could never record there again and its
            // fold would stop at the mark's tick.
            ms__tbuf *l = s->late;
            // The holder may have been moving to a new segment, with its old
            // one (`cur`) already read and recycled by a fold: the chain the
            // fold reads, from rd_seg, leads to where records go next.
            l->cur = l->rd_seg;
            ms__seg *next;
            while ((next = ms_atomic_load_relaxed(&l->cur->next)))
                l->cur = next;
            l->idx = ms_atomic_load_relaxed(&l->cur->count);
            if (ms_atomic_load_relaxed(&l->inflight))
                ms_atomic_add_relaxed(&s->dropped, 1);
            ms_atomic_store_relaxed(&l->inflight, 0);
        }
        ms_atomic_store_relaxed(&s->late_lock, false);
        s->pins = 0; // and no visit that pinned the log goes on there
        free_gone_chunks(s->pinned_gone);
        s->pinned_gone = NULL;
        if (s->streaming) // nor the stream's writer: the tracker starts its own (trace/stream.c)
            ms__store_stream_end(s);
        for (ms__tbuf *b = ms_atomic_load_relaxed(&s->tbufs); b; b = b->store_next) {
            bool mine = false;
            for (ms__tbuf *m = tl_list; m; m = m->thread_next)
                mine |= m == b;
            if (!mine && b != s->late) { // the shared late buffer stays the store's
                ms_atomic_or_acq_rel(&b->state, MS__TB_THREAD_GONE);
                ms_atomic_store_relaxed(&b->inflight, 0);
            }
        }
        // A thread that vanished while taking its spares took them with it
        // (leaked): count again what is parked, or the backlog limit would
        // count them as parked for good.
        uint64_t parked = 0;
        for (ms__tbuf *b = ms_atomic_load_relaxed(&s->tbufs); b; b = b->store_next) {
            for (ms__seg *g = b->own_spares; g; g = ms_atomic_load_relaxed(&g->next))
                parked++;
            for (ms__seg *g = ms_atomic_load_relaxed(&b->spare); g;
                 g = ms_atomic_load_relaxed(&g->next))
                parked++;
        }
        ms_atomic_store_relaxed(&s->segs_parked, parked);
        pthread_mutex_unlock(&s->fold_lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

/* ------------------------------------------------------ store lifecycle */

void ms__store_set_global(ms_event_store *s) { ms_atomic_store_release(&global_store, s); }

ms_event_store *ms__store_new(size_t retained_bytes)
{
    pthread_once(&global_once, global_init);
    ms_event_store *s = ms__pages_alloc(sizeof *s);
    if (!s)
        return NULL;
    s->id = ms_atomic_add_relaxed(&next_store_id, 1);
    s->seed_gen = 1; // buffers start at generation 0, so each seeds on first draw
    s->tids = ms__tids_new();
    pthread_mutex_init(&s->fold_lock, NULL);
    s->series_width = ms__clock_ticks_per_ms_pow2();
    if (!s->tids || ms__live_init(&s->live, s->series_width) != 0) {
        ms__tids_free(s->tids);
        pthread_mutex_destroy(&s->fold_lock);
        ms__pages_free(s, sizeof *s);
        return NULL;
    }
    s->live.hold_unknown_frees = true;
    s->live.wait_taken = true;
    s->filter = ms__pages_alloc(sizeof *s->filter);
    if (!s->filter) {
        ms__live_destroy(&s->live);
        ms__tids_free(s->tids);
        pthread_mutex_destroy(&s->fold_lock);
        ms__pages_free(s, sizeof *s);
        return NULL;
    }
    s->live.filter = s->filter;
    ms__store_set_retained(s, retained_bytes);
    pthread_mutex_lock(&registry_lock);
    s->reg_next = registry;
    registry = s;
    pthread_mutex_unlock(&registry_lock);
    return s;
}

void ms__store_free(ms_event_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&registry_lock);
    for (ms_event_store **pp = &registry; *pp; pp = &(*pp)->reg_next)
        if (*pp == s) {
            *pp = s->reg_next;
            break;
        }
    pthread_mutex_unlock(&registry_lock);
    pthread_mutex_lock(&s->fold_lock);
    ms__tbuf *b = ms_atomic_load_acquire(&s->tbufs);
    while (b) {
        ms__tbuf *next = b->store_next;
        free_tbuf_segments(s, b);
        uint32_t prev = ms_atomic_or_acq_rel(&b->state, MS__TB_STORE_GONE);
        if (prev & MS__TB_THREAD_GONE)
            ms__pages_free(b, sizeof *b);
        b = next;
    }
    while (s->free_segs) {
        ms__seg *g = s->free_segs;
        s->free_segs = ms_atomic_load_relaxed(&g->next);
        seg_release(s, g);
    }
    // None unless the caller frees the tracker while exporting it (misuse:
    // the export then reads freed memory whatever is done here).
    free_gone_chunks(s->pinned_gone);
    s->pinned_gone = NULL;
    while (s->oldest) {
        ms__chunk *c = s->oldest;
        s->oldest = c->next;
        ms__pages_free(c, chunk_bytes(s));
    }
    ms__pages_free(s->heap, 2 * s->heap_cap * sizeof(heap_item));
    ms__pages_free(s->held, s->held_cap * sizeof *s->held);
    ms__live_destroy(&s->live);
    ms__tids_free(s->tids);
    ms__pages_free(s->filter, sizeof *s->filter);
    pthread_mutex_unlock(&s->fold_lock);
    pthread_mutex_destroy(&s->fold_lock);
    if (ms__tl.id == s->id) {
        ms__tl.id = 0;
        ms__tl.buf = NULL;
    }
    if (s == ms_atomic_load_relaxed(&global_store))
        ms__tl.gbuf = NULL;
    ms__pages_free(s, sizeof *s);
}

void ms__store_replay(ms_event_store *s, const ms__rec *r)
{
    fold_lock(s);
    s->live.hold_unknown_frees = false; // nothing comes later to match it
    s->live.wait_taken = false;
    if (!ms__live_apply(&s->live, r))
        ms__live_unknown_free(&s->live, r);
    retain(s, r);
    fold_unlock(s);
}

uint64_t ms__store_series_width(const ms_event_store *s) { return s->series_width; }

const ms__timebase *ms__store_timebase(const ms_event_store *s)
{
    return s->timebase ? s->timebase : ms__clock_timebase();
}

void ms__store_stats_locked(ms_event_store *s, ms_memory_stats *out)
{
    ms__live_stats(&s->live, out);
    const ms_memory_stats *x = &s->replay_extra;
    out->dropped_events = ms_atomic_load_relaxed(&s->dropped) + x->dropped_events;
    out->evicted_events = s->evicted + x->evicted_events;
    out->retained_events = s->retained;
    out->stream_lost_events =
        s->stream_lost + ms_atomic_load_relaxed(&s->stream_io_lost) + x->stream_lost_events;
    out->sampled_out = s->gone_sampled_out + x->sampled_out;
    out->track_errors = s->gone_errors + x->track_errors;
    out->null_deallocations =
        s->gone_null_frees + ms_atomic_load_relaxed(&s->late_null_frees) + x->null_deallocations;
    out->failed_allocations = s->gone_failed_allocs + x->failed_allocations;
    for (ms__tbuf *b = ms_atomic_load_acquire(&s->tbufs); b; b = b->store_next) {
        out->null_deallocations += ms_atomic_load_relaxed(&b->null_frees);
        out->failed_allocations += ms_atomic_load_relaxed(&b->failed_allocs);
        uint64_t left = ms_atomic_load_acquire(&b->skips_left);
        uint64_t drawn = ms_atomic_load_relaxed(&b->skips_drawn);
        out->sampled_out += drawn > left ? drawn - left : 0;
        out->track_errors += ms_atomic_load_relaxed(&b->errors);
    }
}

/* ----------------------------------------------------------- public API */

ms_event_store *ms_event_store_new(void)
{
    ms_event_store *s = ms__store_new(MS__DEFAULT_RETAINED_BYTES);
    if (!s)
        ms__fail(MS_ENOMEM, "cannot allocate an event store");
    return s;
}

void ms_event_store_free(ms_event_store *s) { ms__store_free(s); }

void ms_event_store_record(ms_event_store *s, ms_memory_event e)
{
    if (!s) {
        ms__fail_fast(MS_EINVAL);
        return;
    }
    if (!ms__event_fits(&e)) {
        ms__fail_fast(e.size >= MS__SIZE_LIMIT || e.old_size >= MS__SIZE_LIMIT ? MS_ERANGE
                                                                               : MS_EINVAL);
        return;
    }
    ms__tbuf *b = ms__store_tbuf(s);
    if (!b)
        return;
    if (e.thread_id != b->ext_tid) {
        uint32_t slot = ms__tids_intern(s->tids, e.thread_id);
        if (slot == MS__TIDS_FULL) {
            ms_atomic_add_relaxed(&s->dropped, 1);
            ms__fail_fast(MS_ERANGE);
            return;
        }
        b->ext_tid = e.thread_id;
        b->ext_slot = slot;
    }
    uint32_t slot = b->ext_slot;
    ms__store_push(s, b, slot, (unsigned)e.type, e.ptr, e.old_ptr, e.size, e.old_size, e.site);
}

void ms__store_record_at(ms_event_store *s, uint64_t tick, ms_memory_event e)
{
    ms__tbuf *b = ms__store_tbuf(s);
    uint32_t slot = ms__tids_intern(s->tids, e.thread_id);
    if (!b || slot == MS__TIDS_FULL)
        return;
    if (b->idx == MS__SEG_EVENTS && !ms__store_next_segment(s, b))
        return;
    if (tick < b->last_tick)
        tick = b->last_tick;
    b->last_tick = tick;
    ms__rec_set(&b->cur->ev[b->idx], tick, (unsigned)e.type, slot, e.ptr, e.old_ptr, e.size,
                e.old_size, e.site);
    b->idx++;
    ms_atomic_store_release(&b->cur->count, b->idx);
}

typedef struct copy_ctx {
    ms_memory_event *out;
    size_t n;
    const ms__timebase *tb;
    const ms__tids *tids;
} copy_ctx;

static void copy_one(const ms__rec *r, void *arg)
{
    copy_ctx *c = arg;
    if (ms__rec_type(r) == MS__REC_NAME) // a name for a block, not an event of its own
        return;
    c->out[c->n++] = (ms_memory_event){
        .timestamp = ms__timebase_ns(c->tb, r->tick),
        .type = (ms_event_type)ms__rec_type(r),
        .ptr = r->ptr,
        .old_ptr = r->old_ptr,
        .size = (size_t)ms__rec_size(r),
        .old_size = (size_t)ms__rec_old_size(r),
        .thread_id = ms__tids_get(c->tids, ms__rec_slot(r)),
        .site = r->site,
    };
}

ms_memory_event *ms_event_store_snapshot(ms_event_store *s, size_t *count)
{
    if (count)
        *count = 0;
    if (!s) {
        ms__fail(MS_EINVAL, "event store is NULL");
        return NULL;
    }
    const ms__timebase *tb = ms__store_timebase(s);
    ms__store_lock_folded(s);
    uint64_t n = s->retained;
    ms_memory_event *out = n > 0 ? ms__malloc(n * sizeof *out) : NULL;
    copy_ctx c = {out, 0, tb, s->tids};
    if (out)
        ms__store_visit_retained(s, copy_one, &c);
    ms__store_unlock(s);
    if (n > 0 && !out) {
        ms__fail(MS_ENOMEM, "cannot copy the retained events");
        return NULL;
    }
    if (count)
        *count = c.n;
    return out;
}

void ms_events_free(ms_memory_event *events) { ms__free(events); }

static uint64_t now_ns(void) { return ms__real_ns(); }

ms_memory_event ms_event_allocate(uintptr_t ptr, size_t size, uint64_t thread_id)
{
    return (ms_memory_event){.timestamp = now_ns(),
                             .type = MS_EVENT_ALLOCATE,
                             .ptr = ptr,
                             .size = size,
                             .thread_id = thread_id};
}

ms_memory_event ms_event_deallocate(uintptr_t ptr, size_t size, uint64_t thread_id)
{
    return (ms_memory_event){.timestamp = now_ns(),
                             .type = MS_EVENT_DEALLOCATE,
                             .ptr = ptr,
                             .size = size,
                             .thread_id = thread_id};
}

ms_memory_event ms_event_reallocate(uintptr_t old_ptr, uintptr_t new_ptr, size_t old_size,
                                    size_t new_size, uint64_t thread_id)
{
    return (ms_memory_event){.timestamp = now_ns(),
                             .type = MS_EVENT_REALLOCATE,
                             .ptr = new_ptr,
                             .old_ptr = old_ptr,
                             .size = new_size,
                             .old_size = old_size,
                             .thread_id = thread_id};
}
