/* test_snapshot.c — the snapshot engine: the seed's examples with exact
 * figures, the edge cases of docs/semantics.md (reallocation, frees by
 * another thread, reuse and replacement of addresses, unmatched frees), and
 * "live state and replay give identical results" on pseudo-random events. */
#include <memscope.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static const ms_site site_a = {"a", "int *", "test_snapshot.c", 10, "make_a"};
static const ms_site site_b = {"b", "char *", "test_snapshot.c", 20, "make_b"};
static const ms_site site_c = {"c", "struct node *", "other.c", 30, "make_c"};

/* A store and an engine over it; freed by fixture_free. */
struct fixture {
    ms_event_store *store;
    ms_snapshot_engine *engine;
};

static struct fixture fixture_new(void)
{
    struct fixture f;
    f.store = ms_event_store_new();
    assert_non_null(f.store);
    f.engine = ms_snapshot_engine_new(f.store);
    assert_non_null(f.engine);
    return f;
}

static void fixture_free(struct fixture *f)
{
    ms_snapshot_engine_free(f->engine);
    ms_event_store_free(f->store);
}

static ms_memory_snapshot *build(const struct fixture *f)
{
    ms_memory_snapshot *s = ms_snapshot_engine_build(f->engine);
    assert_non_null(s);
    return s;
}

static ms_memory_event with_site(ms_memory_event e, const ms_site *site)
{
    e.site = site;
    return e;
}

/* @return the live block at ptr in s, NULL if there is none. */
static const ms_active_allocation *find_block(const ms_memory_snapshot *s, uintptr_t ptr)
{
    size_t n = 0;
    const ms_active_allocation *a = ms_snapshot_allocations(s, &n);
    for (size_t i = 0; i < n; i++)
        if (a[i].ptr == ptr)
            return &a[i];
    return NULL;
}

/* @return the statistics of thread tid in s, NULL if there are none. */
static const ms_thread_memory_stats *find_thread(const ms_memory_snapshot *s, uint64_t tid)
{
    size_t n = 0;
    const ms_thread_memory_stats *t = ms_snapshot_threads(s, &n);
    for (size_t i = 0; i < n; i++)
        if (t[i].thread_id == tid)
            return &t[i];
    return NULL;
}

/* A thread that allocated nothing need not be listed; if it is, it owns nothing. */
static void assert_thread_owns_nothing(const ms_memory_snapshot *s, uint64_t tid)
{
    const ms_thread_memory_stats *t = find_thread(s, tid);
    if (t == NULL)
        return;
    assert_int_equal(t->allocation_count, 0);
    assert_int_equal(t->deallocation_count, 0);
    assert_int_equal(t->total_allocated, 0);
    assert_int_equal(t->total_deallocated, 0);
    assert_int_equal(t->current_memory, 0);
    assert_int_equal(t->peak_memory, 0);
}

/* ------------------------------------------------------ the seed's examples */

static void engine_should_build_an_empty_snapshot_of_an_empty_store(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_memory_snapshot *s = build(&f);

    assert_int_equal(ms_snapshot_active_count(s), 0);
    assert_int_equal(ms_snapshot_current_memory(s), 0);
    assert_int_equal(ms_snapshot_peak_memory(s), 0);
    ms_memory_stats st = ms_snapshot_stats(s);
    assert_int_equal(st.total_allocations, 0);
    assert_int_equal(st.total_deallocations, 0);
    assert_int_equal(st.unmatched_deallocations, 0);
    size_t n = 99;
    ms_snapshot_allocations(s, &n);
    assert_int_equal(n, 0);
    n = 99;
    ms_snapshot_threads(s, &n);
    assert_int_equal(n, 0);

    ms_snapshot_free(s);
    fixture_free(&f);
}

