/* test_tracker.c — the tracker: the seed's tests (creation, TRACK, analyze),
 * what TRACK records (name, type, file, line, function, size), TRACK_SIZED,
 * TRACK_TYPED, UNTRACK, MS_FREE, ms_track_realloc, the global tracker,
 * hotspots, rates, threads and the version functions. */
#define _GNU_SOURCE
#include <memscope.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <malloc.h> /* malloc_usable_size */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct node {
    struct node *next;
    int value;
};

static uint64_t current_tid(void) { return (uint64_t)syscall(SYS_gettid); }

/* A snapshot of the tracker's live state (free with ms_snapshot_free). */
static ms_memory_snapshot *live_state(ms_tracker *t)
{
    ms_event_store *s = ms_tracker_event_store(t);
    assert_non_null(s);
    ms_snapshot_engine *e = ms_snapshot_engine_new(s);
    assert_non_null(e);
    ms_memory_snapshot *snap = ms_snapshot_engine_build(e);
    assert_non_null(snap);
    ms_snapshot_engine_free(e);
    return snap;
}

/* @return the live block at p in snap, NULL if there is none. */
static const ms_active_allocation *find_block(const ms_memory_snapshot *snap, const void *p)
{
    size_t n = 0;
    const ms_active_allocation *a = ms_snapshot_allocations(snap, &n);
    for (size_t i = 0; i < n; i++)
        if (a[i].ptr == (uintptr_t)p)
            return &a[i];
    return NULL;
}

static void assert_site(const ms_site *site, const char *name, const char *type, unsigned line,
                        const char *func)
{
    assert_non_null(site);
    assert_non_null(site->name);
    assert_non_null(site->type);
    assert_non_null(site->file);
    assert_non_null(site->func);
    assert_string_equal(site->name, name);
    assert_string_equal(site->type, type);
    assert_string_equal(site->file, __FILE__);
    assert_int_equal(site->line, line);
    assert_string_equal(site->func, func);
}

/* ------------------------------------------------------- the seed's tests */

static void tracker_should_be_created_empty(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_new();
    assert_non_null(t);
    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.total_allocations, 0);
    assert_int_equal(s.total_deallocations, 0);
    assert_int_equal(s.active_allocations, 0);
    assert_int_equal(s.current_memory, 0);
    assert_int_equal(s.peak_memory, 0);
    assert_int_equal(s.track_errors, 0);
    assert_int_equal(s.sampled_out, 0);
    size_t n = 99;
    ms_memory_event *ev = ms_tracker_events(t, &n);
    assert_null(ev);
    assert_int_equal(n, 0);
    ms_tracker_free(t);

    t = TRACKER();
    assert_non_null(t);
    ms_tracker_free(t);
}

static void track_macro_should_record_an_allocation(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    int *my_vec = malloc(3 * sizeof *my_vec);
    assert_non_null(my_vec);
    ms_clear_error();
    TRACK(t, my_vec);
    assert_int_equal(ms_last_error(), 0);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.total_allocations, 1);
    assert_int_equal(s.active_allocations, 1);
    assert_int_equal(s.current_memory, malloc_usable_size(my_vec));
    assert_int_equal(s.track_errors, 0);

    size_t n = 0;
    ms_memory_event *ev = ms_tracker_events(t, &n);
    assert_int_equal(n, 1);
    assert_non_null(ev);
    assert_int_equal(ev[0].type, MS_EVENT_ALLOCATE);
    assert_int_equal(ev[0].ptr, (uintptr_t)my_vec);
    assert_int_equal(ev[0].thread_id, current_tid());
    assert_non_null(ev[0].site);
    assert_string_equal(ev[0].site->name, "my_vec");
    ms_events_free(ev);

    MS_FREE(t, my_vec);
    ms_tracker_free(t);
}

