/* test_errors.c — errors: a NULL tracker or pointer, pointers that are not
 * heap blocks, sizes and rates out of range, exports that cannot be written,
 * unsupported auto-export formats, ms_strerror, and the thread-local last
 * error. No bad input may crash or abort. */
#define _GNU_SOURCE
#include <memscope.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <dirent.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static void remove_file_in(const char *dir, const char *name)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    remove(path);
}

static void assert_error(int code)
{
    assert_int_equal(ms_last_error(), code);
    assert_non_null(ms_last_error_message());
}

static int g_array[16]; /* in the program image */

/* ---------------------------------------------------------- NULL tracker */

static void null_tracker_should_be_a_clear_error_everywhere(void **state)
{
    (void)state;
    ms_tracker *none = NULL;
    int *data = malloc(4 * sizeof *data);
    assert_non_null(data);

    ms_clear_error();
    TRACK(none, data);
    assert_error(MS_ENULLTRACKER);
    ms_clear_error();
    TRACK_SIZED(none, data, 16);
    assert_error(MS_ENULLTRACKER);
    ms_clear_error();
    UNTRACK(none, data);
    assert_error(MS_ENULLTRACKER);
    ms_clear_error();
    ms_track_as(NULL, data, 16, NULL);
    assert_error(MS_ENULLTRACKER);
    ms_clear_error();
    ms_track_realloc(NULL, data, data, 16);
    assert_error(MS_ENULLTRACKER);

    ms_clear_error();
    assert_null(ms_analyze(NULL));
    assert_error(MS_ENULLTRACKER);
    ms_clear_error();
    assert_null(ms_tracker_with_sampling(NULL, ms_sampling_demo()));
    assert_error(MS_ENULLTRACKER);
    ms_clear_error();
    assert_null(ms_tracker_with_sampling_seed(NULL, 1));
    assert_error(MS_ENULLTRACKER);
    ms_clear_error();
    assert_null(ms_tracker_with_auto_export(NULL, "x.json"));
    assert_error(MS_ENULLTRACKER);
    ms_clear_error();
    assert_null(ms_tracker_with_retained_bytes(NULL, 1024));
    assert_error(MS_ENULLTRACKER);
    ms_clear_error();
    assert_null(ms_tracker_event_store(NULL));
    assert_error(MS_ENULLTRACKER);

    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/report.json", dir);
    ms_clear_error();
    assert_int_equal(ms_export_json(NULL, path), MS_ENULLTRACKER);
    assert_error(MS_ENULLTRACKER);
    assert_false(exists(path));
    rmdir(dir);

    ms_memory_stats s = ms_tracker_stats(NULL);
    assert_int_equal(s.total_allocations, 0);
    assert_int_equal(s.track_errors, 0);
    size_t n = 99;
    assert_null(ms_tracker_events(NULL, &n));
    assert_int_equal(n, 0);
    ms_system_snapshot sys = ms_current_system_snapshot(NULL);
    assert_int_equal(sys.timestamp, 0);
    ms_tracker_free(NULL);
    ms_report_free(NULL);
    assert_true(ms_report_print(NULL, stdout) < 0);

    free(data);
}

static void report_print_should_reject_a_null_stream(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_new();
    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    ms_clear_error();
    assert_true(ms_report_print(r, NULL) < 0);
    assert_true(ms_last_error() < 0);
    ms_report_free(r);
    ms_tracker_free(t);
}

/* ------------------------------------------------------ bad pointers */

static void null_pointer_should_be_a_counted_error(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_new();
    int *nothing = NULL;

    ms_clear_error();
    TRACK(t, nothing);
    assert_error(MS_ENULLPTR);
    assert_true(strlen(ms_last_error_message()) > 0);
    ms_clear_error();
    TRACK_SIZED(t, nothing, 8);
    assert_error(MS_ENULLPTR);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.track_errors, 2);
    assert_int_equal(s.total_allocations, 0); /* a rejected call records nothing */
    size_t n = 99;
    ms_memory_event *ev = ms_tracker_events(t, &n);
    assert_int_equal(n, 0);
    ms_events_free(ev);

    /* MS_FREE of NULL: free(NULL) is fine in C; it records no deallocation. */
    MS_FREE(t, nothing);
    s = ms_tracker_stats(t);
    assert_int_equal(s.total_deallocations, 0);
    assert_int_equal(s.unmatched_deallocations, 0);
    ms_tracker_free(t);
}

