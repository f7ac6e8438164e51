/* bench_fold.c — the capture store's two costs, apart from any allocator: a
 * recording thread appends captured records (a churn of frees and
 * allocations over 4096 live blocks, as bench/workloads/churn.c makes) while
 * the background folder folds them. Prints the recording thread's CPU time
 * per record and the rest of the process's CPU time per record (the folder),
 * and the wall time until everything is folded. CPU times, not wall time, so
 * the figures hold on a shared machine; medians of repeated runs.
 *
 * Options: --inline (no background folder: the recording thread folds each
 * full segment itself, so everything stays in one CPU's caches), --live N
 * (live blocks), --pairs N (free/allocation pairs a run), --reps N.
 * bench/fold-instructions.sh runs it under callgrind to count the fold's
 * instructions per record, a figure no other program on the machine moves. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "stack/stack.h"
#include "store/store.h"

enum { MAX_REPS = 15, MAX_LIVE = 1 << 20 };

static uint64_t process_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long arg_value(int argc, char **argv, int *i, long lo, long hi)
{
    const char *opt = argv[*i];
    char *end = NULL;
    long v = *i + 1 < argc ? strtol(argv[++*i], &end, 10) : -1;
    if (v < lo || v > hi || (end && *end)) {
        fprintf(stderr, "bench_fold: %s takes a number from %ld to %ld\n", opt, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    bool inline_fold = false;
    long reps = 5, live = 4096, pairs = 4000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--inline") == 0)
            inline_fold = true;
        else if (strcmp(argv[i], "--live") == 0)
            live = arg_value(argc, argv, &i, 1, MAX_LIVE);
        else if (strcmp(argv[i], "--pairs") == 0)
            pairs = arg_value(argc, argv, &i, 1, 1000000000);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = arg_value(argc, argv, &i, 1, MAX_REPS);
        else {
            fprintf(stderr, "usage: bench_fold [--inline] [--live N] [--pairs N] [--reps N]\n");
            return 2;
        }
    }
    bench_init_output();
    double rec[MAX_REPS], fold[MAX_REPS], wall[MAX_REPS];
    static uintptr_t slot[MAX_LIVE];
    for (int r = 0; r < reps; r++) {
        ms_event_store *s = ms__store_new(0); // memscope run keeps no retained log
        if (!inline_fold)
            ms__store_start_folder(s); // for the process's life: s is never freed
        ms__tbuf *b = ms__store_tbuf(s);
        uintptr_t pc = (uintptr_t)&main;
        uint32_t stack = ms__stack_intern(b, &pc, 1); // capture's caller-only stack
        uint64_t extra = ms__rec_extra(stack, MS__RF_CAPTURED);
        memset(slot, 0, (size_t)live * sizeof *slot); // each store starts with no live block
        uint64_t rng = 0x9E3779B97F4A7C15u + (uint64_t)r;
        uint64_t cpu0 = process_cpu_ns(), me0 = bench_thread_cpu_ns(), t0 = bench_now_ns();
        for (long i = 0; i < pairs; i++) {
            uint64_t x = bench_rng_next(&rng);
            size_t k = x % (uint64_t)live;
            if (slot[k])
                ms__store_push(s, b, b->slot, MS_EVENT_DEALLOCATE, slot[k], 0, 0, MS__RF_CAPTURED,
                               NULL);
            // An address near the freed one, as an allocator hands them out.
            slot[k] = 0x100000000u + ((uintptr_t)k << 12) + ((x >> 40) & 0xff0);
            ms__store_push(s, b, b->slot, MS_EVENT_ALLOCATE, slot[k], 0, 16 + (x >> 56), extra,
                           NULL);
        }
        uint64_t me1 = bench_thread_cpu_ns();
        ms__store_lock_folded(s);
        ms__store_unlock(s);
        uint64_t t1 = bench_now_ns(), cpu1 = process_cpu_ns();
        double n = 2.0 * (double)pairs;
        rec[r] = (double)(me1 - me0) / n;
        fold[r] = (double)((cpu1 - cpu0) - (me1 - me0)) / n;
        wall[r] = (double)(t1 - t0) / n;
    }
    if (inline_fold) {
        printf("# bench_fold --inline: %.1f M captured records over %ld live blocks, folded by the "
               "recording thread, median of %ld runs\n",
               2.0 * (double)pairs / 1e6, live, reps);
        bench_metric("fold_bench_inline_cpu_ns_per_record", bench_median(rec, (size_t)reps), 1);
        return 0;
    }
    printf("# bench_fold: %.1f M captured records over %ld live blocks, median of %ld runs\n",
           2.0 * (double)pairs / 1e6, live, reps);
    bench_metric("fold_bench_record_cpu_ns_per_record", bench_median(rec, (size_t)reps), 1);
    bench_metric("fold_bench_fold_cpu_ns_per_record", bench_median(fold, (size_t)reps), 1);
    bench_metric("fold_bench_wall_ns_per_record", bench_median(wall, (size_t)reps), 1);
    return 0;
}
