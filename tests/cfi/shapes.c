/* shapes.c — code built without frame pointers (-O2 -fomit-frame-pointer),
 * in the frame layouts gcc gives such code, each calling test_cfi's probe:
 * a frame on the stack pointer, a frame on rbp (alloca), a
 * realigned frame (gcc's DRAP: the CFA read through rbp), a frame of 100 KiB,
 * a comparison function called by glibc's qsort, and a signal handler. */
#include "cfi/shapes.h"

#include <alloca.h>
#include <signal.h>
#include <stdlib.h>

#define BARRIER() __asm__ volatile("" ::: "memory") /* no tail call, no merging */

void shape_sink(volatile char *p);
void shape_sink(volatile char *p) { (void)p; }

__attribute__((noinline)) void shape_recurse(cfi_walk *w, int n)
{
    if (n == 0)
        cfi_probe(w);
    else
        shape_recurse(w, n - 1);
    BARRIER();
}

__attribute__((noinline)) void shape_vla(cfi_walk *w, int n)
{
    volatile char *buf = alloca((size_t)n);
    buf[0] = 1;
    shape_recurse(w, 3);
    shape_sink(buf);
}

__attribute__((noinline)) void shape_realigned(cfi_walk *w, int n)
{
    __attribute__((aligned(64))) volatile char x[64];
    volatile char *buf = alloca((size_t)n);
    x[0] = buf[0] = 1;
    cfi_probe(w);
    shape_sink(x);
    shape_sink(buf);
}

__attribute__((noinline)) void shape_big_frame(cfi_walk *w)
{
    volatile char big[100000];
    big[0] = 1;
    big[sizeof big - 1] = 2;
    cfi_probe(w);
    shape_sink(big);
}

static cfi_walk *qsort_walk;

static int compare(const void *a, const void *b)
{
    if (qsort_walk) {
        cfi_probe(qsort_walk);
        qsort_walk = NULL;
    }
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

__attribute__((noinline)) void shape_qsort(cfi_walk *w)
{
    int v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (i * 37) % 64;
    qsort_walk = w;
    qsort(v, 64, sizeof *v, compare);
    BARRIER();
}

static cfi_walk *signal_walk;

static void on_signal(int sig)
{
    (void)sig;
    cfi_probe(signal_walk);
}

__attribute__((noinline)) void shape_signal(cfi_walk *w)
{
    struct sigaction sa = {.sa_handler = on_signal}, old;
    sigemptyset(&sa.sa_mask);
    signal_walk = w;
    sigaction(SIGUSR1, &sa, &old);
    raise(SIGUSR1);
    sigaction(SIGUSR1, &old, NULL);
    BARRIER();
}

/* Two callers of one frame size, so that shape_mid's frame, and the probe's,
 * are at the same address under either. */
__attribute__((noinline)) static void shape_mid(cfi_walk *w)
{
    cfi_probe_frame(w);
    BARRIER();
}

__attribute__((noinline)) void shape_via_a(cfi_walk *w)
{
    shape_mid(w);
    BARRIER();
}

__attribute__((noinline)) void shape_via_b(cfi_walk *w)
{
    shape_mid(w);
    BARRIER();
    BARRIER();
}
