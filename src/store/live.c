/* live.c — applies event records to the live state (see live.h and
 * docs/semantics.md). Open addressing with linear probing and backward-shift
 * deletion, so churn leaves no tombstones. */
#include "store/live.h"

#include <string.h>

#include "common/atomic.h"
#include "common/pages.h"
#include "stack/stack.h"
#include "store/filter.h"

#define MIN_BLOCKS 1024u
#define MIN_SITES 64u /* a power of two */

#define hash_ptr ms__hash_ptr

int ms__live_init(ms__live *l, uint64_t series_width)
{
    memset(l, 0, sizeof *l);
    l->bcap = MIN_BLOCKS;
    l->bshift = 64u - (unsigned)__builtin_ctzll(MIN_BLOCKS);
    l->bgrow = ms__live_grow_at(MIN_BLOCKS);
    l->site_list_cap = MIN_SITES;
    l->site_index_cap = 2 * MIN_SITES;
    while (l->width_shift < 62 && (UINT64_C(1) << l->width_shift) < series_width)
        l->width_shift++;
    // The two hash tables are probed before they are written (pages.h).
    l->blocks = ms__pages_alloc_written(l->bcap * sizeof *l->blocks);
    l->site_list = ms__pages_alloc(l->site_list_cap * sizeof *l->site_list);
    l->site_index = ms__pages_alloc_written(l->site_index_cap * sizeof *l->site_index);
    l->threads = ms__pages_alloc(MS__TIDS_CAP * sizeof *l->threads);
    l->thread_used = ms__pages_alloc(MS__TIDS_CAP * sizeof *l->thread_used);
    l->series = ms__pages_alloc(MS__SERIES_CAP * sizeof *l->series);
    l->site_count = 1; // [0]: the unnamed site
    if (!l->blocks || !l->site_list || !l->site_index || !l->threads || !l->thread_used ||
        !l->series) {
        ms__live_destroy(l);
        return MS_ENOMEM;
    }
    return 0;
}

void ms__live_destroy(ms__live *l)
{
    ms__pages_free(l->blocks, l->bcap * sizeof *l->blocks);
    ms__pages_free(l->site_list, l->site_list_cap * sizeof *l->site_list);
    ms__pages_free(l->site_index, l->site_index_cap * sizeof *l->site_index);
    ms__pages_free(l->threads, MS__TIDS_CAP * sizeof *l->threads);
    ms__pages_free(l->thread_used, MS__TIDS_CAP * sizeof *l->thread_used);
    ms__pages_free(l->series, MS__SERIES_CAP * sizeof *l->series);
    memset(l, 0, sizeof *l);
}

void ms__live_stats(const ms__live *l, ms_memory_stats *out)
{
    *out = (ms_memory_stats){
        .total_allocations = (size_t)l->allocs,
        .total_deallocations = (size_t)l->deallocs,
        .active_allocations = l->bcount,
        .total_allocated = l->allocated,
        .total_deallocated = l->deallocated,
        .current_memory = l->current,
        .peak_memory = l->peak,
        .unmatched_deallocations = (size_t)l->unmatched,
        .ignored_deallocations = l->ignored,
        .replaced_allocations = l->replaced,
        .unseen_deallocations = l->unseen,
    };
}

/* ------------------------------------------------------------- blocks */

const ms__block *ms__live_find(const ms__live *l, uintptr_t ptr)
{
    for (size_t i = ms__hash_ptr_shift(ptr, l->bshift);; i = (i + 1) & (l->bcap - 1)) {
        if (l->blocks[i].ptr == ptr)
            return &l->blocks[i];
        if (l->blocks[i].ptr == 0)
            return NULL;
    }
}

static bool grow_blocks(ms__live *l)
{
    size_t ncap = l->bcap * 2;
    ms__block *nb = ms__pages_alloc_written(ncap * sizeof *nb);
    if (!nb)
        return false;
    for (size_t i = 0; i < l->bcap; i++) {
        if (l->blocks[i].ptr == 0)
            continue;
        size_t j = hash_ptr(l->blocks[i].ptr, ncap);
        while (nb[j].ptr != 0)
            j = (j + 1) & (ncap - 1);
        nb[j] = l->blocks[i];
    }
    ms__pages_free(l->blocks, l->bcap * sizeof *l->blocks);
    l->blocks = nb;
    l->bcap = ncap;
    l->bgrow = ms__live_grow_at(ncap);
    l->bshift--;
    return true;
}

/* @return the slot holding `ptr` (*found) or the empty slot where it goes, or
 * NULL when the table is full and cannot grow. */
