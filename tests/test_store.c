/* test_store.c — the event store: event constructors, order and stamping,
 * concurrent recording while a reader snapshots (nothing lost, each thread's
 * events in its own order), the retained-log budget, and threads that exit
 * before the snapshot. */
#define _GNU_SOURCE
#include <memscope.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Every event the store stamps is later than this (2020-01-01, in ns). */
#define NS_2020 1577836800000000000ULL

/* --------------------------------------------------------- constructors */

static void event_constructors_should_fill_every_field(void **state)
{
    (void)state;
    ms_memory_event a = ms_event_allocate(0x1000, 1024, 7);
    assert_int_equal(a.type, MS_EVENT_ALLOCATE);
    assert_int_equal(a.ptr, 0x1000);
    assert_int_equal(a.size, 1024);
    assert_int_equal(a.thread_id, 7);
    assert_int_equal(a.old_ptr, 0);
    assert_int_equal(a.old_size, 0);
    assert_null(a.site);
    assert_true(a.timestamp > NS_2020);

    ms_memory_event d = ms_event_deallocate(0x1000, 1024, 8);
    assert_int_equal(d.type, MS_EVENT_DEALLOCATE);
    assert_int_equal(d.ptr, 0x1000);
    assert_int_equal(d.size, 1024);
    assert_int_equal(d.thread_id, 8);
    assert_null(d.site);
    assert_true(d.timestamp >= a.timestamp);

    ms_memory_event r = ms_event_reallocate(0x1000, 0x2000, 1024, 4096, 9);
    assert_int_equal(r.type, MS_EVENT_REALLOCATE);
    assert_int_equal(r.old_ptr, 0x1000);
    assert_int_equal(r.ptr, 0x2000);
    assert_int_equal(r.old_size, 1024);
    assert_int_equal(r.size, 4096);
    assert_int_equal(r.thread_id, 9);
    assert_null(r.site);
    assert_true(r.timestamp > NS_2020);
}

static void store_should_keep_events_in_order_and_stamp_them(void **state)
{
    (void)state;
    static const ms_site site = {"x", "int *", "f.c", 1, "fn"};
    ms_event_store *s = ms_event_store_new();
    assert_non_null(s);

    size_t n = 99;
    ms_memory_event *ev = ms_event_store_snapshot(s, &n);
    assert_int_equal(n, 0);
    ms_events_free(ev);

    ms_memory_event e = ms_event_allocate(0x1000, 10, 3);
    e.site = &site;
    e.timestamp = 42; /* not kept: the store stamps with its own clock */
    ms_event_store_record(s, e);
    ms_event_store_record(s, ms_event_reallocate(0x1000, 0x2000, 10, 20, 3));
    ms_event_store_record(s, ms_event_deallocate(0x2000, 20, 4));

    ev = ms_event_store_snapshot(s, &n);
    assert_non_null(ev);
    assert_int_equal(n, 3);
    assert_int_equal(ev[0].type, MS_EVENT_ALLOCATE);
    assert_int_equal(ev[0].ptr, 0x1000);
    assert_int_equal(ev[0].size, 10);
    assert_int_equal(ev[0].thread_id, 3);
    assert_ptr_equal(ev[0].site, &site);
    assert_true(ev[0].timestamp > NS_2020);
    assert_int_equal(ev[1].type, MS_EVENT_REALLOCATE);
    assert_int_equal(ev[1].old_ptr, 0x1000);
    assert_int_equal(ev[1].ptr, 0x2000);
    assert_int_equal(ev[1].old_size, 10);
    assert_int_equal(ev[1].size, 20);
    assert_int_equal(ev[2].type, MS_EVENT_DEALLOCATE);
    assert_int_equal(ev[2].ptr, 0x2000);
    assert_int_equal(ev[2].thread_id, 4);
    assert_null(ev[2].site);
    ms_events_free(ev);

    /* The copy is the caller's: a second one is independent. */
    ms_memory_event *again = ms_event_store_snapshot(s, &n);
    assert_int_equal(n, 3);
    ms_events_free(again);
    ms_event_store_free(s);
}

static void store_functions_should_accept_null(void **state)
{
    (void)state;
    size_t n = 99;
    ms_event_store_record(NULL, ms_event_allocate(0x1000, 1, 1));
    assert_null(ms_event_store_snapshot(NULL, &n));
    assert_int_equal(n, 0);
    ms_events_free(NULL);
    ms_event_store_free(NULL);
}

