/* tids.h — interns 64-bit thread ids into 16-bit slots, lock-free, so events
 * and live blocks carry a slot instead of the id. Depends on common/. */
#ifndef MS_STORE_TIDS_H
#define MS_STORE_TIDS_H

#include <stdint.h>

#include "common/atomic.h"

#define MS__TIDS_CAP 65536u
#define MS__TIDS_FULL UINT32_MAX

typedef struct ms__tids {
    /* key = thread id + 1 (0 = empty). Written once by CAS, read by anyone. */
    _Atomic uint64_t keys[MS__TIDS_CAP];
} ms__tids;

ms__tids *ms__tids_new(void);
void ms__tids_free(ms__tids *t);
/* @return the slot of `tid`, MS__TIDS_FULL when all slots are taken (or tid
 * is UINT64_MAX). Lock-free, allocation-free. */
uint32_t ms__tids_intern(ms__tids *t, uint64_t tid);
static inline uint64_t ms__tids_get(const ms__tids *t, unsigned slot)
{
    return ms_atomic_load_relaxed(&((ms__tids *)(uintptr_t)t)->keys[slot]) - 1;
}

#endif