static void engine_should_reproduce_the_seed_example(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, ms_event_allocate(0x1000, 1024, 1));
    ms_event_store_record(f.store, ms_event_allocate(0x2000, 2048, 1));
    ms_event_store_record(f.store, ms_event_deallocate(0x1000, 1024, 1));

    ms_memory_snapshot *s = build(&f);
    assert_int_equal(ms_snapshot_active_count(s), 1);
    assert_int_equal(ms_snapshot_current_memory(s), 2048);
    assert_int_equal(ms_snapshot_peak_memory(s), 3072);

    ms_memory_stats st = ms_snapshot_stats(s);
    assert_int_equal(st.total_allocations, 2);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.total_allocated, 3072);
    assert_int_equal(st.total_deallocated, 1024);
    assert_int_equal(st.current_memory, 2048);
    assert_int_equal(st.peak_memory, 3072);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.replaced_allocations, 0);

    size_t n = 0;
    const ms_active_allocation *a = ms_snapshot_allocations(s, &n);
    assert_int_equal(n, 1);
    assert_int_equal(a[0].ptr, 0x2000);
    assert_int_equal(a[0].size, 2048);
    assert_int_equal(a[0].thread_id, 1);
    assert_null(a[0].site);
    assert_true(a[0].allocated_at > 0);

    const ms_thread_memory_stats *t = ms_snapshot_threads(s, &n);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].thread_id, 1);
    assert_int_equal(t[0].allocation_count, 2);
    assert_int_equal(t[0].deallocation_count, 1);
    assert_int_equal(t[0].total_allocated, 3072);
    assert_int_equal(t[0].total_deallocated, 1024);
    assert_int_equal(t[0].current_memory, 2048);
    assert_int_equal(t[0].peak_memory, 3072);

    ms_snapshot_free(s);
    fixture_free(&f);
}

static void engine_should_not_consume_the_store(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, ms_event_allocate(0x1000, 1024, 1));

    ms_memory_snapshot *s1 = build(&f);
    ms_memory_snapshot *s2 = build(&f);
    assert_int_equal(ms_snapshot_active_count(s1), 1);
    assert_int_equal(ms_snapshot_active_count(s2), 1);
    size_t n = 0;
    ms_memory_event *ev = ms_event_store_snapshot(f.store, &n);
    assert_int_equal(n, 1);
    ms_events_free(ev);

    /* A snapshot is a point in time: later events do not change it. */
    ms_event_store_record(f.store, ms_event_allocate(0x2000, 1, 1));
    assert_int_equal(ms_snapshot_active_count(s1), 1);
    assert_int_equal(ms_snapshot_current_memory(s1), 1024);
    ms_memory_snapshot *s3 = build(&f);
    assert_int_equal(ms_snapshot_active_count(s3), 2);
    assert_int_equal(ms_snapshot_current_memory(s3), 1025);

    ms_snapshot_free(s1);
    ms_snapshot_free(s2);
    ms_snapshot_free(s3);
    fixture_free(&f);
}

/* -------------------------------------------------------------- the edges */

static void reallocation_should_move_the_block(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, with_site(ms_event_allocate(0x1000, 100, 1), &site_a));
    ms_event_store_record(f.store, ms_event_reallocate(0x1000, 0x3000, 100, 300, 1));

    ms_memory_snapshot *s = build(&f);
    ms_memory_stats st = ms_snapshot_stats(s);
    assert_int_equal(st.total_allocations, 2);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.total_allocated, 400);
    assert_int_equal(st.total_deallocated, 100);
    assert_int_equal(st.current_memory, 300); /* the old size left, the new size arrived */
    assert_int_equal(st.peak_memory, 300);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.replaced_allocations, 0);

    assert_null(find_block(s, 0x1000));
    const ms_active_allocation *b = find_block(s, 0x3000);
    assert_non_null(b);
    assert_int_equal(b->size, 300);
    assert_ptr_equal(b->site, &site_a); /* the event names none: the block keeps its name */
    ms_snapshot_free(s);

    /* The old address is no longer live: freeing it is unmatched. */
    ms_event_store_record(f.store, ms_event_deallocate(0x1000, 100, 1));
    s = build(&f);
    st = ms_snapshot_stats(s);
    assert_int_equal(st.unmatched_deallocations, 1);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.current_memory, 300);
    ms_snapshot_free(s);
    fixture_free(&f);
}

static void reallocation_should_shrink_and_grow_in_place(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, ms_event_allocate(0x1000, 1000, 1));
    ms_event_store_record(f.store, ms_event_reallocate(0x1000, 0x1000, 1000, 10, 1));

    ms_memory_snapshot *s = build(&f);
    ms_memory_stats st = ms_snapshot_stats(s);
    assert_int_equal(st.total_allocations, 2);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.current_memory, 10);
    assert_int_equal(st.peak_memory, 1000);
    assert_int_equal(st.replaced_allocations, 0);
    const ms_active_allocation *b = find_block(s, 0x1000);
    assert_non_null(b);
    assert_int_equal(b->size, 10);
    ms_snapshot_free(s);

    ms_event_store_record(f.store, ms_event_reallocate(0x1000, 0x1000, 10, 5000, 1));
    s = build(&f);
    st = ms_snapshot_stats(s);
    assert_int_equal(st.total_allocations, 3);
    assert_int_equal(st.total_deallocations, 2);
    assert_int_equal(st.current_memory, 5000);
    assert_int_equal(st.peak_memory, 5000);
    assert_int_equal(st.total_allocated, 6010);
    assert_int_equal(st.total_deallocated, 1010);
    ms_snapshot_free(s);
    fixture_free(&f);
}

