/* pages.h — memory straight from the kernel (mmap), for everything the
 * recording and folding paths use, so they never enter the malloc family
 * (which capture replaces). Depends on nothing. */
#ifndef MS_COMMON_PAGES_H
#define MS_COMMON_PAGES_H

#include <stddef.h>

/* Zeroed memory of at least `bytes`, or NULL. Free with the same `bytes`. */
void *ms__pages_alloc(size_t bytes);
void ms__pages_free(void *p, size_t bytes);
/* Grow or shrink, keeping min(old, new) bytes; frees `p` on success. */
void *ms__pages_realloc(void *p, size_t old_bytes, size_t new_bytes);

#endif
