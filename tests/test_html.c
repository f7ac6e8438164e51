/* test_html.c — the HTML dashboard file: one self-contained page (no external
 * URL, nothing it loads), the report JSON embedded and equal to the JSON
 * export's figures, hostile names unable to end the script element, the long
 * lists capped with what was left out said, the size histogram, errors and
 * auto-export. What the page shows is checked in a browser by
 * tests/browser/. */
#define _GNU_SOURCE
#include <memscope.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    if (!cJSON_IsNumber(v))
        fail_msg("no number %s", key);
    return v->valuedouble;
}

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strcasestr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* Export t to dir/name; @return the page (free it) and its data in *data. */
static char *export_page(ms_tracker *t, const char *dir, const char *name, cJSON **data)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(ms_export_html(t, path), 0);
    char *html = slurp_file(path, NULL);
    assert_non_null(html);
    char *json = html_data(html);
    assert_non_null(json);
    *data = cJSON_Parse(json);
    assert_non_null(*data);
    free(json);
    return html;
}

/* ---------------------------------------------------------------- cases */

static void page_should_be_self_contained_with_the_data(void **state)
{
    (void)state;
    char dir[4096];
    make_temp_dir(dir, sizeof dir);
    ms_tracker *t = ms_tracker_new();
    assert_non_null(t);
    char *kept = malloc(300), *gone = malloc(40);
    assert_non_null(kept);
    assert_non_null(gone);
    TRACK(t, kept);
    TRACK(t, gone);
    MS_FREE(t, gone);

    cJSON *data;
    char *html = export_page(t, dir, "report.html", &data);
    assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    // Nothing is fetched: no URL of any kind, no element that loads a file.
    assert_int_equal(occurrences(html, "http:"), 0);
    assert_int_equal(occurrences(html, "https:"), 0);
    assert_int_equal(occurrences(html, "//cdn"), 0);
    assert_int_equal(occurrences(html, "<link"), 0);
    assert_int_equal(occurrences(html, "<img"), 0);
    assert_int_equal(occurrences(html, "<iframe"), 0);
    assert_int_equal(occurrences(html, "@import"), 0);
    assert_int_equal(occurrences(html, "url(http"), 0);
    assert_int_equal(occurrences(html, " src="), 0);
    assert_int_equal(occurrences(html, "fetch("), 0);
    assert_int_equal(occurrences(html, "XMLHttpRequest"), 0);
    assert_int_equal(occurrences(html, "url(//"), 0);
    assert_int_equal(occurrences(html, "import("), 0);
    assert_int_equal(occurrences(html, "WebSocket"), 0);
    assert_int_equal(occurrences(html, "sendBeacon"), 0);
    assert_int_equal(occurrences(html, "EventSource"), 0);
    // and the policy forbids it anyway, before any script: nothing loads, and
    // only the page's own script (by its hash) runs.
    const char *csp = strstr(html, "Content-Security-Policy");
    assert_non_null(csp);
    assert_true(csp < strstr(html, "<script"));
    const char *csp_end = strchr(csp, '>');
    char policy[512];
    snprintf(policy, sizeof policy, "%.*s", (int)(csp_end - csp), csp);
    assert_non_null(strstr(policy, "default-src 'none'"));
    assert_non_null(strstr(policy, "script-src 'sha256-"));
    assert_null(strstr(policy, "script-src 'unsafe-inline'"));
    // Two scripts: the data and the page's own.
    assert_int_equal(occurrences(html, "<script"), 2);
    assert_int_equal(occurrences(html, "</script>"), 2);

    // The embedded figures are the tracker's.
    ms_memory_stats st = ms_tracker_stats(t);
    assert_string_equal(cJSON_GetObjectItem(data, "format")->valuestring, "memscope");
    const cJSON *stats = cJSON_GetObjectItem(data, "stats");
    assert_int_equal(num(stats, "peak_memory"), st.peak_memory);
    assert_int_equal(num(stats, "current_memory"), st.current_memory);
    assert_int_equal(num(stats, "total_allocations"), 2);
    const cJSON *active = cJSON_GetObjectItem(data, "active_allocations");
    assert_int_equal(cJSON_GetArraySize(active), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(active, 0), "name")->valuestring,
                        "kept");
    const cJSON *omitted = cJSON_GetObjectItem(data, "omitted");
    assert_non_null(omitted);
    assert_int_equal(num(omitted, "active_allocations"), 0);
    cJSON_Delete(data);
    free(html);

    MS_FREE(t, kept);
    ms_tracker_free(t);
    remove_tree(dir);
}