static void reallocation_should_keep_a_site_it_names(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, with_site(ms_event_allocate(0x1000, 8, 1), &site_a));
    ms_event_store_record(f.store,
                          with_site(ms_event_reallocate(0x1000, 0x2000, 8, 16, 1), &site_b));
    ms_memory_snapshot *s = build(&f);
    const ms_active_allocation *b = find_block(s, 0x2000);
    assert_non_null(b);
    assert_ptr_equal(b->site, &site_b);
    ms_snapshot_free(s);
    fixture_free(&f);
}

static void reallocation_of_null_should_be_a_plain_allocation(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, ms_event_reallocate(0, 0x4000, 0, 64, 1));
    ms_memory_snapshot *s = build(&f);
    ms_memory_stats st = ms_snapshot_stats(s);
    assert_int_equal(st.total_allocations, 1);
    assert_int_equal(st.total_deallocations, 0);
    assert_int_equal(st.unmatched_deallocations, 0);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.current_memory, 64);
    assert_int_equal(st.peak_memory, 64);
    ms_snapshot_free(s);
    fixture_free(&f);
}

static void reallocation_of_an_unknown_block_should_be_unmatched_and_open_the_new_one(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, ms_event_reallocate(0x5000, 0x6000, 32, 64, 1));
    ms_memory_snapshot *s = build(&f);
    ms_memory_stats st = ms_snapshot_stats(s);
    assert_int_equal(st.unmatched_deallocations, 1);
    assert_int_equal(st.total_allocations, 1);
    assert_int_equal(st.total_deallocations, 0);
    assert_int_equal(st.total_deallocated, 0);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.current_memory, 64);
    assert_non_null(find_block(s, 0x6000));
    assert_null(find_block(s, 0x5000));
    ms_snapshot_free(s);
    fixture_free(&f);
}

static void reallocation_by_another_thread_should_move_ownership(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, ms_event_allocate(0x1000, 100, 1));
    ms_event_store_record(f.store, ms_event_reallocate(0x1000, 0x2000, 100, 250, 2));

    ms_memory_snapshot *s = build(&f);
    const ms_thread_memory_stats *t1 = find_thread(s, 1);
    const ms_thread_memory_stats *t2 = find_thread(s, 2);
    assert_non_null(t1);
    assert_non_null(t2);
    assert_int_equal(t1->allocation_count, 1);
    assert_int_equal(t1->deallocation_count, 1);
    assert_int_equal(t1->total_allocated, 100);
    assert_int_equal(t1->total_deallocated, 100);
    assert_int_equal(t1->current_memory, 0);
    assert_int_equal(t1->peak_memory, 100);
    assert_int_equal(t2->allocation_count, 1);
    assert_int_equal(t2->deallocation_count, 0);
    assert_int_equal(t2->total_allocated, 250);
    assert_int_equal(t2->total_deallocated, 0);
    assert_int_equal(t2->current_memory, 250);
    assert_int_equal(t2->peak_memory, 250);
    const ms_active_allocation *b = find_block(s, 0x2000);
    assert_non_null(b);
    assert_int_equal(b->thread_id, 2);
    ms_snapshot_free(s);
    fixture_free(&f);
}

static void free_by_another_thread_should_be_charged_to_the_allocating_thread(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, ms_event_allocate(0x1000, 512, 1));
    ms_event_store_record(f.store, ms_event_allocate(0x2000, 128, 1));
    ms_event_store_record(f.store, ms_event_deallocate(0x1000, 512, 2));

    ms_memory_snapshot *s = build(&f);
    const ms_thread_memory_stats *t1 = find_thread(s, 1);
    assert_non_null(t1);
    assert_int_equal(t1->allocation_count, 2);
    assert_int_equal(t1->deallocation_count, 1);
    assert_int_equal(t1->total_allocated, 640);
    assert_int_equal(t1->total_deallocated, 512);
    assert_int_equal(t1->current_memory, 128);
    assert_int_equal(t1->peak_memory, 640);
    assert_thread_owns_nothing(s, 2);

    ms_memory_stats st = ms_snapshot_stats(s);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.current_memory, 128);
    assert_int_equal(st.unmatched_deallocations, 0);
    ms_snapshot_free(s);
    fixture_free(&f);
}