/* ------------------------------------------------------------ concurrency */

#define WRITERS 4
#define ALLOCS_PER_WRITER 100000 /* and half as many frees: 150 000 events each */
#define EVENTS_PER_WRITER (ALLOCS_PER_WRITER + ALLOCS_PER_WRITER / 2)

/* Writer k's i-th event, in the order it records them: allocations of
 * distinct addresses, and after each odd one a free of the even one before. */
static uint64_t writer_tid(int k) { return 1000 + (uint64_t)k; }

static uintptr_t writer_ptr(int k, long i)
{
    return (uintptr_t)(k + 1) * 0x10000000u + (uintptr_t)i * 16;
}

static size_t writer_size(long i) { return 16 + (size_t)(i % 7) * 8; }

static ms_memory_event writer_event(int k, long j)
{
    /* j counts events: per three events, alloc 2m, alloc 2m+1, free 2m */
    long m = j / 3;
    switch (j % 3) {
    case 0:
        return ms_event_allocate(writer_ptr(k, 2 * m), writer_size(2 * m), writer_tid(k));
    case 1:
        return ms_event_allocate(writer_ptr(k, 2 * m + 1), writer_size(2 * m + 1), writer_tid(k));
    default:
        return ms_event_deallocate(writer_ptr(k, 2 * m), writer_size(2 * m), writer_tid(k));
    }
}

struct stress {
    ms_event_store *store;
    ms_snapshot_engine *engine;
    pthread_barrier_t start;
    atomic_int writers_done;
    /* written by the reader, read by main after join */
    long reader_rounds;
    const char *reader_failure;
};

struct writer_arg {
    struct stress *st;
    int k;
};

static void *writer_main(void *p)
{
    struct writer_arg *w = p;
    pthread_barrier_wait(&w->st->start);
    for (long j = 0; j < EVENTS_PER_WRITER; j++)
        ms_event_store_record(w->st->store, writer_event(w->k, j));
    atomic_fetch_add(&w->st->writers_done, 1);
    return NULL;
}

/* @return NULL if the events of each writer in ev are a prefix of its own
 * sequence (all of it when complete), else what is wrong. */
static const char *check_writer_order(const ms_memory_event *ev, size_t n, int complete)
{
    long next[WRITERS] = {0};
    for (size_t i = 0; i < n; i++) {
        uint64_t tid = ev[i].thread_id;
        if (tid < writer_tid(0) || tid >= writer_tid(WRITERS))
            return "an event with a thread id no writer used";
        int k = (int)(tid - writer_tid(0));
        if (next[k] >= EVENTS_PER_WRITER)
            return "more events than a writer recorded";
        ms_memory_event want = writer_event(k, next[k]++);
        if (ev[i].type != want.type || ev[i].ptr != want.ptr || ev[i].size != want.size)
            return "a writer's events out of order, changed or missing";
    }
    if (complete)
        for (int k = 0; k < WRITERS; k++)
            if (next[k] != EVENTS_PER_WRITER)
                return "a writer's events are missing";
    return NULL;
}

static void *reader_main(void *p)
{
    struct stress *st = p;
    size_t last_allocs = 0;
    pthread_barrier_wait(&st->start);
    do {
        size_t n = 0;
        ms_memory_event *ev = ms_event_store_snapshot(st->store, &n);
        const char *why = check_writer_order(ev, n, 0);
        ms_events_free(ev);
        if (why != NULL) {
            st->reader_failure = why;
            return NULL;
        }
        ms_memory_snapshot *s = ms_snapshot_engine_build(st->engine);
        if (s == NULL) {
            st->reader_failure = "ms_snapshot_engine_build failed";
            return NULL;
        }
        ms_memory_stats ms = ms_snapshot_stats(s);
        ms_snapshot_free(s);
        if (ms.total_allocations < last_allocs) {
            st->reader_failure = "total_allocations went backwards";
            return NULL;
        }
        if (ms.unmatched_deallocations != 0 || ms.dropped_events != 0 ||
            ms.total_deallocations > ms.total_allocations ||
            ms.total_allocations > (size_t)WRITERS * ALLOCS_PER_WRITER) {
            st->reader_failure = "an intermediate snapshot with impossible figures";
            return NULL;
        }
        last_allocs = ms.total_allocations;
        st->reader_rounds++;
    } while (atomic_load(&st->writers_done) < WRITERS);
    return NULL;
}