static void hostile_names_should_stay_text(void **state)
{
    (void)state;
    static const ms_site hostile = {
        "</script><script>alert(1)</script>", "<!-- char * --> ]]>", "x</SCRIPT >.c", 7,
        "f&amp;<img src=x onerror=alert(2)>",
    };
    char dir[4096];
    make_temp_dir(dir, sizeof dir);
    ms_tracker *t = ms_tracker_new();
    char *block = malloc(64);
    assert_non_null(block);
    ms_track_as(t, block, 64, &hostile);

    cJSON *data;
    char *html = export_page(t, dir, "hostile.html", &data);
    // None of it reaches the page as markup: no '<' of a name survives.
    assert_null(strstr(html, "alert(1)</script>"));
    assert_null(strstr(html, "<img"));
    assert_null(strstr(html, "<!-- char"));
    assert_null(strcasestr(html, "x</script"));
    assert_int_equal(occurrences(html, "</script"), 2);
    // and the data still holds the names exactly.
    const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(data, "active_allocations"), 0);
    assert_non_null(a);
    assert_string_equal(cJSON_GetObjectItem(a, "name")->valuestring, hostile.name);
    assert_string_equal(cJSON_GetObjectItem(a, "type")->valuestring, hostile.type);
    assert_string_equal(cJSON_GetObjectItem(a, "file")->valuestring, hostile.file);
    assert_string_equal(cJSON_GetObjectItem(a, "function")->valuestring, hostile.func);
    cJSON_Delete(data);
    free(html);

    ms_untrack(t, block);
    free(block);
    ms_tracker_free(t);
    remove_tree(dir);
}

/* 6000 live blocks: the page lists the 5000 largest and says what it left out. */
static void long_lists_should_be_capped_and_counted(void **state)
{
    (void)state;
    enum { N = 6000 };
    char dir[4096];
    make_temp_dir(dir, sizeof dir);
    ms_tracker *t = ms_tracker_new();
    static char *blocks[N];
    uint64_t smallest_1000 = 0;
    for (size_t i = 0; i < N; i++) {
        size_t size = 16 + i; // block i is larger than every block before it
        blocks[i] = malloc(size);
        assert_non_null(blocks[i]);
        ms_track_as(t, blocks[i], size, NULL);
        if (i < 1000)
            smallest_1000 += size;
    }
    cJSON *data;
    char *html = export_page(t, dir, "big.html", &data);
    const cJSON *active = cJSON_GetObjectItem(data, "active_allocations");
    assert_int_equal(cJSON_GetArraySize(active), 5000);
    assert_int_equal(num(cJSON_GetArrayItem(active, 0), "size"), 16 + N - 1);
    assert_int_equal(num(cJSON_GetArrayItem(active, 4999), "size"), 16 + 1000);
    const cJSON *omitted = cJSON_GetObjectItem(data, "omitted");
    assert_int_equal(num(omitted, "active_allocations"), 1000);
    assert_int_equal(num(omitted, "active_allocation_bytes"), smallest_1000);
    // The report's totals still count every block.
    assert_int_equal(num(cJSON_GetObjectItem(data, "report"), "active_allocations"), N);
    cJSON_Delete(data);
    free(html);

    // The JSON export is never capped.
    char path[4200];
    snprintf(path, sizeof path, "%s/big.json", dir);
    assert_int_equal(ms_export_json(t, path), 0);
    char *text = slurp_file(path, NULL);
    cJSON *full = cJSON_Parse(text);
    assert_non_null(full);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(full, "active_allocations")), N);
    assert_null(cJSON_GetObjectItem(full, "omitted"));
    cJSON_Delete(full);
    free(text);

    for (size_t i = 0; i < N; i++) {
        ms_untrack(t, blocks[i]);
        free(blocks[i]);
    }
    ms_tracker_free(t);
    remove_tree(dir);
}

/* 2500 sites with one live block each: 2000 leak groups and 1000 hotspots are
 * listed, and what is left out is counted. */