static void deallocation_should_remove_the_recorded_size_not_the_event_size(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, ms_event_allocate(0x1000, 1024, 1));
    ms_event_store_record(f.store, ms_event_deallocate(0x1000, 1, 1));
    ms_memory_snapshot *s = build(&f);
    ms_memory_stats st = ms_snapshot_stats(s);
    assert_int_equal(st.current_memory, 0);
    assert_int_equal(st.total_deallocated, 1024);
    ms_snapshot_free(s);
    fixture_free(&f);
}

static void address_reused_after_a_free_should_start_a_new_allocation(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, with_site(ms_event_allocate(0x1000, 100, 1), &site_a));
    ms_event_store_record(f.store, ms_event_deallocate(0x1000, 100, 1));
    ms_event_store_record(f.store, with_site(ms_event_allocate(0x1000, 200, 2), &site_b));

    ms_memory_snapshot *s = build(&f);
    ms_memory_stats st = ms_snapshot_stats(s);
    assert_int_equal(st.total_allocations, 2);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.current_memory, 200);
    assert_int_equal(st.peak_memory, 200);
    assert_int_equal(st.replaced_allocations, 0);
    const ms_active_allocation *b = find_block(s, 0x1000);
    assert_non_null(b);
    assert_int_equal(b->size, 200);
    assert_int_equal(b->thread_id, 2);
    assert_ptr_equal(b->site, &site_b);
    ms_snapshot_free(s);
    fixture_free(&f);
}

static void allocation_at_a_live_address_should_replace_the_block(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, with_site(ms_event_allocate(0x1000, 100, 1), &site_a));
    ms_event_store_record(f.store, with_site(ms_event_allocate(0x1000, 300, 2), &site_c));

    ms_memory_snapshot *s = build(&f);
    ms_memory_stats st = ms_snapshot_stats(s);
    assert_int_equal(st.replaced_allocations, 1);
    assert_int_equal(st.total_allocations, 2);
    assert_int_equal(st.total_deallocations, 1); /* the old block was closed */
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.total_allocated, 400);
    assert_int_equal(st.total_deallocated, 100);
    assert_int_equal(st.current_memory, 300);
    assert_int_equal(st.peak_memory, 300);
    assert_int_equal(st.unmatched_deallocations, 0);

    const ms_active_allocation *b = find_block(s, 0x1000);
    assert_non_null(b);
    assert_int_equal(b->size, 300);
    assert_int_equal(b->thread_id, 2);
    assert_ptr_equal(b->site, &site_c);

    const ms_thread_memory_stats *t1 = find_thread(s, 1);
    assert_non_null(t1);
    assert_int_equal(t1->deallocation_count, 1);
    assert_int_equal(t1->total_deallocated, 100);
    assert_int_equal(t1->current_memory, 0);
    ms_snapshot_free(s);
    fixture_free(&f);
}

static void unmatched_deallocations_should_be_counted(void **state)
{
    (void)state;
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, ms_event_deallocate(0x9000, 64, 1)); /* never seen */
    ms_event_store_record(f.store, ms_event_allocate(0x1000, 10, 1));
    ms_event_store_record(f.store, ms_event_deallocate(0x1000, 10, 1));
    ms_event_store_record(f.store, ms_event_deallocate(0x1000, 10, 1)); /* double free */

    ms_memory_snapshot *s = build(&f);
    ms_memory_stats st = ms_snapshot_stats(s);
    assert_int_equal(st.unmatched_deallocations, 2);
    assert_int_equal(st.total_allocations, 1);
    assert_int_equal(st.total_deallocations, 1);
    assert_int_equal(st.total_deallocated, 10);
    assert_int_equal(st.active_allocations, 0);
    assert_int_equal(st.current_memory, 0);
    assert_int_equal(st.peak_memory, 10);
    ms_snapshot_free(s);
    fixture_free(&f);
}

