/* cxx_new — C++'s operator new and delete from one function, 5 M pairs over
 * a working set of 64 blocks of 16..143 bytes: what a C++ program's
 * allocations cost under capture, whose blocks are placed in the function
 * that called new (docs/capture.md, "Allocator wrappers"). Written in C
 * against the C++ runtime's symbols (linked with libstdc++), so the build
 * needs no C++ compiler; built without frame pointers, as most C++ programs
 * are. `wl_cxx_new N` makes N pairs instead. */
#include <stddef.h>
#include <stdlib.h>

void *cxx_new(size_t n) __asm__("_Znwm");   // operator new(size_t)
void cxx_delete(void *p) __asm__("_ZdlPv"); // operator delete(void *)

__attribute__((noinline)) static void work(long pairs)
{
    void *keep[64] = {0};
    for (long i = 0; i < pairs; i++) {
        int k = (int)(i & 63);
        if (keep[k])
            cxx_delete(keep[k]);
        keep[k] = cxx_new(16 + (size_t)(i & 127));
    }
    for (int k = 0; k < 64; k++)
        if (keep[k])
            cxx_delete(keep[k]);
}

int main(int argc, char **argv)
{
    work(argc > 1 ? atol(argv[1]) : 5000000);
    return 0;
}
