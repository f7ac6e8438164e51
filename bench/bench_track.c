// bench_track.c — the cost of the recording path: TRACK, TRACK_SIZED and UNTRACK at
// full sampling on 1 and 2 threads, and TRACK at 1% sampling (mostly skipped calls).
// Each thread owns 1024 pre-malloc'd blocks; one round TRACKs every block, then
// UNTRACKs every block, and the two loops are timed apart. Every configuration gets
// a fresh tracker, one warm-up repetition and REPS timed ones; figures are medians.
// Uses <memscope.h> only.
#define _POSIX_C_SOURCE 200809L

#include <memscope.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"

enum {
    BLOCKS = 1024, // per thread
    ROUNDS = 2000, // per repetition: 2 048 000 TRACK + as many UNTRACK per thread
    REPS = 9,      // timed repetitions per configuration (plus one warm-up)
    MAX_THREADS = 2,
};

typedef enum bench_mode {
    MODE_TRACK,       // TRACK (size from the allocator), then UNTRACK
    MODE_TRACK_SIZED, // TRACK_SIZED (size given), then UNTRACK
    MODE_TRACK_ONLY,  // TRACK only: the sampled configuration
} bench_mode;

typedef struct bench_config {
    const char *track_metric; // the name of the TRACK figure
    const char *label;        // suffix of the other figures' names, e.g. "1thread"
    const char *describe;     // the human header
    int threads;
    bench_mode mode;
    double sample_rate; // 1.0: no sampling; 0.01 is ms_sampling_high_performance()
    bool set_retained;  // else the default 64 MiB log
    size_t retained_bytes;
} bench_config;

// What one thread measured in one repetition.
typedef struct rep_result {
    uint64_t track_ns, untrack_ns;
    uint64_t track_calls, untrack_calls;
    uint64_t cpu_ns; // CPU time the thread got: below wall time when the machine is busy
} rep_result;

typedef struct worker {
    ms_tracker *t;
    const bench_config *cfg;
    pthread_barrier_t *start, *stop;
    rep_result results[REPS + 1]; // [0] is the warm-up
    bool failed;
} worker;

// One repetition of ROUNDS rounds over the thread's blocks.
static void run_rounds(ms_tracker *t, bench_mode mode, void *const *blocks, const size_t *sizes,
                       rep_result *out)
{
    uint64_t track_ns = 0, untrack_ns = 0;
    uint64_t cpu0 = bench_thread_cpu_ns();
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0 = bench_now_ns();
        if (mode == MODE_TRACK_SIZED) {
            for (size_t i = 0; i < BLOCKS; i++) {
                void *block = blocks[i];
                TRACK_SIZED(t, block, sizes[i]);
            }
        } else {
            for (size_t i = 0; i < BLOCKS; i++) {
                void *block = blocks[i];
                TRACK(t, block);
            }
        }
        uint64_t t1 = bench_now_ns();
        if (mode != MODE_TRACK_ONLY) {
            for (size_t i = 0; i < BLOCKS; i++) {
                void *block = blocks[i];
                UNTRACK(t, block);
            }
        }
        uint64_t t2 = bench_now_ns();
        track_ns += t1 - t0;
        untrack_ns += t2 - t1;
    }
    out->cpu_ns = bench_thread_cpu_ns() - cpu0;
    out->track_ns = track_ns;
    out->untrack_ns = mode == MODE_TRACK_ONLY ? 0 : untrack_ns;
    out->track_calls = (uint64_t)ROUNDS * BLOCKS;
    out->untrack_calls = mode == MODE_TRACK_ONLY ? 0 : (uint64_t)ROUNDS * BLOCKS;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    // The blocks come from this thread's own arena, as they would in a program.
    void **blocks = malloc(BLOCKS * sizeof *blocks);
    size_t *sizes = malloc(BLOCKS * sizeof *sizes);
    bool ok = blocks && sizes;
    for (size_t i = 0; ok && i < BLOCKS; i++) {
        sizes[i] = 16 + (i % 16) * 16; // 16 .. 256 bytes
        blocks[i] = malloc(sizes[i]);
        ok = blocks[i] != NULL;
        if (!ok) {
            for (size_t j = 0; j < i; j++) {
                free(blocks[j]);
            }
        }
    }
    w->failed = !ok;
    for (int rep = 0; rep <= REPS; rep++) {
        pthread_barrier_wait(w->start);
        if (ok) {
            run_rounds(w->t, w->cfg->mode, blocks, sizes, &w->results[rep]);
        }
        pthread_barrier_wait(w->stop);
    }
    if (ok) {
        for (size_t i = 0; i < BLOCKS; i++) {
            free(blocks[i]);
        }
    }
    free(blocks);
    free(sizes);
    return NULL;
}

