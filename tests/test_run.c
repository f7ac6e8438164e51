/* test_run.c — `memscope run` end to end: small programs of ours (a known
 * leak, fork, 50 threads, exit() from a thread, SIGSEGV, an abort inside
 * free()) and real programs nobody here wrote (sort, python3, git). Each run
 * must leave a valid report with the right figures and PROG's exit status. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <memscope.h>
#include <fcntl.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

static char dir[512];

/* Run argv (NULL-terminated) with stdout to `out` and stderr to `err` (each
 * NULL: /dev/null). @return the exit status, 128+N for signal N. */
static int run_err(const char *const argv[], const char *out, const char *err)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *copy[32] = {0}; // execv's argv is not const
        for (int i = 0; argv[i] && i < 31; i++)
            copy[i] = strdup(argv[i]);
        int fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int efd = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(efd, 2);
        execv(copy[0], copy);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run(const char *const argv[], const char *out) { return run_err(argv, out, NULL); }

/* Parse the JSON report at path; fails the test if it is missing or invalid. */
static cJSON *report_at(const char *path)
{
    char *text = slurp_file(path, NULL);
    if (!text)
        fail_msg("no report at %s", path);
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root)
        fail_msg("the report at %s is not valid JSON", path);
    return root;
}

/* The same for a report `memscope run` wrote: it has capture's figures. */
static cJSON *report(const char *path)
{
    cJSON *root = report_at(path);
    assert_non_null(cJSON_GetObjectItem(root, "report"));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(root, "capture")));
    return root;
}

static double num(const cJSON *o, const char *path)
{
    // "a.b" walks objects
    char key[64];
    const char *dot = strchr(path, '.');
    if (dot) {
        snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
        return num(cJSON_GetObjectItem(o, key), dot + 1);
    }
    const cJSON *v = cJSON_GetObjectItem(o, path);
    if (!cJSON_IsNumber(v))
        fail_msg("no number %s in the report", path);
    return v->valuedouble;
}

/* Live blocks allocated by fn, summed over its groups (a compiler may unroll
 * a loop into several call sites). @return false if there are none. */
static bool leaks_of(const cJSON *root, const char *fn, double *count, double *bytes)
{
    *count = *bytes = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(root, "leaks"))
    {
        const cJSON *f = cJSON_GetObjectItem(l, "function");
        if (cJSON_IsString(f) && strcmp(f->valuestring, fn) == 0) {
            *count += num(l, "count");
            *bytes += num(l, "bytes");
        }
    }
    return *count > 0;
}

/* fn's live blocks in root are exactly n blocks of `bytes` in all. */
#define assert_leaks(root, fn, n, bytes)                                                           \
    do {                                                                                           \
        double count_, bytes_;                                                                     \
        assert_true(leaks_of((root), (fn), &count_, &bytes_));                                     \
        assert_int_equal(count_, (n));                                                             \
        assert_int_equal(bytes_, (bytes));                                                         \
    } while (0)

/* The first leak group whose function is fn, or NULL. */
static const cJSON *leak_from(const cJSON *root, const char *fn)
{
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(root, "leaks"))
    {
        const cJSON *f = cJSON_GetObjectItem(l, "function");
        if (cJSON_IsString(f) && strcmp(f->valuestring, fn) == 0)
            return l;
    }
    return NULL;
}

/* Whether the stack of leak group l has a frame naming fn. */
static bool stack_has(const cJSON *l, const char *fn)
{
    size_t n = strlen(fn);
    const cJSON *fr;
    cJSON_ArrayForEach(fr, cJSON_GetObjectItem(l, "stack"))
    {
        const char *v = fr->valuestring;
        if (strncmp(v, fn, n) == 0 && (v[n] == ' ' || v[n] == '+'))
            return true;
    }
    return false;
}

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* The report of `memscope run [--stacks STACKS] -o NAME -- PROGS/PROG [ARG]`
 * (STACKS, ARG: none when NULL; ARG under PROGS too), which must exit 0. */
static cJSON *report_of_run(const char *prog, const char *arg, const char *name, const char *stacks)
{
    char out[600], path[600], argp[600];
    path_in(out, sizeof out, name);
    snprintf(path, sizeof path, "%s/%s", PROGS, prog);
    snprintf(argp, sizeof argp, "%s/%s", PROGS, arg ? arg : "");
    const char *argv[10] = {MEMSCOPE_CLI, "run"};
    size_t n = 2;
    if (stacks) {
        argv[n++] = "--stacks";
        argv[n++] = stacks;
    }
    argv[n++] = "-o";
    argv[n++] = out;
    argv[n++] = "--";
    argv[n++] = path;
    if (arg)
        argv[n++] = argp;
    argv[n] = NULL;
    assert_int_equal(run(argv, NULL), 0);
    return report(out);
}

static void leak_should_be_found_with_its_function(void **state)
{
    (void)state;
    char out[600];
    path_in(out, sizeof out, "leak.json");
    const char *argv[] = {MEMSCOPE_CLI, "run", "-o", out, "--", PROGS "/leak37", "7", NULL};
    assert_int_equal(run(argv, NULL), 7); // the exit status passes through
    cJSON *root = report(out);
    const cJSON *l = leak_from(root, "leak_here");
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 37);
    assert_int_equal(num(l, "bytes"), 3700);
    assert_int_equal(num(root, "stats.unmatched_deallocations"), 0);
    assert_int_equal(num(root, "stats.dropped_events"), 0);
    cJSON_Delete(root);

    // With stacks: leak_here and its caller main are in the stack.
    const char *argv2[] = {MEMSCOPE_CLI, "run", "--stacks",      "16", "-o",
                           out,          "--",  PROGS "/leak37", NULL};
    assert_int_equal(run(argv2, NULL), 0);
    root = report(out);
    l = leak_from(root, "leak_here");
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 37);
    assert_int_equal(num(l, "bytes"), 3700);
    assert_true(stack_has(l, "leak_here"));
    assert_true(stack_has(l, "main"));
    cJSON_Delete(root);
}

static void html_report_should_show_the_leak(void **state)
{
    (void)state;
    char out[600];
    path_in(out, sizeof out, "leak.html");
    const char *argv[] = {MEMSCOPE_CLI, "run", "--format",      "html", "-o",
                          out,          "--",  PROGS "/leak37", NULL};
    assert_int_equal(run(argv, NULL), 0);
    char *html = slurp_file(out, NULL);
    assert_non_null(html);
    assert_non_null(strstr(html, "<!DOCTYPE html>"));
    char *data = html_data(html);
    assert_non_null(data);
    cJSON *root = cJSON_Parse(data);
    assert_non_null(root);
    const cJSON *l = leak_from(root, "leak_here");
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 37);
    assert_int_equal(num(l, "bytes"), 3700);
    cJSON_Delete(root);
    free(data);
    free(html);

    // The path's extension must agree with --format.
    path_in(out, sizeof out, "leak.json");
    const char *wrong[] = {MEMSCOPE_CLI, "run", "--format",      "html", "-o",
                           out,          "--",  PROGS "/leak37", NULL};
    assert_int_equal(run(wrong, NULL), 2);
}

