/* multithreaded.c — the seed's multi-threaded example in C: 4 threads share
 * one tracker and each tracks 100 blocks of 16 ints, left live until the
 * report is made: 400 allocations, 400 active. Returns non-zero otherwise. */
#include <memscope.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 4
#define ITERATIONS 100

struct worker {
    pthread_t thread;
    ms_tracker *tracker; /* shared: one pointer for every thread */
    int *blocks[ITERATIONS];
    int ok;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < ITERATIONS; i++) {
        int *data = malloc(16 * sizeof *data);
        if (data == NULL)
            return NULL;
        for (int j = 0; j < 16; j++)
            data[j] = i;
        TRACK(w->tracker, data);
        w->blocks[i] = data;
    }
    w->ok = 1;
    return NULL;
}

int main(void)
{
    ms_tracker *t = TRACKER();
    if (t == NULL) {
        fprintf(stderr, "multithreaded: cannot create the tracker\n");
        return 1;
    }

    static struct worker workers[THREADS];
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        workers[i].tracker = t;
        if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0) {
            fprintf(stderr, "multithreaded: pthread_create failed\n");
            return 1;
        }
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(workers[i].thread, NULL);
        failed |= !workers[i].ok;
    }

    const size_t expected = (size_t)THREADS * ITERATIONS;
    ms_analysis_report *r = ms_analyze(t);
    if (r == NULL) {
        fprintf(stderr, "multithreaded: ms_analyze: %s\n", ms_last_error_message());
        failed = 1;
    } else {
        printf("threads              %zu\n", r->thread_count);
        printf("total allocations    %zu (expected %zu)\n", r->total_allocations, expected);
        printf("active allocations   %zu (expected %zu)\n", r->active_allocations, expected);
        printf("peak memory          %llu bytes\n", (unsigned long long)r->peak_memory_bytes);
        if (r->total_allocations != expected || r->active_allocations != expected ||
            r->thread_count != THREADS)
            failed = 1;
        ms_report_free(r);
    }

    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < ITERATIONS; j++)
            MS_FREE(t, workers[i].blocks[j]);
    ms_memory_stats s = ms_tracker_stats(t);
    if (s.total_deallocations != expected || s.active_allocations != 0 || s.current_memory != 0)
        failed = 1;

    ms_tracker_free(t);
    if (failed)
        fprintf(stderr, "multithreaded: unexpected figures\n");
    return failed;
}
