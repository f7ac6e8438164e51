/* clock.h — the recording clock. Ticks are the invariant TSC where the kernel
 * itself uses it as its clocksource (x86-64), else CLOCK_MONOTONIC nanoseconds.
 * Reading ticks is no system call. Depends on nothing.
 *
 * Ordering: ms__ticks() may execute before earlier loads complete. Allocations
 * and frees use it (a free read too early is put back in order by the fold's
 * held frees). ms__ticks_ordered() waits for all earlier loads first (lfence):
 * reallocations and the fold's watermark use it. See docs/design.md. */
#ifndef MS_COMMON_CLOCK_H
#define MS_COMMON_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define MS__HAVE_TSC 1
#else
#define MS__HAVE_TSC 0
#endif

extern bool ms__clock_use_tsc; /* written once by ms__clock_init, read-only after */

/* pre: nothing. Idempotent, thread-safe; reads the clocksource once. */
void ms__clock_init(void);

static inline uint64_t ms__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t ms__real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t ms__ticks(void)
{
#if MS__HAVE_TSC
    if (ms__clock_use_tsc)
        return __rdtsc();
#endif
    return ms__mono_ns();
}

static inline uint64_t ms__ticks_ordered(void)
{
#if MS__HAVE_TSC
    if (ms__clock_use_tsc) {
        _mm_lfence();
        return __rdtsc();
    }
#endif
    return ms__mono_ns();
}

/* A fixed linear map from ticks to ns since the Unix epoch. Calibrated once per
 * process (at least 5 ms after ms__clock_init), then never changed, so the same
 * tick always converts to the same ns. */
typedef struct ms__timebase {
    uint64_t tick0; /* ticks at ms__clock_init */
    uint64_t ns0;   /* CLOCK_REALTIME ns at tick0 */
    double ns_per_tick;
} ms__timebase;

const ms__timebase *ms__clock_timebase(void);
/* Calibrate now if not done yet, over whatever span has passed: for the
 * report written as the process exits, whose ticks all lie in that span (a
 * process that lived under 5 ms need not wait to be timed). */
void ms__clock_calibrate_at_exit(void);

static inline uint64_t ms__timebase_ns(const ms__timebase *tb, uint64_t tick)
{
    // Saturated: a trace's timebase and ticks may be anything.
    double d = (double)(tick >= tb->tick0 ? tick - tb->tick0 : tb->tick0 - tick) * tb->ns_per_tick;
    uint64_t v = d < 1.8e19 ? (uint64_t)d : UINT64_MAX;
    if (tick >= tb->tick0)
        return v > UINT64_MAX - tb->ns0 ? UINT64_MAX : tb->ns0 + v;
    return v > tb->ns0 ? 0 : tb->ns0 - v;
}

/* Ticks in one millisecond, rounded to a power of two (for bucket widths). */
uint64_t ms__clock_ticks_per_ms_pow2(void);

#endif