static void analyze_should_count_every_tracked_block(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    int *data = malloc(3 * sizeof *data);
    char *text = malloc(16);
    double *values = malloc(8 * sizeof *values);
    assert_true(data && text && values);
    TRACK(t, data);
    TRACK(t, text);
    TRACK(t, values);

    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_int_equal(r->total_allocations, 3);
    assert_int_equal(r->active_allocations, 3);
    assert_int_equal(r->total_deallocations, 0);
    uint64_t bytes =
        malloc_usable_size(data) + malloc_usable_size(text) + malloc_usable_size(values);
    assert_int_equal(r->current_memory_bytes, bytes);
    assert_int_equal(r->peak_memory_bytes, bytes);
    assert_false(r->is_estimate);
    assert_true(r->sample_rate == 1.0);
    assert_int_equal(r->thread_count, 1);
    ms_report_free(r);

    MS_FREE(t, data);
    MS_FREE(t, text);
    MS_FREE(t, values);
    ms_tracker_free(t);
}

/* ---------------------------------------------------- what TRACK records */

static void track_should_record_name_type_file_line_and_function(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    int *data = malloc(5 * sizeof *data);
    assert_non_null(data);
    const unsigned line = __LINE__ + 1;
    TRACK(t, data);

    ms_memory_snapshot *snap = live_state(t);
    const ms_active_allocation *b = find_block(snap, data);
    assert_non_null(b);
    assert_site(b->site, "data", "int *", line, __func__);
    assert_int_equal(b->size, malloc_usable_size(data)); /* TRACK asks the allocator */
    assert_true(b->size >= 5 * sizeof *data);
    assert_int_equal(b->thread_id, current_tid());
    assert_true(b->allocated_at > 0);
    ms_snapshot_free(snap);

    MS_FREE(t, data);
    ms_tracker_free(t);
}

static void track_sized_should_record_the_size_given(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    char *buffer = malloc(4096);
    assert_non_null(buffer);
    const unsigned line = __LINE__ + 1;
    TRACK_SIZED(t, buffer, 100); /* a part of the block */

    ms_memory_snapshot *snap = live_state(t);
    const ms_active_allocation *b = find_block(snap, buffer);
    assert_non_null(b);
    assert_int_equal(b->size, 100);
    assert_site(b->site, "buffer", "char *", line, __func__);
    ms_snapshot_free(snap);
    assert_int_equal(ms_tracker_stats(t).current_memory, 100);

    MS_FREE(t, buffer);
    assert_int_equal(ms_tracker_stats(t).current_memory, 0);
    ms_tracker_free(t);
}

static void track_typed_should_record_the_type_spelled(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    struct node *head = malloc(sizeof *head);
    assert_non_null(head);
    const unsigned line = __LINE__ + 1;
    TRACK_TYPED(t, head, struct node *);

    ms_memory_snapshot *snap = live_state(t);
    const ms_active_allocation *b = find_block(snap, head);
    assert_non_null(b);
    assert_site(b->site, "head", "struct node *", line, __func__);
    assert_int_equal(b->size, malloc_usable_size(head));
    ms_snapshot_free(snap);

    MS_FREE(t, head);
    ms_tracker_free(t);
}

static void type_names_should_follow_the_pointer_type(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    double *d = malloc(sizeof *d);
    unsigned char *bytes = malloc(4);
    char **strings = malloc(2 * sizeof *strings);
    void *opaque = malloc(8);
    assert_true(d && bytes && strings && opaque);
    TRACK(t, d);
    TRACK(t, bytes);
    TRACK(t, strings);
    TRACK(t, opaque);

    ms_memory_snapshot *snap = live_state(t);
    const ms_active_allocation *b;
    b = find_block(snap, d);
    assert_non_null(b);
    assert_string_equal(b->site->type, "double *");
    b = find_block(snap, bytes);
    assert_non_null(b);
    assert_string_equal(b->site->type, "unsigned char *");
    b = find_block(snap, strings);
    assert_non_null(b);
    assert_string_equal(b->site->type, "char **");
    b = find_block(snap, opaque);
    assert_non_null(b);
    assert_string_equal(b->site->type, "void *");
    ms_snapshot_free(snap);

    MS_FREE(t, d);
    MS_FREE(t, bytes);
    MS_FREE(t, strings);
    MS_FREE(t, opaque);
    ms_tracker_free(t);
}

/* ------------------------------------------------------- untrack and free */

