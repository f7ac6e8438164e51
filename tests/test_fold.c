/* test_fold.c — the store's fold through its internal header: records with
 * chosen ticks show how a free read "too early" (before the allocation it
 * belongs to) is held and put back in order, and when it is not; and how a
 * captured allocation that merges before the free of its address (equal
 * ticks) waits for it; and how a visit of the retained log reads it without
 * the fold lock; and a fork in the middle of a record in the shared late
 * buffer. */
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/pages.h"
#include "stack/stack.h"
#include "store/store.h"

enum { T0 = 1000000 };

static ms_memory_stats stats_of(ms_event_store *s)
{
    ms_snapshot_engine *e = ms_snapshot_engine_new(s);
    ms_memory_snapshot *snap = ms_snapshot_engine_build(e);
    ms_memory_stats st = ms_snapshot_stats(snap);
    ms_snapshot_free(snap);
    ms_snapshot_engine_free(e);
    return st;
}

typedef struct timed_event {
    ms_event_store *store;
    uint64_t tick;
    ms_memory_event e;
} timed_event;

static void *record_on_a_thread(void *arg)
{
    timed_event *te = arg;
    ms__store_record_at(te->store, te->tick, te->e);
    return NULL;
}

/* Record `e` at `tick` from a thread of its own (its own recording buffer). */
static void record_from_new_thread(ms_event_store *s, uint64_t tick, ms_memory_event e)
{
    timed_event te = {s, tick, e};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, record_on_a_thread, &te), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
}

static void free_before_its_allocation_from_another_thread_should_be_put_in_order(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    // Thread 2's free carries a tick 100 older than thread 1's allocation.
    record_from_new_thread(s, T0, ms_event_deallocate(0x5000, 64, 2));
    record_from_new_thread(s, T0 + 100, ms_event_allocate(0x5000, 64, 1));
    ms_memory_stats st = stats_of(s);
    assert_int_equal(st.total_allocations, 1);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.active_allocations, 0);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.current_memory, 0);
    assert_int_equal(st.peak_memory, 64);

    // The retained log holds the order applied, so a replay agrees.
    size_t n = 0;
    ms_memory_event *ev = ms_event_store_snapshot(s, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ev[0].type, MS_EVENT_ALLOCATE);
    assert_int_equal(ev[1].type, MS_EVENT_DEALLOCATE);
    ms_memory_snapshot *replay = ms_snapshot_build_from_events(ev, n);
    ms_memory_stats rs = ms_snapshot_stats(replay);
    assert_int_equal(rs.unmatched_deallocations, 0);
    assert_int_equal(rs.active_allocations, 0);
    ms_snapshot_free(replay);
    ms_events_free(ev);
    ms_event_store_free(s);
}

static void free_before_a_reallocation_to_its_address_should_be_put_in_order(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    record_from_new_thread(s, T0 - 50, ms_event_allocate(0x4000, 32, 1));
    record_from_new_thread(s, T0, ms_event_deallocate(0x5000, 64, 2));
    record_from_new_thread(s, T0 + 100, ms_event_reallocate(0x4000, 0x5000, 32, 64, 1));
    ms_memory_stats st = stats_of(s);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.active_allocations, 0);
    assert_int_equal(st.current_memory, 0);
    ms_event_store_free(s);
}

static void free_long_before_an_allocation_should_stay_unmatched(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    record_from_new_thread(s, T0, ms_event_deallocate(0x5000, 64, 2));
    record_from_new_thread(s, T0 + MS__HOLD_TICKS + 1, ms_event_allocate(0x5000, 64, 1));
    ms_memory_stats st = stats_of(s);
    assert_int_equal(st.unmatched_deallocations, 1);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.current_memory, 64);
    ms_event_store_free(s);
}