static void store_should_lose_nothing_under_concurrent_writers_and_a_reader(void **state)
{
    (void)state;
    static struct stress st;
    memset(&st, 0, sizeof st);
    st.store = ms_event_store_new();
    assert_non_null(st.store);
    st.engine = ms_snapshot_engine_new(st.store);
    assert_non_null(st.engine);
    atomic_init(&st.writers_done, 0);
    assert_int_equal(pthread_barrier_init(&st.start, NULL, WRITERS + 1), 0);

    pthread_t writers[WRITERS], reader;
    struct writer_arg args[WRITERS];
    for (int k = 0; k < WRITERS; k++) {
        args[k] = (struct writer_arg){&st, k};
        assert_int_equal(pthread_create(&writers[k], NULL, writer_main, &args[k]), 0);
    }
    assert_int_equal(pthread_create(&reader, NULL, reader_main, &st), 0);
    for (int k = 0; k < WRITERS; k++)
        pthread_join(writers[k], NULL);
    pthread_join(reader, NULL);
    pthread_barrier_destroy(&st.start);

    if (st.reader_failure != NULL)
        fail_msg("reader: %s (after %ld rounds)", st.reader_failure, st.reader_rounds);
    assert_true(st.reader_rounds >= 1);
    print_message("reader: %ld snapshots while the writers ran\n", st.reader_rounds);

    /* The expected figures. */
    uint64_t allocated = 0, live_bytes = 0;
    for (long i = 0; i < ALLOCS_PER_WRITER; i++) {
        allocated += writer_size(i);
        if (i % 2 == 1)
            live_bytes += writer_size(i);
    }
    allocated *= WRITERS;
    live_bytes *= WRITERS;

    ms_memory_snapshot *s = ms_snapshot_engine_build(st.engine);
    assert_non_null(s);
    ms_memory_stats ms = ms_snapshot_stats(s);
    assert_int_equal(ms.total_allocations, WRITERS * ALLOCS_PER_WRITER);
    assert_int_equal(ms.total_deallocations, WRITERS * ALLOCS_PER_WRITER / 2);
    assert_int_equal(ms.active_allocations, WRITERS * ALLOCS_PER_WRITER / 2);
    assert_int_equal(ms.total_allocated, allocated);
    assert_int_equal(ms.total_deallocated, allocated - live_bytes);
    assert_int_equal(ms.current_memory, live_bytes);
    assert_true(ms.peak_memory >= live_bytes && ms.peak_memory <= allocated);
    assert_int_equal(ms.unmatched_deallocations, 0);
    assert_int_equal(ms.replaced_allocations, 0);
    assert_int_equal(ms.dropped_events, 0);
    assert_int_equal(ms_snapshot_active_count(s), WRITERS * ALLOCS_PER_WRITER / 2);

    size_t nt = 0;
    const ms_thread_memory_stats *th = ms_snapshot_threads(s, &nt);
    assert_int_equal(nt, WRITERS);
    for (size_t i = 0; i < nt; i++) {
        assert_in_range(th[i].thread_id, writer_tid(0), writer_tid(WRITERS - 1));
        assert_int_equal(th[i].allocation_count, ALLOCS_PER_WRITER);
        assert_int_equal(th[i].deallocation_count, ALLOCS_PER_WRITER / 2);
        assert_int_equal(th[i].total_allocated, allocated / WRITERS);
        assert_int_equal(th[i].current_memory, live_bytes / WRITERS);
    }
    ms_snapshot_free(s);

    size_t n = 0;
    ms_memory_event *ev = ms_event_store_snapshot(st.store, &n);
    assert_non_null(ev);
    assert_int_equal(n, (size_t)WRITERS * EVENTS_PER_WRITER);
    const char *why = check_writer_order(ev, n, 1);
    if (why != NULL)
        fail_msg("final snapshot: %s", why);

    /* The replay of what was retained agrees with the live state. */
    ms_memory_snapshot *replay = ms_snapshot_build_from_events(ev, n);
    assert_non_null(replay);
    ms_memory_stats rs = ms_snapshot_stats(replay);
    assert_int_equal(rs.total_allocations, ms.total_allocations);
    assert_int_equal(rs.total_deallocations, ms.total_deallocations);
    assert_int_equal(rs.current_memory, ms.current_memory);
    ms_snapshot_free(replay);
    ms_events_free(ev);

    ms_snapshot_engine_free(st.engine);
    ms_event_store_free(st.store);
}

