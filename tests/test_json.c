/* test_json.c — the JSON report: written, parsed back with cJSON and checked
 * key by key against docs/json-format.md and against ms_tracker_stats and
 * ms_analyze of the same tracker; escaping of names; parent directories;
 * auto-export; and that a failed export leaves nothing behind. */
#define _GNU_SOURCE
#include <memscope.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NS_2020 1577836800000000000.0

struct node {
    struct node *next;
    int value;
};

/* ---------------------------------------------------------------- helpers */

static uint64_t current_tid(void) { return (uint64_t)syscall(SYS_gettid); }

/* @return the parsed file (cJSON_Delete it); fails the test if it is not JSON. */
static cJSON *parse_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    char *text = malloc((size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    text[len] = '\0';
    fclose(f);
    cJSON *root = cJSON_Parse(text);
    if (root == NULL)
        fail_msg("%s is not valid JSON near: %.40s", path, cJSON_GetErrorPtr());
    free(text);
    assert_true(cJSON_IsObject(root));
    return root;
}

static const cJSON *item(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (it == NULL)
        fail_msg("missing key \"%s\"", key);
    return it;
}

static double num(const cJSON *obj, const char *key)
{
    const cJSON *it = item(obj, key);
    if (!cJSON_IsNumber(it))
        fail_msg("\"%s\" is not a number", key);
    return it->valuedouble;
}

/* A count or byte figure: an exact integer (below 2^53 in these tests). */
static uint64_t count(const cJSON *obj, const char *key)
{
    double d = num(obj, key);
    if (d < 0 || d != (double)(uint64_t)d)
        fail_msg("\"%s\" = %f is not a non-negative integer", key, d);
    return (uint64_t)d;
}

static const char *str(const cJSON *obj, const char *key)
{
    const cJSON *it = item(obj, key);
    if (!cJSON_IsString(it))
        fail_msg("\"%s\" is not a string", key);
    return it->valuestring;
}

static bool boolean(const cJSON *obj, const char *key)
{
    const cJSON *it = item(obj, key);
    if (!cJSON_IsBool(it))
        fail_msg("\"%s\" is not a boolean", key);
    return cJSON_IsTrue(it);
}

/* A string that may be null: NULL for null. */
static const char *str_or_null(const cJSON *obj, const char *key)
{
    const cJSON *it = item(obj, key);
    if (cJSON_IsNull(it))
        return NULL;
    if (!cJSON_IsString(it))
        fail_msg("\"%s\" is neither a string nor null", key);
    return it->valuestring;
}

static void assert_same_string(const char *got, const char *want)
{
    if (want == NULL)
        assert_null(got);
    else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
}

static const cJSON *array(const cJSON *obj, const char *key)
{
    const cJSON *it = item(obj, key);
    if (!cJSON_IsArray(it))
        fail_msg("\"%s\" is not an array", key);
    return it;
}

static const cJSON *object(const cJSON *obj, const char *key)
{
    const cJSON *it = item(obj, key);
    if (!cJSON_IsObject(it))
        fail_msg("\"%s\" is not an object", key);
    return it;
}

/* @return the entry of active_allocations whose address is p, or fail. */
static const cJSON *find_active(const cJSON *active, uintptr_t p)
{
    char addr[32];
    snprintf(addr, sizeof addr, "0x%" PRIxPTR, p);
    const cJSON *e;
    cJSON_ArrayForEach(e, active)
    {
        if (strcmp(str(e, "address"), addr) == 0)
            return e;
    }
    fail_msg("no active allocation at %s", addr);
    return NULL;
}

static int cmp_thread(const void *a, const void *b)
{
    const ms_thread_memory_stats *x = a, *y = b;
    return (x->thread_id > y->thread_id) - (x->thread_id < y->thread_id);
}

/* --------------------------------------------------- the whole document */

static void export_should_match_the_stats_and_the_analysis(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/report.json", dir);

    ms_tracker *t = ms_tracker_new();
    assert_non_null(t);
    int *data = malloc(5 * sizeof *data);
    char *name = malloc(64);
    struct node *head = malloc(sizeof *head);
    double *gone = malloc(800);
    void *unnamed = malloc(48);
    assert_true(data && name && head && gone && unnamed);
    const unsigned line_data = __LINE__ + 1;
    TRACK_SIZED(t, data, 20);
    TRACK_SIZED(t, name, 64);
    const unsigned line_head = __LINE__ + 1;
    TRACK_TYPED(t, head, struct node *);
    TRACK_SIZED(t, gone, 800);
    ms_track_as(t, unnamed, 48, NULL);
    MS_FREE(t, gone);

    ms_memory_stats s = ms_tracker_stats(t);
    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_int_equal(ms_export_json(t, path), 0);
    cJSON *root = parse_file(path);

    /* Header. */
    assert_string_equal(str(root, "format"), "memscope");
    assert_int_equal(count(root, "version"), 1);
    assert_string_equal(str(root, "library_version"), MS_VERSION_STRING);
    double started = num(root, "started_at_ns"), generated = num(root, "generated_at_ns");
    assert_true(started > NS_2020);
    assert_true(generated >= started);
    const cJSON *process = object(root, "process");
    assert_int_equal(count(process, "pid"), (uint64_t)getpid());
    assert_string_equal(str(process, "program"), "test_json");

    const cJSON *sampling = object(root, "sampling");
    assert_true(num(sampling, "sample_rate") == 1.0);
    assert_false(boolean(sampling, "capture_call_stack"));
    assert_int_equal(count(sampling, "max_stack_depth"), 0);
    assert_false(boolean(sampling, "is_estimate"));

    /* report: ms_analyze. */
    const cJSON *rep = object(root, "report");
    assert_int_equal(count(rep, "total_allocations"), r->total_allocations);
    assert_int_equal(count(rep, "total_deallocations"), r->total_deallocations);
    assert_int_equal(count(rep, "active_allocations"), r->active_allocations);
    assert_int_equal(count(rep, "peak_memory_bytes"), r->peak_memory_bytes);
    assert_int_equal(count(rep, "current_memory_bytes"), r->current_memory_bytes);
    assert_int_equal(count(rep, "total_allocated_bytes"), r->total_allocated_bytes);
    assert_int_equal(count(rep, "total_deallocated_bytes"), r->total_deallocated_bytes);
    assert_int_equal(count(rep, "unmatched_deallocations"), r->unmatched_deallocations);
    assert_int_equal(count(rep, "thread_count"), r->thread_count);
    assert_true(num(rep, "allocation_rate_per_sec") > 0.0);
    assert_true(num(rep, "deallocation_rate_per_sec") > 0.0);
    assert_true(num(rep, "duration_sec") > 0.0);
    assert_false(boolean(rep, "is_estimate"));
    assert_true(num(rep, "sample_rate") == 1.0);
    assert_int_equal(r->total_allocations, 5);
    assert_int_equal(r->active_allocations, 4);

    /* stats: ms_tracker_stats, every key. */
    const cJSON *st = object(root, "stats");
    assert_int_equal(count(st, "total_allocations"), s.total_allocations);
    assert_int_equal(count(st, "total_deallocations"), s.total_deallocations);
    assert_int_equal(count(st, "active_allocations"), s.active_allocations);
    assert_int_equal(count(st, "total_allocated"), s.total_allocated);
    assert_int_equal(count(st, "total_deallocated"), s.total_deallocated);
    assert_int_equal(count(st, "current_memory"), s.current_memory);
    assert_int_equal(count(st, "peak_memory"), s.peak_memory);
    assert_int_equal(count(st, "unmatched_deallocations"), s.unmatched_deallocations);
    assert_int_equal(count(st, "dropped_events"), s.dropped_events);
    assert_int_equal(count(st, "evicted_events"), s.evicted_events);
    assert_int_equal(count(st, "retained_events"), s.retained_events);
    assert_int_equal(count(st, "ignored_deallocations"), s.ignored_deallocations);
    assert_int_equal(count(st, "replaced_allocations"), s.replaced_allocations);
    assert_int_equal(count(st, "track_errors"), s.track_errors);
    assert_int_equal(count(st, "sampled_out"), s.sampled_out);
    assert_int_equal(s.retained_events, 6);
    assert_int_equal(count(root, "dropped_events"), 0);

    /* hotspots: the analysis's, in its order, largest bytes first then count. */
    const cJSON *hot = array(root, "hotspots");
    assert_int_equal(cJSON_GetArraySize(hot), r->hotspot_count);
    assert_int_equal(r->hotspot_count, 5);
    for (size_t i = 0; i < r->hotspot_count; i++) {
        const cJSON *h = cJSON_GetArrayItem(hot, (int)i);
        const ms_allocation_hotspot *want = &r->hotspots[i];
        assert_string_equal(str(h, "var_name"), want->var_name);
        assert_string_equal(str(h, "type_name"), want->type_name);
        assert_same_string(str_or_null(h, "location"), want->location);
        assert_same_string(str_or_null(h, "function"), want->function);
        assert_int_equal(count(h, "total_size"), want->total_size);
        assert_int_equal(count(h, "allocation_count"), want->allocation_count);
        assert_int_equal(count(h, "active_count"), want->active_count);
        assert_int_equal(count(h, "active_size"), want->active_size);
        if (i > 0) {
            const ms_allocation_hotspot *prev = &r->hotspots[i - 1];
            assert_true(prev->total_size > want->total_size ||
                        (prev->total_size == want->total_size &&
                         prev->allocation_count >= want->allocation_count));
        }
    }
    assert_string_equal(r->hotspots[0].var_name, "gone"); /* 800 bytes */
    assert_int_equal(r->hotspots[0].active_count, 0);

    /* threads: one per thread id, ascending, as the live state has them. */
    ms_snapshot_engine *eng = ms_snapshot_engine_new(ms_tracker_event_store(t));
    ms_memory_snapshot *snap = ms_snapshot_engine_build(eng);
    assert_non_null(snap);
    size_t nt = 0;
    const ms_thread_memory_stats *ts = ms_snapshot_threads(snap, &nt);
    ms_thread_memory_stats *sorted = malloc((nt + 1) * sizeof *sorted);
    assert_non_null(sorted);
    if (nt > 0)
        memcpy(sorted, ts, nt * sizeof *sorted);
    qsort(sorted, nt, sizeof *sorted, cmp_thread);
    const cJSON *threads = array(root, "threads");
    assert_int_equal(cJSON_GetArraySize(threads), nt);
    assert_int_equal(nt, 1);
    for (size_t i = 0; i < nt; i++) {
        const cJSON *th = cJSON_GetArrayItem(threads, (int)i);
        assert_int_equal(count(th, "thread_id"), sorted[i].thread_id);
        assert_int_equal(count(th, "allocation_count"), sorted[i].allocation_count);
        assert_int_equal(count(th, "deallocation_count"), sorted[i].deallocation_count);
        assert_int_equal(count(th, "total_allocated"), sorted[i].total_allocated);
        assert_int_equal(count(th, "total_deallocated"), sorted[i].total_deallocated);
        assert_int_equal(count(th, "current_memory"), sorted[i].current_memory);
        assert_int_equal(count(th, "peak_memory"), sorted[i].peak_memory);
    }
    assert_int_equal(sorted[0].thread_id, current_tid());
    free(sorted);
    ms_snapshot_free(snap);
    ms_snapshot_engine_free(eng);

    /* active_allocations: the live blocks, largest first. */
    const cJSON *active = array(root, "active_allocations");
    assert_int_equal(cJSON_GetArraySize(active), s.active_allocations);
    uint64_t prev_size = UINT64_MAX, sum = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, active)
    {
        uint64_t size = count(e, "size");
        assert_true(size <= prev_size);
        prev_size = size;
        sum += size;
        // Event times come from the tick counter through its calibrated rate,
        // the start from the real-time clock: they may differ by microseconds.
        assert_true(num(e, "allocated_at_ns") >= started - 1e6);
        assert_true(num(e, "age_ns") >= 0.0);
        assert_int_equal(count(e, "thread_id"), current_tid());
    }
    assert_int_equal(sum, s.current_memory);

    e = find_active(active, (uintptr_t)data);
    assert_string_equal(str(e, "name"), "data");
    assert_string_equal(str(e, "type"), "int *");
    assert_string_equal(str(e, "file"), __FILE__);
    assert_int_equal(count(e, "line"), line_data);
    assert_string_equal(str(e, "function"), __func__);
    assert_int_equal(count(e, "size"), 20);

    e = find_active(active, (uintptr_t)head);
    assert_string_equal(str(e, "name"), "head");
    assert_string_equal(str(e, "type"), "struct node *");
    assert_int_equal(count(e, "line"), line_head);

    e = find_active(active, (uintptr_t)name);
    assert_string_equal(str(e, "name"), "name");
    assert_string_equal(str(e, "type"), "char *");
    assert_int_equal(count(e, "size"), 64);

    e = find_active(active, (uintptr_t)unnamed);
    assert_null(str_or_null(e, "name"));
    assert_null(str_or_null(e, "type"));
    assert_null(str_or_null(e, "file"));
    assert_null(str_or_null(e, "function"));
    assert_int_equal(count(e, "line"), 0);
    assert_int_equal(count(e, "size"), 48);

    /* memory_timeline: in time order, reaching the peak, ending at current. */
    const cJSON *timeline = array(root, "memory_timeline");
    int points = cJSON_GetArraySize(timeline);
    assert_in_range(points, 1, 1024);
    double prev_ts = 0;
    uint64_t max_bytes = 0, last_current = 0;
    cJSON_ArrayForEach(e, timeline)
    {
        double ts_ns = num(e, "timestamp_ns");
        assert_true(ts_ns >= prev_ts);
        prev_ts = ts_ns;
        uint64_t mx = count(e, "max_bytes"), cur = count(e, "current_bytes");
        assert_true(cur <= mx);
        if (mx > max_bytes)
            max_bytes = mx;
        last_current = cur;
    }
    assert_int_equal(max_bytes, s.peak_memory);
    assert_int_equal(last_current, s.current_memory);

    (void)array(root, "system_snapshots");

    cJSON_Delete(root);
    ms_report_free(r);
    MS_FREE(t, data);
    MS_FREE(t, name);
    MS_FREE(t, head);
    ms_untrack(t, unnamed);
    free(unnamed);
    ms_tracker_free(t);
    remove_tree(dir);
}

