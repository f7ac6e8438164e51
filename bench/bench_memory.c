// bench_memory.c — what the tracker keeps resident:
//  1. bytes per retained event: ~1 M TRACK/UNTRACK events over 1024 blocks under the
//     default 64 MiB budget (no eviction), resident growth over retained events;
//  2. the bound: 50 000 000 events churning 100 000 live blocks under a 16 MiB budget,
//     resident memory against "16 MiB + 64 B x live blocks + margin".
// Each part runs in its own child process so that neither inherits the other's heap.
// Resident memory comes from /proc/self/statm. Uses <memscope.h> only.
#define _POSIX_C_SOURCE 200809L

#include <memscope.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

#define MIB (1024.0 * 1024.0)

enum {
    DESIGN_EVENT_BYTES = 48,      // the store's packed event, per the design
    DESIGN_LIVE_BLOCK_BYTES = 64, // one live-state entry, per the design
};

static void print_stats(ms_tracker *t)
{
    ms_memory_stats st = ms_tracker_stats(t);
    printf("#   stats: total_allocations=%zu total_deallocations=%zu active=%zu "
           "retained_events=%llu evicted_events=%llu dropped_events=%llu track_errors=%llu\n",
           st.total_allocations, st.total_deallocations, st.active_allocations,
           (unsigned long long)st.retained_events, (unsigned long long)st.evicted_events,
           (unsigned long long)st.dropped_events, (unsigned long long)st.track_errors);
    if (st.track_errors != 0 || st.dropped_events != 0) {
        printf("#   WARNING: track errors or dropped events; the figures are suspect\n");
    }
}

static void **blocks_new(size_t n, size_t bytes)
{
    void **blocks = malloc(n * sizeof *blocks);
    if (!blocks) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        blocks[i] = malloc(bytes);
        if (!blocks[i]) {
            for (size_t j = 0; j < i; j++) {
                free(blocks[j]);
            }
            free(blocks);
            return NULL;
        }
        memset(blocks[i], 0, bytes); // resident before the first measurement
    }
    return blocks;
}

static void blocks_free(void **blocks, size_t n)
{
    for (size_t i = 0; blocks && i < n; i++) {
        free(blocks[i]);
    }
    free(blocks);
}

// TRACK every block, then UNTRACK every block: 2 x n events.
static void track_round(ms_tracker *t, void **blocks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void *block = blocks[i];
        TRACK(t, block);
    }
    for (size_t i = 0; i < n; i++) {
        void *block = blocks[i];
        UNTRACK(t, block);
    }
}

// ---------------------------------------------------- part 1: bytes per event

static int part_bytes_per_event(void)
{
    enum { BLOCKS = 1024, ROUNDS = 489 }; // 489 x 2048 = 1 001 472 events
    printf("# bytes per retained event: %d rounds of TRACK+UNTRACK over %d blocks, "
           "default 64 MiB retained log\n",
           ROUNDS, BLOCKS);
    void **blocks = blocks_new(BLOCKS, 64);
    ms_tracker *t = ms_tracker_new();
    if (!blocks || !t) {
        printf("#   SKIPPED: setup failed\n");
        blocks_free(blocks, BLOCKS);
        ms_tracker_free(t);
        return 1;
    }
    // One round first so that per-thread buffers and the live table exist before
    // the baseline: the growth after it is the retained log's.
    track_round(t, blocks, BLOCKS);
    uint64_t retained0 = ms_tracker_stats(t).retained_events;
    uint64_t rss0 = bench_rss_bytes();
    uint64_t t0 = bench_now_ns();
    for (int r = 0; r < ROUNDS; r++)
        track_round(t, blocks, BLOCKS);
    uint64_t elapsed = bench_now_ns() - t0;
    uint64_t rss1 = bench_rss_bytes();
    ms_memory_stats st = ms_tracker_stats(t);
    uint64_t events = (uint64_t)ROUNDS * BLOCKS * 2;
    uint64_t retained = st.retained_events - retained0;

    bench_metric_u64("log_events_recorded", events);
    bench_metric_u64("log_retained_events_added", retained);
    bench_metric_u64("log_evicted_events", st.evicted_events);
    bench_metric("log_rss_before_mib", (double)rss0 / MIB, 1);
    bench_metric("log_rss_after_mib", (double)rss1 / MIB, 1);
    bench_metric_u64("retained_event_bytes_design", DESIGN_EVENT_BYTES);
    if (retained > 0 && rss1 >= rss0) {
        bench_metric("retained_event_bytes_measured_rss", (double)(rss1 - rss0) / (double)retained,
                     1);
    } else {
        printf("#   no retained events or no growth: bytes per event not measurable\n");
    }
    bench_metric("log_record_ns_per_event", (double)elapsed / (double)events, 1);
    if (st.evicted_events != 0) {
        printf("#   NOTE: the log evicted events, so the growth is bounded by the budget\n");
    }
    print_stats(t);
    ms_tracker_free(t);
    blocks_free(blocks, BLOCKS);
    return 0;
}