static void build_from_events_should_replay_a_hand_built_array(void **state)
{
    (void)state;
    const ms_memory_event ev[] = {
        {.timestamp = 100,
         .type = MS_EVENT_ALLOCATE,
         .ptr = 0x1000,
         .size = 1024,
         .thread_id = 7,
         .site = &site_a},
        {.timestamp = 200,
         .type = MS_EVENT_ALLOCATE,
         .ptr = 0x2000,
         .size = 2048,
         .thread_id = 8,
         .site = &site_b},
        {.timestamp = 300,
         .type = MS_EVENT_REALLOCATE,
         .ptr = 0x3000,
         .old_ptr = 0x1000,
         .size = 4096,
         .old_size = 1024,
         .thread_id = 7},
        {.timestamp = 400,
         .type = MS_EVENT_DEALLOCATE,
         .ptr = 0x2000,
         .size = 2048,
         .thread_id = 7},
        {.timestamp = 500, .type = MS_EVENT_DEALLOCATE, .ptr = 0xdead0, .size = 1, .thread_id = 8},
    };
    ms_memory_snapshot *s = ms_snapshot_build_from_events(ev, sizeof ev / sizeof ev[0]);
    assert_non_null(s);

    ms_memory_stats st = ms_snapshot_stats(s);
    assert_int_equal(st.total_allocations, 3);
    assert_int_equal(st.total_deallocations, 2);
    assert_int_equal(st.active_allocations, 1);
    assert_int_equal(st.total_allocated, 1024 + 2048 + 4096);
    assert_int_equal(st.total_deallocated, 1024 + 2048);
    assert_int_equal(st.current_memory, 4096);
    assert_int_equal(st.peak_memory, 2048 + 4096);
    assert_int_equal(st.unmatched_deallocations, 1);
    assert_int_equal(ms_snapshot_active_count(s), 1);
    assert_int_equal(ms_snapshot_current_memory(s), 4096);
    assert_int_equal(ms_snapshot_peak_memory(s), 6144);

    const ms_active_allocation *b = find_block(s, 0x3000);
    assert_non_null(b);
    assert_int_equal(b->size, 4096);
    assert_int_equal(b->allocated_at, 300); /* a replay keeps the events' times */
    assert_int_equal(b->thread_id, 7);
    assert_ptr_equal(b->site, &site_a);

    const ms_thread_memory_stats *t7 = find_thread(s, 7);
    const ms_thread_memory_stats *t8 = find_thread(s, 8);
    assert_non_null(t7);
    assert_non_null(t8);
    assert_int_equal(t7->allocation_count, 2);
    assert_int_equal(t7->deallocation_count, 1);
    assert_int_equal(t7->total_allocated, 1024 + 4096);
    assert_int_equal(t7->total_deallocated, 1024);
    assert_int_equal(t7->current_memory, 4096);
    assert_int_equal(t7->peak_memory, 4096);
    assert_int_equal(t8->allocation_count, 1);
    assert_int_equal(t8->deallocation_count, 1); /* freed by thread 7, charged to 8 */
    assert_int_equal(t8->total_allocated, 2048);
    assert_int_equal(t8->total_deallocated, 2048);
    assert_int_equal(t8->current_memory, 0);
    assert_int_equal(t8->peak_memory, 2048);
    ms_snapshot_free(s);

    /* No events: an empty snapshot. */
    s = ms_snapshot_build_from_events(ev, 0);
    assert_non_null(s);
    assert_int_equal(ms_snapshot_active_count(s), 0);
    assert_int_equal(ms_snapshot_peak_memory(s), 0);
    ms_snapshot_free(s);
}

/* ---------------------------------------------- live state equals replay */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* xorshift64*: fixed seed, same events on every run */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint64_t rng_below(uint64_t n) { return rng_next() % n; }

/* The reference: docs/semantics.md applied to a small table of live blocks. */
#define MODEL_MAX 512
struct model_block {
    uintptr_t ptr;
    size_t size;
    uint64_t tid;
    const ms_site *site;
};
struct model {
    struct model_block live[MODEL_MAX];
    size_t n_live;
    ms_memory_stats st;
};

static long model_find(const struct model *m, uintptr_t ptr)
{
    for (size_t i = 0; i < m->n_live; i++)
        if (m->live[i].ptr == ptr)
            return (long)i;
    return -1;
}

static void model_close(struct model *m, size_t i)
{
    m->st.total_deallocations++;
    m->st.total_deallocated += m->live[i].size;
    m->st.current_memory -= m->live[i].size;
    m->live[i] = m->live[--m->n_live];
}

static void model_open(struct model *m, uintptr_t ptr, size_t size, uint64_t tid,
                       const ms_site *site)
{
    long i = model_find(m, ptr);
    if (i >= 0) {
        model_close(m, (size_t)i);
        m->st.replaced_allocations++;
    }
    assert_true(m->n_live < MODEL_MAX);
    m->live[m->n_live++] = (struct model_block){ptr, size, tid, site};
    m->st.total_allocations++;
    m->st.total_allocated += size;
    m->st.current_memory += size;
}