static void names_with_special_characters_should_round_trip_exactly(void **state)
{
    (void)state;
    static const ms_site odd = {
        "we\"ird\\name\n</script><!--\t\x01 caf\xc3\xa9",
        "char \"*\" \\ </SCRIPT>",
        "dir\\sub/file \"q\".c",
        4242,
        "fn</script>",
    };
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/odd.json", dir);

    ms_tracker *t = ms_tracker_new();
    char *block = malloc(32);
    assert_non_null(block);
    ms_track_as(t, block, 32, &odd);
    assert_int_equal(ms_export_json(t, path), 0);

    cJSON *root = parse_file(path);
    const cJSON *e = find_active(array(root, "active_allocations"), (uintptr_t)block);
    assert_string_equal(str(e, "name"), odd.name);
    assert_string_equal(str(e, "type"), odd.type);
    assert_string_equal(str(e, "file"), odd.file);
    assert_string_equal(str(e, "function"), odd.func);
    assert_int_equal(count(e, "line"), 4242);

    const cJSON *h = cJSON_GetArrayItem(array(root, "hotspots"), 0);
    assert_non_null(h);
    assert_string_equal(str(h, "var_name"), odd.name);
    assert_string_equal(str(h, "type_name"), odd.type);
    assert_string_equal(str(h, "function"), odd.func);
    cJSON_Delete(root);

    ms_untrack(t, block);
    free(block);
    ms_tracker_free(t);
    remove_tree(dir);
}