static void report_should_read_a_trace(void **state)
{
    (void)state;
    char trace[600], out[600], cut[600];
    path_in(trace, sizeof trace, "t.msb");
    path_in(out, sizeof out, "report.txt");
    path_in(cut, sizeof cut, "cut.msb");
    ms_tracker *t = ms_tracker_new();
    ms_tracker_with_sampling(t, (ms_sampling_config){1.0, true, 8}); // stacks too
    ms_tracker_with_monitor_interval(t, 20);
    ms_tracker_with_system_monitoring(t);
    static char *keep[37];
    for (int i = 0; i < 100; i++) {
        char *p = malloc(100);
        TRACK(t, p);
        if (i < 37)
            keep[i] = p;
        else
            MS_FREE(t, p);
    }
    // Two system samples after the baseline (waited for, not slept for: a
    // loaded machine may run the sampler late).
    uint64_t seen = ms_current_system_snapshot(t).timestamp;
    for (int i = 0, samples = 0; i < 20000 && samples < 2; i++) {
        usleep(1000);
        uint64_t at = ms_current_system_snapshot(t).timestamp;
        samples += at != seen;
        seen = at;
    }
    ms_tracker_stop_system_monitoring(t);
    assert_int_equal(ms_export_binary(t, trace), 0);
    const char *argv[] = {MEMSCOPE_CLI, "report", trace, NULL};
    assert_int_equal(run(argv, out), 0);
    char *said = slurp_file(out, NULL);
    assert_non_null(said);
    assert_non_null(strstr(said, "complete"));
    assert_non_null(strstr(said, "163 events (100 allocations, 63 frees, 0 reallocations)"));
    assert_non_null(strstr(said, "in 37 blocks at the end"));
    free(said);
    // Cut short: read to the last whole block, and said.
    size_t n = 0;
    char *whole = slurp_file(trace, &n);
    assert_non_null(whole);
    FILE *f = fopen(cut, "wb");
    assert_non_null(f);
    fwrite(whole, 1, n - 10, f);
    fclose(f);
    const char *argv2[] = {MEMSCOPE_CLI, "report", cut, NULL};
    assert_int_equal(run(argv2, out), 0);
    said = slurp_file(out, NULL);
    assert_non_null(strstr(said, "TRUNCATED"));
    free(said);
    // ... and so do its reports, on stderr (the JSON is still written).
    char err[600], cutjson[600];
    path_in(err, sizeof err, "report.err");
    path_in(cutjson, sizeof cutjson, "cut.json");
    const char *argv3[] = {MEMSCOPE_CLI, "report", cut, "--json", cutjson, NULL};
    assert_int_equal(run_err(argv3, NULL, err), 0);
    said = slurp_file(err, NULL);
    assert_non_null(strstr(said, "TRUNCATED"));
    free(said);
    cJSON *cutr = report_at(cutjson); // and says so itself
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(cutr, "trace"), "complete")));
    cJSON_Delete(cutr);
    const char *argv4[] = {MEMSCOPE_CLI, "report", trace, "--json", cutjson, NULL};
    assert_int_equal(run_err(argv4, NULL, err), 0); // the whole trace: no warning
    said = slurp_file(err, NULL);
    assert_null(strstr(said, "TRUNCATED"));
    free(said);
    // Damaged: an error, exit status 1.
    whole[n / 2] ^= 1;
    f = fopen(cut, "wb");
    fwrite(whole, 1, n, f);
    fclose(f);
    assert_int_equal(run(argv2, out), 1);
    free(whole);
    // The JSON rebuilt from the trace in another process is the JSON exported
    // now, but for when each was made.
    char direct[600], rebuilt[600];
    path_in(direct, sizeof direct, "direct.json");
    path_in(rebuilt, sizeof rebuilt, "rebuilt.json");
    assert_int_equal(ms_export_json(t, direct), 0);
    const char *json[] = {MEMSCOPE_CLI, "report", trace, "--json", rebuilt, NULL};
    assert_int_equal(run(json, NULL), 0);
    cJSON *a = report_at(direct), *b = report_at(rebuilt);
    assert_null(cJSON_GetObjectItem(a, "trace")); // only a rebuilt run has one
    cJSON *from = cJSON_GetObjectItem(b, "trace");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(from, "complete")));
    assert_int_equal(num(from, "lost_events"), 0);
    cJSON_DeleteItemFromObject(b, "trace");
    for (cJSON *d = a; d; d = d == a ? b : NULL) {
        cJSON_DeleteItemFromObject(d, "generated_at_ns");
        cJSON *r = cJSON_GetObjectItem(d, "report");
        cJSON_DeleteItemFromObject(r, "duration_sec");
        cJSON_DeleteItemFromObject(r, "allocation_rate_per_sec");
        cJSON_DeleteItemFromObject(r, "deallocation_rate_per_sec");
        cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(d, "active_allocations"))
            cJSON_DeleteItemFromObject(e, "age_ns");
    }
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(a, "system_snapshots")) >= 2);
    assert_true(cJSON_GetArraySize(
                    cJSON_GetArrayItem(cJSON_GetObjectItem(a, "leaks"), 0)
                        ? cJSON_GetObjectItem(
                              cJSON_GetArrayItem(cJSON_GetObjectItem(a, "leaks"), 0), "stack")
                        : NULL) >= 2);
    assert_true(cJSON_Compare(a, b, true));
    cJSON_Delete(a);
    cJSON_Delete(b);
    for (int i = 0; i < 37; i++)
        MS_FREE(t, keep[i]);
    ms_tracker_free(t);
}

