/* cfi.h — walking a stack by the call-frame information (.eh_frame) of the
 * code on it, for code built without frame pointers (most of a Linux
 * distribution's). x86-64 ELF with glibc 2.35 or later (_dl_find_object);
 * elsewhere ms__cfi_walk returns 0 and the caller uses glibc's backtrace().
 *
 * Each return address's frame rule (where the caller's stack pointer, return
 * address and frame register are) is worked out once, from the object's
 * .eh_frame_hdr and .eh_frame as the loader mapped them, and kept in a
 * lock-free table; a walk then costs a lookup and two or three loads a frame.
 * No allocation, no lock, no system call: safe in a malloc hook, in a signal
 * handler and in a forked child. Depends on common/. docs/capture.md, "Call
 * stacks", has the design. */
#ifndef MS_STACK_CFI_H
#define MS_STACK_CFI_H

#include <stddef.h>
#include <stdint.h>

/* Walk up from the function that `ret` returns into: `sp` is its stack
 * pointer once the call has returned, `rbp` its frame register. Every read
 * stays inside [lo, hi) (this thread's stack).
 * @return the depth written to out (ret first, at most max): the whole stack,
 * up to its outermost frame or to code without unwind information; 0 when a
 * rule cannot be followed (a signal frame, a rule we do not read, a read that
 * would leave the stack): the caller then walks some other way. */
size_t ms__cfi_walk(uintptr_t ret, uintptr_t sp, uintptr_t rbp, uintptr_t lo, uintptr_t hi,
                    uintptr_t *out, size_t max);

/* The same walk from `frame`, the frame of a function built with frame
 * pointers (the frame register it saved at frame, its return address at
 * frame + 8), on this thread's stack (else 0). The thread's last walk of at
 * most 8 frames is kept: one from the same frame that asks for the same depth
 * and finds the same stack words is answered from it. */
size_t ms__cfi_walk_frame(uintptr_t frame, uintptr_t *out, size_t max);

/* How many return addresses have a rule in the table (for tests and figures). */
uint64_t ms__cfi_rules(void);

#endif
