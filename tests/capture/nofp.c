/* nofp — built without frame pointers: leaks 5 blocks of 48 bytes from
 * leak_deep(), called through middle() and outer(), and 4 blocks of 24 bytes
 * straight from main(). Under --stacks the whole chain must be named. */
#include <stdlib.h>

void *volatile sink;

__attribute__((noinline)) void leak_deep(int i)
{
    sink = malloc(48 + (size_t)(i & 0)); // dropped at the next call: a leak
}

__attribute__((noinline)) void middle(int i)
{
    leak_deep(i);
    __asm__ volatile("" ::: "memory"); // not a tail call
}

__attribute__((noinline)) void outer(int i)
{
    middle(i);
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    for (volatile int i = 0; i < 5; i++) // volatile: one call site, not unrolled
        outer(i);
    for (int i = 0; i < 4; i++)
        sink = malloc(24);
    return 0;
}
