/* bench_util.h — the few helpers every memscope benchmark shares: a monotonic
 * clock, medians, the process's resident memory, a fast PRNG and metric lines.
 * Benchmarks only; never linked into the library. Depends on libc and POSIX. */
#ifndef MEMSCOPE_BENCH_UTIL_H
#define MEMSCOPE_BENCH_UTIL_H

#include <stddef.h> /* size_t */
#include <stdint.h> /* uint64_t */

/* Nanoseconds from CLOCK_MONOTONIC. */
uint64_t bench_now_ns(void);

/* Nanoseconds of CPU time the calling thread has used (CLOCK_THREAD_CPUTIME_ID). */
uint64_t bench_thread_cpu_ns(void);

/* The median of v[0..n) (n > 0); sorts v in place. */
double bench_median(double *v, size_t n);

/* The resident set of this process in bytes, from /proc/self/statm; 0 if unreadable. */
uint64_t bench_rss_bytes(void);

/* The peak resident set (VmHWM) in bytes, from /proc/self/status; 0 if unreadable. */
uint64_t bench_peak_rss_bytes(void);

/* xorshift64*: deterministic, a couple of nanoseconds a draw. pre: *state != 0. */
uint64_t bench_rng_next(uint64_t *state);

/* Print "name: value" with `decimals` digits after the point, one per line,
 * so that docs and scripts can quote the figures. */
void bench_metric(const char *name, double value, int decimals);

/* Print a figure that is an exact count. */
void bench_metric_u64(const char *name, uint64_t value);

/* Make stdout line-buffered so that progress shows through a pipe. */
void bench_init_output(void);

#endif /* MEMSCOPE_BENCH_UTIL_H */