static void model_apply(struct model *m, const ms_memory_event *e)
{
    long i;
    const ms_site *site = e->site;
    switch (e->type) {
    case MS_EVENT_ALLOCATE:
        model_open(m, e->ptr, e->size, e->thread_id, site);
        break;
    case MS_EVENT_DEALLOCATE:
        i = model_find(m, e->ptr);
        if (i >= 0)
            model_close(m, (size_t)i);
        else
            m->st.unmatched_deallocations++;
        break;
    case MS_EVENT_REALLOCATE:
        if (e->old_ptr != 0) {
            i = model_find(m, e->old_ptr);
            if (i >= 0) {
                if (site == NULL)
                    site = m->live[i].site;
                model_close(m, (size_t)i);
            } else {
                m->st.unmatched_deallocations++;
            }
        }
        model_open(m, e->ptr, e->size, e->thread_id, site);
        break;
    }
    if (m->st.current_memory > m->st.peak_memory)
        m->st.peak_memory = m->st.current_memory;
    m->st.active_allocations = m->n_live;
}

static const ms_site *random_site(void)
{
    static const ms_site *const sites[] = {NULL, &site_a, &site_b, &site_c};
    return sites[rng_below(4)];
}

/* One pseudo-random event over the model's live blocks: allocations at fresh,
 * reused and live addresses, frees (some unmatched), reallocations (moving,
 * in place, from NULL, of unknown blocks), from thread ids 1..4. */
static ms_memory_event random_event(const struct model *m, uintptr_t *next_fresh, uintptr_t *freed,
                                    size_t *n_freed)
{
    uint64_t tid = 1 + rng_below(4);
    size_t size = 1 + (size_t)rng_below(4096);
    uint64_t op = rng_below(100);
    ms_memory_event e;

    if (m->n_live >= MODEL_MAX - 1)
        op = 60; /* keep the table bounded: free */
    if (op < 45 || m->n_live == 0) {
        uintptr_t ptr;
        if (op < 5 && m->n_live > 0)
            ptr = m->live[rng_below(m->n_live)].ptr; /* replace a live block */
        else if (op < 15 && *n_freed > 0)
            ptr = freed[rng_below(*n_freed)]; /* reuse a freed address */
        else
            ptr = (*next_fresh += 0x40);
        e = with_site(ms_event_allocate(ptr, size, tid), random_site());
    } else if (op < 75) {
        if (op < 70) {
            const struct model_block *b = &m->live[rng_below(m->n_live)];
            e = ms_event_deallocate(b->ptr, b->size, tid);
            if (*n_freed < MODEL_MAX)
                freed[(*n_freed)++] = b->ptr;
        } else {
            e = ms_event_deallocate(0xf0000000u + 0x10 * (uintptr_t)rng_below(64), 8, tid);
        }
    } else {
        uintptr_t fresh = (*next_fresh += 0x40);
        if (op < 80) {
            e = ms_event_reallocate(0, fresh, 0, size, tid);
        } else if (op < 83) {
            e = ms_event_reallocate(0xe0000000u + 0x10 * (uintptr_t)rng_below(64), fresh, 16, size,
                                    tid);
        } else {
            const struct model_block *b = &m->live[rng_below(m->n_live)];
            uintptr_t to = op < 90 ? b->ptr : fresh;
            e = ms_event_reallocate(b->ptr, to, b->size, size, tid);
        }
        if (rng_below(4) == 0)
            e.site = random_site();
    }
    return e;
}

static int cmp_alloc(const void *a, const void *b)
{
    const ms_active_allocation *x = a, *y = b;
    return (x->ptr > y->ptr) - (x->ptr < y->ptr);
}

static int cmp_thread(const void *a, const void *b)
{
    const ms_thread_memory_stats *x = a, *y = b;
    return (x->thread_id > y->thread_id) - (x->thread_id < y->thread_id);
}

static int cmp_model_block(const void *a, const void *b)
{
    const struct model_block *x = a, *y = b;
    return (x->ptr > y->ptr) - (x->ptr < y->ptr);
}

static void assert_stats_equal(const ms_memory_stats *a, const ms_memory_stats *b)
{
    assert_int_equal(a->total_allocations, b->total_allocations);
    assert_int_equal(a->total_deallocations, b->total_deallocations);
    assert_int_equal(a->active_allocations, b->active_allocations);
    assert_int_equal(a->total_allocated, b->total_allocated);
    assert_int_equal(a->total_deallocated, b->total_deallocated);
    assert_int_equal(a->current_memory, b->current_memory);
    assert_int_equal(a->peak_memory, b->peak_memory);
    assert_int_equal(a->unmatched_deallocations, b->unmatched_deallocations);
    assert_int_equal(a->replaced_allocations, b->replaced_allocations);
}