static void untrack_should_close_the_block(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    long *numbers = malloc(10 * sizeof *numbers);
    assert_non_null(numbers);
    TRACK_SIZED(t, numbers, 80);
    UNTRACK(t, numbers);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.total_allocations, 1);
    assert_int_equal(s.total_deallocations, 1);
    assert_int_equal(s.active_allocations, 0);
    assert_int_equal(s.total_deallocated, 80);
    assert_int_equal(s.current_memory, 0);
    assert_int_equal(s.peak_memory, 80);
    assert_int_equal(s.unmatched_deallocations, 0);
    assert_non_null(numbers); /* UNTRACK does not free */
    free(numbers);
    ms_tracker_free(t);
}

static void ms_free_should_untrack_free_and_clear_the_variable(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    int *data = malloc(4 * sizeof *data);
    assert_non_null(data);
    TRACK_SIZED(t, data, 16);
    MS_FREE(t, data);
    assert_null(data);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.total_deallocations, 1);
    assert_int_equal(s.active_allocations, 0);
    assert_int_equal(s.current_memory, 0);
    ms_tracker_free(t);
}

static void untrack_of_an_unknown_block_should_be_unmatched(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    int *never_tracked = malloc(sizeof *never_tracked);
    assert_non_null(never_tracked);
    MS_FREE(t, never_tracked);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.unmatched_deallocations, 1);
    assert_int_equal(s.ignored_deallocations, 0);
    assert_int_equal(s.total_deallocations, 0);
    ms_tracker_free(t);
}

static void track_of_a_live_block_twice_should_replace_it(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    int *data = malloc(16 * sizeof *data);
    assert_non_null(data);
    TRACK_SIZED(t, data, 64);
    TRACK_SIZED(t, data, 32);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.replaced_allocations, 1);
    assert_int_equal(s.total_allocations, 2);
    assert_int_equal(s.total_deallocations, 1);
    assert_int_equal(s.active_allocations, 1);
    assert_int_equal(s.current_memory, 32);
    MS_FREE(t, data);
    ms_tracker_free(t);
}

static void ms_realloc_should_reallocate_and_record_the_move(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    char *p = malloc(16);
    assert_non_null(p);
    const unsigned line = __LINE__ + 1;
    TRACK_SIZED(t, p, 16);
    p = ms_realloc(t, p, 5000);
    assert_non_null(p);
    p[4999] = 'x'; // the new block is usable to its end

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.total_allocations, 2);
    assert_int_equal(s.total_deallocations, 1);
    assert_int_equal(s.current_memory, 5000); // the size asked for, not the usable size
    assert_int_equal(s.unmatched_deallocations, 0);
    ms_memory_snapshot *snap = live_state(t);
    const ms_active_allocation *b = find_block(snap, p);
    assert_non_null(b);
    assert_site(b->site, "p", "char *", line, __func__);
    ms_snapshot_free(snap);

    // Size 0 frees the block, and says so.
    assert_null(ms_realloc(t, p, 0));
    s = ms_tracker_stats(t);
    assert_int_equal(s.active_allocations, 0);
    assert_int_equal(s.current_memory, 0);

    // A NULL pointer is a plain allocation (not named).
    char *q = ms_realloc(t, NULL, 64);
    assert_non_null(q);
    s = ms_tracker_stats(t);
    assert_int_equal(s.active_allocations, 1);
    assert_int_equal(s.current_memory, 64);
    assert_int_equal(s.unmatched_deallocations, 0);
    MS_FREE(t, q);
    ms_tracker_free(t);
}

