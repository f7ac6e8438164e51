/* live.h — the exact live state: active blocks, totals, per-thread and
 * per-site figures, peak, and a down-sampled series of current memory.
 * Updated one record at a time, in order, by one writer (the store's fold, or
 * a replay). Its memory comes from pages (never malloc): the fold runs inside
 * the recording path. Depends on common/ and rec.h. The rules it applies are
 * written in docs/semantics.md. */
#ifndef MS_STORE_LIVE_H
#define MS_STORE_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/atomic.h"
#include "store/rec.h"
#include "store/tids.h"

typedef struct ms__block {
    uintptr_t ptr;   /* 0 = empty slot */
    uint64_t tick;   /* when it was allocated */
    uint64_t size_w; /* size:48 | owning thread slot:16 */
    uint32_t site;   /* index into ms__live.site_list (0: not named) */
    uint32_t stack;  /* stack id:30 (0: none) | MS__BF_* flags */
} ms__block;

#define MS__BF_CAPTURED (1u << 31) /* allocated through the malloc hooks */
#define MS__BF_FILTERED (1u << 30) /* counted in the sampled filter */
#define MS__BF_STACK_MASK ((1u << 30) - 1)

static inline uint64_t ms__block_size(const ms__block *b) { return b->size_w & MS__SIZE_MASK; }
static inline unsigned ms__block_slot(const ms__block *b) { return (unsigned)(b->size_w >> 48); }
static inline uint32_t ms__block_stack(const ms__block *b) { return b->stack & MS__BF_STACK_MASK; }

typedef struct ms__site_stat {
    const ms_site *site; /* NULL for index 0, the blocks that were not named */
    uint64_t allocs, bytes, live_count, live_bytes;
} ms__site_stat;

typedef struct ms__thread_stat {
    uint64_t allocs, frees, allocated, deallocated, current, peak;
    uint32_t move_site, move_stack; /* the block a moving realloc closed (MS__RF_MOVE) */
    bool move_pending;
    bool listed; /* in thread_used */
} ms__thread_stat;

typedef struct ms__point {
    uint64_t tick; /* start of the span */
    uint64_t max;  /* largest current memory in the span */
    uint64_t last; /* current memory at the span's end */
} ms__point;

#define MS__SERIES_CAP 1024

/* Allocation sizes in power-of-two buckets: bucket 0 holds size 0, bucket k
 * (1..64) sizes in [2^(k-1), 2^k). */
#define MS__SIZE_BUCKETS 65

static inline unsigned ms__size_bucket(uint64_t size)
{
    return size ? 64u - (unsigned)__builtin_clzll(size) : 0u;
}

typedef struct ms__live {
    ms__block *blocks;
    size_t bcap, bcount;      /* bcap is a power of two */
    size_t bgrow;             /* the table grows before bcount passes this (ms__live_grow_at) */
    unsigned bshift;          /* 64 - log2(bcap): ms__hash_ptr_shift's shift for `blocks` */
    ms__site_stat *site_list; /* dense, index-stable; [0] is the unnamed site */
    size_t site_count, site_list_cap;
    uint32_t *site_index; /* open addressing by site pointer: index + 1, 0 empty */
    size_t site_index_cap;
    const ms_site *last_site; /* one-entry cache: consecutive events share sites */
    uint32_t last_site_idx;
    uint32_t last_stack, last_stack_site; /* one-entry cache: a stack's top frame's site */
    ms__thread_stat *threads; /* MS__TIDS_CAP entries, by slot (pages, touched lazily) */
    uint16_t *thread_used;    /* slots in first-use order */
    size_t thread_used_count;
    uint64_t allocs, deallocs, allocated, deallocated, current, peak;
    uint64_t unmatched, ignored, replaced;
    uint64_t unseen;                      /* captured frees of blocks capture never saw allocated */
    uint64_t size_hist[MS__SIZE_BUCKETS]; /* every block opened, by ms__size_bucket */
    bool sampling;           /* frees of unknown blocks are "ignored", not "unmatched" */
    bool hold_unknown_frees; /* the store's fold: hand such frees back (see store.c) */
    /* The store's fold: a captured allocation at an address another thread's
     * block holds is handed back (ms__live_apply returns false and sets
     * `taken`) instead of replacing it (store.c, "taken addresses"). */
    bool wait_taken, taken;
    ms__point *series;
    size_t npoints;
    unsigned width_shift; /* a point spans 1 << width_shift ticks */
    uint64_t series_next; /* where the last point's span ends (0: no point yet) */
    uint64_t origin;
    bool failed; /* a table could not grow: figures may be incomplete */
    /* The store's sampled filter (ms__filter), or NULL: closing a block that
     * was counted in it takes it out again. */
    struct ms__filter *filter;
} ms__live;

