/* filter.h — which addresses hold a block whose free must be recorded
 * though it carries no sampled header: when sampling is switched on under
 * capture at run time, the blocks recorded before (capture/hooks.c; a block
 * sampled since carries a header, common/heap.h). free() of a block without a
 * header asks the filter, in one load. Depends on common/atomic.h.
 *
 * A slot is 32 bits and covers 16-byte granules of address space. It holds
 * 0 (no sampled block), or the *tag* of the one sampled block hashed there (the
 * rest of its address: slot and tag together give the address exactly), or,
 * when several sampled blocks share the slot (or an address too high to
 * tag), MS__FILTER_COUNTED | n, a count of them.
 *
 * A tagged slot is exact, and the hooks keep it: a sampled allocation adds its
 * address, a free takes it out at once (ms__filter_take), before the real
 * free, so the allocator handing the address to an unsampled block next is
 * never mistaken for the sampled one. A counted slot answers "maybe": the free
 * is recorded, and the fold counts the block out when it closes it
 * (ms__filter_release); a free the fold finds no block for is ignored. A slot
 * stays counted until its count falls to 0. The fold never clears a tag: a
 * tag left behind (a block freed while sampling was off, say) costs at most
 * one recorded free that the fold ignores. */
#ifndef MS_STORE_FILTER_H
#define MS_STORE_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/atomic.h"

#define MS__FILTER_BITS 16
#define MS__FILTER_SLOTS (1u << MS__FILTER_BITS)
#define MS__FILTER_COUNTED (UINT32_C(1) << 31)
#define MS__FILTER_STUCK (~UINT32_C(0)) /* a count that reached this stays: never decremented */

/* 256 KiB: the free of every block reads one slot, so it must stay in the
 * cache. Neighbouring blocks use neighbouring slots (a line covers 256 B of
 * heap); the higher address bits are folded in, so distant heaps do not all
 * meet in one place. */
typedef struct ms__filter {
    _Atomic uint32_t s[MS__FILTER_SLOTS];
} ms__filter;

/* What ms__filter_take found. */
enum {
    MS__FILTER_NO = 0,    /* not sampled: skip the free */
    MS__FILTER_TAKEN = 1, /* sampled, and now out of the filter: record it so */
    MS__FILTER_MAYBE = 2  /* a counted slot: record it; the fold counts it out */
};

/* The slot of p; *tag its tag (never 0 or counted), or 0 for an address the
 * slot cannot tag (not 16-byte aligned, or at 2^51 - 2^20 and above). Slot and
 * tag give back the address: tag - 1 is its bits from 20 up, and the slot its
 * bits 4..19 xor a hash of the tag. */
static inline uint32_t ms__filter_slot(uintptr_t p, uint32_t *tag)
{
    uint64_t g = (uint64_t)p >> 4;
    uint64_t hi = g >> MS__FILTER_BITS;
    *tag = ((p & 15) == 0 && hi < MS__FILTER_COUNTED - 1) ? (uint32_t)hi + 1 : 0;
    return (uint32_t)((g ^ (hi * UINT64_C(0x9E3779B97F4A7C15) >> 32)) & (MS__FILTER_SLOTS - 1));
}

static inline bool ms__filter_cas(_Atomic uint32_t *c, uint32_t *seen, uint32_t to)
{
    return atomic_compare_exchange_weak_explicit(c, seen, to, memory_order_relaxed,
                                                 memory_order_relaxed);
}

/* A sampled block at p (the hooks; the fold when sampling starts). Adds are
 * rare: compare-and-swap loops. */
static inline void ms__filter_add(ms__filter *f, uintptr_t p)
{
    uint32_t tag, i = ms__filter_slot(p, &tag);
    _Atomic uint32_t *c = &f->s[i];
    uint32_t v = ms_atomic_load_relaxed(c);
    for (;;) {
        uint32_t to;
        if (v == 0)
            to = tag ? tag : MS__FILTER_COUNTED | 1;
        else if (v & MS__FILTER_COUNTED)
            to = v == MS__FILTER_STUCK ? v : v + 1;
        else if (v == tag)
            return; // already here: a free capture never saw; this block takes its place
        else
            to = MS__FILTER_COUNTED | 2; // the tagged block and this one
        if (to == v || ms__filter_cas(c, &v, to))
            return;
    }
}

/* The hooks, before freeing p: MS__FILTER_NO, _TAKEN or _MAYBE. One load for
 * a slot that is empty or holds another block. */
static inline unsigned ms__filter_take(ms__filter *f, uintptr_t p)
{
    uint32_t tag, i = ms__filter_slot(p, &tag);
    _Atomic uint32_t *c = &f->s[i];
    uint32_t v = ms_atomic_load_relaxed(c);
    for (;;) {
        if (v == 0)
            return MS__FILTER_NO;
        if (v & MS__FILTER_COUNTED)
            return MS__FILTER_MAYBE;
        if (v != tag)
            return MS__FILTER_NO;
        if (ms__filter_cas(c, &v, 0))
            return MS__FILTER_TAKEN;
    }
}

/* The fold, closing a sampled block whose free the hooks did not take out (a
 * counted slot): count it out. A tagged or empty slot is left alone: its
 * block's free took it out, or its entry now stands for a newer block. */
static inline void ms__filter_release(ms__filter *f, uintptr_t p)
{
    uint32_t tag, i = ms__filter_slot(p, &tag);
    _Atomic uint32_t *c = &f->s[i];
    uint32_t v = ms_atomic_load_relaxed(c);
    while ((v & MS__FILTER_COUNTED) && v != MS__FILTER_STUCK &&
           !ms__filter_cas(c, &v, v == (MS__FILTER_COUNTED | 1) ? 0 : v - 1)) {
    }
}

/* A sampled block at p whose slot must count it, never tag it: the new
 * address of a block moved by realloc after ms__filter_take answered MAYBE for
 * its old one. The fold may find that old block was never sampled, and then
 * takes the move back with ms__filter_release: a count it can always take
 * back, where a tag might by then stand for a newer block at the same address. */
static inline void ms__filter_add_counted(ms__filter *f, uintptr_t p)
{
    uint32_t tag, i = ms__filter_slot(p, &tag);
    _Atomic uint32_t *c = &f->s[i];
    uint32_t v = ms_atomic_load_relaxed(c);
    for (;;) {
        uint32_t to = v == 0                      ? MS__FILTER_COUNTED | 1
                      : !(v & MS__FILTER_COUNTED) ? MS__FILTER_COUNTED | 2 // the tagged one too
                      : v == MS__FILTER_STUCK     ? v
                                                  : v + 1;
        if (to == v || ms__filter_cas(c, &v, to))
            return;
    }
}

#endif
