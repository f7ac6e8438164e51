/* monitor.h — the system monitor: one sampler thread ("memscope-mon") for
 * every monitoring tracker of the process. Each tracker embeds an ms__mon:
 * its latest sample (a latch: readers never wait), a bounded ring of past
 * samples and its own interval. The sampler reads the counters once per
 * wake-up (sysinfo.h) and hands a sample to each tracker that is due.
 * Depends on sysinfo.h and common/. docs/system-metrics.md has the design. */
#ifndef MS_MONITOR_MONITOR_H
#define MS_MONITOR_MONITOR_H

#include <memscope.h>

#include "common/atomic.h"
#include "monitor/sysinfo.h"

#define MS__SNAP_WORDS ((sizeof(ms_system_snapshot) + 7) / 8)
#define MS__MON_MAX_INTERVAL_MS 3600000u
#define MS__MON_MAX_HISTORY ((size_t)1 << 24)

/* Zeroed is the initial state: not monitoring, default interval and history. */
typedef struct ms__mon {
    /* The latest sample as a latch (a seqcount with two copies): the writer
     * updates copy[0] while seq is odd and copy[1] while it is even; a reader
     * reads the copy seq points away from and retries if seq moved during
     * its read (at one update per interval, practically never). It never
     * waits for the writer. Words are atomics, so no read is ever torn. */
    _Atomic uint64_t seq;
    _Atomic uint64_t copy[2][MS__SNAP_WORDS];
    /* Everything below is under the monitor's lock. */
    unsigned interval_ms; /* 0: MS_MONITOR_DEFAULT_INTERVAL_MS */
    size_t history;       /* 0: MS_MONITOR_DEFAULT_HISTORY */
    bool active;          /* in the sampler's list */
    struct ms__mon *next;
    uint64_t next_due;        /* CLOCK_MONOTONIC ns */
    ms__sys_raw prev;         /* the reading the next window starts from */
    ms_system_snapshot *ring; /* ring_cap slots (mmap'd), oldest at ring_first */
    size_t ring_cap, ring_first, ring_count;
    uint64_t overwritten;
} ms__mon;

/* Read a baseline and join the sampler (starting its thread if needed).
 * Does nothing if already monitoring. @return 0 or MS_E... (error set). */
int ms__mon_start(ms__mon *m);
/* Leave the sampler; joins its thread when m was the last. Samples stay. */
void ms__mon_stop(ms__mon *m);
/* After ms__mon_stop: release the ring. */
void ms__mon_release(ms__mon *m);
/* Forget m's samples (none overwritten either): a traced fork child's report
 * must not show its parent's as its own. */
void ms__mon_forget(ms__mon *m);
int ms__mon_set_interval(ms__mon *m, unsigned interval_ms);
int ms__mon_set_history(ms__mon *m, size_t samples);

/* The latest sample; zeros if there is none. Lock-free, any thread. */
ms_system_snapshot ms__mon_current(ms__mon *m);
/* A copy of the kept samples, oldest first (ms__malloc; NULL when none), and
 * how many were overwritten. @return 0 or MS_ENOMEM. */
int ms__mon_samples(ms__mon *m, ms_system_snapshot **out, size_t *count, uint64_t *overwritten);

/* The samples of m's history from number `seen` on (numbered from the
 * first sample m ever kept), oldest first, into *out (ms__malloc; NULL when
 * none); *next is the number after the newest, *lost how many from `seen`
 * on were overwritten before this call. @return 0 or MS_ENOMEM. */
int ms__mon_samples_since(ms__mon *m, uint64_t seen, ms_system_snapshot **out, size_t *count,
                          uint64_t *next, uint64_t *lost);

/* A tracker rebuilt from a trace: keep `s` (if not NULL) as the next sample
 * of m's history (and its latest), with `overwritten` older ones counted as
 * lost. For a monitor that does not run. @return 0 or MS_ENOMEM. */
int ms__mon_replay(ms__mon *m, const ms_system_snapshot *s, uint64_t overwritten);

/* Publish `s` as m's latest sample (the sampler is the only writer). */
void ms__mon_publish(ms__mon *m, const ms_system_snapshot *s);

/* For benchmarks and tests: the sampler thread's own CPU time and the
 * number of readings it made, since the running sampler thread started. */
void ms__mon_self_cost(uint64_t *cpu_ns, uint64_t *readings);
/* For tests: the NVML library to load instead of libnvidia-ml.so.1 (before
 * the first monitor starts), and why GPU figures are unavailable ("" if they
 * are available, or NVML was not tried yet). */
void ms__mon_set_nvml_library(const char *path);
const char *ms__mon_gpu_status(void);

#endif
