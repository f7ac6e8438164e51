/* rec.h — the 48-byte event record the store keeps, in per-thread segments
 * and in the retained log. Plain data; depends on nothing but <memscope.h>. */
#ifndef MS_STORE_REC_H
#define MS_STORE_REC_H

#include <memscope.h>
#include <stdbool.h>
#include <stdint.h>

#define MS__SIZE_BITS 48
#define MS__SIZE_MASK ((UINT64_C(1) << MS__SIZE_BITS) - 1)
#define MS__SIZE_LIMIT (UINT64_C(1) << MS__SIZE_BITS) /* sizes must be below this */

typedef struct ms__rec {
    uint64_t tick;       /* store clock (ms__ticks), or ns in a replay */
    uintptr_t ptr;       /* the block (the new one for a reallocation) */
    uintptr_t old_ptr;   /* reallocation only */
    const ms_site *site; /* NULL when not named */
    uint64_t size_w;     /* size:48 | thread slot:16 */
    uint64_t old_w;      /* old_size:48 (a stack id with MS__RF_STACK) | type:2 | flags */
} ms__rec;

/* Internal record type beside ms_event_type: TRACK under capture names the
 * live block at ptr (size: what to open if capture never saw it). */
#define MS__REC_NAME 3u

/* Flags in the top bits of old_w. Events recorded by TRACK and by capture have
 * no old size, so their low 48 bits may carry a stack id instead. */
#define MS__RF_CAPTURED (UINT64_C(1) << 50) /* from the malloc hooks */
#define MS__RF_STACK (UINT64_C(1) << 51)    /* low 48 bits: a stack id (ms__stack) */
#define MS__RF_FILTERED (UINT64_C(1) << 52) /* counted in the store's sampled filter */
#define MS__RF_SOFT (UINT64_C(1) << 53)     /* UNTRACK under capture: capture closes its own */
/* A realloc that moved the block, as two records: old_ptr closed at the moment
 * before the call (ptr 0), then ptr opened after it (old_ptr 0), keeping the
 * name. Another thread may free the new address in between. */
#define MS__RF_MOVE (UINT64_C(1) << 54)
/* A captured free (or reallocation) whose block the hook took out of the
 * sampled filter itself (ms__filter_take): the fold must not count it out. */
#define MS__RF_TAKEN (UINT64_C(1) << 55)
#define MS__RF_MASK (~UINT64_C(0) << 50)

_Static_assert(sizeof(ms__rec) == 48, "an event record is 48 bytes");

static inline uint64_t ms__rec_size(const ms__rec *r) { return r->size_w & MS__SIZE_MASK; }
static inline uint64_t ms__rec_old_size(const ms__rec *r)
{
    return (r->old_w & MS__RF_STACK) ? 0 : r->old_w & MS__SIZE_MASK;
}
static inline uint32_t ms__rec_stack(const ms__rec *r)
{
    return (r->old_w & MS__RF_STACK) ? (uint32_t)(r->old_w & MS__SIZE_MASK) : 0;
}
static inline uint64_t ms__rec_flags(const ms__rec *r) { return r->old_w & MS__RF_MASK; }
static inline unsigned ms__rec_slot(const ms__rec *r) { return (unsigned)(r->size_w >> 48); }
static inline unsigned ms__rec_type(const ms__rec *r) { return (unsigned)(r->old_w >> 48) & 3u; }

/* The old_size argument of ms__rec_set for an event with a stack id and flags. */
static inline uint64_t ms__rec_extra(uint32_t stack, uint64_t flags)
{
    return stack ? (uint64_t)stack | MS__RF_STACK | flags : flags;
}

/* Can this public event be stored as a record? (A known type, sizes that fit
 * 48 bits, a thread id that is not the reserved UINT64_MAX.) */
static inline bool ms__event_fits(const ms_memory_event *e)
{
    return (unsigned)e->type <= MS_EVENT_REALLOCATE && e->size < MS__SIZE_LIMIT &&
           e->old_size < MS__SIZE_LIMIT && e->thread_id != UINT64_MAX;
}

static inline void ms__rec_set(ms__rec *r, uint64_t tick, unsigned type, unsigned slot,
                               uintptr_t ptr, uintptr_t old_ptr, uint64_t size, uint64_t old_size,
                               const ms_site *site)
{
    r->tick = tick;
    r->ptr = ptr;
    r->old_ptr = old_ptr;
    r->site = site;
    r->size_w = size | (uint64_t)slot << 48;
    r->old_w = old_size | (uint64_t)type << 48; // old_size may carry flags (ms__rec_extra)
}

#endif
