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

#include <signal.h>
#include <stdbool.h>
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

/* A thread's last short walk from a frame (ms__cfi_walk_frame), with the
 * stack words it read: the bottom of the stack under a chain of frame
 * pointers (glibc's start of main) is walked at every call, and then answered
 * from it. Kept in the thread's store buffer, not in thread-local storage (a
 * library that links memscope and is loaded by dlopen has little of that). */
#define MS__CFI_MEMO_FRAMES 8
#define MS__CFI_MEMO_READS 12
typedef struct ms__cfi_memo {
    volatile sig_atomic_t busy; /* the owner is in it: a signal handler's walk leaves it be */
    bool whole;                 /* the walk ended before its depth */
    uint8_t max, n, nread;
    uint32_t epoch;
    uintptr_t frame, below, pc, rbp; /* frame: 0 = none kept */
    uintptr_t at[MS__CFI_MEMO_READS], val[MS__CFI_MEMO_READS];
    uintptr_t out[MS__CFI_MEMO_FRAMES];
} ms__cfi_memo;

/* The same walk from `frame`, the frame of a function built with frame
 * pointers (the frame register it saved at frame, its return address at
 * frame + 8), on this thread's stack (else 0). `below`: the return address
 * into the function whose frame `frame` is, when a frame-pointer chain gave
 * it (0: the caller's own frame): the walk is made only if that function
 * keeps a frame pointer by its call-frame information, so that a chain that
 * wandered into a frame's data does not go on from there. `memo` (the
 * thread's, or NULL): a kept walk from the same frame that finds the same
 * stack words answers. */
size_t ms__cfi_walk_frame(uintptr_t frame, uintptr_t below, uintptr_t *out, size_t max,
                          ms__cfi_memo *memo);

/* Does the function that `ret` returns into keep a frame pointer at that
 * call by its call-frame information (CFA = rbp + 16, rbp saved at CFA - 16),
 * so that a chain of frame pointers goes on from its frame to its caller's?
 * MS__CFI_NO when its rule says otherwise (the frame is on the stack pointer,
 * or realigned), or is a signal frame or a rule we do not read;
 * MS__CFI_UNKNOWN when it has none (code without unwind information, or that
 * the loader does not know, such as a JIT's). */
enum { MS__CFI_NO = 0, MS__CFI_YES = 1, MS__CFI_UNKNOWN = 2 };
int ms__cfi_frame_pointer(uintptr_t ret);

/* Code was unloaded (dlclose), and other code may be loaded where it was:
 * the rules and kept walks worked out so far are not used again. */
void ms__cfi_forget(void);

/* How many return addresses have a rule in the table (for tests and figures). */
uint64_t ms__cfi_rules(void);

#endif
