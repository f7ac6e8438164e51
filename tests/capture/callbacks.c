/* callbacks — built with frame pointers, allocating in callbacks that code
 * without them calls (capture/callbacks_visit.c, -O2 -fomit-frame-pointer):
 *
 * - visit_twice() leaves the frame register as its caller set it, so the
 *   chain of frame pointers skips its caller, through_plain(): 10 blocks of
 *   88 bytes leak from leak_in_callback();
 * - scramble_visit() points the frame register at a made-up frame whose
 *   return address is into decoy(): 5 blocks of 120 bytes leak from
 *   leak_in_scrambled(), called through it from through_scrambled();
 * - glibc's raise() runs a signal handler: 5 blocks of 136 bytes leak from
 *   leak_in_handler(), whose chain goes through the signal frame, from
 *   through_raise();
 * - leak_direct(), without a frame pointer, is first called at the bottom of
 *   a recursion through one indirect call site, where the chain's second
 *   frame is right by chance, then 4 times from direct_from_here(): 5 blocks
 *   of 152 bytes, 4 of them under direct_from_here.
 *
 * Under --stacks the callers and main must be named, and decoy never. */
#include <signal.h>
#include <stdlib.h>

void visit_twice(void (*cb)(void));
void scramble_visit(void (*cb)(void));
void leak_direct(int depth);

void *volatile sink;
static volatile int rounds = 5; // one call site each, not five

__attribute__((noinline)) static void leak_in_callback(void) { sink = malloc(88); }

__attribute__((noinline)) static void leak_in_scrambled(void) { sink = malloc(120); }

static void leak_in_handler(int sig)
{
    (void)sig;
    sink = malloc(136); // glibc's malloc may be called in a handler raise() runs
}

__attribute__((noinline)) static void through_raise(void)
{
    raise(SIGUSR1);
    __asm__ volatile("" ::: "memory");
}

static void recurse_into(int depth);
static void (*volatile next_call[2])(int) = {leak_direct, recurse_into};

__attribute__((noinline)) static void recurse_into(int depth)
{
    next_call[depth > 0](depth - 1); // one call site, whichever it calls
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void direct_from_here(void)
{
    leak_direct(0);
    __asm__ volatile("" ::: "memory");
}

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
    signal(SIGUSR1, leak_in_handler);
    recurse_into(3);
    for (int i = 0; i < rounds - 1; i++)
        direct_from_here();
    for (int i = 0; i < rounds; i++) {
        through_plain();
        through_scrambled();
        through_raise();
    }
    return 0;
}