/* memscope run --format bin streams the run; memscope report reads it back. */
static void bin_format_should_stream_the_run(void **state)
{
    (void)state;
    char trace[600], out[600], json[600];
    path_in(trace, sizeof trace, "run.msb");
    path_in(out, sizeof out, "said.txt");
    path_in(json, sizeof json, "from-trace.json");
    const char *argv[] = {MEMSCOPE_CLI, "run", "--format",      "bin", "-o",
                          trace,        "--",  PROGS "/leak37", NULL};
    assert_int_equal(run_err(argv, NULL, out), 0);
    char *said = slurp_file(out, NULL);
    assert_non_null(said);
    assert_non_null(strstr(said, "blocks (3.6 KiB) live at exit"));
    assert_non_null(strstr(said, "leak_here"));
    free(said);
    const char *rep[] = {MEMSCOPE_CLI, "report", trace, "--json", json, "--summary", NULL};
    assert_int_equal(run(rep, out), 0);
    said = slurp_file(out, NULL);
    assert_non_null(strstr(said, "streamed, complete"));
    assert_non_null(strstr(said, "leak_here"));
    assert_non_null(strstr(said, "hotspots"));
    assert_null(strstr(said, "0x7ff")); // hotspots name functions, not stand-in addresses
    free(said);
    cJSON *root = report(json);
    const cJSON *l = leak_from(root, "leak_here");
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 37);
    assert_int_equal(num(l, "bytes"), 3700);
    assert_int_equal(num(root, "stats.stream_lost_events"), 0);
    bool named = false;
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItem(root, "hotspots"))
    {
        const cJSON *fn = cJSON_GetObjectItem(h, "function");
        named |= cJSON_IsString(fn) && strcmp(fn->valuestring, "leak_here") == 0;
    }
    assert_true(named);
    cJSON_Delete(root);
    // A fatal signal finishes the trace (the handler takes capture's arena:
    // the I/O thread must not free its blocks), and the status is the signal's.
    path_in(trace, sizeof trace, "segv.msb");
    const char *sv[] = {MEMSCOPE_CLI, "run", "--format",    "bin", "-o",
                        trace,        "--",  PROGS "/segv", NULL};
    assert_int_equal(run(sv, NULL), 128 + SIGSEGV);
    const char *rep3[] = {MEMSCOPE_CLI, "report", trace, NULL};
    assert_int_equal(run(rep3, out), 0);
    said = slurp_file(out, NULL);
    assert_non_null(strstr(said, "streamed, complete"));
    assert_non_null(strstr(said, "640 B live in 5 blocks"));
    free(said);

    // A child streams its own trace only with --follow-children.
    char sub[600], sub2[600], ft[700];
    path_in(sub, sizeof sub, "forks");
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(ft, sizeof ft, "%s/f.msb", sub);
    const char *fk[] = {MEMSCOPE_CLI, "run", "--format",      "bin", "-o",
                        ft,           "--",  PROGS "/forker", NULL};
    assert_int_equal(run(fk, NULL), 0);
    assert_int_equal(count_entries(sub), 1);
    path_in(sub2, sizeof sub2, "forks2");
    assert_int_equal(mkdir(sub2, 0755), 0);
    snprintf(ft, sizeof ft, "%s/f.msb", sub2);
    const char *fk2[] = {MEMSCOPE_CLI, "run", "--follow-children", "--format", "bin", "-o",
                         ft,           "--",  PROGS "/forker",     NULL};
    assert_int_equal(run(fk2, NULL), 0);
    assert_int_equal(count_entries(sub2), 2);
    const char *rep2[] = {MEMSCOPE_CLI, "report", ft, NULL};
    assert_int_equal(run(rep2, out), 0);
    said = slurp_file(out, NULL);
    assert_non_null(strstr(said, "streamed, complete"));
    assert_non_null(strstr(said, "4.2 KiB live in 1 blocks")); // the parent's 4321 bytes
    free(said);

    // The extension must agree with --format.
    path_in(trace, sizeof trace, "run.json");
    const char *wrong[] = {MEMSCOPE_CLI, "run", "--format",      "bin", "-o",
                           trace,        "--",  PROGS "/leak37", NULL};
    assert_int_equal(run(wrong, NULL), 2);
}

/* One function reached by two stacks: two leak groups in the report, one
 * line of memscope run's summary with both added up. */
static void summary_should_add_up_the_stacks_of_one_place(void **state)
{
    (void)state;
    char out[600], said_at[600];
    path_in(out, sizeof out, "two_paths.json");
    path_in(said_at, sizeof said_at, "two_paths.txt");
    const char *argv[] = {MEMSCOPE_CLI, "run", "--stacks",         "16", "-o",
                          out,          "--",  PROGS "/two_paths", NULL};
    assert_int_equal(run_err(argv, NULL, said_at), 0);
    cJSON *root = report(out);
    size_t groups = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(root, "leaks"))
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(l, "function");
        groups += cJSON_IsString(fn) && strcmp(fn->valuestring, "leak_here") == 0;
    }
    assert_int_equal(groups, 2); // path_a's and path_b's
    cJSON_Delete(root);
    char *said = slurp_file(said_at, NULL);
    assert_non_null(said);
    const char *line = strstr(said, "3.6 KiB in     37 blocks from leak_here at ");
    assert_non_null(line);
    assert_null(strstr(strstr(line, "from leak_here") + 1, "from leak_here")); // once
    free(said);
}

static void stacks_should_go_on_past_code_without_frame_pointers(void **state)
{
    (void)state;
    // Built with frame pointers, allocating in a comparison function that
    // glibc's qsort calls: the chain ends in qsort, and the unwinder goes on
    // to sort_some and main. The comparison is called at several depths of
    // qsort's recursion, so the 6 blocks fall into a few groups.
    cJSON *root = report_of_run("through_libc", NULL, "through_libc.json", "24");
    double count = 0, bytes = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(root, "leaks"))
    {
        const cJSON *f = cJSON_GetObjectItem(l, "function");
        if (!cJSON_IsString(f) || strcmp(f->valuestring, "compare_and_leak") != 0)
            continue;
        count += num(l, "count");
        bytes += num(l, "bytes");
        assert_true(stack_has(l, "sort_some"));
        assert_true(stack_has(l, "main"));
    }
    assert_int_equal(count, 6);
    assert_int_equal(bytes, 432);
    cJSON_Delete(root);
}

static void stacks_should_not_skip_or_make_up_frames_through_callbacks(void **state)
{
    (void)state;
    // Callbacks built with frame pointers, called by code without them: one
    // leaves the frame register alone (the chain skips its caller), one
    // points it at a made-up frame (the chain takes decoy for its caller),
    // a signal handler that raise() runs (the chain goes through the
    // signal frame), and a call site learnt where the chain looked right.
    cJSON *root = report_of_run("callbacks", NULL, "callbacks.json", "20");
    static const struct {
        const char *fn, *through, *caller;
        int count;
    } want[] = {{"leak_in_callback", "visit_twice", "through_plain", 10},
                {"leak_in_scrambled", "scramble_visit", "through_scrambled", 5},
                {"leak_in_handler", "raise", "through_raise", 5}};
    double count[3] = {0, 0, 0};
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(root, "leaks"))
    {
        const cJSON *f = cJSON_GetObjectItem(l, "function");
        for (size_t i = 0; i < 3 && cJSON_IsString(f); i++) {
            if (strcmp(f->valuestring, want[i].fn) != 0)
                continue;
            assert_true(stack_has(l, want[i].through));
            assert_true(stack_has(l, want[i].caller));
            assert_true(stack_has(l, "main"));
            assert_false(stack_has(l, "decoy"));
            count[i] += num(l, "count");
        }
    }
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(count[i], want[i].count);
    // A call site without a frame pointer, learnt at the bottom of a
    // recursion whose chain looks right there: its other callers are named.
    double direct = 0, in_all = 0;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(root, "leaks"))
    {
        const cJSON *f = cJSON_GetObjectItem(l, "function");
        if (!cJSON_IsString(f) || strcmp(f->valuestring, "leak_direct") != 0)
            continue;
        assert_true(stack_has(l, "main"));
        in_all += num(l, "count");
        if (stack_has(l, "direct_from_here"))
            direct += num(l, "count");
        else
            assert_true(stack_has(l, "recurse_into"));
    }
    assert_int_equal(in_all, 5);
    assert_int_equal(direct, 4);
    cJSON_Delete(root);
}

