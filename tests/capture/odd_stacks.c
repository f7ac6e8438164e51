/* odd_stacks — stacks the frame-pointer chain alone gets wrong.
 * 1. holdp_alloc(), without a frame pointer, keeps a pointer to its
 *    caller's data in the frame register across malloc (the chain past it
 *    would read that data as frames): 5 blocks of 24 bytes, from user().
 * 2. alloc_here() from main's stack, then from a coroutine's
 *    (makecontext): the chain cannot be followed off the thread's stack, and
 *    the coroutine's walk must not teach the site anything. 16 bytes from
 *    main, 64 from in_coroutine(). */
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

void *holdp_alloc(void *ctx);
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl holdp_alloc\n"
        ".type holdp_alloc, @function\n"
        "holdp_alloc:\n"
        ".cfi_startproc\n"
        "  pushq %rbp\n"
        ".cfi_def_cfa_offset 16\n"
        ".cfi_offset %rbp, -16\n"
        "  movq %rdi, %rbp\n"
        "  movl $24, %edi\n"
        "  call malloc@PLT\n"
        "  movq %rax, 16(%rbp)\n"
        "  popq %rbp\n"
        ".cfi_def_cfa_offset 8\n"
        "  ret\n"
        ".cfi_endproc\n"
        ".size holdp_alloc, .-holdp_alloc\n");
#else
__attribute__((noinline)) void *holdp_alloc(void *ctx) { return ((void **)ctx)[2] = malloc(24); }
#endif

void *volatile sink;

__attribute__((noinline)) void user(void)
{
    uintptr_t ctx[4] = {0, 0x41414141, 0, 0}; // what the chain would read as a frame
    holdp_alloc(ctx);
    sink = (void *)ctx[2]; // dropped at the next call: a leak
    __asm__ volatile("" ::: "memory");
}

static ucontext_t main_ctx, co_ctx;

__attribute__((noinline)) void alloc_here(size_t n)
{
    sink = malloc(n);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void in_coroutine(void)
{
    alloc_here(64);
    __asm__ volatile("" ::: "memory");
}

static void coroutine(void) { in_coroutine(); }

int main(void)
{
    for (volatile int i = 0; i < 5; i++)
        user();
    alloc_here(16);
    static char stack[65536];
    getcontext(&co_ctx);
    co_ctx.uc_stack.ss_sp = stack;
    co_ctx.uc_stack.ss_size = sizeof stack;
    co_ctx.uc_link = &main_ctx;
    makecontext(&co_ctx, coroutine, 0);
    swapcontext(&main_ctx, &co_ctx);
    return 0;
}