/* ------------------------------------------------------- retained budget */

#define BLOCKS 5000
#define KEPT 100 /* blocks left live */

/* Tracks BLOCKS real blocks of 32 bytes and frees all but KEPT: 2 * BLOCKS -
 * KEPT events. Frees the kept blocks in *kept (untracked later by the caller). */
static void track_and_free_blocks(ms_tracker *t, void **kept, uintptr_t *last_freed)
{
    for (int i = 0; i < BLOCKS; i++) {
        char *block = malloc(32);
        assert_non_null(block);
        TRACK_SIZED(t, block, 32);
        if (i < KEPT) {
            kept[i] = block;
        } else {
            *last_freed = (uintptr_t)block;
            MS_FREE(t, block);
        }
    }
}

static void assert_exact_figures(const ms_memory_stats *s)
{
    assert_int_equal(s->total_allocations, BLOCKS);
    assert_int_equal(s->total_deallocations, BLOCKS - KEPT);
    assert_int_equal(s->active_allocations, KEPT);
    assert_int_equal(s->total_allocated, 32 * BLOCKS);
    assert_int_equal(s->total_deallocated, 32 * (BLOCKS - KEPT));
    assert_int_equal(s->current_memory, 32 * KEPT);
    assert_int_equal(s->unmatched_deallocations, 0);
    assert_int_equal(s->dropped_events, 0);
    assert_int_equal(s->track_errors, 0);
}

static void retained_budget_should_evict_the_oldest_events_and_keep_figures_exact(void **state)
{
    (void)state;
    enum { BUDGET = 4096 };
    static void *kept[KEPT];
    uintptr_t last_freed = 0;
    ms_tracker *t = ms_tracker_with_retained_bytes(ms_tracker_new(), BUDGET);
    assert_non_null(t);

    track_and_free_blocks(t, kept, &last_freed);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_exact_figures(&s);
    /* The peak is reached once the kept blocks and one more are live. */
    assert_int_equal(s.peak_memory, 32 * (KEPT + 1));
    assert_true(s.evicted_events > 0);
    assert_true(s.retained_events * 48 <= BUDGET);
    assert_int_equal(s.evicted_events + s.retained_events, 2 * BLOCKS - KEPT);

    /* What is retained is the newest: it ends with the last free. */
    size_t n = 0;
    ms_memory_event *ev = ms_tracker_events(t, &n);
    assert_int_equal(n, s.retained_events);
    if (n > 0) {
        assert_non_null(ev);
        assert_int_equal(ev[n - 1].type, MS_EVENT_DEALLOCATE);
        assert_int_equal(ev[n - 1].ptr, last_freed);
    }
    ms_events_free(ev);

    /* The live state is exact too. */
    ms_snapshot_engine *e = ms_snapshot_engine_new(ms_tracker_event_store(t));
    ms_memory_snapshot *snap = ms_snapshot_engine_build(e);
    assert_non_null(snap);
    assert_int_equal(ms_snapshot_active_count(snap), KEPT);
    assert_int_equal(ms_snapshot_current_memory(snap), 32 * KEPT);
    ms_snapshot_free(snap);
    ms_snapshot_engine_free(e);

    for (int i = 0; i < KEPT; i++)
        MS_FREE(t, kept[i]);
    ms_tracker_free(t);
}

static void retained_budget_of_zero_should_keep_no_events(void **state)
{
    (void)state;
    static void *kept[KEPT];
    uintptr_t last_freed = 0;
    ms_tracker *t = ms_tracker_with_retained_bytes(ms_tracker_new(), 0);
    assert_non_null(t);

    track_and_free_blocks(t, kept, &last_freed);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_exact_figures(&s);
    assert_int_equal(s.retained_events, 0);
    assert_int_equal(s.evicted_events, 2 * BLOCKS - KEPT);
    size_t n = 99;
    ms_memory_event *ev = ms_tracker_events(t, &n);
    assert_null(ev);
    assert_int_equal(n, 0);

    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_int_equal(r->total_allocations, BLOCKS);
    assert_int_equal(r->active_allocations, KEPT);
    assert_int_equal(r->current_memory_bytes, 32 * KEPT);
    ms_report_free(r);

    for (int i = 0; i < KEPT; i++)
        MS_FREE(t, kept[i]);
    ms_tracker_free(t);
}