// ------------------------------------------------------- part 2: the bound

static int part_bound(void)
{
    enum { LIVE = 100000, BLOCK_BYTES = 32 };
    const uint64_t events_target = 50000000;
    const size_t budget = (size_t)16 << 20;
    printf("# resident bound: %llu events churning %d live blocks, retained log 16 MiB\n",
           (unsigned long long)events_target, LIVE);
    void **blocks = blocks_new(LIVE, BLOCK_BYTES);
    if (!blocks) {
        printf("#   SKIPPED: out of memory for the blocks\n");
        return 1;
    }
    // The baseline holds the program's own blocks; what grows after it is the tracker.
    uint64_t rss0 = bench_rss_bytes();
    uint64_t hwm0 = bench_peak_rss_bytes();
    ms_tracker *t = ms_tracker_with_retained_bytes(ms_tracker_new(), budget);
    if (!t) {
        printf("#   SKIPPED: tracker setup failed\n");
        blocks_free(blocks, LIVE);
        return 1;
    }
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < LIVE; i++) {
        void *block = blocks[i];
        TRACK(t, block);
    }
    // Then pairs: free a random live block and allocate it again, so exactly LIVE
    // blocks stay live while the events stream through the log.
    uint64_t events = LIVE;
    uint64_t rng = 0x243F6A8885A308D3ull;
    while (events < events_target) {
        for (int k = 0; k < 4096; k++) {
            void *block = blocks[bench_rng_next(&rng) % LIVE];
            UNTRACK(t, block);
            TRACK(t, block);
        }
        events += 2 * 4096;
    }
    uint64_t elapsed = bench_now_ns() - t0;
    uint64_t rss1 = bench_rss_bytes();
    uint64_t hwm1 = bench_peak_rss_bytes();
    ms_memory_stats st = ms_tracker_stats(t);

    uint64_t tracker_rss = rss1 > rss0 ? rss1 - rss0 : 0;
    uint64_t base = budget + (uint64_t)DESIGN_LIVE_BLOCK_BYTES * st.active_allocations;
    bench_metric_u64("bound_events_recorded", events);
    bench_metric_u64("bound_live_blocks", st.active_allocations);
    bench_metric_u64("bound_retained_events", st.retained_events);
    bench_metric_u64("bound_evicted_events", st.evicted_events);
    if (st.retained_events > 0) {
        bench_metric("bound_budget_bytes_per_retained_event",
                     (double)budget / (double)st.retained_events, 1);
    }
    bench_metric("bound_record_ns_per_event", (double)elapsed / (double)events, 1);
    bench_metric("bound_rss_before_mib", (double)rss0 / MIB, 1);
    bench_metric("bound_rss_after_mib", (double)rss1 / MIB, 1);
    bench_metric("bound_tracker_rss_mib", (double)tracker_rss / MIB, 2);
    if (hwm0 != 0 && hwm1 >= rss0) {
        bench_metric("bound_tracker_peak_rss_mib", (double)(hwm1 - rss0) / MIB, 2);
    }
    printf("# bound = 16 MiB + %d B x %zu live blocks + margin; the margin is what the tracker "
           "holds beyond the first two terms\n",
           DESIGN_LIVE_BLOCK_BYTES, st.active_allocations);
    bench_metric("bound_without_margin_mib", (double)base / MIB, 2);
    bench_metric("bound_margin_measured_mib", ((double)tracker_rss - (double)base) / MIB, 2);
    print_stats(t);
    ms_tracker_free(t);
    blocks_free(blocks, LIVE);
    return 0;
}

// Run `part` in a child process so that it starts from a clean heap.
static int run_isolated(int (*part)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        return part(); // no fork: run it here
    }
    if (pid == 0) {
        int rc = part();
        fflush(stdout);
        _exit(rc);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) {
        return 1;
    }
    if (WIFSIGNALED(status)) {
        printf("#   FAILED: the measurement died with signal %d\n", WTERMSIG(status));
        return 1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(void)
{
    bench_init_output();
    printf("# bench_memory: resident memory of the tracker (from /proc/self/statm)\n");
    int rc = run_isolated(part_bytes_per_event);
    rc |= run_isolated(part_bound);
    return rc;
}
