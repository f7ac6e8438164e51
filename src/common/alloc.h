/* alloc.h — the funnel for the library's own heap memory outside the recording
 * path (snapshots, reports, exports), and the "internal" mark that keeps the
 * library's own allocations out of malloc capture. Depends on nothing. */
#ifndef MS_COMMON_ALLOC_H
#define MS_COMMON_ALLOC_H

#include <stddef.h>

/* Non-zero while the calling thread is inside the library: the malloc hooks
 * then forward without recording (no recursion, and our memory is not the
 * program's). Nested: enter/leave pairs. */
extern _Thread_local unsigned ms__tl_internal;
static inline void ms__internal_enter(void) { ms__tl_internal++; }
static inline void ms__internal_leave(void) { ms__tl_internal--; }

void *ms__malloc(size_t n);
void *ms__calloc(size_t count, size_t size);
void *ms__realloc(void *p, size_t n);
void ms__free(void *p);
char *ms__strdup(const char *s);

#endif
