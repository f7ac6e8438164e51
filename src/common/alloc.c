/* alloc.c — every heap allocation of the library outside the recording path. */
#include "common/alloc.h"

#include <stdlib.h>
#include <string.h>

void *ms__malloc(size_t n) { return malloc(n ? n : 1); }
void *ms__calloc(size_t count, size_t size) { return calloc(count ? count : 1, size ? size : 1); }
void *ms__realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }
void ms__free(void *p) { free(p); }

char *ms__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ms__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