/* The most blocks a table of `cap` slots holds before it doubles: a quarter
 * of it while it is small (up to 1 MiB: a live set a program churns through
 * stays in short probe runs; at half full, each free's backward shift looked
 * at 2 more blocks, and 0.7 makes runs about three times longer again), 0.7
 * of it beyond (a large live set keeps its memory down). */
#define MS__LIVE_SPARSE_CAP 32768u
static inline size_t ms__live_grow_at(size_t cap)
{
    return cap <= MS__LIVE_SPARSE_CAP ? cap / 4 : cap * 7 / 10;
}

/* pre: series_width is a power of two (ticks per point at the start). */
int ms__live_init(ms__live *l, uint64_t series_width);
void ms__live_destroy(ms__live *l);
/* Apply one record. @return false (and nothing applied) for a free of an
 * address that is not live while hold_unknown_frees is set, or for a taken
 * address while wait_taken is set (then `taken` is set). */
bool ms__live_apply(ms__live *l, const ms__rec *r);
/* Put every live block capture recorded into the sampled filter (sampling
 * starts: their frees must still be recorded). @return how many it added. */
size_t ms__live_filter_all(ms__live *l);
/* Count the free `r` of an address that was not live (unmatched; ignored
 * while sampling; unseen when capture recorded it). */
void ms__live_unknown_free(ms__live *l, const ms__rec *r);
/* Fibonacci hashing: the top bits of the address times 2^64 / phi, so that
 * addresses at strides of any power of two do not cluster. `shift` is 64 -
 * log2(the table's capacity); ms__hash_ptr takes the capacity itself
 * (pre: a power of two). */
static inline size_t ms__hash_ptr_shift(uintptr_t p, unsigned shift)
{
    return (size_t)(((uint64_t)p * UINT64_C(0x9E3779B97F4A7C15)) >> shift);
}
static inline size_t ms__hash_ptr(uintptr_t p, size_t cap)
{
    return ms__hash_ptr_shift(p, 64u - (unsigned)__builtin_ctzll((unsigned long long)cap));
}

/* Backward-shift deletion in linear probing: may the entry at `i`, whose home
 * slot is `home`, move back into the hole at `hole`? Only if its home does not
 * lie cyclically in (hole, i]. */
static inline bool ms__probe_may_move(size_t hole, size_t i, size_t home)
{
    return (hole <= i) ? !(hole < home && home <= i) : !(hole < home || home <= i);
}

/* Hint that a record for `ptr` will be applied soon (prefetches its slot). */
static inline void ms__live_prefetch(const ms__live *l, uintptr_t ptr)
{
    __builtin_prefetch(&l->blocks[ms__hash_ptr_shift(ptr, l->bshift)]);
}
/* @return the live block at ptr, or NULL. */
const ms__block *ms__live_find(const ms__live *l, uintptr_t ptr);

/* Take the block b out of the table: backward-shift deletion pulls the later
 * members of its probe run into the hole, so churn leaves no tombstones. */
static inline __attribute__((always_inline)) void ms__live_remove(ms__live *l, ms__block *b)
{
    size_t mask = l->bcap - 1;
    size_t hole = (size_t)(b - l->blocks);
    for (size_t i = (hole + 1) & mask; l->blocks[i].ptr != 0; i = (i + 1) & mask) {
        size_t home = ms__hash_ptr_shift(l->blocks[i].ptr, l->bshift);
        if (ms__probe_may_move(hole, i, home)) {
            l->blocks[hole] = l->blocks[i];
            hole = i;
        }
    }
    l->blocks[hole].ptr = 0;
    l->bcount--;
}

/* Open a block in the empty slot b (found by a probe for ptr), of thread t
 * (slot `slot`), and add it to its thread's, its site's and the totals'
 * figures. Peak and the series are the caller's. */
static inline __attribute__((always_inline)) void
ms__live_open_at(ms__live *l, ms__block *b, ms__thread_stat *t, unsigned slot, uintptr_t ptr,
                 uint64_t tick, uint64_t size, uint32_t site, uint32_t stack)
{
    l->bcount++;
    b->ptr = ptr;
    b->site = site;
    b->stack = stack;
    b->tick = tick;
    b->size_w = size | (uint64_t)slot << 48;
    t->allocs++;
    t->allocated += size;
    t->current += size;
    if (t->current > t->peak)
        t->peak = t->current;
    ms__site_stat *st = &l->site_list[site];
    st->allocs++;
    st->bytes += size;
    st->live_count++;
    st->live_bytes += size;
    l->allocs++;
    l->allocated += size;
    l->current += size;
    l->size_hist[ms__size_bucket(size)]++;
}

