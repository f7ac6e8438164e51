/* bench_clock.c — what the recording path's building blocks cost on this
 * machine: the clock reads docs/design.md compares (section 3) and the
 * membarrier the fold issues (section 4). Medians of repeated runs. */
#define _GNU_SOURCE
#include <linux/membarrier.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "common/clock.h"

enum { REPS = 7, N = 2000000, N_BARRIER = 20000 };

static volatile uint64_t sink;

#define TIME_LOOP(name, n, body)                                                                   \
    do {                                                                                           \
        double v[REPS];                                                                            \
        for (int r = 0; r < REPS; r++) {                                                           \
            uint64_t acc = 0, t0 = bench_now_ns();                                                 \
            for (int i = 0; i < (n); i++) {                                                        \
                body;                                                                              \
            }                                                                                      \
            v[r] = (double)(bench_now_ns() - t0) / (n);                                            \
            sink = acc;                                                                            \
        }                                                                                          \
        bench_metric(name, bench_median(v, REPS), 1);                                              \
    } while (0)

int main(void)
{
    bench_init_output();
    ms__clock_init();
    printf("# bench_clock: ns per call, median of %d runs; recording clock is %s\n", REPS,
           ms__clock_use_tsc ? "the TSC" : "CLOCK_MONOTONIC");
    TIME_LOOP("clock_gettime_monotonic_ns", N, {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        acc += (uint64_t)ts.tv_nsec;
    });
    TIME_LOOP("ticks_plain_ns", N, acc += ms__ticks());
    TIME_LOOP("ticks_ordered_ns", N, acc += ms__ticks_ordered());
#if MS__HAVE_TSC
    TIME_LOOP("rdtscp_ns", N, {
        unsigned aux;
        acc += __rdtscp(&aux);
    });
#endif
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        TIME_LOOP("membarrier_private_expedited_ns", N_BARRIER,
                  acc += (uint64_t)syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0));
    else
        printf("# membarrier: not available here (the recording path fences instead)\n");
    return 0;
}
