/* heap.h — is this a live block of the process's allocator, and how big is it?
 * The one place that knows glibc's chunk header (heap_linux.c). */
#ifndef MS_COMMON_HEAP_H
#define MS_COMMON_HEAP_H

#include <stddef.h>
#include <stdint.h>

/* Capture's sampled blocks (capture/hooks.c): the program's pointer p is
 * `off` bytes into glibc's block, and the two words below p hold
 * {off, MS__SAMPLED_MAGIC}. Bit 3 of the magic is set, which it never is in
 * the size word glibc keeps below each of its blocks (chunk sizes are
 * multiples of 16), so the word below a pointer tells the two apart. */
#define MS__SAMPLED_MAGIC UINT64_C(0x6d73616d706c6508)
#define MS__SAMPLED_MAX_ALIGN ((size_t)1 << 16)   /* the largest alignment capture samples */
#define MS__SAMPLED_MAX_OFF MS__SAMPLED_MAX_ALIGN /* so the largest offset a header holds */

/* @return the offset of a sampled block's pointer into glibc's block, or 0
 * for any other block. pre: p is a live block of the process's allocator. */
static inline size_t ms__sampled_off(const void *p)
{
    const uint64_t *w = (const uint64_t *)((uintptr_t)p - 16); // below the block
    return w[1] == MS__SAMPLED_MAGIC ? (size_t)w[0] : 0;
}

/* @return 0 and the block's usable size in *size, or MS_ENOTHEAP when `p` is
 * provably not a live heap block (misaligned, in the calling thread's stack, in
 * the program image, or a header the allocator would not accept).
 * pre: p != NULL. No allocation; no system call except once per thread (stack
 * bounds) and for page-aligned pointers (whether the header page is mapped). */
int ms__heap_block_size(uintptr_t p, size_t *size);

/* The calling thread's stack, [*lo, *hi) (both 0 if unknown). Learnt once per
 * thread (glibc may allocate then, inside ms__internal_enter). */
void ms__thread_stack(uintptr_t *lo, uintptr_t *hi);
/* Capture's pthread_getattr_np: +1 before the real one, -1 after. Meanwhile
 * the thread's stack is not learnt (glibc holds the thread's lock there, and
 * learning asks pthread_getattr_np). */
void ms__thread_stack_hold(int delta);

#endif
