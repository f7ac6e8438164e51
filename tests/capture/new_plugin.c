/* new_plugin — a plugin linked with the C++ runtime, which the program that
 * loads it (capture/late_cxx.c) is not: 3 × 24 B leak from plugin_start, its
 * constructor, which dlopen runs, and 6 × 40 B from plugin_new_some, through
 * the runtime's operator new. Written in C against the runtime's symbols, as
 * capture/cxx_new.c. */
#include <stddef.h>

void *cxx_new(size_t n) __asm__("_Znwm"); // operator new(size_t)
void plugin_new_some(void);

void *volatile plugin_sink;

__attribute__((constructor, noinline)) static void plugin_start(void)
{
    for (volatile int i = 0; i < 3; i++)
        plugin_sink = cxx_new(24);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void plugin_new_some(void)
{
    for (volatile int i = 0; i < 6; i++)
        plugin_sink = cxx_new(40);
    __asm__ volatile("" ::: "memory"); // not a tail call
}