static void pointers_that_are_not_heap_blocks_should_be_rejected(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_new();
    int local = 42;
    int *on_stack = &local;
    const char *literal = "a string literal";
    int *global = g_array;
    char *block = malloc(64);
    assert_non_null(block);
    char *misaligned = block + 1;

    ms_clear_error();
    TRACK(t, on_stack);
    assert_error(MS_ENOTHEAP);
    ms_clear_error();
    TRACK(t, literal);
    assert_error(MS_ENOTHEAP);
    ms_clear_error();
    TRACK(t, global);
    assert_error(MS_ENOTHEAP);
    ms_clear_error();
    TRACK(t, misaligned);
    assert_error(MS_ENOTHEAP);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.track_errors, 4);
    assert_int_equal(s.total_allocations, 0);
    assert_int_equal(s.current_memory, 0);

    /* A valid block succeeds; a success does not reset the last error... */
    ms_clear_error();
    TRACK(t, misaligned);
    TRACK(t, block);
    assert_int_equal(ms_last_error(), MS_ENOTHEAP);
    /* ...and with a clear error it stays clear. */
    ms_clear_error();
    int *fine = malloc(sizeof *fine);
    assert_non_null(fine);
    TRACK(t, fine);
    assert_int_equal(ms_last_error(), 0);

    s = ms_tracker_stats(t);
    assert_int_equal(s.track_errors, 5);
    assert_int_equal(s.total_allocations, 2);

    MS_FREE(t, block);
    MS_FREE(t, fine);
    assert_int_equal(ms_tracker_stats(t).active_allocations, 0);
    ms_tracker_free(t);
}

static void sizes_of_two_to_the_48_should_be_out_of_range(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_new();
    char *block = malloc(16);
    assert_non_null(block);

    ms_clear_error();
    TRACK_SIZED(t, block, (uint64_t)1 << 48);
    assert_error(MS_ERANGE);
    ms_clear_error();
    TRACK_SIZED(t, block, ((uint64_t)1 << 48) - 1); /* the largest accepted */
    assert_int_equal(ms_last_error(), 0);

    ms_clear_error();
    uintptr_t old = (uintptr_t)block;
    ms_track_realloc(t, (const void *)old, block, (size_t)1 << 48);
    assert_error(MS_ERANGE);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.track_errors, 2);
    assert_int_equal(s.total_allocations, 1);
    assert_int_equal(s.current_memory, ((uint64_t)1 << 48) - 1);
    MS_FREE(t, block);
    ms_tracker_free(t);
}

/* ----------------------------------------------------------------- rates */

static void rates_outside_zero_to_one_should_be_rejected_and_change_nothing(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_new();
    ms_sampling_config half = {0.5, false, 3};
    ms_clear_error();
    assert_ptr_equal(ms_tracker_with_sampling(t, half), t);
    assert_int_equal(ms_last_error(), 0);

    const double bad[] = {-0.5, 1.5, NAN, INFINITY, -INFINITY, 1.0000001};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_sampling_config c = {bad[i], true, 7};
        ms_clear_error();
        assert_ptr_equal(ms_tracker_with_sampling(t, c), t);
        assert_error(MS_ERANGE);
    }

    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_true(r->sample_rate == 0.5); /* unchanged */
    ms_report_free(r);

    /* The edges are valid. */
    ms_clear_error();
    ms_tracker_with_sampling(t, (ms_sampling_config){0.0, false, 0});
    ms_tracker_with_sampling(t, (ms_sampling_config){1.0, false, 0});
    assert_int_equal(ms_last_error(), 0);
    ms_tracker_free(t);
}

/* --------------------------------------------------------------- exports */

