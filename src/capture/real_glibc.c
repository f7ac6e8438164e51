/* real_glibc.c — what the hooks reach through dlsym: the part of glibc's
 * allocator that has no __libc_ alias, and fork. */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "capture/real.h"
#include "common/alloc.h"
#include "common/atomic.h"

/* The next definition of `name` after ours (glibc's), or NULL. */
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

typedef pid_t (*fork_fn)(void);
static _Atomic(fork_fn) real_fork;

static fork_fn fork_lookup(void)
{
    fork_fn f = ms_atomic_load_acquire(&real_fork);
    if (ms_unlikely(!f)) {
        void *sym = next_symbol("fork");
        memcpy(&f, &sym, sizeof f);
        if (f)
            ms_atomic_store_release(&real_fork, f);
    }
    return f;
}

pid_t ms__real_fork(void)
{
    fork_fn f = fork_lookup();
    if (!f) {
        errno = ENOSYS;
        return -1;
    }
    return f();
}

void ms__real_lookup_all(void)
{
    (void)ms__real_usable_size(NULL);
    (void)fork_lookup();
}