/* @return a sorted copy of s's live blocks (free it), *n their number. */
static ms_active_allocation *sorted_blocks(const ms_memory_snapshot *s, size_t *n)
{
    const ms_active_allocation *a = ms_snapshot_allocations(s, n);
    ms_active_allocation *copy = malloc((*n + 1) * sizeof *copy);
    assert_non_null(copy);
    if (*n > 0)
        memcpy(copy, a, *n * sizeof *copy);
    qsort(copy, *n, sizeof *copy, cmp_alloc);
    return copy;
}

static ms_thread_memory_stats *sorted_threads(const ms_memory_snapshot *s, size_t *n)
{
    const ms_thread_memory_stats *t = ms_snapshot_threads(s, n);
    ms_thread_memory_stats *copy = malloc((*n + 1) * sizeof *copy);
    assert_non_null(copy);
    if (*n > 0)
        memcpy(copy, t, *n * sizeof *copy);
    qsort(copy, *n, sizeof *copy, cmp_thread);
    return copy;
}

static void live_state_and_replay_should_give_identical_results(void **state)
{
    (void)state;
    enum { EVENTS = 5000 };
    static struct model m;
    static uintptr_t freed[MODEL_MAX];
    size_t n_freed = 0;
    uintptr_t next_fresh = 0x10000000u;
    memset(&m, 0, sizeof m);
    rng_state = 0x9E3779B97F4A7C15ULL;

    struct fixture f = fixture_new();
    for (int i = 0; i < EVENTS; i++) {
        ms_memory_event e = random_event(&m, &next_fresh, freed, &n_freed);
        model_apply(&m, &e);
        ms_event_store_record(f.store, e);
    }
    /* The generator did reach every case. */
    assert_true(m.st.replaced_allocations > 0);
    assert_true(m.st.unmatched_deallocations > 0);

    size_t n_ev = 0;
    ms_memory_event *ev = ms_event_store_snapshot(f.store, &n_ev);
    assert_non_null(ev);
    assert_int_equal(n_ev, EVENTS);

    ms_memory_snapshot *live = build(&f);
    ms_memory_snapshot *replay = ms_snapshot_build_from_events(ev, n_ev);
    assert_non_null(replay);

    /* Stats: equal to each other and to the reference. */
    ms_memory_stats sl = ms_snapshot_stats(live), sr = ms_snapshot_stats(replay);
    assert_stats_equal(&sl, &sr);
    assert_stats_equal(&sl, &m.st);
    assert_int_equal(ms_snapshot_active_count(live), ms_snapshot_active_count(replay));
    assert_int_equal(ms_snapshot_current_memory(live), ms_snapshot_current_memory(replay));
    assert_int_equal(ms_snapshot_peak_memory(live), ms_snapshot_peak_memory(replay));

    /* Active allocations: equal as sets, and equal to the reference's. */
    size_t nl = 0, nr = 0;
    ms_active_allocation *al = sorted_blocks(live, &nl);
    ms_active_allocation *ar = sorted_blocks(replay, &nr);
    assert_int_equal(nl, nr);
    assert_int_equal(nl, m.n_live);
    qsort(m.live, m.n_live, sizeof m.live[0], cmp_model_block);
    for (size_t i = 0; i < nl; i++) {
        assert_int_equal(al[i].ptr, ar[i].ptr);
        assert_int_equal(al[i].size, ar[i].size);
        assert_int_equal(al[i].allocated_at, ar[i].allocated_at);
        assert_int_equal(al[i].thread_id, ar[i].thread_id);
        assert_ptr_equal(al[i].site, ar[i].site);
        assert_int_equal(al[i].ptr, m.live[i].ptr);
        assert_int_equal(al[i].size, m.live[i].size);
        assert_int_equal(al[i].thread_id, m.live[i].tid);
        assert_ptr_equal(al[i].site, m.live[i].site);
    }

    /* Threads: equal field by field, and adding up to the totals. */
    size_t tl = 0, tr = 0;
    ms_thread_memory_stats *thl = sorted_threads(live, &tl);
    ms_thread_memory_stats *thr = sorted_threads(replay, &tr);
    assert_int_equal(tl, tr);
    assert_in_range(tl, 4, 4);
    uint64_t sum_alloc = 0, sum_dealloc = 0, sum_current = 0, sum_bytes = 0;
    for (size_t i = 0; i < tl; i++) {
        assert_int_equal(thl[i].thread_id, thr[i].thread_id);
        assert_int_equal(thl[i].allocation_count, thr[i].allocation_count);
        assert_int_equal(thl[i].deallocation_count, thr[i].deallocation_count);
        assert_int_equal(thl[i].total_allocated, thr[i].total_allocated);
        assert_int_equal(thl[i].total_deallocated, thr[i].total_deallocated);
        assert_int_equal(thl[i].current_memory, thr[i].current_memory);
        assert_int_equal(thl[i].peak_memory, thr[i].peak_memory);
        assert_int_equal(thl[i].current_memory, thl[i].total_allocated - thl[i].total_deallocated);
        sum_alloc += thl[i].allocation_count;
        sum_dealloc += thl[i].deallocation_count;
        sum_current += thl[i].current_memory;
        sum_bytes += thl[i].total_allocated;
    }
    assert_int_equal(sum_alloc, m.st.total_allocations);
    assert_int_equal(sum_dealloc, m.st.total_deallocations);
    assert_int_equal(sum_current, m.st.current_memory);
    assert_int_equal(sum_bytes, m.st.total_allocated);

    free(al);
    free(ar);
    free(thl);
    free(thr);
    ms_snapshot_free(live);
    ms_snapshot_free(replay);
    ms_events_free(ev);
    fixture_free(&f);
}

