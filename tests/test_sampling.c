/* test_sampling.c — sampling: the presets, a seeded rate of 0.1 over 100 000
 * TRACK calls (exact recorded figures, scaled estimates), frees of blocks that
 * were not sampled (ignored, never unmatched), rate 1.0 and 0.0, and the same
 * seed giving the same choices. */
#include <memscope.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CALLS 100000
#define SEED 20240229u

/* CALLS distinct live heap blocks of 16 bytes, shared by the tests. */
static char *blocks[CALLS];

static int setup_blocks(void **state)
{
    (void)state;
    for (int i = 0; i < CALLS; i++) {
        blocks[i] = malloc(16);
        if (blocks[i] == NULL)
            return -1;
    }
    return 0;
}

static int teardown_blocks(void **state)
{
    (void)state;
    for (int i = 0; i < CALLS; i++)
        free(blocks[i]);
    return 0;
}

static ms_sampling_config rate(double r)
{
    ms_sampling_config c = {r, false, 0};
    return c;
}

static ms_tracker *sampled_tracker(double r, uint64_t seed)
{
    ms_tracker *t =
        ms_tracker_with_sampling_seed(ms_tracker_with_sampling(ms_tracker_new(), rate(r)), seed);
    assert_non_null(t);
    return t;
}

static void track_all(ms_tracker *t)
{
    for (int i = 0; i < CALLS; i++) {
        char *block = blocks[i];
        TRACK_SIZED(t, block, 16);
    }
}

static void untrack_all(ms_tracker *t)
{
    for (int i = 0; i < CALLS; i++)
        UNTRACK(t, blocks[i]);
}

/* ---------------------------------------------------------------- presets */

static void presets_should_have_the_documented_values(void **state)
{
    (void)state;
    ms_sampling_config demo = ms_sampling_demo();
    assert_true(demo.sample_rate == 0.1);
    assert_false(demo.capture_call_stack);
    assert_int_equal(demo.max_stack_depth, 5);

    ms_sampling_config full = ms_sampling_full();
    assert_true(full.sample_rate == 1.0);
    assert_true(full.capture_call_stack);
    assert_int_equal(full.max_stack_depth, 20);

    ms_sampling_config fast = ms_sampling_high_performance();
    assert_true(fast.sample_rate == 0.01);
    assert_false(fast.capture_call_stack);
    assert_int_equal(fast.max_stack_depth, 0);
}

/* --------------------------------------------------------------- rate 0.1 */

static void rate_should_record_about_its_share_and_count_the_rest(void **state)
{
    (void)state;
    ms_tracker *t = sampled_tracker(0.1, SEED);
    track_all(t);

    ms_memory_stats s = ms_tracker_stats(t); /* exact: what was recorded */
    assert_in_range(s.total_allocations, 9000, 11000);
    assert_int_equal(s.sampled_out, CALLS - s.total_allocations);
    assert_int_equal(s.active_allocations, s.total_allocations);
    assert_int_equal(s.current_memory, 16 * (uint64_t)s.total_allocations);
    assert_int_equal(s.track_errors, 0);

    ms_analysis_report *r = ms_analyze(t); /* scaled by 1 / 0.1 */
    assert_non_null(r);
    assert_true(r->is_estimate);
    assert_true(r->sample_rate == 0.1);
    assert_in_range(r->total_allocations, 90000, 110000);
    assert_in_range(r->total_allocations, s.total_allocations * 10 - 1,
                    s.total_allocations * 10 + 1);
    assert_in_range(r->active_allocations, s.active_allocations * 10 - 1,
                    s.active_allocations * 10 + 1);
    assert_in_range(r->current_memory_bytes, s.current_memory * 10 - 16,
                    s.current_memory * 10 + 16);
    assert_in_range(r->total_allocated_bytes, s.total_allocated * 10 - 16,
                    s.total_allocated * 10 + 16);
    ms_report_free(r);
    ms_tracker_free(t);
}

static void free_of_a_block_not_sampled_should_be_ignored_not_unmatched(void **state)
{
    (void)state;
    ms_tracker *t = sampled_tracker(0.1, SEED);
    track_all(t);
    ms_memory_stats before = ms_tracker_stats(t);
    untrack_all(t);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.total_deallocations, before.total_allocations);
    assert_int_equal(s.ignored_deallocations, before.sampled_out);
    assert_int_equal(s.unmatched_deallocations, 0);
    assert_int_equal(s.active_allocations, 0);
    assert_int_equal(s.current_memory, 0);
    assert_int_equal(s.track_errors, 0);

    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_int_equal(r->unmatched_deallocations, 0);
    assert_int_equal(r->active_allocations, 0);
    ms_report_free(r);
    ms_tracker_free(t);
}