static void stacks_should_follow_a_library_loaded_where_another_was(void **state)
{
    (void)state;
    char out[600];
    path_in(out, sizeof out, "reload.json");
    // Two builds of one library, with other frame layouts at the same return
    // addresses, loaded in turn at one address: what walks learnt of the
    // first must not be used for the second (dlclose forgets it).
    const char *argv[] = {MEMSCOPE_CLI,
                          "run",
                          "--stacks",
                          "20",
                          "-o",
                          out,
                          "--",
                          PROGS "/reload",
                          PROGS "/libreload_a.so",
                          PROGS "/libreload_b.so",
                          NULL};
    // The loader may place the second elsewhere when a mapping of the
    // process (a thread's record segment, say) took the hole meanwhile:
    // about one run in twelve. Each run is tried afresh.
    int rc = 3;
    for (int attempt = 0; attempt < 8 && rc == 3; attempt++)
        rc = run(argv, NULL);
    if (rc == 3)
        fail_msg("the second library was not loaded where the first was: nothing is tested");
    assert_int_equal(rc, 0);
    cJSON *root = report(out);
    int groups = 0, through_second = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(root, "leaks"))
    {
        if (num(l, "bytes") != 480)
            continue;
        groups++;
        assert_int_equal(num(l, "count"), 20);
        assert_true(stack_has(l, "call"));
        assert_true(stack_has(l, "main"));
        through_second += stack_has(l, "second");
    }
    assert_int_equal(groups, 2);
    assert_int_equal(through_second, 1);
    cJSON_Delete(root);
}

static void stacks_should_be_whole_with_or_without_frame_pointers(void **state)
{
    (void)state;
    char out[600];
    path_in(out, sizeof out, "nofp.json");
    // Without frame pointers: the unwinder names the whole chain, each time.
    const char *argv[] = {MEMSCOPE_CLI, "run", "--stacks",    "16", "-o",
                          out,          "--",  PROGS "/nofp", NULL};
    assert_int_equal(run(argv, NULL), 0);
    cJSON *root = report(out);
    const cJSON *l = leak_from(root, "leak_deep");
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 5); // one group: every call gave the same stack
    assert_int_equal(num(l, "bytes"), 240);
    assert_true(stack_has(l, "middle"));
    assert_true(stack_has(l, "outer"));
    assert_true(stack_has(l, "main"));
    cJSON_Delete(root);

    // With frame pointers, malloc straight from main: a chain of two frames,
    // which the unwinder confirms once; later calls give the same stack.
    path_in(out, sizeof out, "shallow.json");
    const char *argv2[] = {MEMSCOPE_CLI, "run", "--stacks",       "16", "-o",
                           out,          "--",  PROGS "/shallow", NULL};
    assert_int_equal(run(argv2, NULL), 0);
    root = report(out);
    l = leak_from(root, "main");
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 4);
    assert_int_equal(num(l, "bytes"), 96);
    assert_true(stack_has(l, "main"));
    cJSON_Delete(root);

    // Through a wrapper without a frame pointer that leaves the register
    // alone, operator new: the chain alone would skip its caller, and the
    // blocks are placed in that caller.
    path_in(out, sizeof out, "wrapped.json");
    const char *argv3[] = {MEMSCOPE_CLI, "run", "--stacks",       "16", "-o",
                           out,          "--",  PROGS "/wrapped", NULL};
    assert_int_equal(run(argv3, NULL), 0);
    root = report(out);
    l = leak_from(root, "make_one");
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 7); // one group: every call gave the same stack
    assert_int_equal(num(l, "bytes"), 280);
    assert_true(stack_has(l, "_Znwm") || stack_has(l, "operator new"));
    assert_true(stack_has(l, "make_one"));
    assert_true(stack_has(l, "main"));
    l = leak_from(root, "clobber_alloc"); // a short chain from the site learnt above
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 3);
    assert_true(stack_has(l, "make_two"));
    assert_true(stack_has(l, "main"));
    assert_leaks(root, "main", 2, 16);
    cJSON_Delete(root);
    // A frame register that points into a caller's data, and a walk on a
    // coroutine's stack.
    path_in(out, sizeof out, "odd.json");
    const char *argv5[] = {MEMSCOPE_CLI, "run", "--stacks",          "16", "-o",
                           out,          "--",  PROGS "/odd_stacks", NULL};
    assert_int_equal(run(argv5, NULL), 0);
    root = report(out);
    l = leak_from(root, "holdp_alloc");
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 5); // one group: no walk read the data as frames
    assert_true(stack_has(l, "user"));
    assert_true(stack_has(l, "main"));
    int in_co = 0;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(root, "leaks"))
    {
        in_co += stack_has(l, "alloc_here") && stack_has(l, "in_coroutine");
    }
    assert_int_equal(in_co, 1);
    cJSON_Delete(root);

    // Two frames: the wrapper and its caller, still.
    const char *argv3b[] = {MEMSCOPE_CLI, "run", "--stacks",       "2", "-o",
                            out,          "--",  PROGS "/wrapped", NULL};
    assert_int_equal(run(argv3b, NULL), 0);
    root = report(out);
    l = leak_from(root, "make_one");
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 7);
    cJSON_Delete(root);

#ifdef HAVE_MANGLED_PROG
    // A C++ name, demangled by the C++ runtime the program loaded.
    path_in(out, sizeof out, "mangled.json");
    const char *argv4[] = {MEMSCOPE_CLI, "run", "-o", out, "--", PROGS "/mangled", NULL};
    assert_int_equal(run(argv4, NULL), 0);
    root = report(out);
    assert_leaks(root, "leak_nodes()", 3, 48);
    cJSON_Delete(root);
#endif
}