static void free_and_allocation_on_one_thread_should_keep_program_order(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    // One OS thread's records are in program order: this free really came
    // first, even under two different thread ids.
    ms__store_record_at(s, T0, ms_event_deallocate(0x5000, 64, 2));
    ms__store_record_at(s, T0 + 10, ms_event_allocate(0x5000, 64, 1));
    ms_memory_stats st = stats_of(s);
    assert_int_equal(st.unmatched_deallocations, 1);
    assert_int_equal(st.active_allocations, 1);
    ms_event_store_free(s);
}

static void free_of_null_should_not_disturb_a_held_free(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    record_from_new_thread(s, T0, ms_event_deallocate(0x5000, 64, 2));
    record_from_new_thread(s, T0 + 10, ms_event_deallocate(0, 0, 3));
    record_from_new_thread(s, T0 + 20, ms_event_allocate(0x5000, 64, 1));
    ms_memory_stats st = stats_of(s);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.active_allocations, 0);
    ms_event_store_free(s);
}

/* A captured event (as the malloc hooks record it) at `tick`. */
typedef struct at_tick {
    uint64_t tick;
    ms_memory_event e;
} at_tick;

static at_tick captured(uint64_t tick, ms_memory_event e)
{
    e.old_size = MS__RF_CAPTURED; // where the hooks put their flags
    return (at_tick){tick, e};
}

typedef struct run_list {
    ms_event_store *store;
    const at_tick *ev;
    size_t n;
} run_list;

static void *record_list(void *arg)
{
    run_list *r = arg;
    for (size_t i = 0; i < r->n; i++)
        ms__store_record_at(r->store, r->ev[i].tick, r->ev[i].e);
    return NULL;
}

/* Record ev[0..n) from a thread of its own, in that order. */
static void record_list_from_new_thread(ms_event_store *s, const at_tick *ev, size_t n)
{
    run_list r = {s, ev, n};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, record_list, &r), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
}

static void allocation_at_an_address_freed_at_the_same_tick_should_wait_for_the_free(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    // Thread 2 frees 0x5000 and thread 1 gets it from malloc at the same
    // tick; thread 1's buffer registered first, so at that tick its records
    // merge first and its allocation finds thread 2's block still live.
    const at_tick b[] = {captured(T0 + 50, ms_event_allocate(0x5000, 32, 1))};
    const at_tick a[] = {captured(T0, ms_event_allocate(0x5000, 64, 2)),
                         captured(T0 + 50, ms_event_deallocate(0x5000, 64, 2))};
    record_list_from_new_thread(s, b, 1);
    record_list_from_new_thread(s, a, 2);
    ms_memory_stats st = stats_of(s);
    assert_int_equal(st.total_allocations, 2);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.replaced_allocations, 0);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.current_memory, 32); // thread 1's block, not thread 2's
    assert_int_equal(st.peak_memory, 64);

    // Applied in the real order, so a replay of the retained log agrees.
    size_t n = 0;
    ms_memory_event *ev = ms_event_store_snapshot(s, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ev[1].type, MS_EVENT_DEALLOCATE);
    assert_int_equal(ev[2].size, 32);
    ms_memory_snapshot *replay = ms_snapshot_build_from_events(ev, n);
    ms_memory_stats rs = ms_snapshot_stats(replay);
    assert_int_equal(rs.replaced_allocations, 0);
    assert_int_equal(rs.current_memory, 32);
    ms_snapshot_free(replay);
    ms_events_free(ev);
    ms_event_store_free(s);
}

static void allocation_at_an_address_never_freed_should_replace_the_block(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    // No free of 0x5000 was recorded: once nothing older is left to fold,
    // the waiting allocation replaces the block, counted.
    const at_tick b[] = {captured(T0 + 50, ms_event_allocate(0x5000, 32, 1)),
                         captured(T0 + 60, ms_event_allocate(0x6000, 16, 1))};
    const at_tick a[] = {captured(T0, ms_event_allocate(0x5000, 64, 2)),
                         captured(T0 + 50, ms_event_allocate(0x7000, 8, 2))};
    record_list_from_new_thread(s, b, 2);
    record_list_from_new_thread(s, a, 2);
    ms_memory_stats st = stats_of(s);
    assert_int_equal(st.total_allocations, 4);
    assert_int_equal(st.replaced_allocations, 1);
    assert_int_equal(st.active_allocations, 3);
    assert_int_equal(st.current_memory, 32 + 16 + 8);
    ms_event_store_free(s);
}

