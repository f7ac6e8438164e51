/* bench_trace.c — the binary trace of a churn (bench/workloads/churn.c's
 * pattern, through TRACK): 4 M events over 4096 live blocks of mixed sizes.
 * 1. Export: all retained, exported with ms_export_binary and read back with
 *    ms_trace_next: bytes per event, the export's and the reader's events per
 *    second, without and with 8-frame call stacks, with zstd (the default)
 *    and without (MEMSCOPE_TRACE_ZSTD=0).
 * 2. Streaming: the writer alone (the 4 M events retained first, then
 *    streamed: events per second from ms_tracker_with_streaming until
 *    ms_tracker_free has finished the file), the same churn recorded with
 *    and without a stream (the program's time, the file's bytes per event,
 *    events lost), and the fastest program we have (TRACK/UNTRACK only).
 * 3. The export's stall: a thread recording TRACK/UNTRACK pairs while
 *    another exports a full 64 MiB retained log: the export's time and the
 *    slowest of the recording thread's pairs (a thread whose segment fills
 *    during the export folds, and waited for the export's fold lock).
 * Medians of 3. */
#define _POSIX_C_SOURCE 200809L
#include <memscope.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void run(bool stacks, const char *path, const char *tag0)
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
    char tag[32], name[128];
    snprintf(tag, sizeof tag, "%s%s", stacks ? "_stacks8" : "", tag0);
    snprintf(name, sizeof name, "trace_events%s", tag);
    bench_metric_u64(name, events);
    snprintf(name, sizeof name, "trace_bytes_per_event%s", tag);
    bench_metric(name, bpe, 2);
    snprintf(name, sizeof name, "trace_export_events_per_sec%s_median", tag);
    bench_metric(name, bench_median(wr, REPS), 0);
    snprintf(name, sizeof name, "trace_read_events_per_sec%s_median", tag);
    bench_metric(name, bench_median(rd, REPS), 0);
}

static void free_slots(ms_tracker *t)
{
    for (size_t k = 0; k < LIVE; k++) {
        if (slot[k]) {
            if (t)
                ms_untrack(t, slot[k]);
            free(slot[k]);
            slot[k] = NULL;
        }
    }
}

static double file_bytes(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (double)sb.st_size : 0.0;
}

/* The fastest program we have: TRACK and UNTRACK over blocks allocated
 * once (no malloc in the loop), 2 * PAIRS events. */
__attribute__((noinline)) static void churn_fast(ms_tracker *t, void **blocks)
{
    static const ms_site site = {"buf", "char *", "churn.c", 42, "churn_fast"};
    uint64_t rng = 0x9E3779B97F4A7C15u;
    for (long i = 0; i < PAIRS; i++) {
        uint64_t r = bench_rng_next(&rng);
        size_t k = (size_t)(r % LIVE);
        ms_track_as(t, blocks[k], 16 + (r >> 56), &site);
        ms_untrack(t, blocks[k]);
    }
}

/* The streaming writer alone, and beside a program recording as fast as it
 * can (TRACK on this thread; the writer's two threads on the other core). */
static void run_stream(const char *path, const char *tag)
{
    double alone[REPS], bpe = 0, plain[REPS], streamed[REPS];
    uint64_t events = 0, lost = 0;
    for (int rep = 0; rep < REPS; rep++) {
        ms_tracker *t = ms_tracker_new();
        ms_tracker_with_retained_bytes(t, (size_t)512 << 20);
        churn(t);
        events = ms_tracker_stats(t).retained_events;
        uint64_t a = bench_now_ns();
        ms_tracker_with_streaming(t, path); // starts at the oldest retained event
        free_slots(t);
        ms_tracker_free(t); // the writer finishes the file
        uint64_t b = bench_now_ns();
        alone[rep] = (double)events / ((double)(b - a) / 1e9);

        t = ms_tracker_new();
        a = bench_now_ns();
        churn(t);
        b = bench_now_ns();
        plain[rep] = (double)(b - a) / 1e9;
        free_slots(t);
        ms_tracker_free(t);

        t = ms_tracker_new();
        ms_tracker_with_streaming(t, path);
        a = bench_now_ns();
        churn(t);
        b = bench_now_ns();
        streamed[rep] = (double)(b - a) / 1e9;
        lost += ms_tracker_stats(t).stream_lost_events;
        free_slots(t);
        ms_tracker_free(t);
        bpe = file_bytes(path) / (double)events; // the churn, streamed as it ran
    }
    char name[128];
    snprintf(name, sizeof name, "stream_bytes_per_event%s", tag);
    bench_metric(name, bpe, 2);
    snprintf(name, sizeof name, "stream_writer_events_per_sec%s_median", tag);
    bench_metric(name, bench_median(alone, REPS), 0);
    double p = bench_median(plain, REPS), q = bench_median(streamed, REPS);
    snprintf(name, sizeof name, "stream_program_events_per_sec%s_median", tag);
    bench_metric(name, (double)events / q, 0);
    snprintf(name, sizeof name, "stream_program_time_ratio%s_median", tag);
    bench_metric(name, q / p, 2);
    snprintf(name, sizeof name, "stream_lost_events%s", tag);
    bench_metric_u64(name, lost);

    // The fastest program: does the writer keep up on the other core?
    void **blocks = malloc(LIVE * sizeof *blocks);
    for (size_t k = 0; k < LIVE; k++)
        blocks[k] = malloc(64);
    double fast_plain[REPS], fast_streamed[REPS], fast_bpe = 0;
    lost = 0;
    for (int rep = 0; rep < REPS; rep++) {
        ms_tracker *t = ms_tracker_new();
        uint64_t a = bench_now_ns();
        churn_fast(t, blocks);
        uint64_t b = bench_now_ns();
        fast_plain[rep] = (double)(b - a) / 1e9;
        ms_tracker_free(t);
        t = ms_tracker_new();
        ms_tracker_with_streaming(t, path);
        a = bench_now_ns();
        churn_fast(t, blocks);
        b = bench_now_ns();
        fast_streamed[rep] = (double)(b - a) / 1e9;
        lost += ms_tracker_stats(t).stream_lost_events;
        ms_tracker_free(t);
        fast_bpe = file_bytes(path) / (2.0 * PAIRS);
    }
    p = bench_median(fast_plain, REPS);
    q = bench_median(fast_streamed, REPS);
    snprintf(name, sizeof name, "stream_fast_program_events_per_sec_unstreamed%s_median", tag);
    bench_metric(name, 2.0 * PAIRS / p, 0);
    snprintf(name, sizeof name, "stream_fast_program_events_per_sec%s_median", tag);
    bench_metric(name, 2.0 * PAIRS / q, 0);
    snprintf(name, sizeof name, "stream_fast_program_time_ratio%s_median", tag);
    bench_metric(name, q / p, 2);
    snprintf(name, sizeof name, "stream_fast_bytes_per_event%s", tag);
    bench_metric(name, fast_bpe, 2);
    snprintf(name, sizeof name, "stream_fast_lost_events%s", tag);
    bench_metric_u64(name, lost);
    for (size_t k = 0; k < LIVE; k++)
        free(blocks[k]);
    free(blocks);
}