static void export_to_an_unwritable_path_should_fail_cleanly(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_new();
    int *data = malloc(sizeof *data);
    assert_non_null(data);
    TRACK(t, data);

    /* A directory that cannot be created. */
    const char *in_proc = "/proc/memscope-nope/x.json";
    ms_clear_error();
    int rc = ms_export_json(t, in_proc);
    assert_true(rc < 0);
    assert_int_equal(ms_last_error(), rc);
    assert_true(strlen(ms_last_error_message()) > 0);
    if (strstr(ms_last_error_message(), "/proc/memscope-nope") == NULL)
        fail_msg("the message does not name the path: \"%s\"", ms_last_error_message());
    assert_false(exists(in_proc));

    /* A parent that is a regular file. */
    char dir[4096], file[4200], path[4300];
    make_temp_dir(dir, sizeof dir);
    snprintf(file, sizeof file, "%s/plain-file", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("not a directory\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/x.json", file);

    ms_clear_error();
    rc = ms_export_json(t, path);
    assert_true(rc < 0);
    assert_int_equal(ms_last_error(), rc);
    if (strstr(ms_last_error_message(), file) == NULL)
        fail_msg("the message does not name the path: \"%s\"", ms_last_error_message());
    assert_false(exists(path));
    assert_int_equal(count_entries(dir), 1); /* only plain-file: no temporary left */

    /* NULL and empty paths. */
    ms_clear_error();
    assert_true(ms_export_json(t, NULL) < 0);
    assert_true(ms_last_error() < 0);
    ms_clear_error();
    assert_true(ms_export_json(t, "") < 0);
    assert_true(ms_last_error() < 0);

    remove(file);
    rmdir(dir);
    MS_FREE(t, data);
    ms_tracker_free(t);
}

static void auto_export_with_an_unknown_extension_should_be_unsupported(void **state)
{
    (void)state;
    char dir[4096], txt[4200], none[4200], good[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(txt, sizeof txt, "%s/report.txt", dir);
    snprintf(none, sizeof none, "%s/report", dir);
    snprintf(good, sizeof good, "%s/report.json", dir);

    ms_tracker *t = ms_tracker_new();
    ms_clear_error();
    assert_ptr_equal(ms_tracker_with_auto_export(t, txt), t);
    assert_error(MS_ENOTSUP);
    ms_clear_error();
    assert_ptr_equal(ms_tracker_with_auto_export(t, none), t);
    assert_error(MS_ENOTSUP);
    ms_tracker_free(t); /* no auto-export was set: nothing is written */
    assert_int_equal(count_entries(dir), 0);

    /* An unsupported path leaves a valid one in place. */
    t = ms_tracker_new();
    ms_clear_error();
    ms_tracker_with_auto_export(t, good);
    assert_int_equal(ms_last_error(), 0);
    ms_tracker_with_auto_export(t, txt);
    assert_error(MS_ENOTSUP);
    ms_tracker_free(t);
    assert_true(exists(good));
    assert_false(exists(txt));
    assert_int_equal(count_entries(dir), 1);

    remove_file_in(dir, "report.json");
    rmdir(dir);
}

static void failed_auto_export_should_set_the_last_error(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_with_auto_export(ms_tracker_new(), "/proc/memscope-nope/r.json");
    assert_non_null(t);
    ms_clear_error();
    ms_tracker_free(t); /* prints one line to stderr */
    assert_true(ms_last_error() < 0);
    assert_non_null(strstr(ms_last_error_message(), "/proc/memscope-nope"));
}

/* ---------------------------------------------------------------- strerror */

static void strerror_should_describe_every_code(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *text;
    } table[] = {
#define ROW(name, value, text) {MS_##name, text},
        MS_ERROR_MAP(ROW)
#undef ROW
    };
    const size_t n = sizeof table / sizeof table[0];
    assert_int_equal(n, 9);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(table[i].code, -(int)(i + 1)); /* pinned: -1 .. -9 */
        const char *s = ms_strerror(table[i].code);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_equal(s, table[i].text);
        assert_string_not_equal(s, "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, ms_strerror(table[j].code));
    }
    const int unknown[] = {-10, -100, 1, 42, 12345};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_non_null(ms_strerror(unknown[i]));
        assert_string_equal(ms_strerror(unknown[i]), "unknown error");
    }
}

/* ------------------------------------------------------------ thread-local */

struct thread_errors {
    int initial, initial_message_empty, after_own_failure;
};

static void *fail_in_thread(void *p)
{
    struct thread_errors *e = p;
    e->initial = ms_last_error();
    e->initial_message_empty = ms_last_error_message()[0] == '\0';
    ms_tracker *t = ms_tracker_new();
    int *nothing = NULL;
    TRACK(t, nothing);
    ms_tracker_free(t);
    e->after_own_failure = ms_last_error();
    return NULL;
}

static void errors_should_be_thread_local(void **state)
{
    (void)state;
    ms_tracker *none = NULL;
    int x = 0;
    int *px = &x;
    TRACK(none, px);
    assert_int_equal(ms_last_error(), MS_ENULLTRACKER);

    struct thread_errors e = {-1, 0, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fail_in_thread, &e), 0);
    pthread_join(th, NULL);
    assert_int_equal(e.initial, 0); /* a new thread has no error */
    assert_true(e.initial_message_empty);
    assert_int_equal(e.after_own_failure, MS_ENULLPTR);
    assert_int_equal(ms_last_error(), MS_ENULLTRACKER); /* ours is untouched */
}

