/* test_fold.c — the store's fold through its internal header: records with
 * chosen ticks show how a free read "too early" (before the allocation it
 * belongs to) is held and put back in order, and when it is not. */
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>

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

static void held_free_should_be_counted_by_the_next_query(void **state)
{
    (void)state;
    ms_event_store *s = ms_event_store_new();
    ms_event_store_record(s, ms_event_deallocate(0x7000, 8, 3));
    ms_memory_stats st = stats_of(s);
    assert_int_equal(st.unmatched_deallocations, 1);
    ms_event_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(free_before_its_allocation_from_another_thread_should_be_put_in_order),
        cmocka_unit_test(free_before_a_reallocation_to_its_address_should_be_put_in_order),
        cmocka_unit_test(free_long_before_an_allocation_should_stay_unmatched),
        cmocka_unit_test(free_of_null_should_not_disturb_a_held_free),
        cmocka_unit_test(free_and_allocation_on_one_thread_should_keep_program_order),
        cmocka_unit_test(held_free_should_be_counted_by_the_next_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