/* Take the live block b out of its owner's (thread `owner`), its site's and
 * the totals' figures; the caller then removes it from the table. */
static inline __attribute__((always_inline)) void
ms__live_count_close(ms__live *l, const ms__block *b, ms__thread_stat *owner)
{
    uint64_t size = ms__block_size(b);
    owner->frees++;
    owner->deallocated += size;
    owner->current -= size;
    ms__site_stat *st = &l->site_list[b->site];
    st->live_count--;
    st->live_bytes -= size;
    l->deallocs++;
    l->deallocated += size;
    l->current -= size;
}

/* The type and flag bits (old_w >> 48) of the two records capture makes most. */
#define MS__COMMON_ALLOC (((MS__RF_CAPTURED | MS__RF_STACK) >> 48) | MS_EVENT_ALLOCATE)
#define MS__COMMON_FREE ((MS__RF_CAPTURED >> 48) | MS_EVENT_DEALLOCATE)

/* The records capture makes most, applied inline by the store's fold: the
 * allocation of an address that is not live, with a stack whose site the
 * one-entry cache holds, and the free of a live block that is not in the
 * sampled filter; from threads already listed, inside the timeline's last
 * point, and with room in the table. @return whether r was applied, exactly
 * as ms__live_apply would apply it; false: nothing changed, and
 * ms__live_apply must take r (test_fold compares the two). */
static inline __attribute__((always_inline)) bool ms__live_apply_common(ms__live *l,
                                                                        const ms__rec *r)
{
    uintptr_t ptr = r->ptr;
    if (ms_unlikely(r->tick >= l->series_next) || r->site != NULL || ptr == 0)
        return false;
    uint64_t head = r->old_w >> 48;
    ms__block *blocks = l->blocks;
    size_t mask = l->bcap - 1;
    size_t i = ms__hash_ptr_shift(ptr, l->bshift);
    if (head == MS__COMMON_ALLOC) {
        uint32_t stack = (uint32_t)(r->old_w & MS__SIZE_MASK);
        ms__thread_stat *t = &l->threads[ms__rec_slot(r)];
        if (stack != l->last_stack || !t->listed || l->bcount >= l->bgrow)
            return false;
        for (; blocks[i].ptr != 0; i = (i + 1) & mask)
            if (blocks[i].ptr == ptr) // taken, or replaced: ms__live_apply decides
                return false;
        ms__live_open_at(l, &blocks[i], t, ms__rec_slot(r), ptr, r->tick, ms__rec_size(r),
                         l->last_stack_site, stack | MS__BF_CAPTURED);
        if (l->current > l->peak)
            l->peak = l->current;
    } else if (head == MS__COMMON_FREE) {
        for (; blocks[i].ptr != ptr; i = (i + 1) & mask)
            if (blocks[i].ptr == 0) // not live: ms__live_apply (or the fold's hold) decides
                return false;
        ms__block *b = &blocks[i];
        if (b->stack & MS__BF_FILTERED)
            return false;
        ms__live_count_close(l, b, &l->threads[ms__block_slot(b)]); // listed when b opened
        ms__live_remove(l, b);
    } else {
        return false;
    }
    ms__point *last = &l->series[l->npoints - 1];
    if (l->current > last->max)
        last->max = l->current;
    last->last = l->current;
    return true;
}

/* The live state's figures (the store-level counters are left 0). */
void ms__live_stats(const ms__live *l, ms_memory_stats *out);

static inline const ms_site *ms__live_site(const ms__live *l, uint32_t idx)
{
    return l->site_list[idx].site;
}

/* Blocks capture recorded without a TRACK name are counted per allocating
 * code address: the site table keys them by a tagged address (never a real
 * ms_site pointer, which is aligned). Public views turn these into NULL. */
static inline const ms_site *ms__pc_site(uintptr_t pc)
{
    return (const ms_site *)(((uintptr_t)pc << 1) | 1);
}
static inline uintptr_t ms__site_pc(const ms_site *s)
{
    // Sign-extending: a replay's stand-in addresses have their top bits set
    // (stack/stack.h), which the tag's shift would otherwise lose.
    return ((uintptr_t)s & 1) ? (uintptr_t)((intptr_t)s >> 1) : 0;
}
static inline const ms_site *ms__public_site(const ms_site *s)
{
    return ((uintptr_t)s & 1) ? NULL : s;
}

#endif