/* Blocks from libc's strdup and strndup in a C program are placed in their
 * callers, with stacks or without; and a program that asks glibc for its
 * stack's attributes runs to its end under --stacks (it deadlocked). */
static void blocks_from_strdup_should_be_placed_in_its_caller(void **state)
{
    (void)state;
    for (int stacks = 0; stacks < 2; stacks++) {
        cJSON *root = report_of_run("dup", NULL, stacks ? "dup_stacks.json" : "dup.json",
                                    stacks ? "8" : NULL);
        assert_leaks(root, "dup_three", 3, 12);
        assert_leaks(root, "ndup_four", 4, 16);
        cJSON_Delete(root);
    }
    char out[600];
    path_in(out, sizeof out, "getattr.json");
    char printed[600];
    path_in(printed, sizeof printed, "getattr.out");
    const char *argv[] = {MEMSCOPE_CLI, "run", "--stacks",       "8", "-o",
                          out,          "--",  PROGS "/getattr", NULL};
    assert_int_equal(run(argv, printed), 0);
    FILE *f = fopen(printed, "r");
    assert_non_null(f);
    char line[64] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "done\n");
}

#ifdef HAVE_MANGLED_PROG
/* Whether the report has a hotspot in function fn, and none in operator new
 * or, when `strdup_too`, strdup (the loader has a strdup of its own, which
 * is not libc's and is named as it is). */
static bool hotspot_in(const cJSON *root, const char *fn, bool strdup_too)
{
    bool found = false;
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItem(root, "hotspots"))
    {
        const cJSON *f = cJSON_GetObjectItem(h, "function");
        if (!cJSON_IsString(f))
            continue;
        if (strncmp(f->valuestring, "operator new", 12) == 0 ||
            (strdup_too &&
             (strcmp(f->valuestring, "strdup") == 0 || strcmp(f->valuestring, "__strdup") == 0)))
            fail_msg("a hotspot in %s", f->valuestring);
        found |= strcmp(f->valuestring, fn) == 0;
    }
    return found;
}

/* Blocks from the C++ runtime's operator new (plain, array, nothrow) and from
 * strdup are placed where the program called them, with stacks or without. */
static void blocks_from_new_should_be_placed_in_its_caller(void **state)
{
    (void)state;
    static const struct {
        const char *fn;
        int count, bytes;
    } want[] = {
        {"new_some", 5, 240}, {"new_array", 4, 288}, {"new_nothrow", 3, 168}, {"dup_some", 2, 12}};
    for (int stacks = 0; stacks < 2; stacks++) {
        cJSON *root = report_of_run(
            "cxx_new", NULL, stacks ? "cxx_new_stacks.json" : "cxx_new.json", stacks ? "16" : NULL);
        for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
            double count = 0, bytes = 0;
            if (!leaks_of(root, want[i].fn, &count, &bytes))
                fail_msg("no leak placed in %s (stacks: %d)", want[i].fn, stacks);
            assert_int_equal(count, want[i].count);
            assert_int_equal(bytes, want[i].bytes);
            assert_true(hotspot_in(root, want[i].fn, true));
            if (stacks)
                assert_true(stack_has(leak_from(root, want[i].fn), "main"));
        }
        cJSON_Delete(root);
    }
}

static void blocks_from_new_in_a_plugin_should_be_placed_in_its_caller(void **state)
{
    (void)state;
    // The C++ runtime comes with the plugin, after capture started: its
    // operator new is found the first time a block comes from it, in the
    // plugin's constructor too.
    for (int stacks = 0; stacks < 2; stacks++) {
        cJSON *root =
            report_of_run("late_cxx", "libnew_plugin.so",
                          stacks ? "late_cxx_stacks.json" : "late_cxx.json", stacks ? "16" : NULL);
        double count = 0, bytes = 0;
        if (!leaks_of(root, "plugin_new_some", &count, &bytes))
            fail_msg("no leak placed in plugin_new_some (stacks: %d)", stacks);
        assert_int_equal(count, 6);
        assert_int_equal(bytes, 240);
        assert_true(hotspot_in(root, "plugin_new_some", false));
        count = bytes = 0;
        if (!leaks_of(root, "plugin_start", &count, &bytes))
            fail_msg("no leak placed in plugin_start (stacks: %d)", stacks);
        assert_int_equal(count, 3);
        assert_int_equal(bytes, 72);
        if (stacks)
            assert_true(stack_has(leak_from(root, "plugin_new_some"), "main"));
        cJSON_Delete(root);
    }
}
#endif

static void fork_should_leave_the_parents_report(void **state)
{
    (void)state;
    char out[600];
    path_in(out, sizeof out, "fork.json");
    const char *argv[] = {MEMSCOPE_CLI, "run", "-o", out, "--", PROGS "/forker", NULL};
    assert_int_equal(run(argv, NULL), 0);
    cJSON *root = report(out);
    const cJSON *l = leak_from(root, "main");
    assert_non_null(l);
    assert_int_equal(num(l, "bytes"), 4321); // the parent's block, not the child's 1234
    cJSON_Delete(root);
    assert_int_equal(count_entries(dir), 1); // no child report beside it

    // --follow-children: one report per process.
    char sub[600];
    path_in(sub, sizeof sub, "follow");
    assert_int_equal(mkdir(sub, 0755), 0);
    char out2[700];
    snprintf(out2, sizeof out2, "%s/r.json", sub);
    const char *argv2[] = {MEMSCOPE_CLI, "run", "--follow-children", "-o",
                           out2,         "--",  PROGS "/forker",     NULL};
    assert_int_equal(run(argv2, NULL), 0);
    assert_int_equal(count_entries(sub), 2);
    root = report(out2);
    assert_int_equal(num(leak_from(root, "main"), "bytes"), 4321);
    cJSON_Delete(root);

    // Sampling: the child, not traced, frees blocks with a sampled header
    // (glibc would abort it on a pointer inside its block), and, traced,
    // records their frees.
    const char *argv3[] = {MEMSCOPE_CLI, "run", "-q", "--sample-rate", "0.5",
                           "-o",         out,   "--", PROGS "/forker", NULL};
    assert_int_equal(run(argv3, NULL), 0);
    char sub2[600], each[1024];
    path_in(sub2, sizeof sub2, "follow-sampled");
    assert_int_equal(mkdir(sub2, 0755), 0);
    snprintf(each, sizeof each, "%s/r.json", sub2);
    const char *argv4[] = {
        MEMSCOPE_CLI,    "run", "-q", "--follow-children", "--sample-rate", "0.5", "-o", each, "--",
        PROGS "/forker", NULL};
    assert_int_equal(run(argv4, NULL), 0);
    assert_int_equal(count_entries(sub2), 2);
    DIR *d = opendir(sub2);
    assert_non_null(d);
    int children = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "r.json") == 0)
            continue;
        // About 128 of the 256 blocks were sampled; unrecorded frees would
        // leave them live in the child's report, estimated at twice that.
        snprintf(each, sizeof each, "%s/%s", sub2, e->d_name);
        root = report(each);
        double count = 0, bytes = 0;
        leaks_of(root, "main", &count, &bytes); // at most the child's own 1234 bytes
        assert_true(count <= 2);
        cJSON_Delete(root);
        children++;
    }
    closedir(d);
    assert_int_equal(children, 1);
}

