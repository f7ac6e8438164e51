/* callbacks_visit — code without frame pointers that calls back into code
 * with them (capture/callbacks.c), built -O2 -fomit-frame-pointer. */

#include <stdlib.h>

void visit_twice(void (*cb)(void));
void decoy(void);
void leak_direct(int depth);

void *volatile visit_sink;

/* Allocates without a frame of its own, leaving the frame register as its
 * caller set it. */
void leak_direct(int depth)
{
    (void)depth;
    visit_sink = malloc(152);
}

/* Keeps cb in a register the calls preserve, and leaves the frame register
 * alone: the callback's saved frame pointer is the caller's. */
void visit_twice(void (*cb)(void))
{
    cb();
    cb();
    __asm__ volatile("" ::: "memory"); // not a tail call
}

/* What a frame register used for data may look like to a chain of frame
 * pointers: a frame record whose return address is into a function that is
 * not on the stack. */
void decoy(void) { __asm__ volatile("nop; nop; nop; nop"); }

/* void scramble_visit(void (*cb)(void)): saves rbp (its call-frame
 * information says so, and keeps the frame on the stack pointer), builds the
 * record {0, decoy + 4} on its stack, points rbp at it and calls cb. */
__asm__(".text\n"
        ".globl scramble_visit\n"
        ".type scramble_visit, @function\n"
        "scramble_visit:\n"
        ".cfi_startproc\n"
        "  pushq %rbp\n"
        ".cfi_adjust_cfa_offset 8\n"
        ".cfi_rel_offset %rbp, 0\n"
        "  subq $32, %rsp\n"
        ".cfi_adjust_cfa_offset 32\n"
        "  movq $0, (%rsp)\n"
        "  leaq decoy+4(%rip), %rax\n"
        "  movq %rax, 8(%rsp)\n"
        "  movq %rsp, %rbp\n"
        "  call *%rdi\n"
        "  addq $32, %rsp\n"
        ".cfi_adjust_cfa_offset -32\n"
        "  popq %rbp\n"
        ".cfi_adjust_cfa_offset -8\n"
        ".cfi_restore %rbp\n"
        "  ret\n"
        ".cfi_endproc\n"
        ".size scramble_visit, .-scramble_visit\n");
