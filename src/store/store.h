/* store.h — the event store: each thread appends 48-byte records to its own
 * chain of segments (no lock, no system call, no malloc); a fold merges the
 * threads' records in tick order up to a safe watermark into the exact live
 * state and the bounded retained log. Depends on common/, rec.h, live.h,
 * tids.h. The design is in docs/design.md. */
#ifndef MS_STORE_STORE_H
#define MS_STORE_STORE_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/alloc.h"
#include "common/atomic.h"
#include "common/clock.h"
#include "store/filter.h"
#include "store/live.h"
#include "store/rec.h"
#include "stack/cfi.h"
#include "store/tids.h"

#define MS__SEG_EVENTS 4096u
#define MS__DEFAULT_RETAINED_BYTES ((size_t)64 << 20)
/* How long a free of an unknown address waits for its allocation: far longer
 * than a CPU can read its clock ahead of a load (hundreds of ns). */
#define MS__HOLD_TICKS (UINT64_C(1) << 16)

typedef struct ms__seg {
    /* Published records. Written by the owner thread (release), read by the
     * folder (acquire). */
    _Atomic uint32_t count;
    /* The owner's next segment, set (release) once this one is full. */
    _Atomic(struct ms__seg *) next;
    char pad[MS_CACHE_LINE - sizeof(uint32_t) - sizeof(void *)];
    ms__rec ev[MS__SEG_EVENTS];
} ms__seg;

/* A thread's cache of stacks it interned lately (stack/stack.c). */
#define MS__STACK_CACHE 256u
typedef struct ms__stack_slot {
    uint64_t hash;
    uint32_t id;
} ms__stack_slot;

enum { MS__TB_THREAD_GONE = 1, MS__TB_STORE_GONE = 2 };
enum { MS__IF_TICK = 1, MS__IF_BUSY = 2 };

/* One thread's buffer in one store. Header from pages; freed by whichever of
 * the thread (at exit) and the store (at free) lets go of it last. */
typedef struct ms__tbuf {
    /* Owner thread only. */
    ms__seg *cur;
    uint32_t idx;         /* mirror of cur->count */
    uint32_t slot;        /* the thread's id slot */
    uint32_t coarse_left; /* records until this thread advances the coarse clock */
    uint64_t last_tick;
    uint64_t rng;          /* sampling generator state */
    uint64_t rng_gen;      /* seed generation the state came from */
    uint64_t ext_tid;      /* last thread id given to ms_event_store_record (UINT64_MAX:
                              none yet) ... */
    uint32_t ext_slot;     /* ... and its slot */
    uint32_t caller_stack; /* the caller-only stack of `caller_pc` (0: none yet) */
    uintptr_t caller_pc;
    /* The same for the last caller of an allocator wrapper (ms__stack_caller). */
    uint32_t wcaller_stack;
    uintptr_t wcaller_pc;
    uint32_t caller_gen; /* the wrappers (ms__stack_wrap_gen) both pairs are of */
    /* The last object whose wrappers this thread looked for (stack.c), and the
     * code epoch then. */
    uint32_t obj_epoch;
    uintptr_t obj_lo, obj_hi;
    struct ms__seg *own_spares; /* spares taken from `spare`, not used yet */
    _Atomic uint32_t own_count; /* how many (the folder reads it) */
    /* Single writer (owner), read by the folder: relaxed is enough.
     * Sampling draws the gap to the next sampled TRACK: skips_left counts down
     * the TRACKs still to skip, skips_drawn adds up the gaps drawn, so the
     * calls skipped so far are skips_drawn - skips_left. */
    _Atomic uint64_t skips_drawn, skips_left, errors;
    _Atomic uint64_t null_frees, failed_allocs; /* capture: free(NULL), allocations that failed */
    /* Where the owner is in a push (MS__IF_*): MS__IF_TICK between taking a
     * tick and publishing the record, MS__IF_BUSY while it replaces a full
     * segment first (it holds no tick yet), 0 outside. Owner writes; the
     * folder reads after an asymmetric barrier, and only MS__IF_TICK holds
     * its watermark back. Any other value guards against a signal handler
     * recording on the same thread mid-push. */
    _Atomic uint32_t inflight;
    /* Recycled segments handed back by the folder, a chain through `next`
     * (pushed with a compare-and-swap, release); the owner takes the whole
     * chain with an exchange. */
    _Atomic(ms__seg *) spare;

    /* Folder only (under the store's fold lock). */
    alignas(MS_CACHE_LINE) ms__seg *rd_seg;
    uint32_t rd_idx;
    uint64_t last_folded_tick;
    uint64_t order;        /* registration order: breaks ties between equal ticks */
    uint32_t spares_given; /* segments pushed on `spare` since it was last seen empty */
    bool waiting;          /* its next record waits for an address (store.c) */
    struct ms__tbuf *store_next;

    /* Lifetime. */
    _Atomic uint32_t state;       /* MS__TB_* bits */
    struct ms__tbuf *thread_next; /* the owner thread's list */
    uint64_t store_id;
    struct ms_event_store *store;

    ms__stack_slot stack_cache[MS__STACK_CACHE]; /* owner only */
    uint32_t stack_next; /* owner only: the stack table entry after the last one found */
    /* 1 while the owner updates stack_cache, stack_next or [w]caller_* (a signal
     * handler that interns a stack on this thread meanwhile leaves them be). */
    volatile sig_atomic_t stack_busy;
    ms__cfi_memo cfi_memo; /* owner only: its last walk past a chain (stack.c) */
} ms__tbuf;