static void waiting_allocations_should_replace_oldest_first(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    // Thread 3's free of 0x5000 was never recorded. Thread 1 waits at its
    // allocation of 0x5000, with its free of 0x6000 behind it; thread 4's
    // allocation of 0x6000 then waits for that free. Forcing thread 1 first
    // lets its free go before thread 4's allocation.
    const at_tick c[] = {captured(T0, ms_event_allocate(0x5000, 64, 3))};
    const at_tick b[] = {captured(T0 + 10, ms_event_allocate(0x6000, 16, 1)),
                         captured(T0 + 50, ms_event_allocate(0x5000, 32, 1)),
                         captured(T0 + 60, ms_event_deallocate(0x6000, 16, 1))};
    const at_tick d[] = {captured(T0 + 70, ms_event_allocate(0x6000, 8, 4))};
    record_list_from_new_thread(s, c, 1);
    record_list_from_new_thread(s, b, 3);
    record_list_from_new_thread(s, d, 1);
    ms_memory_stats st = stats_of(s);
    assert_int_equal(st.replaced_allocations, 1);
    assert_int_equal(st.active_allocations, 2);
    assert_int_equal(st.current_memory, 32 + 8);
    ms_event_store_free(s);
}

static void allocation_not_from_capture_should_replace_at_once(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    // TRACK's records keep their meaning: a second TRACK of a live address
    // from another thread replaces the block where it stands.
    record_from_new_thread(s, T0, ms_event_allocate(0x5000, 64, 2));
    record_from_new_thread(s, T0 + 10, ms_event_allocate(0x5000, 32, 1));
    ms_memory_stats st = stats_of(s);
    assert_int_equal(st.replaced_allocations, 1);
    assert_int_equal(st.current_memory, 32);
    ms_event_store_free(s);
}

static void held_free_should_be_counted_by_the_next_query(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    ms_event_store_record(s, ms_event_deallocate(0x7000, 8, 3));
    ms_memory_stats st = stats_of(s);
    assert_int_equal(st.unmatched_deallocations, 1);
    ms_event_store_free(s);
}

/* 6 full chunks of 170 records under a 64 KiB budget: the newest is full
 * when the visit starts, and the first fold meanwhile links it a successor. */
enum { VISITED = 6 * 170 };

typedef struct visit_ctx {
    ms_event_store *s;
    size_t n;           /* records visited */
    bool in_order;      /* each the one recorded n-th */
    bool lock_was_free; /* the fold lock was free during the visit */
    size_t second_n;    /* records a second visit meanwhile saw */
    uint64_t retained_then;
} visit_ctx;

static void count_visit(const ms__rec *r, void *arg)
{
    (void)r;
    ++*(size_t *)arg;
}

/* Another thread, mid-visit: records and folds enough to evict every chunk
 * the visit started with, then visits too (under the lock: one visit at a
 * time goes without it). */
static void *record_and_visit(void *arg)
{
    visit_ctx *v = arg;
    v->lock_was_free = ms__store_lock_within(v->s, 100000000u);
    if (!v->lock_was_free)
        return NULL;
    ms__store_unlock(v->s);
    for (int i = 0; i < 8 * VISITED; i++)
        ms_event_store_record(v->s, ms_event_allocate(0x900000 + 16 * (uintptr_t)i, 8, 2));
    ms__store_lock_folded(v->s);
    v->retained_then = v->s->retained;
    ms__store_visit_retained_and_unlock(v->s, count_visit, &v->second_n);
    return NULL;
}

static void visit_while_recording(const ms__rec *r, void *arg)
{
    visit_ctx *v = arg;
    if (r->ptr != 0x10000 + 16 * v->n)
        v->in_order = false;
    if (v->n++ != 0)
        return;
    pthread_t th;
    if (pthread_create(&th, NULL, record_and_visit, v) == 0)
        pthread_join(th, NULL);
}