static void track_realloc_should_move_the_block_and_keep_its_name(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    char *p = malloc(16);
    assert_non_null(p);
    const unsigned line = __LINE__ + 1;
    TRACK_SIZED(t, p, 16);

    /* The old address as a number: after realloc the pointer itself may not be
     * used (volatile keeps GCC's -Wuse-after-free from tracking it). */
    volatile uintptr_t old = (uintptr_t)p;
    char *q = realloc(p, 4096);
    assert_non_null(q);
    ms_track_realloc(t, (const void *)old, q, 4096);

    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.total_allocations, 2);
    assert_int_equal(s.total_deallocations, 1);
    assert_int_equal(s.active_allocations, 1);
    assert_int_equal(s.total_allocated, 16 + 4096);
    assert_int_equal(s.total_deallocated, 16);
    assert_int_equal(s.current_memory, 4096);
    assert_int_equal(s.peak_memory, 4096);
    assert_int_equal(s.unmatched_deallocations, 0);

    ms_memory_snapshot *snap = live_state(t);
    const ms_active_allocation *b = find_block(snap, q);
    assert_non_null(b);
    assert_int_equal(b->size, 4096);
    assert_site(b->site, "p", "char *", line, __func__);
    if ((uintptr_t)q != old)
        assert_null(find_block(snap, (const void *)old));
    ms_snapshot_free(snap);

    /* MS_SIZE_UNKNOWN asks the allocator. */
    old = (uintptr_t)q;
    char *r = realloc(q, 100000);
    assert_non_null(r);
    ms_track_realloc(t, (const void *)old, r, MS_SIZE_UNKNOWN);
    s = ms_tracker_stats(t);
    assert_int_equal(s.current_memory, malloc_usable_size(r));
    assert_int_equal(s.total_allocations, 3);
    assert_int_equal(s.total_deallocations, 2);

    MS_FREE(t, r);
    assert_int_equal(ms_tracker_stats(t).active_allocations, 0);
    ms_tracker_free(t);
}

/* --------------------------------------------------------------- global */

static void *get_global(void *arg)
{
    (void)arg;
    return ms_tracker_global();
}

static void global_tracker_should_be_a_singleton_that_free_does_not_release(void **state)
{
    (void)state;
    ms_tracker *g = ms_tracker_global();
    assert_non_null(g);
    assert_ptr_equal(ms_tracker_global(), g);

    pthread_t th;
    void *from_thread = NULL;
    assert_int_equal(pthread_create(&th, NULL, get_global, NULL), 0);
    pthread_join(th, &from_thread);
    assert_ptr_equal(from_thread, g);

    ms_memory_stats before = ms_tracker_stats(g);
    ms_tracker_free(g); /* does nothing */
    ms_tracker_free(ms_tracker_global());
    assert_ptr_equal(ms_tracker_global(), g);

    int *data = malloc(sizeof *data);
    assert_non_null(data);
    TRACK_SIZED(g, data, 4);
    ms_memory_stats after = ms_tracker_stats(g);
    assert_int_equal(after.total_allocations, before.total_allocations + 1);
    MS_FREE(g, data);
    assert_int_equal(ms_tracker_stats(g).total_deallocations, before.total_deallocations + 1);
}

/* -------------------------------------------------------------- hotspots */

static void hotspots_should_be_sorted_by_bytes_then_count(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    char *many_blocks[8];
    unsigned line_many = 0, line_big = 0, line_small = 0;

    for (int i = 0; i < 3; i++) {
        short *small = malloc(100);
        assert_non_null(small);
        line_small = __LINE__ + 1;
        TRACK_SIZED(t, small, 100);
        MS_FREE(t, small);
    }
    double *big = malloc(4096);
    assert_non_null(big);
    line_big = __LINE__ + 1;
    TRACK_SIZED(t, big, 4096);
    for (int i = 0; i < 8; i++) {
        char *many = malloc(512);
        assert_non_null(many);
        line_many = __LINE__ + 1;
        TRACK_SIZED(t, many, 512);
        many_blocks[i] = many;
    }
    for (int i = 0; i < 3; i++)
        MS_FREE(t, many_blocks[i]);

    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_int_equal(r->hotspot_count, 3);
    assert_non_null(r->hotspots);

    /* 4096 bytes in 8 blocks, 4096 in 1, 300 in 3. */
    const struct {
        const char *name, *type;
        size_t total, count, active_count, active_size;
        unsigned line;
    } want[3] = {
        {"many", "char *", 4096, 8, 5, 5 * 512, line_many},
        {"big", "double *", 4096, 1, 1, 4096, line_big},
        {"small", "short *", 300, 3, 0, 0, line_small},
    };
    for (int i = 0; i < 3; i++) {
        const ms_allocation_hotspot *h = &r->hotspots[i];
        assert_non_null(h->var_name);
        assert_non_null(h->type_name);
        assert_string_equal(h->var_name, want[i].name);
        assert_string_equal(h->type_name, want[i].type);
        assert_int_equal(h->total_size, want[i].total);
        assert_int_equal(h->allocation_count, want[i].count);
        assert_int_equal(h->active_count, want[i].active_count);
        assert_int_equal(h->active_size, want[i].active_size);
        assert_non_null(h->function);
        assert_string_equal(h->function, __func__);

        /* "file:line": the file as the compiler named it, or its last part. */
        char full[4096], base[4096];
        const char *slash = strrchr(__FILE__, '/');
        snprintf(full, sizeof full, "%s:%u", __FILE__, want[i].line);
        snprintf(base, sizeof base, "%s:%u", slash ? slash + 1 : __FILE__, want[i].line);
        assert_non_null(h->location);
        if (strcmp(h->location, full) != 0 && strcmp(h->location, base) != 0)
            fail_msg("hotspot %d: location \"%s\", expected \"%s\"", i, h->location, full);
    }
    ms_report_free(r);

    for (int i = 3; i < 8; i++)
        MS_FREE(t, many_blocks[i]);
    MS_FREE(t, big);
    ms_tracker_free(t);
}

