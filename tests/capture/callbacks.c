/* callbacks — built with frame pointers, allocating in callbacks that code
 * without them calls (capture/callbacks_visit.c, -O2 -fomit-frame-pointer):
 *
 * - visit_twice() leaves the frame register as its caller set it, so the
 *   chain of frame pointers skips its caller, through_plain(): 10 blocks of
 *   88 bytes leak from leak_in_callback();
 * - scramble_visit() points the frame register at a made-up frame whose
 *   return address is into decoy(): 5 blocks of 120 bytes leak from
 *   leak_in_scrambled(), called through it from through_scrambled().
 *
 * Under --stacks both callers and main must be named, and decoy never. */
#include <stdlib.h>

void visit_twice(void (*cb)(void));
void scramble_visit(void (*cb)(void));

void *volatile sink;
static volatile int rounds = 5; // one call site each, not five

__attribute__((noinline)) static void leak_in_callback(void) { sink = malloc(88); }

__attribute__((noinline)) static void leak_in_scrambled(void) { sink = malloc(120); }

__attribute__((noinline)) static void through_plain(void)
{
    visit_twice(leak_in_callback);
    __asm__ volatile("" ::: "memory"); // not a tail call
}

__attribute__((noinline)) static void through_scrambled(void)
{
    scramble_visit(leak_in_scrambled);
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    for (int i = 0; i < rounds; i++) {
        through_plain();
        through_scrambled();
    }
    return 0;
}
