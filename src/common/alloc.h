/* alloc.h — the funnel for the library's own heap memory outside the recording
 * path (snapshots, reports, exports), and the "internal" mark that keeps the
 * library's own allocations out of malloc capture. Depends on nothing. */
#ifndef MS_COMMON_ALLOC_H
#define MS_COMMON_ALLOC_H

#include <stddef.h>

#include <stdint.h>

struct ms__tbuf;

/* What the recording path reads of its thread, in one thread-local object:
 * in a shared object each initial-exec variable costs a load of its own
 * offset, so the malloc hooks find all of it with one. */
typedef struct ms__tls {
    /* Non-zero while the thread is inside the library: the malloc hooks then
     * forward without recording (no recursion, and our memory is not the
     * program's). Nested: enter/leave pairs. */
    unsigned internal;
    /* store/: the thread's buffer `buf` in the store whose id is `id` (the
     * last store it recorded into; 0 and NULL: none). */
    uint64_t id;
    struct ms__tbuf *buf;
    /* Its buffer in the global tracker's store (NULL: none yet, or gone):
     * what the malloc hooks record into, with no store id to compare. */
    struct ms__tbuf *gbuf;
} ms__tls;
extern _Thread_local ms__tls ms__tl;

/* Volatile: the compiler knows that malloc and calloc read no memory of the
 * program's, and would otherwise drop an enter/leave pair around them (gcc
 * 12 -O3 did: the library's own blocks were then recorded as the program's). */
static inline void ms__internal_enter(void) { (*(volatile unsigned *)&ms__tl.internal)++; }
static inline void ms__internal_leave(void) { (*(volatile unsigned *)&ms__tl.internal)--; }

void *ms__malloc(size_t n);
void *ms__calloc(size_t count, size_t size);
void *ms__realloc(void *p, size_t n);
void ms__free(void *p);
char *ms__strdup(const char *s);

#endif
