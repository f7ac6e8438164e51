/* wrapped — make_one(), which keeps a frame pointer, allocates through
 * wrap_alloc(), a wrapper that keeps none and leaves the frame register alone,
 * as C++'s operator new around malloc does (and it is this program's operator
 * new: its symbol is _Znwm): 7 blocks of 40 bytes, leaked. The frame-pointer
 * chain from malloc goes on from make_one's frame and so skips make_one
 * itself; under --stacks the stack must name it, on every call, and the
 * report must place the blocks there, not in operator new. Then 3 blocks of
 * 24 bytes through clobber_alloc(), which calls the wrapper with the frame
 * register cleared: a short chain from the same site, which the unwinder must
 * still complete; and 2 blocks of 8 bytes from main itself, whose chain past
 * the wrapper's word is one frame long. */
#include <stdlib.h>

void *wrap_alloc(size_t n) __asm__("_Znwm");
void *clobber_alloc(size_t n);
#if defined(__x86_64__)
// push, call, pop: no frame pointer, with the call-frame information an
// unwinder needs.
__asm__(".text\n"
        ".globl _Znwm\n"
        ".type _Znwm, @function\n"
        "_Znwm:\n"
        ".cfi_startproc\n"
        "  pushq %rbx\n"
        ".cfi_def_cfa_offset 16\n"
        ".cfi_offset %rbx, -16\n"
        "  call malloc@PLT\n"
        "  popq %rbx\n"
        ".cfi_def_cfa_offset 8\n"
        "  ret\n"
        ".cfi_endproc\n"
        ".size _Znwm, .-_Znwm\n");
// Calls the wrapper with the frame register cleared (as code without frame
// pointers may leave it): the chain past the wrapper's word breaks at once.
__asm__(".text\n"
        ".globl clobber_alloc\n"
        ".type clobber_alloc, @function\n"
        "clobber_alloc:\n"
        ".cfi_startproc\n"
        "  pushq %rbp\n"
        ".cfi_def_cfa_offset 16\n"
        ".cfi_offset %rbp, -16\n"
        "  xorl %ebp, %ebp\n"
        "  call _Znwm\n"
        "  popq %rbp\n"
        ".cfi_def_cfa_offset 8\n"
        "  ret\n"
        ".cfi_endproc\n"
        ".size clobber_alloc, .-clobber_alloc\n");
#else
__attribute__((noinline)) void *wrap_alloc(size_t n) { return malloc(n); }
__attribute__((noinline)) void *clobber_alloc(size_t n) { return wrap_alloc(n); }
#endif

void *volatile sink;

__attribute__((noinline)) void make_one(void)
{
    sink = wrap_alloc(40);             // dropped at the next call: a leak
    __asm__ volatile("" ::: "memory"); // not a tail call
}

// After make_one taught the wrapper's site its frame, 3 blocks of 24 bytes
// through clobber_alloc: their stacks must still reach main.
__attribute__((noinline)) void make_two(void)
{
    sink = clobber_alloc(24);
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    for (volatile int i = 0; i < 7; i++) // volatile: one call site, not unrolled
        make_one();
    for (volatile int i = 0; i < 3; i++)
        make_two();
    for (volatile int i = 0; i < 2; i++) // and 2 blocks of 8 bytes straight from main
        sink = wrap_alloc(8);
    return 0;
}