typedef struct stall_ctx {
    ms_tracker *t;
    void **blocks;
    atomic_int phase;  /* 0: warm up, 1: measure, 2: stop */
    atomic_int warmed; /* the recorder measures from here */
    uint64_t worst_ns; /* the slowest pair while phase was 1 */
} stall_ctx;

static void *stall_recorder(void *arg)
{
    stall_ctx *c = arg;
    static const ms_site site = {"buf", "char *", "churn.c", 42, "stall"};
    uint64_t rng = 0x9E3779B97F4A7C15u;
    for (long i = 0; atomic_load(&c->phase) != 2; i++) {
        uint64_t r = bench_rng_next(&rng);
        size_t k = (size_t)(r % LIVE);
        int phase = atomic_load_explicit(&c->phase, memory_order_relaxed);
        uint64_t a = phase == 1 ? bench_now_ns() : 0;
        ms_track_as(c->t, c->blocks[k], 16 + (r >> 56), &site);
        ms_untrack(c->t, c->blocks[k]);
        if (phase == 1) {
            uint64_t d = bench_now_ns() - a;
            if (d > c->worst_ns)
                c->worst_ns = d;
        }
        if (i == 100000)
            atomic_store(&c->warmed, 1);
    }
    return NULL;
}

static void run_stall(const char *path)
{
    double export_ms[REPS], worst_us[REPS];
    void **blocks = malloc(LIVE * sizeof *blocks);
    for (size_t k = 0; k < LIVE; k++)
        blocks[k] = malloc(64);
    for (int rep = 0; rep < REPS; rep++) {
        ms_tracker *t = ms_tracker_with_retained_bytes(ms_tracker_new(), (size_t)64 << 20);
        churn(t); // 4 M events: the log is full
        stall_ctx c = {.t = t, .blocks = blocks};
        pthread_t th;
        if (pthread_create(&th, NULL, stall_recorder, &c) != 0)
            exit(1);
        while (!atomic_load(&c.warmed))
            ;
        atomic_store(&c.phase, 1);
        uint64_t a = bench_now_ns();
        if (ms_export_binary(t, path) < 0) {
            fprintf(stderr, "bench_trace: %s\n", ms_last_error_message());
            exit(1);
        }
        export_ms[rep] = (double)(bench_now_ns() - a) / 1e6;
        atomic_store(&c.phase, 2);
        pthread_join(th, NULL);
        worst_us[rep] = (double)c.worst_ns / 1e3;
        free_slots(t);
        ms_tracker_free(t);
    }
    for (size_t k = 0; k < LIVE; k++)
        free(blocks[k]);
    free(blocks);
    bench_metric("trace_export_full_log_ms_median", bench_median(export_ms, REPS), 1);
    bench_metric("trace_export_worst_record_pair_us_median", bench_median(worst_us, REPS), 1);
}

int main(int argc, char **argv)
{
    bench_init_output();
    const char *path = argc > 1 ? argv[1] : "bench-trace.msb";
    // The second half at the level MEMSCOPE_TRACE_ZSTD asks for (default 1).
    const char *env = getenv("MEMSCOPE_TRACE_ZSTD");
    char level[16];
    snprintf(level, sizeof level, "%s", env && *env && strcmp(env, "0") != 0 ? env : "1");
    setenv("MEMSCOPE_TRACE_ZSTD", "0", 1);
    run(false, path, "_plain");
    run(true, path, "_plain");
    run_stream(path, "_plain");
    setenv("MEMSCOPE_TRACE_ZSTD", level, 1);
    printf("# zstd level %s\n", level);
    run(false, path, "");
    run(true, path, "");
    run_stream(path, "");
    run_stall(path);
    unlink(path);
    return 0;
}