/* ------------------------------------------------- threads that exited */

#define EXITING_THREADS 8
#define EVENTS_PER_EXITING 1000

struct exiting_arg {
    ms_event_store *store;
    int k;
};

static void *exiting_store_thread(void *p)
{
    struct exiting_arg *a = p;
    for (int i = 0; i < EVENTS_PER_EXITING; i++)
        ms_event_store_record(a->store,
                              ms_event_allocate(writer_ptr(a->k, i), 8, writer_tid(a->k)));
    return NULL; /* the thread exits with its buffer not yet read */
}

static void store_should_keep_the_events_of_threads_that_exited(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    assert_non_null(s);
    pthread_t th[EXITING_THREADS];
    struct exiting_arg args[EXITING_THREADS];
    for (int k = 0; k < EXITING_THREADS; k++) {
        args[k] = (struct exiting_arg){s, k};
        assert_int_equal(pthread_create(&th[k], NULL, exiting_store_thread, &args[k]), 0);
    }
    for (int k = 0; k < EXITING_THREADS; k++)
        pthread_join(th[k], NULL);

    size_t n = 0;
    ms_memory_event *ev = ms_event_store_snapshot(s, &n);
    assert_int_equal(n, EXITING_THREADS * EVENTS_PER_EXITING);
    ms_events_free(ev);

    ms_snapshot_engine *e = ms_snapshot_engine_new(s);
    ms_memory_snapshot *snap = ms_snapshot_engine_build(e);
    assert_non_null(snap);
    ms_memory_stats st = ms_snapshot_stats(snap);
    assert_int_equal(st.total_allocations, EXITING_THREADS * EVENTS_PER_EXITING);
    assert_int_equal(st.current_memory, 8 * EXITING_THREADS * EVENTS_PER_EXITING);
    size_t nt = 0;
    ms_snapshot_threads(snap, &nt);
    assert_int_equal(nt, EXITING_THREADS);
    ms_snapshot_free(snap);
    ms_snapshot_engine_free(e);

    /* A new thread after the others exited records as well. */
    args[0] = (struct exiting_arg){s, EXITING_THREADS};
    assert_int_equal(pthread_create(&th[0], NULL, exiting_store_thread, &args[0]), 0);
    pthread_join(th[0], NULL);
    ev = ms_event_store_snapshot(s, &n);
    assert_int_equal(n, (EXITING_THREADS + 1) * EVENTS_PER_EXITING);
    ms_events_free(ev);
    ms_event_store_free(s);
}

#define TRACKING_THREADS 8
#define BLOCKS_PER_THREAD 10

struct tracking_arg {
    ms_tracker *t;
    pthread_barrier_t *all_alive;
    void *blocks[BLOCKS_PER_THREAD];
    int ok;
};

static void *exiting_tracking_thread(void *p)
{
    struct tracking_arg *a = p;
    for (int i = 0; i < BLOCKS_PER_THREAD; i++) {
        char *block = malloc(24);
        if (block == NULL)
            return NULL;
        TRACK_SIZED(a->t, block, 24);
        a->blocks[i] = block;
    }
    /* Wait until all are alive, so no two share a kernel thread id. */
    pthread_barrier_wait(a->all_alive);
    a->ok = 1;
    return NULL;
}

