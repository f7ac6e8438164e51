/* quickstart.c — the seed's basic example in C: name a few heap blocks, free
 * one, let the system monitor sample CPU and memory while the program works,
 * print the analysis and write memscope-report.json and the dashboard
 * memscope-report.html in the current directory. The work is a small
 * program's: a tree built and dropped in rounds, and a cache filled by a
 * second thread, with call stacks recorded. `make demo` runs it. Returns
 * non-zero if a figure is wrong. */
#define _POSIX_C_SOURCE 200809L
#include <memscope.h>

#include <pthread.h>
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

static ms_tracker *t;

/* ------------------------------------------------ the program's "work" */

struct tree_node {
    struct tree_node *left, *right;
    double weight;
};

#define TREE_DEPTH 7
#define TREE_NODES ((1 << TREE_DEPTH) - 1)
#define ROUNDS 4
#define CACHE_ENTRIES 200
#define CACHE_KEPT 50

/* A tree of 2^depth - 1 nodes, each named by TRACK (with its call stack). */
static struct tree_node *grow(int depth)
{
    if (depth == 0)
        return NULL;
    struct tree_node *node = malloc(sizeof *node);
    if (node == NULL)
        return NULL;
    TRACK(t, node);
    node->weight = depth;
    node->left = grow(depth - 1);
    node->right = grow(depth - 1);
    return node;
}

static void prune(struct tree_node *node)
{
    if (node == NULL)
        return;
    prune(node->left);
    prune(node->right);
    MS_FREE(t, node);
}

/* A cache of strings of many sizes, filled by a second thread; the last
 * CACHE_KEPT entries stay in it. */
static char *cache[CACHE_ENTRIES];

static char *cache_entry(int i)
{
    size_t size = (size_t)24 << (i % 9); // 24 B .. 6 KiB
    char *entry = malloc(size);
    if (entry == NULL)
        return NULL;
    memset(entry, 'a' + i % 26, size - 1);
    entry[size - 1] = '\0';
    TRACK(t, entry);
    return entry;
}

static void *fill_cache(void *arg)
{
    (void)arg;
    struct timespec pause = {0, 1000000}; // one entry a millisecond
    for (int i = 0; i < CACHE_ENTRIES; i++) {
        cache[i] = cache_entry(i);
        nanosleep(&pause, NULL);
    }
    for (int i = 0; i < CACHE_ENTRIES - CACHE_KEPT; i++) // evict the oldest
        MS_FREE(t, cache[i]);
    return NULL;
}

int main(void)
{
    t = TRACKER();
    if (t == NULL) {
        fprintf(stderr, "quickstart: ms_tracker_new: %s\n", ms_strerror(ms_last_error()));
        return 1;
    }
    /* Record each TRACK's call stack too (16 frames), for the dashboard's
     * flame graph; every block is still recorded (sample rate 1). */
    ms_sampling_config stacks = {
        .sample_rate = 1.0, .capture_call_stack = true, .max_stack_depth = 16};
    ms_tracker_with_sampling(t, stacks);
    /* Sample CPU, memory, threads... of the process every 50 ms in the background. */
    ms_tracker_with_monitor_interval(t, 50);
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

    /* The work: a tree grown and pruned in rounds (the last one stays), a
     * cache filled by a second thread, while the monitor samples. */
    long result = 0;
    struct tree_node *tree = NULL;
    pthread_t filler;
    if (pthread_create(&filler, NULL, fill_cache, NULL) != 0) {
        fprintf(stderr, "quickstart: pthread_create failed\n");
        return 1;
    }
    for (int round = 0; round < ROUNDS; round++) {
        tree = grow(TREE_DEPTH);
        result += work(data, 5, 80);
        if (round < ROUNDS - 1)
            prune(tree);
    }
    pthread_join(filler, NULL);

    const size_t allocs = 3 + ROUNDS * TREE_NODES + CACHE_ENTRIES;
    const size_t frees = 1 + (ROUNDS - 1) * TREE_NODES + (CACHE_ENTRIES - CACHE_KEPT);
    int failed = 0;
    ms_analysis_report *r = ms_analyze(t);
    if (r == NULL) {
        fprintf(stderr, "quickstart: ms_analyze: %s\n", ms_last_error_message());
        failed = 1;
    } else {
        ms_report_print(r, stdout);
        if (r->total_allocations != allocs || r->total_deallocations != frees ||
            r->active_allocations != allocs - frees || r->thread_count != 2) {
            fprintf(stderr,
                    "quickstart: expected %zu allocations, %zu deallocations, %zu active in 2 "
                    "threads; got %zu, %zu, %zu in %zu\n",
                    allocs, frees, allocs - frees, r->total_allocations, r->total_deallocations,
                    r->active_allocations, (size_t)r->thread_count);
            failed = 1;
        }
        if (r->system_snapshot_count < 2 || r->system_snapshots[0].memory_usage_bytes == 0) {
            fprintf(stderr, "quickstart: expected system samples, got %zu\n",
                    r->system_snapshot_count);
            failed = 1;
        }
        ms_report_free(r);
    }

    /* Export while blocks are still live, so they appear in the report's
     * active allocations and leaks. */
    if (ms_export_json(t, "memscope-report.json") < 0) {
        fprintf(stderr, "quickstart: ms_export_json: %s\n", ms_last_error_message());
        failed = 1;
    } else {
        printf("wrote memscope-report.json\n");
    }
    if (ms_export_html(t, "memscope-report.html") < 0) {
        fprintf(stderr, "quickstart: ms_export_html: %s\n", ms_last_error_message());
        failed = 1;
    } else {
        printf("wrote memscope-report.html (the dashboard: open it in a browser)\n");
    }

    printf("(work result %ld)\n", result);
    prune(tree);
    for (int i = CACHE_ENTRIES - CACHE_KEPT; i < CACHE_ENTRIES; i++)
        MS_FREE(t, cache[i]);
    MS_FREE(t, data);
    MS_FREE(t, origin);
    ms_tracker_free(t);
    return failed;
}