// The medians of one configuration, kept for the scaling ratio.
typedef struct config_result {
    double calls_per_sec; // all threads together, over wall time
    bool valid;
} config_result;

static void print_stats_line(ms_tracker *t, uint64_t expected_tracks, bool sampled)
{
    ms_memory_stats st = ms_tracker_stats(t);
    printf("#   stats: total_allocations=%zu total_deallocations=%zu active=%zu "
           "retained_events=%llu evicted_events=%llu dropped_events=%llu track_errors=%llu "
           "sampled_out=%llu\n",
           st.total_allocations, st.total_deallocations, st.active_allocations,
           (unsigned long long)st.retained_events, (unsigned long long)st.evicted_events,
           (unsigned long long)st.dropped_events, (unsigned long long)st.track_errors,
           (unsigned long long)st.sampled_out);
    if (st.track_errors != 0 || st.dropped_events != 0) {
        printf("#   WARNING: %llu track errors and %llu dropped events: the figures above do "
               "not measure the normal recording path\n",
               (unsigned long long)st.track_errors, (unsigned long long)st.dropped_events);
    }
    if (!sampled && st.total_allocations != expected_tracks) {
        printf("#   WARNING: %zu allocations recorded, %llu TRACK calls made\n",
               st.total_allocations, (unsigned long long)expected_tracks);
    }
}

static config_result run_config(const bench_config *cfg)
{
    config_result res = {0, false};
    printf("# %s\n", cfg->describe);

    ms_tracker *t = ms_tracker_new();
    if (!t) {
        printf("#   SKIPPED: ms_tracker_new failed: %s\n", ms_strerror(ms_last_error()));
        return res;
    }
    if (cfg->sample_rate < 1.0) {
        ms_sampling_config sc = ms_sampling_high_performance();
        sc.sample_rate = cfg->sample_rate;
        if (ms_tracker_with_sampling(t, sc) == NULL || ms_last_error() == MS_ERANGE) {
            printf("#   SKIPPED: ms_tracker_with_sampling failed\n");
            ms_tracker_free(t);
            return res;
        }
        (void)ms_tracker_with_sampling_seed(t, 42);
    }
    if (cfg->set_retained) {
        (void)ms_tracker_with_retained_bytes(t, cfg->retained_bytes);
    }

    pthread_barrier_t start, stop;
    pthread_barrier_init(&start, NULL, (unsigned)cfg->threads + 1);
    pthread_barrier_init(&stop, NULL, (unsigned)cfg->threads + 1);
    worker workers[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    int started = 0;
    for (int i = 0; i < cfg->threads; i++) {
        workers[i] = (worker){.t = t, .cfg = cfg, .start = &start, .stop = &stop};
        if (pthread_create(&tids[i], NULL, worker_main, &workers[i]) != 0) {
            break;
        }
        started++;
    }
    if (started != cfg->threads) {
        // Cannot run the barriers with a missing party; abandon the process.
        printf("#   FAILED: pthread_create\n");
        exit(1);
    }

    double wall_ns[REPS + 1];
    for (int rep = 0; rep <= REPS; rep++) {
        pthread_barrier_wait(&start);
        uint64_t t0 = bench_now_ns();
        pthread_barrier_wait(&stop);
        wall_ns[rep] = (double)(bench_now_ns() - t0);
    }
    bool failed = false;
    for (int i = 0; i < cfg->threads; i++) {
        pthread_join(tids[i], NULL);
        failed = failed || workers[i].failed;
    }
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&stop);
    if (failed) {
        printf("#   SKIPPED: out of memory for the blocks\n");
        ms_tracker_free(t);
        return res;
    }

    // Per repetition: the per-thread cost of one call (thread time over that thread's
    // calls, averaged over threads) and the aggregate rate (all calls over wall time).
    double track_ns[REPS], untrack_ns[REPS], record_ns[REPS], rate[REPS], cpu_share[REPS];
    for (int rep = 1; rep <= REPS; rep++) {
        uint64_t tns = 0, uns = 0, tcalls = 0, ucalls = 0, cpu = 0;
        for (int i = 0; i < cfg->threads; i++) {
            const rep_result *r = &workers[i].results[rep];
            tns += r->track_ns;
            uns += r->untrack_ns;
            tcalls += r->track_calls;
            ucalls += r->untrack_calls;
            cpu += r->cpu_ns;
        }
        cpu_share[rep - 1] = (double)cpu / ((double)cfg->threads * wall_ns[rep]);
        track_ns[rep - 1] = (double)tns / (double)tcalls;
        untrack_ns[rep - 1] = ucalls ? (double)uns / (double)ucalls : 0.0;
        record_ns[rep - 1] = (double)(tns + uns) / (double)(tcalls + ucalls);
        rate[rep - 1] = (double)(tcalls + ucalls) / (wall_ns[rep] / 1e9);
    }

    char name[128];
    bench_metric(cfg->track_metric, bench_median(track_ns, REPS), 1);
    if (cfg->mode != MODE_TRACK_ONLY) {
        snprintf(name, sizeof name, "untrack_ns_per_call_%s_median", cfg->label);
        bench_metric(name, bench_median(untrack_ns, REPS), 1);
        snprintf(name, sizeof name, "record_ns_per_call_%s_median", cfg->label);
        bench_metric(name, bench_median(record_ns, REPS), 1);
    }
    snprintf(name, sizeof name, "calls_per_sec_%s_median", cfg->label);
    res.calls_per_sec = bench_median(rate, REPS);
    res.valid = true;
    bench_metric(name, res.calls_per_sec, 0);

    uint64_t expected = (uint64_t)cfg->threads * (REPS + 1) * ROUNDS * BLOCKS;
    if (cfg->sample_rate < 1.0) {
        ms_memory_stats st = ms_tracker_stats(t);
        snprintf(name, sizeof name, "sampled_out_share_%s", cfg->label);
        bench_metric(name, expected ? (double)st.sampled_out / (double)expected : 0.0, 4);
    }
    double share = bench_median(cpu_share, REPS);
    printf("#   the timed threads ran on a CPU %.0f%% of the wall time (median)\n", share * 100);
    if (share < 0.9) {
        printf("#   WARNING: the machine is busy (other processes took CPU time): these figures, "
               "the 2-thread ones most, are pessimistic; rerun on an idle machine\n");
    }
    print_stats_line(t, expected, cfg->sample_rate < 1.0);
    ms_tracker_free(t);
    return res;
}

