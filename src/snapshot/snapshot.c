/* snapshot.c — the snapshot engine and the accessors of API.md. */
#include "snapshot/snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "store/store.h"

struct ms_snapshot_engine {
    ms_event_store *store;
};

static uint64_t to_ns(const ms__timebase *tb, uint64_t tick)
{
    return tb ? ms__timebase_ns(tb, tick) : tick;
}

static int cmp_thread(const void *a, const void *b)
{
    uint64_t x = ((const ms_thread_memory_stats *)a)->thread_id;
    uint64_t y = ((const ms_thread_memory_stats *)b)->thread_id;
    return (x > y) - (x < y);
}

ms_memory_snapshot *ms__snapshot_from_live(const ms__live *l, const ms__tids *tids,
                                           const ms__timebase *tb)
{
    ms_memory_snapshot *s = ms__calloc(1, sizeof *s);
    if (!s)
        goto oom;
    s->built_at_ns = ms__real_ns();
    ms__live_stats(l, &s->stats);
    memcpy(s->size_hist, l->size_hist, sizeof s->size_hist);
    s->allocs = ms__malloc(l->bcount * sizeof *s->allocs);
    s->threads = ms__malloc(l->thread_used_count * sizeof *s->threads);
    s->sites = ms__malloc(l->site_count * sizeof *s->sites);
    s->timeline = ms__malloc(l->npoints * sizeof *s->timeline);
    if (!s->allocs || !s->threads || !s->sites || !s->timeline)
        goto oom;
    for (size_t i = 0; i < l->bcap; i++) {
        const ms__block *b = &l->blocks[i];
        if (b->ptr == 0)
            continue;
        s->allocs[s->nallocs++] = (ms_active_allocation){
            .ptr = b->ptr,
            .size = (size_t)ms__block_size(b),
            .allocated_at = to_ns(tb, b->tick),
            .thread_id = ms__tids_get(tids, ms__block_slot(b)),
            .site = ms__public_site(ms__live_site(l, b->site)),
            .stack_id = ms__block_stack(b),
        };
    }
    for (size_t i = 0; i < l->thread_used_count; i++) {
        unsigned slot = l->thread_used[i];
        const ms__thread_stat *t = &l->threads[slot];
        s->threads[s->nthreads++] = (ms_thread_memory_stats){
            .thread_id = ms__tids_get(tids, slot),
            .allocation_count = (size_t)t->allocs,
            .total_allocated = t->allocated,
            .total_deallocated = t->deallocated,
            .current_memory = t->current,
            .peak_memory = t->peak,
            .deallocation_count = (size_t)t->frees,
        };
    }
    qsort(s->threads, s->nthreads, sizeof *s->threads, cmp_thread);
    for (size_t i = 0; i < l->site_count; i++) {
        const ms__site_stat *st = &l->site_list[i];
        if (st->allocs > 0)
            s->sites[s->nsites++] =
                (ms__site_summary){st->site, st->allocs, st->bytes, st->live_count, st->live_bytes};
    }
    for (size_t i = 0; i < l->npoints; i++)
        s->timeline[s->npoints++] =
            (ms__timeline_point){to_ns(tb, l->series[i].tick), l->series[i].max, l->series[i].last};
    return s;
oom:
    ms_snapshot_free(s);
    ms__fail(MS_ENOMEM, "out of memory building a snapshot");
    return NULL;
}

ms_memory_snapshot *ms__snapshot_of_store(ms_event_store *store, ms_memory_stats *full)
{
    const ms__timebase *tb = ms__store_timebase(store);
    ms__store_lock_folded(store);
    ms_memory_snapshot *s = ms__snapshot_from_live(&store->live, store->tids, tb);
    if (s)
        s->stats.dropped_events =
            ms_atomic_load_relaxed(&store->dropped) + store->replay_extra.dropped_events;
    if (full)
        ms__store_stats_locked(store, full);
    ms__store_unlock(store);
    return s;
}

/* ------------------------------------------------------------ public */

ms_snapshot_engine *ms_snapshot_engine_new(ms_event_store *s)
{
    if (!s) {
        ms__fail(MS_EINVAL, "event store is NULL");
        return NULL;
    }
    ms_snapshot_engine *e = ms__malloc(sizeof *e);
    if (!e) {
        ms__fail(MS_ENOMEM, NULL);
        return NULL;
    }
    e->store = s;
    return e;
}

void ms_snapshot_engine_free(ms_snapshot_engine *e) { ms__free(e); }

ms_memory_snapshot *ms_snapshot_engine_build(ms_snapshot_engine *e)
{
    if (!e) {
        ms__fail(MS_EINVAL, "snapshot engine is NULL");
        return NULL;
    }
    return ms__snapshot_of_store(e->store, NULL);
}

ms_memory_snapshot *ms_snapshot_build_from_events(const ms_memory_event *ev, size_t n)
{
    if (!ev && n > 0) {
        ms__fail(MS_EINVAL, "events is NULL");
        return NULL;
    }
    ms__live l;
    ms__tids *tids = ms__tids_new();
    if (!tids || ms__live_init(&l, UINT64_C(1) << 20) != 0) {
        ms__tids_free(tids);
        ms__fail(MS_ENOMEM, "out of memory replaying events");
        return NULL;
    }
    uint64_t skipped = 0;
    for (size_t i = 0; i < n; i++) {
        const ms_memory_event *e = &ev[i];
        if (i + 16 < n) // the table is probed at random: overlap the misses
            ms__live_prefetch(&l, ev[i + 16].type == MS_EVENT_REALLOCATE && ev[i + 16].old_ptr
                                      ? ev[i + 16].old_ptr
                                      : ev[i + 16].ptr);
        uint32_t slot = ms__tids_intern(tids, e->thread_id);
        if (!ms__event_fits(e) || slot == MS__TIDS_FULL) {
            skipped++;
            continue;
        }
        ms__rec r;
        ms__rec_set(&r, e->timestamp, (unsigned)e->type, slot, e->ptr, e->old_ptr, e->size,
                    e->old_size, e->site);
        ms__live_apply(&l, &r);
    }
    ms_memory_snapshot *s = ms__snapshot_from_live(&l, tids, NULL);
    if (s)
        s->stats.dropped_events = skipped;
    ms__live_destroy(&l);
    ms__tids_free(tids);
    return s;
}

void ms_snapshot_free(ms_memory_snapshot *s)
{
    if (!s)
        return;
    ms__free(s->allocs);
    ms__free(s->threads);
    ms__free(s->sites);
    ms__free(s->timeline);
    ms__free(s);
}

size_t ms_snapshot_active_count(const ms_memory_snapshot *s)
{
    return s ? s->stats.active_allocations : 0;
}

uint64_t ms_snapshot_current_memory(const ms_memory_snapshot *s)
{
    return s ? s->stats.current_memory : 0;
}

uint64_t ms_snapshot_peak_memory(const ms_memory_snapshot *s)
{
    return s ? s->stats.peak_memory : 0;
}

ms_memory_stats ms_snapshot_stats(const ms_memory_snapshot *s)
{
    return s ? s->stats : (ms_memory_stats){0};
}

const ms_active_allocation *ms_snapshot_allocations(const ms_memory_snapshot *s, size_t *count)
{
    if (count)
        *count = s ? s->nallocs : 0;
    return s ? s->allocs : NULL;
}

const ms_thread_memory_stats *ms_snapshot_threads(const ms_memory_snapshot *s, size_t *count)
{
    if (count)
        *count = s ? s->nthreads : 0;
    return s ? s->threads : NULL;
}
