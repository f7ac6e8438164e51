// bench_snapshot.c — what reading the state costs: a snapshot of the live state
// (ms_snapshot_engine_build on the tracker's store) at 10 000 and 1 000 000 live
// blocks, JSON export (ms_export_json to a temporary file) at the same sizes, and the
// replay throughput of ms_snapshot_build_from_events over 1 M and 10 M hand-built
// events (2 allocations for each deallocation, so about half the blocks are freed).
// Uses <memscope.h> only; figures are medians of repeated runs.
#define _POSIX_C_SOURCE 200809L

#include <memscope.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"

enum { BLOCK_BYTES = 32 };

// ----------------------------------------------------------------- live state

typedef struct live_set {
    ms_tracker *t;
    void **blocks;
    size_t n;
} live_set;

static void live_set_free(live_set *ls)
{
    ms_tracker_free(ls->t);
    if (ls->blocks) {
        for (size_t i = 0; i < ls->n; i++) {
            free(ls->blocks[i]);
        }
        free(ls->blocks);
    }
    *ls = (live_set){0};
}

// A fresh tracker holding `n` live, real heap blocks, recorded with TRACK_SIZED.
static bool live_set_init(live_set *ls, size_t n)
{
    *ls = (live_set){0};
    ls->t = ms_tracker_new();
    ls->blocks = malloc(n * sizeof *ls->blocks);
    if (!ls->t || !ls->blocks) {
        live_set_free(ls);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        void *block = malloc(BLOCK_BYTES);
        if (!block) {
            live_set_free(ls);
            return false;
        }
        ls->blocks[i] = block;
        ls->n = i + 1;
        TRACK_SIZED(ls->t, block, BLOCK_BYTES);
    }
    return true;
}

static void bench_live_snapshot(const live_set *ls, const char *label, int reps)
{
    ms_snapshot_engine *e = ms_snapshot_engine_new(ms_tracker_event_store(ls->t));
    if (!e) {
        printf("#   SKIPPED: ms_snapshot_engine_new failed: %s\n", ms_strerror(ms_last_error()));
        return;
    }
    double ms[16];
    size_t active = 0;
    bool ok = true;
    for (int rep = -1; rep < reps && ok; rep++) { // rep -1 is the warm-up
        uint64_t t0 = bench_now_ns();
        ms_memory_snapshot *s = ms_snapshot_engine_build(e);
        uint64_t t1 = bench_now_ns();
        if (!s) {
            printf("#   FAILED: ms_snapshot_engine_build: %s\n", ms_strerror(ms_last_error()));
            ok = false;
            break;
        }
        active = ms_snapshot_active_count(s);
        ms_snapshot_free(s);
        if (rep >= 0) {
            ms[rep] = (double)(t1 - t0) / 1e6;
        }
    }
    ms_snapshot_engine_free(e);
    if (!ok) {
        return;
    }
    if (active != ls->n) {
        printf("#   WARNING: the snapshot holds %zu live blocks, %zu were tracked\n", active,
               ls->n);
    }
    double med = bench_median(ms, (size_t)reps);
    char name[128];
    snprintf(name, sizeof name, "snapshot_live_ms_%s_median", label);
    bench_metric(name, med, 3);
    snprintf(name, sizeof name, "snapshot_live_ns_per_block_%s_median", label);
    bench_metric(name, med * 1e6 / (double)ls->n, 1);
}

static void bench_json_export(const live_set *ls, const char *label, int reps)
{
    char dir[] = "/tmp/memscope-bench-XXXXXX";
    if (!mkdtemp(dir)) {
        printf("#   SKIPPED: mkdtemp failed\n");
        return;
    }
    char path[sizeof dir + 32];
    snprintf(path, sizeof path, "%s/report.json", dir);
    double ms[16];
    bool ok = true;
    for (int rep = 0; rep < reps; rep++) {
        uint64_t t0 = bench_now_ns();
        int rc = ms_export_json(ls->t, path);
        uint64_t t1 = bench_now_ns();
        if (rc != 0) {
            printf("#   FAILED: ms_export_json: %s (%s)\n", ms_strerror(rc),
                   ms_last_error_message());
            ok = false;
            break;
        }
        ms[rep] = (double)(t1 - t0) / 1e6;
    }
    struct stat st;
    long long bytes = ok && stat(path, &st) == 0 ? (long long)st.st_size : -1;
    remove(path);
    rmdir(dir);
    if (!ok) {
        return;
    }
    char name[128];
    snprintf(name, sizeof name, "json_export_ms_%s_median", label);
    bench_metric(name, bench_median(ms, (size_t)reps), 1);
    snprintf(name, sizeof name, "json_export_file_bytes_%s", label);
    bench_metric(name, (double)bytes, 0);
}

// --------------------------------------------------------------------- replay

typedef struct event_log {
    ms_memory_event *ev;
    size_t n;
    size_t allocations, deallocations, live;
} event_log;

