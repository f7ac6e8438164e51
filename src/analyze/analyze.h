/* analyze.h — a report from one snapshot: totals, rates, hotspots by call
 * site, scaled to estimates when sampling. Takes plain data only. */
#ifndef MS_ANALYZE_ANALYZE_H
#define MS_ANALYZE_ANALYZE_H

#include <memscope.h>

#include "snapshot/snapshot.h"

typedef struct ms__analyze_opts {
    double sample_rate;   /* 1.0: figures are exact */
    uint64_t duration_ns; /* since the tracker started */
    uint64_t evicted_events;
    ms_system_snapshot *system; /* ms__malloc'd: the report takes it, freed on failure */
    size_t system_count;
    uint64_t system_overwritten;
} ms__analyze_opts;

ms_analysis_report *ms__analyze_snapshot(const ms_memory_snapshot *s, const ms__analyze_opts *o);

#endif
