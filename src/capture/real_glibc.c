/* real_glibc.c — the part of glibc's allocator that has no __libc_ alias, and
 * the one glibc function capture interposes beside the malloc family. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "capture/real.h"
#include "common/alloc.h"
#include "common/atomic.h"
#include "common/heap.h"

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

/* pthread_getattr_np, interposed. glibc allocates inside it while it holds the
 * thread's lock (and, on the main thread, reads /proc/self/maps): a hook that
 * learnt the thread's stack there would ask it again and deadlock, so the
 * stack is not learnt meanwhile (common/heap.h). Looked up when capture
 * starts (its first caller learns the main thread's stack). */
typedef int (*getattr_fn)(pthread_t, pthread_attr_t *);
static _Atomic(getattr_fn) real_getattr;

__attribute__((visibility("default"))) int pthread_getattr_np(pthread_t th, pthread_attr_t *attr)
{
    getattr_fn f = ms_atomic_load_acquire(&real_getattr);
    if (ms_unlikely(!f)) {
        ms__internal_enter(); // dlsym may allocate: forwarded, not recorded
        void *sym = dlsym(RTLD_NEXT, "pthread_getattr_np");
        memcpy(&f, &sym, sizeof f);
        ms__internal_leave();
        if (!f)
            return ENOSYS;
        ms_atomic_store_release(&real_getattr, f);
    }
    ms__thread_stack_hold(1);
    int rc = f(th, attr);
    ms__thread_stack_hold(-1);
    return rc;
}