typedef struct ms__chunk ms__chunk;

/* Streaming: the writer's place in the retained log (trace/stream.c). */
typedef struct ms__stream_pos {
    ms__chunk *c;
    size_t idx;   /* in c */
    uint64_t seq; /* of the next record */
} ms__stream_pos;

struct ms_event_store {
    uint64_t id; /* unique for the process's life: TLS caches key on it */
    /* The coarse clock, while a background folder runs (0: none, records
     * read the tick counter). Advanced by each fold, under the fold lock;
     * read by recording threads. It shares its line only with what recording
     * threads read and nobody writes in the steady state (`id`, `filter`,
     * `bg_fold`): a line the fold writes would move between CPUs at every
     * record. */
    _Atomic uint64_t coarse;
    struct ms__filter *filter; /* sampled addresses (capture), pages touched lazily */
    _Atomic bool bg_fold;      /* a background thread folds: recording threads do not */
    /* Capture wants the background folder once its tracker stops sampling
     * (tracker.c starts it then; capture/capture.c). */
    _Atomic bool folder_wanted;
    /* A store rebuilt from a trace: its ticks are the traced process's, and
     * its figures add the trace's own counters (NULL / zero otherwise). */
    const ms__timebase *timebase;
    uint64_t series_width; /* ticks a timeline point spans at the start */
    ms_memory_stats replay_extra;
    alignas(MS_CACHE_LINE) ms__tids *tids;
    _Atomic(ms__tbuf *) tbufs; /* pushed lock-free by new threads */
    _Atomic uint64_t dropped;
    _Atomic uint64_t stackless; /* events recorded without their stack: the table was full */
    _Atomic uint64_t segs_allocated;
    /* Of those, spares handed to threads and not taken into use yet (added
     * before a spare is published, taken off before it is freed). */
    _Atomic uint64_t segs_parked;
    _Atomic uint64_t next_order; /* registration order of thread buffers */
    _Atomic uint64_t seed_gen;   /* bumped when the sampling seed changes */
    _Atomic uint64_t seed;