static void tracker_should_count_the_blocks_of_threads_that_exited(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_new();
    assert_non_null(t);
    pthread_barrier_t all_alive;
    assert_int_equal(pthread_barrier_init(&all_alive, NULL, TRACKING_THREADS), 0);
    pthread_t th[TRACKING_THREADS];
    static struct tracking_arg args[TRACKING_THREADS];
    for (int k = 0; k < TRACKING_THREADS; k++) {
        memset(&args[k], 0, sizeof args[k]);
        args[k].t = t;
        args[k].all_alive = &all_alive;
        assert_int_equal(pthread_create(&th[k], NULL, exiting_tracking_thread, &args[k]), 0);
    }
    for (int k = 0; k < TRACKING_THREADS; k++) {
        pthread_join(th[k], NULL);
        assert_true(args[k].ok);
    }
    pthread_barrier_destroy(&all_alive);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.total_allocations, TRACKING_THREADS * BLOCKS_PER_THREAD);
    assert_int_equal(s.active_allocations, TRACKING_THREADS * BLOCKS_PER_THREAD);
    assert_int_equal(s.current_memory, 24 * TRACKING_THREADS * BLOCKS_PER_THREAD);
    assert_int_equal(s.dropped_events, 0);

    ms_snapshot_engine *e = ms_snapshot_engine_new(ms_tracker_event_store(t));
    ms_memory_snapshot *snap = ms_snapshot_engine_build(e);
    assert_non_null(snap);
    size_t nt = 0;
    const ms_thread_memory_stats *ts = ms_snapshot_threads(snap, &nt);
    assert_int_equal(nt, TRACKING_THREADS);
    for (size_t i = 0; i < nt; i++)
        assert_int_equal(ts[i].allocation_count, BLOCKS_PER_THREAD);
    ms_snapshot_free(snap);
    ms_snapshot_engine_free(e);

    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_int_equal(r->thread_count, TRACKING_THREADS);
    ms_report_free(r);

    /* Freed from the main thread: charged back to the threads that exited. */
    for (int k = 0; k < TRACKING_THREADS; k++)
        for (int i = 0; i < BLOCKS_PER_THREAD; i++)
            MS_FREE(t, args[k].blocks[i]);
    s = ms_tracker_stats(t);
    assert_int_equal(s.total_deallocations, TRACKING_THREADS * BLOCKS_PER_THREAD);
    assert_int_equal(s.current_memory, 0);
    ms_tracker_free(t);
}

/* ------------------------------------------------------- causal order */

#define HANDOFFS 20000

struct pingpong {
    ms_event_store *store;
    atomic_long step; /* even: thread A's turn, odd: thread B's */
};

static void wait_for_turn(struct pingpong *pp, long step)
{
    while (atomic_load(&pp->step) != step)
        sched_yield();
}

static void *ping(void *p)
{
    struct pingpong *pp = p;
    for (long i = 0; i < HANDOFFS; i++) {
        wait_for_turn(pp, 2 * i);
        ms_event_store_record(pp->store, ms_event_allocate(0x1000, 64, 1));
        atomic_store(&pp->step, 2 * i + 1);
    }
    return NULL;
}

static void *pong(void *p)
{
    struct pingpong *pp = p;
    for (long i = 0; i < HANDOFFS; i++) {
        wait_for_turn(pp, 2 * i + 1);
        ms_event_store_record(pp->store, ms_event_deallocate(0x1000, 64, 2));
        atomic_store(&pp->step, 2 * i + 2);
    }
    return NULL;
}

/* Thread 1 allocates 0x1000, thread 2 frees it, thread 1 allocates it again,
 * ...: each event happens after the one before, on the other thread. The live
 * state and the replay of the snapshot must both see that order. */
static void store_should_keep_causal_order_across_threads(void **state)
{
    (void)state;
    static struct pingpong pp;
    pp.store = ms_event_store_new();
    assert_non_null(pp.store);
    atomic_init(&pp.step, 0);
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, ping, &pp), 0);
    assert_int_equal(pthread_create(&b, NULL, pong, &pp), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);

    ms_snapshot_engine *e = ms_snapshot_engine_new(pp.store);
    ms_memory_snapshot *live = ms_snapshot_engine_build(e);
    assert_non_null(live);
    size_t n = 0;
    ms_memory_event *ev = ms_event_store_snapshot(pp.store, &n);
    assert_int_equal(n, 2 * HANDOFFS);
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type != (i % 2 == 0 ? MS_EVENT_ALLOCATE : MS_EVENT_DEALLOCATE))
            fail_msg("event %zu is out of order", i);
    }
    ms_memory_snapshot *replay = ms_snapshot_build_from_events(ev, n);
    assert_non_null(replay);

    const ms_memory_snapshot *both[2] = {live, replay};
    for (int i = 0; i < 2; i++) {
        ms_memory_stats st = ms_snapshot_stats(both[i]);
        assert_int_equal(st.total_allocations, HANDOFFS);
        assert_int_equal(st.total_deallocations, HANDOFFS);
        assert_int_equal(st.active_allocations, 0);
        assert_int_equal(st.current_memory, 0);
        assert_int_equal(st.peak_memory, 64);
        assert_int_equal(st.unmatched_deallocations, 0);
        assert_int_equal(st.replaced_allocations, 0);
    }
    ms_snapshot_free(live);
    ms_snapshot_free(replay);
    ms_events_free(ev);
    ms_snapshot_engine_free(e);
    ms_event_store_free(pp.store);
}