/* ------------------------------------------------------------ NULL inputs */

static void snapshot_functions_should_accept_null(void **state)
{
    (void)state;
    size_t n = 99;

    ms_clear_error();
    assert_null(ms_snapshot_engine_new(NULL));
    assert_true(ms_last_error() == MS_EINVAL || ms_last_error() == MS_ENULLPTR);
    ms_clear_error();
    assert_null(ms_snapshot_engine_build(NULL));
    assert_true(ms_last_error() == MS_EINVAL || ms_last_error() == MS_ENULLPTR);
    ms_clear_error();
    assert_null(ms_snapshot_build_from_events(NULL, 3));
    assert_true(ms_last_error() == MS_EINVAL || ms_last_error() == MS_ENULLPTR);

    assert_int_equal(ms_snapshot_active_count(NULL), 0);
    assert_int_equal(ms_snapshot_current_memory(NULL), 0);
    assert_int_equal(ms_snapshot_peak_memory(NULL), 0);
    ms_memory_stats st = ms_snapshot_stats(NULL);
    assert_int_equal(st.total_allocations, 0);
    assert_int_equal(st.active_allocations, 0);
    assert_int_equal(st.peak_memory, 0);
    assert_null(ms_snapshot_allocations(NULL, &n));
    assert_int_equal(n, 0);
    n = 99;
    assert_null(ms_snapshot_threads(NULL, &n));
    assert_int_equal(n, 0);
    assert_null(ms_snapshot_allocations(NULL, NULL));
    assert_null(ms_snapshot_threads(NULL, NULL));
    ms_snapshot_free(NULL);
    ms_snapshot_engine_free(NULL);

    /* A snapshot with a NULL count pointer: no crash. */
    struct fixture f = fixture_new();
    ms_event_store_record(f.store, ms_event_allocate(0x1000, 1, 1));
    ms_memory_snapshot *s = build(&f);
    (void)ms_snapshot_allocations(s, NULL);
    (void)ms_snapshot_threads(s, NULL);
    ms_snapshot_free(s);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(engine_should_build_an_empty_snapshot_of_an_empty_store),
        cmocka_unit_test(engine_should_reproduce_the_seed_example),
        cmocka_unit_test(engine_should_not_consume_the_store),
        cmocka_unit_test(reallocation_should_move_the_block),
        cmocka_unit_test(reallocation_should_shrink_and_grow_in_place),
        cmocka_unit_test(reallocation_should_keep_a_site_it_names),
        cmocka_unit_test(reallocation_of_null_should_be_a_plain_allocation),
        cmocka_unit_test(reallocation_of_an_unknown_block_should_be_unmatched_and_open_the_new_one),
        cmocka_unit_test(reallocation_by_another_thread_should_move_ownership),
        cmocka_unit_test(free_by_another_thread_should_be_charged_to_the_allocating_thread),
        cmocka_unit_test(deallocation_should_remove_the_recorded_size_not_the_event_size),
        cmocka_unit_test(address_reused_after_a_free_should_start_a_new_allocation),
        cmocka_unit_test(allocation_at_a_live_address_should_replace_the_block),
        cmocka_unit_test(unmatched_deallocations_should_be_counted),
        cmocka_unit_test(build_from_events_should_replay_a_hand_built_array),
        cmocka_unit_test(live_state_and_replay_should_give_identical_results),
        cmocka_unit_test(snapshot_functions_should_accept_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