static void print_scaling(const char *label, config_result one, config_result two)
{
    if (!one.valid || !two.valid || one.calls_per_sec <= 0) {
        return;
    }
    char name[128];
    snprintf(name, sizeof name, "scaling_2threads_vs_1thread%s", label);
    printf("# aggregate TRACK+UNTRACK rate of 2 threads over 1 thread (target >= 1.7)\n");
    bench_metric(name, two.calls_per_sec / one.calls_per_sec, 2);
}

int main(void)
{
    bench_init_output();
    printf("# bench_track: ns per recording call; %d blocks per thread, %d rounds per "
           "repetition, median of %d repetitions after one warm-up\n",
           BLOCKS, ROUNDS, REPS);

    static const bench_config configs[] = {
        {"track_ns_per_call_1thread_median", "1thread",
         "1 thread, full sampling, TRACK then UNTRACK, retained log 64 MiB (default)", 1,
         MODE_TRACK, 1.0, false, 0},
        {"track_ns_per_call_2threads_median", "2threads",
         "2 threads, full sampling, TRACK then UNTRACK, retained log 64 MiB (default)", 2,
         MODE_TRACK, 1.0, false, 0},
        {"track_ns_per_call_1thread_retained16mib_median", "1thread_retained16mib",
         "1 thread, full sampling, TRACK then UNTRACK, retained log 16 MiB", 1, MODE_TRACK, 1.0,
         true, (size_t)16 << 20},
        {"track_ns_per_call_2threads_retained16mib_median", "2threads_retained16mib",
         "2 threads, full sampling, TRACK then UNTRACK, retained log 16 MiB", 2, MODE_TRACK, 1.0,
         true, (size_t)16 << 20},
        {"track_sized_ns_per_call_1thread_median", "1thread_sized",
         "1 thread, full sampling, TRACK_SIZED (no allocator size lookup) then UNTRACK, "
         "retained log 64 MiB (default)",
         1, MODE_TRACK_SIZED, 1.0, false, 0},
        {"track_ns_per_call_1pct_sampling_1thread_median", "1thread_1pct_sampling",
         "1 thread, 1% sampling (ms_sampling_high_performance), TRACK only: 99% of the calls "
         "are skipped, 1% recorded",
         1, MODE_TRACK_ONLY, 0.01, false, 0},
        {"track_ns_per_skipped_call_1thread_median", "1thread_all_skipped",
         "1 thread, sample rate 0, TRACK only: every call is skipped (the cost of a skip)", 1,
         MODE_TRACK_ONLY, 0.0, false, 0},
    };
    config_result results[sizeof configs / sizeof configs[0]];
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        results[i] = run_config(&configs[i]);
        if (i == 1) {
            print_scaling("", results[0], results[1]);
        } else if (i == 3) {
            print_scaling("_retained16mib", results[2], results[3]);
        }
    }
    return 0;
}
