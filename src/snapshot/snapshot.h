/* snapshot.h — snapshots: plain copies of a live state, made from the store's
 * live state (O(live blocks)) or from a replay of events (O(events)); both go
 * through ms__live so they agree. Depends on store/. */
#ifndef MS_SNAPSHOT_SNAPSHOT_H
#define MS_SNAPSHOT_SNAPSHOT_H

#include <memscope.h>

#include "common/clock.h"
#include "store/live.h"
#include "store/tids.h"

typedef struct ms__site_summary {
    const ms_site *site; /* NULL for blocks that were not named */
    uint64_t allocs, bytes, live_count, live_bytes;
} ms__site_summary;

typedef struct ms__timeline_point {
    uint64_t timestamp_ns, max_bytes, current_bytes;
} ms__timeline_point;

struct ms_memory_snapshot {
    ms_memory_stats stats;
    ms_active_allocation *allocs;
    size_t nallocs;
    ms_thread_memory_stats *threads; /* ascending thread_id */
    size_t nthreads;
    ms__site_summary *sites;
    size_t nsites;
    ms__timeline_point *timeline;
    size_t npoints;
    uint64_t size_hist[MS__SIZE_BUCKETS]; /* allocations by size (live.h) */
    uint64_t built_at_ns;
};

/* Copy `l` into a new snapshot. `tb` converts ticks to ns (NULL: ticks are ns).
 * @return NULL (ms_last_error set) when out of memory. */
ms_memory_snapshot *ms__snapshot_from_live(const ms__live *l, const ms__tids *tids,
                                           const ms__timebase *tb);

/* Build a snapshot of the store's live state; `full` (optional) receives the
 * store's complete figures from the same fold. pre: s != NULL. */
ms_memory_snapshot *ms__snapshot_of_store(ms_event_store *s, ms_memory_stats *full);

#endif
