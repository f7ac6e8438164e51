/* real_glibc.c — the part of glibc's allocator that has no __libc_ alias, and
 * the two glibc functions capture interposes beside the malloc family. */
#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stddef.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "capture/real.h"
#include "common/alloc.h"
#include "common/atomic.h"
#include "common/heap.h"
#include "stack/stack.h"

/* glibc's definition of `name`, the one after ours. */
static void *next_symbol(const char *name)
{
    ms__internal_enter(); // dlsym may allocate: forwarded, not recorded
    void *sym = dlsym(RTLD_NEXT, name);
    ms__internal_leave();
    return sym;
}

typedef size_t (*usable_fn)(void *);
static _Atomic(usable_fn) real_usable;

size_t ms__real_usable_size(void *p)
{
    usable_fn f = ms_atomic_load_acquire(&real_usable);
    if (ms_unlikely(!f)) {
        void *sym = next_symbol("malloc_usable_size");
        memcpy(&f, &sym, sizeof f); // POSIX: a symbol's address converts to a function pointer
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
        void *sym = next_symbol("pthread_getattr_np");
        memcpy(&f, &sym, sizeof f);
        if (!f)
            return ENOSYS;
        ms_atomic_store_release(&real_getattr, f);
    }
    ms__thread_stack_hold(1);
    int rc = f(th, attr);
    ms__thread_stack_hold(-1);
    return rc;
}

/* dlclose, interposed: code may be unmapped, and other code mapped where it
 * was. What stack walks learnt per return address (stack/stack.h) is then
 * forgotten, or a library loaded at an unloaded one's address would be
 * walked by the old one's frame layouts; only when something was unmapped
 * (the loader's count of objects removed moved), since a dlclose that only
 * drops a reference would throw it all away for nothing. Weak: a program
 * that links libmemscope_capture.a and defines its own dlclose keeps it (and
 * memscope then does not see unloads). */
typedef int (*dlclose_fn)(void *);
static _Atomic(dlclose_fn) real_dlclose;
static _Atomic unsigned long long seen_subs; /* dlpi_subs at the last dlclose */

static int first_object_subs(struct dl_phdr_info *info, size_t size, void *subs)
{
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        *(unsigned long long *)subs = info->dlpi_subs;
    return 1; // every object holds the same count: the first one tells
}

__attribute__((visibility("default"), weak)) int dlclose(void *handle)
{
    dlclose_fn f = ms_atomic_load_acquire(&real_dlclose);
    if (ms_unlikely(!f)) {
        void *sym = next_symbol("dlclose");
        memcpy(&f, &sym, sizeof f);
        if (!f)
            return -1;
        ms_atomic_store_release(&real_dlclose, f);
    }
    int rc = f(handle);
    if (rc == 0) {
        unsigned long long subs = ULLONG_MAX; // not told: forget
        dl_iterate_phdr(first_object_subs, &subs);
        if (atomic_exchange(&seen_subs, subs) != subs || subs == ULLONG_MAX)
            ms__stack_forget_code();
    }
    return rc;
}