static void fifty_threads_should_be_counted(void **state)
{
    (void)state;
    char out[600];
    path_in(out, sizeof out, "threads.json");
    const char *argv[] = {MEMSCOPE_CLI, "run", "-o", out, "--", PROGS "/threads50", NULL};
    assert_int_equal(run(argv, NULL), 0);
    cJSON *root = report(out);
    const cJSON *l = leak_from(root, "work");
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 50);
    assert_int_equal(num(l, "bytes"), 50 * 200);
    assert_true(num(root, "report.thread_count") >= 51);
    assert_int_equal(num(root, "stats.dropped_events"), 0);
    cJSON_Delete(root);
}

/* Full capture folds on a thread of its own; sampling folds inline, so that a
 * program with one thread keeps glibc's lock-free malloc (docs/capture.md,
 * "No fold thread while sampling"). `tasks` exits with its thread count. */
static void sampling_should_add_no_thread(void **state)
{
    (void)state;
    char out[600];
    path_in(out, sizeof out, "tasks.json");
    const char *full[] = {MEMSCOPE_CLI, "run", "-q", "-o", out, "--", PROGS "/tasks", NULL};
    assert_int_equal(run(full, NULL), 2);
    const char *sampled[] = {MEMSCOPE_CLI, "run", "-q", "--sample-rate", "0.01",
                             "-o",         out,   "--", PROGS "/tasks",  NULL};
    assert_int_equal(run(sampled, NULL), 1);
    cJSON *root = report(out);
    assert_true(num(root, "stats.sampled_out") > 0);
    cJSON_Delete(root);
}

/* Threads that free each other's blocks, at the rate of a tight loop: the
 * fold must put each free after its allocation though both took the same
 * tick (docs/design.md, "The coarse clock"). The known leak is exact; what
 * the merge could not order is counted (replaced allocations, unseen frees),
 * and leaves a few blocks live by mistake: far fewer than 1 in 2000. (Before
 * the threads advanced the clock themselves, 1 in 70, and the leak was wrong.) */
static void blocks_freed_by_other_threads_should_close(void **state)
{
    (void)state;
    char out[600];
    path_in(out, sizeof out, "exchange.json");
    const char *argv[] = {MEMSCOPE_CLI, "run", "-o", out, "--", PROGS "/exchange", NULL};
    assert_int_equal(run(argv, NULL), 0);
    cJSON *root = report(out);
    const cJSON *l = leak_from(root, "leak_here");
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 37);
    assert_int_equal(num(l, "bytes"), 3700);
    double allocs = num(root, "stats.total_allocations"),
           live = num(root, "stats.active_allocations");
    assert_true(allocs > 900000);
    if (live - 37 > allocs / 2000)
        fail_msg("%.0f blocks live at exit, 37 leaked (%.0f allocations)", live, allocs);
    assert_int_equal(num(root, "stats.dropped_events"), 0);
    cJSON_Delete(root);
}

static void exit_from_a_thread_should_write_the_report(void **state)
{
    (void)state;
    char out[600];
    path_in(out, sizeof out, "exit.json");
    const char *argv[] = {MEMSCOPE_CLI, "run", "-o", out, "--", PROGS "/exit_thread", NULL};
    assert_int_equal(run(argv, NULL), 3);
    cJSON *root = report(out);
    assert_leaks(root, "work", 3, 3 * 64);
    cJSON_Delete(root);
}

/* The report of `memscope run [--follow-children] -o DIR/r.json -- quick_end HOW`
 * (a directory of its own), which must pass quick_end's status 5 on; its
 * leaks from leak_seven must be exact. */
static cJSON *quick_end_report(const char *how, bool follow, char *sub, size_t n)
{
    char name[64];
    snprintf(name, sizeof name, "quick-%s%s", how, follow ? "-follow" : "");
    path_in(sub, n, name);
    assert_int_equal(mkdir(sub, 0755), 0);
    char out[700], err[700];
    snprintf(out, sizeof out, "%s/r.json", sub);
    snprintf(err, sizeof err, "%s.err", sub);
    const char *argv[] = {MEMSCOPE_CLI,
                          "run",
                          follow ? "--follow-children" : "-q",
                          "-o",
                          out,
                          "--",
                          PROGS "/quick_end",
                          how,
                          NULL};
    // A handler that ends the process inside a fold of memscope's (the
    // program's thread folds when the fold thread falls behind) cannot have
    // the report written, and says so: then the run is made again.
    for (int tries = 0;; tries++) {
        int rc = run_err(argv, NULL, err);
        char *text = slurp_file(err, NULL);
        bool in_fold = text && strstr(text, "inside memscope's own fold");
        if (rc != 5 || (in_fold && tries == 4))
            fail_msg("quick_end %s: status %d (5 expected); stderr: %s", how, rc, text ? text : "");
        free(text);
        if (!in_fold)
            break;
    }
    cJSON *root = report(out);
    assert_leaks(root, "leak_seven", 7, 7 * 48);
    return root;
}

/* _exit, _Exit and quick_exit run no atexit handler: the report is written
 * on the way out all the same, by a process that has one to write. */
