/* page.c — the programs behind the browser test. Usage:
 *   page MODE OUT.html EXPECT.json
 * writes a dashboard and the figures and panels the page must show (read by
 * dashboard.mjs). MODE:
 *   full     something in every panel: named blocks from several functions with
 *            call stacks, a second thread, blocks left alive, system samples,
 *            and one block with a hostile name;
 *   sampled  the same run at a 25% sample rate: the figures are estimates;
 *   zero     only blocks of 0 bytes, with stacks;
 *   empty    a tracker that recorded nothing. */
#define _POSIX_C_SOURCE 200809L
#include <memscope.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static ms_tracker *t;

struct node {
    struct node *left, *right;
    char payload[40];
};

/* A tree of 2^depth - 1 nodes, each named "node" by TRACK (stacks differ by depth). */
__attribute__((noinline)) static struct node *build(int depth)
{
    if (depth == 0)
        return NULL;
    struct node *node = calloc(1, sizeof *node);
    if (!node)
        return NULL;
    TRACK(t, node);
    node->left = build(depth - 1);
    node->right = build(depth - 1);
    return node;
}

static void drop(struct node *n)
{
    if (!n)
        return;
    drop(n->left);
    drop(n->right);
    MS_FREE(t, n);
}

__attribute__((noinline)) static void *worker(void *arg)
{
    (void)arg;
    char *buffers[64];
    for (int i = 0; i < 64; i++) {
        buffers[i] = malloc((size_t)(64 << (i % 10)));
        TRACK(t, buffers[i]);
    }
    for (int i = 0; i < 60; i++) // four stay alive
        MS_FREE(t, buffers[i]);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The full run (sampled or not). */
static void work(void)
{
    for (int round = 0; round < 6; round++) { // memory rises and falls over time
        struct node *tree = build(8);
        sleep_ms(40);
        if (round != 5)
            drop(tree); // the last tree stays alive
    }
    pthread_t th;
    if (pthread_create(&th, NULL, worker, NULL) == 0)
        pthread_join(th, NULL);
    char *image = malloc(1 << 20);
    TRACK(t, image);
    static const ms_site hostile = {"</script><script>alert(1)</script>", "char *", "page.c", 1,
                                    "<img src=x onerror=alert(2)>"};
    char *odd = malloc(100);
    ms_track_as(t, odd, 100, &hostile);
    sleep_ms(250);
    // image and odd stay alive, unfreed: the process ends after the export
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: page full|sampled|zero|empty OUT.html EXPECT.json\n");
        return 2;
    }
    const char *mode = argv[1];
    t = ms_tracker_new();
    if (!t)
        return 1;
    bool full = strcmp(mode, "full") == 0, sampled = strcmp(mode, "sampled") == 0;
    ms_sampling_config cfg = {
        .sample_rate = sampled ? 0.25 : 1.0, .capture_call_stack = true, .max_stack_depth = 16};
    ms_tracker_with_sampling(t, cfg);
    ms_tracker_with_sampling_seed(t, 42);
    const char *panels = "[]"; // the panels that must show data
    if (full || sampled) {
        ms_tracker_with_monitor_interval(t, 50);
        ms_tracker_with_system_monitoring(t);
        work();
        panels = "[\"memory\", \"system\", \"hotspots\", \"leaks\", \"active\", \"threads\", "
                 "\"sizes\", \"flame\"]";
    } else if (strcmp(mode, "zero") == 0) {
        for (int i = 0; i < 10; i++) {
            void *p = malloc(1);
            ms_track_as(t, p, 0, NULL); // 0 bytes: the flame graph has no width to share
        }
        panels = "[\"memory\", \"hotspots\", \"leaks\", \"active\", \"threads\", \"sizes\"]";
    } else if (strcmp(mode, "empty") != 0) {
        fprintf(stderr, "page: unknown mode %s\n", mode);
        return 2;
    }

    ms_analysis_report *r = ms_analyze(t);
    if (!r || ms_export_html(t, argv[2]) < 0) {
        fprintf(stderr, "page: %s\n", ms_last_error_message());
        return 1;
    }
    FILE *f = fopen(argv[3], "w");
    if (!f)
        return 1;
    // The page shows the report's figures (estimates when sampled).
    fprintf(f, "{\"name\": \"%s\", \"peak\": %llu, \"active\": %zu, \"estimate\": %s,\n", mode,
            (unsigned long long)r->peak_memory_bytes, r->active_allocations,
            r->is_estimate ? "true" : "false");
    fprintf(f, " \"panels\": %s, \"hotspot_stacks\": %s", panels,
            full || sampled ? "true" : "false");
    if (full)
        fprintf(f, ",\n \"names\": [\"node\", \"buffers[i]\", \"image\"],\n \"threads\": 2,"
                   " \"interact\": true,\n"
                   " \"hostile\": "
                   "\"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\"");
    fprintf(f, "}\n");
    fclose(f);
    printf("page %s: wrote %s (peak %llu bytes)\n", mode, argv[2],
           (unsigned long long)r->peak_memory_bytes);
    ms_report_free(r);
    ms_tracker_free(t);
    return 0;
}
