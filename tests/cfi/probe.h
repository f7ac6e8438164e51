/* probe.h — test_cfi's probe (probe.c). */
#ifndef MS_TEST_CFI_PROBE_H
#define MS_TEST_CFI_PROBE_H

#include <stddef.h>
#include <stdint.h>

#define CFI_MAX 64

typedef struct cfi_walk {
    uintptr_t cfi[CFI_MAX], bt[CFI_MAX];
    size_t ncfi, nbt;
    size_t max;     /* frames ms__cfi_walk may give (0: CFI_MAX) */
    uintptr_t keep; /* when not 0: the stack ms__cfi_walk may read ends this
                       many bytes above the probe's frame */
} cfi_walk;

/* The stack of this call, both ways, into *w. */
void cfi_probe(cfi_walk *w);
/* The same by ms__cfi_walk_frame (with the thread's last walk kept). */
void cfi_probe_frame(cfi_walk *w);

#endif
