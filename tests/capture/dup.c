/* dup — a C program (no C++ runtime) that leaks through libc's wrappers:
 * 3 strdup("abc") from dup_three (12 bytes), 4 strndup(.., 3) from
 * ndup_four (16 bytes). The report must place them in those functions, with
 * stacks or without, not in strdup. */
#include <string.h>

void *volatile sink;

__attribute__((noinline)) void dup_three(void)
{
    for (volatile int i = 0; i < 3; i++)
        sink = strdup("abc");
    __asm__ volatile("" ::: "memory"); // not a tail call
}

__attribute__((noinline)) void ndup_four(void)
{
    for (volatile int i = 0; i < 4; i++)
        sink = strndup("abcdef", 3);
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    dup_three();
    ndup_four();
    return 0;
}