static inline __attribute__((always_inline)) ms__block *probe_for_insert(ms__live *l, uintptr_t ptr,
                                                                         bool *found)
{
    // Keep the load low enough that probes stay short (ms__live_grow_at).
    if (l->bcount >= l->bgrow && !grow_blocks(l)) {
        l->failed = true;
        if (l->bcount + 1 >= l->bcap) // truly full: refuse rather than loop
            return NULL;
    }
    size_t i = ms__hash_ptr_shift(ptr, l->bshift);
    while (l->blocks[i].ptr != 0 && l->blocks[i].ptr != ptr)
        i = (i + 1) & (l->bcap - 1);
    *found = l->blocks[i].ptr == ptr;
    return &l->blocks[i];
}

/* -------------------------------------------------------------- sites */

static bool grow_site_index(ms__live *l)
{
    size_t ncap = l->site_index_cap * 2;
    uint32_t *ni = ms__pages_alloc_written(ncap * sizeof *ni);
    if (!ni)
        return false;
    for (uint32_t idx = 1; idx < l->site_count; idx++) {
        size_t j = hash_ptr((uintptr_t)l->site_list[idx].site, ncap);
        while (ni[j])
            j = (j + 1) & (ncap - 1);
        ni[j] = idx + 1;
    }
    ms__pages_free(l->site_index, l->site_index_cap * sizeof *l->site_index);
    l->site_index = ni;
    l->site_index_cap = ncap;
    return true;
}

/* @return the index of `site`, adding it on first sight (0 if it cannot). */
static uint32_t site_idx(ms__live *l, const ms_site *site)
{
    if (!site)
        return 0;
    if (site == l->last_site)
        return l->last_site_idx;
    size_t i = hash_ptr((uintptr_t)site, l->site_index_cap);
    for (; l->site_index[i]; i = (i + 1) & (l->site_index_cap - 1)) {
        uint32_t idx = l->site_index[i] - 1;
        if (l->site_list[idx].site == site) {
            l->last_site = site;
            l->last_site_idx = idx;
            return idx;
        }
    }
    if (l->site_count == l->site_list_cap) {
        void *n = ms__pages_realloc(l->site_list, l->site_list_cap * sizeof *l->site_list,
                                    2 * l->site_list_cap * sizeof *l->site_list);
        if (!n) {
            l->failed = true;
            return 0;
        }
        l->site_list = n;
        l->site_list_cap *= 2;
    }
    if ((l->site_count + 1) * 2 > l->site_index_cap) {
        if (!grow_site_index(l)) {
            l->failed = true;
            return 0;
        }
        i = hash_ptr((uintptr_t)site, l->site_index_cap);
        while (l->site_index[i])
            i = (i + 1) & (l->site_index_cap - 1);
    }
    uint32_t idx = (uint32_t)l->site_count++;
    l->site_list[idx].site = site;
    l->site_index[i] = idx + 1;
    l->last_site = site;
    l->last_site_idx = idx;
    return idx;
}

/* ------------------------------------------------------------ threads */

static ms__thread_stat *thread_stat(ms__live *l, unsigned slot)
{
    ms__thread_stat *t = &l->threads[slot];
    if (ms_unlikely(!t->listed)) {
        t->listed = true;
        l->thread_used[l->thread_used_count++] = (uint16_t)slot;
    }
    return t;
}

/* ------------------------------------------------------------- series */

static void series_add(ms__live *l, uint64_t span_start)
{
    ms__point *last = &l->series[l->npoints - 1];
    if (span_start <= last->tick) {
        if (l->current > last->max)
            last->max = l->current;
        last->last = l->current;
    } else {
        l->series[l->npoints++] = (ms__point){span_start, l->current, l->current};
    }
}

/* Halve the resolution: merge the points that now share a span. */
static void series_coarsen(ms__live *l)
{
    l->width_shift++;
    size_t out = 0;
    for (size_t i = 0; i < l->npoints; i++) {
        uint64_t s =
            l->origin + ((l->series[i].tick - l->origin) >> l->width_shift << l->width_shift);
        if (out > 0 && l->series[out - 1].tick == s) {
            ms__point *p = &l->series[out - 1];
            if (l->series[i].max > p->max)
                p->max = l->series[i].max;
            p->last = l->series[i].last;
        } else {
            l->series[out] = l->series[i];
            l->series[out].tick = s;
            out++;
        }
    }
    l->npoints = out;
}

static __attribute__((noinline)) void series_note_slow(ms__live *l, uint64_t tick)
{
    if (l->npoints == 0) {
        l->origin = tick;
        l->series[0] = (ms__point){tick, l->current, l->current};
        l->npoints = 1;
    } else {
        uint64_t rel = tick > l->origin ? tick - l->origin : 0;
        for (;;) {
            uint64_t span_start = l->origin + (rel >> l->width_shift << l->width_shift);
            if (span_start <= l->series[l->npoints - 1].tick || l->npoints < MS__SERIES_CAP) {
                series_add(l, span_start);
                break;
            }
            series_coarsen(l);
        }
    }
    // Every point starts at the origin plus a multiple of the width, so a
    // tick before this lands in the last point (series_add's first case).
    l->series_next = l->series[l->npoints - 1].tick + (UINT64_C(1) << l->width_shift);
}