static void ending_without_exit_should_write_the_report(void **state)
{
    (void)state;
    char sub[600];
    const char *hows[] = {"_exit", "_Exit", "quick_exit", "handler"};
    for (size_t i = 0; i < sizeof hows / sizeof *hows; i++) {
        cJSON_Delete(quick_end_report(hows[i], false, sub, sizeof sub));
        assert_int_equal(count_entries(sub), 1);
    }

    // A followed child that ends with _exit writes its own report; one that
    // is not followed writes none, and leaves its parent's alone.
    cJSON_Delete(quick_end_report("fork", true, sub, sizeof sub));
    assert_int_equal(count_entries(sub), 2);
    DIR *d = opendir(sub);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "r.json") == 0)
            continue;
        char each[1024];
        snprintf(each, sizeof each, "%s/%s", sub, e->d_name);
        cJSON *root = report(each);
        double count, bytes;
        assert_leaks(root, "child_leak", 3, 3 * 32);
        assert_false(leaks_of(root, "leak_seven", &count, &bytes));
        cJSON_Delete(root);
    }
    closedir(d);
    cJSON *root = quick_end_report("fork", false, sub, sizeof sub);
    double count, bytes;
    assert_false(leaks_of(root, "child_leak", &count, &bytes));
    cJSON_Delete(root);
    assert_int_equal(count_entries(sub), 1);

    // A vfork child runs in its parent's memory: its _exit must neither
    // write the parent's report nor take it from the parent.
    cJSON_Delete(quick_end_report("vfork", true, sub, sizeof sub));
    assert_int_equal(count_entries(sub), 1);

    // A streamed trace is finished too: its writer thread frees what the
    // report's thread took from the crash arena (glibc once aborted on it).
    char trace[600], json[600];
    path_in(trace, sizeof trace, "quick.msb");
    path_in(json, sizeof json, "quick-msb.json");
    const char *streamed[] = {MEMSCOPE_CLI,       "run",   "-q", "-o", trace, "--",
                              PROGS "/quick_end", "_exit", NULL};
    assert_int_equal(run(streamed, NULL), 5);
    const char *read[] = {MEMSCOPE_CLI, "report", trace, "--json", json, NULL};
    assert_int_equal(run(read, NULL), 0);
    root = report_at(json);
    assert_true(leaks_of(root, "leak_seven", &count, &bytes));
    assert_int_equal(count, 7);
    cJSON_Delete(root);
}

/* A thread that dies of a signal or calls _exit while exit() has the report
 * written waits for that report, then ends the process as it would have
 * (the report was cut short before and never written). */
static void an_end_during_the_exit_report_should_wait_for_it(void **state)
{
    (void)state;
    const struct {
        const char *how;
        int status;
    } ends[] = {{"segv", 128 + SIGSEGV}, {"_exit", 4}};
    for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
        char out[600], name[64];
        snprintf(name, sizeof name, "end-in-report-%s.json", ends[i].how);
        path_in(out, sizeof out, name);
        const char *argv[] = {MEMSCOPE_CLI,           "run",       "-q", "-o", out, "--",
                              PROGS "/end_in_report", ends[i].how, NULL};
        assert_int_equal(run(argv, NULL), ends[i].status);
        cJSON *root = report(out);
        assert_leaks(root, "leak_many", 100000, 100000 * 24);
        cJSON_Delete(root);
    }
}

static void a_fatal_signal_should_still_write_the_report(void **state)
{
    (void)state;
    char out[600];
    path_in(out, sizeof out, "segv.json");
    const char *argv[] = {MEMSCOPE_CLI, "run", "-o", out, "--", PROGS "/segv", NULL};
    assert_int_equal(run(argv, NULL), 128 + SIGSEGV);
    cJSON *root = report(out);
    assert_leaks(root, "main", 5, 5 * 128);
    cJSON_Delete(root);

    // glibc aborts inside free(): the report is written without its heap.
    path_in(out, sizeof out, "abort.json");
    const char *argv2[] = {MEMSCOPE_CLI, "run", "-o", out, "--", PROGS "/abort_in_free", NULL};
    assert_int_equal(run(argv2, NULL), 128 + SIGABRT);
    root = report(out);
    assert_leaks(root, "main", 2, 2 * 256);
    cJSON_Delete(root);
}

static void bad_usage_should_say_why(void **state)
{
    (void)state;
    const char *none[] = {MEMSCOPE_CLI, "run", NULL};
    assert_int_equal(run(none, NULL), 2);
    const char *rate[] = {MEMSCOPE_CLI, "run", "--sample-rate", "2", "--", "/bin/true", NULL};
    assert_int_equal(run(rate, NULL), 2);
    const char *missing[] = {MEMSCOPE_CLI, "run", "--", "/nonexistent/program", NULL};
    assert_int_equal(run(missing, NULL), 127);
}

/* --monitor MS: system samples every MS ms in the report, taken by a thread
 * of the library's own, whose allocations are not the program's. */
static void monitor_should_add_system_samples(void **state)
{
    (void)state;
    char out[600];
    path_in(out, sizeof out, "monitored.json");
    const char *plain[] = {MEMSCOPE_CLI, "run",           "-q", "-o",  out,
                           "--",         PROGS "/leak37", "0",  "300", NULL};
    assert_int_equal(run(plain, NULL), 0);
    cJSON *root = report(out);
    double allocs = num(root, "report.total_allocations");
    assert_true(allocs >= 37); // leak_here's, and any of libc's
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "system_snapshots")), 0);
    cJSON_Delete(root);

    const char *mon[] = {MEMSCOPE_CLI, "run",           "-q", "--monitor", "10", "-o", out,
                         "--",         PROGS "/leak37", "0",  "300",       NULL};
    assert_int_equal(run(mon, NULL), 0);
    root = report(out);
    const cJSON *sys = cJSON_GetObjectItem(root, "system_snapshots");
    assert_true(cJSON_GetArraySize(sys) >= 3); // about 30 in 300 ms
    const cJSON *x;
    cJSON_ArrayForEach(x, sys)
    {
        assert_true(num(x, "memory_usage_bytes") > 0);
        assert_true(num(x, "thread_count") >= 1);
    }
    const cJSON *l = leak_from(root, "leak_here");
    assert_non_null(l);
    assert_int_equal(num(l, "count"), 37);
    assert_int_equal(num(l, "bytes"), 3700);
    assert_true(num(root, "report.total_allocations") == allocs);
    cJSON_Delete(root);

    // A history of 5: the rest overwritten, and counted. A binary trace keeps
    // the samples as they come, and the run rebuilt from it has them all.
    setenv("MEMSCOPE_MONITOR_HISTORY", "5", 1);
    assert_int_equal(run(mon, NULL), 0);
    unsetenv("MEMSCOPE_MONITOR_HISTORY");
    root = report(out);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "system_snapshots")), 5);
    assert_true(num(root, "report.system_snapshots_overwritten") >= 3);
    cJSON_Delete(root);
    char msb[600], back[600];
    path_in(msb, sizeof msb, "monitored.msb");
    path_in(back, sizeof back, "monitored-back.json");
    const char *bin[] = {MEMSCOPE_CLI, "run",           "-q", "--monitor", "10", "-o", msb,
                         "--",         PROGS "/leak37", "0",  "300",       NULL};
    assert_int_equal(run(bin, NULL), 0);
    const char *rebuild[] = {MEMSCOPE_CLI, "report", msb, "--json", back, NULL};
    assert_int_equal(run(rebuild, NULL), 0);
    root = report_at(back);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(root, "system_snapshots")) >= 8);
    cJSON_Delete(root);

    // A forked child has no sampler, and none of its parent's samples either.
    char sub[600], each[1024];
    path_in(sub, sizeof sub, "monitored-fork");
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(each, sizeof each, "%s/r.json", sub);
    const char *forked[] = {MEMSCOPE_CLI, "run", "-q", "--monitor",     "10",  "--follow-children",
                            "-o",         each,  "--", PROGS "/forker", "300", NULL};
    assert_int_equal(run(forked, NULL), 0);
    assert_int_equal(count_entries(sub), 2);
    DIR *d = opendir(sub);
    assert_non_null(d);
    int parents = 0, children = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(each, sizeof each, "%s/%s", sub, e->d_name);
        root = report(each);
        int n = cJSON_GetArraySize(cJSON_GetObjectItem(root, "system_snapshots"));
        if (strcmp(e->d_name, "r.json") == 0) {
            parents++;
            assert_true(n >= 3);
        } else {
            children++;
            assert_int_equal(n, 0);
            assert_int_equal(num(root, "report.system_snapshots_overwritten"), 0);
        }
        cJSON_Delete(root);
    }
    closedir(d);
    assert_int_equal(parents, 1);
    assert_int_equal(children, 1);

    const char *zero[] = {MEMSCOPE_CLI, "run", "--monitor", "0", "--", "/bin/true", NULL};
    assert_int_equal(run(zero, NULL), 2);
    const char *word[] = {MEMSCOPE_CLI, "run", "--monitor", "often", "--", "/bin/true", NULL};
    assert_int_equal(run(word, NULL), 2);
}

