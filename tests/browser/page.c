/* page.c — the program behind the browser test: a run with something in every
 * dashboard panel (named blocks from several functions with call stacks, a
 * second thread, blocks left alive, system samples) and one block with a
 * hostile name. Usage: page OUT.html EXPECT.json — writes the dashboard and
 * the figures the page must show. */
#define _POSIX_C_SOURCE 200809L
#include <memscope.h>

#include <pthread.h>
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
static struct node *build(int depth)
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

static void *worker(void *arg)
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

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: page OUT.html EXPECT.json\n");
        return 2;
    }
    t = ms_tracker_new();
    if (!t)
        return 1;
    ms_sampling_config cfg = {
        .sample_rate = 1.0, .capture_call_stack = true, .max_stack_depth = 16};
    ms_tracker_with_sampling(t, cfg);
    ms_tracker_with_monitor_interval(t, 50);
    ms_tracker_with_system_monitoring(t);

    for (int round = 0; round < 6; round++) { // memory rises and falls over time
        struct node *tree = build(8);
        sleep_ms(40);
        if (round != 5)
            drop(tree); // the last tree stays alive
    }
    pthread_t th;
    if (pthread_create(&th, NULL, worker, NULL) != 0 || pthread_join(th, NULL) != 0)
        return 1;
    char *image = malloc(1 << 20);
    TRACK(t, image);
    static const ms_site hostile = {"</script><script>alert(1)</script>", "char *", "page.c", 1,
                                    "<img src=x onerror=alert(2)>"};
    char *odd = malloc(100);
    ms_track_as(t, odd, 100, &hostile);
    sleep_ms(250);

    ms_memory_stats st = ms_tracker_stats(t);
    int rc = ms_export_html(t, argv[1]);
    if (rc < 0) {
        fprintf(stderr, "page: ms_export_html: %s\n", ms_last_error_message());
        return 1;
    }
    FILE *f = fopen(argv[2], "w");
    if (!f)
        return 1;
    fprintf(f,
            "{\"peak\": %zu, \"current\": %zu, \"active\": %zu,\n"
            " \"names\": [\"node\", \"buffers[i]\", \"image\"],\n"
            " \"hostile\": "
            "\"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\"}\n",
            (size_t)st.peak_memory, (size_t)st.current_memory, (size_t)st.active_allocations);
    fclose(f);
    printf("wrote %s (peak %zu bytes)\n", argv[1], (size_t)st.peak_memory);
    free(odd);
    free(image);
    ms_tracker_free(t);
    return 0;
}