static void clear_error_should_forget_the_last_error(void **state)
{
    (void)state;
    ms_tracker *none = NULL;
    char *p = NULL;
    TRACK(none, p);
    assert_int_equal(ms_last_error(), MS_ENULLTRACKER);
    assert_true(strlen(ms_last_error_message()) > 0);
    ms_clear_error();
    assert_int_equal(ms_last_error(), 0);
    assert_string_equal(ms_last_error_message(), "");
}

/* Wild, freed and interior pointers must be rejected without ever crashing:
 * TRACK reads a block's header only where that memory is readable. */
static void wild_freed_and_interior_pointers_should_be_rejected_without_crashing(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_new();

    int *wild = (int *)(uintptr_t)0x10;
    ms_clear_error();
    TRACK(t, wild);
    assert_int_equal(ms_last_error(), MS_ENOTHEAP);

    // Far from anything mapped (but 16-aligned).
    int *nowhere = (int *)(uintptr_t)0x7ff0deadbee0ull;
    ms_clear_error();
    TRACK(t, nowhere);
    assert_int_equal(ms_last_error(), MS_ENOTHEAP);

    // A large block is mmapped by glibc and unmapped by free().
    char *big = malloc((size_t)1 << 20);
    assert_non_null(big);
    volatile uintptr_t big_addr = (uintptr_t)big;
    free(big);
    char *gone = (char *)big_addr;
    ms_clear_error();
    TRACK(t, gone);
    assert_int_equal(ms_last_error(), MS_ENOTHEAP);

    // Inside a live block, at a spot whose "header" claims a huge chunk.
    // (ThreadSanitizer's allocator reports interior pointers as its own, so
    // there the block is only known not to crash.)
    size_t *blk = malloc(256);
    assert_non_null(blk);
    memset(blk, 0, 256);
    blk[3] = ((size_t)1 << 39) | 1;
    size_t *inner = blk + 4;
    ms_clear_error();
    TRACK(t, inner);
#if !UNDER_TSAN
    assert_int_equal(ms_last_error(), MS_ENOTHEAP);
    ms_memory_stats st = ms_tracker_stats(t);
    assert_int_equal(st.total_allocations, 0);
    assert_int_equal(st.track_errors, 4);
#endif
    free(blk);
    ms_tracker_free(t);
}

static void *track_in_a_thread(void *arg)
{
    ms_tracker *t = arg;
    char *small = malloc(100); // from this thread's arena
    TRACK(t, small);
    return ms_last_error() == 0 ? small : NULL;
}

static void blocks_from_thread_arenas_and_mmap_should_be_accepted_with_their_size(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_new();
    ms_clear_error();
    char *big = malloc((size_t)1 << 20); // mmapped
    assert_non_null(big);
    TRACK(t, big);
    assert_int_equal(ms_last_error(), 0);
    pthread_t th;
    void *small = NULL;
    assert_int_equal(pthread_create(&th, NULL, track_in_a_thread, t), 0);
    assert_int_equal(pthread_join(th, &small), 0);
    assert_non_null(small);
    ms_memory_stats st = ms_tracker_stats(t);
    assert_int_equal(st.total_allocations, 2);
    assert_int_equal(st.current_memory, malloc_usable_size(big) + malloc_usable_size(small));
    MS_FREE(t, big);
    MS_FREE(t, small);
    ms_tracker_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(null_tracker_should_be_a_clear_error_everywhere),
        cmocka_unit_test(report_print_should_reject_a_null_stream),
        cmocka_unit_test(null_pointer_should_be_a_counted_error),
        cmocka_unit_test(pointers_that_are_not_heap_blocks_should_be_rejected),
        cmocka_unit_test(wild_freed_and_interior_pointers_should_be_rejected_without_crashing),
        cmocka_unit_test(blocks_from_thread_arenas_and_mmap_should_be_accepted_with_their_size),
        cmocka_unit_test(sizes_of_two_to_the_48_should_be_out_of_range),
        cmocka_unit_test(rates_outside_zero_to_one_should_be_rejected_and_change_nothing),
        cmocka_unit_test(export_to_an_unwritable_path_should_fail_cleanly),
        cmocka_unit_test(auto_export_with_an_unknown_extension_should_be_unsupported),
        cmocka_unit_test(failed_auto_export_should_set_the_last_error),
        cmocka_unit_test(strerror_should_describe_every_code),
        cmocka_unit_test(errors_should_be_thread_local),
        cmocka_unit_test(clear_error_should_forget_the_last_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
