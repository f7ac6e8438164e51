/* atomic.h — C11 atomics through wrappers named by their memory order, so every
 * ordering in the code base is greppable. Depends on nothing. */
#ifndef MS_COMMON_ATOMIC_H
#define MS_COMMON_ATOMIC_H

#include <stdalign.h>  /* alignas */
#include <stdatomic.h> /* atomic_* */

#define ms_atomic_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define ms_atomic_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define ms_atomic_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define ms_atomic_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define ms_atomic_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define ms_atomic_add_acq_rel(p, v) atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define ms_atomic_or_acq_rel(p, v) atomic_fetch_or_explicit((p), (v), memory_order_acq_rel)
#define ms_atomic_exchange_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define ms_atomic_cas_acq_rel(p, expected, desired)                                                \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_acq_rel,      \
                                            memory_order_acquire)
/* Stops the compiler, not the CPU, from moving memory accesses across it. */
#define ms_compiler_barrier() atomic_signal_fence(memory_order_seq_cst)
#define ms_fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)
#define ms_fence_acquire() atomic_thread_fence(memory_order_acquire)

#define MS_CACHE_LINE 64

#if defined(__GNUC__)
#define ms_likely(x) __builtin_expect(!!(x), 1)
#define ms_unlikely(x) __builtin_expect(!!(x), 0)
#define MS_NOINLINE __attribute__((noinline))
#define MS_COLD __attribute__((cold, noinline))
#else
#define ms_likely(x) (x)
#define ms_unlikely(x) (x)
#define MS_NOINLINE
#define MS_COLD
#endif

#endif