static inline void series_note(ms__live *l, uint64_t tick)
{
    if (ms_likely(tick < l->series_next)) { // the last point's span, most of the time
        ms__point *last = &l->series[l->npoints - 1];
        if (l->current > last->max)
            last->max = l->current;
        last->last = l->current;
        return;
    }
    series_note_slow(l, tick);
}

/* --------------------------------------------------------------- apply */

/* Close b; `r` is the record that ends it (NULL: replaced by a new block). */
static inline __attribute__((always_inline)) void close_block(ms__live *l, ms__block *b,
                                                              const ms__rec *r)
{
    ms__live_count_close(l, b, thread_stat(l, ms__block_slot(b)));
    if (ms_unlikely(b->stack & MS__BF_FILTERED) && l->filter &&
        !(r && (ms__rec_flags(r) & MS__RF_TAKEN)))
        ms__filter_release(l->filter, b->ptr);
    ms__live_remove(l, b);
}

/* The site a record counts under: its TRACK site; for a block capture saw
 * with no name, its allocating code address (the call of operator new or
 * strdup, not theirs of malloc); else none (0). */
static uint32_t rec_site(ms__live *l, const ms__rec *r, uint32_t stack)
{
    if (r->site || !stack || !(ms__rec_flags(r) & MS__RF_CAPTURED))
        return site_idx(l, r->site);
    if (stack == l->last_stack)
        return l->last_stack_site;
    uintptr_t pc = ms__stack_place(stack);
    uint32_t idx = pc ? site_idx(l, ms__pc_site(pc)) : 0;
    if (idx || !pc) { // not a site table that could not grow: try that again next time
        l->last_stack = stack;
        l->last_stack_site = idx;
    }
    return idx;
}

/* The block flags and stack id an allocation record gives its block. */
static uint32_t block_stack(const ms__rec *r, uint32_t stack)
{
    uint64_t f = ms__rec_flags(r);
    return stack | ((f & MS__RF_CAPTURED) ? MS__BF_CAPTURED : 0) |
           ((f & MS__RF_FILTERED) ? MS__BF_FILTERED : 0);
}

/* @return false, with nothing changed and l->taken set, for a captured block
 * at an address a live block holds, while l->wait_taken is set and the
 * caller `may_wait`. (Even the same thread's block: another thread may have
 * freed it at the same coarse tick, its record merging later.) */
static inline __attribute__((always_inline)) bool open_block(ms__live *l, const ms__rec *r,
                                                             uintptr_t ptr, uint64_t size,
                                                             uint32_t site, uint32_t stack,
                                                             bool may_wait)
{
    bool found;
    ms__block *b = probe_for_insert(l, ptr, &found);
    if (!b)
        return true;
    if (found && ms_unlikely(l->wait_taken) && may_wait && (stack & MS__BF_CAPTURED)) {
        l->taken = true;
        return false;
    }
    if (found) { // its earlier block was freed without us seeing it
        l->replaced++;
        close_block(l, b, NULL);
        b = probe_for_insert(l, ptr, &found); // deletion may have moved the run
    }
    unsigned slot = ms__rec_slot(r);
    ms__live_open_at(l, b, thread_stat(l, slot), slot, ptr, r->tick, size, site, stack);
    return true;
}

size_t ms__live_filter_all(ms__live *l)
{
    size_t added = 0;
    if (!l->filter)
        return 0;
    for (size_t i = 0; i < l->bcap; i++) {
        ms__block *b = &l->blocks[i];
        if (b->ptr && (b->stack & MS__BF_CAPTURED) && !(b->stack & MS__BF_FILTERED)) {
            ms__filter_add(l->filter, b->ptr);
            b->stack |= MS__BF_FILTERED;
            added++;
        }
    }
    return added;
}

void ms__live_unknown_free(ms__live *l, const ms__rec *r)
{
    if (l->sampling)
        l->ignored++;
    else if (ms__rec_flags(r) & MS__RF_CAPTURED)
        l->unseen++;
    else
        l->unmatched++;
}

/* TRACK under capture: give the live block at r->ptr the name r->site. The
 * block moves from its old site's figures to the new one's. */
static void name_block(ms__live *l, ms__block *b, const ms__rec *r)
{
    uint32_t to = site_idx(l, r->site);
    if (to == b->site)
        return;
    uint64_t size = ms__block_size(b);
    ms__site_stat *from = &l->site_list[b->site], *st = &l->site_list[to];
    from->allocs--;
    from->bytes -= size;
    from->live_count--;
    from->live_bytes -= size;
    st->allocs++;
    st->bytes += size;
    st->live_count++;
    st->live_bytes += size;
    b->site = to;
}

