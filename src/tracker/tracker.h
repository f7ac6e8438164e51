/* tracker.h — the tracker object and what the exporters need from it. */
#ifndef MS_TRACKER_TRACKER_H
#define MS_TRACKER_TRACKER_H

#include <memscope.h>
#include <pthread.h>

#include "analyze/analyze.h"
#include "store/store.h"

struct ms_tracker {
    ms_event_store *store;
    /* Sampling: off records every TRACK. Written under cfg_lock, read
     * relaxed on the recording path. */
    _Atomic bool sampling_on;
    /* ln(1 - rate), for the geometric gaps between sampled TRACKs; written
     * with sampling_on (under cfg_lock), read on the sampling slow path. */
    _Atomic double log1m_rate;
    pthread_mutex_t cfg_lock; /* guards sampling and auto_export */
    ms_sampling_config sampling;
    char *auto_export;
    uint64_t start_ns, start_mono_ns;
    bool is_global;
};

ms_sampling_config ms__tracker_sampling(ms_tracker *t);
/* Analyse; when `keep` is not NULL, the snapshot used is handed to the caller,
 * and `stats` (optional) receives the exact figures of the same moment. */
ms_analysis_report *ms__tracker_analyze(ms_tracker *t, ms_memory_snapshot **keep,
                                        ms_memory_stats *stats);
/* Write and forget the auto-export, if one is set. */
void ms__tracker_auto_export(ms_tracker *t);

#endif