/* ------------------------------------------------------------- drops */

#define THREAD_ID_LIMIT 65536

static void store_should_count_events_past_the_thread_id_limit_as_dropped(void **state)
{
    (void)state;
    enum { EXTRA = 100 };
    ms_event_store *s = ms_event_store_new();
    assert_non_null(s);
    for (uint64_t tid = 1; tid <= THREAD_ID_LIMIT + EXTRA; tid++)
        ms_event_store_record(s, ms_event_allocate(0x1000 + 16 * (uintptr_t)tid, 8, tid));
    /* A thread id already known still records. */
    ms_event_store_record(s, ms_event_deallocate(0x1000 + 16, 8, 1));

    ms_snapshot_engine *e = ms_snapshot_engine_new(s);
    ms_memory_snapshot *snap = ms_snapshot_engine_build(e);
    assert_non_null(snap);
    ms_memory_stats st = ms_snapshot_stats(snap);
    assert_int_equal(st.dropped_events, EXTRA);
    assert_int_equal(st.total_allocations, THREAD_ID_LIMIT);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.active_allocations, THREAD_ID_LIMIT - 1);
    size_t nt = 0;
    ms_snapshot_threads(snap, &nt);
    assert_int_equal(nt, THREAD_ID_LIMIT);
    size_t n = 0;
    ms_memory_event *ev = ms_event_store_snapshot(s, &n);
    assert_int_equal(n, THREAD_ID_LIMIT + 1);
    ms_events_free(ev);
    ms_snapshot_free(snap);
    ms_snapshot_engine_free(e);
    ms_event_store_free(s);
}

typedef struct churn_arg {
    ms_tracker *t;
    atomic_bool stop;
} churn_arg;

static void *churn(void *arg)
{
    churn_arg *c = arg;
    char blocks[64][16];
    while (!atomic_load(&c->stop))
        for (int i = 0; i < 64; i++) {
            TRACK_SIZED(c->t, blocks[i], 16);
            UNTRACK(c->t, blocks[i]);
        }
    return NULL;
}

/* A query sees everything its own thread recorded before it, whatever other
 * threads are in the middle of. */
static void query_should_include_the_callers_own_records_while_others_record(void **state)
{
    (void)state;
    churn_arg c = {ms_tracker_new(), false};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, churn, &c), 0);
    static char mine[2000][8];
    for (int i = 0; i < 2000; i++) {
        TRACK_SIZED(c.t, mine[i], 8);
        ms_memory_snapshot *snap = NULL;
        ms_snapshot_engine *e = ms_snapshot_engine_new(ms_tracker_event_store(c.t));
        snap = ms_snapshot_engine_build(e);
        size_t n = 0;
        const ms_active_allocation *a = ms_snapshot_allocations(snap, &n);
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
            found = a[k].ptr == (uintptr_t)mine[i];
        assert_true(found);
        ms_snapshot_free(snap);
        ms_snapshot_engine_free(e);
    }
    atomic_store(&c.stop, true);
    pthread_join(th, NULL);
    ms_tracker_free(c.t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(query_should_include_the_callers_own_records_while_others_record),
        cmocka_unit_test(event_constructors_should_fill_every_field),
        cmocka_unit_test(store_should_keep_events_in_order_and_stamp_them),
        cmocka_unit_test(store_functions_should_accept_null),
        cmocka_unit_test(store_should_lose_nothing_under_concurrent_writers_and_a_reader),
        cmocka_unit_test(retained_budget_should_evict_the_oldest_events_and_keep_figures_exact),
        cmocka_unit_test(retained_budget_of_zero_should_keep_no_events),
        cmocka_unit_test(store_should_keep_the_events_of_threads_that_exited),
        cmocka_unit_test(tracker_should_count_the_blocks_of_threads_that_exited),
        cmocka_unit_test(store_should_keep_causal_order_across_threads),
        cmocka_unit_test(store_should_count_events_past_the_thread_id_limit_as_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
