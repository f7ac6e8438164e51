/* real.h — glibc's own allocator, where the hooks forward every call. The one
 * place that knows glibc's entry points. glibc exports __libc_malloc and its
 * siblings (version GLIBC_2.2.5), so the hooks reach the real allocator
 * without dlsym: nothing has to be looked up, or allocated, before the first
 * malloc can be served, even inside the dynamic loader. malloc_usable_size has
 * no such alias and is looked up once, lazily (real_glibc.c). */
#ifndef MS_CAPTURE_REAL_H
#define MS_CAPTURE_REAL_H

#include <stddef.h>

extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t alignment, size_t n);

#define ms__real_malloc __libc_malloc
#define ms__real_free __libc_free
#define ms__real_calloc __libc_calloc
#define ms__real_realloc __libc_realloc
#define ms__real_memalign __libc_memalign

/* glibc's malloc_usable_size (found with dlsym(RTLD_NEXT) on first use). */
size_t ms__real_usable_size(void *p);

#endif
