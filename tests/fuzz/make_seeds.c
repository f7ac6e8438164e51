/* make_seeds.c — the fuzzer's seed corpus: real traces of small runs.
 * Usage: make_seeds DIR — writes DIR/plain.msb (TRACK, no stacks),
 * DIR/stacks.msb (stacks, reallocations, two threads, a hostile name) and
 * DIR/samples.msb (with system samples) and DIR/streamed.msb (streamed, with
 * blocks large enough to be zstd-compressed). */
#define _POSIX_C_SOURCE 200809L
#include <memscope.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static ms_tracker *t;

typedef struct job {
    int n;
    void *kept[256]; /* the blocks left live in the trace, freed after it */
    int nkept;
} job;

__attribute__((noinline)) static void *work(void *arg)
{
    job *j = arg;
    for (int i = 0; i < j->n; i++) {
        char *p = malloc(16 + (size_t)i);
        TRACK(t, p);
        p = ms_realloc(t, p, 64 + (size_t)i);
        if (i % 4 && p)
            MS_FREE(t, p);
        else if (p && j->nkept < 256)
            j->kept[j->nkept++] = p;
    }
    return NULL;
}

static void drop(job *j)
{
    for (int i = 0; i < j->nkept; i++) {
        ms_untrack(t, j->kept[i]);
        free(j->kept[i]);
    }
}

static int write_trace(const char *dir, const char *name, bool stacks, bool samples, int n,
                       bool stream)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    t = ms_tracker_new();
    if (!t)
        return 1;
    if (stream && (ms_tracker_with_streaming(t, path), ms_last_error() != 0)) {
        fprintf(stderr, "make_seeds: %s\n", ms_last_error_message());
        ms_tracker_free(t);
        return 1;
    }
    ms_tracker_with_sampling(t, (ms_sampling_config){1.0, stacks, 8});
    if (samples) {
        ms_tracker_with_monitor_interval(t, 10);
        ms_tracker_with_system_monitoring(t);
    }
    job a = {.n = n}, b = {.n = n};
    work(&a);
    char *odd_block = NULL;
    if (stacks) {
        pthread_t th;
        if (pthread_create(&th, NULL, work, &b) == 0)
            pthread_join(th, NULL);
        static const ms_site odd = {"</script>\"\\", "char *", "odd.c", 1, "f"};
        odd_block = malloc(8);
        ms_track_as(t, odd_block, 8, &odd);
    }
    if (samples) {
        struct timespec ts = {0, 60000000};
        nanosleep(&ts, NULL);
    }
    int rc = stream ? 0 : ms_export_binary(t, path);
    if (rc < 0)
        fprintf(stderr, "make_seeds: %s\n", ms_last_error_message());
    drop(&a);
    drop(&b);
    free(odd_block);
    ms_tracker_free(t);
    return rc < 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    return write_trace(argv[1], "plain.msb", false, false, 50, false) |
           write_trace(argv[1], "stacks.msb", true, false, 40, false) |
           write_trace(argv[1], "samples.msb", false, true, 10, false) |
           write_trace(argv[1], "streamed.msb", true, false, 600, true);
}
