/* bench_trace.c — the binary trace of a churn (bench/workloads/churn.c's
 * pattern, through TRACK): 4 M events over 4096 live blocks of mixed sizes,
 * all retained, exported with ms_export_binary and read back with
 * ms_trace_next. Prints bytes per event, the export's and the reader's events
 * per second, without and with 8-frame call stacks. Medians of 3. */
#define _POSIX_C_SOURCE 200809L
#include <memscope.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"

enum { LIVE = 4096, PAIRS = 2000000, REPS = 3 };

static void *slot[LIVE];

__attribute__((noinline)) static void churn(ms_tracker *t)
{
    static const ms_site site = {"buf", "char *", "churn.c", 42, "churn"};
    uint64_t rng = 0x9E3779B97F4A7C15u;
    for (long i = 0; i < PAIRS; i++) {
        uint64_t r = bench_rng_next(&rng);
        size_t k = (size_t)(r % LIVE);
        if (slot[k]) {
            ms_untrack(t, slot[k]);
            free(slot[k]);
        }
        unsigned c = (unsigned)(r >> 56);
        size_t n = c < 200 ? 16 + (r & 255) : c < 250 ? 256 + (r & 2047) : 4096 + (r & 65535);
        slot[k] = malloc(n);
        ms_track_as(t, slot[k], n, &site);
    }
}

static void run(bool stacks, const char *path)
{
    double wr[REPS], rd[REPS], bpe = 0;
    uint64_t events = 0;
    for (int rep = 0; rep < REPS; rep++) {
        ms_tracker *t = ms_tracker_new();
        ms_tracker_with_retained_bytes(t, (size_t)512 << 20);
        ms_tracker_with_sampling(t, (ms_sampling_config){1.0, stacks, 8});
        churn(t);
        ms_memory_stats st = ms_tracker_stats(t);
        events = st.retained_events;
        uint64_t a = bench_now_ns();
        if (ms_export_binary(t, path) < 0) {
            fprintf(stderr, "bench_trace: %s\n", ms_last_error_message());
            exit(1);
        }
        uint64_t b = bench_now_ns();
        struct stat sb;
        stat(path, &sb);
        bpe = (double)sb.st_size / (double)events;
        ms_trace *tr;
        if (ms_trace_open(path, &tr) < 0)
            exit(1);
        ms_trace_item it;
        uint64_t n = 0;
        while (ms_trace_next(tr, &it) == 1)
            n += it.kind == MS_TRACE_EVENT;
        ms_trace_close(tr);
        uint64_t c = bench_now_ns();
        if (n != events) {
            fprintf(stderr, "bench_trace: read %llu of %llu events\n", (unsigned long long)n,
                    (unsigned long long)events);
            exit(1);
        }
        wr[rep] = (double)events / ((double)(b - a) / 1e9);
        rd[rep] = (double)events / ((double)(c - b) / 1e9);
        for (size_t k = 0; k < LIVE; k++) {
            if (slot[k]) {
                ms_untrack(t, slot[k]);
                free(slot[k]);
                slot[k] = NULL;
            }
        }
        ms_tracker_free(t);
    }
    const char *tag = stacks ? "_stacks8" : "";
    char name[96];
    bench_metric_u64(stacks ? "trace_events_stacks8" : "trace_events", events);
    snprintf(name, sizeof name, "trace_bytes_per_event%s", tag);
    bench_metric(name, bpe, 2);
    snprintf(name, sizeof name, "trace_export_events_per_sec%s_median", tag);
    bench_metric(name, bench_median(wr, REPS), 0);
    snprintf(name, sizeof name, "trace_read_events_per_sec%s_median", tag);
    bench_metric(name, bench_median(rd, REPS), 0);
}

int main(int argc, char **argv)
{
    bench_init_output();
    const char *path = argc > 1 ? argv[1] : "bench-trace.msb";
    run(false, path);
    run(true, path);
    unlink(path);
    return 0;
}