/* The binary export reads the retained log without the fold lock, so that
 * recording threads that fold are not stalled for the length of its
 * encoding: the chunks it reads stay as they were, however many records
 * are folded and evicted meanwhile, and are freed when it ends. */
static void visit_without_the_lock_should_read_what_was_retained(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    assert_int_equal(ms__store_set_retained(s, 64 * 1024), 0);
    for (int i = 0; i < VISITED; i++)
        ms_event_store_record(s, ms_event_allocate(0x10000 + 16 * (uintptr_t)i, 8, 1));
    visit_ctx v = {.s = s, .in_order = true};
    ms__store_lock_folded(s);
    assert_int_equal(s->retained, VISITED);         // all of them, in full chunks
    assert_int_equal(VISITED % s->chunk_events, 0); // the newest chunk is full
    ms__store_visit_retained_and_unlock(s, visit_while_recording, &v);
    assert_true(v.lock_was_free);
    assert_int_equal(v.n, VISITED);
    assert_true(v.in_order);
    assert_true(v.retained_then > 0);
    assert_int_equal(v.second_n, v.retained_then);
    ms__store_lock(s);
    assert_true(s->evicted >= VISITED); // the visited chunks did go meanwhile
    assert_int_equal(s->pins, 0);
    assert_null(s->pinned_gone);
    ms__store_unlock(s);
    ms_event_store_free(s);
}

/* fork() in the middle of another thread's record in the shared late buffer
 * (where threads that have handed their own buffer back record): that
 * thread is not in the child, so the child's fork handler must take its
 * half-made record back, or no record could go there again. */
