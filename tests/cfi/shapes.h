/* shapes.h — test_cfi's frame layouts (shapes.c), each ending in cfi_probe. */
#ifndef MS_TEST_CFI_SHAPES_H
#define MS_TEST_CFI_SHAPES_H

#include "cfi/probe.h"

void shape_recurse(cfi_walk *w, int n); /* n frames on the stack pointer */
void shape_vla(cfi_walk *w, int n);     /* a frame on rbp, then 4 on rsp */
void shape_realigned(cfi_walk *w, int n);
void shape_big_frame(cfi_walk *w);
void shape_qsort(cfi_walk *w);  /* through glibc's qsort */
void shape_signal(cfi_walk *w); /* in a signal handler */
/* shape_mid, then ms__cfi_walk_frame, from two callers whose frames are at
 * the same address: the same start, another stack above it. */
void shape_via_a(cfi_walk *w);
void shape_via_b(cfi_walk *w);

#endif