/* ------------------------------------------------------ real programs */

/* Run `prog args` natively and under memscope; the outputs must be equal and
 * the report valid with at least `min_allocs` allocations. */
/* Run prog natively, under `memscope run`, and under `memscope run
 * --sample-rate 0.3`: the same output each time, and a report of at least
 * `min_allocs` allocations (a third of them when sampled). Sampled blocks
 * carry a header the program must never see; every free recorded under
 * sampling is of a sampled block (none ignored). */
static void real_program(const char *prog, const char *const args[], double min_allocs)
{
    if (access(prog, X_OK) != 0) {
        print_message("skipped: %s is not installed\n", prog);
        return;
    }
    char native[600], traced[600], out[600];
    path_in(native, sizeof native, "native.out");
    path_in(traced, sizeof traced, "traced.out");
    path_in(out, sizeof out, "real.json");
    const char *argv[16] = {prog};
    int n = 0;
    for (; args[n]; n++)
        argv[1 + n] = args[n];
    assert_int_equal(run(argv, native), 0);
    char *a = slurp_file(native, NULL);
    assert_non_null(a);
    for (int sampled = 0; sampled < 2; sampled++) {
        const char *targv[24] = {MEMSCOPE_CLI, "run", "-o", out};
        int k = 4;
        if (sampled) {
            targv[k++] = "--sample-rate";
            targv[k++] = "0.3";
        }
        targv[k++] = "--";
        for (int i = 0; i < n + 1; i++)
            targv[k++] = argv[i];
        assert_int_equal(run(targv, traced), 0);
        char *b = slurp_file(traced, NULL);
        assert_non_null(b);
        assert_string_equal(a, b);
        free(b);
        cJSON *root = report(out);
        double allocs = num(root, "stats.total_allocations");
        if (allocs < (sampled ? min_allocs / 4 : min_allocs))
            fail_msg("%s%s: only %.0f allocations recorded", prog, sampled ? " (sampled)" : "",
                     allocs);
        assert_int_equal(num(root, "stats.dropped_events"), 0);
        assert_int_equal(num(root, "stats.ignored_deallocations"), 0);
        assert_int_equal(num(root, "stats.unmatched_deallocations"), 0);
        if (sampled)
            assert_true(num(root, "stats.sampled_out") > allocs);
        cJSON_Delete(root);
        unlink(out);
    }
    free(a);
}

static void sort_should_run_unchanged(void **state)
{
    (void)state;
    char in[600];
    path_in(in, sizeof in, "lines.txt");
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        fprintf(f, "%llu line %d\n", (unsigned long long)(x % 100000), i);
    }
    fclose(f);
    // -k with a key per line makes sort allocate per line, not in one buffer.
    const char *args[] = {"-k", "2,2", "-k", "1n", in, NULL};
    real_program("/usr/bin/sort", args, 100);
}

static void python_should_run_unchanged(void **state)
{
    (void)state;
    const char *args[] = {"-c",
                          "x = [str(i) * 3 for i in range(200000)]; d = {s: len(s) for s in x}; "
                          "print(len(x), sum(d.values()))",
                          NULL};
    real_program("/usr/bin/python3", args, 1000);
}

static void git_should_run_unchanged(void **state)
{
    (void)state;
    const char *args[] = {"--version", NULL};
    real_program("/usr/bin/git", args, 10);
}

static int setup(void **state)
{
    (void)state;
    make_temp_dir(dir, sizeof dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

int main(void)
{
    // What memscope run passes on: the tests set their own.
    unsetenv("MEMSCOPE_SAMPLE_RATE");
    unsetenv("MEMSCOPE_STACKS");
    unsetenv("MEMSCOPE_INLINE_FOLD");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(leak_should_be_found_with_its_function, setup, teardown),
        cmocka_unit_test_setup_teardown(html_report_should_show_the_leak, setup, teardown),
        cmocka_unit_test_setup_teardown(report_should_read_a_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(bin_format_should_stream_the_run, setup, teardown),
        cmocka_unit_test_setup_teardown(summary_should_add_up_the_stacks_of_one_place, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(stacks_should_go_on_past_code_without_frame_pointers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(stacks_should_not_skip_or_make_up_frames_through_callbacks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(stacks_should_follow_a_library_loaded_where_another_was,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(stacks_should_be_whole_with_or_without_frame_pointers,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(blocks_from_strdup_should_be_placed_in_its_caller, setup,
                                        teardown),
#ifdef HAVE_MANGLED_PROG
        cmocka_unit_test_setup_teardown(blocks_from_new_should_be_placed_in_its_caller, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(blocks_from_new_in_a_plugin_should_be_placed_in_its_caller,
                                        setup, teardown),
#endif
        cmocka_unit_test_setup_teardown(fork_should_leave_the_parents_report, setup, teardown),
        cmocka_unit_test_setup_teardown(fifty_threads_should_be_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(sampling_should_add_no_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(blocks_freed_by_other_threads_should_close, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(exit_from_a_thread_should_write_the_report, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(ending_without_exit_should_write_the_report, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_end_during_the_exit_report_should_wait_for_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_fatal_signal_should_still_write_the_report, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(bad_usage_should_say_why, setup, teardown),
        cmocka_unit_test_setup_teardown(monitor_should_add_system_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(sort_should_run_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(python_should_run_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(git_should_run_unchanged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
