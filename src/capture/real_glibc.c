/* real_glibc.c — the part of glibc's allocator that has no __libc_ alias. */
#include <dlfcn.h>
#include <string.h>

#include "capture/real.h"
#include "common/alloc.h"
#include "common/atomic.h"

typedef size_t (*usable_fn)(void *);
static _Atomic(usable_fn) real_usable;

size_t ms__real_usable_size(void *p)
{
    usable_fn f = ms_atomic_load_acquire(&real_usable);
    if (ms_unlikely(!f)) {
        ms__internal_enter(); // dlsym may allocate: forwarded, not recorded
        void *sym = dlsym(RTLD_NEXT, "malloc_usable_size");
        memcpy(&f, &sym, sizeof f); // POSIX: a symbol's address converts to a function pointer
        ms__internal_leave();
        if (!f)
            return 0;
        ms_atomic_store_release(&real_usable, f);
    }
    return f(p);
}
