/* pages.h — memory straight from the kernel (mmap), for everything the
 * recording and folding paths use, so they never enter the malloc family
 * (which capture replaces). Depends on nothing. */
#ifndef MS_COMMON_PAGES_H
#define MS_COMMON_PAGES_H

#include <stddef.h>

/* Zeroed memory of at least `bytes`, or NULL. Free with the same `bytes`. */
void *ms__pages_alloc(size_t bytes);
/* The same with every page already written (faulted in), for a table that is
 * read at random before it is written: a page first read is mapped to the
 * kernel's zero page, and the write that follows then costs a copy-on-write
 * fault with a TLB flush on every CPU the process runs on, an interrupt for
 * each of the program's running threads. */
void *ms__pages_alloc_written(size_t bytes);
void ms__pages_free(void *p, size_t bytes);
/* Grow or shrink, keeping min(old, new) bytes; frees `p` on success. */
void *ms__pages_realloc(void *p, size_t old_bytes, size_t new_bytes);

#endif