static void hotspots_should_group_unnamed_blocks_under_a_question_mark(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    void *p = malloc(64);
    assert_non_null(p);
    ms_track_as(t, p, 64, NULL);

    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_int_equal(r->hotspot_count, 1);
    assert_string_equal(r->hotspots[0].var_name, "?");
    assert_string_equal(r->hotspots[0].type_name, "?");
    assert_int_equal(r->hotspots[0].total_size, 64);
    assert_int_equal(r->hotspots[0].allocation_count, 1);
    ms_report_free(r);

    ms_untrack(t, p);
    free(p);
    ms_tracker_free(t);
}

/* -------------------------------------------------------------- reports */

static void report_should_carry_exact_figures_and_positive_rates(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    char *a = malloc(100), *b = malloc(200), *c = malloc(300);
    assert_true(a && b && c);
    TRACK_SIZED(t, a, 100);
    TRACK_SIZED(t, b, 200);
    TRACK_SIZED(t, c, 300);
    MS_FREE(t, b);

    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_int_equal(r->total_allocations, 3);
    assert_int_equal(r->total_deallocations, 1);
    assert_int_equal(r->active_allocations, 2);
    assert_int_equal(r->peak_memory_bytes, 600);
    assert_int_equal(r->current_memory_bytes, 400);
    assert_int_equal(r->total_allocated_bytes, 600);
    assert_int_equal(r->total_deallocated_bytes, 200);
    assert_int_equal(r->unmatched_deallocations, 0);
    assert_int_equal(r->dropped_events, 0);
    assert_int_equal(r->evicted_events, 0);
    assert_int_equal(r->thread_count, 1);
    assert_int_equal(r->hotspot_count, 3);
    assert_true(r->sample_rate == 1.0);
    assert_false(r->is_estimate);
    assert_true(r->duration_sec > 0.0);
    assert_true(r->allocation_rate_per_sec > 0.0);
    assert_true(r->deallocation_rate_per_sec > 0.0);
    assert_true(r->system_snapshot_count == 0 || r->system_snapshots != NULL);

    /* The printed summary. */
    FILE *out = tmpfile();
    assert_non_null(out);
    assert_int_equal(ms_report_print(r, out), 0);
    assert_true(ftell(out) > 0);
    fclose(out);
    ms_report_free(r);

    MS_FREE(t, a);
    MS_FREE(t, c);
    ms_tracker_free(t);
}

/* One block per level of a recursion: a stack each, one site. */
static __attribute__((noinline)) size_t chain(ms_tracker *t, char **keep, size_t depth)
{
    if (depth == 0)
        return 0;
    char *link = malloc(32);
    assert_non_null(link);
    TRACK_SIZED(t, link, 32);
    keep[depth - 1] = link;
    size_t below = chain(t, keep, depth - 1);
    __asm__ volatile("" ::: "memory"); // no tail call: each level keeps its frame
    return below + 1;
}

