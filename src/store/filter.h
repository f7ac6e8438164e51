/* filter.h — which addresses may hold a sampled block. While capture samples,
 * free() must skip the blocks that were not sampled without looking them up:
 * a counting filter answers in one load. A sampled allocation adds its address
 * (the hook), the fold removes it when the block is closed; a slot shared by
 * another address only makes a free be recorded that the fold then ignores.
 * Depends on common/atomic.h. */
#ifndef MS_STORE_FILTER_H
#define MS_STORE_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/atomic.h"

#define MS__FILTER_BITS 16
#define MS__FILTER_SLOTS (1u << MS__FILTER_BITS)

typedef struct ms__filter {
    _Atomic uint32_t n[MS__FILTER_SLOTS]; /* sampled live blocks hashed here */
} ms__filter;

static inline uint32_t ms__filter_slot(uintptr_t p)
{
    return (uint32_t)(((uint64_t)(p >> 4) * UINT64_C(0x9E3779B97F4A7C15)) >>
                      (64 - MS__FILTER_BITS));
}
static inline bool ms__filter_maybe(ms__filter *f, uintptr_t p)
{
    return ms_atomic_load_relaxed(&f->n[ms__filter_slot(p)]) != 0;
}
static inline void ms__filter_add(ms__filter *f, uintptr_t p)
{
    ms_atomic_add_relaxed(&f->n[ms__filter_slot(p)], 1);
}
static inline void ms__filter_remove(ms__filter *f, uintptr_t p)
{
    ms_atomic_add_relaxed(&f->n[ms__filter_slot(p)], (uint32_t)-1);
}

#endif
