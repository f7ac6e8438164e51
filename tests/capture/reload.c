/* reload — loads LIB_A, leaks 20 blocks of 24 bytes from its reload_alloc()
 * called from call() called from main(), unloads it, then does the same with
 * LIB_B from call() called from second() called from main(). LIB_B is loaded
 * where LIB_A was (checked: exit 3 if not), with another frame layout at the
 * same return addresses: under --stacks both groups must be named through
 * call() to main(), which stale frame layouts of LIB_A would break. Usage:
 * reload LIB_A LIB_B. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

void *volatile sink;
static void *placed[2];

__attribute__((noinline)) static void call(const char *lib, int i)
{
    void *h = dlopen(lib, RTLD_NOW);
    if (!h) {
        fprintf(stderr, "reload: %s\n", dlerror());
        exit(2);
    }
    void *(*f)(void);
    void *sym = dlsym(h, "reload_alloc");
    *(void **)&f = sym;
    placed[i] = sym;
    for (int k = 0; k < 20; k++)
        sink = f(); // dropped at the next call: a leak
    dlclose(h);
    __asm__ volatile("" ::: "memory"); // not a tail call
}

__attribute__((noinline)) static void second(const char *lib)
{
    call(lib, 1);
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    call(argv[1], 0);
    second(argv[2]);
    if (placed[0] != placed[1]) {
        fprintf(stderr, "reload: the second library was loaded elsewhere (%p, %p)\n", placed[0],
                placed[1]);
        return 3;
    }
    return 0;
}