    alignas(MS_CACHE_LINE) pthread_mutex_t fold_lock; /* guards everything below */
    ms__live live;
    uint64_t gone_sampled_out, gone_errors; /* from freed thread buffers */
    uint64_t gone_null_frees, gone_failed_allocs;
    ms__seg *free_segs;
    size_t free_seg_count;
    void *heap; /* merge heap, then the buffers that wait, pages */
    size_t heap_cap;
    size_t nwaiting;                       /* buffers waiting (store.c: taken addresses) */
    uint64_t barrier_tick, safe_watermark; /* the last barrier under the coarse clock */
    bool recheck;                          /* a record was applied while some wait */
    bool coarse_fold; /* this fold's records took the coarse clock: frees wait, not held */
    /* Frees of addresses that were not live, held for MS__HOLD_TICKS in case
     * the allocation, from another thread, carries a slightly newer tick.
     * Open addressing by address; folder only. */
    struct ms__held *held;
    size_t held_cap, held_count;
    /* Retained log: a FIFO of chunks, oldest first. */
    size_t retained_budget, chunk_events, max_chunks, nchunks;
    ms__chunk *oldest, *newest;
    /* 1 while a visit reads the log without the fold lock (at most one), and
     * the chunks evicted meanwhile (freed when it ends). */
    uint32_t pins;
    ms__chunk *pinned_gone;
    uint64_t retained, evicted;
    uint64_t folded; /* records folded so far */
    /* Streaming (trace/stream.c): a writer follows the retained log, which
     * then evicts only chunks the writer has passed. `seq` numbers retained
     * records (published for the writer, release); the writer publishes the
     * first record it still needs (`stream_done`). A record that finds the
     * log full of unwritten chunks waits for the writer (`stream_drain`
     * first: it drains at once when the fold runs on the writer's thread)
     * while the writer moves and the threads' unfolded segments stay under a
     * quarter of their bound; once it has not moved for MS__STREAM_WAIT_NS
     * (100 ms: other threads' records pile up meanwhile), records are lost: counted, and the next
     * chunk says how many went before it. */
    _Atomic uint64_t seq;
    _Atomic uint64_t stream_done;
    bool streaming, stream_stalled;
    bool (*stream_drain)(void *ctx, uint64_t upto);
    void *stream_ctx;
    uint64_t stream_lost, lost_pending; /* lost in all; since the newest chunk began */
    uint64_t evicted_before_stream;     /* evicted before the stream began */
    _Atomic uint64_t stream_io_lost;    /* passed by a writer that could not write */
    ms__stream_pos *stream_pos;         /* the writer's place (its thread, or under the lock) */
    struct ms_event_store *reg_next;    /* the process's store registry (fork) */
    _Atomic bool late_lock;             /* guards `late` */
    ms__tbuf *late; /* shared buffer for threads past their exit (ms__store_push_late) */
    _Atomic uint64_t late_null_frees;
};

extern bool ms__need_fence; /* no membarrier: the owner fences instead */

ms_event_store *ms__store_new(size_t retained_bytes);
/* pre: no thread records into s any more. */
void ms__store_free(ms_event_store *s);
/* Change the retained budget. pre: nothing recorded yet. */
int ms__store_set_retained(ms_event_store *s, size_t bytes);

/* @return the calling thread's buffer for s, creating it; NULL (drop
 * counted) when memory or thread slots run out. */
ms__tbuf *ms__store_tbuf_slow(ms_event_store *s);
static inline ms__tbuf *ms__store_tbuf(ms_event_store *s)
{
    if (ms_likely(ms__tl.id == s->id)) // the buffer cached in TLS (common/alloc.h)
        return ms__tl.buf;
    return ms__store_tbuf_slow(s);
}

/* @return true when the calling thread has handed its buffers back (it is
 * exiting: glibc frees a few blocks after the last thread-local destructor). */
bool ms__store_thread_exited(void);
/* Record for such a thread, into the store's shared late buffer (a spin lock:
 * a handful of records per exiting thread). @return false if it was dropped
 * (and counted as such). */
bool ms__store_push_late(ms_event_store *s, unsigned type, uintptr_t ptr, uintptr_t old_ptr,
                         uint64_t size, uint64_t old_size);

/* Under the coarse clock each thread advances the clock itself every this
 * many records, to the tick counter's value: a tick then spans a few dozen
 * records of each thread, not the folder's whole millisecond (or more, when
 * the folder is descheduled), and the fold's merge has little to order by
 * registration alone (store.c: taken addresses). */
#define MS__COARSE_BUMP 64u
/* @return the tick for a record: the coarse clock advanced to the tick
 * counter, if that is later than `seen` (its value just loaded). */
uint64_t ms__store_bump_coarse(ms_event_store *s, ms__tbuf *b, uint64_t seen);

/* Slow path of a push: the current segment is full. @return false when the
 * record must be dropped (counted by the caller). */
bool ms__store_next_segment(ms_event_store *s, ms__tbuf *b);