static void fork_inside_a_late_record_should_leave_the_child_able_to_record(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    assert_true(ms__store_push_late(s, MS_EVENT_ALLOCATE, 0x1000, 0, 8, 0));
    assert_non_null(s->late);
    // What a thread inside ms__store_push_late holds: the lock and a begun record.
    ms_atomic_store_relaxed(&s->late_lock, true);
    uint64_t tick;
    assert_true(ms__store_begin(s, s->late, MS_EVENT_ALLOCATE, &tick));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        bool recorded = ms__store_push_late(s, MS_EVENT_ALLOCATE, 0x2000, 0, 8, 0);
        ms_memory_stats st = stats_of(s);
        // The vanished thread's begun record is lost, and counted.
        _exit(recorded && st.total_allocations == 2 && st.dropped_events == 1 ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    ms__store_abort(s->late); // the parent's holder lets go as it would have
    ms_atomic_store_release(&s->late_lock, false);
    assert_true(ms__store_push_late(s, MS_EVENT_ALLOCATE, 0x3000, 0, 8, 0));
    assert_int_equal(stats_of(s).total_allocations, 2);
    ms_event_store_free(s);
}

/* The same while the holder was moving to a new segment: it had linked the
 * new one and not yet made it its own, and a fold meanwhile read the old one
 * to its end and recycled it. The child must record where the fold reads. */
static void fork_while_a_late_record_moves_segments_should_record_where_the_fold_reads(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    for (uintptr_t i = 0; i < MS__SEG_EVENTS; i++)
        assert_true(ms__store_push_late(s, MS_EVENT_ALLOCATE, 0x10000 + 16 * i, 0, 8, 0));
    ms__tbuf *l = s->late;
    ms__seg *old = l->cur; // full
    assert_true(ms__store_push_late(s, MS_EVENT_ALLOCATE, 0x8000, 0, 8, 0));
    ms__seg *now = l->cur;
    assert_ptr_not_equal(now, old);
    assert_int_equal(stats_of(s).total_allocations, MS__SEG_EVENTS + 1); // old read, recycled
    assert_ptr_equal(l->rd_seg, now);
    // The holder as it was: lock held, record begun, `cur` still the old one.
    ms_atomic_store_relaxed(&s->late_lock, true);
    ms_atomic_store_relaxed(&l->inflight, MS__IF_BUSY); // replacing its full segment
    l->cur = old;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        bool recorded = ms__store_push_late(s, MS_EVENT_ALLOCATE, 0x9000, 0, 8, 0);
        ms_memory_stats st = stats_of(s);
        _exit(recorded && st.total_allocations == MS__SEG_EVENTS + 2 && st.dropped_events == 1 ? 0
                                                                                               : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    l->cur = now; // the parent's holder goes on as it would have
    ms_atomic_store_relaxed(&l->inflight, 0);
    ms_atomic_store_release(&s->late_lock, false);
    ms_event_store_free(s);
}

/* Resident pages of this process, from /proc/self/statm. */
static long resident_pages(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    long size = 0, resident = 0;
    assert_int_equal(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident;
}

/* The fold's hash tables come from ms__pages_alloc_written: every page is
 * written when mapped (a page read first maps the zero page, not resident,
 * and the write after it is a copy-on-write fault with a TLB flush on every
 * CPU). Plain ms__pages_alloc memory that is only read stays off RSS. */
/* Two live states fed the same records, one through the fold's inline path
 * (ms__live_apply_common, falling back to ms__live_apply) and one through
 * ms__live_apply alone, must end up the same: the inline path is only a
 * faster way to the same state. The records mix what the inline path takes
 * with everything it must leave alone: frees of addresses not live, taken
 * addresses, named blocks, reallocations, filtered and soft records, new
 * threads, new stacks, new timeline points and a table that grows. */
static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void assert_live_equal(const ms__live *a, const ms__live *b)
{
    ms_memory_stats sa, sb;
    ms__live_stats(a, &sa);
    ms__live_stats(b, &sb);
    assert_memory_equal(&sa, &sb, sizeof sa);
    assert_memory_equal(a->size_hist, b->size_hist, sizeof a->size_hist);
    assert_int_equal(a->bcount, b->bcount);
    assert_int_equal(a->bcap, b->bcap);
    for (size_t i = 0; i < a->bcap; i++) {
        if (!a->blocks[i].ptr)
            continue;
        const ms__block *x = &a->blocks[i], *y = ms__live_find(b, x->ptr);
        assert_non_null(y);
        assert_int_equal(x->tick, y->tick);
        assert_int_equal(x->size_w, y->size_w);
        assert_int_equal(x->site, y->site);
        assert_int_equal(x->stack, y->stack);
    }
    assert_int_equal(a->site_count, b->site_count);
    assert_memory_equal(a->site_list, b->site_list, a->site_count * sizeof *a->site_list);
    assert_int_equal(a->thread_used_count, b->thread_used_count);
    for (size_t i = 0; i < a->thread_used_count; i++) {
        unsigned slot = a->thread_used[i];
        assert_int_equal(slot, b->thread_used[i]);
        const ms__thread_stat *x = &a->threads[slot], *y = &b->threads[slot];
        assert_int_equal(x->allocs, y->allocs);
        assert_int_equal(x->frees, y->frees);
        assert_int_equal(x->allocated, y->allocated);
        assert_int_equal(x->deallocated, y->deallocated);
        assert_int_equal(x->current, y->current);
        assert_int_equal(x->peak, y->peak);
    }
    assert_int_equal(a->npoints, b->npoints);
    assert_int_equal(a->width_shift, b->width_shift);
    assert_memory_equal(a->series, b->series, a->npoints * sizeof *a->series);
}

static void inline_apply_should_give_the_state_ms__live_apply_gives(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    ms__tbuf *tb = ms__store_tbuf(s);
    assert_non_null(tb);
    uint32_t stacks[6];
    for (uintptr_t k = 0; k < 6; k++) {
        uintptr_t frame = 0x401000 + 64 * k;
        stacks[k] = ms__stack_intern(tb, &frame, 1);
        assert_int_not_equal(stacks[k], 0);
    }
    static const ms_site sites[2] = {{"a", "int *", "f.c", 1, "f"}, {"b", "int *", "f.c", 2, "f"}};
    ms__live a, b;
    assert_int_equal(ms__live_init(&a, 1u << 10), 0);
    assert_int_equal(ms__live_init(&b, 1u << 10), 0);
    a.filter = ms__pages_alloc(sizeof *a.filter);
    b.filter = ms__pages_alloc(sizeof *b.filter);
    assert_true(a.filter && b.filter);
    // Mostly a program's churn: a free of a live block, then an allocation
    // at an address no live block holds (the last one freed, or a new one).
    // In one record in ten, anything else, at any address.
    enum { KEEP = 2000, RECORDS = 400000 };
    static uintptr_t keep[KEEP], freed[KEEP + 1];
    size_t nfreed = 0;
    uintptr_t next_addr = 0x10000;
    uint64_t x = 88172645463325252u, tick = 1000;
    size_t common = 0, k = 0;
    bool freeing = true;
    for (size_t n = 0; n < RECORDS; n++) {
        uint64_t v = rng_next(&x);
        // The live set passes 0.7 of the first table: it grows.
        size_t held = n < RECORDS / 2 ? 300 : KEEP;
        // Threads 2 and 3 start after a while, and only in the churn.
        unsigned slot = (unsigned)(v >> 40) % (n < 1000 || v % 100 < 10 ? 2 : 4);
        uint64_t size = 1 + (v >> 44) % 5000;
        uint32_t stack = stacks[(v >> 56) % 16 == 0 ? (v >> 60) % (n < 100000 ? 2 : 6) : 0];
        tick += (v >> 20) % 97 == 0 ? (v >> 30) % 50000 : (v >> 30) % 3;
        uintptr_t any = 0x10000 + 16 * (uintptr_t)((v >> 8) % (next_addr / 16 + 8));
        ms__rec r;
        unsigned kind = (unsigned)(v % 100);
        if (kind >= 10 && freeing) { // the free of a live block (or of none yet)
            k = (size_t)(v >> 24) % held;
            ms__rec_set(&r, tick, MS_EVENT_DEALLOCATE, slot, keep[k], 0, 0, MS__RF_CAPTURED, NULL);
            if (keep[k])
                freed[nfreed++] = keep[k];
            keep[k] = 0;
            freeing = false;
        } else if (kind >= 10) { // an allocation at an address that is not live
            uintptr_t p = nfreed ? freed[--nfreed] : (next_addr += 16);
            ms__rec_set(&r, tick, MS_EVENT_ALLOCATE, slot, p, 0, size,
                        ms__rec_extra(stack, MS__RF_CAPTURED), NULL);
            keep[k] = p;
            freeing = true;
        } else if (kind < 2) { // a captured allocation anywhere (may be taken)
            ms__rec_set(&r, tick, MS_EVENT_ALLOCATE, slot, any, 0, size,
                        ms__rec_extra(stack, MS__RF_CAPTURED | (kind ? MS__RF_FILTERED : 0)),
                        !kind && (v >> 63) ? &sites[0] : NULL);
            if (kind) { // as the hook does: a counted slot, that the fold counts out
                ms__filter_add_counted(a.filter, any);
                ms__filter_add_counted(b.filter, any);
            }
        } else if (kind < 4) // a captured free anywhere: may not be live
            ms__rec_set(&r, tick, MS_EVENT_DEALLOCATE, slot, any, 0, 0,
                        MS__RF_CAPTURED | (kind == 2 ? MS__RF_TAKEN : 0), NULL);
        else if (kind < 6) // TRACK under capture, or a tracked block
            ms__rec_set(&r, tick, kind == 4 ? MS__REC_NAME : MS_EVENT_ALLOCATE, slot, any, 0, size,
                        0, &sites[v >> 63]);
        else if (kind < 7) // UNTRACK under capture, or without
            ms__rec_set(&r, tick, MS_EVENT_DEALLOCATE, slot, any, 0, 0, (v >> 63) ? MS__RF_SOFT : 0,
                        NULL);
        else if (kind < 8) // a captured reallocation
            ms__rec_set(&r, tick, MS_EVENT_REALLOCATE, slot, any,
                        0x10000 + 16 * (uintptr_t)((v >> 24) % (next_addr / 16)), size,
                        ms__rec_extra(stack, MS__RF_CAPTURED), NULL);
        else if (kind < 9) // an allocation with no stack, or of NULL
            ms__rec_set(&r, tick, MS_EVENT_ALLOCATE, slot, (v >> 62) ? 0 : any, 0, size,
                        MS__RF_CAPTURED, NULL);
        else // a free of NULL
            ms__rec_set(&r, tick, MS_EVENT_DEALLOCATE, slot, 0, 0, 0, MS__RF_CAPTURED, NULL);
        if (ms__live_apply_common(&a, &r))
            common++;
        else
            assert_true(ms__live_apply(&a, &r));
        assert_true(ms__live_apply(&b, &r));
        assert_true(a.bcount <= a.bgrow && a.bgrow == ms__live_grow_at(a.bcap)); // grown in time
        if (n % 50000 == 0)
            assert_live_equal(&a, &b);
    }
    assert_live_equal(&a, &b);
    assert_true(a.bcap >= 4096);             // the table grew
    assert_true(a.npoints > 100);            // across many timeline points
    assert_true(common > RECORDS * 3 / 4);   // the inline path took most records ...
    assert_true(common < RECORDS * 19 / 20); // ... and left the rest
    assert_memory_equal(a.filter, b.filter, sizeof *a.filter);
    ms__pages_free(a.filter, sizeof *a.filter);
    ms__pages_free(b.filter, sizeof *b.filter);
    ms__live_destroy(&a);
    ms__live_destroy(&b);
    ms_event_store_free(s);
}

static void tables_should_be_written_when_mapped(void **state)
{
    (void)state;
    const size_t bytes = (size_t)8 << 20;
    long page = sysconf(_SC_PAGESIZE), before = resident_pages();
    char *plain = ms__pages_alloc(bytes);
    assert_non_null(plain);
    unsigned sum = 0;
    for (size_t off = 0; off < bytes; off += (size_t)page)
        sum += (unsigned)((volatile char *)plain)[off];
    assert_int_equal(sum, 0);
    long after_read = resident_pages();
    char *written = ms__pages_alloc_written(bytes);
    assert_non_null(written);
    long after_written = resident_pages();
#if defined(__SANITIZE_THREAD__) // ThreadSanitizer writes its shadow of what is read
    (void)before;
#else
    assert_true((after_read - before) * page < (1 << 20));
#endif
    assert_true((after_written - after_read) * page >= (long)(bytes - ((size_t)1 << 20)));
    assert_int_equal(written[bytes - 1], 0);
    ms__pages_free(plain, bytes);
    ms__pages_free(written, bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tables_should_be_written_when_mapped),
        cmocka_unit_test(inline_apply_should_give_the_state_ms__live_apply_gives),
        cmocka_unit_test(free_before_its_allocation_from_another_thread_should_be_put_in_order),
        cmocka_unit_test(free_before_a_reallocation_to_its_address_should_be_put_in_order),
        cmocka_unit_test(free_long_before_an_allocation_should_stay_unmatched),
        cmocka_unit_test(free_of_null_should_not_disturb_a_held_free),
        cmocka_unit_test(free_and_allocation_on_one_thread_should_keep_program_order),
        cmocka_unit_test(held_free_should_be_counted_by_the_next_query),
        cmocka_unit_test(allocation_at_an_address_freed_at_the_same_tick_should_wait_for_the_free),
        cmocka_unit_test(allocation_at_an_address_never_freed_should_replace_the_block),
        cmocka_unit_test(waiting_allocations_should_replace_oldest_first),
        cmocka_unit_test(allocation_not_from_capture_should_replace_at_once),
        cmocka_unit_test(visit_without_the_lock_should_read_what_was_retained),
        cmocka_unit_test(fork_inside_a_late_record_should_leave_the_child_able_to_record),
        cmocka_unit_test(
            fork_while_a_late_record_moves_segments_should_record_where_the_fold_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
