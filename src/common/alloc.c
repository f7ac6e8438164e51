/* alloc.c — every heap allocation of the library outside the recording path. */
#include "common/alloc.h"

#include <stdlib.h>
#include <string.h>

_Thread_local ms__tls ms__tl;

void *ms__malloc(size_t n)
{
    ms__internal_enter();
    void *p = malloc(n ? n : 1);
    ms__internal_leave();
    return p;
}

void *ms__calloc(size_t count, size_t size)
{
    ms__internal_enter();
    void *p = calloc(count ? count : 1, size ? size : 1);
    ms__internal_leave();
    return p;
}

void *ms__realloc(void *p, size_t n)
{
    ms__internal_enter();
    void *q = realloc(p, n ? n : 1);
    ms__internal_leave();
    return q;
}

void ms__free(void *p)
{
    ms__internal_enter();
    free(p);
    ms__internal_leave();
}

char *ms__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ms__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