/* The printed summary of r. */
static void summary_of(const ms_analysis_report *r, char *text, size_t cap)
{
    FILE *out = tmpfile();
    assert_non_null(out);
    assert_int_equal(ms_report_print(r, out), 0);
    rewind(out);
    size_t len = fread(text, 1, cap - 1, out);
    text[len] = '\0';
    fclose(out);
}

/* The summary has a row that starts with `start`, names this test's function
 * and ends at this file's `line` (the path may be relative to the directory). */
static void summary_row_should_end(const char *text, const char *start, unsigned line)
{
    const char *row = strstr(text, start);
    assert_non_null(row);
    const char *end = strchr(row, '\n');
    assert_non_null(end);
    char want[64];
    int n = snprintf(want, sizeof want, "test_tracker.c:%u", line);
    assert_true(end - row > n && strncmp(end - n, want, (size_t)n) == 0);
    assert_non_null(strstr(row, "summary_should_list_a_recursions_blocks_as_one_place "));
}

static void summary_should_list_a_recursions_blocks_as_one_place(void **state)
{
    (void)state;
    ms_sampling_config cfg = ms_sampling_full();
    ms_tracker *t = ms_tracker_with_sampling(TRACKER(), cfg);
    assert_non_null(t);
    char *keep[6], *other = malloc(500);
    assert_non_null(other);
    TRACK_SIZED(t, other, 500);
    assert_int_equal(chain(t, keep, 6), 6);
    // Two sites of one name in one function: two places, each its own line.
    char *twice = malloc(100);
    assert_non_null(twice);
    TRACK_SIZED(t, twice, 100);
    unsigned first_line = __LINE__ - 1;
    char *second = twice;
    twice = malloc(7);
    assert_non_null(twice);
    TRACK_SIZED(t, twice, 7);
    unsigned second_line = __LINE__ - 1;
    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_int_equal(r->leak_count, 9); // a stack per level, `other` and the two `twice`
    char text[8192];
    summary_of(r, text, sizeof text);
    assert_non_null(strstr(text, "live blocks: 9 (799 B) from 4 call sites, 9 call stacks:\n"));
    const char *big = strstr(text, "       500 B in     1 block   other ");
    const char *row = strstr(text, "       192 B in     6 blocks  link chain ");
    assert_non_null(big);
    assert_non_null(row);
    assert_true(big < row);                                           // most bytes first
    assert_null(strstr(strstr(row, "link chain") + 1, "link chain")); // listed once
    summary_row_should_end(text, "100 B in     1 block   twice ", first_line);
    summary_row_should_end(text, "7 B in     1 block   twice ", second_line);
    ms_report_free(r);
    for (size_t i = 0; i < 6; i++)
        MS_FREE(t, keep[i]);
    MS_FREE(t, other);
    MS_FREE(t, second);
    MS_FREE(t, twice);
    ms_tracker_free(t);
}

static void tracker_events_should_list_what_was_recorded_in_order(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    int *x = malloc(sizeof *x);
    assert_non_null(x);
    uintptr_t px = (uintptr_t)x;
    TRACK_SIZED(t, x, 4);
    MS_FREE(t, x);

    size_t n = 0;
    ms_memory_event *ev = ms_tracker_events(t, &n);
    assert_int_equal(n, 2);
    assert_non_null(ev);
    assert_int_equal(ev[0].type, MS_EVENT_ALLOCATE);
    assert_int_equal(ev[0].ptr, px);
    assert_int_equal(ev[0].size, 4);
    assert_int_equal(ev[1].type, MS_EVENT_DEALLOCATE);
    assert_int_equal(ev[1].ptr, px);
    assert_true(ev[1].timestamp >= ev[0].timestamp);
    ms_events_free(ev);
    ms_tracker_free(t);
}

#define THREADS 4
#define PER_THREAD 100

struct worker {
    ms_tracker *t;
    int *blocks[PER_THREAD];
    uint64_t tid;
};

