/* alloc.h — the funnel for the library's own heap memory outside the recording
 * path (snapshots, reports, exports). Depends on nothing. */
#ifndef MS_COMMON_ALLOC_H
#define MS_COMMON_ALLOC_H

#include <stddef.h>

void *ms__malloc(size_t n);
void *ms__calloc(size_t count, size_t size);
void *ms__realloc(void *p, size_t n);
void ms__free(void *p);
char *ms__strdup(const char *s);

#endif
