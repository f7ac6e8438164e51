/* quickstart.c — the seed's basic example in C: name a few heap blocks, free
 * one, let the system monitor sample CPU and memory while the program works,
 * print the analysis and write memscope-report.json in the current
 * directory. `make demo` runs it. Returns non-zero if a figure is wrong. */
#define _POSIX_C_SOURCE 200809L
#include <memscope.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Some arithmetic for `ms` milliseconds: the program's "work". */
static long work(const int *data, int n, long ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long sum = 0;
    do {
        for (int k = 0; k < 100000; k++)
            sum += data[k % n] * k;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
    return sum;
}

struct point {
    double x, y;
};

int main(void)
{
    ms_tracker *t = TRACKER();
    if (t == NULL) {
        fprintf(stderr, "quickstart: ms_tracker_new: %s\n", ms_strerror(ms_last_error()));
        return 1;
    }
    /* Sample CPU, memory, threads... of the process every 100 ms in the background. */
    ms_tracker_with_system_monitoring(t);

    /* Track blocks of different types: the name, the type, this file and
     * line are captured by the macro. */
    int *data = malloc(5 * sizeof *data);
    char *greeting = malloc(sizeof "Hello, world!");
    struct point *origin = malloc(sizeof *origin);
    if (data == NULL || greeting == NULL || origin == NULL) {
        fprintf(stderr, "quickstart: out of memory\n");
        return 1;
    }
    for (int i = 0; i < 5; i++)
        data[i] = i + 1;
    strcpy(greeting, "Hello, world!");
    origin->x = 0.0;
    origin->y = 0.0;

    TRACK(t, data);                         /* "data", "int *" */
    TRACK(t, greeting);                     /* "greeting", "char *" */
    TRACK_TYPED(t, origin, struct point *); /* "origin", "struct point *" */

    MS_FREE(t, greeting); /* untrack, free, greeting = NULL */

    long result = work(data, 5, 350); /* the monitor samples meanwhile */

    int failed = 0;
    ms_analysis_report *r = ms_analyze(t);
    if (r == NULL) {
        fprintf(stderr, "quickstart: ms_analyze: %s\n", ms_last_error_message());
        failed = 1;
    } else {
        ms_report_print(r, stdout);
        if (r->total_allocations != 3 || r->total_deallocations != 1 ||
            r->active_allocations != 2) {
            fprintf(stderr,
                    "quickstart: expected 3 allocations, 1 deallocation, 2 active; got %zu, %zu, "
                    "%zu\n",
                    r->total_allocations, r->total_deallocations, r->active_allocations);
            failed = 1;
        }
        if (r->system_snapshot_count < 2 || r->system_snapshots[0].memory_usage_bytes == 0) {
            fprintf(stderr, "quickstart: expected system samples, got %zu\n",
                    r->system_snapshot_count);
            failed = 1;
        }
        ms_report_free(r);
    }

    /* Export while data and origin are still live, so they appear in the
     * report's active allocations. */
    const char *path = "memscope-report.json";
    int rc = ms_export_json(t, path);
    if (rc < 0) {
        fprintf(stderr, "quickstart: ms_export_json: %s\n", ms_last_error_message());
        failed = 1;
    } else {
        printf("wrote %s\n", path);
    }

    printf("(work result %ld)\n", result);
    MS_FREE(t, data);
    MS_FREE(t, origin);
    ms_tracker_free(t);
    return failed;
}
