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
    uint64_t old_w;      /* old_size:48 | type:2 (ms_event_type) */
} ms__rec;

_Static_assert(sizeof(ms__rec) == 48, "an event record is 48 bytes");

static inline uint64_t ms__rec_size(const ms__rec *r) { return r->size_w & MS__SIZE_MASK; }
static inline uint64_t ms__rec_old_size(const ms__rec *r) { return r->old_w & MS__SIZE_MASK; }
static inline unsigned ms__rec_slot(const ms__rec *r) { return (unsigned)(r->size_w >> 48); }
static inline unsigned ms__rec_type(const ms__rec *r) { return (unsigned)(r->old_w >> 48) & 3u; }

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
    r->old_w = old_size | (uint64_t)type << 48;
}

#endif