/* ------------------------------------------------------- files and paths */

static void export_should_create_missing_parent_directories(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a/b/c/report.json", dir);

    ms_tracker *t = ms_tracker_new();
    int *data = malloc(sizeof *data);
    assert_non_null(data);
    TRACK(t, data);
    assert_int_equal(ms_export_json(t, path), 0);
    cJSON *root = parse_file(path);
    assert_int_equal(count(object(root, "stats"), "total_allocations"), 1);
    cJSON_Delete(root);

    /* Exporting again replaces the file. */
    MS_FREE(t, data);
    assert_int_equal(ms_export_json(t, path), 0);
    root = parse_file(path);
    assert_int_equal(count(object(root, "stats"), "total_deallocations"), 1);
    cJSON_Delete(root);

    char parent[4200];
    snprintf(parent, sizeof parent, "%s/a/b/c", dir);
    assert_int_equal(count_entries(parent), 1); /* no temporary left beside it */
    ms_tracker_free(t);
    remove_tree(dir);
}

static void export_should_replace_an_existing_file(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/report.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{ this is not the report", f);
    fclose(f);

    ms_tracker *t = ms_tracker_new();
    assert_int_equal(ms_export_json(t, path), 0);
    cJSON *root = parse_file(path);
    assert_string_equal(str(root, "format"), "memscope");
    cJSON_Delete(root);
    assert_int_equal(count_entries(dir), 1);
    ms_tracker_free(t);
    remove_tree(dir);
}

static void auto_export_should_write_the_report_when_the_tracker_is_freed(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/output/memory_report.json", dir);

    ms_tracker *t = ms_tracker_with_auto_export(ms_tracker_new(), path);
    assert_non_null(t);
    int *data = malloc(3 * sizeof *data);
    assert_non_null(data);
    const uintptr_t address = (uintptr_t)data;
    TRACK(t, data);
    assert_false(exists(path));
    ms_clear_error();
    ms_tracker_free(t);
    assert_int_equal(ms_last_error(), 0);
    free(data);

    assert_true(exists(path));
    cJSON *root = parse_file(path);
    assert_string_equal(str(root, "format"), "memscope");
    assert_int_equal(count(object(root, "stats"), "total_allocations"), 1);
    const cJSON *e = find_active(array(root, "active_allocations"), address);
    assert_string_equal(str(e, "name"), "data");
    cJSON_Delete(root);
    remove_tree(dir);
}

static void failed_export_should_leave_no_partial_or_temporary_file(void **state)
{
    (void)state;
    char dir[4096], target[4200], inside[4300];
    make_temp_dir(dir, sizeof dir);
    /* The target is a directory: the rename onto it fails after the write. */
    snprintf(target, sizeof target, "%s/report.json", dir);
    assert_int_equal(mkdir(target, 0700), 0);
    snprintf(inside, sizeof inside, "%s/keep", target);
    FILE *f = fopen(inside, "w");
    assert_non_null(f);
    fclose(f);

    ms_tracker *t = ms_tracker_new();
    int *data = malloc(sizeof *data);
    assert_non_null(data);
    TRACK(t, data);
    ms_clear_error();
    int rc = ms_export_json(t, target);
    assert_true(rc < 0);
    assert_int_equal(ms_last_error(), rc);
    assert_non_null(strstr(ms_last_error_message(), "report.json"));

    assert_int_equal(count_entries(dir), 1);    /* only the directory */
    assert_int_equal(count_entries(target), 1); /* untouched */
    MS_FREE(t, data);
    ms_tracker_free(t);
    remove_tree(dir);
}

/* ------------------------------------------------------------- sampling */

static void sampled_report_should_say_it_is_an_estimate(void **state)
{
    (void)state;
    enum { N = 20000 };
    static char *blocks[N];
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/sampled.json", dir);

    ms_tracker *t = ms_tracker_with_sampling_seed(
        ms_tracker_with_sampling(ms_tracker_new(), ms_sampling_demo()), 7);
    assert_non_null(t);
    for (int i = 0; i < N; i++) {
        char *block = malloc(16);
        assert_non_null(block);
        TRACK_SIZED(t, block, 16);
        blocks[i] = block;
    }
    ms_memory_stats s = ms_tracker_stats(t);
    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    assert_int_equal(ms_export_json(t, path), 0);

    cJSON *root = parse_file(path);
    const cJSON *sampling = object(root, "sampling");
    assert_true(num(sampling, "sample_rate") == 0.1);
    assert_false(boolean(sampling, "capture_call_stack"));
    assert_int_equal(count(sampling, "max_stack_depth"), 5);
    assert_true(boolean(sampling, "is_estimate"));
    const cJSON *rep = object(root, "report");
    assert_true(boolean(rep, "is_estimate"));
    assert_int_equal(count(rep, "total_allocations"), r->total_allocations);
    const cJSON *st = object(root, "stats");
    assert_int_equal(count(st, "total_allocations"), s.total_allocations);
    assert_int_equal(count(st, "sampled_out"), s.sampled_out);
    assert_int_equal(s.total_allocations + s.sampled_out, N);
    cJSON_Delete(root);

    ms_report_free(r);
    for (int i = 0; i < N; i++)
        MS_FREE(t, blocks[i]);
    ms_tracker_free(t);
    remove_tree(dir);
}

/* With call stacks on, the report says how many events went without their
 * stack (the stack table full): none here. */
static void stacks_should_be_counted_in_the_sampling_object(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/stacks.json", dir);
    ms_tracker *t = ms_tracker_with_sampling(ms_tracker_new(), ms_sampling_full());
    assert_non_null(t);
    char *block = malloc(48);
    assert_non_null(block);
    TRACK(t, block);
    assert_int_equal(ms_export_json(t, path), 0);
    cJSON *root = parse_file(path);
    const cJSON *sampling = object(root, "sampling");
    assert_true(boolean(sampling, "capture_call_stack"));
    assert_int_equal(count(sampling, "stacks_dropped"), 0);
    cJSON_Delete(root);
    MS_FREE(t, block);
    ms_tracker_free(t);
    remove_tree(dir);
}

/* ------------------------------------------------------------- timeline */

/* @return the largest max_bytes of the timeline; checks its shape. */
static uint64_t timeline_max(const cJSON *root, uint64_t current)
{
    const cJSON *timeline = array(root, "memory_timeline");
    assert_in_range(cJSON_GetArraySize(timeline), 1, 1024);
    uint64_t mx = 0, last = 0;
    double prev = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, timeline)
    {
        double ts = num(e, "timestamp_ns");
        assert_true(ts >= prev);
        prev = ts;
        uint64_t m = count(e, "max_bytes");
        last = count(e, "current_bytes");
        assert_true(last <= m);
        if (m > mx)
            mx = m;
    }
    assert_int_equal(last, current);
    return mx;
}