/* A record in two steps, for one whose moment must come before its content is
 * known: capture's realloc takes its tick before the old block is released
 * (another thread may get that address at once) and fills in the new block
 * after. Between begin and commit/abort the thread holds the fold's watermark
 * back. @return false when the record must be dropped (counted). */
static inline bool ms__store_begin(ms_event_store *s, ms__tbuf *b, unsigned type, uint64_t *tick)
{
    if (ms_unlikely(ms_atomic_load_relaxed(&b->inflight))) {
        // A signal handler interrupted a push on this thread: do not touch
        // the half-written slot.
        ms_atomic_add_relaxed(&s->dropped, 1);
        return false;
    }
    // The mark goes up before the segment is looked at: a handler that got
    // in before it has finished its push.
    ms_atomic_store_relaxed(&b->inflight, MS__IF_TICK);
    ms_compiler_barrier();
    // A full segment is replaced before the tick is taken: a thread waiting
    // there for a fold holds no tick, so it must not hold the watermark back
    // either (a folder that saw MS__IF_TICK meanwhile only held it back).
    if (ms_unlikely(b->idx == MS__SEG_EVENTS)) {
        ms_atomic_store_relaxed(&b->inflight, MS__IF_BUSY);
        ms_compiler_barrier();
        bool ok = ms__store_next_segment(s, b);
        ms_compiler_barrier();
        if (!ok) {
            ms_atomic_add_relaxed(&s->dropped, 1);
            ms_atomic_store_relaxed(&b->inflight, 0);
            return false;
        }
        ms_atomic_store_relaxed(&b->inflight, MS__IF_TICK);
    }
    if (ms_unlikely(ms__need_fence))
        ms_fence_seq_cst();
    ms_compiler_barrier();
    // With a background folder the tick is its coarse clock, one load of a
    // line that changes once a millisecond (rdtsc costs more than the rest
    // of a record; the fold orders what the ticks cannot: store.c). The
    // fence orders the allocator's loads (which saw another thread free this
    // address) before that load; on x86 it is free. Without the coarse clock
    // a reallocation takes an ordered tick; allocations and frees take the
    // plain one (a free read too early is repaired by the fold). (Without
    // membarrier the fence above must also order the clock read.)
    ms_fence_acquire();
    uint64_t t = ms_atomic_load_relaxed(&s->coarse);
    if (t == 0)
        t = type == MS_EVENT_REALLOCATE || ms__need_fence ? ms__ticks_ordered() : ms__ticks();
    else if (ms_unlikely(b->coarse_left-- == 0))
        t = ms__store_bump_coarse(s, b, t);
    if (ms_unlikely(t < b->last_tick)) // keep each thread's ticks monotonic
        t = b->last_tick;
    b->last_tick = t;
    *tick = t;
    return true;
}

static inline void ms__store_commit(ms__tbuf *b, uint64_t tick, unsigned slot, unsigned type,
                                    uintptr_t ptr, uintptr_t old_ptr, uint64_t size,
                                    uint64_t old_size, const ms_site *site)
{
    ms__rec_set(&b->cur->ev[b->idx], tick, type, slot, ptr, old_ptr, size, old_size, site);
    b->idx++;
    ms_atomic_store_release(&b->cur->count, b->idx);
    ms_atomic_store_release(&b->inflight, 0);
}

/* Nothing to record after all (the realloc failed). */
static inline void ms__store_abort(ms__tbuf *b) { ms_atomic_store_release(&b->inflight, 0); }

/* Append one record for the thread in `slot`. Lock-free, no system call, no
 * allocation in the steady state. `old_size` may carry a stack id and flags
 * (ms__rec_extra). */
static inline void ms__store_push(ms_event_store *s, ms__tbuf *b, unsigned slot, unsigned type,
                                  uintptr_t ptr, uintptr_t old_ptr, uint64_t size,
                                  uint64_t old_size, const ms_site *site)
{
    uint64_t tick;
    if (ms__store_begin(s, b, type, &tick))
        ms__store_commit(b, tick, slot, type, ptr, old_ptr, size, old_size, site);
}

/* Tests: record on the calling thread's buffer, for thread id `tid`, with the
 * given tick instead of the clock (raised to keep the buffer monotonic). */
void ms__store_record_at(ms_event_store *s, uint64_t tick, ms_memory_event e);