static void leak_groups_and_hotspots_should_be_capped_and_counted(void **state)
{
    (void)state;
    enum { N = 2500 };
    char dir[4096];
    make_temp_dir(dir, sizeof dir);
    ms_tracker *t = ms_tracker_new();
    static ms_site sites[N];
    static char names[N][16];
    static char *blocks[N];
    uint64_t smallest_500 = 0;
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "site_%zu", i);
        sites[i] = (ms_site){names[i], "char *", "caps.c", (unsigned)i + 1, "f"};
        size_t size = 100 + i; // site i's block is larger than those before it
        blocks[i] = malloc(size);
        assert_non_null(blocks[i]);
        ms_track_as(t, blocks[i], size, &sites[i]);
        if (i < 500)
            smallest_500 += size;
    }
    cJSON *data;
    char *html = export_page(t, dir, "caps.html", &data);
    const cJSON *leaks = cJSON_GetObjectItem(data, "leaks");
    assert_int_equal(cJSON_GetArraySize(leaks), 2000);
    assert_int_equal(num(cJSON_GetArrayItem(leaks, 0), "bytes"), 100 + N - 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(data, "hotspots")), 1000);
    const cJSON *omitted = cJSON_GetObjectItem(data, "omitted");
    assert_int_equal(num(omitted, "leak_groups"), 500);
    assert_int_equal(num(omitted, "leak_blocks"), 500);
    assert_int_equal(num(omitted, "leak_bytes"), smallest_500);
    assert_int_equal(num(omitted, "hotspots"), N - 1000);
    assert_int_equal(num(cJSON_GetObjectItem(data, "report"), "leaked_blocks"), N);
    cJSON_Delete(data);
    free(html);
    for (size_t i = 0; i < N; i++) {
        ms_untrack(t, blocks[i]);
        free(blocks[i]);
    }
    ms_tracker_free(t);
    remove_tree(dir);
}

static void histogram_should_count_every_allocation_by_size(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 2, 3, 4, 7, 8, 1000, 1024, 1025, 4096};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    char dir[4096];
    make_temp_dir(dir, sizeof dir);
    ms_tracker *t = ms_tracker_new();
    for (size_t i = 0; i < NS; i++) {
        char *p = malloc(sizes[i]);
        assert_non_null(p);
        ms_track_as(t, p, sizes[i], NULL);
        ms_untrack(t, p); // freed blocks count too: every allocation of the run
        free(p);
    }
    cJSON *data;
    char *html = export_page(t, dir, "sizes.html", &data);
    const cJSON *h = cJSON_GetObjectItem(data, "size_histogram");
    assert_true(cJSON_IsArray(h));
    // Buckets [0,0] [1,1] [2,3] [4,7] [8,15] [512,1023] [1024,2047] [4096,8191].
    static const struct {
        double min, max, count;
    } want[] = {{0, 0, 1},  {1, 1, 1},      {2, 3, 2},       {4, 7, 2},
                {8, 15, 1}, {512, 1023, 1}, {1024, 2047, 2}, {4096, 8191, 1}};
    assert_int_equal(cJSON_GetArraySize(h), sizeof want / sizeof want[0]);
    double total = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const cJSON *b = cJSON_GetArrayItem(h, (int)i);
        assert_int_equal(num(b, "min_bytes"), want[i].min);
        assert_int_equal(num(b, "max_bytes"), want[i].max);
        assert_int_equal(num(b, "count"), want[i].count);
        total += num(b, "count");
    }
    assert_int_equal(total, NS);
    cJSON_Delete(data);
    free(html);
    ms_tracker_free(t);
    remove_tree(dir);
}

static void bad_input_should_get_an_error(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/x.html", dir);
    assert_int_equal(ms_export_html(NULL, path), MS_ENULLTRACKER);
    ms_tracker *t = ms_tracker_new();
    assert_int_equal(ms_export_html(t, NULL), MS_EINVAL);
    assert_int_equal(ms_export_html(t, ""), MS_EINVAL);
    // An unwritable place: an error with the path in the message, no file left.
    assert_int_equal(ms_export_html(t, "/proc/memscope-test/x.html"), MS_EIO);
    assert_non_null(strstr(ms_last_error_message(), "/proc/memscope-test"));
    // A parent that is a file: nothing is left beside it either.
    char blocker[4200];
    snprintf(blocker, sizeof blocker, "%s/file", dir);
    FILE *f = fopen(blocker, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/file/x.html", dir);
    assert_int_equal(ms_export_html(t, path), MS_EIO);
    assert_int_equal(count_entries(dir), 1);
    ms_tracker_free(t);
    remove_tree(dir);
}

static void auto_export_should_write_html_for_an_html_path(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/auto/report.html", dir);
    ms_tracker *t = ms_tracker_new();
    assert_ptr_equal(ms_tracker_with_auto_export(t, path), t);
    int *x = malloc(sizeof *x);
    assert_non_null(x);
    TRACK(t, x);
    ms_tracker_free(t); // writes the page
    char *html = slurp_file(path, NULL);
    assert_non_null(html);
    char *json = html_data(html);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"x\""));
    free(json);
    free(html);
    free(x);
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(page_should_be_self_contained_with_the_data),
        cmocka_unit_test(hostile_names_should_stay_text),
        cmocka_unit_test(long_lists_should_be_capped_and_counted),
        cmocka_unit_test(leak_groups_and_hotspots_should_be_capped_and_counted),
        cmocka_unit_test(histogram_should_count_every_allocation_by_size),
        cmocka_unit_test(bad_input_should_get_an_error),
        cmocka_unit_test(auto_export_should_write_html_for_an_html_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