/* A long run: at most 1024 points, still reaching the peak. The peak (a
 * burst of 64 live blocks) happens early, among many later events. */
static void timeline_should_stay_within_1024_points_and_reach_the_peak(void **state)
{
    (void)state;
    enum { BURST = 64, CHURN = 50000 };
    static char *burst[BURST];
    const size_t budgets[] = {(size_t)64 << 20, 4096, 0}; /* default, small, none */
    for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
        char dir[4096], path[4200];
        make_temp_dir(dir, sizeof dir);
        snprintf(path, sizeof path, "%s/long.json", dir);
        ms_tracker *t = ms_tracker_with_retained_bytes(ms_tracker_new(), budgets[b]);
        assert_non_null(t);
        for (int i = 0; i < BURST; i++) {
            char *block = malloc(1000);
            assert_non_null(block);
            TRACK_SIZED(t, block, 1000);
            burst[i] = block;
        }
        for (int i = 0; i < BURST; i++)
            MS_FREE(t, burst[i]);
        for (int i = 0; i < CHURN; i++) {
            char *small = malloc(10);
            assert_non_null(small);
            TRACK_SIZED(t, small, 10);
            MS_FREE(t, small);
        }
        ms_memory_stats s = ms_tracker_stats(t);
        assert_int_equal(s.peak_memory, 1000 * BURST);
        assert_int_equal(ms_export_json(t, path), 0);
        cJSON *root = parse_file(path);
        if (timeline_max(root, s.current_memory) != s.peak_memory)
            fail_msg("budget %zu: the timeline does not reach the peak", budgets[b]);
        cJSON_Delete(root);
        ms_tracker_free(t);
        remove_tree(dir);
    }
}

