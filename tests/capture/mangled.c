/* mangled — a C program whose leaking function carries a C++ name,
 * leak_nodes() (mangled _Z10leak_nodesv), linked with the C++ runtime: the
 * report must show the name demangled. Leaks 3 blocks of 16 bytes. */
#include <stdlib.h>

void *volatile sink;

__attribute__((noinline)) void leak_nodes(void) __asm__("_Z10leak_nodesv");
void leak_nodes(void)
{
    for (int i = 0; i < 3; i++)
        sink = malloc(16);
    __asm__ volatile("" ::: "memory"); // not a tail call
}

int main(void)
{
    leak_nodes();
    return 0;
}
