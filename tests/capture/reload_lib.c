/* reload_lib — built twice without frame pointers, as libreload_a.so and
 * libreload_b.so, with frames of different sizes (RELOAD_FRAME) and
 * otherwise the same code: the same function at the same offset with another
 * frame layout. reload.c loads one, unloads it, and loads the other at the
 * same address. */
#include <stdlib.h>

__attribute__((visibility("default"))) void *reload_alloc(void);

void *reload_alloc(void)
{
    volatile char pad[RELOAD_FRAME];
    pad[0] = 1;
    void *p = malloc(24);
    pad[1] = pad[0]; // used after the call: not a tail call
    return p;
}