/* --------------------------------------------------------------- global */

/* The global tracker with an auto-export path writes it at process exit. */
static void global_tracker_should_auto_export_at_exit(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/at-exit/global.json", dir);

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ms_tracker *g = ms_tracker_with_auto_export(ms_tracker_global(), path);
        int *data = malloc(4 * sizeof *data);
        if (g == NULL || data == NULL)
            _exit(2);
        TRACK(g, data);
        exit(0); /* atexit writes the report */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    assert_true(exists(path));
    cJSON *root = parse_file(path);
    assert_int_equal(count(object(root, "stats"), "total_allocations"), 1);
    const cJSON *active = array(root, "active_allocations");
    assert_int_equal(cJSON_GetArraySize(active), 1);
    assert_string_equal(str(cJSON_GetArrayItem(active, 0), "name"), "data");
    cJSON_Delete(root);
    remove_tree(dir);
}

static int host_hook_calls;
static void *host_malloc(size_t n)
{
    host_hook_calls++;
    return malloc(n);
}

/* cJSON's allocation hooks are process-wide: exporting must not replace the
 * host program's. */
static void export_should_leave_the_hosts_cjson_hooks_alone(void **state)
{
    (void)state;
    cJSON_Hooks hooks = {host_malloc, free};
    cJSON_InitHooks(&hooks);
    ms_tracker *t = ms_tracker_new();
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.json", dir);
    assert_int_equal(ms_export_json(t, path), 0);
    host_hook_calls = 0;
    cJSON *o = cJSON_CreateObject();
    assert_true(host_hook_calls > 0);
    cJSON_Delete(o);
    cJSON_InitHooks(NULL);
    unlink(path);
    rmdir(dir);
    ms_tracker_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(export_should_leave_the_hosts_cjson_hooks_alone),
        cmocka_unit_test(export_should_match_the_stats_and_the_analysis),
        cmocka_unit_test(names_with_special_characters_should_round_trip_exactly),
        cmocka_unit_test(export_should_create_missing_parent_directories),
        cmocka_unit_test(export_should_replace_an_existing_file),
        cmocka_unit_test(auto_export_should_write_the_report_when_the_tracker_is_freed),
        cmocka_unit_test(failed_export_should_leave_no_partial_or_temporary_file),
        cmocka_unit_test(sampled_report_should_say_it_is_an_estimate),
        cmocka_unit_test(stacks_should_be_counted_in_the_sampling_object),
        cmocka_unit_test(timeline_should_stay_within_1024_points_and_reach_the_peak),
        cmocka_unit_test(global_tracker_should_auto_export_at_exit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