/* The two records of a moving realloc (MS__RF_MOVE). */
static bool apply_move(ms__live *l, const ms__rec *r)
{
    ms__thread_stat *t = thread_stat(l, ms__rec_slot(r));
    if (r->ptr == 0) { // the old block ends
        ms__block *b = (ms__block *)(uintptr_t)ms__live_find(l, r->old_ptr);
        t->move_pending = b != NULL;
        if (b) {
            t->move_site = b->site;
            t->move_stack = ms__block_stack(b);
            close_block(l, b, r);
        } else {
            ms__live_unknown_free(l, r);
        }
        return true;
    }
    uint32_t stack = ms__rec_stack(r);
    uint32_t site = rec_site(l, r, stack);
    if (t->move_pending) { // the new block keeps a name, and a stack if it has none
        const ms_site *was = l->site_list[t->move_site].site;
        if ((was && !ms__site_pc(was)) || site == 0)
            site = t->move_site;
        if (!stack)
            stack = t->move_stack;
    } else if (l->sampling) { // the block was not sampled: neither is its move
        if ((ms__rec_flags(r) & MS__RF_FILTERED) && l->filter)
            ms__filter_release(l->filter, r->ptr); // the hook counted it (add_counted)
        return true;
    }
    if (!open_block(l, r, r->ptr, ms__rec_size(r), site, block_stack(r, stack), true))
        return false;
    t->move_pending = false;
    return true;
}

bool ms__live_apply(ms__live *l, const ms__rec *r)
{
    switch (ms__rec_type(r)) {
    case MS_EVENT_ALLOCATE:
        if (r->ptr == 0)
            return true;
        if (!open_block(l, r, r->ptr, ms__rec_size(r), rec_site(l, r, ms__rec_stack(r)),
                        block_stack(r, ms__rec_stack(r)), true))
            return false;
        break;
    case MS_EVENT_DEALLOCATE: {
        if (r->ptr == 0) // free(NULL) does nothing
            return true;
        ms__block *b = (ms__block *)(uintptr_t)ms__live_find(l, r->ptr);
        if (ms_unlikely(ms__rec_flags(r) & MS__RF_SOFT)) {
            // UNTRACK under capture: the block's free() closes what capture saw.
            if (!b || (b->stack & MS__BF_CAPTURED))
                return true;
        }
        if (b)
            close_block(l, b, r);
        else if (l->hold_unknown_frees)
            return false;
        else
            ms__live_unknown_free(l, r);
        break;
    }
    case MS_EVENT_REALLOCATE: {
        if (ms_unlikely(ms__rec_flags(r) & MS__RF_MOVE)) {
            if (!apply_move(l, r))
                return false;
            break;
        }
        uint32_t stack = ms__rec_stack(r);
        uint32_t site = rec_site(l, r, stack);
        if (r->old_ptr != 0) {
            ms__block *b = (ms__block *)(uintptr_t)ms__live_find(l, r->old_ptr);
            if (b) {
                // A named block keeps its name; an unnamed one counts where
                // it was last (re)allocated.
                const ms_site *was = l->site_list[b->site].site;
                if (!r->site && ((was && !ms__site_pc(was)) || site == 0))
                    site = b->site;
                if (!stack)
                    stack = ms__block_stack(b);
                close_block(l, b, r);
            } else {
                ms__live_unknown_free(l, r);
                if (l->sampling) { // the block was not sampled: neither is its move
                    if ((ms__rec_flags(r) & MS__RF_FILTERED) && l->filter)
                        ms__filter_release(l->filter, r->ptr); // counted by the hook
                    return true;
                }
            }
        }
        // Waiting is only possible before anything was closed.
        if (r->ptr != 0 && !open_block(l, r, r->ptr, ms__rec_size(r), site, block_stack(r, stack),
                                       r->old_ptr == 0))
            return false;
        break;
    }
    case MS__REC_NAME: {
        ms__block *b = (ms__block *)(uintptr_t)ms__live_find(l, r->ptr);
        if (b) {
            name_block(l, b, r);
            return true;
        }
        if (l->sampling) // capture did not sample the block: leave it unnamed
            return true;
        // Capture never saw it (allocated before capture started, or not from
        // malloc): it is a block of the size TRACK gave, as without capture.
        open_block(l, r, r->ptr, ms__rec_size(r), site_idx(l, r->site),
                   block_stack(r, ms__rec_stack(r)), false);
        break;
    }
    default:
        return true;
    }
    if (l->current > l->peak)
        l->peak = l->current;
    series_note(l, r->tick);
    return true;
}
