/* tids.c — the thread-id intern table: open addressing with CAS inserts. */
#include "store/tids.h"

#include "common/pages.h"

ms__tids *ms__tids_new(void) { return ms__pages_alloc(sizeof(ms__tids)); }
void ms__tids_free(ms__tids *t) { ms__pages_free(t, sizeof(ms__tids)); }

uint32_t ms__tids_intern(ms__tids *t, uint64_t tid)
{
    if (tid == UINT64_MAX)
        return MS__TIDS_FULL;
    uint64_t key = tid + 1;
    uint32_t i = (uint32_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 48);
    for (uint32_t n = 0; n < MS__TIDS_CAP; n++, i = (i + 1) & (MS__TIDS_CAP - 1)) {
        uint64_t k = ms_atomic_load_acquire(&t->keys[i]);
        if (k == key)
            return i;
        if (k == 0) {
            uint64_t expected = 0;
            if (ms_atomic_cas_acq_rel(&t->keys[i], &expected, key) || expected == key)
                return i;
        }
    }
    return MS__TIDS_FULL;
}
