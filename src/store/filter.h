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
#define MS__FILTER_STUCK 65535u /* a counter that reached this stays: never decremented */

/* Two bytes a slot (128 KiB): the free of every block reads it, so it must
 * stay in the cache (a byte a slot saturated for good once sampling started
 * over some 16 M live blocks). A slot covers 16 bytes of address space, and neighbouring
 * blocks use neighbouring slots (a line covers 1 KiB of heap); higher address
 * bits are folded in, so distant heaps do not all meet in one place. */
typedef struct ms__filter {
    _Atomic uint16_t n[MS__FILTER_SLOTS]; /* sampled live blocks hashed here */
} ms__filter;

static inline uint32_t ms__filter_slot(uintptr_t p)
{
    uint64_t g = (uint64_t)p >> 4;
    return (uint32_t)((g ^ (g >> MS__FILTER_BITS) * UINT64_C(0x9E3779B97F4A7C15) >> 32) &
                      (MS__FILTER_SLOTS - 1));
}
static inline bool ms__filter_maybe(ms__filter *f, uintptr_t p)
{
    return ms_atomic_load_relaxed(&f->n[ms__filter_slot(p)]) != 0;
}
/* Adds and removals are rare (sampled blocks only): a compare-and-swap that
 * saturates, so a slot shared by 65 535 blocks only stays set for good. */
static inline void ms__filter_add(ms__filter *f, uintptr_t p)
{
    _Atomic uint16_t *c = &f->n[ms__filter_slot(p)];
    uint16_t v = ms_atomic_load_relaxed(c);
    while (v != MS__FILTER_STUCK &&
           !atomic_compare_exchange_weak_explicit(c, &v, (uint16_t)(v + 1), memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}
static inline void ms__filter_remove(ms__filter *f, uintptr_t p)
{
    _Atomic uint16_t *c = &f->n[ms__filter_slot(p)];
    uint16_t v = ms_atomic_load_relaxed(c);
    while (v != 0 && v != MS__FILTER_STUCK &&
           !atomic_compare_exchange_weak_explicit(c, &v, (uint16_t)(v - 1), memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

#endif
