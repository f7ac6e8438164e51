/* two_paths — leaks 20 blocks of 100 bytes from leak_here() called by
 * path_a() and 17 called by path_b(): one function, two stacks. */
#include <stdlib.h>
#include <string.h>

void *volatile sink;

__attribute__((noinline)) void leak_here(int n)
{
    for (int i = 0; i < n; i++) {
        char *p = malloc(100);
        memset(p, i, 100);
        sink = p; // dropped at the next round: a leak
    }
}

__attribute__((noinline)) void path_a(void)
{
    leak_here(20);
    __asm__ volatile("" ::: "memory"); // no tail call: path_a stays in the stack
}

__attribute__((noinline)) void path_b(void)
{
    leak_here(17);
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    path_a();
    path_b();
    return 0;
}