/* Fold this store from a background thread ("memscope-fold") every
 * millisecond, so that recording threads only append (they still fold when
 * their backlog passes a bound). For the process's life: for the global
 * tracker under capture. A child after fork() folds inline again.
 * @return 0, or MS_ENOMEM when no thread could be started. */
int ms__store_start_folder(ms_event_store *s);
/* Make s the global tracker's store, before anything is recorded: each
 * thread's buffer in it is also in ms__tl.gbuf. pre: s is never freed. */
void ms__store_set_global(ms_event_store *s);

/* Fold what every thread has published, then hold the fold lock so the live
 * state and the retained log can be read. Pair with ms__store_unlock. */
void ms__store_lock_folded(ms_event_store *s);
void ms__store_unlock(ms_event_store *s);
/* The fold lock alone, nothing folded. Every holder of the lock outside
 * store.c takes it with these two, so that ms__store_folding_here knows. */
void ms__store_lock(ms_event_store *s);

/* Is the calling thread taking, holding or letting go of a fold lock? A
 * fatal signal handler that would fold must not, then: it defers an
 * asynchronous signal instead, which the thread raises again as it lets go
 * of the lock (async-signal-safe both). */
bool ms__store_folding_here(void);
void ms__store_defer_signal(int sig);

/* A tracker rebuilt from a trace: apply and retain one record of the trace,
 * in the trace's order (it is already the order a fold chose). */
void ms__store_replay(ms_event_store *s, const ms__rec *r);
/* The ticks a point of s's memory timeline spanned at the start. */
uint64_t ms__store_series_width(const ms_event_store *s);
/* The ticks -> ns map of s's records: the process clock's, or a trace's. */
const ms__timebase *ms__store_timebase(const ms_event_store *s);

#define MS__STREAM_WAIT_NS 100000000u
/* Start streaming s from its oldest retained record: at least `min_bytes`
 * of retained log (the stream's buffer), nothing evicted from here on that
 * the writer has not passed. `drain(ctx)` is called, under the fold lock,
 * when the log is full: it writes the records before seq `upto` (the end of the
 * oldest chunk) and returns true when it could (on the writer's thread),
 * false to have the fold wait for the writer.
 * @return 0 or MS_ENOMEM / MS_EINVAL (already streaming). */
int ms__store_stream_begin(ms_event_store *s, size_t min_bytes, bool (*drain)(void *, uint64_t),
                           void *ctx, ms__stream_pos *pos);
/* The next run of published records at pos (lock-free; *run valid until the
 * writer passes its chunk), and how many records were lost just before it.
 * @return its length, 0 when the writer has caught up. */
size_t ms__store_stream_take(ms_event_store *s, ms__stream_pos *pos, const ms__rec **run,
                             uint64_t *lost_before);
/* Under the fold lock: records lost since the newest chunk began (taken:
 * the next call says 0), and stop streaming. */
uint64_t ms__store_stream_take_lost(ms_event_store *s);
void ms__store_stream_end(ms_event_store *s);
/* Take the fold lock if it comes within `ns`. @return whether it did. */
bool ms__store_lock_within(ms_event_store *s, uint64_t ns);
/* Fold now if nobody else is (the writer keeps the log current). */
void ms__store_try_fold(ms_event_store *s);

/* Under ms__store_lock_folded: */
typedef void (*ms__rec_visit_fn)(const ms__rec *r, void *ctx);
void ms__store_visit_retained(ms_event_store *s, ms__rec_visit_fn fn, void *ctx);
/* The same visit of what is retained at the call, with the fold lock let go
 * first: recording threads that fold, or wait for the folder, go on
 * meanwhile (a long visit, such as the binary export's encoding, stalled
 * them). The log's chunks are pinned for the visit: one evicted meanwhile
 * is freed when the visit ends (new records take new memory until then).
 * One such visit at a time: another that starts meanwhile visits under the
 * lock. pre: under ms__store_lock_folded; post: the lock is let go. */
void ms__store_visit_retained_and_unlock(ms_event_store *s, ms__rec_visit_fn fn, void *ctx);
/* Exact figures of the live state plus the store-level counters. */
void ms__store_stats_locked(ms_event_store *s, ms_memory_stats *out);

#endif