static void same_seed_should_make_the_same_choices(void **state)
{
    (void)state;
    ms_tracker *t1 = sampled_tracker(0.1, SEED);
    track_all(t1);
    ms_tracker *t2 = sampled_tracker(0.1, SEED);
    track_all(t2);

    ms_memory_stats s1 = ms_tracker_stats(t1), s2 = ms_tracker_stats(t2);
    assert_int_equal(s1.total_allocations, s2.total_allocations);
    assert_int_equal(s1.sampled_out, s2.sampled_out);

    size_t n1 = 0, n2 = 0;
    ms_memory_event *e1 = ms_tracker_events(t1, &n1);
    ms_memory_event *e2 = ms_tracker_events(t2, &n2);
    assert_int_equal(n1, s1.total_allocations);
    assert_int_equal(n1, n2);
    for (size_t i = 0; i < n1; i++)
        if (e1[i].ptr != e2[i].ptr)
            fail_msg("event %zu: the two trackers sampled different blocks", i);
    ms_events_free(e1);
    ms_events_free(e2);
    ms_tracker_free(t1);
    ms_tracker_free(t2);
}

/* ---------------------------------------------------------- 1.0 and 0.0 */

static void rate_one_should_record_everything_exactly(void **state)
{
    (void)state;
    ms_tracker *t = sampled_tracker(1.0, SEED);
    track_all(t);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.total_allocations, CALLS);
    assert_int_equal(s.sampled_out, 0);
    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_false(r->is_estimate);
    assert_true(r->sample_rate == 1.0);
    assert_int_equal(r->total_allocations, CALLS);
    assert_int_equal(r->current_memory_bytes, 16 * CALLS);
    ms_report_free(r);

    /* At rate 1.0 a free of an unknown block is unmatched again. */
    void *unknown = malloc(8);
    assert_non_null(unknown);
    UNTRACK(t, unknown);
    free(unknown);
    s = ms_tracker_stats(t);
    assert_int_equal(s.unmatched_deallocations, 1);
    assert_int_equal(s.ignored_deallocations, 0);
    ms_tracker_free(t);

    /* A new tracker, never configured, is at 1.0 too. */
    t = ms_tracker_new();
    assert_non_null(t);
    track_all(t);
    assert_int_equal(ms_tracker_stats(t).total_allocations, CALLS);
    r = ms_analyze(t);
    assert_non_null(r);
    assert_false(r->is_estimate);
    ms_report_free(r);
    ms_tracker_free(t);
}

static void rate_zero_should_record_nothing(void **state)
{
    (void)state;
    ms_tracker *t = sampled_tracker(0.0, SEED);
    track_all(t);
    untrack_all(t);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.total_allocations, 0);
    assert_int_equal(s.sampled_out, CALLS);
    assert_int_equal(s.ignored_deallocations, CALLS);
    assert_int_equal(s.unmatched_deallocations, 0);
    assert_int_equal(s.track_errors, 0);

    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_true(r->sample_rate == 0.0);
    assert_int_equal(r->total_allocations, 0); /* nothing to scale; no division by zero */
    assert_int_equal(r->current_memory_bytes, 0);
    ms_report_free(r);
    ms_tracker_free(t);
}

static void high_performance_preset_should_record_about_one_percent(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_with_sampling_seed(
        ms_tracker_with_sampling(ms_tracker_new(), ms_sampling_high_performance()), SEED);
    assert_non_null(t);
    track_all(t);
    ms_memory_stats s = ms_tracker_stats(t);
    assert_in_range(s.total_allocations, 700, 1300);
    assert_int_equal(s.total_allocations + s.sampled_out, CALLS);
    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_true(r->is_estimate);
    assert_true(fabs(r->sample_rate - 0.01) < 1e-12);
    assert_in_range(r->total_allocations, s.total_allocations * 100 - 1,
                    s.total_allocations * 100 + 1);
    ms_report_free(r);
    ms_tracker_free(t);
}

/* A reallocation of a block that was not sampled is not sampled either:
 * otherwise every move would enter the live state and be scaled up. */
static void reallocations_of_unsampled_blocks_should_stay_unsampled(void **state)
{
    (void)state;
    enum { N = 2000 };
    ms_tracker *t = ms_tracker_with_sampling(ms_tracker_new(), ms_sampling_high_performance());
    ms_tracker_with_sampling_seed(t, 7);
    void *moved[N];
    for (int i = 0; i < N; i++) {
        char *p = malloc(64);
        assert_non_null(p);
        TRACK(t, p);
        moved[i] = ms_realloc(t, p, 128);
        assert_non_null(moved[i]);
    }
    ms_memory_stats st = ms_tracker_stats(t);
    // Every live block was sampled at TRACK: about 1% of them, never all.
    assert_true(st.active_allocations < N / 20);
    assert_int_equal(st.active_allocations * 2, st.total_allocations);
    assert_int_equal(st.unmatched_deallocations, 0);
    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_true(r->active_allocations < 2 * N); // estimates near N, not N * 100
    ms_report_free(r);
    for (int i = 0; i < N; i++)
        MS_FREE(t, moved[i]);
    ms_tracker_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(presets_should_have_the_documented_values),
        cmocka_unit_test(reallocations_of_unsampled_blocks_should_stay_unsampled),
        cmocka_unit_test(rate_should_record_about_its_share_and_count_the_rest),
        cmocka_unit_test(free_of_a_block_not_sampled_should_be_ignored_not_unmatched),
        cmocka_unit_test(same_seed_should_make_the_same_choices),
        cmocka_unit_test(rate_one_should_record_everything_exactly),
        cmocka_unit_test(rate_zero_should_record_nothing),
        cmocka_unit_test(high_performance_preset_should_record_about_one_percent),
    };
    return cmocka_run_group_tests(tests, setup_blocks, teardown_blocks);
}
