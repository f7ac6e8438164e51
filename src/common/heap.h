/* heap.h — is this a live block of the process's allocator, and how big is it?
 * The one place that knows glibc's chunk header (heap_linux.c). */
#ifndef MS_COMMON_HEAP_H
#define MS_COMMON_HEAP_H

#include <stddef.h>
#include <stdint.h>

/* @return 0 and the block's usable size in *size, or MS_ENOTHEAP when `p` is
 * provably not a live heap block (misaligned, in the calling thread's stack, in
 * the program image, or a header the allocator would not accept).
 * pre: p != NULL. No allocation; no system call except once per thread (stack
 * bounds) and for page-aligned pointers (whether the header page is mapped). */
int ms__heap_block_size(uintptr_t p, size_t *size);

/* The calling thread's stack, [*lo, *hi) (both 0 if unknown). Learnt once per
 * thread (glibc may allocate then, inside ms__internal_enter). */
void ms__thread_stack(uintptr_t *lo, uintptr_t *hi);

#endif
