/* bench_fold.c — the capture store's two costs, apart from any allocator: a
 * recording thread appends captured records (a churn of frees and
 * allocations over 4096 live blocks, as bench/workloads/churn.c makes) while
 * the background folder folds them. Prints the recording thread's CPU time
 * per record and the rest of the process's CPU time per record (the folder),
 * and the wall time until everything is folded. CPU times, not wall time, so
 * the figures hold on a shared machine; medians of repeated runs. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "stack/stack.h"
#include "store/store.h"

enum { REPS = 5, LIVE = 4096, PAIRS = 4000000 };

static uint64_t process_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(void)
{
    bench_init_output();
    double rec[REPS], fold[REPS], wall[REPS];
    for (int r = 0; r < REPS; r++) {
        ms_event_store *s = ms__store_new(0); // memscope run keeps no retained log
        ms__store_start_folder(s);            // for the process's life: s is never freed
        ms__tbuf *b = ms__store_tbuf(s);
        uintptr_t pc = (uintptr_t)&main;
        uint32_t stack = ms__stack_intern(b, &pc, 1); // capture's caller-only stack
        uint64_t extra = ms__rec_extra(stack, MS__RF_CAPTURED);
        static uintptr_t slot[LIVE];
        memset(slot, 0, sizeof slot); // each store starts with no live block
        uint64_t rng = 0x9E3779B97F4A7C15u + (uint64_t)r;
        uint64_t cpu0 = process_cpu_ns(), me0 = bench_thread_cpu_ns(), t0 = bench_now_ns();
        for (long i = 0; i < PAIRS; i++) {
            uint64_t x = bench_rng_next(&rng);
            size_t k = x % LIVE;
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
        double n = 2.0 * PAIRS;
        rec[r] = (double)(me1 - me0) / n;
        fold[r] = (double)((cpu1 - cpu0) - (me1 - me0)) / n;
        wall[r] = (double)(t1 - t0) / n;
    }
    printf("# bench_fold: %d M captured records over %d live blocks, median of %d runs\n",
           2 * PAIRS / 1000000, LIVE, REPS);
    bench_metric("fold_bench_record_cpu_ns_per_record", bench_median(rec, REPS), 1);
    bench_metric("fold_bench_fold_cpu_ns_per_record", bench_median(fold, REPS), 1);
    bench_metric("fold_bench_wall_ns_per_record", bench_median(wall, REPS), 1);
    return 0;
}