static void *track_from_thread(void *p)
{
    struct worker *w = p;
    w->tid = current_tid();
    for (int i = 0; i < PER_THREAD; i++) {
        int *data = malloc(16 * sizeof *data);
        if (data == NULL)
            return NULL;
        TRACK_SIZED(w->t, data, 64);
        w->blocks[i] = data;
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void one_tracker_should_be_shared_by_threads(void **state)
{
    (void)state;
    ms_tracker *t = TRACKER();
    static struct worker w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].t = t;
        assert_int_equal(pthread_create(&th[i], NULL, track_from_thread, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_int_equal(r->total_allocations, THREADS * PER_THREAD);
    assert_int_equal(r->active_allocations, THREADS * PER_THREAD);
    assert_int_equal(r->current_memory_bytes, 64 * THREADS * PER_THREAD);
    assert_int_equal(r->thread_count, THREADS);
    ms_report_free(r);

    /* The threads are the kernel ids of the threads that tracked. */
    ms_memory_snapshot *snap = live_state(t);
    size_t n = 0;
    const ms_thread_memory_stats *ts = ms_snapshot_threads(snap, &n);
    assert_int_equal(n, THREADS);
    uint64_t got[THREADS], want[THREADS];
    for (int i = 0; i < THREADS; i++) {
        got[i] = ts[i].thread_id;
        want[i] = w[i].tid;
        assert_int_equal(ts[i].allocation_count, PER_THREAD);
        assert_int_equal(ts[i].current_memory, 64 * PER_THREAD);
    }
    qsort(got, THREADS, sizeof got[0], cmp_u64);
    qsort(want, THREADS, sizeof want[0], cmp_u64);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(got[i], want[i]);
    ms_snapshot_free(snap);

    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < PER_THREAD; j++)
            MS_FREE(t, w[i].blocks[j]);
    ms_memory_stats s = ms_tracker_stats(t);
    assert_int_equal(s.total_deallocations, THREADS * PER_THREAD);
    assert_int_equal(s.current_memory, 0);
    ms_tracker_free(t);
}

#define CHURN_THREADS 4
#define CHURN_ITERATIONS 20000

struct churn {
    ms_tracker *t;
    atomic_int running;
};

static void *churn_thread(void *p)
{
    struct churn *c = p;
    for (int i = 0; i < CHURN_ITERATIONS; i++) {
        char *block = malloc(32 + (size_t)(i % 4) * 16);
        if (block == NULL)
            break;
        TRACK_SIZED(c->t, block, 32);
        MS_FREE(c->t, block); /* the address comes back soon, maybe on another thread */
    }
    atomic_fetch_sub(&c->running, 1);
    return NULL;
}

static void tracker_should_stay_exact_while_threads_churn_and_a_reader_analyzes(void **state)
{
    (void)state;
    static struct churn c;
    c.t = TRACKER();
    assert_non_null(c.t);
    atomic_init(&c.running, CHURN_THREADS);
    pthread_t th[CHURN_THREADS];
    for (int i = 0; i < CHURN_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, churn_thread, &c), 0);

    size_t last = 0;
    int rounds = 0;
    do {
        ms_analysis_report *r = ms_analyze(c.t);
        assert_non_null(r);
        ms_memory_stats s = ms_tracker_stats(c.t);
        assert_true(s.total_allocations >= last);
        assert_true(s.total_deallocations <= s.total_allocations);
        assert_int_equal(s.unmatched_deallocations, 0);
        last = s.total_allocations;
        ms_report_free(r);
        rounds++;
    } while (atomic_load(&c.running) > 0);
    for (int i = 0; i < CHURN_THREADS; i++)
        pthread_join(th[i], NULL);
    print_message("reader: %d analyses while the threads ran\n", rounds);

    ms_memory_stats s = ms_tracker_stats(c.t);
    assert_int_equal(s.total_allocations, CHURN_THREADS * CHURN_ITERATIONS);
    assert_int_equal(s.total_deallocations, CHURN_THREADS * CHURN_ITERATIONS);
    assert_int_equal(s.active_allocations, 0);
    assert_int_equal(s.current_memory, 0);
    assert_int_equal(s.total_allocated, 32 * CHURN_THREADS * CHURN_ITERATIONS);
    assert_true(s.peak_memory >= 32 && s.peak_memory <= 32 * CHURN_THREADS);
    assert_int_equal(s.unmatched_deallocations, 0);
    assert_int_equal(s.replaced_allocations, 0);
    assert_int_equal(s.dropped_events, 0);
    assert_int_equal(s.track_errors, 0);
    ms_tracker_free(c.t);
}

/* -------------------------------------------------------------- version */

static void version_functions_should_match_the_header(void **state)
{
    (void)state;
    assert_int_equal(ms_version(), MS_VERSION_NUMBER);
    assert_int_equal(MS_VERSION_NUMBER,
                     MS_VERSION_MAJOR * 10000 + MS_VERSION_MINOR * 100 + MS_VERSION_PATCH);
    assert_non_null(ms_version_string());
    assert_string_equal(ms_version_string(), MS_VERSION_STRING);
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", MS_VERSION_MAJOR, MS_VERSION_MINOR,
             MS_VERSION_PATCH);
    assert_string_equal(MS_VERSION_STRING, expected);
}