// `n` events: each is an allocation of a new, distinct fake address with probability
// 2/3, else the deallocation of a random live block (from a random one of 4 thread
// ids, so frees cross threads). About half of all allocated blocks end up freed.
static bool event_log_build(event_log *log, size_t n, uint64_t seed)
{
    *log = (event_log){0};
    log->ev = malloc(n * sizeof *log->ev);
    uintptr_t *live_ptr = malloc(n * sizeof *live_ptr);
    size_t *live_size = malloc(n * sizeof *live_size);
    if (!log->ev || !live_ptr || !live_size) {
        free(log->ev);
        free(live_ptr);
        free(live_size);
        log->ev = NULL;
        return false;
    }
    const uint64_t base_ns = 1700000000000000000ull;
    const uintptr_t base_addr = (uintptr_t)0x100000000ull;
    uint64_t rng = seed;
    size_t live = 0, next_block = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = bench_rng_next(&rng);
        uint64_t tid = 10001 + (r >> 60) % 4;
        ms_memory_event e = {0};
        e.timestamp = base_ns + (uint64_t)i * 100;
        e.thread_id = tid;
        e.site = NULL;
        if (live == 0 || (r & 0xffff) < 0xffff * 2 / 3) {
            e.type = MS_EVENT_ALLOCATE;
            e.ptr = base_addr + (uintptr_t)next_block++ * 64;
            e.size = 16 + (size_t)((r >> 16) % 4081); // 16 .. 4096 bytes
            live_ptr[live] = e.ptr;
            live_size[live] = e.size;
            live++;
            log->allocations++;
        } else {
            size_t k = (size_t)((r >> 16) % live);
            e.type = MS_EVENT_DEALLOCATE;
            e.ptr = live_ptr[k];
            e.size = live_size[k];
            live--;
            live_ptr[k] = live_ptr[live];
            live_size[k] = live_size[live];
            log->deallocations++;
        }
        log->ev[i] = e;
    }
    free(live_ptr);
    free(live_size);
    log->n = n;
    log->live = live;
    return true;
}

static void bench_replay(size_t n, const char *label, int reps, bool warm_up)
{
    event_log log;
    uint64_t g0 = bench_now_ns();
    if (!event_log_build(&log, n, 0x9E3779B97F4A7C15ull ^ n)) {
        printf("#   SKIPPED: out of memory for %zu events\n", n);
        return;
    }
    printf("#   %zu events: %zu allocations, %zu deallocations, %zu live at the end "
           "(built in %.0f ms)\n",
           log.n, log.allocations, log.deallocations, log.live,
           (double)(bench_now_ns() - g0) / 1e6);
    double ms[16];
    size_t active = 0;
    bool ok = true;
    for (int rep = warm_up ? -1 : 0; rep < reps; rep++) {
        uint64_t t0 = bench_now_ns();
        ms_memory_snapshot *s = ms_snapshot_build_from_events(log.ev, log.n);
        uint64_t t1 = bench_now_ns();
        if (!s) {
            printf("#   FAILED: ms_snapshot_build_from_events: %s\n", ms_strerror(ms_last_error()));
            ok = false;
            break;
        }
        active = ms_snapshot_active_count(s);
        ms_snapshot_free(s);
        if (rep >= 0) {
            ms[rep] = (double)(t1 - t0) / 1e6;
        }
    }
    free(log.ev);
    if (!ok) {
        return;
    }
    if (active != log.live) {
        printf("#   WARNING: the replay has %zu live blocks, expected %zu\n", active, log.live);
    }
    double med = bench_median(ms, (size_t)reps);
    char name[128];
    snprintf(name, sizeof name, "replay_ms_%s_median", label);
    bench_metric(name, med, 1);
    snprintf(name, sizeof name, "replay_events_per_sec_%s_median", label);
    bench_metric(name, (double)n / (med / 1e3), 0);
}

int main(void)
{
    bench_init_output();
    printf("# bench_snapshot: live snapshot, JSON export and replay; medians of repeated runs\n");

    static const struct {
        size_t n;
        const char *label;
        int snapshot_reps, export_reps;
    } live_sizes[] = {{10000, "10k_live", 11, 7}, {1000000, "1m_live", 7, 3}};
    for (size_t i = 0; i < sizeof live_sizes / sizeof live_sizes[0]; i++) {
        printf("# live state: %zu blocks of %d bytes TRACK_SIZED into a fresh tracker\n",
               live_sizes[i].n, BLOCK_BYTES);
        live_set ls;
        uint64_t t0 = bench_now_ns();
        if (!live_set_init(&ls, live_sizes[i].n)) {
            printf("#   SKIPPED: could not set up %zu live blocks\n", live_sizes[i].n);
            continue;
        }
        printf("#   set up in %.0f ms\n", (double)(bench_now_ns() - t0) / 1e6);
        ms_memory_stats st = ms_tracker_stats(ls.t);
        if (st.active_allocations != ls.n || st.track_errors != 0) {
            printf("#   WARNING: tracker reports %zu live blocks and %llu track errors\n",
                   st.active_allocations, (unsigned long long)st.track_errors);
        }
        bench_live_snapshot(&ls, live_sizes[i].label, live_sizes[i].snapshot_reps);
        bench_json_export(&ls, live_sizes[i].label, live_sizes[i].export_reps);
        live_set_free(&ls);
    }

    printf("# replay: ms_snapshot_build_from_events over hand-built events "
           "(2/3 allocations, 1/3 deallocations, 4 threads)\n");
    bench_replay(1000000, "1m_events", 7, true);
    bench_replay(10000000, "10m_events", 3, false);
    return 0;
}