/* The program the test below runs, started with an unlimited stack limit
 * (so Linux lays its memory out the old way, the brk heap below the stack):
 * TRACK 2000 heap blocks from the main thread. @return its exit status: 0 when
 * none was refused. */
static int unlimited_stack_child(void)
{
    ms_tracker *t = ms_tracker_new();
    void *blocks[2000];
    for (int i = 0; i < 2000; i++) {
        blocks[i] = malloc(64);
        TRACK(t, blocks[i]);
    }
    int refused = (int)ms_tracker_stats(t).track_errors;
    for (int i = 0; i < 2000; i++)
        free(blocks[i]);
    ms_tracker_free(t);
    return refused == 0 ? 0 : 1;
}

/* Under `ulimit -s unlimited` glibc gives the main thread's stack all the room
 * down to the mapping below it, the brk heap: heap blocks were refused as
 * stack memory (MS_ENOTHEAP), most of 2000. */
static void track_should_accept_heap_blocks_under_an_unlimited_stack(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char name[] = "test_tracker";
        char *argv[] = {name, NULL};
        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
        if (setrlimit(RLIMIT_STACK, &rl) != 0)
            _exit(77); // not allowed here
        setenv("MS_TEST_UNLIMITED_STACK_CHILD", "1", 1);
        execv("/proc/self/exe", argv);
        _exit(126);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip();
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    if (getenv("MS_TEST_UNLIMITED_STACK_CHILD"))
        return unlimited_stack_child();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tracker_should_be_created_empty),
        cmocka_unit_test(track_macro_should_record_an_allocation),
        cmocka_unit_test(analyze_should_count_every_tracked_block),
        cmocka_unit_test(track_should_record_name_type_file_line_and_function),
        cmocka_unit_test(track_sized_should_record_the_size_given),
        cmocka_unit_test(track_typed_should_record_the_type_spelled),
        cmocka_unit_test(type_names_should_follow_the_pointer_type),
        cmocka_unit_test(untrack_should_close_the_block),
        cmocka_unit_test(ms_free_should_untrack_free_and_clear_the_variable),
        cmocka_unit_test(untrack_of_an_unknown_block_should_be_unmatched),
        cmocka_unit_test(track_of_a_live_block_twice_should_replace_it),
        cmocka_unit_test(track_realloc_should_move_the_block_and_keep_its_name),
        cmocka_unit_test(ms_realloc_should_reallocate_and_record_the_move),
        cmocka_unit_test(global_tracker_should_be_a_singleton_that_free_does_not_release),
        cmocka_unit_test(hotspots_should_be_sorted_by_bytes_then_count),
        cmocka_unit_test(hotspots_should_group_unnamed_blocks_under_a_question_mark),
        cmocka_unit_test(report_should_carry_exact_figures_and_positive_rates),
        cmocka_unit_test(summary_should_list_a_recursions_blocks_as_one_place),
        cmocka_unit_test(tracker_events_should_list_what_was_recorded_in_order),
        cmocka_unit_test(one_tracker_should_be_shared_by_threads),
        cmocka_unit_test(tracker_should_stay_exact_while_threads_churn_and_a_reader_analyzes),
        cmocka_unit_test(version_functions_should_match_the_header),
        cmocka_unit_test(track_should_accept_heap_blocks_under_an_unlimited_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
